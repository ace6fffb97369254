"""SQL names (tables, columns, schemas) come from configuration: each is checked against
the plain-identifier pattern and quoted, never interpolated as given."""

from __future__ import annotations

import re

from victor.errors import ConfigError

#: PostgreSQL truncates longer names (NAMEDATALEN - 1).
MAX_LENGTH = 63
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_ident(name: str, what: str = "name", *, max_length: int = MAX_LENGTH) -> str:
    """``name`` if it is a plain SQL identifier, else a :class:`ConfigError` naming ``what``."""
    if not isinstance(name, str) or not _PLAIN.match(name) or len(name) > max_length:
        raise ConfigError(
            f"{what} {name!r} must be a plain SQL identifier: letters, digits and _, "
            f"at most {max_length} characters"
        )
    return name


def quote_ident(name: str, what: str = "name") -> str:
    """``name`` checked and double-quoted."""
    return f'"{check_ident(name, what)}"'
