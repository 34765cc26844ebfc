"""Offline question answering over policy documents, every sentence cited.

    from rag import ask
    a = ask("What share of swimming pools are at risk of closure?")
    a.text, a.abstained, a.citations

Heavy libraries (torch, faiss, llama.cpp) are imported only when first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings
from .types import Answer, Chunk, Citation, Document, Passage, Sentence

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Assistant, ask

__all__ = ["ask", "Assistant", "Settings", "Answer", "Citation", "Chunk", "Document", "Passage", "Sentence"]


def __getattr__(name: str) -> Any:
    if name in ("ask", "Assistant", "get_assistant", "ensure_default_index"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
