"""Sentence vectors: each chunk's sentences embedded on their own, for the sentence ranking.

A chunk's vector blurs its sentences together: "The time horizon for our missions is 2030." is one
of six sentences about the economy, and the chunk ranks sixth for "What is the time horizon for the
levelling up missions?". The retriever therefore also ranks chunks by their best-matching sentence
(``rag.retriever``), fused with the chunk ranking and BM25. Measured on the team's suites
(recall@4, dev / test): the article 0.950 / 0.929 -> 0.991 / 0.986, the article with the White
Paper summary 0.911 / 0.861 -> 0.946 / 0.917, ConditionalQA's 7,506-sentence pool 0.822 / 0.900 ->
0.842 / 0.926; a heading embedded with each sentence did worse (0.911 / 0.880 on the White Paper).

A sentence's id carries its chunk's: ``chunk_id << SENTENCE_BITS | position``, so the index needs no
table from sentence to chunk, and a chunk's sentences are removed with it.
"""

from __future__ import annotations

import re

import numpy as np

from .types import Chunk

#: Bits of a sentence id that number the sentence within its chunk (at most 1,024 sentences a chunk).
SENTENCE_BITS = 10
#: Sentences of fewer words are not embedded on their own ("Levelling up will require us to:").
MIN_WORDS = 4

# Sentence and clause ends: a full stop, ?, !, ; or : before a space, or a line break (list items).
_BOUNDARY = re.compile(r"(?<=[.!?;:])\s+|\n+")


def chunk_sentences(chunk: Chunk) -> list[str]:
    """The sentences of ``chunk`` that are embedded on their own: clauses and list items of at least
    ``MIN_WORDS`` words, in order, at most ``2 ** SENTENCE_BITS``."""
    parts = (p.strip() for p in _BOUNDARY.split(chunk.text))
    return [p for p in parts if len(p.split()) >= MIN_WORDS][: 1 << SENTENCE_BITS]


def sentence_ids(chunk_id: int, n: int) -> np.ndarray:
    """Ids of the ``n`` sentences of chunk ``chunk_id``."""
    return (np.int64(chunk_id) << SENTENCE_BITS) + np.arange(n, dtype=np.int64)


def chunk_of(ids: np.ndarray) -> np.ndarray:
    """The chunk id of each sentence id."""
    return np.asarray(ids, dtype=np.int64) >> SENTENCE_BITS


def best_chunks(scores: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(chunk id, best sentence score) of the first ``k`` chunks, from sentence hits ranked best first
    (ids below 0 are FAISS's padding)."""
    out: dict[int, float] = {}
    for sid, score in zip(ids, scores):
        if sid < 0:
            continue
        cid = int(sid) >> SENTENCE_BITS
        if cid not in out:
            out[cid] = float(score)
            if len(out) == k:
                break
    return list(out.items())
