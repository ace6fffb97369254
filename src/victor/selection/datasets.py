"""Tool-retrieval data for the benchmark: MetaTool, LiveMCPBench, synthetic catalogues.

MetaTool (HowieHwong/MetaTool, MIT): 199 tools, 20,614 single-tool queries and 497
multi-tool queries. Queries are split in two halves by a hash of their text: ``tune``
(the only queries any default was chosen on) and ``test`` (the only ones reported).
LiveMCPBench (icip-cas/LiveMCPBench, Apache-2.0): 527 MCP tools with JSON schemas and 95
tasks whose annotations name the gold tools; nothing was tuned on it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from victor.protocols import Tool

__all__ = [
    "Dataset",
    "Query",
    "default_data_dir",
    "load_livemcpbench",
    "load_metatool",
    "synthetic_catalogue",
]


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    gold: frozenset[str]


@dataclass(slots=True)
class Dataset:
    name: str
    tools: list[Tool]
    queries: list[Query]
    notes: dict[str, object] = field(default_factory=dict)


def default_data_dir() -> Path:
    """``../shared/data/tool-retrieval`` beside the source checkout (or the cwd)."""
    candidates = [
        Path(__file__).resolve().parents[3].parent / "shared/data/tool-retrieval",
        Path.cwd().parent / "shared/data/tool-retrieval",
        Path.cwd() / "shared/data/tool-retrieval",
    ]
    return next((p for p in candidates if p.is_dir()), candidates[0])


def split_of(text: str) -> str:
    """``"tune"`` or ``"test"``: a stable half of the queries, by hash of the text."""
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "test"


def load_metatool(
    root: Path, *, split: str = "test", sample: int | None = 2000, seed: int = 0
) -> Dataset:
    """MetaTool's single-tool queries of one split (``split="multi"``: the multi-tool
    queries, never tuned on). ``sample`` draws that many (None: all)."""
    base = Path(root) / "MetaTool"
    descriptions: dict[str, str] = json.loads((base / "plugin_des.json").read_text())
    tools = [Tool(name=name, description=desc) for name, desc in descriptions.items()]
    gold: dict[str, set[str]] = defaultdict(set)
    if split == "multi":
        for item in json.loads((base / "data/multi_tool_query_golden.json").read_text()):
            gold[item["query"]].update(item["tool"])
    else:
        with (base / "data/all_clean_data.csv").open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if split_of(row["Query"]) == split:
                    gold[row["Query"]].add(row["Tool"])
    texts = sorted(gold)
    total = len(texts)
    if sample is not None and sample < total:
        texts = random.Random(seed).sample(texts, sample)
    queries = [Query(t, frozenset(g for g in gold[t] if g in descriptions)) for t in texts]
    return Dataset(f"MetaTool ({split})", tools, [q for q in queries if q.gold], {"pool": total})


def load_livemcpbench(root: Path) -> Dataset:
    """LiveMCPBench's 527 tools and the 94 tasks with at least one matched gold tool."""
    base = Path(root) / "LiveMCPBench"
    tools: list[Tool] = []
    for server in json.loads((base / "tools.json").read_text()):
        for group in server["tools"].values():
            for spec in group["tools"]:
                schema = dict(spec.get("inputSchema") or {"type": "object", "properties": {}})
                tools.append(
                    Tool(
                        name=spec["name"][:128],
                        description=spec.get("description") or "",
                        parameters=schema,
                        metadata={"server": server["name"]},
                    )
                )
    names = {t.name for t in tools}
    queries: list[Query] = []
    mentions = matched = 0
    for task in json.loads((base / "all_annotations.json").read_text()):
        lines = task["Annotator Metadata"]["Tools"].splitlines()
        wanted = [re.sub(r"^\s*\d+[.)]\s*", "", line).strip() for line in lines]
        wanted = [w for w in wanted if w]
        mentions += len(wanted)
        hits = frozenset(w for w in wanted if w in names)
        matched += sum(1 for w in wanted if w in names)
        if hits:
            queries.append(Query(task["Question"], hits))
    notes = {"mentions": mentions, "matched": matched, "tasks": len(queries)}
    return Dataset("LiveMCPBench", tools, queries, notes)


def _words(text: str) -> list[str]:
    return text.split()


_VERBS = _words(
    "get list create update delete search send fetch convert summarize translate \
schedule cancel book analyze export import validate render compress upload download \
track monitor estimate compare generate classify extract merge archive"
)
_OBJECTS = _words(
    "invoice order customer ticket email calendar event flight hotel weather stock \
repository issue pull_request file image video podcast recipe contract payment refund \
shipment route playlist document spreadsheet chart report meeting note task lead \
campaign dataset model alert log metric server container cluster domain certificate \
user group permission budget expense receipt loan mortgage policy claim patient \
appointment prescription course lesson quiz article comment review product coupon"
)
_QUALIFIERS = _words(
    "pdf csv json daily weekly monthly latest archived draft public private \
team personal bulk summary detailed remote local secure realtime historical"
)
_SERVICES = _words("Acme Globex Initech Umbrella Hooli Stark Wayne Wonka Soylent Tyrell")


def synthetic_catalogue(
    size: int, *, queries: int = 200, seed: int = 7
) -> tuple[list[Tool], list[str]]:
    """``size`` plausible tools (unique names, descriptions, 1-3 parameters) and
    ``queries`` requests over them, for latency at catalogue sizes no data set has."""
    rng = random.Random(seed)
    tools: list[Tool] = []
    for i in range(size):
        verb, obj, qual = rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_QUALIFIERS)
        service = rng.choice(_SERVICES)
        noun = obj.replace("_", " ")
        params = {
            p: {"type": "string", "description": f"the {p.replace('_', ' ')}"}
            for p in rng.sample([f"{obj}_id", "query", "date", "limit", "format", "owner"], 3)[
                : rng.randint(1, 3)
            ]
        }
        tools.append(
            Tool(
                name=f"{verb}_{qual}_{obj}_{i}",
                description=(
                    f"{verb.capitalize()} {qual} {noun} records in {service}. "
                    f"Use it to {rng.choice(_VERBS)} or {verb} a {noun} "
                    f"by {rng.choice(list(params))}."
                ),
                parameters={"type": "object", "properties": params},
            )
        )
    texts = []
    for _ in range(queries):
        verb, obj, qual = rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_QUALIFIERS)
        service = rng.choice(_SERVICES)
        texts.append(
            f"Please {verb} the {qual} {obj.replace('_', ' ')} for {service} from last week"
        )
    return tools, texts
