"""Which tenant a session belongs to: one rule, used everywhere.

A session id of the form ``tenant:session`` carries its tenant; a plain id belongs to no
tenant. A turn given an explicit tenant scopes a plain id to it (``s1`` of ``acme`` is
stored as ``acme:s1``), so storage, configuration, prompts and analytics all read the
tenant from the one place it lives: the session id.
"""

from __future__ import annotations

from victor.errors import TenantMismatchError

SEPARATOR = ":"


def tenant_of(session_id: str | None) -> str | None:
    """``"acme:session-1"`` belongs to tenant ``"acme"``; a plain id to none."""
    if session_id and SEPARATOR in session_id:
        return session_id.split(SEPARATOR, 1)[0] or None
    return None


def scoped_session_id(session_id: str, tenant_id: str | None) -> str:
    """The session id that carries ``tenant_id``.

    A plain id is scoped to the tenant; an id that already names the same tenant is
    returned as it is; one that names another tenant is refused.
    """
    if tenant_id is None:
        return session_id
    if not tenant_id or SEPARATOR in tenant_id:
        raise ValueError(f"tenant_id must be a non-empty string without {SEPARATOR!r}")
    owner = tenant_of(session_id)
    if owner is None:
        return f"{tenant_id}{SEPARATOR}{session_id}"
    if owner != tenant_id:
        raise TenantMismatchError(
            f"session {session_id!r} belongs to tenant {owner!r}, not {tenant_id!r}"
        )
    return session_id
