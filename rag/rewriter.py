"""Follow-up questions made standalone: "and in Scotland?" -> "What does the plan say about Scotland?".

The rewriter runs on its own model role (``rewrite``). With llama.cpp that role shares the judge's
context (see ``rag.registry``), so the answer context keeps its cached prompt head.
"""

from __future__ import annotations

from collections.abc import Sequence

from .generator import Backend
from .prompts import rewrite_prompt


class QueryRewriter:
    """Rewrite a follow-up into a standalone question, using the conversation so far.

    Args:
        backend: The model that rewrites.
        max_tokens: Longest rewrite in model tokens (default 60).
        turns: Earlier (question, answer) turns shown to the model (default 3).
        answer_chars: Each earlier answer is cut to this many characters (default 400).
        max_chars: A rewrite longer than this is discarded (default 2000, the question limit).
    """

    def __init__(
        self, backend: Backend, *, max_tokens: int = 60, turns: int = 3, answer_chars: int = 400, max_chars: int = 2000
    ) -> None:
        if max_tokens < 1 or turns < 1 or answer_chars < 1 or max_chars < 3:
            raise ValueError("max_tokens, turns and answer_chars must be positive, max_chars at least 3")
        self.backend = backend
        self.max_tokens = max_tokens
        self.turns = turns
        self.answer_chars = answer_chars
        self.max_chars = max_chars

    def run(self, question: str, history: Sequence[tuple[str, str]] | None) -> str:
        """The standalone question; ``question`` itself when there is no history or the rewrite is unusable."""
        if not history:
            return question
        prompt = rewrite_prompt(history, question, turns=self.turns, answer_chars=self.answer_chars)
        text = "".join(self.backend.stream(prompt, max_tokens=self.max_tokens)).strip()
        text = text.splitlines()[0].strip().strip('"') if text else ""
        return text if 3 <= len(text) <= self.max_chars else question
