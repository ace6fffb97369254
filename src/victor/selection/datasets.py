"""Tool-retrieval data for the benchmark: MetaTool, LiveMCPBench, Gorilla, synthetic catalogues.

MetaTool (HowieHwong/MetaTool, MIT): 199 tools, 20,614 single-tool queries and 497
multi-tool queries. Queries are split in two halves by a hash of their text: ``tune``
(the only queries any default was chosen on) and ``test`` (the only ones reported).
LiveMCPBench (icip-cas/LiveMCPBench, Apache-2.0): 527 MCP tools with JSON schemas and 95
tasks whose annotations name the gold tools. Gorilla APIBench (ShishirPatil/gorilla,
Apache-2.0, as rebuilt in the data folder): 1,057 model APIs of three hubs and 1,770
queries, each ranked among its own hub's tools only (three catalogues).
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
    "DataError",
    "Dataset",
    "Query",
    "load_gorilla",
    "load_livemcpbench",
    "load_metatool",
    "load_user_catalogue",
    "load_user_queries",
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
    # Separate catalogues whose queries are ranked among their own tools only (Gorilla's
    # hubs); empty when the data set is one catalogue.
    parts: list[Dataset] = field(default_factory=list)

    def catalogues(self) -> list[Dataset]:
        """What to rank: the parts, or the data set itself."""
        return self.parts or [self]


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


def load_gorilla(root: Path, *, split: str | None = None) -> Dataset:
    """Gorilla APIBench per hub: one part per hub (907 Hugging Face, 56 TF Hub and 94
    Torch Hub tools), each query ranked among its own hub's tools. ``split`` keeps the
    ``tune`` or ``test`` half of the queries (None: all)."""
    base = Path(root) / "Gorilla"
    by_hub: dict[str, list[Tool]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in (base / "tools.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        names[item["id"]] = item["name"]
        by_hub[item["hub"]].append(
            Tool(
                name=item["name"],
                description=item["description"],
                domain=item["domain"],
                tags=[item["functionality"]] if item.get("functionality") else [],
                parameters=item["parameters"],
            )
        )
    queries: dict[str, list[Query]] = defaultdict(list)
    for line in (base / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if split is None or item["split"] == split:
            gold = frozenset(names[g] for g in item["gold"])
            queries[item["hub"]].append(Query(item["query"], gold))
    parts = [Dataset(f"Gorilla {hub}", tools, queries[hub]) for hub, tools in by_hub.items()]
    label = "Gorilla (per hub)" if split is None else f"Gorilla ({split}, per hub)"
    return Dataset(
        label,
        [t for part in parts for t in part.tools],
        [q for part in parts for q in part.queries],
        {"hubs": {p.name: (len(p.tools), len(p.queries)) for p in parts}},
        parts,
    )


class DataError(ValueError):
    """A user's tool or query file is unusable; the message is one line naming the file,
    the line or entry, and what is wrong."""


def _tool_from(item: object, where: str) -> Tool:
    """A tool from one entry of a catalogue file: Victor's own fields, the OpenAI shape
    (``{"type": "function", "function": {...}}``) or the MCP shape (``inputSchema``)."""
    if not isinstance(item, dict):
        raise DataError(f"{where}: a tool must be a JSON object, not {type(item).__name__}")
    spec = item.get("function") if isinstance(item.get("function"), dict) else item
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(f'{where}: the tool has no "name" (a non-empty string)')
    schema = spec.get("parameters") or spec.get("inputSchema") or {}
    tags = spec.get("tags") or []
    try:
        return Tool(
            name=name[:128],
            description=str(spec.get("description") or ""),
            parameters=schema if isinstance(schema, dict) else {},
            domain=spec.get("domain"),
            tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
        )
    except ValueError as exc:
        problem = str(exc).splitlines()[0]
        raise DataError(f"{where}: tool {name!r} is not valid: {problem}") from None


def load_user_catalogue(path: Path) -> list[Tool]:
    """Tools from a JSON file: a list of tools, or an object with a ``"tools"`` list
    (an MCP ``tools/list`` result). Each tool: ``name``, ``description`` and optionally
    ``parameters`` (JSON schema), ``domain``, ``tags``; OpenAI and MCP shapes work too."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the tool file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: the tool file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    items = data.get("tools") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise DataError(f'{path}: expected a JSON list of tools (or {{"tools": [...]}})')
    tools = [_tool_from(item, f"{path}: tool {i + 1}") for i, item in enumerate(items)]
    seen: set[str] = set()
    for tool in tools:
        if tool.name in seen:
            raise DataError(f"{path}: two tools are named {tool.name!r}")
        seen.add(tool.name)
    return tools


def load_user_queries(path: Path, tool_names: set[str]) -> list[Query]:
    """Labelled queries from a JSONL file, one object a line:
    ``{"query": "...", "gold": ["tool_a", "tool_b"]}`` (``gold`` may be one name).
    Blank lines are skipped; every gold name must be a tool of the catalogue."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the query file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: the query file is not UTF-8 text") from None
    queries: list[Query] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON: {exc.msg}") from None
        text = item.get("query") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(f'{where}: expected {{"query": "...", "gold": [tool names]}}')
        gold = item.get("gold")
        gold = [gold] if isinstance(gold, str) else gold
        if not isinstance(gold, list) or not gold or not all(isinstance(g, str) for g in gold):
            raise DataError(f'{where}: "gold" must be a tool name or a non-empty list of them')
        unknown = [g for g in gold if g not in tool_names]
        if unknown:
            raise DataError(f"{where}: gold tool {unknown[0]!r} is not in the tool file")
        queries.append(Query(text, frozenset(gold)))
    if not queries:
        raise DataError(f"{path}: no queries")
    return queries


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
