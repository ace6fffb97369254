"""Development-time search for the default hybrid ranking, leave one data set out.

Computes, once per data set, every query's score vector of each signal (BM25 per field,
MiniLM cosine per field; cached in an .npz), then scores fusion candidates offline:
for each held-out data set the candidate is chosen on the other two only, and its
figure on the held-out set is reported. Not part of the package.

    PYTHONPATH=src python scripts/selection_experiments.py DATA_DIR CACHE_DIR [FLAGS]

FLAGS widen the z-score families' candidates (one BM25 document only): ``--bm25`` adds
BM25 with other (k1, b); ``--one-text`` adds a semantic side that embeds the split name
and the description as one text (alone, or with the name field at weight 0.2);
``--one-only`` keeps only that one text (one model run per tool, no name field).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import numpy as np

from victor.selection.bm25 import BM25Index
from victor.selection.datasets import Dataset, load_gorilla, load_livemcpbench, load_metatool
from victor.selection.embeddings.cache import CachedEmbedder
from victor.selection.embeddings.onnx import OnnxEmbeddings
from victor.selection.semantic import description_field, name_field
from victor.selection.text import keyword_document, split_identifier


def name_doc(t):
    return split_identifier(t.name)


def desc_doc(t):
    return " ".join(p for p in [t.description, " ".join(t.tags), t.domain or ""] if p)


def param_doc(t):
    props = t.parameters.get("properties") or {}
    parts = []
    for pname, spec in props.items():
        desc = spec.get("description", "") if isinstance(spec, dict) else ""
        parts.append(f"{split_identifier(str(pname))} {desc}")
    return " ".join(parts)


def name_description_field(t):
    """One text: the split name, then the shipped description field."""
    return f"{name_field(t)}: {description_field(t)}"


BM25_PARAMS = [(1.2, 0.75), (1.2, 0.5), (1.2, 0.3), (1.5, 0.75), (0.9, 0.75)]


def bm25_key(k1, b):
    return "kw" if (k1, b) == (1.2, 0.75) else f"kw_{k1}_{b}"


def plain_description_field(t):
    """The shipped description field without its "domain tags:" head."""
    plain = t.model_copy(update={"domain": None, "tags": []})
    return description_field(plain)


async def signals(part: Dataset, embedder: CachedEmbedder) -> dict[str, np.ndarray]:
    tools, queries = part.tools, part.queries
    out: dict[str, np.ndarray] = {}
    docs = {
        "kw": [keyword_document(t) for t in tools],
        "kw_name": [name_doc(t) for t in tools],
        "kw_desc": [desc_doc(t) for t in tools],
        "kw_param": [param_doc(t) for t in tools],
    }
    for key, texts in docs.items():
        if not any(texts):
            out[key] = np.zeros((len(queries), len(tools)), np.float32)
            continue
        index = BM25Index(texts)
        out[key] = np.stack([index.scores(q.text) for q in queries]).astype(np.float32)
    for k1, b in BM25_PARAMS[1:]:
        index = BM25Index(docs["kw"], k1=k1, b=b)
        out[bm25_key(k1, b)] = np.stack([index.scores(q.text) for q in queries]).astype(np.float32)
    qv = await embedder.embed_documents([q.text for q in queries])
    for key, fn in (
        ("cos_desc", plain_description_field),
        ("cos_name", name_field),
        ("cos_descdom", description_field),
        ("cos_namedesc", name_description_field),
    ):
        tv = await embedder.embed_documents([fn(t) for t in tools])
        out[key] = (qv @ tv.T).astype(np.float32)
    names = [t.name for t in tools]
    gold = np.zeros((len(queries), len(tools)), bool)
    for i, q in enumerate(queries):
        for j, n in enumerate(names):
            if n in q.gold:
                gold[i, j] = True
    out["gold"] = gold
    out["ngold"] = np.array([len(q.gold) for q in queries])
    out["coverage"] = query_coverage(BM25Index(docs["kw"]), [q.text for q in queries])
    return out


def query_coverage(index: BM25Index, queries: list[str]) -> np.ndarray:
    """Share of each query's distinct words (stemmed, stop words dropped) that the
    catalogue's BM25 index knows: a label-free signal of how much BM25 can say."""
    shares = []
    for text in queries:
        words = set(index.tokenizer(text))
        shares.append(len(index.term_ids(text)) / len(words) if words else 0.0)
    return np.array(shares, np.float32)


def load_sets(root: Path) -> dict[str, Dataset]:
    return {
        "metatool_tune": load_metatool(root, split="tune", sample=2000, seed=1),
        "metatool_test": load_metatool(root, split="test", sample=2000),
        "metatool_multi": load_metatool(root, split="multi", sample=None),
        "livemcp": load_livemcpbench(root),
        "gorilla": load_gorilla(root),
    }


async def compute(root: Path, cache: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    embedder = CachedEmbedder(OnnxEmbeddings(threads=1), cache / "emb")
    result = {}
    for name, data in load_sets(root).items():
        parts = []
        for i, part in enumerate(data.catalogues()):
            path = cache / f"{name}-{i}.npz"
            if not path.exists() or "cos_namedesc" not in np.load(path).files:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(path, **(await signals(part, embedder)))
            parts.append(dict(np.load(path)))
        result[name] = parts
    return result


# ------------------------------------------------------------------ fusion candidates


def mm(x):
    lo = x.min(axis=1, keepdims=True)
    span = x.max(axis=1, keepdims=True) - lo
    return np.where(span > 1e-12, (x - lo) / np.maximum(span, 1e-12), 0.0)


def z(x):
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return np.where(sd > 1e-12, (x - mu) / np.maximum(sd, 1e-12), 0.0)


def ranks(x):
    order = np.argsort(-x, axis=1, kind="stable")
    r = np.empty_like(order)
    rows = np.arange(x.shape[0])[:, None]
    r[rows, order] = np.arange(x.shape[1])[None, :]
    return r.astype(np.float32)


def keyword(s, fields):
    if fields == "doc":
        return s["kw"]
    if fields[0] == "bm25":  # one document, other (k1, b)
        return s[bm25_key(*fields[1:])]
    wn, wp = fields
    return s["kw_desc"] + wn * s["kw_name"] + wp * s["kw_param"]


def semantic(s, nw, dom):
    if dom == "one":  # one text: name, then description; nw on a separate name field
        return (1 - nw) * s["cos_namedesc"] + nw * s["cos_name"]
    desc = s["cos_descdom"] if dom else s["cos_desc"]
    return (1 - nw) * desc + nw * s["cos_name"]


def sharpness(x):
    """How far each row's top score stands out of its top 10: (s1 - s2) / (s1 - s10)."""
    top = -np.sort(-x, axis=1)[:, :10]
    span = top[:, 0] - top[:, -1]
    return np.where(span > 1e-9, (top[:, 0] - top[:, 1]) / np.maximum(span, 1e-9), 0.0)


def query_signal(feature, sem, kw, coverage):
    """A per-query signal in [0, 1] that needs no labels."""
    if feature == "bm25 top-1 sharpness":
        return sharpness(kw)
    if feature == "semantic top-1 sharpness":
        return sharpness(sem)
    if feature == "query words indexed":
        return coverage
    raise ValueError(feature)


def fuse(method, param, sem, kw, coverage=None):
    if method == "semantic":
        return sem
    if method == "keyword":
        return kw
    if method == "minmax":
        return param * mm(sem) + (1 - param) * mm(kw)
    if method == "zscore":
        return param * z(sem) + (1 - param) * z(kw)
    if method == "rrf":
        w, k = param
        return w / (k + ranks(sem) + 1) + (1 - w) / (k + ranks(kw) + 1)
    if method == "catz":  # one z per catalogue (from all queries): calibration's bound
        zs = (sem - sem.mean()) / max(float(sem.std()), 1e-12)
        zk = (kw - kw.mean()) / max(float(kw.std()), 1e-12)
        return param * zs + (1 - param) * zk
    if method == "zquery":  # z-scores, alpha set per query from a label-free signal
        feature, a, b = param
        alpha = np.clip(a + b * (query_signal(feature, sem, kw, coverage) - 0.5), 0, 1)
        return alpha[:, None] * z(sem) + (1 - alpha[:, None]) * z(kw)
    if method == "zmax":  # z-scores, but BM25 without any match stays at zero
        zk = np.where(kw.max(axis=1, keepdims=True) > 0, z(kw), 0.0)
        return param * z(sem) + (1 - param) * zk
    raise ValueError(method)


def metrics(scores, s):
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(s["gold"], top, axis=1)
    ng = s["ngold"]
    r5 = hits[:, :5].sum(1) / ng
    disc = 1 / np.log2(np.arange(2, 12))
    dcg = (hits * disc).sum(1)
    ideal = np.array([disc[: min(10, g)].sum() for g in ng])
    return r5, dcg / ideal


def evaluate(parts, cfg):
    r5s, nds = [], []
    for s in parts:
        sem = semantic(s, cfg["nw"], cfg["dom"])
        kw = keyword(s, cfg["fields"])
        r5, nd = metrics(fuse(cfg["method"], cfg["param"], sem, kw, s["coverage"]), s)
        r5s.append(r5)
        nds.append(nd)
    return float(np.concatenate(r5s).mean()), float(np.concatenate(nds).mean())


FAMILIES = {
    "hybrid min-max": [("minmax", a) for a in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)],
    "hybrid z-score": [("zscore", a) for a in (0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)],
    "hybrid RRF": [("rrf", (w, k)) for w in (0.5, 0.6, 0.7, 0.8) for k in (10, 60)],
    # alpha = a + b * (signal - 0.5), per query; b = 0 is plain z-score, so left out
    "hybrid z-score, alpha per query": [
        ("zquery", (f, a, b))
        for f in ("bm25 top-1 sharpness", "semantic top-1 sharpness", "query words indexed")
        for a in (0.6, 0.7, 0.75, 0.8, 0.9)
        for b in (-0.4, -0.2, 0.2, 0.4)
    ],
}


def candidates(family):
    """Field-aware BM25 (name, description, parameters weighted apart) or one document;
    the name field's weight in the semantic score; the fusion's own parameter. With
    ``--extended``: one BM25 document under other (k1, b), and the semantic side as one
    text (name, then description) alone or with the name field beside it."""
    if EXTENDED:
        fields = ["doc"]
        if "--bm25" in sys.argv:
            fields += [("bm25", k1, b) for k1, b in BM25_PARAMS[1:]]
        sides = [(True, nw) for nw in (0.2, 0.3, 0.4)]
        if "--one-text" in sys.argv:
            sides += [("one", nw) for nw in (0.0, 0.2)]
        if "--one-only" in sys.argv:  # one embedding per tool: half the model runs
            sides = [("one", 0.0)]
        for f, (dom, nw), (m, p) in itertools.product(fields, sides, FAMILIES[family]):
            yield {"fields": f, "nw": nw, "dom": dom, "method": m, "param": p}
        return
    fields = ["doc", (2.0, 1.0), (1.0, 0.5)]
    for f, nw, (m, p) in itertools.product(fields, (0.2, 0.3, 0.4), FAMILIES[family]):
        yield {"fields": f, "nw": nw, "dom": True, "method": m, "param": p}


EXTENDED = any(f in sys.argv for f in ("--bm25", "--one-text", "--one-only"))


REPORT = {"MetaTool": "metatool_test", "LiveMCPBench": "livemcp", "Gorilla": "gorilla"}
CHOOSE = {"MetaTool": "metatool_tune", "LiveMCPBench": "livemcp", "Gorilla": "gorilla"}


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root, cache = Path(args[0]), Path(args[1])
    data = asyncio.run(compute(root, cache))
    singles: dict[tuple, tuple] = {}

    def single(cfg, name):
        key = (cfg["fields"], cfg["nw"], cfg["dom"], name)
        if key not in singles:
            kw = evaluate(data[name], {**cfg, "method": "keyword", "param": None})
            se = evaluate(data[name], {**cfg, "method": "semantic", "param": None})
            singles[key] = (kw, se)
        return singles[key]

    def margins(cfg, row, name):
        (kw, se), (r5, nd) = single(cfg, name), row[name]
        return r5 - max(kw[0], se[0]), nd - max(kw[1], se[1])

    def objective(cfg, row, names):
        """The worst margin over the better single signal (sets x R@5, NDCG@10), then
        the mean margin: the target asks for a margin on every set and both metrics."""
        ms = [m for n in names for m in margins(cfg, row, n)]
        return (round(min(ms), 3), float(np.mean(ms)))

    names = sorted(set(CHOOSE.values()) | set(REPORT.values()))
    base = {"fields": "doc", "nw": 0.3, "dom": True}
    print("single signals (keyword: one BM25 document; semantic: name weight 0.3)")
    for name in names:
        kw, se = single(base, name)
        print(f"  {name:15} keyword {kw[0]:.3f}/{kw[1]:.3f}  semantic {se[0]:.3f}/{se[1]:.3f}")
    print("leave one data set out: chosen on the other two, R@5/NDCG@10 on the held-out one")
    shipped = {}
    families = ["hybrid z-score", "hybrid z-score, alpha per query"] if EXTENDED else FAMILIES
    for family in families:
        table = [(cfg, {n: evaluate(data[n], cfg) for n in names}) for cfg in candidates(family)]
        for held, report in REPORT.items():
            train = [CHOOSE[n] for n in CHOOSE if n != held]
            cfg, row = max(table, key=lambda cr, t=train: objective(cr[0], cr[1], t))
            (kw, se), (r5, nd) = single(cfg, report), row[report]
            m5, mn = margins(cfg, row, report)
            print(
                f"  {family:15} {held:12} R@5 {r5:.3f} NDCG@10 {nd:.3f}  (keyword "
                f"{kw[0]:.3f}/{kw[1]:.3f}, semantic {se[0]:.3f}/{se[1]:.3f}; margins "
                f"{m5:+.3f}/{mn:+.3f})  chosen {cfg}"
            )
        cfg, row = max(table, key=lambda cr: objective(cr[0], cr[1], list(CHOOSE.values())))
        shipped[family] = (cfg, row)
        print(f"  {family:15} chosen on all three: {cfg}")
        for n in names:
            print(f"      {n:15} {row[n][0]:.3f}/{row[n][1]:.3f}")


if __name__ == "__main__":
    main()
