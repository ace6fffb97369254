"""Tool-selection benchmark: Recall@k, NDCG@10 and latency of keyword, semantic and
hybrid selection on MetaTool, LiveMCPBench and Gorilla APIBench, latency at 500 and
10,000 tools.

    python benchmarks/tool_selection.py --data DIR [--png out.png]
    python benchmarks/tool_selection.py --data DIR --latency-only --repeats 3

DIR is the tool-retrieval data folder (MetaTool/, LiveMCPBench/, Gorilla/). Same as
``victor bench tools --data DIR``. Results of a run are recorded in benchmarks/RESULTS.md;
how the default was chosen (leaving one data set out): scripts/selection_experiments.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from victor.cli.tool_benchmark import main  # noqa: E402


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the tool-retrieval data folder")
    parser.add_argument("--sample", type=int, default=2000, help="MetaTool test queries")
    parser.add_argument("--sizes", default="500,10000", help="synthetic catalogue sizes")
    parser.add_argument("--png", type=Path, default=ROOT / "benchmarks/tool_selection.png")
    parser.add_argument(
        "--latency-only", action="store_true", help="skip the quality tables (and the chart)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="latency runs per size; medians are reported"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"data: {args.data.resolve()} (from --data)")
    main(
        args.data,
        sample=args.sample,
        sizes=sizes,
        png=args.png,
        quality_sets=not args.latency_only,
        repeats=args.repeats,
    )


if __name__ == "__main__":
    cli()
