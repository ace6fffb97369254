"""``LoggingMiddleware``: one structured log record per request, secrets redacted."""

from __future__ import annotations

import logging
from typing import Any

from victor.middleware.redaction import redact_mapping, redact_text
from victor.protocols.middleware import Request, RequestMiddleware

__all__ = ["LoggingMiddleware"]

# Room past the logged preview, so a secret straddling its end is still recognised.
_SECRET_MARGIN = 256


class LoggingMiddleware(RequestMiddleware):
    """Logs each ``chat`` / ``stream`` request on ``logger`` (``victor.requests`` by
    default) at ``level``: a readable line, and the fields in the record's ``victor``
    attribute for structured handlers (JSON formatters read ``record.victor``).

    Fields: ``event``, ``function``, ``session_id``, ``tenant_id``, ``message_chars``,
    ``message`` (the first ``max_message_chars``; 0 leaves it out) and ``config``. API keys,
    tokens and passwords are redacted from the message and the config (by key name and by
    shape). Costs nothing when the level is not enabled.
    """

    def __init__(
        self,
        logger: logging.Logger | str = "victor.requests",
        *,
        level: int | str = logging.INFO,
        max_message_chars: int = 200,
        include_config: bool = True,
    ) -> None:
        if isinstance(level, str):
            levels = logging.getLevelNamesMapping()
            if level.upper() not in levels:
                raise ValueError(f"unknown log level {level!r}; one of {', '.join(levels)}")
            level = levels[level.upper()]
        if not isinstance(level, int) or isinstance(level, bool):
            raise TypeError(f"level must be a log level (logging.INFO, 'INFO'), not {level!r}")
        if not isinstance(max_message_chars, int) or max_message_chars < 0:
            raise ValueError(f"max_message_chars must be an int >= 0, not {max_message_chars!r}")
        if not isinstance(logger, str | logging.Logger):
            raise TypeError(f"logger must be a logging.Logger or its name, not {logger!r}")
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.max_message_chars = max_message_chars
        self.include_config = include_config

    async def handle(self, orchestrator: Any, request: Request) -> None:
        if not self.logger.isEnabledFor(self.level):
            return None
        fields: dict[str, Any] = {
            "event": "request",
            "function": request.function,
            "session_id": request.session_id,
            "tenant_id": request.tenant_id,
            "message_chars": len(request.message),
        }
        if self.max_message_chars:
            head = request.message[: self.max_message_chars + _SECRET_MARGIN]
            fields["message"] = redact_text(head)[: self.max_message_chars]
        if self.include_config and request.config:
            fields["config"] = redact_mapping(request.config)
        # Made and handled directly, as Logger.log does, without its walk up the stack to
        # find the caller: the caller is always this method.
        record = self.logger.makeRecord(
            self.logger.name,
            self.level,
            __file__,
            _LINE,
            "%s session=%s tenant=%s chars=%d",
            (request.function, request.session_id, request.tenant_id, fields["message_chars"]),
            None,
            "handle",
            {"victor": fields},
        )
        self.logger.handle(record)
        return None


_LINE = LoggingMiddleware.handle.__code__.co_firstlineno
