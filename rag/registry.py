"""Process-wide model instances: each model is loaded once and shared by every caller."""

from __future__ import annotations

import atexit
import logging
import threading

from .config import Settings, setup_offline
from .embedder import Embedder
from .generator import Backend

log = logging.getLogger(__name__)

#: The model roles, and which llama.cpp context each runs on.
ROLES = ("answer", "judge", "rewrite")
_CONTEXT_OF_ROLE = {"answer": "answer", "judge": "judge", "rewrite": "judge"}

_lock = threading.Lock()
_backends: dict[tuple, Backend] = {}
_embedders: dict[tuple, Embedder] = {}


def get_embedder(settings: Settings) -> Embedder:
    """The shared embedder named by ``settings.embedder``."""
    key = (settings.embedder, settings.embed_batch_size)
    with _lock:
        if key not in _embedders:
            _embedders[key] = Embedder(settings.embedder, batch_size=settings.embed_batch_size)
        return _embedders[key]


def get_backend(settings: Settings, role: str = "answer") -> Backend:
    """The shared backend for ``settings`` (loaded on first use).

    ``role`` is ``answer``, ``judge`` or ``rewrite``: with llama.cpp the judge gets its own context
    over the same weights (memory-mapped once), so judging never evicts the answer prompt's KV
    cache; the rewriter shares the judge's context for the same reason.
    """
    setup_offline()
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if settings.backend == "openai":
        key: tuple = ("openai", settings.openai_base_url, settings.openai_model, settings.openai_timeout_s)
    else:
        key = (settings.backend, settings.model, settings.n_ctx, settings.n_threads, settings.head_state_cache_mb)
    if settings.backend == "llama-cpp":
        key = key + (_CONTEXT_OF_ROLE[role],)
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            backend = _load_backend(settings)
            _backends[key] = backend
        return backend


def _load_backend(settings: Settings) -> Backend:
    from .generator import LlamaCppBackend, OpenAIBackend, TransformersBackend
    from .models import model_path

    if settings.backend == "openai":
        return OpenAIBackend(
            settings.openai_base_url,
            settings.openai_model,
            api_key=settings.openai_api_key or None,
            timeout=settings.openai_timeout_s,
        )
    if settings.backend == "transformers":
        from pathlib import Path

        target = settings.model if Path(settings.model).exists() else model_path(settings.model, settings.cache_dir)
        return TransformersBackend(target)
    path = model_path(settings.model, settings.cache_dir)
    return LlamaCppBackend(
        path, n_ctx=settings.n_ctx, n_threads=settings.n_threads, head_state_cache_mb=settings.head_state_cache_mb
    )


def loaded_backends(*, local: bool = False) -> int:
    """How many model contexts this process holds: at most one per (model, context role), however many
    calls; with ``local``, only those running in this process (not clients of a model server)."""
    with _lock:
        return sum(1 for key in _backends if not (local and key[0] == "openai"))


def loaded_models() -> int:
    """How many distinct model weights this process holds (contexts of one model share them; a
    remote OpenAI-compatible server's weights are not in this process)."""
    with _lock:
        return len({key[:2] for key in _backends if key[0] != "openai"})


@atexit.register
def close_all() -> None:
    """Free every loaded model context (at exit, before the interpreter tears down llama.cpp)."""
    with _lock:
        backends = list(_backends.values())
        _backends.clear()
    for backend in backends:
        close = getattr(backend, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("closing %s failed", getattr(backend, "name", backend), exc_info=True)
