"""The shipped int8 MiniLM model and the on-disk embedding cache."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from victor.agent.coordinators.tool_selection_coordinator import ToolSelectionCoordinator
from victor.protocols import IEmbeddingService, Tool
from victor.selection.embeddings import default_embeddings
from victor.selection.embeddings.cache import CachedEmbedder

# sentence-transformers' fp32 all-MiniLM-L6-v2, encode(normalize_embeddings=True), as float16.
REFERENCE_SENTENCES = [
    "Get the 2-day air quality forecast for any US zip code.",
    "Can I find academic research papers on this topic?",
    "read_file: Read the complete contents of a file from the file system.",
    "convert a word document to pdf",
]
REFERENCE_B64 = (
    "QSoJrKAufS64JsqoK62kqEWu06JjnXile63NDvGjyKDWpYenhyCZrXAuGC5EDcuoJpUpJ6Opgyd1KAgRWyjQJucl"
    "wZtfLZ+tYywoJMacniwiGa6iFCiEKoyvBKHuqdcpay6jKiUdsCycqaug0xwTIs6sgSUznWmhUahqJnus4SkVJqMp"
    "hKhYLhMovrB/rKqXfKfVKgUrtC2nKhKmUi0XqFaktqzsKh0kiyK9JNIaHi2gps2rHSFnqGmaAyb4qiwtbKelpWen"
    "aCZuJp2n1qUuqPUoLqt7IFmsOaMYIM+lAigOKE2tMhj/LWor1SZIKIurgKxUqiafHaYkKKmklaQAgLygfiioLDIm"
    "xaVkq6Ogg6jVLF8nq6mIHm6rXSVxJ2geUCh1pIehOSsjrRGvO6jipn4sFKg4KjQocSjYKN0sSSoQqoOghicBofGo"
    "4Sq4q0+olSn0IOOq5KdjL0uu3ykNpTsucachqIcm7a4BG+8gFCk0Kt6s9i66IyOukqM3KRauGZo0rLAnXSYnrZ4t"
    "xS5tqY8uM58Pp6CjRKZMpAcrkSn0pVmieykOLBwp3ao7J3Qvd6w/JiKs9BihqO6lRisAABye8aYqqV0jb6mFqwqf"
    "6ingLKQjyJk9KI4seaQtLDEpcpE8q7eg/Si3qhyqfqquLFKkjyWOh+YsoKKbpE2wLqHbqBwwz6rQImAtVKWxpfSo"
    "FSY6oh0p9arvokQrgiiWoKaoHaUaJacqKrDeL3Qooin9nG2q66h/KWSccKKzqQopiam3q7qkvB05IZ4sZB4ip8Yl"
    "mKk+rDOkwySaL2agdijNobMkhax2KjAoPqaOLAqtCRJGKe+sxCrSsOicYagAgMQbMKxbLS8mK6bZJzqqrixGpTQs"
    "GityqJeobiEvKeSpDKHvHS6olyd4qhIpOCTVj2Em6SkLI1yjNS0FKHOeoSE5pkSwJ6wOqXuoxKbWpy2gdS0SKjuu"
    "0RGVLEurLybVqwsnNyU2KwOqMZ8XnDkqQ5rrqsetWSlcJVapjyO8rwcqzKwRKlqqfCeho9YkXaZMJUOqKyZcoUUv"
    "lKf9LRgppaP1n2ksz6XuIDIgDKsSKo0h2KE9lwKj9rD7qtIhC6TnKxgtHCR8IVsrjRobLOIq0ClPoqStkSA8q3oZ"
    "vSPSqUaoGbC1qZWtbKh7JYkmyRv/r36ndaSiqXKf+So/Ju2tzaabLH0sSyomJ1sqK6B3JcOnLh0EF2Yo1anAKP4N"
    "FikDqSksSqcoqNUbEKRwrXurbSjnopCjKKyCpHUnN6ljJNQqnaRDrsYsjaeXJDWo5pqKqCWmBqE0qXyqKym0JGmv"
    "7SjnAnalJSiIrIorSaivJ2opM6OMsIwlrKxOiDchfa8AgIOjDKcAqvQlFh1MrPGgRKyFLSytWikHKsUr1SDCLxKu"
    "NqsOFSoqliYDBAckjSVuoyEsdKoKqhGwISpNKe0sGShWraulc6X7MJ+iCCsZp9CnuKIwp1AsSSprKyumlKA+pYaZ"
    "EqX4pj8qg6oesDAu2iuvDAIkWqnPpOscsiu4qp2pjqn7gNOfSpskjtyk5ie5pwessa7XqbkqLKodJCyq7qeFqDKo"
    "3SgVn2ifTKQkKcEiOyYjJqEgChQsKb4lj58AgN+oO6qupm4soSddJHGqbqlxI84oFKklp88u1S/cI3yqXBjgKjck"
    "xiM6pXokt5HMJWccJyjtrSOs+KnuJV+sdyRHpoMrnqzYLJwpHCoxHlOnMy3zJtUpMRzCH84pZaiUKwwk/4wzLHcm"
    "FigJrjGo/CINLAGsB6anMGCS+iIrrasp451fqGSpYqRLJwklMi/wqTGgBShPpLEh9qC9Iy2raqVFIx6ipB5uqKmt"
    "fyCsoSOrBKrKqz2tzq8+qA2ttygAgC6h6qgVL6miFqexJQgsYCT4pAIu1K1mK7ImoSnYnAqkui16JjujDKIzLlgn"
    "ISWOIkwnmihJJMegea0DnP2r6i6IpC+o+SwNq3gs+6RSqhOlGKc0JUyogCgFMOEoN6rYLY2qty5tJoyoJy1Lq/Cm"
    "4iqxK+ekkyjWqQ0w3yvrLFMm6iMqKcquO6ZHJ2StgSobL5aikikJKt8v5qS5rEaqQqxXrdgsoihTqFoiNS3YqdEm"
    "2KyTLHWuJSRxrr6pz6agIj8ovRlWofgpqCzIsD6rUiZanXwsC60WLpsXXyivJgIZ7Chbol6sYynFnRktvygVpTUd"
    "T6gxr1wje6z3KoCpvylwJvMpUqs+J0kotq7lpoqjYqcYLTYkzaVWo7UsfKfMp9mpnJ1CLwerMKApIVaYnywBJ7kf"
    "JqwMql6oCSqpq3ktuC9jJ0QqRB5OpfIp8yjcphWhdZxdKR4sZKM/rpueH61Foz2iCyzXpa6oaiobIWkuzCxFqNij"
    "5SyJp72saioAgHOtUpqEKWosiqxtpw8oC6GKrqota6QGqAAdTSgfp5mgqaeDJvgYupmaLFUrW6xpJHcknKYpISSl"
    "eSjBpVsh3an4KYWj3Kfaqg0toqgFrcSmNis8qT4mhCAZrGiiSbArIF2o7iWSKbScbihbI+WjJ6yupxqp1ZSaKH8t"
    "cRsCKe0mAyS5qMwrtaTeLCOnIq90qRwoeqP/IfCWzqgkrHUkxCMYq7qo9iIEqjmtAqYGnOepwaQosAylnxsNoQCs"
    "MiIAAL4sF64/ny0l16peKNKhUaNEIlEsnagIJ14r8qpDLIClQRLPrB2o9C1SrnytHS/BoAcnMSoZqIonWajcqWyc"
    "06azq92rd6lDINMlFyhZqSooeyvALmCehKmwH+UnhKCDKTCmtKRNLO2kKilYI4MqvCpCLE4qDKrwrBukfaowrduY"
    "1qjkIC4qwqzLK56gbiy+Kc6hyiwvLh4tA5nxpFmtYih0KXOgGiBZLActiCAgreOowSE7qOWhaSptLa+hw5oAgP0j"
    "7ag3piqncyaSKZas3aIqqSGkrSkqraOo5Ko+qDoqBTD9AGejMyeWKkgp/qRNLMYtHixoI2QsNSAqrBMu6qj8Jl4J"
    "DiYrLb0tQynopBYkEBdiH6cl/SjppYetGajJKPmlPKQXqWgkhamqLbCt2aWRKosnJqyDJS0fRy2hhb4sLCTrKWuu"
    "aSRbJLYgSqlOJFGp5Cx3GYcm0Cx1KqOoF6iiFIAk2idvLRoohijuLCSsXir+JRKvyqiLrOiclisYqT8qkSOSLHyo"
    "tSuQqFQrKyW6osmuDaleIiwudQ1NqIIozyvzK2qtsxrKpCUjEyXXKsIrCye9r+uvaK4uLKGpryymj3snhKefKbAe"
    "4aWmr0ccLS0DrKwn6agkJR+sNCfmqact0Ck5K8spQCBGJScqoKjwkzgm5qyEpn4l+Bb8rZSiYyG7rOssvSTQKRes"
    "fCgRsY+tFqxAHfUUnichIWeoeqsbqwunbKd0GhatEq1iqbspHa46Kiomai1Cr1woxjAAgHCs96jkrXckYirTIfsg"
    "CaqVpTynv6nmqEOgFCpOIaminKseLDClICz8JJQsWaHJKaKqICuRKMaoZah0nukgHqX4KD2qJalKIy0kvJ7SqWuu"
    "vaXInfUudaCOLv0kbieuqbgq+6mgJsWlXaNRK7UkJaoiJ4cl6icGofooJiu0Jn+nhSjHrEEmzyCPoCikrCNyH7Wm"
    "76nkK/wr8ytGqXisMa0yqZSYhipVr8QgoaDirIWnfSyplQ8jkaQqq/eq+CwAAIGqUKtSqzktNKkVKJ8lEy7rIXUo"
    "C62xo7IjwKcYKW2vvCjELCcoHiz8qsmOoCgyK1stNSuKoSomjKg3KYWcAiNRpjQwQR1SqYIoPCtMqHQabaoKIqal"
    "/q2+pNkq76a7oUwpjCx2J7UsjyAIp5irVqC3oSSvsKGQJskhC5p3KSSleSvJpgWpTyXFppwqfaLWJhEqFxfcKaEj"
    "jh4+KPKmma9WKsspPiaEps0nD6cVn6erm6tonj8oOydULSqpNSgAgAiqQClgJHogzCN2KEImDaebobetxSvAr8gc"
    "n6NZJyGZSS3poZCnDqYqI+6lB62fIVKe4CPbq3cq8yumrpyrriFXrasnmqgzKasqTyknqVIkDShKLqOrTqN2LKGl"
    "qSNNrS4qYJ5XKKopWS0DpxuwHKl6K84taB+Zo34lfaGBLYgq"
)


def test_onnx_model_matches_the_fp32_reference() -> None:
    reference = np.frombuffer(base64.b64decode(REFERENCE_B64), dtype=np.float16)
    reference = reference.reshape(len(REFERENCE_SENTENCES), 384).astype(np.float32)
    vectors = default_embeddings().encode(REFERENCE_SENTENCES)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() > 0.98, cosine


def test_vectors_do_not_depend_on_the_batch() -> None:
    model = default_embeddings()
    alone = model.encode(REFERENCE_SENTENCES[:1])
    together = model.encode(REFERENCE_SENTENCES * 3)
    np.testing.assert_array_equal(alone[0], together[0])
    np.testing.assert_array_equal(together[0], together[4])


async def test_embed_batch_is_async_and_handles_empty_input() -> None:
    model = default_embeddings()
    vectors = await model.embed_batch(["hello world"] * 6)
    assert vectors.shape == (6, 384)
    assert (await model.embed_batch([])).shape == (0, 384)
    similar = await model.embed_batch(["weather in Paris", "forecast for Paris", "tax return"])
    assert similar[0] @ similar[1] > similar[0] @ similar[2]


class CountingEmbeddings(IEmbeddingService):
    """Wraps the real model and counts what it is asked to embed."""

    model_name = "counting-minilm"
    dimension = 384

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.cache_id = "counting-test"

    async def embed_batch(self, texts: Sequence[str]) -> Any:
        self.calls.append(len(texts))
        return await default_embeddings().embed_batch(texts)


TOOLS = [
    Tool(name="get_weather", description="Weather forecast for a city."),
    Tool(name="send_email", description="Send an email to someone."),
    Tool(name="read_file", description="Read a file from disk."),
]


async def test_second_index_build_does_not_re_embed(tmp_path) -> None:
    service = CountingEmbeddings()
    first = ToolSelectionCoordinator(embeddings=service, cache_dir=tmp_path, max_tools=1)
    chosen = await first._semantic_selection("rain tomorrow?", TOOLS)
    assert [t.name for t in chosen] == ["get_weather"]
    assert service.calls == [2 * len(TOOLS), 1]  # description and name fields, then the query
    service.calls.clear()
    await first._semantic_selection("write to my boss", TOOLS)  # same index: the query only
    assert service.calls == [1]

    # Fresh Tool objects with the same content, in a new coordinator (a restart): the
    # vectors come from the disk cache; only the query is embedded.
    service.calls.clear()
    again = [Tool(**t.model_dump()) for t in TOOLS]
    second = ToolSelectionCoordinator(embeddings=service, cache_dir=tmp_path, max_tools=1)
    await second._semantic_selection("rain tomorrow?", again)
    assert service.calls == [1]
    assert list(tmp_path.glob("*.sqlite"))

    # A subset, and a catalogue with one new tool: only the new texts are embedded.
    service.calls.clear()
    await second._semantic_selection("mail", again[:2])
    assert service.calls == [1]
    service.calls.clear()
    extra = Tool(name="calculator", description="Evaluate arithmetic.")
    await second._semantic_selection("what is 2+2", [*again, extra])
    assert service.calls == [2, 1]


async def test_cache_survives_an_unusable_directory(tmp_path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    embedder = CachedEmbedder(CountingEmbeddings(), blocker / "sub")
    vectors = await embedder.embed_documents(["a", "b", "a"])
    assert vectors.shape == (3, 384)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embedder.embedded_texts == 2


@pytest.mark.parametrize("cache_dir", [False])
async def test_memory_only_cache(cache_dir: bool) -> None:
    embedder = CachedEmbedder(CountingEmbeddings(), cache_dir)
    assert embedder.disk is None
    await embedder.embed_documents(["x", "y"])
    await embedder.embed_documents(["y", "x"])
    assert embedder.model_calls == 1


class _FakeOpenAIClient:
    """The slice of ``openai.AsyncOpenAI`` the adapter uses."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.embeddings = self

    async def create(self, *, model: str, input: list[str], **extra: Any) -> Any:
        from types import SimpleNamespace

        self.requests.append({"model": model, "input": input, **extra})
        rows = [
            SimpleNamespace(index=i, embedding=[float(len(t)), 1.0]) for i, t in enumerate(input)
        ]
        return SimpleNamespace(data=rows[::-1])  # out of order on purpose


async def test_openai_adapter_batches_orders_and_normalises(monkeypatch) -> None:
    from victor.selection.embeddings.openai import OpenAIEmbeddings

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    client = _FakeOpenAIClient()
    service = OpenAIEmbeddings(model="text-embedding-3-small", client=client, batch_size=2)
    vectors = await service.embed_batch(["a", "bbb", ""])
    assert [len(r["input"]) for r in client.requests] == [2, 1]
    assert client.requests[1]["input"] == [" "]  # empty text is not sent as ""
    np.testing.assert_allclose(vectors[1], np.array([3.0, 1.0]) / np.sqrt(10.0), rtol=1e-6)
    assert service.cache_id == "openai:https://api.openai.com/v1:text-embedding-3-small:native"
    ranked = ToolSelectionCoordinator(embeddings=service, cache_dir=False, max_tools=1)
    assert len(await ranked._semantic_selection("x", TOOLS)) == 1


async def test_sentence_transformers_adapter_wraps_a_model() -> None:
    from victor.selection.embeddings.sentence_transformers import SentenceTransformerEmbeddings

    class FakeModel:
        def get_sentence_embedding_dimension(self) -> int:
            return 384

        def encode(self, texts, **options):
            assert options["normalize_embeddings"] is True
            return default_embeddings().encode(texts)

    service = SentenceTransformerEmbeddings("fake", model=FakeModel())
    assert service.dimension == 384
    vectors = await service.embed_batch(["weather in Paris", "forecast for Paris"])
    assert vectors.shape == (2, 384) and vectors[0] @ vectors[1] > 0.5


async def test_openai_cache_id_names_the_endpoint_and_aclose_closes_its_client() -> None:
    from victor.selection.embeddings.openai import OpenAIEmbeddings

    local = OpenAIEmbeddings("nomic-embed-text", base_url="http://127.0.0.1:11434/v1/", api_key="x")
    remote = OpenAIEmbeddings("nomic-embed-text", base_url="http://gpu-box:8000/v1", api_key="x")
    assert local.cache_id != remote.cache_id and "127.0.0.1:11434/v1:" in local.cache_id
    client = local._get_client()
    assert local.cache_id.startswith("openai:http://127.0.0.1:11434/v1:")
    await local.aclose()
    await local.aclose()
    assert client.is_closed() and local._client is None
    given = _FakeOpenAIClient()
    given.base_url = "http://other/v1"
    borrowed = OpenAIEmbeddings(client=given)
    assert "http://other/v1" in borrowed.cache_id
    await borrowed.aclose()  # a client passed in is the caller's to close
    assert borrowed._client is given


def test_onnx_cache_id_follows_the_model_files(tmp_path) -> None:
    import os

    from victor.selection.embeddings.onnx import OnnxEmbeddings

    def model_dir(parent, content: bytes):
        folder = parent / "all-MiniLM-L6-v2"
        folder.mkdir(parents=True)
        (folder / "model_int8.onnx").write_bytes(content)
        (folder / "tokenizer.json").write_text("{}")
        return folder

    first = model_dir(tmp_path / "a", b"x" * 10)
    other = model_dir(tmp_path / "b", b"y" * 11)  # same folder name, other model
    before = OnnxEmbeddings(first).cache_id
    assert before == OnnxEmbeddings(first).cache_id
    assert before != OnnxEmbeddings(other).cache_id
    (first / "model_int8.onnx").write_bytes(b"z" * 10)  # re-quantised in place
    stat = (first / "model_int8.onnx").stat()
    os.utime(first / "model_int8.onnx", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert OnnxEmbeddings(first).cache_id != before
    assert default_embeddings().cache_id.startswith("onnx:all-MiniLM-L6-v2:model_int8.onnx:256:")


def test_onnx_queries_during_the_first_load_wait_for_it(monkeypatch) -> None:
    import threading
    import time

    import onnxruntime as ort

    from victor.selection.embeddings.onnx import OnnxEmbeddings

    real = ort.InferenceSession
    loading = threading.Event()

    class SlowSession:
        def __init__(self, *args, **kwargs) -> None:
            self._session = real(*args, **kwargs)

        def get_inputs(self):
            loading.set()
            time.sleep(0.3)  # the window where a half-loaded model used to be visible
            return self._session.get_inputs()

        def run(self, *args, **kwargs):
            return self._session.run(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", SlowSession)
    model = OnnxEmbeddings()
    loader = threading.Thread(target=model.encode, args=(["first text"],))
    loader.start()
    assert loading.wait(10)
    vectors = model.encode(["a query during the load"])
    loader.join()
    assert vectors.shape == (1, 384)


async def test_cached_embedder_aclose_closes_sqlite_and_reopens_on_use(tmp_path) -> None:
    embedder = CachedEmbedder(CountingEmbeddings(), tmp_path)
    await embedder.embed_documents(["a", "b"])
    assert embedder.disk is not None and embedder.disk._conn is not None
    await embedder.aclose()
    await embedder.aclose()
    assert embedder.disk._conn is None
    fresh = CachedEmbedder(CountingEmbeddings(), tmp_path)
    await fresh.embed_documents(["a", "b"])
    assert fresh.model_calls == 0  # the vectors were committed before the close
    await fresh.aclose()
