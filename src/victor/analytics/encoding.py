"""Events into JSON lines and database rows. Events are built without validation, so
anything can be in them: one that cannot be stored raises :class:`EventEncodeError`, naming
the event and the reason, and its exporter carries on with the rest of the batch."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson

from victor.analytics import events as ev
from victor.protocols.tenancy import tenant_of

#: Columns of the events table, in the order :func:`encode_row` returns them. Reports
#: read the extracted columns (model .. is_error); ``data`` keeps the whole payload.
COLUMNS: tuple[str, ...] = (
    *("event_id", "type", "session_id", "tenant_id", "experiment", "variant", "ts"),
    *("model", "tool", "input_tokens", "output_tokens", "total_tokens", "cost_usd"),
    *("latency_ms", "is_error", "data"),
)
_TEXT_FIELDS = ("event_id", "type", "session_id", "tenant_id", "experiment", "variant")
_INT64 = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")  # what UTF-8 cannot encode


class EventEncodeError(ValueError):
    """One event cannot be exported; the message says which and why."""

    def __init__(self, event_id: str, reason: str) -> None:
        super().__init__(f"event {event_id}: {reason}")
        self.event_id = event_id


def _default(value: Any) -> Any:
    """JSON for what orjson leaves out; anything else is refused, never guessed."""
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if callable(dump := getattr(value, "model_dump", None)):  # pydantic models
        return dump(mode="json")
    raise TypeError(f"an object of type {type(value).__name__} is not JSON-serialisable")


def event_label(event: Any) -> str:
    """The event id for error messages, whatever the object is."""
    value = getattr(event, "event_id", None)
    return value if isinstance(value, str) and value else f"<no event_id: {type(event).__name__}>"


def encode_data(event_id: str, data: Any) -> str:
    """``data`` as compact JSON (NaN and infinities become null), or
    :class:`EventEncodeError`: NUL characters and lone surrogates are refused, as databases do."""
    if data is None:
        return "{}"
    if not isinstance(data, dict):
        raise EventEncodeError(event_id, f"data must be a dict, not {type(data).__name__}")
    try:
        text = orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:
        if "surrogates" in str(exc):
            raise EventEncodeError(event_id, f"data has invalid Unicode ({exc})") from None
        raise EventEncodeError(event_id, f"data is not JSON-serialisable: {exc}") from None
    # A NUL is escaped as \u0000; a backslash as \\, so "\\u0000" is the text "\u0000".
    if "\\u0000" in text and "\\u0000" in text.replace("\\\\", ""):
        raise EventEncodeError(event_id, "data contains a NUL character")
    return text


def _checked(event: Any) -> tuple[list[str | None], datetime, Any]:
    """The event's text fields, its aware timestamp and its data, or the reason why not."""
    eid = event_label(event)
    try:
        texts = [getattr(event, name) for name in _TEXT_FIELDS]
        ts, data = event.timestamp, event.data
    except AttributeError as exc:
        raise EventEncodeError(eid, f"not an analytics event ({exc})") from None
    for index, (name, value) in enumerate(zip(_TEXT_FIELDS, texts, strict=True)):
        required = index < 2  # event_id and type
        if value is None and not required:
            continue
        if value is None:
            raise EventEncodeError(eid, f"{name} is missing")
        if type(value) is not str:
            raise EventEncodeError(eid, f"{name} must be a string, not {type(value).__name__}")
        if "\x00" in value:
            raise EventEncodeError(eid, f"{name} contains a NUL character")
        if not value.isascii() and _SURROGATE.search(value):
            raise EventEncodeError(eid, f"{name} has invalid Unicode (a lone surrogate)")
        if required and not value:
            raise EventEncodeError(eid, f"{name} is empty")
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            raise EventEncodeError(eid, f"timestamp {ts!r} is not ISO 8601") from None
    if not isinstance(ts, datetime):
        raise EventEncodeError(eid, f"timestamp must be a datetime, not {type(ts).__name__}")
    try:
        ts = ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    except OverflowError:
        raise EventEncodeError(eid, f"timestamp {ts} is out of range") from None
    return texts, ts, data


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value if -_INT64 <= value <= _INT64 else None
    if type(value) is float and value.is_integer() and abs(value) <= _INT64:
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if type(value) is float:
        return value if math.isfinite(value) else None
    return float(value) if type(value) is int else None


def _str(value: Any) -> str | None:
    return value if type(value) is str and "\x00" not in value else None


def encode_row(event: Any, *, epoch: bool = False) -> tuple[Any, ...]:
    """One table row (see :data:`COLUMNS`). ``epoch``: the timestamp as Unix seconds
    (SQLite) instead of an aware datetime (PostgreSQL)."""
    (event_id, etype, session_id, tenant_id, experiment, variant), ts, raw = _checked(event)
    data_json = encode_data(event_id, raw)  # type: ignore[arg-type]
    get = (raw or {}).get
    inp, out = _int(get(ev.INPUT_TOKENS)), _int(get(ev.OUTPUT_TOKENS))
    total = _int(get(ev.TOTAL_TOKENS))
    if total is None and inp is not None and out is not None:
        total = _int(inp + out)
    latency = _float(get(ev.LATENCY_MS))
    return (
        event_id,
        etype,
        session_id,
        tenant_id if tenant_id is not None else tenant_of(session_id),
        experiment if experiment is not None else _str(get(ev.EXPERIMENT)),
        variant if variant is not None else _str(get(ev.VARIANT)),
        ts.timestamp() if epoch else ts,
        _str(get(ev.MODEL)),
        _str(get(ev.TOOL)) or _str(get(ev.TOOL_NAME)),
        inp,
        out,
        total,
        _float(get(ev.COST_USD)),
        latency if latency is not None else _float(get(ev.DURATION_MS)),
        etype == ev.ERROR or get(ev.IS_ERROR) is True,
        data_json,
    )


def encode_line(event: Any) -> str:
    """One JSON line (no newline) holding the whole event, or :class:`EventEncodeError`."""
    texts, ts, data = _checked(event)
    head = dict(zip(_TEXT_FIELDS, texts, strict=True))  # as given: no derived tenant
    head["timestamp"] = ts.isoformat()
    data_json = encode_data(event_label(event), data)
    return f'{orjson.dumps(head).decode()[:-1]},"data":{data_json}}}'


def decode_line(line: str | bytes) -> ev.Event:
    """An event back from :func:`encode_line` (outbox replay, JSONL readers)."""
    obj = orjson.loads(line)
    if not isinstance(obj, dict) or not obj.get("event_id") or not obj.get("type"):
        raise ValueError("not an analytics event line")
    obj["timestamp"] = datetime.fromisoformat(obj["timestamp"])
    obj["data"] = obj.get("data") or {}
    return ev.Event(**obj)


def json_lines(events: Sequence[Any]) -> tuple[bytes, list[EventEncodeError]]:
    """Events as the outbox keeps them: JSON lines, and the errors of those that cannot be."""
    lines, bad = split_encoded(events, encode_line)
    return "".join(f"{line}\n" for line in lines).encode(), bad


def split_encoded(
    events: Sequence[Any], encode: Any, **kwargs: Any
) -> tuple[list[Any], list[EventEncodeError]]:
    """Encode each event; keep the good ones, collect the errors of the bad ones."""
    good: list[Any] = []
    bad: list[EventEncodeError] = []
    for event in events:
        try:
            good.append(encode(event, **kwargs))
        except EventEncodeError as exc:
            bad.append(exc)
        except Exception as exc:  # a hostile __getattr__ or the like
            bad.append(EventEncodeError(event_label(event), f"cannot be encoded: {exc!r}"))
    return good, bad


def rejection_message(errors: Sequence[EventEncodeError], limit: int = 3) -> str:
    """A readable summary of rejected events for :attr:`ExportResult.error`."""
    shown = "; ".join(str(e) for e in errors[:limit])
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return f"{len(errors)} event(s) rejected: {shown}{more}"
