"""Split documents into chunks that the embedder reads whole.

Each section (the text between two headings) is split on its own, so a chunk never straddles a
heading. ``langchain-text-splitters`` proposes the splits (paragraphs, then lines, then
sentences, then words), sized with the embedder's own tokenizer. Its start
offsets are not trusted (they come back as -1 for repeated text); offsets are
computed here and every chunk satisfies ``document.text[start:end] == chunk.text``.
A chunk longer than the embedder's limit is cut again on token boundaries, so
nothing is silently truncated at embedding time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .types import Chunk, Document

log = logging.getLogger(__name__)

#: Split points tried in order: paragraphs, lines, sentence ends, clause ends, words, characters.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


#: A section shorter than this (a heading alone, a title block line) is joined to the next one.
MIN_SECTION_CHARS = 200


def sections(document: Document, body: int = 0) -> list[tuple[int, int]]:
    """The (start, end) spans of ``document.text[body:]`` between its headings.

    Each heading opens a section, so no chunk runs across a heading and every chunk sits under the
    heading it belongs to (a numbered list stays under its title).
    """
    cuts = sorted({body, *(off for off, _ in document.headings if body < off < len(document.text))})
    bounds = [*cuts, len(document.text)]
    out: list[tuple[int, int]] = []
    for a, b in zip(bounds, bounds[1:]):
        if out and len(document.text[out[-1][0] : out[-1][1]].strip()) < MIN_SECTION_CHARS:
            out[-1] = (out[-1][0], b)  # a heading with (almost) nothing under it joins the next section
        else:
            out.append((a, b))
    return [(a, b) for a, b in out if document.text[a:b].strip()]


#: Identifies how documents are cut into chunks; stored with an index, so a change asks for a rebuild.
CHUNKING = "sections-1"


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunk size and overlap in embedder word pieces; ``max_tokens`` is the hard limit (special tokens included)."""

    chunk_tokens: int = 160
    chunk_overlap: int = 32
    max_tokens: int = 256


class Chunker:
    """Split ``Document`` texts into ``Chunk`` records with exact character offsets.

    Args:
        count_tokens: Returns the number of embedder word pieces of a text, special tokens excluded.
        config: Sizes (defaults: 160-token chunks, 32 overlap, hard limit 256 with special tokens).
        token_spans: Optional; returns the (start, end) character span of every word piece, used
            to cut an over-long chunk exactly at a token boundary.
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        config: ChunkerConfig | None = None,
        token_spans: Callable[[str], list[tuple[int, int]]] | None = None,
    ) -> None:
        self.config = config or ChunkerConfig()
        if self.config.chunk_tokens + 2 > self.config.max_tokens:
            raise ValueError("chunk_tokens must leave room for the two special tokens under max_tokens")
        if not 0 <= self.config.chunk_overlap < self.config.chunk_tokens:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_tokens")
        self.count_tokens = count_tokens
        self.token_spans = token_spans
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.config.chunk_tokens,
            chunk_overlap=self.config.chunk_overlap,
            length_function=count_tokens,
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )

    @classmethod
    def for_tokenizer(cls, tokenizer, config: ChunkerConfig | None = None) -> "Chunker":
        """Build a chunker from a Hugging Face (fast) tokenizer."""

        def count(text: str) -> int:
            return len(tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

        def spans(text: str) -> list[tuple[int, int]]:
            enc = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
            return [tuple(x) for x in enc["offset_mapping"]]

        return cls(count, config, spans)

    def _limit(self) -> int:
        return self.config.max_tokens - 2

    def _cut_long(self, text: str, start: int) -> list[tuple[int, int]]:
        """Cut a span that exceeds the hard limit into pieces under it (on token boundaries)."""
        limit = self._limit()
        if self.token_spans is not None:
            spans = self.token_spans(text)
            pieces: list[tuple[int, int]] = []
            i = 0
            while i < len(spans):
                j = min(i + limit, len(spans))
                a, b = spans[i][0], spans[j - 1][1]
                pieces.append((start + a, start + b))
                i = j
            return pieces
        # Without token spans: halve by characters until each piece fits.
        if len(text) <= 1 or self.count_tokens(text) <= limit:
            return [(start, start + len(text))]
        mid = len(text) // 2
        return self._cut_long(text[:mid], start) + self._cut_long(text[mid:], start + mid)

    def split_text(self, text: str) -> list[tuple[int, int]]:
        """Return (start, end) character spans of the chunks of ``text``."""
        spans: list[tuple[int, int]] = []
        cursor = 0
        prev_start = -1
        for piece in self._splitter.split_text(text):
            if not piece:
                continue
            # Chunks come in document order; an overlapping chunk starts after the previous start.
            pos = text.find(piece, prev_start + 1)
            if pos < 0:
                pos = text.find(piece)
            if pos < 0:  # pragma: no cover - the splitter only returns substrings
                raise AssertionError("splitter returned text that is not in the document")
            prev_start = pos
            end = pos + len(piece)
            if self.count_tokens(piece) > self._limit():
                spans.extend(self._cut_long(piece, pos))
            else:
                spans.append((pos, end))
            cursor = max(cursor, end)
        return spans

    def run(self, document: Document, first_chunk_id: int = 0) -> list[Chunk]:
        """Chunk one document; chunk ids count up from ``first_chunk_id``."""
        chunks = []
        # The document card is a chunk of its own, so a question about the document finds it undiluted.
        card_end = document.card_end
        body = len(document.text) - len(document.text[card_end:].lstrip())
        spans = ([(0, card_end)] if self.count_tokens(document.text[:card_end]) <= self._limit() else self._cut_long(document.text[:card_end], 0)) if card_end else []
        for a, b in sections(document, body):
            spans += [(a + s, a + e) for s, e in self.split_text(document.text[a:b])]
        for i, (s, e) in enumerate(spans):
            chunks.append(
                Chunk(
                    chunk_id=first_chunk_id + i,
                    doc_id=document.doc_id,
                    start=s,
                    end=e,
                    text=document.text[s:e],
                    page=document.page_at(s),
                    heading=document.heading_at(s),
                )
            )
        return chunks
