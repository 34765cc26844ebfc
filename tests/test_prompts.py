"""How questions are put to the model, and how an ``evidence`` answer's lead-in is taken off."""

from __future__ import annotations

import re

import pytest

from rag.prompts import ANSWER_STYLES, LeadInFilter, answer_tail, strip_lead_in


def test_each_answer_style_ends_the_tail_with_its_own_instruction():
    direct = answer_tail("How much is a bus fare?")
    evidence = answer_tail("How much is a bus fare?", style="evidence")
    assert direct.startswith("Question: How much is a bus fare?\n") and evidence.startswith("Question: How much is a bus fare?\n")
    assert direct.endswith("Answer in one or two sentences with citations.")
    assert "Find the passage that answers the question" in evidence and direct != evidence
    assert set(ANSWER_STYLES) == {"direct", "evidence"}


def test_an_unknown_answer_style_is_refused():
    with pytest.raises(ValueError, match="answer style"):
        answer_tail("Why?", style="chatty")


@pytest.mark.parametrize(
    "draft,rest,named",
    [
        ("The passage that answers the question is [7]. Fares are capped at £2 [7].", "Fares are capped at £2 [7].", (7,)),
        ("The passages that answer the question are [2] and [5]: the fund [2].", "the fund [2].", (2, 5)),
        ("Passage that answers the question is 3. Yes [3].", "Yes [3].", (3,)),
        ("The passage that answers the question is [4]", "", (4,)),
    ],
)
def test_the_lead_in_naming_the_passage_is_taken_off(draft, rest, named):
    assert strip_lead_in(draft) == (rest, named)


@pytest.mark.parametrize(
    "draft",
    [
        "The documents don't say.",
        "Passage [3] says fares are capped [3].",
        # Content after the number stays: it is a claim to check, not a lead-in.
        "The passage that answers the question is [7], which says fares are capped [7].",
        "Fares are capped at £2 [1]. The passage that answers the question is [1].",
    ],
)
def test_a_draft_without_a_bare_lead_in_is_left_alone(draft):
    assert strip_lead_in(draft) == (draft, ())


def test_the_stream_filter_holds_back_the_first_sentence_and_drops_only_the_lead_in():
    pieces = re.findall(r"\S+\s*", "The passage that answers the question is [7]. Fares are capped at £2 [7]. Buses run hourly [8].")
    f = LeadInFilter()
    shown = [f.feed(p) for p in pieces] + [f.close()]
    assert "".join(shown) == "Fares are capped at £2 [7]. Buses run hourly [8]."
    assert f.named == (7,)
    # Nothing is shown before the first sentence has ended; after that pieces pass straight through.
    first = next(i for i, s in enumerate(shown) if s)
    assert shown[first].startswith("Fares") and not any(shown[:first])
    assert shown[-2] == pieces[-1] and shown[-1] == ""


def test_the_stream_filter_passes_a_plain_answer_through_whole():
    text = "Fares are capped at £2 [7]. Buses run hourly [8]."
    pieces = re.findall(r"\S+\s*", text)
    f = LeadInFilter()
    assert "".join(f.feed(p) for p in pieces) + f.close() == text and f.named == ()


def test_the_stream_filter_releases_a_short_draft_at_the_end():
    f = LeadInFilter()
    assert f.feed("The documents") == "" and f.feed(" don't say.") == ""
    assert f.close() == "The documents don't say."


def test_the_answer_style_is_a_setting_read_from_the_environment_and_checked():
    from rag.config import Settings

    assert Settings().answer_style == "direct"
    assert Settings.from_env({"RAG_ANSWER_STYLE": "evidence"}).answer_style == "evidence"
    with pytest.raises(ValueError, match="answer_style"):
        Settings.from_env({"RAG_ANSWER_STYLE": "chatty"})


def test_a_situation_is_shown_apart_from_the_question_it_comes_before():
    tail = answer_tail("My father died in May. He left no will. How do I claim his estate?", hints=[2])
    assert tail.startswith("Situation: My father died in May. He left no will.\nQuestion: How do I claim his estate?\n")
    assert "[2]" in tail and "in the light of the situation" in tail
    assert answer_tail("How do I claim an estate?").startswith("Question: How do I claim an estate?\n")
    assert "situation" not in answer_tail("How do I claim an estate?")


@pytest.mark.parametrize(
    "reply, pair",
    [
        ("Yes: The scheme is open to charities.\nNo: The scheme is not open to charities.",
         ("The scheme is open to charities.", "The scheme is not open to charities.")),
        ("  yes : A.\n\nNO:B.\nYes: C.", ("A.", "B.")),  # case and spaces; the first of each line counts
        ("Yes: The scheme is open.", None),  # no "No" line
        ("Yes: Same.\nNo: same.", None),  # the same statement twice
        ("The scheme is open to charities.", None),
        ("", None),
    ],
)
def test_the_two_statements_of_a_yes_no_question_are_read_from_their_lines(reply, pair):
    from rag.prompts import parse_statements

    assert parse_statements(reply) == pair
