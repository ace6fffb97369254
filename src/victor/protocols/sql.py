"""Database names and addresses from configuration. SQL names (tables, columns, schemas)
are checked against the plain-identifier pattern and quoted, never interpolated as given;
a database URL is shown without its password."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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


def redact_dsn(dsn: str) -> str:
    """A database URL (or ``key=value`` DSN) without its password: for messages, and as a
    name for the database that a new password does not change."""
    if "://" not in dsn:
        return re.sub(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S*)\s*", "", dsn).strip()
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{parts.username}@{host}" if parts.username else host
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if k != "password"))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, netloc, parts.path, query, ""))
