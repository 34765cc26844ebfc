"""The claim-support judge: does a passage fully support a claim?

No NLI or factual-consistency model can be installed here, so the judge asks the
local instruction model a yes/no question and reads the probabilities of its
"Yes" and "No" next tokens: ``support = P(Yes) / (P(Yes) + P(No))``. The judge runs
on a llama.cpp context of its own (``rag.registry``), so judging never evicts the
answer prompt's KV state. Its prompt head is the judge's rules and the passage, read
anew whenever the passage changes (a 190-token passage: 2.3–3.1 s on 2 cores); a
second claim on the same passage costs only its tail (under 1 s). ``threshold`` is
the untuned default 0.5; its balanced accuracy on WiCE dev is in the README.

Usage::

    from rag.judge import Judge
    j = Judge()
    j.support("One third of pools are at risk.", passage)   # -> 0..1
    j.threshold
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .config import Settings
from .generator import Backend
from .prompts import (
    JUDGE_SYSTEM,
    KIND_SYSTEM,
    STATEMENTS_EXAMPLES,
    STATEMENTS_SYSTEM,
    VERDICT_SYSTEM,
    VERDICT_TAIL,
    ChatPrompt,
    judge_context,
    judge_tail,
    kind_tail,
    parse_statements,
    relevance_context,
    relevance_tail,
    statements_tail,
    verdict_context,
    verdict_said_tail,
)

log = logging.getLogger(__name__)

_DEFAULTS = Settings.__dataclass_fields__


class Judge:
    """Score how well passages support claims, with a local model.

    Args:
        backend: A generator backend (default: the process's shared judge model, see ``rag.registry``).
        threshold: Decision threshold on the support score (default ``Settings.judge_threshold``, 0.5).
        max_passage_tokens: Longer passages are judged in overlapping windows, the best window counting
            (default ``Settings.judge_max_passage_tokens``, 2400).
        window_overlap: Overlap of neighbouring windows as a share of a window (default 0.25).
    """

    def __init__(
        self,
        backend: Backend | None = None,
        threshold: float = _DEFAULTS["judge_threshold"].default,
        *,
        max_passage_tokens: int = _DEFAULTS["judge_max_passage_tokens"].default,
        window_overlap: float = _DEFAULTS["judge_window_overlap"].default,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if max_passage_tokens < 16:
            raise ValueError("max_passage_tokens must be at least 16")
        if not 0.0 <= window_overlap < 1.0:
            raise ValueError("window_overlap must be at least 0 and below 1")
        if backend is None:
            from .registry import get_backend

            backend = get_backend(Settings.from_env(), role="judge")
        self.backend = backend
        self.threshold = threshold
        self.max_passage_tokens = max_passage_tokens
        self.window_overlap = window_overlap
        self._kinds: dict[tuple[str, str], float] = {}
        self._statements: dict[str, tuple[str, str] | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings, backend: Backend | None = None) -> "Judge":
        """A judge with the thresholds of ``settings`` (on the shared judge model by default)."""
        if backend is None:
            from .registry import get_backend

            backend = get_backend(settings, role="judge")
        return cls(
            backend,
            settings.judge_threshold,
            max_passage_tokens=settings.judge_max_passage_tokens,
            window_overlap=settings.judge_window_overlap,
        )

    @property
    def fingerprint(self) -> str:
        """Identifies the model and the prompts: scores cached under one fingerprint stay valid."""
        import hashlib

        text = f"{self.backend.name}\n{JUDGE_SYSTEM}{judge_context(['P'])}{judge_tail('C')}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def is_supported(self, score: float) -> bool:
        return score >= self.threshold

    def _windows(self, passage: str) -> list[str]:
        n = self.backend.count_tokens(passage)
        if n <= self.max_passage_tokens:
            return [passage]
        # Overlapping character windows sized from the token ratio (10% margin for uneven text).
        size = int(len(passage) * self.max_passage_tokens / n * 0.9)
        step = max(1, int(size * (1.0 - self.window_overlap)))
        return [passage[i : i + size] for i in range(0, max(1, len(passage) - size + step), step)]

    def support(self, claim: str, passage: str) -> float:
        """Probability (0..1) that ``passage`` fully supports ``claim``."""
        if not claim.strip() or not passage.strip():
            return 0.0
        return max(
            self.backend.yes_probability(ChatPrompt(JUDGE_SYSTEM, judge_context([w]), judge_tail(claim, 1)))
            for w in self._windows(passage)
        )

    def entails(self, claim: str, text: str) -> float:
        """``support`` under the name the verdict asks for (``rag.verdict``): P(``text`` supports ``claim``)."""
        return self.support(claim, text)

    def support_union(self, claim: str, passages: Sequence[str]) -> float:
        """Support of ``claim`` by ``passages`` taken together (ALCE citation recall)."""
        passages = [p for p in passages if p.strip()]
        if not passages or not claim.strip():
            return 0.0
        if len(passages) == 1:
            return self.support(claim, passages[0])
        prompt = ChatPrompt(JUDGE_SYSTEM, judge_context(passages), judge_tail(claim, len(passages)))
        return self.backend.yes_probability(prompt)

    def answers_question(self, question: str, answer: str) -> float:
        """Probability that ``answer`` actually answers ``question`` (not merely related text)."""
        prompt = ChatPrompt(JUDGE_SYSTEM, relevance_context(question), relevance_tail(answer))
        return self.backend.yes_probability(prompt)

    def says_yes(self, question: str, answer: str) -> float:
        """Probability that ``answer``, read alone, answers the yes/no ``question`` with yes."""
        return self.backend.yes_probability(ChatPrompt(VERDICT_SYSTEM, verdict_context(question, answer), VERDICT_TAIL))

    def is_kind(self, name: str, kind: str) -> float:
        """Probability that ``name`` is the name of a ``kind`` ("West Midlands", "combined authority"),
        asked without the reply around the name (``prompts.kind_tail``). The answer depends on the two
        words alone, so it is remembered: a name met again, in the draft and then in a quote, costs
        nothing."""
        if not name.strip() or not kind.strip():
            return 0.0
        key = (" ".join(name.split()), kind)
        if key not in self._kinds:
            if len(self._kinds) >= 4096:
                self._kinds.clear()
            self._kinds[key] = self.backend.yes_probability(ChatPrompt(KIND_SYSTEM, "", kind_tail(name, kind)))
        return self._kinds[key]

    def polar_statements(self, question: str) -> tuple[str, str] | None:
        """The two statements that answer the yes/no ``question`` yes and no ("Is the fund open to
        charities?" → "The fund is open to charities.", "The fund is not open to charities."), written
        by the model (``prompts.STATEMENTS_SYSTEM``); None when its reply is not two such lines. They are
        claims to check, never shown. Remembered per question."""
        key = " ".join(question.split())
        if key not in self._statements:
            if len(self._statements) >= 1024:
                self._statements.clear()
            prompt = ChatPrompt(STATEMENTS_SYSTEM, STATEMENTS_EXAMPLES, statements_tail(key))
            self._statements[key] = parse_statements("".join(self.backend.stream(prompt, max_tokens=96)))
        return self._statements[key]

    def reply_says(self, question: str, answer: str, verdict: str) -> float:
        """Probability that ``answer``, read alone, says the answer to the yes/no ``question`` is
        ``verdict`` ("yes" or "no"). Asked for both, the pair is a contrast (``rag.verdict``)."""
        if verdict not in ("yes", "no"):
            raise ValueError("verdict must be 'yes' or 'no'")
        prompt = ChatPrompt(VERDICT_SYSTEM, verdict_context(question, answer), verdict_said_tail(verdict))
        return self.backend.yes_probability(prompt)
