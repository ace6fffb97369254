"""Encoding events for storage: whatever the orchestrator put in them, a clear verdict."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path

import pytest

from victor.analytics import encoding as ev
from victor.analytics import events
from victor.analytics.encoding import EventEncodeError, decode_line, encode_line, encode_row
from victor.analytics.events import INPUT_TOKENS, MODEL, OUTPUT_TOKENS
from victor.protocols import AnalyticsEvent, Usage


def make(**fields) -> AnalyticsEvent:
    fields.setdefault("type", "llm_request")
    return AnalyticsEvent.model_construct(**fields)


def row_of(event) -> dict:
    return dict(zip(ev.COLUMNS, encode_row(event), strict=True))


class Color(Enum):
    RED = "red"


@dataclass
class Point:
    x: int


def test_row_extracts_the_genai_fields():
    e = make(
        session_id="acme:123",
        data={
            MODEL: "gpt-4o",
            INPUT_TOKENS: 10,
            OUTPUT_TOKENS: 5,
            "latency_ms": 12.5,
            "cost_usd": 0.01,
        },
    )
    row = dict(zip(ev.COLUMNS, encode_row(e), strict=True))
    assert row["tenant_id"] == "acme" and row["model"] == "gpt-4o"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (10, 5, 15)
    assert row["latency_ms"] == 12.5 and row["cost_usd"] == 0.01 and row["is_error"] is False
    assert isinstance(row["ts"], datetime) and row["ts"].tzinfo is not None
    assert json.loads(row["data"])[MODEL] == "gpt-4o"


def test_row_of_tool_call_and_error():
    data = {"tool": "search", "duration_ms": 3, "is_error": True}
    tool = row_of(make(type="tool_call", data=data))
    assert tool["tool"] == "search" and tool["latency_ms"] == 3.0 and tool["is_error"]
    assert row_of(make(type="error", data={}))["is_error"] is True


def test_garbage_in_numeric_fields_is_not_stored_as_numbers():
    row = row_of(make(data={INPUT_TOKENS: "12", OUTPUT_TOKENS: True, "cost_usd": 2**60}))
    assert row["input_tokens"] is None and row["output_tokens"] is None
    assert row["cost_usd"] == float(2**60)  # a real number, just large
    with pytest.raises(EventEncodeError, match="64-bit"):  # beyond what JSON stores exactly
        row_of(make(data={INPUT_TOKENS: 2**70}))


def test_common_python_types_become_json():
    data = {
        "when": datetime(2026, 1, 1, tzinfo=UTC),
        "day": date(2026, 1, 1),
        "id": uuid.UUID(int=1),
        "amount": Decimal("1.5"),
        "color": Color.RED,
        "path": Path("/tmp/x"),
        "tags": {"b", "a"},
        "tuple": (1, 2),
        "point": Point(1),
        "usage": Usage(input_tokens=3),
        1: "int key",
    }
    decoded = json.loads(ev.encode_data("e", data))
    assert decoded["when"].startswith("2026-01-01T00:00:00")
    assert decoded["amount"] == 1.5 and decoded["color"] == "red" and decoded["tags"] == ["a", "b"]
    assert decoded["point"] == {"x": 1} and decoded["usage"]["input_tokens"] == 3
    assert decoded["1"] == "int key"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"x": object()}, "not JSON-serialisable"),
        ({"x": b"bytes"}, "not JSON-serialisable"),
        ({(1, 2): "tuple key"}, "not JSON-serialisable"),
        ({"x": "a\x00b"}, "NUL"),
        ({"x": "\ud800"}, "Unicode"),
        (["a"], "must be a dict"),
    ],
)
def test_unstorable_data_is_refused_with_the_reason(data, reason):
    e = make(data=data)
    with pytest.raises(EventEncodeError) as info:
        encode_row(e)
    assert reason in str(info.value) and e.event_id in str(info.value)


def test_circular_data_is_refused():
    data: dict = {}
    data["self"] = data
    with pytest.raises(EventEncodeError, match="not JSON-serialisable"):
        encode_row(make(data=data))


def test_nan_becomes_null_rather_than_invalid_json():
    assert json.loads(ev.encode_data("e", {"a": math.nan, "b": [math.inf], "c": 1.0})) == {
        "a": None,
        "b": [None],
        "c": 1.0,
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": None}, "type is missing"),
        ({"type": 3}, "type must be a string"),
        ({"type": ""}, "type is empty"),
        ({"event_id": None}, "event_id is missing"),
        ({"session_id": 42}, "session_id must be a string"),
        ({"tenant_id": "a\x00"}, "NUL"),
        ({"session_id": "caf\u00e9 \ud800"}, "session_id has invalid Unicode"),
        ({"timestamp": "not a date"}, "not ISO 8601"),
        ({"timestamp": 12.5}, "timestamp must be a datetime"),
    ],
)
def test_malformed_fields_are_refused(fields, reason):
    with pytest.raises(EventEncodeError, match=reason):
        encode_row(make(**fields))


def test_not_an_event_at_all():
    with pytest.raises(EventEncodeError, match="not an analytics event"):
        encode_row(object())


def test_naive_and_iso_timestamps_are_accepted():
    naive = encode_row(make(timestamp=datetime(2026, 11, 25, 12, 0)))[6]
    assert naive == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    iso = encode_row(make(timestamp="2026-11-25T12:00:00+01:00"), epoch=True)[6]
    assert iso == datetime(2026, 11, 25, 11, 0, tzinfo=UTC).timestamp()
    other = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert encode_row(make(timestamp=other))[6] == other


def test_line_round_trip():
    e = make(
        session_id="t:s", data={"a": [1, {"b": None}]}, tenant_id="t", experiment="x", variant="v"
    )
    back = decode_line(encode_line(e)).to_model()
    assert back.model_dump() == e.model_dump()
    assert json.loads(encode_line(e))["timestamp"] == e.timestamp.isoformat()


def test_split_encoded_keeps_the_good_ones():
    good, bad = ev.split_encoded([make(), make(data={"x": object()}), make()], encode_row)
    assert len(good) == 2 and len(bad) == 1
    assert "1 event(s) rejected" in ev.rejection_message(bad)


def test_builders_use_the_vocabulary_and_become_public_events():
    scope = events.Scope("acme:s1", "acme", "exp", "b", turn_id="t1")
    usage = Usage(input_tokens=10, output_tokens=5, cached_input_tokens=2)
    usage_event = events.token_usage(scope, model="m", provider="p", usage=usage, cost_usd=None)
    assert usage_event.data[events.TOTAL_TOKENS] == 15 and usage_event.data[events.UNPRICED]
    assert usage_event.data[events.TURN_ID] == "t1" and usage_event.tenant_id == "acme"
    tool = events.tool_call(scope, tool="search", call_id="c1", duration_ms=2.0, is_error=False)
    assert tool.data[events.TOOL] == tool.data[events.TOOL_NAME] == "search"
    model = tool.to_model()
    assert isinstance(model, AnalyticsEvent) and model.model_dump()["data"] == tool.data
    assert model.event_id == tool.event_id and uuid.UUID(tool.event_id).version == 7
    row = row_of(tool)
    assert row["tool"] == "search" and row["latency_ms"] == 2.0 and row["variant"] == "b"


def test_every_event_type_of_the_protocol_has_a_constant():
    from typing import get_args

    from victor.protocols.analytics import EventType

    constants = {v for k, v in vars(events).items() if k.isupper() and v in get_args(EventType)}
    assert constants == set(get_args(EventType))


def test_a_nul_anywhere_in_data_is_refused_but_the_text_backslash_u0000_is_kept():
    for data in ({"k\x00": 1}, {"a": [{"b": "\x00"}]}, {"a": "\\\x00"}):
        with pytest.raises(EventEncodeError, match="NUL"):
            ev.encode_data("e", data)
    for text in ("\\u0000", "\\\\u0000", "x\\\\\\\\u0000"):  # backslashes, then "u0000"
        assert json.loads(ev.encode_data("e", {"a": text})) == {"a": text}


def test_numbers_and_times_a_database_cannot_hold_are_left_out_or_refused():
    huge = make(data={INPUT_TOKENS: 2**62, OUTPUT_TOKENS: 2**62})
    assert encode_row(huge)[11] is None  # the total would overflow a bigint: not stored
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # before year 1 in UTC
    with pytest.raises(EventEncodeError, match=r"timestamp .* is out of range"):
        encode_row(make(timestamp=early))
