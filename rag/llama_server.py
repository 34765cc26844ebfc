"""llama.cpp's own HTTP server, ``llama-server``: a model server that decodes several answers at once.

The in-process model (``RAG_BACKEND=llama-cpp``) answers one question at a time: with many users the
questions queue. ``llama-server --parallel N`` keeps N sequences ("slots") in one batch, so N answers
are decoded for about the memory traffic of one; on a CPU, where decoding is bound by memory
bandwidth, that raises throughput. The assistant then talks to it as to any OpenAI-compatible server
(``RAG_BACKEND=openai``, see ``docs/openai.md``)::

    make llama-server                      # builds build/llama-server/llama-server (scripts/build-llama-server.sh)
    rag llama-server --parallel 4          # serves the answer model on 127.0.0.1:8080, model name "local"
    RAG_BACKEND=openai RAG_OPENAI_BASE_URL=http://127.0.0.1:8080/v1 RAG_OPENAI_MODEL=local rag api

Or from Python (tests and ``rag bench`` do this)::

    with LlamaServer(model_path("qwen2.5-1.5b", Settings().cache_dir), parallel=4) as server:
        OpenAIBackend(server.base_url, server.alias)

The server always listens on 127.0.0.1 only, without a web UI. The binary is taken from
``build/llama-server/llama-server`` in the project (what ``make llama-server`` builds from the
llama.cpp sources in the pinned llama-cpp-python sdist), else ``llama-server`` on ``PATH``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .config import PROJECT_ROOT
from .errors import ModelError

log = logging.getLogger(__name__)

#: Where ``make llama-server`` puts the binary.
BUILT_BINARY = PROJECT_ROOT / "build" / "llama-server" / "llama-server"
#: The command that builds it, for messages.
BUILD_HINT = "build it with `make llama-server` (scripts/build-llama-server.sh)"
#: The model name the server answers to (``RAG_OPENAI_MODEL``).
ALIAS = "local"
HOST = "127.0.0.1"


def find_llama_server() -> Path | None:
    """The ``llama-server`` to run: the project's build, else one on ``PATH``; None when there is none."""
    if BUILT_BINARY.is_file() and os.access(BUILT_BINARY, os.X_OK):
        return BUILT_BINARY
    found = shutil.which("llama-server")
    return Path(found) if found else None


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def server_command(
    binary: str | Path,
    model: str | Path,
    *,
    port: int,
    parallel: int = 4,
    ctx_per_slot: int = 4096,
    threads: int | None = None,
    alias: str = ALIAS,
) -> list[str]:
    """The ``llama-server`` command line: 127.0.0.1 only, ``parallel`` slots of ``ctx_per_slot`` tokens each.

    ``-c`` is the total context, shared by the slots, so it is ``parallel * ctx_per_slot``. Continuous
    batching (a finished answer's slot takes the next request at once) is llama-server's default and
    is asked for explicitly.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    if ctx_per_slot < 256:
        raise ValueError("ctx_per_slot must be at least 256 tokens")
    threads = threads or os.cpu_count() or 2
    return [
        str(binary),
        "--model", str(model),
        "--alias", alias,
        "--host", HOST,
        "--port", str(port),
        "--parallel", str(parallel),
        "--cont-batching",
        "--ctx-size", str(parallel * ctx_per_slot),
        "--threads", str(threads),
        "--threads-batch", str(threads),
        "--no-webui",
    ]


class LlamaServer:
    """A ``llama-server`` subprocess serving one GGUF file on 127.0.0.1 (a free port unless given).

    Args:
        model: The GGUF file (e.g. ``rag.models.model_path("qwen2.5-1.5b", cache_dir)``).
        parallel: Sequences decoded together (slots); requests beyond that wait in the server's queue.
        ctx_per_slot: Context of each slot in tokens (default 4096, as ``Settings.n_ctx``).
        threads: CPU threads (default: all cores).
        port: Port (default: a free one).
        binary: The executable (default: ``find_llama_server()``).
        log_path: Where the server's output goes (default: a temporary file, removed on ``stop``).

    Raises:
        ModelError: no binary or no model file (``start`` also when the server exits or does not come up).
    """

    #: Where ``make llama-server`` puts the binary, and the command that builds it (for messages).
    BUILT_BINARY = BUILT_BINARY
    BUILD_HINT = BUILD_HINT

    def __init__(
        self,
        model: str | Path,
        *,
        parallel: int = 4,
        ctx_per_slot: int = 4096,
        threads: int | None = None,
        port: int | None = None,
        binary: str | Path | None = None,
        log_path: str | Path | None = None,
        alias: str = ALIAS,
    ) -> None:
        found = Path(binary) if binary is not None else find_llama_server()
        if found is None or not found.is_file():
            raise ModelError(f"llama-server was not found at {BUILT_BINARY} nor on PATH: {BUILD_HINT}")
        if not Path(model).is_file():
            raise ModelError(f"model file {model} does not exist")
        self.binary = found
        self.model = Path(model)
        self.alias = alias
        self.parallel = parallel
        self.port = port or free_port()
        self.base_url = f"http://{HOST}:{self.port}/v1"
        self.command = server_command(
            found, model, port=self.port, parallel=parallel, ctx_per_slot=ctx_per_slot, threads=threads, alias=alias
        )
        self._own_log = log_path is None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None  # a temporary file from ``start``
        self.proc: subprocess.Popen | None = None
        self.start_s: float | None = None

    def start(self, timeout: float = 180.0) -> "LlamaServer":
        """Start the server and wait until it has loaded the model (``GET /health`` answers 200)."""
        t0 = time.perf_counter()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        with open(self.log_path, "wb") as out:
            # Its own session: a Ctrl-C in the terminal reaches us, and we stop it in order.
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ModelError(f"llama-server exited with status {self.proc.returncode}: {self.log_tail(600)}")
                if self.healthy():
                    self.start_s = time.perf_counter() - t0
                    log.info("llama-server up at %s in %.1f s (%d slots)", self.base_url, self.start_s, self.parallel)
                    return self
                time.sleep(0.25)
            raise ModelError(f"llama-server did not come up within {timeout:.0f} s: {self.log_tail(600)}")
        except BaseException:
            self.stop()
            raise

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return " ".join(self.log_path.read_text(errors="replace")[-chars:].split()) if self.log_path else ""
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s); idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> "LlamaServer":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["ALIAS", "BUILT_BINARY", "BUILD_HINT", "LlamaServer", "find_llama_server", "free_port", "server_command"]
