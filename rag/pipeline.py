"""The assistant: one facade from question to cited answer.

``Assistant.stream`` is the whole pipeline, top-down; every step is a component with one job::

    question --clean_question--> QueryRewriter (follow-ups only)
      --QuestionSplitter: several questions in one? each part answered on its own, then merged-->
    Collection.retriever (hybrid search)
      --AnswerPolicy.before_generation: nothing relevant? abstain-->
    ContextBuilder (a KV-cached window of the corpus around the best hits, + other top hits) --> generator (streams a draft)
      --> attach_citations --AnswerPolicy.screen: code or a refusal? abstain-->
    Verifier (numbers -> quotes -> judge, per sentence) --AnswerPolicy.review: unsupported / not an answer?-->
      QuoteFallback (a passage sentence that answers the question, quoted) or abstain
    AnswerPolicy.keep --> VerdictLead (a yes/no question: "Yes." or "No." first, when settled) --> Answer

``ask`` returns the final ``Answer``; ``stream`` yields ``DraftPiece`` events while the model writes,
one ``Checking`` event, then ``Final(answer)``. Components are built from ``Settings`` on first
use (models load lazily and are shared by the process, see ``rag.registry``), or injected.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

from .citations import CitedSentence, attach_citations, drop_cut_off, render
from .collection import Collection
from .config import Settings, setup_offline
from .context import ContextBuilder
from .decompose import QuestionSplitter, question_sentence
from .errors import RagError
from .evidence import EvidenceQuote
from .fallback import QuoteFallback
from .generator import Backend, GenerationStats
from .indexer import IndexReport
from .policy import ABSTAIN_TEXT, AnswerPolicy
from .prompts import LeadInFilter
from .rewriter import QueryRewriter
from .storage import AnyStore, store_exists
from .types import Answer, AnswerStats, Checking, Citation, DraftPiece, Event, Final, Passage, Reason, Sentence
from .verdict import VerdictLead
from .verifier import MODES, Verifier

log = logging.getLogger(__name__)


#: A terminal escape sequence (colours, cursor moves) pasted with a question.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


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
    # Drop terminal colour codes ("\x1b[31m") whole, then control characters and unpaired surrogates;
    # keep every script.
    q = _ANSI_ESCAPE.sub("", question)
    q = "".join(ch for ch in q if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    q = q.encode("utf-8", errors="ignore").decode("utf-8")
    q = " ".join(q.split())
    if not q:
        raise ValueError("the question is empty: type a question about the documents")
    if len(q) > max_chars:
        raise ValueError(f"the question is {len(q):,} characters long; the limit is {max_chars:,}. Please shorten it.")
    return q


class _Clock:
    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        lap, self.last = now - self.last, now
        return lap

    def total(self) -> float:
        return time.perf_counter() - self.start


class Assistant:
    """Index documents and answer questions about them with cited passages.

    Life cycle: ``index`` (or ``add_to_index``) -> ``ask`` / ``stream`` / ``search`` ->
    ``delete_from_index``.

    Args:
        settings: All settings (default: ``Settings.from_env()``).
        collection, generator, context, rewriter, verifier, policy, fallback, splitter, verdict, evidence: Components to
            use instead of the ones built from ``settings`` (tests hand in fakes this way).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        collection: Collection | None = None,
        generator: Backend | None = None,
        context: ContextBuilder | None = None,
        rewriter: QueryRewriter | None = None,
        verifier: Verifier | None = None,
        policy: AnswerPolicy | None = None,
        fallback: QuoteFallback | None = None,
        splitter: QuestionSplitter | None = None,
        verdict: VerdictLead | None = None,
        evidence: EvidenceQuote | None = None,
    ) -> None:
        setup_offline()
        self.settings = settings or Settings.from_env()
        self._collection = collection
        self._generator = generator
        self._context = context
        self._rewriter = rewriter
        self._verifier = verifier
        self.policy = policy or AnswerPolicy(min_supported_share=self.settings.min_supported_share, strict=self.settings.strict)
        s = self.settings
        self.fallback = fallback or QuoteFallback(threshold=s.fallback_threshold)
        self.splitter = splitter or (QuestionSplitter() if s.split_questions else None)
        self.verdict = verdict or (VerdictLead.from_settings(s) if s.yes_no_verdict else None)
        self.evidence = evidence or (EvidenceQuote() if s.evidence_quote else None)
        self._fallback_reasons = (
            {Reason.UNSUPPORTED, Reason.NOT_AN_ANSWER} | ({Reason.MODEL_DECLINED} if s.fallback_on_decline else set())
            if s.fallback
            else set()
        )
        self._lock = threading.Lock()

    # ----- components (built on first use) ------------------------------------------------------

    @property
    def collection(self) -> Collection:
        with self._lock:
            if self._collection is None:
                from .registry import get_embedder

                self._collection = Collection(self.settings, lambda: get_embedder(self.settings))
            return self._collection

    @property
    def generator(self) -> Backend:
        if self._generator is None:
            from .registry import get_backend

            self._generator = get_backend(self.settings, role="answer")
        return self._generator

    @property
    def context(self) -> ContextBuilder:
        with self._lock:
            if self._context is None:
                s = self.settings
                self._context = ContextBuilder(
                    self.generator,
                    whole_corpus_tokens=s.whole_corpus_tokens,
                    window_tokens=s.window_tokens,
                    extra_passages=s.extra_passages,
                    max_windows=s.max_windows,
                    hints=s.hint_passages,
                    answer_style=s.answer_style,
                    cache_dir=s.cache_dir,
                )
            return self._context

    @property
    def rewriter(self) -> QueryRewriter:
        with self._lock:
            if self._rewriter is None:
                from .registry import get_backend

                s = self.settings
                self._rewriter = QueryRewriter(
                    get_backend(s, role="rewrite"),
                    max_tokens=s.rewrite_max_tokens,
                    turns=s.rewrite_turns,
                    answer_chars=s.rewrite_answer_chars,
                    max_chars=s.max_question_chars,
                )
            return self._rewriter

    def verifier(self, mode: str | None = None) -> Verifier:
        """The verifier in ``mode`` (default ``settings.judge``); the judge model loads only for ``llm``."""
        mode = mode or self.settings.judge
        with self._lock:
            if self._verifier is not None and self._verifier.mode == mode:
                return self._verifier
            if self._verifier is None and mode == self.settings.judge:
                self._verifier = self._new_verifier(mode)
                return self._verifier
            judge = self._verifier.judge if self._verifier is not None else None
        return self._new_verifier(mode, judge)

    def _new_verifier(self, mode: str, judge=None) -> Verifier:
        if mode == "llm" and judge is None:
            from .judge import Judge

            judge = Judge.from_settings(self.settings)
        return Verifier(judge, mode=mode, thresholds=Verifier.thresholds_from(self.settings))

    @property
    def store(self) -> AnyStore:
        """The loaded index (reloaded when a newer generation was saved)."""
        return self.collection.store

    def warm_up(self) -> str:
        """Load the index and every model now, and the whole-corpus KV prefix; returns the prefix state."""
        store = self.collection.store
        self.collection.retriever.embedder.encode_query("warm up")
        self.verifier()
        return self.context.warm(store, every_window=True)

    # ----- indexing -----------------------------------------------------------------------------

    def index(self, paths: Sequence[str | Path], *, rebuild: bool = False, prune: bool = False, progress: bool = True) -> IndexReport:
        """Index files or folders into ``settings.index_dir`` (incremental unless ``rebuild``)."""
        return self.collection.index(paths, rebuild=rebuild, prune=prune, progress=progress)

    def add_to_index(self, paths: Sequence[str | Path], *, progress: bool = True) -> IndexReport:
        """Add or update documents without removing anything."""
        return self.index(paths, progress=progress)

    def delete_from_index(self, ids_or_sources: Sequence[str]) -> list[str]:
        """Remove documents (by doc id or source path); returns the sources removed."""
        return self.collection.delete(ids_or_sources)

    def documents(self) -> list[dict]:
        """The indexed documents: doc_id, source, title, chunks."""
        return self.collection.documents()

    def document_text(self, doc_id: str) -> str:
        return self.collection.document_text(doc_id)

    # ----- retrieval and answering ---------------------------------------------------------------

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        """The top-``k`` passages for ``question`` (no generation)."""
        q = clean_question(question, self.settings.max_question_chars)
        return self.collection.retriever.run(q, k or self.settings.top_k).passages

    def ask(self, question: str, **options) -> Answer:
        """Answer ``question`` from the index, citing passages, or abstain. Options as for ``stream``."""
        events = self.stream(question, **options)
        for event in events:
            if isinstance(event, Final):
                return event.answer
        raise RuntimeError("the answer stream ended without a final answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        history: Sequence[tuple[str, str]] | None = None,
        strict: bool | None = None,
        judge: str | None = None,
    ) -> Iterator[Event]:
        """Answer ``question`` as a stream of events: ``DraftPiece``s, ``Checking``, then ``Final(answer)``.

        Args:
            k: Passages given to the model when the corpus does not fit the prompt (default ``settings.top_k``).
            history: Earlier (question, answer) pairs; a follow-up is rewritten into a standalone question.
            strict: Show only supported sentences (default ``settings.strict``).
            judge: ``llm``, ``lexical`` or ``off`` (default ``settings.judge``).

        Raises:
            ValueError: empty, whitespace-only or over-long question (before anything is yielded).
        """
        q = clean_question(question, self.settings.max_question_chars)
        mode = judge or self.settings.judge
        if mode not in MODES:
            raise ValueError(f"unknown judge mode {mode!r}: use {', '.join(MODES)}")
        return self._stream(q, k or self.settings.top_k, history, strict, mode)

    def _stream(self, q: str, k: int, history, strict: bool | None, mode: str) -> Iterator[Event]:
        clock = _Clock()
        standalone = self.rewriter.run(q, history) if history else q
        rewrite_s = clock.lap()
        parts = self.splitter.run(standalone) if self.splitter is not None else [standalone]
        if len(parts) == 1:
            yield from self._stream_one(q, standalone, k, strict, mode, clock, rewrite_s)
            return
        # Several questions in one, each standing on its own: each is retrieved, drafted and checked alone.
        answers: list[Answer] = []
        for i, part in enumerate(parts):
            if i:
                yield DraftPiece("\n\n")
            search = self.splitter.search_text(part)
            for event in self._stream_one(part, part, k, strict, mode, _Clock(), 0.0, search=search):
                if isinstance(event, Final):
                    answers.append(event.answer)
                elif isinstance(event, DraftPiece) or i == len(parts) - 1:
                    yield event  # one Checking event, after the last part's draft
        log.info("question answered in %d parts: %s", len(parts), parts)
        yield Final(merge_parts(q, standalone, parts, answers, rewrite_s, clock.total()))

    def _stream_one(
        self,
        q: str,
        standalone: str,
        k: int,
        strict: bool | None,
        mode: str,
        clock: _Clock,
        rewrite_s: float,
        search: str | None = None,
    ) -> Iterator[Event]:
        """Answer one question; ``search`` (default ``standalone``) is the text passages are retrieved with."""
        stats = AnswerStats(rewrite_s=rewrite_s)
        retriever = self.collection.retriever
        retrieval = retriever.run(search or standalone, max(k, self.settings.retrieved_k))
        stats.retrieve_s, stats.best_dense, stats.best_bm25 = clock.lap(), retrieval.best_dense, retrieval.best_bm25
        result = _Result(q, standalone, stats, clock, retrieval.passages)
        top = retrieval.passages[:k]
        if reason := self.policy.before_generation(retrieval.relevant, len(top)):
            yield Final(result.abstain(reason))
            return

        ctx = self.context.run(
            standalone, retriever.store, retrieval.passages, k=k, query_vector=retrieval.query_vector, scorer=retriever,
            document=retrieval.document,
        )
        stats.whole_corpus, stats.prefix, stats.window = ctx.whole_corpus, ctx.prefix, ctx.window
        gen, pieces = GenerationStats(), []
        drafted = self.generator.stream(ctx.prompt, max_tokens=self.settings.max_new_tokens, stats=gen)
        if self.settings.answer_style == "evidence":
            drafted = LeadInFilter().filter(drafted)
        for piece in drafted:
            if not pieces:
                stats.first_token_s = clock.total()
            pieces.append(piece)
            yield DraftPiece(piece)
        stats.generate_s, stats.queue_s, stats.answer_s = gen.total_s, gen.wait_s, clock.total()
        stats.prompt_tokens, stats.cached_tokens, stats.completion_tokens = gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens
        yield Checking()

        clock.lap()
        verifier = self.verifier(mode)  # the judge model loads here, after the first words are out
        raw, texts = "".join(pieces).strip(), [p.text for p in ctx.passages]
        sentences = attach_citations(raw, texts, min_overlap=self.settings.citation_min_overlap)
        if gen.hit_limit:
            sentences = drop_cut_off(sentences)
        reason = self.policy.screen(raw, sentences)
        if reason is None:
            verified = [verifier.check(s, ctx.passages, standalone) for s in sentences]
            reason = self.policy.review(verified, texts)
        if reason is None:
            stats.relevance = verifier.answers_question(standalone, " ".join(s.text for s in verified if s.supported))
            reason = self.policy.relevance(verifier.is_answer(stats.relevance))
        off_subject = False
        if reason is None:
            cards = {n for n, p in enumerate(ctx.passages, 1) if p.chunk.is_card}
            reason = self.policy.on_subject(standalone, verified, texts, cards)
            off_subject = reason is not None
        if reason is None:
            kept = self._with_evidence(standalone, self._with_verdict(standalone, self.policy.keep(verified, strict), verifier), ctx.passages)
            stats.verify_s = clock.lap()
            yield Final(result.answer(kept, ctx.passages))
            return
        if reason in self._fallback_reasons:
            # No good answer thrown away: a passage sentence that answers the question, quoted.
            if off_subject:  # the draft came from the wrong passage: look where the question's subject is named
                cited, draft = self.policy.naming(standalone, texts, cards), ""
            else:
                cited, draft = [n for s in sentences for n in s.cites], raw
            found = self.fallback.run(standalone, ctx.passages, retrieval.passages, cited, verifier, draft)
            if found:
                quoted, stats.relevance = found
                quoted = self._with_evidence(standalone, self._with_verdict(standalone, quoted, verifier), ctx.passages)
                stats.verify_s, stats.fallback_from = clock.lap(), reason.value
                yield Final(result.answer(quoted, ctx.passages))
                return
        stats.verify_s = clock.lap()
        yield Final(result.abstain(reason))

    def _with_verdict(self, question: str, kept: list[Sentence], verifier: Verifier) -> list[Sentence]:
        """A yes/no question's checked answer opened with "Yes." or "No." when it settles it (``rag.verdict``)."""
        return self.verdict.run(question, kept, verifier) if self.verdict is not None else kept

    def _with_evidence(self, question: str, kept: list[Sentence], passages: list[Passage]) -> list[Sentence]:
        """A checked answer (or quote) followed by the passage sentence it rests on and leaves out (``rag.evidence``)."""
        return self.evidence.run(question, kept, passages) if self.evidence is not None else kept


class _Result:
    """Builds the final ``Answer`` of one question."""

    def __init__(self, question: str, standalone: str, stats: AnswerStats, clock: _Clock, retrieved: list[Passage]) -> None:
        self.question, self.standalone, self.stats, self.clock, self.retrieved = question, standalone, stats, clock, retrieved

    def abstain(self, reason: Reason) -> Answer:
        self.stats.total_s = self.clock.total()
        return Answer(
            question=self.question,
            text=AnswerPolicy.text_for(reason),
            abstained=True,
            reason=reason,
            standalone_question=self.standalone,
            stats=self.stats,
            retrieved=self.retrieved,
        )

    def answer(self, kept: list[Sentence], passages: list[Passage]) -> Answer:
        self.stats.total_s = self.clock.total()
        numbers = sorted({n for s in kept for n in s.citations})
        return Answer(
            question=self.question,
            text=render([CitedSentence(s.text, s.citations) for s in kept]),
            abstained=False,
            citations=[citation(n, passages[n - 1]) for n in numbers],
            sentences=kept,
            standalone_question=self.standalone,
            stats=self.stats,
            retrieved=self.retrieved,
            passages=passages,
        )


def merge_parts(
    question: str, standalone: str, parts: Sequence[str], answers: Sequence[Answer], rewrite_s: float, total_s: float
) -> Answer:
    """One ``Answer`` from the answers to the parts of ``question`` (``QuestionSplitter``).

    The answered parts' sentences follow each other, their citations renumbered into one list of
    passages; a part the documents don't answer says so in a sentence of its own. When no part is
    answered the whole answer abstains, with the first part's reason.
    """
    stats = _combined_stats([a.stats for a in answers], rewrite_s, total_s)
    retrieved = _interleave([a.retrieved for a in answers])
    if all(a.abstained for a in answers):
        first = answers[0]
        return dataclasses.replace(first, question=question, standalone_question=standalone, stats=stats, retrieved=retrieved)
    passages: list[Passage] = []
    number: dict[int, int] = {}  # chunk id -> its number in ``passages``
    sentences: list[Sentence] = []
    for part, answer in zip(parts, answers):
        if answer.abstained:
            sentences.append(Sentence(f"{_NOT_ANSWERED} \u201c{question_sentence(part)}\u201d.", ()))
            continue
        for p in answer.passages:
            if p.chunk.chunk_id not in number:
                passages.append(p)
                number[p.chunk.chunk_id] = len(passages)
        for s in answer.sentences:
            renumbered = tuple(number[answer.passages[n - 1].chunk.chunk_id] for n in s.citations)
            sentences.append(dataclasses.replace(s, citations=renumbered))
    cited = sorted({n for s in sentences for n in s.citations})
    return Answer(
        question=question,
        text=render([CitedSentence(s.text, s.citations) for s in sentences]),
        abstained=False,
        citations=[citation(n, passages[n - 1]) for n in cited],
        sentences=sentences,
        standalone_question=standalone,
        stats=stats,
        retrieved=retrieved,
        passages=passages,
    )


#: How an answer to several questions says that one of them is not answered by the documents.
_NOT_ANSWERED = "The documents don't answer"


def _combined_stats(stats: Sequence[AnswerStats], rewrite_s: float, total_s: float) -> AnswerStats:
    """The first part's stats (its window, its first token), with times and token counts summed over all parts."""
    out = dataclasses.replace(stats[0], rewrite_s=rewrite_s, total_s=total_s, parts=len(stats))
    if out.first_token_s is not None:
        out.first_token_s += rewrite_s
    for name in ("retrieve_s", "generate_s", "queue_s", "verify_s", "prompt_tokens", "cached_tokens", "completion_tokens"):
        values = [getattr(s, name) for s in stats if getattr(s, name) is not None]
        setattr(out, name, sum(values) if values else None)
    return out


def _interleave(rankings: Sequence[Sequence[Passage]]) -> list[Passage]:
    """The parts' rankings taken in turn (best of each first), each passage once."""
    out, seen = [], set()
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank].chunk.chunk_id not in seen:
                seen.add(ranking[rank].chunk.chunk_id)
                out.append(ranking[rank])
    return out


def citation(n: int, p: Passage) -> Citation:
    """The citation ``[n]`` for prompt passage ``p``."""
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


def ask(question: str, *, index: str | Path | None = None, settings: Settings | None = None, **options) -> Answer:
    """Answer ``question`` from an index with cited passages, or abstain.

    Args:
        question: The question (empty or whitespace-only raises ``ValueError``).
        index: Index folder (default: the default corpus's index, ``index/default``).
        settings: Full settings (default: ``Settings.from_env()``).
        **options: ``k`` (default 4), ``history`` (earlier (question, answer) pairs), ``strict``
            (default False), ``judge`` (``llm``, the default, ``lexical`` or ``off``).

    Returns:
        An ``Answer``: ``text``, ``abstained``, ``reason``, ``citations``, ``sentences``, ``retrieved``.
    """
    return get_assistant(index, settings).ask(question, **options)


def stream(question: str, *, index: str | Path | None = None, settings: Settings | None = None, **options) -> Iterator[Event]:
    """Like ``ask``, as events: ``DraftPiece`` (the unchecked draft), ``Checking``, then ``Final(answer)``."""
    return get_assistant(index, settings).stream(question, **options)


def ensure_default_index(settings: Settings | None = None, *, progress: bool = True) -> IndexReport | None:
    """Build or refresh the default corpus's index when it is missing or stale."""
    from .config import DEFAULT_SOURCES_DIR

    settings = settings or Settings.from_env()
    assistant = get_assistant(settings.index_dir, settings)
    try:
        stale = not store_exists(settings)
        report = assistant.index([DEFAULT_SOURCES_DIR], rebuild=False, progress=progress)
        return report if (stale or report.changed) else None
    except RagError:
        return assistant.index([DEFAULT_SOURCES_DIR], rebuild=True, progress=progress)


__all__ = ["Assistant", "ask", "stream", "get_assistant", "ensure_default_index", "clean_question", "ABSTAIN_TEXT"]
