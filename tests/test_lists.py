"""Labelled lists: which lines are numbered items, which runs count as a list, and how one is named."""

from __future__ import annotations

import pytest

from rag.lists import NumberedList, numbered_lists, plural

MISSIONS = (
    "Levelling Up Missions\n\nBoost productivity, pay, jobs and living standards\n\n"
    "Mission One: By 2030, pay will have risen.\n\nMission Two: By 2030, R&D will increase.\n\n"
    "Mission Three: By 2030, transport will be closer to London.\n\n"
    "Mission Four (digital connectivity): By 2030, the UK will have gigabit broadband.\n\n"
    "Later on, Mission One is restated (Mission One) in a paragraph, which is not an item."
)


def test_only_labels_opening_a_line_are_items_whatever_their_number_form():
    steps = "Step 1: wash.\nStep 2. rinse.\nWe then reach Step 3: later.\nStep 3 (dry): dry.\n"
    assert numbered_lists(steps) == [NumberedList("Step", 3, "Step 1", "Step 3")]
    assert numbered_lists("Published 1 May\nPublished 2 May\nPublished 3 May\n") == []


def test_a_list_is_a_run_numbered_from_one_and_is_named_by_its_first_and_last_items():
    assert numbered_lists(MISSIONS) == [NumberedList("Mission", 4, "Mission One", "Mission Four")]
    assert NumberedList("Mission", 12, "Mission One", "Mission Twelve").describe() == "12 missions, Mission One to Mission Twelve"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Step 1: a\nStep 2: b\n", []),  # fewer than three items
        ("Step 2: a\nStep 3: b\nStep 4: c\n", []),  # not numbered from one
        ("Step 1: a\nStep 2: b\nStep 3: c\nStep 5: d\n", [NumberedList("Step", 3, "Step 1", "Step 3")]),  # a gap ends the run
        ("Priority 1: a\nPriority 2: b\nPriority 3: c\nBox 1: x\n", [NumberedList("Priority", 3, "Priority 1", "Priority 3")]),
    ],
)
def test_only_runs_of_three_or_more_numbered_from_one_count(text, expected):
    assert numbered_lists(text) == expected


@pytest.mark.parametrize(("word", "expected"), [("mission", "missions"), ("priority", "priorities"), ("day", "days"), ("box", "boxes")])
def test_label_words_are_made_plural(word, expected):
    assert plural(word) == expected
