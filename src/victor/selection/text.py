"""Text preparation for tool retrieval: identifier splitting, stemming, tool documents.

Tool names are identifiers (``readFile``, ``get_weather``, ``PDF&URLTool``) while queries
are prose, so names are split into words before anything is matched. Keyword retrieval
also stems (PyStemmer, Snowball English) and drops function words; the embedding model
gets readable text instead (``victor.selection.semantic``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor.protocols import Tool

__all__ = [
    "STOPWORDS",
    "Tokenizer",
    "keyword_document",
    "split_identifier",
]

# lowerUPPER, UPPERUpper (acronym followed by a word), letter<->digit boundaries.
_CAMEL = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"
)
_NON_WORD = re.compile(r"[^0-9A-Za-z\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]+")
# Latin words, or single CJK characters (no spaces between words in those scripts).
_TOKEN = re.compile(r"[a-z0-9]+|[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

# Function words plus the request phrasing every query shares ("can you help me ...").
STOPWORDS: frozenset[str] = frozenset(
    """a an and are as at be been but by can could do does for from had has have how i if in
    into is it its let me my no not of on or our please s so some such than that the their
    them then there these they this those to us was we were what when where which who will
    with would you your yours im want need like help tell give show find get using use
    any""".split()  # noqa: SIM905 - a word list reads better as text
)


def split_identifier(text: str) -> str:
    """``getHTTPResponse_v2`` -> ``get HTTP Response v 2``: camelCase, snake_case, kebab,
    dots and symbols become spaces so that names read as words."""
    return _CAMEL.sub(" ", _NON_WORD.sub(" ", text)).strip()


_LOCAL = threading.local()


def _stemmer() -> Any:
    """This thread's Snowball stemmer: PyStemmer objects are not safe to share between
    threads, and the keyword index is built in worker threads while the loop tokenises
    queries."""
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        import Stemmer  # PyStemmer: lazy, it is an optional dependency

        stemmer = _LOCAL.stemmer = Stemmer.Stemmer("english")
    return stemmer


class Tokenizer:
    """Lower-case, split identifiers, drop stopwords, stem. Stems are memoised per word,
    which is what keeps query tokenisation in the microseconds.

    One tokenizer may serve the event loop and worker threads at once: a call reads the
    memo, computes what is missing into its own result, and only then stores the new
    stems (under a lock), clearing the memo when it passes ``memo_limit`` words (bounded
    memory on adversarial input). A clear never changes a result already being built.
    """

    def __init__(
        self,
        stopwords: Iterable[str] | None = None,
        *,
        stem: bool = True,
        memo_limit: int = 200_000,
    ) -> None:
        self.stopwords = frozenset(STOPWORDS if stopwords is None else stopwords)
        self.stem = stem
        self.memo_limit = memo_limit
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def words(self, text: str) -> list[str]:
        """The lower-cased words of ``text`` (identifiers split), stopwords kept."""
        return _TOKEN.findall(split_identifier(text).lower())

    def __call__(self, text: str) -> list[str]:
        """The index terms of ``text``."""
        cache = self._cache
        stopwords = self.stopwords
        out: list[str] = []
        missing: dict[str, list[int]] = {}
        for word in self.words(text):
            if word in stopwords:
                continue
            stemmed = cache.get(word)
            if stemmed is None:
                missing.setdefault(word, []).append(len(out))
                stemmed = word
            out.append(stemmed)
        if missing:
            todo = list(missing)
            stems = _stemmer().stemWords(todo) if self.stem else todo
            for word, stemmed in zip(todo, stems, strict=True):
                for position in missing[word]:
                    out[position] = stemmed
            self._remember(todo, stems)
        return out

    def _remember(self, words: list[str], stems: list[str]) -> None:
        limit = max(0, self.memo_limit)
        words, stems = words[:limit], stems[:limit]
        with self._lock:
            cache = self._cache
            if len(cache) + len(words) > limit:
                cache.clear()
            cache.update(zip(words, stems, strict=True))


def keyword_document(tool: Tool, *, name_weight: int = 2) -> str:
    """What BM25 indexes: the split name (repeated: it is the densest evidence), the
    description, tags, domain, parameter names and descriptions."""
    name = split_identifier(tool.name)
    parts = [name] * max(1, name_weight)
    parts += [tool.description, " ".join(tool.tags), tool.domain or ""]
    props = tool.parameters.get("properties") or {}
    for pname, spec in props.items():
        desc = spec.get("description", "") if isinstance(spec, dict) else ""
        parts.append(f"{split_identifier(str(pname))} {desc}")
    return " ".join(p for p in parts if p)
