"""The typed records that cross module boundaries.

Data flow: ``Document`` (loader) -> ``Chunk`` (chunker, indexed) -> ``Passage``
(retriever: a chunk with scores) -> ``Answer`` with ``Citation`` and ``Sentence``
records (generator + citation logic + judge).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class Answer:
    """What ``ask()`` returns.

    ``text`` holds the answer with ``[n]`` markers that refer to ``citations``.
    When ``abstained`` is True, ``text`` says plainly that the documents don't
    answer the question and ``citations`` is empty.
    """

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    #: Why the answer abstained (``no_relevant_passages``, ``model_declined``, ``unsupported``, ...).
    reason: str | None = None
    #: The question actually used for retrieval (differs after follow-up rewriting).
    standalone_question: str | None = None
    #: Timings in seconds and token counts: ``retrieve_s``, ``first_token_s``, ``total_s``, ``prompt_tokens`` ...
    stats: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "abstained": self.abstained,
            "reason": self.reason,
            "standalone_question": self.standalone_question,
            "citations": [c.to_dict() for c in self.citations],
            "sentences": [s.to_dict() for s in self.sentences],
            "stats": dict(self.stats),
        }
