"""Sentence vectors: which parts of a chunk are embedded on their own, and how their ids name the chunk."""

from __future__ import annotations

import numpy as np

from rag.sentences import MIN_WORDS, SENTENCE_BITS, best_chunks, chunk_of, chunk_sentences, sentence_ids
from rag.types import Chunk


def _chunk(text: str, chunk_id: int = 3) -> Chunk:
    return Chunk(chunk_id=chunk_id, doc_id="d", start=0, end=len(text), text=text)


def test_a_chunk_is_cut_at_sentence_and_clause_ends_and_line_breaks():
    text = (
        "The missions are ambitious. The time horizon for our missions is 2030.\n"
        "Levelling up will require us to:\n"
        "a. boost productivity, pay, jobs and living standards\n"
        "b. spread opportunities; improve public services where they are weakest"
    )
    assert chunk_sentences(_chunk(text)) == [
        "The missions are ambitious.",
        "The time horizon for our missions is 2030.",
        "Levelling up will require us to:",
        "boost productivity, pay, jobs and living standards",  # the item letter "a." is a fragment of its own
        "improve public services where they are weakest",  # "b. spread opportunities;" is too short
    ]


def test_fragments_shorter_than_min_words_are_not_embedded_alone():
    assert MIN_WORDS == 4
    assert chunk_sentences(_chunk("Yes. No way. Summary:\nThe council runs 12 libraries.")) == ["The council runs 12 libraries."]


def test_sentence_ids_name_their_chunk_and_position():
    ids = sentence_ids(5, 3)
    assert ids.tolist() == [5 << SENTENCE_BITS, (5 << SENTENCE_BITS) + 1, (5 << SENTENCE_BITS) + 2]
    assert chunk_of(ids).tolist() == [5, 5, 5]
    assert chunk_of(sentence_ids(0, 1)).tolist() == [0]


def test_a_chunk_ranks_by_its_best_sentence_and_padding_is_skipped():
    ids = np.concatenate([sentence_ids(2, 2), sentence_ids(9, 1), sentence_ids(4, 1), [-1]])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.0])
    order = [ids[0], ids[2], ids[1], ids[3], ids[4]]  # best first: 2, 9, 2 again, 4, padding
    ranked = best_chunks(np.array([0.9, 0.7, 0.8, 0.6, 0.0]), np.array(order), k=10)
    assert ranked == [(2, 0.9), (9, 0.7), (4, 0.6)]
    assert best_chunks(scores, ids, k=1) == [(2, 0.9)]
