"""llama.cpp's ``llama-server`` (built by ``make llama-server``) as the batching model server.

A real server with the packaged SmolLM2-135M and ``--parallel 2``: two streamed answers are decoded at
the same time, the judge's logprobs come back in the shape ``OpenAIBackend`` reads, and the server
listens on 127.0.0.1 only. Skipped only when the binary has not been built.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag.generator import GenerationStats, OpenAIBackend
from rag.llama_server import BUILT_BINARY, LlamaServer, find_llama_server, server_command
from rag.models import tiny_model_path
from rag.prompts import SYSTEM, ChatPrompt, answer_tail, format_context


def _marks(test):
    """The marks of a test that starts a real server (the command-line test needs none)."""
    return pytest.mark.server(pytest.mark.models(test))


PROMPT = ChatPrompt(SYSTEM, format_context([("Doc", "Bus fares are capped at £2.", None)]), answer_tail("How much is a bus fare?"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if find_llama_server() is None:
        pytest.skip(
            f"llama-server is not built ({BUILT_BINARY}): run `make llama-server`, or `make test WITH_LLAMA_SERVER=1` "
            "(the build takes about 11 minutes on 2 cores, so plain `make test` does not do it)"
        )
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    srv = LlamaServer(tiny_model_path(), parallel=2, ctx_per_slot=1024, threads=2, log_path=log).start()
    yield srv
    srv.stop()


def _listening(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that process ``pid`` holds, from /proc."""
    import ipaddress
    import os

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc stores each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            out.append((str(ipaddress.ip_address(raw)), int(hex_port, 16)))
    return out


def test_the_command_line_binds_loopback_and_splits_the_context_across_slots():
    cmd = server_command("llama-server", "m.gguf", port=8080, parallel=4, ctx_per_slot=4096, threads=2)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--parallel") + 1] == "4" and cmd[cmd.index("--ctx-size") + 1] == "16384"
    assert "--cont-batching" in cmd and "--no-webui" in cmd


@_marks
def test_it_listens_on_127_0_0_1_only(server):
    sockets = _listening(server.proc.pid)
    assert sockets and all(addr == "127.0.0.1" for addr, _ in sockets), sockets
    assert ("127.0.0.1", server.port) in sockets


@_marks
def test_two_streamed_answers_are_decoded_at_the_same_time(server):
    backend = OpenAIBackend(server.base_url, server.alias, timeout=60)
    results: dict[int, dict] = {}
    start = threading.Barrier(2)

    def answer(i: int) -> None:
        stats = GenerationStats()
        start.wait()
        t0 = time.perf_counter()
        pieces = []
        for piece in backend.stream(PROMPT, max_tokens=48, stats=stats):
            pieces.append((time.perf_counter(), piece))
        results[i] = {"start": t0, "first": pieces[0][0], "end": pieces[-1][0], "text": "".join(p for _, p in pieces), "stats": stats}

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(results) == {0, 1}
    for r in results.values():
        assert r["text"].strip() and 2 <= r["stats"].completion_tokens <= 48
    a, b = results[0], results[1]
    # Both answers were being written at once: each one's first piece came before the other's last.
    assert a["first"] < b["end"] and b["first"] < a["end"], results


@_marks
def test_the_judge_reads_yes_and_no_from_llama_servers_logprobs(server):
    backend = OpenAIBackend(server.base_url, server.alias, timeout=60)
    p = backend.yes_probability(ChatPrompt("Answer Yes or No.", "", "Is the sky usually blue on a clear day?"))
    # Strictly between 0 and 1: read from the top_logprobs of Yes and No, not from the text fallback (0 or 1).
    assert isinstance(p, float) and 0.0 < p < 1.0
