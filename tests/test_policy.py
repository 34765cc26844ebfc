"""AnswerPolicy.keep: which checked sentences are shown."""

from __future__ import annotations

from rag.policy import AnswerPolicy, without_repeats
from rag.types import Sentence

PILOTS = "The Innovation Accelerator pilots will be centred on Greater Manchester, the West Midlands and Glasgow City-Region."


def sentence(text: str, cites: tuple[int, ...] = (8,), support: float = 0.9) -> Sentence:
    return Sentence(text, cites, support, support >= 0.5)


def test_a_looping_draft_shows_each_statement_once():
    verified = [
        sentence(PILOTS),
        sentence("These pilots will be centred on Greater Manchester, the West Midlands and Glasgow City-Region."),
        sentence("These pilots will be centred on Greater Manchester, the West Midlands and Glasgow."),
        sentence("They will receive £100 million.", (9,)),
    ]
    kept = AnswerPolicy().keep(verified)
    assert [s.text for s in kept] == [PILOTS, "They will receive £100 million."]
    assert [s.text for s in AnswerPolicy(strict=True).keep(verified)] == [s.text for s in kept]


def test_a_later_sentence_that_adds_a_word_a_number_or_a_negation_stays():
    first = sentence("The fund will open in 2023.")
    later = [
        sentence("The fund will open in 2024."),  # another number
        sentence("The fund will not open in 2023."),  # a negation the first lacks
        sentence("The capital fund will open in 2023."),  # a content word more
    ]
    for s in later:
        assert without_repeats([first, s]) == [first, s], s.text


def test_only_sentences_after_the_one_they_repeat_are_dropped_and_order_is_kept():
    a, b = sentence("Councils run the libraries."), sentence("Opening hours were cut in 2022.")
    assert without_repeats([a, b, sentence("The libraries are run by councils.")]) == [a, b]
    assert without_repeats([b, a]) == [b, a]
    assert without_repeats([]) == []


def test_a_supported_repeat_takes_the_place_of_an_unsupported_statement_shown_before_it():
    flagged = sentence("Councils run the libraries.", (2,), support=0.2)
    backed = sentence("The libraries are run by councils.", (3,))
    assert without_repeats([flagged, backed]) == [backed]
    assert AnswerPolicy().keep([flagged, backed, sentence("Opening hours were cut in 2022.")])[0] is backed
