"""AnswerPolicy.keep: which checked sentences are shown; AnswerPolicy.on_subject: answers drawn from the wrong passage."""

from __future__ import annotations

from rag.policy import AnswerPolicy, without_repeats
from rag.types import Reason, Sentence

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


BOARDS = (
    "The emergence of regional local government structures under devolution deals, alongside the establishment of "
    "Integrated Care Boards at system level and Integrated Care Partnerships in local areas gives new opportunities."
)
MIXED = "At local level, the picture is mixed. To take one example, reports suggest that one third of swimming pools are at risk of closure."
CARD = 'About this document: "Integrated Care Boards explained", written by A. Writer.'


def test_an_answer_from_a_passage_that_never_names_the_asked_subject_is_not_an_answer():
    question = "At what level have Integrated Care Boards been established?"
    drawn_wrong = [sentence("At local level, the picture is mixed.", (2,))]
    assert AnswerPolicy.on_subject(question, drawn_wrong, [BOARDS, MIXED]) is Reason.NOT_AN_ANSWER
    # drawn from the passage that names them: an answer, even when it says "they"
    right = [sentence("They were established at system level.", (1,))]
    assert AnswerPolicy.on_subject(question, right, [BOARDS, MIXED]) is None


def test_the_subject_check_needs_another_passage_that_names_it_and_ignores_cards_and_the_situation():
    drawn_wrong = [sentence("At local level, the picture is mixed.", (2,))]
    question = "At what level have Integrated Care Boards been established?"
    # no passage names the Boards: nothing better to draw from, the other checks decide
    assert AnswerPolicy.on_subject(question, drawn_wrong, ["Some other text.", MIXED]) is None
    # only the document card names them: the card is not where an answer about them comes from
    assert AnswerPolicy.on_subject(question, drawn_wrong, [CARD, MIXED], cards={1}) is None
    # names told in a situation before the question are not what is asked about
    told = "I work for the Integrated Care Boards. At what level is the picture mixed?"
    assert AnswerPolicy.on_subject(told, drawn_wrong, [BOARDS, MIXED]) is None
    # a question that names nothing is not checked; nor is an answer with no supported sentence
    assert AnswerPolicy.on_subject("At what level is it set up?", drawn_wrong, [BOARDS, MIXED]) is None
    unsupported = [sentence("At local level, the picture is mixed.", (2,), support=0.1)]
    assert AnswerPolicy.on_subject(question, unsupported, [BOARDS, MIXED]) is None


def test_an_abbreviation_or_one_word_of_the_name_counts_as_naming_it():
    passages = ["The Levelling Up Fund (LUF) opened its second round.", "Round 2 of the LUF was announced in March."]
    question = "When was Round 2 of the Levelling Up Fund announced?"
    assert AnswerPolicy.on_subject(question, [sentence("It was announced in March.", (2,))], passages) is None
    passages = [BOARDS, "The Boards were set up at system level."]
    question = "At what level have Integrated Care Boards been established?"
    assert AnswerPolicy.on_subject(question, [sentence("At system level.", (2,))], passages) is None


def test_naming_lists_the_passages_that_mention_the_asked_subject_in_prompt_order_cards_aside():
    question = "At what level have Integrated Care Boards been established?"
    assert AnswerPolicy.naming(question, [CARD, MIXED, BOARDS, "The Boards meet monthly."], cards={1}) == [3, 4]
    assert AnswerPolicy.naming("At what level is it set up?", [BOARDS], cards=()) == []
