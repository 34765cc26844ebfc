"""The passage sentence quoted after an answer that restates a yes/no question or leaves it out (``rag.evidence``)."""

from __future__ import annotations

import pytest

from rag.evidence import EvidenceQuote, denied, longest_common_run
from rag.types import CARD_PREFIX, Chunk, Passage, Sentence

QUESTION = "Does the author say that joint working across complex public service systems is easy?"
RESTATED = Sentence("No. The author does not say that joint working across complex public service systems is easy.", (2,), 0.9, True)
DIFFICULT = (
    "Joint working across complex systems, involving multiple providers of different size and influence, "
    "will always be a difficult task."
)
PASSAGE = (
    "Levelling Up is a clarion call for better collaboration across public services. "
    f"{DIFFICULT} "
    "It requires an ability to bring people together under a shared vision."
)
CARD = f'{CARD_PREFIX}"Joint working", a blog article written by Ann Lee, published by Civic Lab on 2 May 2023.'


def passages(*texts: str) -> list[Passage]:
    out, pos = [], 0
    for i, t in enumerate(texts):
        out.append(Passage(Chunk(i, "d1", pos, pos + len(t), t), "/docs/d1.txt", "d1", 1.0 / (i + 1)))
        pos += len(t) + 1
    return out


def test_an_answer_that_only_says_the_question_back_is_followed_by_the_sentence_it_rests_on():
    ps = passages("The causes of inequality are complex and interconnected.", PASSAGE)
    out = EvidenceQuote().run(QUESTION, [RESTATED], ps)
    assert out[0] == RESTATED
    assert out[1] == Sentence(DIFFICULT, (2,), 1.0, True, False)


def test_an_answer_that_gives_a_reason_is_left_as_it_is():
    answer = [Sentence("No. Joint working across complex systems will always be a difficult task for multiple providers.", (2,), 0.9, True)]
    assert EvidenceQuote().run(QUESTION, answer, passages("Unrelated text here.", PASSAGE)) == answer


def test_an_answer_that_leaves_out_what_its_sentence_says_is_followed_by_it():
    question = "What does the author say about joint working across complex public service systems?"
    answer = [Sentence("The author says joint working across complex public service systems is hard.", (1,), 0.9, True)]
    assert EvidenceQuote().run(question, answer, passages(PASSAGE)) == [*answer, Sentence(DIFFICULT, (1,), 1.0, True, False)]


def test_an_answer_drawn_from_its_sentence_gets_nothing_added():
    question = "What does the author say about joint working across complex public service systems?"
    drawn = [Sentence("Joint working across complex systems with multiple providers of different size will always be difficult.", (1,), 0.9, True)]
    assert EvidenceQuote().run(question, drawn, passages(PASSAGE)) == drawn
    # The same answer with the bar at a share it does not reach gets the sentence.
    assert EvidenceQuote(max_cover=1.0).run(question, drawn, passages(PASSAGE))[-1].text == DIFFICULT


def test_a_sentence_sharing_too_few_words_with_the_question_is_not_quoted():
    question = "What is hard about providers?"
    answer = [Sentence("It is a difficult task.", (1,), 0.9, True)]
    assert EvidenceQuote().run(question, answer, passages(PASSAGE)) == answer


@pytest.mark.parametrize("bad", [{"min_shared_any": 0}, {"max_cover": 0.0}, {"max_cover": 1.5}, {"quoted_run": 1}])
def test_bad_left_out_settings_are_rejected(bad):
    with pytest.raises(ValueError):
        EvidenceQuote(**bad)


def test_an_answer_with_an_unsupported_sentence_gets_nothing_added():
    flagged = Sentence(RESTATED.text, (1,), 0.2, False)
    assert EvidenceQuote().run(QUESTION, [flagged], passages(PASSAGE)) == [flagged]


def test_only_the_cited_passages_are_searched_and_never_a_document_card():
    # The answer cites [1], which holds nothing more; the sentence in [2] is not quoted.
    answer = [Sentence(RESTATED.text, (1,), 0.9, True)]
    assert EvidenceQuote().run(QUESTION, answer, passages("This blog post is about public health and leisure.", PASSAGE)) == answer
    card_cited = [Sentence(RESTATED.text, (1,), 0.9, True)]
    assert EvidenceQuote().run(QUESTION, card_cited, passages(CARD, PASSAGE)) == card_cited


def test_a_sentence_that_adds_nothing_to_the_question_and_answer_is_not_quoted():
    echo = "The author does not say that joint working across complex public service systems is easy."
    answer = [Sentence(RESTATED.text, (1,), 0.9, True)]
    assert EvidenceQuote().run(QUESTION, answer, passages(echo)) == answer


def test_a_citation_outside_the_passages_is_ignored():
    answer = [Sentence(RESTATED.text, (7,), 0.9, True)]
    assert EvidenceQuote().run(QUESTION, answer, passages(PASSAGE)) == answer


def test_the_restatement_test_allows_one_word_of_its_own_by_default():
    question = "Can Levelling Up be left to individual organisations?"
    one = [Sentence("No. Levelling Up cannot be left to individual organisations.", (1,), 0.9, True)]
    two = [Sentence("No. Levelling Up needs councils and the NHS together.", (1,), 0.9, True)]
    assert EvidenceQuote().restates(question, one)
    assert not EvidenceQuote().restates(question, two)
    assert not EvidenceQuote(max_new_words=0).restates(question, one)


@pytest.mark.parametrize("kwargs", [{"max_new_words": -1}, {"min_shared": 0}, {"min_added": 0}, {"min_words": 0}])
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        EvidenceQuote(**kwargs)


def test_a_fragment_starting_in_lower_case_is_never_quoted():
    question = "What does the author say about joint working across complex public service systems?"
    answer = [Sentence("The author says joint working across complex public service systems is hard.", (1,), 0.9, True)]
    tail = "and joint working across complex systems, with multiple providers, will always be a difficult task."
    assert EvidenceQuote().run(question, answer, passages(tail)) == answer


def test_a_sentence_the_answer_already_quotes_word_for_word_is_not_quoted_again():
    question = "What share of its R&D funding will the department invest outside the south east?"
    clause = "The department will invest at least 55% of its R&D funding outside the south east by 2025"
    passage = f"{clause}; the health department will increase research investment outside London and Oxford."
    answer = [Sentence(f"{clause}.", (1,), 0.9, True)]
    assert EvidenceQuote().run(question, answer, passages(passage)) == answer


def test_one_word_of_its_own_is_enough_for_the_sentence_an_answer_leaves_out():
    question = "Does levelling up mean holding back the success of more prosperous areas?"
    answer = [Sentence("No. Levelling up is not about making every part of the country the same.", (1,), 0.9, True)]
    nor = "Nor does it mean dampening down the success of more prosperous areas."
    out = EvidenceQuote().run(question, answer, passages(f"{answer[0].text[4:]} {nor}"))
    assert out == [*answer, Sentence(nor, (1,), 1.0, True, False)]


def test_longest_common_run_counts_adjacent_shared_words():
    assert longest_common_run("a b c d e".split(), "x b c d y".split()) == 3
    assert longest_common_run("a b".split(), "b a".split()) == 1
    assert longest_common_run([], "a".split()) == 0


def test_a_sentence_the_answer_draws_eight_words_in_a_row_from_is_not_quoted():
    question = "What does the author say about joint working across complex public service systems?"
    drawn = [Sentence("Joint working across complex systems, involving multiple providers of different size, is hard.", (1,), 0.9, True)]
    assert EvidenceQuote().run(question, drawn, passages(PASSAGE)) == drawn
    assert EvidenceQuote(quoted_run=12, max_cover=1.0).run(question, drawn, passages(PASSAGE))[-1].text == DIFFICULT


SYSTEM_CHANGE = (
    "Learning lessons from the past, a new policy regime is needed. "
    "System change is not about a string of shiny, but ultimately short-lived, new policy initiatives. "
    "It is about root and branch reform of government and governance of the UK. "
    "It is about putting power in local hands."
)
DENIAL = Sentence("No. System change is not about a string of shiny, but ultimately short-lived, new policy initiatives.", (1,), 1.0, True)


def test_an_answer_that_quotes_a_denial_is_followed_by_what_is_so_instead():
    question = "Is system change about launching a string of new policy initiatives?"
    out = EvidenceQuote().run(question, [DENIAL], passages(SYSTEM_CHANGE))
    assert out == [DENIAL, Sentence("It is about root and branch reform of government and governance of the UK.", (1,), 1.0, True, False)]


def test_a_correction_the_answer_already_gives_is_not_added_again():
    question = "Is system change about launching a string of new policy initiatives?"
    both = [DENIAL, Sentence("It is about root and branch reform of government and governance of the UK.", (1,), 1.0, True)]
    assert EvidenceQuote().run(question, both, passages(SYSTEM_CHANGE)) == both


@pytest.mark.parametrize(
    "after",
    [
        "This is a concern at a time when public health is in the spotlight following Covid-19.",  # a comment
        "Nor does it mean dampening down the success of more prosperous areas.",  # a second denial
        "It is not about root and branch reform of government either.",  # negated itself
        "Root and branch reform of government and governance of the UK is what it is about.",  # no pronoun first
    ],
)
def test_a_sentence_after_a_denial_that_does_not_correct_it_is_not_added(after):
    question = "Is system change about launching a string of new policy initiatives?"
    text = "System change is not about a string of shiny, but ultimately short-lived, new policy initiatives. " + after
    assert EvidenceQuote().run(question, [DENIAL], passages(text)) == [DENIAL]


def test_a_denial_the_answer_only_paraphrases_brings_no_correction():
    paraphrase = Sentence("No. New initiatives that do not last are not what system change means.", (1,), 1.0, True)
    assert EvidenceQuote().pick_correction([paraphrase], passages(SYSTEM_CHANGE)) is None
    # (``run`` quotes the denial itself after such an answer: the sentence the answer leaves out.)
    question = "Is system change about launching a string of new policy initiatives?"
    assert EvidenceQuote().run(question, [paraphrase], passages(SYSTEM_CHANGE))[-1].text.startswith("System change is not about")


def test_denied_finds_each_negated_verb_and_the_word_after_it():
    assert denied("System change is not about shiny initiatives.") == {("is", "about")}
    assert denied("It isn’t about money, and it cannot be bought.") == {("is", "about"), ("can", "be")}
    assert denied("Nothing here is negated.") == set()
