"""What the model reads: a cached window of the corpus around the best hits, plus the other top hits.

Processing prompt tokens is the slow part on a laptop CPU (about 80 tokens/s), so the context is
built to stay in llama.cpp's KV cache:

* **Whole corpus.** When every chunk fits in ``whole_corpus_tokens``, the prompt head (system rules
  + every numbered passage, in a fixed order) is the same for every question: it is processed once,
  saved to disk, and only the question is processed per question.
* **Windows.** A larger corpus is cut into *windows*: runs of consecutive chunks of one document,
  at most ``window_tokens`` long, cut at section headings where possible, each opening with its
  document's card. The window that holds the best-ranked retrieved passages becomes the prompt
  head; its KV state is computed once and saved, like the whole corpus's, and the model reads each
  hit with the text around it. Optionally, top-ranked passages from outside the window (another
  section, another document) follow in the prompt's tail, at most ``extra_passages`` of them (default
  0: they are read anew for every question, about 2.5 s each on 2 cores).
* **Top-k passages.** With ``window_tokens=0``, the prompt holds the top-k retrieved passages only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .generator import Backend
from .prompts import ANSWER_STYLES, SYSTEM, ChatPrompt, answer_tail, format_context, format_more
from .types import Chunk, Passage

log = logging.getLogger(__name__)


class _Corpus(Protocol):
    """The parts of a store the context builder reads."""

    generation: int
    documents: dict
    chunks: dict


class _Similarities(Protocol):
    def similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]: ...


@dataclass(frozen=True)
class Window:
    """A cacheable prompt head: numbered passages in document order (``passages[n - 1]`` is ``[n]``)."""

    context: str
    passages: list[Passage]
    #: A short name for logs and stats: ``whole corpus`` or ``<title> (i/n)``.
    name: str

    @property
    def chunk_ids(self) -> set[int]:
        return {p.chunk.chunk_id for p in self.passages}


@dataclass(frozen=True)
class Context:
    """The prompt for one question and the passages it numbers (``passages[n - 1]`` is ``[n]``)."""

    prompt: ChatPrompt
    passages: list[Passage]
    #: True when the prompt holds the whole corpus.
    whole_corpus: bool
    #: What happened to the cached prefix: ``cached``, ``loaded``, ``computed`` or ``none``.
    prefix: str = "none"
    #: The window used as the prompt head (None for plain top-k passages).
    window: str | None = None
    #: Passages from outside the window, in the prompt's tail.
    extra: int = 0


class ContextBuilder:
    """Build the model's prompt from the retrieval result.

    Args:
        backend: The answering model (counts tokens; keeps the KV cache).
        whole_corpus_tokens: Token budget for the whole-corpus prefix (default 1600; 0 disables it).
        window_tokens: Token budget of one window when the corpus is larger (default 1200; 0 gives
            the top-k passages instead of windows).
        extra_passages: Top-k passages from outside the window added after it (default 0).
        hints: After the question, name the numbers of this many best-ranked passages, so the model
            looks there first in a long window (default 0: no hint).
        answer_style: ``direct`` or ``evidence`` (``rag.prompts.ANSWER_STYLES``; default ``direct``).
        max_windows: A corpus cut into more windows than this gets the top-k passages instead
            (computing and saving every window's KV state would cost too much time and disk;
            default 64, about 1.5 GB of saved states).
        cache_dir: Where prefix KV states are saved (default: none, so they are not kept across processes).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        whole_corpus_tokens: int = 1600,
        window_tokens: int = 1200,
        extra_passages: int = 0,
        hints: int = 0,
        answer_style: str = "direct",
        max_windows: int = 64,
        cache_dir: Path | None = None,
    ) -> None:
        if whole_corpus_tokens < 0:
            raise ValueError("whole_corpus_tokens must be >= 0")
        if window_tokens < 0:
            raise ValueError("window_tokens must be >= 0")
        if extra_passages < 0 or max_windows < 1:
            raise ValueError("extra_passages must be >= 0 and max_windows >= 1")
        self.backend = backend
        self.whole_corpus_tokens = whole_corpus_tokens
        self.window_tokens = window_tokens
        self.extra_passages = extra_passages
        self.max_windows = max_windows
        self.hints = max(0, hints)
        if answer_style not in ANSWER_STYLES:
            raise ValueError(f"unknown answer style {answer_style!r}: use {', '.join(ANSWER_STYLES)}")
        self.answer_style = answer_style
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._windows: tuple[tuple[int, int], list[Window]] | None = None
        self._lock = threading.Lock()

    # ----- windows -------------------------------------------------------------------------------

    def windows(self, store: _Corpus) -> list[Window]:
        """The corpus as cacheable windows: one holding everything when it fits ``whole_corpus_tokens``,
        else runs of each document's chunks; empty when windows are off and the corpus does not fit."""
        key = (store.generation, len(store.chunks))
        with self._lock:
            if self._windows is None or self._windows[0] != key:
                self._windows = (key, self._build_windows(store))
            return self._windows[1]

    def whole_corpus(self, store: _Corpus) -> tuple[str, list[Passage]] | None:
        """The whole corpus as a fixed prompt context, or None when it does not fit the budget."""
        windows = self.windows(store)
        if len(windows) == 1 and windows[0].name == "whole corpus":
            return windows[0].context, windows[0].passages
        return None

    def _passage(self, store: _Corpus, chunk: Chunk) -> Passage:
        doc = store.documents[chunk.doc_id]
        return Passage(chunk, doc.source, doc.title, 0.0)

    def _build_windows(self, store: _Corpus) -> list[Window]:
        order = {d: i for i, d in enumerate(store.documents)}
        chunks = sorted(store.chunks.values(), key=lambda c: (order[c.doc_id], c.start))
        if not chunks:
            return []
        passages = [self._passage(store, c) for c in chunks]
        if self.whole_corpus_tokens > 0:
            context = _format(passages)
            if self.backend.count_tokens(context) <= self.whole_corpus_tokens:
                return [Window(context, passages, "whole corpus")]
        if self.window_tokens <= 0:
            return []
        if sum(1 for c in chunks if not c.is_card) > self.max_windows * self.window_tokens // 40:
            return []  # far too many windows, whatever their size: skip counting tokens
        out: list[Window] = []
        for doc_id in store.documents:
            doc_passages = [p for p in passages if p.chunk.doc_id == doc_id]
            cards = [p for p in doc_passages if p.chunk.is_card]
            body = [p for p in doc_passages if not p.chunk.is_card]
            runs = self._runs(cards, body)
            title = store.documents[doc_id].title
            for i, run in enumerate(runs, 1):
                name = title if len(runs) == 1 else f"{title} ({i}/{len(runs)})"
                out.append(Window(_format(cards + run), cards + run, name))
        if len(out) > self.max_windows:
            log.info("%d windows (over max_windows=%d): the prompt gets the top-k passages", len(out), self.max_windows)
            return []
        return out

    def _runs(self, cards: list[Passage], body: list[Passage]) -> list[list[Passage]]:
        """Consecutive body passages packed under ``window_tokens`` (the cards' tokens counted in),
        cut at a heading once a window is half full."""
        budget = self.window_tokens - sum(self.backend.count_tokens(p.text) + 8 for p in cards) - 20
        runs: list[list[Passage]] = []
        run: list[Passage] = []
        used = 0
        for p in body:
            cost = self.backend.count_tokens(p.text) + 8
            new_section = bool(run) and p.chunk.heading != run[-1].chunk.heading
            if run and (used + cost > budget or (new_section and used > budget // 2)):
                runs.append(run)
                run, used = [], 0
            run.append(p)
            used += cost
        if run:
            runs.append(run)
        return runs

    def pick(self, windows: list[Window], retrieved: list[Passage], document: str | None = None) -> Window:
        """The window holding the best-ranked passages: each retrieved passage counts 1/rank. With
        ``document`` (the ``doc_id`` the question names) only that document's windows are weighed."""
        own = [w for w in windows if document is not None and w.passages and w.passages[0].chunk.doc_id == document]
        windows = own or windows
        best, best_score = windows[0], -1.0
        for w in windows:
            ids = w.chunk_ids
            # A document's card opens each of its windows, so a question about the document itself
            # (its card ranked first) picks that document.
            score = sum(1.0 / r for r, p in enumerate(retrieved, 1) if p.chunk.chunk_id in ids)
            if score > best_score:
                best, best_score = w, score
        return best

    # ----- KV state ------------------------------------------------------------------------------

    def warm(self, store: _Corpus, context: str | None = None, *, every_window: bool = False) -> str:
        """Load (or compute and save) the KV state of a prompt head.

        Without ``context``: the whole-corpus window, or with ``every_window`` every window in turn
        (so later questions only load saved states). Returns ``cached``, ``loaded``, ``computed``, or
        ``none`` when there is no window or the backend keeps no local cache.
        """
        if context is None:
            windows = self.windows(store)
            if not windows or (len(windows) > 1 and not every_window):
                return "none"
            states = [self.warm(store, w.context) for w in windows]
            return "computed" if "computed" in states else states[-1]
        ensure = getattr(self.backend, "ensure_prefix", None)
        if ensure is None:
            return "none"
        key = hashlib.sha256(f"{self.backend.name}\n{SYSTEM}\n{context}".encode()).hexdigest()[:20]
        cache_file = self.cache_dir / "kv" / f"{key}.llama-state" if self.cache_dir is not None else None
        return ensure(ChatPrompt(SYSTEM, context, ""), cache_file)

    # ----- the prompt ----------------------------------------------------------------------------

    def run(
        self,
        question: str,
        store: _Corpus,
        retrieved: list[Passage],
        *,
        k: int = 4,
        query_vector: np.ndarray | None = None,
        scorer: _Similarities | None = None,
        document: str | None = None,
    ) -> Context:
        """The prompt for ``question`` from the ranked ``retrieved`` passages.

        The whole ranking picks the window; the top ``k`` are the passages shown outside it (or, without
        windows, the passages shown). Passages shown that were not retrieved get their question similarity from ``scorer``
        (shown as the citation score). ``document``, the ``doc_id`` the question names
        (``retriever.named_document``), confines the window to that document.
        """
        windows = self.windows(store)
        if not windows:
            top = retrieved[:k]
            return Context(ChatPrompt(SYSTEM, _format(top), answer_tail(question, style=self.answer_style)), top, False)
        window = windows[0] if len(windows) == 1 else self.pick(windows, retrieved, document)
        inside = window.chunk_ids
        extra = [p for p in retrieved[:k] if p.chunk.chunk_id not in inside and not p.chunk.is_card][: self.extra_passages]
        by_id = {p.chunk.chunk_id: p for p in retrieved}
        sims: dict[int, float] = {}
        if scorer is not None and query_vector is not None:
            sims = scorer.similarities(query_vector, [p.chunk.chunk_id for p in window.passages if p.chunk.chunk_id not in by_id])
        passages = [
            by_id.get(p.chunk.chunk_id) or dataclasses.replace(p, dense_score=sims.get(p.chunk.chunk_id, 0.0))
            for p in window.passages
        ]
        prefix = self.warm(store, window.context)
        shown = passages + extra
        tail = format_more([(p.title, p.text, p.chunk.page) for p in extra], start=len(passages) + 1)
        tail += answer_tail(question, self._hints(shown, retrieved[:k]), self.answer_style)
        whole = window.name == "whole corpus"
        log.debug("context: window %s (%s), %d extra passages", window.name, prefix, len(extra))
        return Context(ChatPrompt(SYSTEM, window.context, tail), shown, whole, prefix, window.name, len(extra))

    def _hints(self, shown: list[Passage], ranked: list[Passage]) -> list[int]:
        """Numbers in ``shown`` of the ``hints`` best-ranked passages (a card only when it ranks first)."""
        if not self.hints:
            return []
        number = {p.chunk.chunk_id: n for n, p in enumerate(shown, 1)}
        out = []
        for i, p in enumerate(ranked):
            if p.chunk.chunk_id in number and (i == 0 or not p.chunk.is_card):
                out.append(number[p.chunk.chunk_id])
            if len(out) == self.hints:
                break
        return out


def _format(passages: list[Passage]) -> str:
    return format_context([(p.title, p.text, p.chunk.page) for p in passages])
