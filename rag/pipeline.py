"""The assistant: one facade from question to cited answer.

Data flow of ``Assistant.ask``::

    question --validate--> HybridRetriever.run --(nothing relevant: abstain)-->
    prompt (system + numbered passages + question) --> Backend.stream -->
    citations.attach_citations --> support check (numbers, then Judge) --> Answer

When every chunk of the index fits in ``settings.whole_corpus_tokens``, the prompt
holds the whole corpus in a fixed order, so its head is identical for every
question and stays in llama.cpp's KV cache: only the question is processed. The
retriever still decides whether anything relevant exists (the relevance floor).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .citations import CitedSentence, attach_citations, content_overlap, is_extractive, render, unsupported_numbers
from .config import Settings, setup_offline
from .errors import RagError
from .generator import Backend, GenerationStats
from .indexer import IndexReport, Indexer
from .prompts import SYSTEM, ChatPrompt, answer_tail, format_context, rewrite_prompt
from .retriever import HybridRetriever
from .store import IndexStore
from .types import Answer, Citation, Passage, Sentence

log = logging.getLogger(__name__)

#: Questions about the documents themselves (author, date, title) carry few content words, so the
#: relevance floor does not apply to them; the model and the judge still have to find the answer.
_ABOUT_THE_DOCUMENT = re.compile(
    r"\b(article|document|blog|post|report|paper|author|writer|wrote|written|published|updated|title)\b", re.IGNORECASE
)

ABSTAIN_TEXT = "The documents don't say. I found nothing in the indexed documents that answers this question."
OFF_TOPIC_TEXT = "The documents don't say. This assistant only answers questions about the indexed documents."


def clean_question(question: str, max_chars: int) -> str:
    """Validate and normalise a question.

    Raises:
        ValueError: empty or whitespace-only, or longer than ``max_chars`` characters.
    """
    if not isinstance(question, str):
        raise ValueError("the question must be text")
    if len(question) > 4 * max_chars + 1000:
        # Far too long even before cleaning: refuse without copying it (bounded memory for huge pastes).
        raise ValueError(f"the question is {len(question):,} characters long; the limit is {max_chars:,}. Please shorten it.")
    # Drop control characters and unpaired surrogates; keep every script.
    q = "".join(ch for ch in question if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    q = q.encode("utf-8", errors="ignore").decode("utf-8")
    q = " ".join(q.split())
    if not q:
        raise ValueError("the question is empty: type a question about the documents")
    if len(q) > max_chars:
        raise ValueError(f"the question is {len(q):,} characters long; the limit is {max_chars:,}. Please shorten it.")
    return q


@dataclass
class _Prepared:
    question: str
    passages: list[Passage]
    prompt: ChatPrompt | None
    abstain_reason: str | None
    stats: dict[str, float]


class Assistant:
    """Index documents and answer questions about them with cited passages.

    Life cycle: ``index`` (or ``add_to_index``) -> ``ask`` / ``search`` ->
    ``delete_from_index``. Models load on first use and are shared by the process.

    Args:
        settings: All settings (default: ``Settings.from_env()``).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        setup_offline()
        self.settings = settings or Settings.from_env()
        self._store: IndexStore | None = None
        self._retriever: HybridRetriever | None = None
        self._context_cache: tuple[tuple[int, int], str, list[Passage]] | None = None
        self._store_stamp: int | None = None
        self._lock = threading.RLock()

    # ----- components (loaded lazily, once) --------------------------------------------------

    @property
    def embedder(self):
        from .registry import get_embedder

        return get_embedder(self.settings)

    @property
    def backend(self) -> Backend:
        from .registry import get_backend

        return get_backend(self.settings)

    @property
    def judge(self):
        from .judge import Judge

        if not hasattr(self, "_judge"):
            from .registry import get_backend

            self._judge = Judge(get_backend(self.settings, role="judge"))
        return self._judge

    @property
    def store(self) -> IndexStore:
        """The loaded index; reloaded when another process or assistant has saved a newer generation."""
        with self._lock:
            manifest = Path(self.settings.index_dir) / "manifest.json"
            try:
                stamp = manifest.stat().st_mtime_ns
            except OSError:
                stamp = None
            if self._store is None or (stamp is not None and stamp != self._store_stamp and self._newer_on_disk()):
                from .indexer import index_settings

                self._store = IndexStore.load(self.settings.index_dir, index_settings(self.settings, self.embedder))
                self._context_cache = None
            self._store_stamp = stamp
            return self._store

    def _newer_on_disk(self) -> bool:
        try:
            generation = int(IndexStore.read_manifest(self.settings.index_dir).get("generation", 0))
        except RagError:
            return False
        return self._store is not None and generation != self._store.generation

    @property
    def retriever(self) -> HybridRetriever:
        with self._lock:
            if self._retriever is None or self._retriever.store is not self.store:
                s = self.settings
                self._retriever = HybridRetriever(
                    self.store,
                    self.embedder,
                    candidates=s.dense_candidates,
                    rrf_k=s.rrf_k,
                    min_dense_score=s.min_dense_score,
                    min_bm25_score=s.min_bm25_score,
                )
            return self._retriever

    # ----- indexing ---------------------------------------------------------------------------

    def index(self, paths: Sequence[str | Path], *, rebuild: bool = False, prune: bool = False, progress: bool = True) -> IndexReport:
        """Index files or folders into ``settings.index_dir`` (incremental unless ``rebuild``)."""
        with self._lock:
            current = self._store if self._store is not None and not rebuild else None
            store, report = Indexer(self.settings, self.embedder).run(
                paths, index_dir=self.settings.index_dir, rebuild=rebuild, prune=prune, progress=progress, store=current
            )
            self._store = store
            self._context_cache = None
            return report

    def add_to_index(self, paths: Sequence[str | Path], *, progress: bool = True) -> IndexReport:
        """Add or update documents without removing anything."""
        return self.index(paths, progress=progress)

    def delete_from_index(self, ids_or_sources: Sequence[str]) -> list[str]:
        """Remove documents (by doc id or source path); returns the sources removed."""
        with self._lock:
            removed = Indexer(self.settings, self.embedder).remove(self.store, ids_or_sources)
            self._context_cache = None
            return removed

    def documents(self) -> list[dict]:
        """The indexed documents: doc_id, source, title, chunks."""
        counts: dict[str, int] = {}
        for c in self.store.chunks.values():
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        return [
            {"doc_id": d.doc_id, "source": d.source, "title": d.title, "chunks": counts.get(d.doc_id, 0)}
            for d in self.store.documents.values()
        ]

    def document_text(self, doc_id: str) -> str:
        return self.store.documents[doc_id].text

    # ----- retrieval --------------------------------------------------------------------------

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        """The top-``k`` passages for ``question`` (no generation)."""
        q = clean_question(question, self.settings.max_question_chars)
        return self.retriever.run(q, k or self.settings.top_k).passages

    def _whole_corpus(self) -> tuple[str, list[Passage]] | None:
        """The whole corpus as a fixed prompt context, when it fits the token budget."""
        budget = self.settings.whole_corpus_tokens
        if budget <= 0:
            return None
        store = self.store
        key = (store.generation, len(store.chunks))
        with self._lock:
            if self._context_cache is not None and self._context_cache[0] == key:
                # An empty cached context means "does not fit": retrieve top-k passages instead.
                return (self._context_cache[1], self._context_cache[2]) if self._context_cache[1] else None
            order = {d: i for i, d in enumerate(store.documents)}
            chunks = sorted(store.chunks.values(), key=lambda c: (order[c.doc_id], c.start))
            passages = [
                Passage(c, store.documents[c.doc_id].source, store.documents[c.doc_id].title, 0.0) for c in chunks
            ]
            context = format_context([(p.title, p.text, p.chunk.page) for p in passages])
            fits = self.backend.count_tokens(context) <= budget
            self._context_cache = (key, context, passages) if fits else (key, "", [])
            return (context, passages) if fits else None

    def warm_prefix(self, context: str | None = None) -> str:
        """Load (or compute and save) the KV cache of the whole-corpus prompt head.

        Returns ``cached``, ``loaded``, ``computed``, or ``none`` when the corpus does not fit
        the prompt or the backend keeps no local cache.
        """
        if context is None:
            whole = self._whole_corpus()
            if whole is None:
                return "none"
            context = whole[0]
        backend = self.backend
        if not hasattr(backend, "ensure_prefix"):
            return "none"
        import hashlib

        head = ChatPrompt(SYSTEM, context, "")
        key = hashlib.sha256(f"{backend.name}\n{SYSTEM}\n{context}".encode()).hexdigest()[:20]
        return backend.ensure_prefix(head, self.settings.cache_dir / "kv" / f"{key}.llama-state")

    def _prepare(self, question: str, k: int | None) -> _Prepared:
        t0 = time.perf_counter()
        result = self.retriever.run(question, k or self.settings.top_k)
        stats = {"retrieve_s": time.perf_counter() - t0, "best_dense": result.best_dense, "best_bm25": result.best_bm25}
        relevant = result.relevant or bool(_ABOUT_THE_DOCUMENT.search(question))
        if not relevant or not result.passages:
            return _Prepared(question, result.passages, None, "no_relevant_passages", stats)
        whole = self._whole_corpus()
        if whole is not None:
            context, passages = whole
            retrieved = {p.chunk.chunk_id: p for p in result.passages}
            sims = self.retriever.similarities(result.query_vector, [p.chunk.chunk_id for p in passages])
            passages = [
                retrieved.get(p.chunk.chunk_id) or dataclasses.replace(p, dense_score=sims[p.chunk.chunk_id])
                for p in passages
            ]
            stats["whole_corpus"] = 1.0
            stats["prefix_" + self.warm_prefix(context)] = 1.0
        else:
            passages = result.passages
            context = format_context([(p.title, p.text, p.chunk.page) for p in passages])
            stats["whole_corpus"] = 0.0
        return _Prepared(question, passages, ChatPrompt(SYSTEM, context, answer_tail(question)), None, stats)

    # ----- answering --------------------------------------------------------------------------

    def rewrite(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """Rewrite a follow-up into a standalone question using the chat history."""
        q = clean_question(question, self.settings.max_question_chars)
        if not history:
            return q
        # The judge's context runs it, so the answer context keeps its cached prompt head.
        text = "".join(self.judge.backend.stream(rewrite_prompt(history, q), max_tokens=60)).strip()
        text = text.splitlines()[0].strip().strip('"') if text else ""
        return text if 3 <= len(text) <= self.settings.max_question_chars else q

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        stream: bool = False,
        history: Sequence[tuple[str, str]] | None = None,
        strict: bool | None = None,
        judge: str | None = None,
    ):
        """Answer ``question`` from the index, citing passages, or abstain.

        Args:
            k: Passages to retrieve (default ``settings.top_k``).
            stream: If True, return an iterator of text pieces followed by the final ``Answer``.
            history: Earlier (question, answer) pairs; a follow-up is rewritten into a standalone question.
            strict: Drop sentences the judge does not support (default ``settings.strict``).
            judge: ``llm``, ``lexical`` or ``off`` (default ``settings.judge``).

        Raises:
            ValueError: empty, whitespace-only or over-long question.
        """
        q = clean_question(question, self.settings.max_question_chars)
        gen = self._run(q, k, history, self.settings.strict if strict is None else strict, judge or self.settings.judge)
        if stream:
            return gen
        answer = None
        for item in gen:
            if isinstance(item, Answer):
                answer = item
        assert answer is not None
        return answer

    def _run(self, question: str, k: int | None, history, strict: bool, judge_mode: str) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        standalone = self.rewrite(question, history) if history else question
        prep = self._prepare(standalone, k)
        prep.stats["rewrite_s"] = time.perf_counter() - t0 - prep.stats["retrieve_s"]
        if prep.prompt is None:
            prep.stats["total_s"] = time.perf_counter() - t0
            yield _abstain(question, standalone, prep.abstain_reason or "no_relevant_passages", prep.stats)
            return

        gstats = GenerationStats()
        pieces: list[str] = []
        first_token_s = None
        for piece in self.backend.stream(prep.prompt, max_tokens=self.settings.max_new_tokens, stats=gstats):
            if first_token_s is None:
                first_token_s = time.perf_counter() - t0
            pieces.append(piece)
            yield piece
        raw = "".join(pieces).strip()
        prep.stats.update(
            prompt_tokens=gstats.prompt_tokens,
            cached_tokens=gstats.cached_tokens,
            completion_tokens=gstats.completion_tokens,
            first_token_s=first_token_s if first_token_s is not None else time.perf_counter() - t0,
            generate_s=gstats.total_s,
            queue_s=gstats.wait_s,
        )
        prep.stats["answer_s"] = time.perf_counter() - t0
        answer = self._finish(question, standalone, raw, prep, strict, judge_mode)
        answer.stats["total_s"] = time.perf_counter() - t0
        yield answer

    def _finish(self, question: str, standalone: str, raw: str, prep: _Prepared, strict: bool, judge_mode: str) -> Answer:
        passages = prep.passages
        texts = [p.text for p in passages]
        sents = attach_citations(raw, texts)
        claims = [s for s in sents if not s.refusal]
        if "```" in raw:
            # Code is never a grounded answer about policy documents.
            return _abstain(question, standalone, "off_topic", prep.stats, raw)
        if not claims or sents[0].refusal:
            # The model said the passages don't answer (or wrote nothing usable).
            return _abstain(question, standalone, "model_declined", prep.stats, raw)

        t_judge = time.perf_counter()
        judged: list[Sentence] = []
        for s in sents:
            if s.refusal:
                judged.append(Sentence(s.text, (), None, None, False))
                continue
            judged.append(self._check(s, passages, judge_mode, standalone))

        supported = [s for s in judged if s.supported]
        checked = [s for s in judged if s.supported is not None]
        if not supported or len(supported) < len(checked) / 2:
            # Nothing, or less than half of what the model wrote, is backed by its passages.
            return _abstain(question, standalone, "unsupported", prep.stats, raw)
        if judge_mode == "llm":
            # Supported sentences can still miss the point (a copied passage that does not answer).
            relevance = self.judge.answers_question(standalone, " ".join(s.text for s in supported))
            prep.stats["relevance"] = relevance
            if relevance < self.judge.threshold:
                return _abstain(question, standalone, "not_an_answer", prep.stats, raw)
        prep.stats["judge_s"] = time.perf_counter() - t_judge
        # Strict mode drops unsupported sentences; otherwise sentences the model cited stay, flagged when
        # unsupported. Refusal asides go, and so does every sentence with no source: uncited, or cited
        # only by our overlap guess that the check then rejects. Text the model adds on its own (a link,
        # a greeting a planted instruction asked for) never shows.
        kept = supported if strict else [
            s for s in judged if s.supported is not None and s.citations and (s.supported or not s.citation_inferred)
        ]
        cited_numbers = sorted({n for s in kept for n in s.citations})
        citations = [_citation(n, passages[n - 1]) for n in cited_numbers]
        text = render([CitedSentence(s.text, s.citations) for s in kept])
        return Answer(
            question=question,
            text=text,
            abstained=False,
            citations=citations,
            sentences=kept,
            reason=None,
            standalone_question=standalone,
            stats=prep.stats,
        )

    def _check(self, s: CitedSentence, passages: list[Passage], mode: str, question: str = "") -> Sentence:
        """Support of one sentence by its cited passages.

        Invented numbers fail. A sentence quoted from a cited passage (``is_extractive``: mostly copied
        word for word, no new content word beyond the passage and the question, no negation of its own)
        is supported without asking the judge; one quoted from another passage of the prompt is re-cited
        to that passage (marked as an inferred citation). Otherwise the judge decides.
        """
        if not s.cites:
            return Sentence(s.text, (), 0.0, False, False)
        cited_texts = [passages[n - 1].text for n in s.cites]
        if unsupported_numbers(s.text, cited_texts):
            return Sentence(s.text, s.cites, 0.0, False, s.inferred)
        if mode == "off":
            return Sentence(s.text, s.cites, None, True, s.inferred)
        if any(is_extractive(s.text, t, question) for t in cited_texts):
            return Sentence(s.text, s.cites, 1.0, True, s.inferred)
        # A quote given the wrong number (a near miss the small model makes) is re-pointed at its passage.
        quoted = [i for i, p in enumerate(passages, 1) if i not in s.cites and is_extractive(s.text, p.text, question)]
        if quoted:
            return Sentence(s.text, (quoted[0],), 1.0, True, True)
        lexical = content_overlap(s.text, " ".join(cited_texts))
        if mode == "lexical":
            return Sentence(s.text, s.cites, lexical, lexical >= 0.5, s.inferred)
        score = self.judge.support_union(s.text, cited_texts)
        return Sentence(s.text, s.cites, score, self.judge.is_supported(score), s.inferred)


def _citation(n: int, p: Passage) -> Citation:
    return Citation(
        n=n,
        doc_id=p.chunk.doc_id,
        source=p.source,
        title=p.title,
        start=p.chunk.start,
        end=p.chunk.end,
        quote=p.chunk.text,
        score=round(float(p.dense_score), 4),
        page=p.chunk.page,
        heading=p.chunk.heading,
    )


def _abstain(question: str, standalone: str, reason: str, stats: dict, raw: str = "") -> Answer:
    text = OFF_TOPIC_TEXT if reason == "off_topic" else ABSTAIN_TEXT
    return Answer(
        question=question,
        text=text,
        abstained=True,
        citations=[],
        sentences=[],
        reason=reason,
        standalone_question=standalone,
        stats=dict(stats),
    )


# ----- the module-level API ---------------------------------------------------------------------

_assistants: dict[tuple, Assistant] = {}
_assistants_lock = threading.Lock()


def get_assistant(index: str | Path | None = None, settings: Settings | None = None) -> Assistant:
    """The shared assistant for an index folder (default: the settings' index)."""
    settings = settings or Settings.from_env()
    if index is not None:
        settings = settings.replace(index_dir=Path(index))
    key = (str(Path(settings.index_dir).resolve()), settings)
    with _assistants_lock:
        if key not in _assistants:
            _assistants[key] = Assistant(settings)
        return _assistants[key]


def ask(
    question: str,
    *,
    index: str | Path | None = None,
    k: int | None = None,
    stream: bool = False,
    history: Sequence[tuple[str, str]] | None = None,
    strict: bool | None = None,
    judge: str | None = None,
    settings: Settings | None = None,
):
    """Answer ``question`` from an index with cited passages, or abstain.

    Args:
        question: The question (empty or whitespace-only raises ``ValueError``).
        index: Index folder (default: the default corpus's index, ``index/default``).
        k: Passages to retrieve (default 4).
        stream: Return an iterator of text pieces, then the final ``Answer``.
        history: Earlier (question, answer) pairs for follow-up questions.
        strict: Drop unsupported sentences (default False).
        judge: ``llm`` (default), ``lexical`` or ``off``.
        settings: Full settings (default: ``Settings.from_env()``).

    Returns:
        An ``Answer`` (``text``, ``abstained``, ``citations``, ``sentences``), or an iterator when streaming.
    """
    return get_assistant(index, settings).ask(question, k=k, stream=stream, history=history, strict=strict, judge=judge)


def ensure_default_index(settings: Settings | None = None, *, progress: bool = True) -> IndexReport | None:
    """Build or refresh the default corpus's index when it is missing or stale."""
    from .config import DEFAULT_SOURCES_DIR

    settings = settings or Settings.from_env()
    assistant = get_assistant(settings.index_dir, settings)
    try:
        stale = not IndexStore.exists(settings.index_dir)
        report = assistant.index([DEFAULT_SOURCES_DIR], rebuild=False, progress=progress)
        return report if (stale or report.changed) else None
    except RagError:
        return assistant.index([DEFAULT_SOURCES_DIR], rebuild=True, progress=progress)


__all__ = ["Assistant", "ask", "get_assistant", "ensure_default_index", "clean_question", "ABSTAIN_TEXT"]
