"""``rag eval`` and ``rag bench``, registered as ``rag.commands`` plug-ins (nothing heavy loads until they run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register_eval(sub: Any, add_common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("eval", help="run an evaluation suite")
    p.add_argument("--suite", default="seed", help="seed, seed-default (the seed questions over the default corpus), whitepaper, conditionalqa, judge or verdicts (default seed)")
    p.add_argument("--out", help="report folder (default eval/reports/<suite>)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items (a stratified sample for judge)")
    p.add_argument("--split", choices=["all", "dev", "test"], default="all",
                   help="seed, seed-default, whitepaper, conditionalqa: dev (for tuning), test (only reported on) or all (default); "
                        "conditionalqa's test part is its fixed sample of 100 (what --limit 100 answers)")
    p.add_argument("--data", metavar="DIR", help="folder holding wice/ and conditionalqa/ (default $RAG_EVAL_DATA or ../shared/eval-data)")
    p.add_argument("--compare", metavar="OTHER_REPORT", help="print deltas against another report's metrics.json")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE", help="exit 1 if a metric is lower")
    p.add_argument("--judge", choices=["llm", "lexical", "off"], help="how answer sentences are checked")
    p.add_argument("-k", type=int, help="passages to retrieve")
    p.set_defaults(func=_eval)
    add_common_options(p)


def register_bench(sub: Any, add_common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("bench", help="run the speed benchmark")
    p.add_argument("--quick", action="store_true", help="a CI-sized run")
    p.add_argument("--out", help="output folder (default eval/reports/bench)")
    p.add_argument("--only", help="comma-separated sections (default: all)")
    p.set_defaults(func=_bench)
    add_common_options(p)


def _eval(args: argparse.Namespace) -> int:
    from rag import settings_from_args

    from .run import main

    return main(args, settings_from_args(args))


def _bench(args: argparse.Namespace) -> int:
    from rag import settings_from_args

    from .bench import main

    return main(args, settings_from_args(args))
