"""What every benchmark section shares: the corpus files, the questions, the targets, the run plan and context."""

from __future__ import annotations

import logging

from rag import DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings

from ..paths import WHITE_PAPER  # noqa: F401  (re-exported for the sections)

log = logging.getLogger(__name__)

DEFAULT_OUT = PROJECT_ROOT / "eval" / "reports" / "bench"
SEED = PROJECT_ROOT / "eval" / "datasets" / "seed.jsonl"
#: Questions about the White Paper summary (and both documents), for the warm ask timings.
WHITEPAPER_QUESTIONS = PROJECT_ROOT / "eval" / "datasets" / "whitepaper.jsonl"
ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
COLD_QUESTION = "What share of swimming pools are at risk of closure?"
WARMUP_QUESTION = "What did Michael Gove say about the Levelling Up Fund?"
SECTIONS = ("ask", "judge", "generation", "indexing", "cold_start", "serve_rss", "retrieval", "pgvector", "concurrency")

#: (key in the results, label, comparison, threshold, unit)
TARGETS = [
    ("ask.first_token_p50_s", "warm ask, both documents: first token p50", "<=", 2.0, "s"),
    ("ask.full_answer_p50_s", "warm ask, both documents: checked answer p50", "<=", 6.0, "s"),
    ("generation.decode_ratio", "generation: decode ours/raw", ">=", 0.95, ""),
    ("indexing.ratio", "indexing: chunks/s ours/raw", ">=", 0.9, ""),
    ("retrieval.1m_p50_ms", "retrieval 1M: p50 latency", "<", 10.0, "ms"),
    ("retrieval.1m_recall", "retrieval 1M: recall@10", ">=", 0.95, ""),
    ("cold_start.first_byte_p50_s", "cold start: first answer byte p50", "<=", 5.0, "s"),
]


class Plan:
    """Sizes of a run: ``quick`` for CI, full otherwise."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.ask_questions = 6 if quick else 40  # per run, half about each document
        self.judge_pairs = 2 if quick else 5
        self.gen_tokens = 32 if quick else 64
        self.gen_reps = 3 if quick else 5
        self.prefill_reps = 1 if quick else 3
        self.index_reps = 1 if quick else 3
        self.conditionalqa = not quick
        self.cold_runs = 1 if quick else 3
        self.import_runs = 3
        self.retrieval_sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
        self.retrieval_queries = 200
        self.pgvector_sizes = [10_000] if quick else [100_000, 1_000_000]
        self.serve_timeout_s = 150 if quick else 300
        self.concurrency_rounds = 1 if quick else 2


# ----- running and reporting -----------------------------------------------------------------------


class Context:
    def __init__(self, settings: Settings, plan: Plan, args_model: str | None, progress: bool = True) -> None:
        self.settings = settings
        self.plan = plan
        self.args_model = args_model
        self.progress = progress

    def bar(self, desc: str, total: int, unit: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"  {desc}", unit=unit, leave=False, disable=not self.progress)
