"""The typed records that cross module boundaries.

Data flow: ``Document`` (loader) -> ``Chunk`` (chunker, indexed) -> ``Passage``
(retriever: a chunk with scores) -> ``Answer`` with ``Citation`` and ``Sentence``
records (generator + citation logic + judge).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any


#: How a document card starts: the one line of metadata that opens a document's text (see
#: ``rag.loaders.document_card``).
CARD_PREFIX = "About this document: "


@dataclass(frozen=True)
class Document:
    """A loaded source document.

    ``text`` is the exact (cleaned) text that every character offset in the
    project refers to. ``doc_id`` is the sha256 of ``text`` (first 16 hex digits).
    """

    doc_id: str
    source: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Character offset where each page starts (PDFs; empty otherwise).
    page_starts: tuple[int, ...] = ()
    #: (offset, heading text) of every heading found, in order.
    headings: tuple[tuple[int, str], ...] = ()
    #: What the loader could not read but indexed the rest without, e.g. a scanned PDF page.
    warnings: tuple[str, ...] = ()

    @property
    def card_end(self) -> int:
        """End offset of the document card opening the text (0 when there is none)."""
        if not self.text.startswith(CARD_PREFIX):
            return 0
        end = self.text.find("\n\n")
        return end if end > 0 else len(self.text)

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding ``offset``, or None for unpaged documents."""
        if not self.page_starts:
            return None
        page = 0
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i
            else:
                break
        return page + 1

    def heading_at(self, offset: int) -> str | None:
        """The nearest heading at or before ``offset``, if any."""
        found = None
        for start, text in self.headings:
            if start <= offset:
                found = text
            else:
                break
        return found

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["page_starts"] = list(self.page_starts)
        d["headings"] = [list(h) for h in self.headings]
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Document":
        return cls(
            doc_id=d["doc_id"],
            source=d["source"],
            title=d["title"],
            text=d["text"],
            metadata=dict(d.get("metadata") or {}),
            page_starts=tuple(d.get("page_starts") or ()),
            headings=tuple((int(o), str(t)) for o, t in (d.get("headings") or ())),
            warnings=tuple(str(w) for w in (d.get("warnings") or ())),
        )


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text``."""

    chunk_id: int
    doc_id: str
    start: int
    end: int
    text: str
    page: int | None = None
    heading: str | None = None

    @property
    def embed_text(self) -> str:
        """What is embedded: the text under its heading (the heading adds the context a short chunk lacks)."""
        if self.heading and not self.text.startswith(self.heading):
            return f"{self.heading}\n{self.text}"
        return self.text

    @property
    def is_card(self) -> bool:
        """True for a document card: the document's metadata as one citable line."""
        return self.start == 0 and self.text.startswith(CARD_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Chunk":
        return cls(**{k: d.get(k) for k in ("chunk_id", "doc_id", "start", "end", "text", "page", "heading")})


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores and the provenance needed to cite it."""

    chunk: Chunk
    source: str
    title: str
    score: float
    dense_score: float = 0.0
    bm25_score: float = 0.0

    @property
    def text(self) -> str:
        return self.chunk.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk.to_dict(),
            "source": self.source,
            "title": self.title,
            "score": self.score,
            "dense_score": self.dense_score,
            "bm25_score": self.bm25_score,
        }


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: the passage ``[n]`` of the prompt.

    ``score`` is the cosine similarity between the question and the passage (0..1 in practice).
    """

    n: int
    doc_id: str
    source: str
    title: str
    start: int
    end: int
    quote: str
    score: float
    page: int | None = None
    heading: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """One answer sentence, the passages it cites and how well they support it.

    ``support`` is the judge's probability (0..1) that the cited passages support
    the sentence (1.0 when the sentence is quoted from a cited passage, 0.0 when it has
    a number they lack), or None when no judge ran; ``supported`` is the decision.
    """

    text: str
    citations: tuple[int, ...]
    support: float | None = None
    supported: bool | None = None
    #: True when the citation was added by the citation logic, not written by the model.
    citation_inferred: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["citations"] = list(self.citations)
        return d


class Reason(str, Enum):
    """Why an answer abstained. A ``str`` enum: ``Reason.UNSUPPORTED == "unsupported"``."""

    #: Retrieval found nothing above the relevance floor.
    NO_RELEVANT_PASSAGES = "no_relevant_passages"
    #: The model said the passages don't answer (or wrote nothing usable).
    MODEL_DECLINED = "model_declined"
    #: Too few of the answer's sentences are supported by their cited passages.
    UNSUPPORTED = "unsupported"
    #: The supported sentences do not answer the question that was asked.
    NOT_AN_ANSWER = "not_an_answer"
    #: The request is not a question about the documents (e.g. it asks for code).
    OFF_TOPIC = "off_topic"

    def __str__(self) -> str:
        return self.value


@dataclass
class AnswerStats:
    """Timings in seconds and token counts of one answer (fields stay None when a step did not run)."""

    rewrite_s: float | None = None
    retrieve_s: float | None = None
    first_token_s: float | None = None
    generate_s: float | None = None
    queue_s: float | None = None
    verify_s: float | None = None
    answer_s: float | None = None
    total_s: float | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    #: Best cosine similarity and best BM25 score of the retrieval.
    best_dense: float | None = None
    best_bm25: float | None = None
    #: True when the prompt held the whole corpus (KV-cached prefix) instead of the top-k passages.
    whole_corpus: bool | None = None
    #: What happened to the whole-corpus prefix: ``cached``, ``loaded``, ``computed`` or ``none``.
    prefix: str | None = None
    #: The verifier's probability that the answer answers the question.
    relevance: float | None = None
    #: Why the draft failed when the answer is a quoted passage sentence instead (``rag.fallback``).
    fallback_from: str | None = None
    #: The window of the corpus that was the prompt's head (None for plain top-k passages).
    window: str | None = None
    #: Into how many questions the question was split (``rag.decompose``; None when it was not).
    parts: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Answer:
    """What ``ask()`` returns.

    ``text`` holds the answer with ``[n]`` markers that refer to ``citations``.
    When ``abstained`` is True, ``text`` says plainly that the documents don't
    answer the question, ``citations`` is empty and ``reason`` says why.
    """

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    #: Why the answer abstained (None when it answered).
    reason: Reason | None = None
    #: The question actually used for retrieval (differs after follow-up rewriting).
    standalone_question: str | None = None
    #: Timings and token counts.
    stats: AnswerStats = field(default_factory=AnswerStats)
    #: The ranked retrieval results (best first), whether or not they reached the prompt.
    retrieved: list[Passage] = field(default_factory=list)
    #: The passages numbered in the prompt: ``citations[i].n`` is a 1-based index into this list.
    passages: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "abstained": self.abstained,
            "reason": self.reason.value if self.reason is not None else None,
            "standalone_question": self.standalone_question,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [s.to_dict() for s in self.sentences],
            "stats": self.stats.to_dict(),
            "retrieved": [p.to_dict() for p in self.retrieved],
        }


# ----- the typed answer stream: ``Assistant.stream()`` yields these ---------------------------------


@dataclass(frozen=True)
class DraftPiece:
    """A piece of the model's draft, as it is written. The draft is not checked yet: it may be
    cut down or withdrawn by the final ``Answer``."""

    text: str


@dataclass(frozen=True)
class Checking:
    """The draft is complete; its sentences are being checked against their passages."""


@dataclass(frozen=True)
class Final:
    """The checked answer: always the last event of a stream."""

    answer: Answer


Event = DraftPiece | Checking | Final
