"""All settings in one place.

Every field has a documented default and can be overridden from the environment
(``RAG_<FIELD>`` in upper case, e.g. ``RAG_TOP_K=6``) or, for the CLI, from flags.
``Settings.from_env()`` reads the environment; ``settings.replace(**changes)``
returns a modified copy.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .prompts import ANSWER_STYLES

# The project root (the folder holding ``rag/``, ``index/``, ``ui/``).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Sources of the default corpus shipped with the project.
DEFAULT_SOURCES_DIR = PROJECT_ROOT / "index" / "sources"
#: Documents shipped beside the default corpus but not (yet) part of it, each with its sidecar
#: metadata and licence (the Levelling Up White Paper executive summary, OGL v3.0).
#: Where the default corpus's index is built.
DEFAULT_INDEX_DIR = PROJECT_ROOT / "index" / "default"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policy-rag"


@dataclass(frozen=True)
class Settings:
    """Settings of the whole pipeline.

    Attributes:
        index_dir: Folder of the index (default: ``index/default`` in the project).
        data_dir: Folder for the app's own data, e.g. uploads (default: ``~/.cache/policy-rag/data``).
        cache_dir: Folder for assembled model files (default: ``~/.cache/policy-rag``).
        embedder: Name of the packaged embedder (default ``all-MiniLM-L6-v2``).
        chunk_tokens: Maximum chunk size in embedder word pieces (default 160; the embedder reads 256).
        chunk_overlap: Overlap between neighbouring chunks in word pieces (default 32).
        embed_batch_size: Embedding batch size (default 32).
        top_k: Passages given to the model when the corpus does not fit the prompt (default 4).
        dense_candidates: Candidates taken from each retriever before fusion (default 30).
        rrf_k: The constant of reciprocal-rank fusion (default 60).
        sentence_ranking: Also rank chunks by their best-matching sentence, fused with the chunk and
            BM25 rankings (default True; ``rag.sentences`` has the measurements).
        min_dense_score: Relevance floor: the best passage's cosine similarity must reach it (default 0.25).
        min_bm25_score: A BM25 score that also counts as relevant evidence on its own (default 6.0).
        min_card_score: Relevance floor on the similarity to a document card, the one-line metadata
            passage that opens each document (default 0.18; questions about a document itself share
            few words with any passage).
        min_sentence_score: Relevance floor on the similarity to the best-matching single sentence
            (default 0.28; with ``sentence_ranking``): a paraphrase of one sentence clears it when the
            chunk around that sentence stays under ``min_dense_score``.
        whole_corpus_tokens: When every chunk fits in this many prompt tokens, the whole corpus is
            put in a fixed prompt prefix that stays in the model's KV cache (default 1600; 0 disables).
        window_tokens: A larger corpus is cut into windows of at most this many tokens (runs of one
            document's chunks, cut at headings); the window holding the best hits is the prompt's
            KV-cached head (default 1200; 0 gives the top-k passages instead).
        extra_passages: Top-k passages from outside the chosen window shown after it (default 0:
            on the White Paper dev questions two extra passages answered no more questions and cost
            4.7 s more to the first token, since they are read anew for every question).
        hint_passages: After the question, the prompt names this many best-ranked passages by number,
            so the model looks there first in a long context (default 0: off).
        answer_style: ``direct``: the model answers straight away (default); ``evidence``: it first
            names the passage that answers, then answers (the naming is never shown).
        repoint_overlap: A sentence its cited passages do not support is checked against the other
            passage holding at least this share of its content words, and re-cited there when that
            one supports it (default 0.6).
        max_windows: A corpus needing more windows than this gets the top-k passages instead, since
            every window's KV state is computed once and saved (about 30 MB each; default 64).
        fallback: When a draft fails its checks, show instead the passage sentence that the judge
            says answers the question, quoted and cited (default True; needs ``judge=llm``).
            Measured on the dev parts with the model's own declines included: 8 more answerable
            questions answered right (seed 23 -> 26 of 37, White Paper 15 -> 20 of 28) and 2 of 27
            that should be declined answered with a quote that does not answer them.
        fallback_threshold: The judge probability that sentence needs (default 0.6).
        fallback_on_decline: Also look for such a sentence when the model itself declined
            (default True: most of the dev gains above are such declines).
        split_questions: A question that asks several things ("…, and how much …?", or two
            question sentences) is cut into parts, each retrieved, answered and checked on its own,
            and the answers joined (default True; ``rag.decompose``).
        yes_no_verdict: A checked answer to a yes/no question opens with "Yes." or "No." when the
            judge reads it as settling the question, a condition the answer states following the
            verdict (default True; ``rag.verdict``; needs ``judge=llm``).
        evidence_quote: A checked answer that leaves out the sentence of its cited passage it rests on
            (an answer to a yes/no question that only says the question back, "No. The author does
            not say that joint working is easy."; or one holding under 70% of that sentence's words)
            is followed by that sentence, verbatim and cited (default True; ``rag.evidence``).
        verdict_yes_threshold: P(yes) an answer that negates nothing needs to open with "Yes"
            (default 0.8).
        verdict_no_threshold: P(yes) below which any answer opens with "No" (default 0.3; one
            that negates the question, with "not", "cannot" …, already below 0.5).
        model: Generator model: ``qwen2.5-1.5b`` (default) or ``qwen2.5-0.5b``, or a path to a GGUF file.
        backend: ``llama-cpp`` (default), ``transformers`` or ``openai``.
        openai_base_url: Base URL of an OpenAI-compatible server, for ``backend=openai``.
        openai_model: Model name sent to that server.
        openai_api_key: Bearer key sent to that server (default: none; ``RAG_OPENAI_API_KEY``).
        openai_timeout_s: Seconds to wait for that server to connect or send the next piece of an
            answer before giving up with ``ModelServerTimeout`` (default 120).
        n_ctx: Context length of the local model (default 4096).
        n_threads: CPU threads for the local model (default: the number of cores).
        head_state_cache_mb: Memory for the llama.cpp prompt-head states kept per context, in MB
            (default 256, about 50 judge passages at 5 MB each; 0 turns it off). A passage the judge
            has read before is then restored in milliseconds instead of read again (2–3 s on 2 cores).
        max_new_tokens: Maximum tokens of an answer (default 160).
        judge: How answer sentences are checked: ``llm`` (the claim-support judge; default),
            ``lexical`` (fast word/number overlap only) or ``off``.
        strict: Drop sentences the judge does not support (default False: keep and flag them).
        max_question_chars: Longer questions are refused with a message (default 2000).
        max_upload_mb: Largest file accepted for indexing, in MB (default 20).

    Retrieval kept on the answer:
        retrieved_k: Ranked passages kept on ``Answer.retrieved`` for inspection and evaluation (default 10).

    Checking answers (``rag.verifier``, ``rag.policy``):
        judge_threshold: Judge support score (P(Yes)) at or above which a sentence is supported (default 0.5).
        relevance_threshold: P(Yes) at or above which the answer counts as answering the question (default 0.5).
        kind_threshold: To "Which universities …?", an answer that never says "university" must name
            something the judge takes for one with at least this P(Yes) (default 0.5; asked only for
            kinds of place or body, ``decompose.asked_place_or_body``).
        lexical_threshold: With ``judge=lexical``, share of a sentence's content words that must appear in
            its cited passages (default 0.5).
        citation_min_overlap: An uncited sentence is given the passage sharing at least this share of its
            content words (default 0.5).
        quote_min_coverage: Share of a sentence that must be copied from its passage in runs of 4+ words
            to count as a quote, accepted without the judge (default 0.6).
        quote_min_words: Sentences shorter than this always go to the judge (default 8).
        min_supported_share: The answer is withdrawn when fewer than this share of its checked sentences
            are supported (default 0.5).
        judge_max_passage_tokens: Longer passages are judged in overlapping windows (default 2400).
        judge_window_overlap: Overlap between neighbouring judge windows, as a share of a window (default 0.25).

    Follow-up questions (``rag.rewriter``):
        rewrite_max_tokens: Longest rewritten question, in model tokens (default 60).
        rewrite_turns: Earlier turns shown to the rewriter (default 3).
        rewrite_answer_chars: Each earlier answer is cut to this many characters for the rewriter (default 400).

    Serving (``rag serve``):
        host: Listen address (default 127.0.0.1: this computer only).
        port: Port of the chat page (default 7860).
        auth: ``USER:PASSWORD`` required to use the page (default: none).
        ui_refresh_s: Least time between two refreshes of a streaming answer on the page (default 0.08).
        ui_queue_size: Questions that may wait in the page's queue before new ones are refused (default 64).
        eval_data: Folder of the licensed evaluation data that the project does not ship (``wice/``,
            ``conditionalqa/``), read by ``rag eval`` (default empty: ``../shared/eval-data`` beside the
            project when that folder exists; ``--data DIR`` overrides).

    Index storage (``rag.storage``):
        store: Where the index lives: ``faiss`` (default; files in ``index_dir``) or ``pgvector``
            (PostgreSQL with the pgvector extension, at ``pg_dsn``; see ``rag/pgstore.py``).
        pg_dsn: libpq connection string of the PostgreSQL database for ``store=pgvector``
            (default empty; e.g. ``host=127.0.0.1 port=5432 user=rag dbname=rag``).
        pg_schema: PostgreSQL schema holding one index's tables, for ``store=pgvector`` (default ``rag``);
            plays the role of ``index_dir``.
        pg_ef_search: HNSW candidate list per dense query with ``store=pgvector`` (default 100;
            higher finds more of the true nearest neighbours and is slower: on 1M clustered synthetic
            vectors, recall@10 0.81 at 100 and 0.87 at 200; ``rag bench`` measures it).
        min_keyword_score: With ``store=pgvector``, a keyword score (``ts_rank_cd`` squashed to 0..1;
            not BM25) that counts as relevant on its own (default 0.3: about five occurrences of the
            question's words in one passage).
        api_key: Bearer key that clients of ``rag api`` (the OpenAI-compatible API) must send
            (default: none, no key needed; ``RAG_API_KEY``).
    """

    index_dir: Path = DEFAULT_INDEX_DIR
    data_dir: Path = field(default_factory=lambda: _default_cache_dir() / "data")
    cache_dir: Path = field(default_factory=_default_cache_dir)
    embedder: str = "all-MiniLM-L6-v2"
    chunk_tokens: int = 160
    chunk_overlap: int = 32
    embed_batch_size: int = 32
    top_k: int = 4
    dense_candidates: int = 30
    rrf_k: int = 60
    sentence_ranking: bool = True
    min_dense_score: float = 0.25
    min_bm25_score: float = 6.0
    min_card_score: float = 0.18
    min_sentence_score: float = 0.28
    whole_corpus_tokens: int = 1600
    window_tokens: int = 1200
    extra_passages: int = 0
    max_windows: int = 64
    repoint_overlap: float = 0.6
    hint_passages: int = 0
    answer_style: str = "direct"
    fallback: bool = True
    fallback_threshold: float = 0.6
    fallback_on_decline: bool = True
    split_questions: bool = True
    yes_no_verdict: bool = True
    evidence_quote: bool = True
    verdict_yes_threshold: float = 0.8
    verdict_no_threshold: float = 0.3
    model: str = "qwen2.5-1.5b"
    backend: str = "llama-cpp"
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "default"
    openai_api_key: str = field(default="", repr=False)
    openai_timeout_s: float = 120.0
    n_ctx: int = 4096
    n_threads: int = field(default_factory=lambda: os.cpu_count() or 2)
    head_state_cache_mb: int = 256
    max_new_tokens: int = 160
    judge: str = "llm"
    strict: bool = False
    max_question_chars: int = 2000
    max_upload_mb: int = 20
    retrieved_k: int = 10
    judge_threshold: float = 0.5
    relevance_threshold: float = 0.5
    kind_threshold: float = 0.5
    lexical_threshold: float = 0.5
    citation_min_overlap: float = 0.5
    quote_min_coverage: float = 0.6
    quote_min_words: int = 8
    min_supported_share: float = 0.5
    judge_max_passage_tokens: int = 2400
    judge_window_overlap: float = 0.25
    rewrite_max_tokens: int = 60
    rewrite_turns: int = 3
    rewrite_answer_chars: int = 400
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = field(default="", repr=False)
    ui_refresh_s: float = 0.08
    ui_queue_size: int = 64
    eval_data: str = ""
    store: str = "faiss"
    pg_dsn: str = ""
    pg_schema: str = "rag"
    pg_ef_search: int = 100
    min_keyword_score: float = 0.3
    api_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16 or self.chunk_tokens > 254:
            raise ValueError("chunk_tokens must be between 16 and 254 word pieces")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_tokens")
        if self.top_k < 1:
            raise ValueError("top_k must be at least 1")
        if self.backend not in {"llama-cpp", "transformers", "openai"}:
            raise ValueError(f"unknown backend {self.backend!r}: use llama-cpp, transformers or openai")
        if self.judge not in {"llm", "lexical", "off"}:
            raise ValueError(f"unknown judge mode {self.judge!r}: use llm, lexical or off")
        for name in ("judge_threshold", "relevance_threshold", "kind_threshold", "lexical_threshold", "citation_min_overlap",
                     "quote_min_coverage", "min_supported_share", "repoint_overlap", "fallback_threshold",
                     "verdict_yes_threshold", "verdict_no_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not self.verdict_no_threshold <= 0.5 <= self.verdict_yes_threshold:
            raise ValueError("verdict_no_threshold must be at most 0.5, and verdict_yes_threshold at least 0.5")
        if not 0.0 <= self.judge_window_overlap < 1.0:
            raise ValueError("judge_window_overlap must be at least 0 and below 1")
        if self.retrieved_k < 1 or self.rewrite_max_tokens < 1 or self.rewrite_turns < 1:
            raise ValueError("retrieved_k, rewrite_max_tokens and rewrite_turns must be at least 1")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a valid port number")
        if self.store not in {"faiss", "pgvector"}:
            raise ValueError(f"unknown store {self.store!r}: use faiss or pgvector")
        if self.window_tokens < 0 or self.extra_passages < 0 or self.whole_corpus_tokens < 0:
            raise ValueError("whole_corpus_tokens, window_tokens and extra_passages must be >= 0")
        if self.answer_style not in ANSWER_STYLES:
            raise ValueError(f"unknown answer_style {self.answer_style!r}: use {' or '.join(ANSWER_STYLES)}")
        if self.head_state_cache_mb < 0:
            raise ValueError("head_state_cache_mb must be >= 0")
        if self.pg_ef_search < 1:
            raise ValueError("pg_ef_search must be at least 1")
        if not self.openai_timeout_s > 0:
            raise ValueError("openai_timeout_s must be a positive number of seconds")

    def replace(self, **changes: Any) -> "Settings":
        """Return a copy with ``changes`` applied (``None`` values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        for key in ("index_dir", "data_dir", "cache_dir"):
            if key in changes:
                changes[key] = Path(changes[key])
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        """Build settings from ``RAG_*`` environment variables over the defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is None:
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
            try:
                if kind == "int":
                    values[f.name] = int(raw)
                elif kind == "float":
                    values[f.name] = float(raw)
                elif kind == "bool":
                    values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
                elif kind == "Path":
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise ValueError(f"RAG_{f.name.upper()}={raw!r} is not a valid {kind}") from exc
        return cls(**values)


def setup_offline() -> None:
    """Forbid any model-hub download: a mistake then fails loudly instead of hanging."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
