import uuid
from datetime import date

import pytest

from victor.pricing import PriceTable
from victor.protocols import AnalyticsEvent, PromptContext, Usage, new_event_id
from victor.protocols.analytics import new_session_id


def test_event_ids_are_time_ordered_unique_uuid7():
    ids = [new_event_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_event_ids_stay_unique_and_ordered_across_threads():
    import sys
    import threading

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    per_thread: list[list[str]] = []

    def make() -> None:
        per_thread.append([new_event_id() for _ in range(20_000)])

    try:
        threads = [threading.Thread(target=make) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    every = [i for ids in per_thread for i in ids]
    assert len(set(every)) == len(every) == 80_000
    assert all(ids == sorted(ids) for ids in per_thread)
    for text in every[::997]:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_session_ids_are_random_uuid4():
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_builder_events_equal_validated_ones():
    from victor.analytics import events

    scope = events.Scope("acme:1", "acme", "exp", "a")
    fast = events.tool_call(scope, tool="x", call_id=None, duration_ms=1.0, is_error=False)
    fast = fast.to_model()
    slow = AnalyticsEvent.model_validate(fast.model_dump())
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.model_fields_set == slow.model_fields_set


def test_prompt_context_is_a_mapping():
    ctx = PromptContext(
        session_id="acme:1",
        tenant_id="acme",
        query="hi",
        config={"tone": "formal"},
        extra={"user": "ann"},
    )
    assert ctx.get("tenant_id") == "acme"
    assert ctx["tone"] == "formal" and ctx.get("user") == "ann"
    assert ctx.get("missing", 3) == 3
    assert "query" in ctx and "nope" not in ctx
    assert dict(ctx)["session_id"] == "acme:1"


def test_usage_adds_up():
    total = Usage(input_tokens=3, output_tokens=4, requests=1) + Usage(
        input_tokens=10, output_tokens=1, cached_input_tokens=2, requests=1
    )
    assert (total.input_tokens, total.output_tokens, total.total_tokens) == (13, 5, 18)
    assert total.cached_input_tokens == 2 and total.requests == 2


def test_prices_are_versioned_and_unknown_models_unpriced():
    table = PriceTable()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("gpt-4o", usage, at=date(2025, 1, 1)) == 12.5
    assert table.cost("gpt-4o-2024-08-06", usage, at=date(2025, 1, 1)) == 12.5
    assert table.cost("openai/gpt-4o-mini", usage) == 0.75
    small = Usage(input_tokens=100_000, output_tokens=100_000)
    assert table.cost("claude-sonnet-4-5-20250929", small) == 1.8
    assert table.cost("my-fine-tune", usage) is None
    assert table.version.startswith("genai-prices")
    cached = Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)
    assert table.cost("gpt-4o", cached, at=date(2025, 1, 1)) == 1.25


def test_ids_differ_in_forked_children():
    import os

    new_event_id(), new_session_id()  # the parent made ids before forking
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            os.close(read)
            ids = " ".join([new_session_id(), *(new_event_id() for _ in range(50))])
            os.write(write, ids.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            children.append(set(pipe.read().split()))
        os.waitpid(pid, 0)
    assert not children[0] & children[1]


def test_sql_names_are_checked_once_for_every_store():
    from victor.errors import ConfigError
    from victor.protocols.sql import check_ident, quote_ident

    assert quote_ident("victor_events") == '"victor_events"'
    assert check_ident("t" * 63) == "t" * 63
    for bad in ("x; DROP TABLE y", "1abc", "", "a-b", 'a"b', "t" * 64, None):
        with pytest.raises(ConfigError, match="must be a plain SQL identifier"):
            check_ident(bad, "table")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"table_prefix 'p' .* at most 0 characters"):
        check_ident("p", "table_prefix", max_length=0)


def test_database_urls_are_shown_without_their_password():
    from victor.protocols.sql import redact_dsn

    assert redact_dsn("postgresql://u:secret@h/db?schema=x") == "postgresql://u@h/db?schema=x"
    assert redact_dsn("postgres://u:s@h:5/db?password=p&b=2&a=1") == "postgresql://u@h:5/db?a=1&b=2"
    assert redact_dsn("host=h password=secret dbname=app") == "host=h dbname=app"
    assert redact_dsn("host=h password = 'a b\\'c' dbname=app") == "host=h dbname=app"
    assert redact_dsn("/tmp/my dir/a.db") == "/tmp/my dir/a.db"
