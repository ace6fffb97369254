"""Process-wide settings: defaults, overridden by ``VICTOR_*`` variables and a ``.env`` file."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from victor.config import explain
from victor.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "victor"


class Settings(BaseSettings):
    """Victor's settings. ``Settings()`` with no arguments gives a working setup: SQLite
    files in :attr:`data_dir`, everything in one process.

    Every field can be set by an environment variable named ``VICTOR_<FIELD>`` (for
    example ``VICTOR_MAX_TOOL_ITERATIONS=5``) or in a ``.env`` file. A value that cannot
    be used raises :class:`~victor.errors.ConfigError`, one line naming the variable (or
    the ``.env`` file and line), the value and what is accepted.
    """

    model_config = SettingsConfigDict(
        env_prefix="VICTOR_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=_default_data_dir)

    # Conversations: "sqlite" (a file in data_dir), "memory", or a PostgreSQL DSN
    # (postgresql://user@host:5432/db) for several processes or hosts.
    session_store: str = "sqlite"
    session_db_path: Path | None = None  # default: <data_dir>/sessions.db
    # "sync": a turn returns once its history is committed (survives a crash of the
    # process). "async": turns return before the commit (write-behind, a little faster);
    # a crash loses the turns not yet written.
    session_durability: Literal["sync", "async"] = "sync"

    # Model calls
    # None: the provider's own default (OpenAI gpt-4o-mini, Anthropic claude-sonnet-4-5).
    default_model: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, gt=0)
    # Seconds to wait for a model's answer (long generations are legitimate); connecting
    # times out after 5 s regardless.
    request_timeout: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=3, ge=0)

    # The agent loop
    max_tool_iterations: int = Field(default=10, ge=1)
    tool_timeout: float = Field(default=30.0, gt=0)
    max_parallel_tools: int = Field(default=8, ge=1)
    max_tool_result_chars: int = Field(default=20_000, ge=100)

    # Context
    context_window: int = Field(default=128_000, gt=0)  # when the model's is unknown
    context_compaction_threshold: float = Field(default=0.8, gt=0.0, le=1.0)

    # Tool selection
    max_tools: int = Field(default=20, ge=1)

    # Analytics
    enable_analytics: bool = True

    log_level: str = "WARNING"

    def __init__(self, **values: Any) -> None:
        dotenv = explain.env_files(values.get("_env_file", self.model_config.get("env_file")))
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise explain.from_validation_error(
                exc,
                type(self).model_fields,
                env_prefix=self.model_config.get("env_prefix", ""),
                init_values=values,
                dotenv=dotenv,
            ) from None
        except UnicodeDecodeError:  # reading a .env file
            raise explain.not_utf8(dotenv) from None
        except OSError as exc:  # reading a .env file
            raise explain.unreadable(dotenv, exc) from None

    def ensure_data_dir(self) -> Path:
        """Create :attr:`data_dir` if needed and check that files can be written there;
        else :class:`ConfigError` naming it. Blocking: call it off the event loop."""
        path = self.data_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"data dir {path} (VICTOR_DATA_DIR): cannot create it ({exc.strerror or exc}); "
                "set VICTOR_DATA_DIR to a writable folder"
            ) from None
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            raise ConfigError(
                f"data dir {path} (VICTOR_DATA_DIR): cannot write there "
                f"({exc.strerror or exc}); set VICTOR_DATA_DIR to a writable folder"
            ) from None
        return path

    @field_validator("log_level", mode="after")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() in LOG_LEVELS:
            return value.upper()
        raise ValueError(f"accepted: {', '.join(LOG_LEVELS)}")

    def logging_level(self) -> int:
        return logging.getLevelNamesMapping()[self.log_level]

    @field_validator("session_store", mode="after")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value in ("sqlite", "memory") or value.startswith(("postgresql://", "postgres://")):
            return value
        raise ValueError("accepted: sqlite, memory or a postgresql:// DSN")

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sessions_path(self) -> Path:
        return self.session_db_path or self.data_dir / "sessions.db"
