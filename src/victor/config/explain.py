"""Turn what pydantic-settings raises into one :class:`ConfigError` line a user can act on.

The line names where the bad value came from (``VICTOR_X``, ``.env`` file and line, or
``Settings(x=...)``), the value, and what is accepted, e.g.
``VICTOR_MAX_TOOL_ITERATIONS='lots' is invalid (accepted: an integer >= 1)``.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from victor.errors import ConfigError

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "text"}
_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@/\s]+@")


def env_files(setting: Any) -> list[Path]:
    """The ``.env`` files a settings class reads (``model_config["env_file"]`` or the
    ``_env_file`` argument), later ones overriding earlier ones."""
    if setting is None:
        return []
    if isinstance(setting, str | os.PathLike):
        setting = [setting]
    return [Path(item).expanduser().absolute() for item in setting]


def from_validation_error(
    exc: ValidationError,
    fields: Mapping[str, FieldInfo],
    *,
    env_prefix: str,
    init_values: Mapping[str, Any],
    dotenv: list[Path],
) -> ConfigError:
    """One line for all the errors of ``exc``, each naming its source and value."""
    parts = []
    for error in exc.errors(include_url=False):
        name = str(error["loc"][0]) if error["loc"] else ""
        value = _mask(repr(error.get("input")))
        if name in init_values:
            setting = f"Settings({name}={value})"
        else:
            setting = f"{_source(name, env_prefix, dotenv)}={value}"
        if error["type"] == "value_error":  # our validators say what is accepted
            accepted = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            field = fields.get(name)
            accepted = f"accepted: {_accepted(field)}" if field else error["msg"]
        parts.append(f"{setting} is invalid ({accepted})")
    return ConfigError("; ".join(parts))


def not_utf8(dotenv: list[Path]) -> ConfigError:
    """The ``.env`` file that is not UTF-8, with the line of its first bad byte."""
    for path in dotenv:
        try:
            raw = path.read_bytes()
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            return ConfigError(
                f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
            )
        except OSError:
            continue
    return ConfigError(f"{', '.join(map(str, dotenv))}: not UTF-8 text; save it as UTF-8")


def unreadable(dotenv: list[Path], exc: OSError) -> ConfigError:
    where = exc.filename or next((p for p in dotenv if p.exists()), None) or ".env"
    return ConfigError(f"{where}: cannot read it ({exc.strerror or exc})")


def _source(name: str, prefix: str, dotenv: list[Path]) -> str:
    """Where a field's value came from, after the arguments: pydantic-settings reads the
    environment, then the .env files."""
    variable = f"{prefix}{name}".upper()
    if any(key.upper() == variable for key in os.environ):
        return variable
    pattern = re.compile(rf"^\s*(?:export\s+)?{re.escape(variable)}\s*=", re.IGNORECASE)
    for path in reversed(dotenv):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for number in range(len(lines), 0, -1):  # the last assignment wins
            if pattern.match(lines[number - 1]):
                return f"{path}:{number}: {variable}"
    return variable


def _accepted(field: FieldInfo) -> str:
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = options[0] if len(options) == 1 else annotation
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(repr(choice) for choice in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, os.PathLike):
        what = "a path"
    else:
        what = _TYPE_NAMES.get(annotation, str(annotation))
    bounds = [
        f"{symbol} {getattr(item, attribute)}"
        for item in field.metadata
        for kind, attribute, symbol in _BOUNDS
        if isinstance(item, kind)
    ]
    return f"{what} {' and '.join(bounds)}" if bounds else what


def _mask(text: str) -> str:
    """A value as shown in an error: a password inside a URL is hidden."""
    return _URL_PASSWORD.sub(r"\1:***@", text)
