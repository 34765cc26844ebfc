"""Fake components for fast tests of the pipeline's decisions: no model, no index on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.retriever import RetrievalResult
from rag.types import Chunk, Document, Passage

PASSAGES = [
    "One third of swimming pools are at risk of closure due to high energy bills, the council said.",
    "Leisure centres do not meet the criteria for the energy support scheme announced last year.",
    "Integrated Care Boards and Partnerships are set up at the level of each local health system.",
]


@dataclass
class FakeStore:
    documents: dict = field(default_factory=dict)
    chunks: dict = field(default_factory=dict)
    generation: int = 1


def fake_passages(texts: list[str] = PASSAGES) -> tuple[FakeStore, list[Passage]]:
    text = "\n".join(texts)
    doc = Document("d1", "/docs/article.txt", "The article", text)
    store = FakeStore(documents={"d1": doc})
    passages, pos = [], 0
    for i, t in enumerate(texts):
        chunk = Chunk(i, "d1", pos, pos + len(t), t)
        store.chunks[i] = chunk
        passages.append(Passage(chunk, doc.source, doc.title, 1.0 / (i + 1), dense_score=0.6 - 0.1 * i))
        pos += len(t) + 1
    return store, passages


class FakeRetriever:
    """Returns the given passages in order; ``relevant`` says whether they pass the relevance floor."""

    def __init__(self, store: FakeStore, passages: list[Passage], relevant: bool = True) -> None:
        self.store, self.passages, self.relevant = store, passages, relevant
        self.queries: list[str] = []

    def run(self, question: str, k: int = 4) -> RetrievalResult:
        self.queries.append(question)
        return RetrievalResult(self.passages[:k], self.relevant, 0.6 if self.relevant else 0.1, 0.0)

    def similarities(self, query_vector, chunk_ids):
        return {c: 0.0 for c in chunk_ids}


class FakeCollection:
    def __init__(self, retriever: FakeRetriever) -> None:
        self.retriever = retriever
        self.store = retriever.store


class ScriptedModel:
    """Streams a fixed draft word by word and records the prompts it was given."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, prompt, *, max_tokens=160, stats=None):
        self.prompts.append(prompt)
        if stats is not None:
            stats.prompt_tokens = self.count_tokens(prompt.user)
        words = re.findall(r"\S+\s*", self.reply)
        if stats is not None:
            stats.hit_limit = len(words) > max_tokens
        yield from words[:max_tokens]


class FakeJudge:
    """Supports claims that start with one of ``supported``; answers the question with ``relevance``."""

    threshold = 0.5

    def __init__(
        self,
        supported: tuple[str, ...] = (),
        relevance: float = 0.9,
        answering: tuple[str, ...] = (),
        yes: float = 0.5,
        kinds: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.supported, self.relevance, self.answering, self.yes = supported, relevance, answering, yes
        self.kinds = kinds
        self.claims: list[str] = []
        self.asked: list[str] = []
        self.kinds_asked: list[tuple[str, str]] = []

    def is_supported(self, score: float) -> bool:
        return score >= self.threshold

    def support_union(self, claim: str, passages) -> float:
        self.claims.append(claim)
        return 0.9 if claim.startswith(self.supported) else 0.1

    def answers_question(self, question: str, answer: str) -> float:
        """``relevance`` for a drafted answer; a passage sentence answers only when it starts with one
        of ``answering``."""
        if any(answer.strip() in p for p in PASSAGES):
            self.asked.append(answer)
            return 0.9 if answer.startswith(self.answering) else 0.1
        return self.relevance


    def is_kind(self, name: str, kind: str) -> float:
        """0.9 for a (name, kind) pair in ``kinds``, 0.1 for any other."""
        self.kinds_asked.append((name, kind))
        return 0.9 if (name, kind) in self.kinds else 0.1

    def says_yes(self, question: str, answer: str) -> float:
        """``yes`` whatever the question (0.5 by default: too unsure for a verdict either way)."""
        return self.yes

    def polar_statements(self, question: str) -> tuple[str, str] | None:
        """No statements: the verdict rests on the reply readings alone."""
        return None

    def entails(self, claim: str, text: str) -> float:
        return self.support_union(claim, [text])

    def reply_says(self, question: str, answer: str, verdict: str) -> float:
        """``yes`` for "says yes" and 1 - ``yes`` for "says no": the contrast is ``yes`` too."""
        return self.yes if verdict == "yes" else 1.0 - self.yes


class FakeRewriter:
    def __init__(self, rewrite: str) -> None:
        self.rewrite, self.calls = rewrite, []

    def run(self, question, history):
        self.calls.append((question, history))
        return self.rewrite


def write_one_sentence_answer_corpus(folder: Path) -> tuple[Path, str]:
    """Files where the answer to the returned question is one sentence of a paragraph about other
    things (``economy.txt``), and six other files share the question's words; returns (folder, question)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "economy.txt").write_text(
        "A well-functioning economy needs investment in every region. Private firms respond to clear incentives "
        "and a skilled workforce. The time horizon for our missions is 2030. Some communities need support "
        "sooner, on high streets and in town centres, where new funds will start this year."
    )
    for i, topic in enumerate(["transport", "housing", "health", "skills", "crime", "culture"]):
        (folder / f"mission-{i}.txt").write_text(
            f"The levelling up missions include a {topic} mission. Each mission has a target for every area, "
            f"and the {topic} mission is reviewed each year by the missions team."
        )
    return folder, "What is the time horizon for the levelling up missions?"


def write_paraphrase_corpus(folder: Path) -> Path:
    """One paragraph about several things, one sentence of which says what joint working requires:
    the whole chunk is far from a question paraphrasing that sentence, the sentence itself is close."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "article.txt").write_text(
        "Councils face rising energy bills and many leisure centres may close this winter. Budgets for parks, "
        "libraries and bus services are under pressure after a decade of cuts. Joint working requires a shared "
        "vision, new ways of working and the right governance structures. Several regions have published new "
        "growth plans, and mayors want longer funding settlements with fewer competitions for small pots of money."
    )
    return folder
