"""Many browser tabs at once: concurrent questions share one model, get their own answers, and stay in memory bounds.

Throughput and latency are logged and written to ``test-artifacts/load.json`` (never asserted: the
machine is shared). The UI variant drives the running chat page through ``gradio_client``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ARTIFACTS

#: (question, a word only its answer has, a phrase of the passage it must cite)
QUESTIONS = [
    ("What share of swimming pools are at risk of closure?", "third", "swimming pools are at risk of closure"),
    ("Why are leisure centres at risk?", "energy", "energy support scheme"),
    (
        "What does collaboration across complex systems of public service providers require?",
        "shared vision",
        "shared vision",
    ),
    ("Which new structures does the author say give new opportunities for collaboration?", "integrated care", "Integrated Care"),
]
N_REQUESTS = 16


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def throughput(latencies: list[float], wall: float) -> dict:
    """Requests, wall time, questions per minute and latency p50/p95 of one load run."""
    return {
        "requests": len(latencies),
        "wall_s": round(wall, 2),
        "throughput_qpm": round(60 * len(latencies) / wall, 2),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(p95(latencies), 2),
    }


def write_artifact(name: str, data: dict) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(data)
    path.write_text(json.dumps(existing, indent=2))
    return path


def _check_answer(answer, question: str, word: str, quote: str, assistant) -> None:
    assert answer.question == question, "an answer came back for another question"
    assert not answer.abstained, (question, answer.text)
    assert word in answer.text.lower(), (question, answer.text)
    assert answer.citations and any(quote in c.quote for c in answer.citations), (question, [c.quote[:60] for c in answer.citations])
    numbers = {c.n for c in answer.citations}
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)} <= numbers
    for c in answer.citations:
        assert assistant.document_text(c.doc_id)[c.start : c.end] == c.quote


@pytest.mark.models
def test_16_concurrent_questions_get_their_own_cited_answers_from_one_shared_model(assistant):
    from rag.registry import loaded_backends

    # Warm up: models loaded and the corpus prompt cached before measuring.
    _check_answer(assistant.ask(QUESTIONS[0][0]), *QUESTIONS[0], assistant)
    backends_before = loaded_backends(local=True)
    rss_before = rss_bytes()
    peak = {"rss": rss_before}
    stop = threading.Event()

    def sample_rss() -> None:
        while not stop.wait(0.2):
            peak["rss"] = max(peak["rss"], rss_bytes())

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()

    def one(i: int):
        question, word, quote = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        answer = assistant.ask(question)
        return i, answer, time.perf_counter() - t0, threading.get_ident()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=N_REQUESTS) as pool:
        results = list(pool.map(one, range(N_REQUESTS)))
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    rss_after = rss_bytes()

    assert len({tid for *_, tid in results}) > 1, "the questions did not run concurrently"
    by_question: dict[str, set[str]] = {}
    for i, answer, _, _ in results:
        question, word, quote = QUESTIONS[i % len(QUESTIONS)]
        _check_answer(answer, question, word, quote, assistant)
        by_question.setdefault(question, set()).add(answer.text)
    # Greedy decoding: the same question gives the same answer however the requests interleave.
    assert all(len(texts) == 1 for texts in by_question.values()), by_question

    assert loaded_backends(local=True) == backends_before and backends_before <= 2  # answer + judge contexts, loaded once
    growth = rss_after - rss_before
    latencies = [s for _, _, s, _ in results]
    stats = {
        **throughput(latencies, wall),
        "latency_max_s": round(max(latencies), 2),
        "rss_before_mb": round(rss_before / 2**20),
        "rss_after_mb": round(rss_after / 2**20),
        "rss_peak_mb": round(peak["rss"] / 2**20),
        "loaded_backends": loaded_backends(),
        "cpu_count": os.cpu_count(),
    }
    write_artifact("load.json", {"ask_threads": stats})
    print("load (ask from threads):", json.dumps(stats))
    assert growth < 1.5 * 2**30, f"RSS grew by {growth / 2**20:.0f} MB"


def test_repeated_questions_over_a_corpus_too_big_for_the_prompt_keep_their_passages(article_settings):
    """Without windows, a corpus over ``whole_corpus_tokens`` is answered from the retrieved passages, every time."""
    from rag import DraftPiece
    from rag.pipeline import Assistant

    class EchoBackend:
        """Writes nothing of its own: it records each prompt it is given."""

        name = "echo"

        def __init__(self) -> None:
            self.prompts = []

        def count_tokens(self, text: str) -> int:
            return len(text.split())

        def stream(self, prompt, *, max_tokens=160, stats=None):
            self.prompts.append(prompt)
            yield "The documents don't say."

    backend = EchoBackend()
    assistant = Assistant(article_settings.replace(whole_corpus_tokens=50, window_tokens=0, judge="off"), generator=backend)
    for question, _, quote in QUESTIONS * 2:
        events = list(assistant.stream(question))
        assert any(isinstance(e, DraftPiece) for e in events), question
        answer = events[-1].answer
        assert answer.stats.whole_corpus is False
        assert len(answer.retrieved) >= article_settings.top_k
        prompt = backend.prompts[-1]
        assert quote.lower() in prompt.context.lower()
        assert prompt.context.count("\n[") == article_settings.top_k


# ----- through the running chat page ------------------------------------------------------------

#: The page's public API endpoint for one question: ``predict(question, api_name="/ask")`` returning the
#: answer text (or ``Answer.to_dict()``). ui/app.py must expose it (e.g. ``gr.api(..., api_name="ask")``).
UI_API_NAME = "/ask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def running_ui(article_settings, tmp_path):
    port = _free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("rag")), "serve", "--port", str(port), "--index", str(article_settings.index_dir)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(1)
    else:
        proc.kill()
        raise AssertionError("the chat page did not start within 300 s")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.models
def test_16_concurrent_questions_through_the_running_chat_page(running_ui):
    from gradio_client import Client

    clients = [Client(running_ui, verbose=False) for _ in range(4)]
    api = clients[0].view_api(return_format="dict", print_info=False)
    names = list(api.get("named_endpoints", {}))
    assert UI_API_NAME in names, f"the page exposes no {UI_API_NAME} endpoint; it has {names}"

    def one(i: int):
        question, word, quote = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        result = clients[i % len(clients)].predict(question, api_name=UI_API_NAME)
        return i, result, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=N_REQUESTS) as pool:
        results = list(pool.map(one, range(N_REQUESTS)))
    wall = time.perf_counter() - t0

    for i, result, _ in results:
        question, word, quote = QUESTIONS[i % len(QUESTIONS)]
        text = json.dumps(result, ensure_ascii=False) if not isinstance(result, str) else result
        assert word in text.lower(), (question, text[:500])  # its own answer, not another tab's
        if isinstance(result, dict):  # Answer.to_dict(): the question and its cited passages
            assert result.get("question", question) == question
            assert any(quote in c["quote"] for c in result["citations"]), (question, text[:500])
    latencies = [s for _, _, s in results]
    stats = throughput(latencies, wall)
    write_artifact("load.json", {"ui_gradio_client": stats})
    print("load (chat page):", json.dumps(stats))
