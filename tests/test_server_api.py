"""The server through the official OpenAI SDK and plain HTTP, served by uvicorn on
loopback, with a scripted model behind the orchestrator."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from server_kit import ServedApp, orchestrator_for
from victor import tool
from victor.errors import ProviderRateLimitError, ProviderServerError
from victor.providers import ScriptedProvider


@tool
async def get_weather(city: str) -> str:
    """Current weather in a city.

    Args:
        city: The city name.
    """
    return f"18 C and sunny in {city}"


def client_for(served: ServedApp, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.base_url, api_key="unused", max_retries=0, **kwargs)


@pytest.fixture
def serve():
    running: list[ServedApp] = []

    def start(script, *, tools=None, **options) -> tuple[ServedApp, ScriptedProvider]:
        provider = ScriptedProvider(script)
        served = ServedApp(orchestrator_for(provider, tools), **options).start()
        running.append(served)
        return served, provider

    yield start
    for served in running:
        served.stop()


def test_chat_completions_keep_the_session_history(serve):
    served, model = serve(["Hello Ada.", "You are Ada."])
    client = client_for(served)
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "I am Ada"}], user="s1"
    )
    assert first.choices[0].message.content == "Hello Ada."
    assert first.choices[0].finish_reason == "stop"
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens > 0
    assert first.model == "gpt-4o-mini"
    second = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Who am I?"},
        ],
        user="s1",
    )
    assert second.choices[0].message.content == "You are Ada."
    sent = model.calls[1]["messages"]
    assert [(m.role, m.content) for m in sent] == [
        ("system", "Be brief."),
        ("user", "I am Ada"),
        ("assistant", "Hello Ada."),
        ("user", "Who am I?"),
    ]
    # The session is readable through the API.
    session = httpx.get(f"{served.base_url}/sessions/s1").json()
    assert [m["content"] for m in session["messages"]] == [
        "I am Ada",
        "Hello Ada.",
        "Who am I?",
        "You are Ada.",
    ]


def test_without_a_session_the_earlier_messages_start_one(serve):
    served, model = serve(["Paris."])
    response = client_for(served).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Which France?"},
            {"role": "user", "content": [{"type": "text", "text": "The country."}]},
        ],
    )
    session_id = response.headers["x-session-id"]
    assert response.parse().choices[0].message.content == "Paris."
    assert [m.content for m in model.calls[0]["messages"]] == [
        "Capital of France?",
        "Which France?",
        "The country.",
    ]
    stored = httpx.get(f"{served.base_url}/sessions/{session_id}").json()
    assert len(stored["messages"]) == 4


def test_streaming_with_usage(serve):
    served, _ = serve(
        [
            {
                "content": "Hello there, streaming world.",
                "usage": {"input_tokens": 9, "output_tokens": 5},
            }
        ]
    )
    stream = client_for(served).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hi"}],
        user="s-stream",
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "Hello there, streaming world."
    assert finish == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 5, 14)


def test_a_tool_using_turn_runs_the_servers_tool(serve):
    served, model = serve(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
            "It is 18 C in Oslo.",
        ],
        tools=[get_weather],
    )
    response = client_for(served).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        user="s-tools",
    )
    assert response.choices[0].message.content == "It is 18 C in Oslo."
    assert model.calls[0]["tools"] == ["get_weather"]
    assert model.calls[1]["messages"][-1].content == "18 C and sunny in Oslo"
    extra = response.model_extra["victor"]
    assert extra["tools_run"] == [
        {"name": "get_weather", "arguments": {"city": "Oslo"}, "is_error": False}
    ]
    assert response.usage.total_tokens > 0


def test_a_streamed_tool_turn_on_v1_chat_reports_the_tool(serve):
    served, _ = serve(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]},
            "Sunny in Rome.",
        ],
        tools=[get_weather],
    )
    events = []
    with httpx.stream(
        "POST",
        f"{served.base_url}/chat",
        json={"message": "Weather in Rome?", "session_id": "s-sse", "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "tool_start" and "tool_end" in kinds and kinds[-1] == "done"
    tool_end = next(data for kind, data in events if kind == "tool_end")
    assert tool_end["content"] == "18 C and sunny in Rome" and not tool_end["is_error"]
    text = "".join(data["text"] for kind, data in events if kind == "text")
    assert text == "Sunny in Rome."
    done = events[-1][1]
    assert done["content"] == "Sunny in Rome." and done["session_id"] == "s-sse"
    assert done["tool_results"][0]["content"] == "18 C and sunny in Rome"


def test_v1_chat_json_models_and_feedback(serve):
    served, _ = serve(["Fine."], models=["gpt-4o-mini", "gpt-4o"])
    http = httpx.Client(base_url=served.base_url)
    body = http.post("/chat", json={"message": "How are you?", "session_id": "s-fb"}).json()
    assert body["content"] == "Fine." and body["session_id"] == "s-fb"
    assert body["usage"]["input_tokens"] > 0
    assert [m.id for m in client_for(served).models.list()] == ["gpt-4o-mini", "gpt-4o"]
    recorded = http.post("/feedback", json={"session_id": "s-fb", "score": 1.0, "comment": "ok"})
    assert recorded.status_code == 200 and recorded.json()["recorded"] is True
    missing = http.post("/feedback", json={"session_id": "nope", "score": 1.0})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "session_not_found"


def test_errors_reach_the_sdk_in_openais_shape(serve):
    served, _ = serve(
        [
            ProviderRateLimitError("slow down", provider="scripted", retry_after=3),
            ProviderServerError("boom", provider="scripted", status_code=500),
        ],
        models=["gpt-4o-mini"],
    )
    client = client_for(served)
    ask = {"messages": [{"role": "user", "content": "Hi"}], "user": "s-err"}
    with pytest.raises(openai.NotFoundError) as not_served:
        client.chat.completions.create(model="gpt-5", **ask)
    assert not_served.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert empty.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError, match="last message must be the user's"):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "assistant", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError, match="tools are the server's"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            **ask,
        )
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", **ask)
    assert limited.value.response.headers["retry-after"] == "4"
    with pytest.raises(openai.APIStatusError) as upstream:
        client.chat.completions.create(model="gpt-4o-mini", **ask)
    assert upstream.value.status_code == 502
    assert upstream.value.body["type"] == "upstream_error"
    # A failed turn left no history behind.
    assert httpx.get(f"{served.base_url}/sessions/s-err").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/chat", b"not json", 400),
        ("/v1/chat", b"[1, 2]", 400),
        ("/v1/chat", b'{"message": ""}', 400),
        ("/v1/chat", b'{"message": "hi", "temperature": 9}', 400),
        ("/v1/chat", b'{"message": "hi", "surprise": 1}', 400),
        ("/v1/chat/completions", b'{"model": "m", "messages": [{"role": "wizard"}]}', 400),
        ("/v1/chat/completions", b'{"model": "m", "messages": [{"role": "user"}]}', 400),
        ("/v1/chat/completions", b'{"model": "m", "n": 2, "messages": []}', 400),
        ("/v1/feedback", b'{"session_id": "s", "score": "good"}', 400),
        ("/v1/nothing", b"{}", 404),
    ],
)
def test_bad_requests_are_4xx_json_errors(serve, path, body, status):
    served, _ = serve(["unused"])
    response = httpx.post(served.url + path, content=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["message"] and error["type"]


def test_request_size_limit(serve):
    served, _ = serve(["unused"], max_body_bytes=2048)
    response = httpx.post(f"{served.base_url}/chat", json={"message": "x" * 4000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    # Without a Content-Length (chunked), the limit holds too.
    chunks = (b'{"message": "' + b"y" * 1000 for _ in range(4))
    response = httpx.post(f"{served.base_url}/chat", content=chunks)
    assert response.status_code == 413


def test_health_openapi_and_metrics(serve):
    served, _ = serve(["Hi."])
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{served.url}/readyz").status_code == 200
    document = httpx.get(f"{served.url}/openapi.json").json()
    assert {"/v1/chat", "/v1/chat/completions", "/v1/models", "/v1/feedback"} <= set(
        document["paths"]
    )
    assert "ChatCompletionRequest" in document["components"]["schemas"]
    client_for(served).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], user="s-m"
    )
    httpx.post(f"{served.base_url}/chat", content=b"{")
    metrics = httpx.get(f"{served.url}/metrics").text
    assert (
        'victor_requests_total{model="gpt-4o-mini",route="/v1/chat/completions",'
        'status="200",tenant="-"} 1.0' in metrics
    )
    assert 'victor_tokens_total{direction="output",model="gpt-4o-mini",tenant="-"}' in metrics
    assert 'type="invalid_request_error"' in metrics
    assert "victor_request_duration_seconds_bucket" in metrics


def test_an_error_in_the_middle_of_a_stream_ends_it_with_an_error_event(serve):
    served, _ = serve(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
            ProviderServerError("the model fell over", provider="scripted", status_code=503),
        ],
        tools=[get_weather],
    )
    stream = client_for(served).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        user="s-broken",
        stream=True,
    )
    with pytest.raises(openai.APIError, match="the model fell over"):
        for _ in stream:
            pass
    assert httpx.get(f"{served.base_url}/sessions/s-broken").status_code == 404
    metrics = httpx.get(f"{served.url}/metrics").text
    assert 'status="502"' in metrics and 'type="upstream_error"' in metrics


def test_model_labels_of_the_metrics_are_bounded():
    from victor.server.metrics import MAX_MODEL_LABELS, ServerMetrics

    metrics = ServerMetrics()
    for i in range(MAX_MODEL_LABELS + 50):
        metrics.observe("/v1/chat", 404, 0.001, None, f"random-{i}", "not_found_error")
    text = metrics.render().decode()
    assert f'model="random-{MAX_MODEL_LABELS - 1}"' in text
    assert f'model="random-{MAX_MODEL_LABELS}"' not in text
    assert 'model="other",route="/v1/chat",status="404"' in text
