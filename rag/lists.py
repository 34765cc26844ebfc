"""Labelled lists: "Mission One: …" to "Mission Twelve: …", "Step 1. …", "Article 12: …".

A policy document often numbers what it sets out, and a chunker cuts such a list into several
passages, none of which says how long the list is. The document card names each list and its length
("It numbers 12 missions, Mission One to Mission Twelve."; ``rag.loaders.document_card``), so "How
many missions are there?" finds its answer in one cited line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .numbers import number_value

#: A labelled list item opening a line: "Mission Four (digital connectivity): …", "Step 2: …", "Article 12. …".
_LABELLED_ITEM = re.compile(
    r"^\s*([A-Z][A-Za-z]{2,20})\s+(\d{1,3}|[A-Za-z]+)\b(?:\s*\([^)\n]{0,60}\))?\s*[:.\u2013\u2014-]\s",
    re.MULTILINE,
)


@dataclass(frozen=True)
class NumberedList:
    """A run of items with one label numbered 1 to ``count`` in order, as the document writes them."""

    label: str
    count: int
    first: str
    last: str

    def describe(self) -> str:
        """``12 missions, Mission One to Mission Twelve``."""
        return f"{self.count} {plural(self.label.lower())}, {self.first} to {self.last}"


def plural(word: str) -> str:
    """English plural of a label word: mission -> missions, priority -> priorities, box -> boxes."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(?:s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def numbered_lists(text: str, min_items: int = 3) -> list[NumberedList]:
    """The labelled lists of ``text`` numbered from 1 with at least ``min_items`` items (default 3),
    in order of first appearance; each label's longest such run."""
    best: dict[str, NumberedList] = {}
    runs: dict[str, tuple[int, str, str]] = {}  # label -> (count so far, first name, last name)
    for m in _LABELLED_ITEM.finditer(text):
        label, word = m.group(1), m.group(2)
        number = number_value(word)
        if number is None:
            continue
        key = label.lower()
        name = f"{label} {word}"
        count, first, _ = runs.get(key, (0, "", ""))
        if number == 1:
            runs[key] = (1, name, name)
        elif number == count + 1:
            runs[key] = (number, first, name)
        else:
            runs.pop(key, None)
            continue
        count, first, last = runs[key]
        if count >= min_items and count > (best[key].count if key in best else 0):
            best[key] = NumberedList(label, count, first, last)
    return list(best.values())
