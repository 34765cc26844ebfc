"""Offline question answering over policy documents, every sentence cited.

    from rag import ask, stream
    a = ask("What share of swimming pools are at risk of closure?")
    a.text, a.abstained, a.reason, a.citations

    for event in stream("Why are leisure centres struggling?"):
        ...   # DraftPiece(text) while the model writes, Checking(), then Final(answer)

This module's names are the public API: ``ui/``, ``eval/`` and other callers import only these.
Heavy libraries (torch, faiss, llama.cpp) are imported only when first needed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_INDEX_DIR, DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings, setup_offline
from .errors import IndexFormatError, LoadError, ModelError, RagError
from .types import (
    CARD_PREFIX,
    Answer,
    AnswerStats,
    Checking,
    Chunk,
    Citation,
    Document,
    DraftPiece,
    Event,
    Final,
    Passage,
    Reason,
    Sentence,
)

if TYPE_CHECKING:  # pragma: no cover
    from .cli import settings_from_args
    from .generator import GenerationStats, LlamaCppBackend, OpenAIBackend, TransformersBackend
    from .indexer import IndexReport, Indexer
    from .judge import Judge
    from .llama_server import LlamaServer, find_llama_server
    from .loaders import SUPPORTED_SUFFIXES
    from .models import model_path
    from .pipeline import Assistant, ask, clean_question, ensure_default_index, get_assistant, stream
    from .prompts import ChatPrompt
    from .registry import get_backend, get_embedder
    from .loaders import doc_id_for
    from .pgstore import DEFAULT_EF_SEARCH, PgHybridRetriever, PgVectorStore
    from .storage import make_retriever, store_exists
    from .store import IVF_THRESHOLD, IndexSettings, IndexStore, ivf_nprobe, new_faiss_index

#: Public names that live in modules with heavy imports, loaded on first access.
_LAZY = {
    "ask": "pipeline",
    "stream": "pipeline",
    "Assistant": "pipeline",
    "get_assistant": "pipeline",
    "ensure_default_index": "pipeline",
    "clean_question": "pipeline",
    "IndexReport": "indexer",
    "Indexer": "indexer",
    "IndexStore": "store",
    "store_exists": "storage",
    "make_retriever": "storage",
    "PgVectorStore": "pgstore",
    "PgHybridRetriever": "pgstore",
    "DEFAULT_EF_SEARCH": "pgstore",
    "IndexSettings": "store",
    "IVF_THRESHOLD": "store",
    "ivf_nprobe": "store",
    "new_faiss_index": "store",
    "chunk_sentences": "sentences",
    "doc_id_for": "loaders",
    "Judge": "judge",
    "VerdictLead": "verdict",
    "EvidenceQuote": "evidence",
    "LlamaServer": "llama_server",
    "find_llama_server": "llama_server",
    "GenerationStats": "generator",
    "LlamaCppBackend": "generator",
    "OpenAIBackend": "generator",
    "TransformersBackend": "generator",
    "ChatPrompt": "prompts",
    "get_backend": "registry",
    "get_embedder": "registry",
    "model_path": "models",
    "SUPPORTED_SUFFIXES": "loaders",
    "settings_from_args": "cli",
}

__all__ = [
    "CARD_PREFIX",
    "DEFAULT_INDEX_DIR",
    "DEFAULT_SOURCES_DIR",
    "PROJECT_ROOT",
    "Settings",
    "setup_offline",
    "RagError",
    "LoadError",
    "IndexFormatError",
    "ModelError",
    "Answer",
    "AnswerStats",
    "Checking",
    "Chunk",
    "Citation",
    "Document",
    "DraftPiece",
    "Event",
    "Final",
    "Passage",
    "Reason",
    "Sentence",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
