"""What the model reads: the whole corpus in a KV-cached prefix, or the retrieved passages.

When every chunk of the index fits in ``whole_corpus_tokens`` prompt tokens, the prompt holds the
whole corpus in a fixed order, so its head (system rules + numbered passages) is identical for every
question and stays in llama.cpp's KV cache; its state is also saved to disk, so a new process
reloads it instead of recomputing it. Only the question is then processed per question. A larger
corpus gets the top-k retrieved passages instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .generator import Backend
from .prompts import SYSTEM, ChatPrompt, answer_tail, format_context
from .types import Passage


class _Corpus(Protocol):
    """The parts of a store the context builder reads."""

    generation: int
    documents: dict
    chunks: dict


class _Similarities(Protocol):
    def similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]: ...


@dataclass(frozen=True)
class Context:
    """The prompt for one question and the passages it numbers (``passages[n - 1]`` is ``[n]``)."""

    prompt: ChatPrompt
    passages: list[Passage]
    #: True when the prompt holds the whole corpus.
    whole_corpus: bool
    #: What happened to the cached prefix: ``cached``, ``loaded``, ``computed`` or ``none``.
    prefix: str = "none"


class ContextBuilder:
    """Build the model's prompt from the retrieval result.

    Args:
        backend: The answering model (counts tokens; keeps the KV cache).
        whole_corpus_tokens: Token budget for the whole-corpus prefix (default 1600; 0 disables it).
        cache_dir: Where prefix KV states are saved (default: none, so they are not kept across processes).
    """

    def __init__(self, backend: Backend, *, whole_corpus_tokens: int = 1600, cache_dir: Path | None = None) -> None:
        if whole_corpus_tokens < 0:
            raise ValueError("whole_corpus_tokens must be >= 0")
        self.backend = backend
        self.whole_corpus_tokens = whole_corpus_tokens
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache: tuple[tuple[int, int], str, list[Passage]] | None = None
        self._lock = threading.Lock()

    def whole_corpus(self, store: _Corpus) -> tuple[str, list[Passage]] | None:
        """The whole corpus as a fixed prompt context, or None when it does not fit the budget."""
        if self.whole_corpus_tokens <= 0:
            return None
        key = (store.generation, len(store.chunks))
        with self._lock:
            if self._cache is not None and self._cache[0] == key:
                # An empty cached context means "does not fit".
                return (self._cache[1], self._cache[2]) if self._cache[1] else None
            order = {d: i for i, d in enumerate(store.documents)}
            chunks = sorted(store.chunks.values(), key=lambda c: (order[c.doc_id], c.start))
            passages = [Passage(c, store.documents[c.doc_id].source, store.documents[c.doc_id].title, 0.0) for c in chunks]
            context = format_context([(p.title, p.text, p.chunk.page) for p in passages])
            fits = self.backend.count_tokens(context) <= self.whole_corpus_tokens
            self._cache = (key, context, passages) if fits else (key, "", [])
            return (context, passages) if fits else None

    def warm(self, store: _Corpus, context: str | None = None) -> str:
        """Load (or compute and save) the KV state of the whole-corpus prompt head.

        Returns ``cached``, ``loaded``, ``computed``, or ``none`` when the corpus does not fit the
        prompt or the backend keeps no local cache.
        """
        if context is None:
            whole = self.whole_corpus(store)
            if whole is None:
                return "none"
            context = whole[0]
        ensure = getattr(self.backend, "ensure_prefix", None)
        if ensure is None:
            return "none"
        key = hashlib.sha256(f"{self.backend.name}\n{SYSTEM}\n{context}".encode()).hexdigest()[:20]
        cache_file = self.cache_dir / "kv" / f"{key}.llama-state" if self.cache_dir is not None else None
        return ensure(ChatPrompt(SYSTEM, context, ""), cache_file)

    def run(
        self,
        question: str,
        store: _Corpus,
        retrieved: list[Passage],
        *,
        query_vector: np.ndarray | None = None,
        scorer: _Similarities | None = None,
    ) -> Context:
        """The prompt for ``question``: the whole corpus when it fits, else the ``retrieved`` passages.

        With the whole corpus, passages that were not retrieved get their question similarity from
        ``scorer`` (shown as the citation score).
        """
        whole = self.whole_corpus(store)
        if whole is None:
            context = format_context([(p.title, p.text, p.chunk.page) for p in retrieved])
            return Context(ChatPrompt(SYSTEM, context, answer_tail(question)), list(retrieved), False)
        context, passages = whole
        by_id = {p.chunk.chunk_id: p for p in retrieved}
        sims: dict[int, float] = {}
        if scorer is not None and query_vector is not None:
            sims = scorer.similarities(query_vector, [p.chunk.chunk_id for p in passages if p.chunk.chunk_id not in by_id])
        passages = [
            by_id.get(p.chunk.chunk_id) or dataclasses.replace(p, dense_score=sims.get(p.chunk.chunk_id, 0.0))
            for p in passages
        ]
        prefix = self.warm(store, context)
        return Context(ChatPrompt(SYSTEM, context, answer_tail(question)), passages, True, prefix)
