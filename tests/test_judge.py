"""``Judge`` prompts, on a stub backend that records what it is asked."""

from __future__ import annotations

from rag.judge import Judge


class CountingBackend:
    name = "counting"

    def __init__(self, p: float = 0.8) -> None:
        self.p = p
        self.prompts = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def yes_probability(self, prompt) -> float:
        self.prompts.append(prompt)
        return self.p


def test_is_kind_asks_of_the_name_alone_and_remembers_the_answer():
    backend = CountingBackend(0.8)
    judge = Judge(backend)
    assert judge.is_kind("Glasgow City-Region", "university") == 0.8
    assert judge.is_kind("Glasgow  City-Region", "university") == 0.8  # the same name, spaced otherwise
    assert len(backend.prompts) == 1
    prompt = backend.prompts[0]
    assert prompt.context == "" and '"Glasgow City-Region" the name of a university' in prompt.tail
    assert judge.is_kind("Leeds", "university") == 0.8 and len(backend.prompts) == 2


def test_is_kind_of_an_empty_name_is_zero_without_asking():
    backend = CountingBackend()
    assert Judge(backend).is_kind("  ", "town") == 0.0
    assert backend.prompts == []
