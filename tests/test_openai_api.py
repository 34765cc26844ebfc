"""The OpenAI-compatible API (``rag/openai_api.py``), called with the official ``openai`` client.

The app is served by uvicorn on 127.0.0.1 and a free port. Most tests answer with a fake assistant
that returns real ``Answer``/``Citation`` records (fast, and it can be told to fail); one test
(marked ``models``) serves the real assistant over the default corpus.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import openai
import pytest

from rag.config import Settings
from rag.errors import ModelServerUnavailable
from rag.openai_api import MODEL_ID, create_app
from rag.policy import ABSTAIN_TEXT
from rag.types import Answer, AnswerStats, Checking, Citation, DraftPiece, Final, Reason, Sentence

DRAFT = "DRAFT that the checks withdraw. "


def fake_answer(question: str) -> Answer:
    if "weather" in question:
        return Answer(question, ABSTAIN_TEXT, True, reason=Reason.NO_RELEVANT_PASSAGES, standalone_question=question)
    text = f"The passage answers: {question} [1]."
    citation = Citation(
        n=1, doc_id="d1", source="/docs/fares.txt", title="Fares", start=10, end=48,
        quote="Bus fares are capped at £2 per journey.", score=0.8123, page=2, heading="Buses",
    )
    sentence = Sentence(text, (1,), 0.93, True)
    stats = AnswerStats(prompt_tokens=120, completion_tokens=14)
    return Answer(question, text, False, [citation], [sentence], None, question, stats)


class FakeAssistant:
    """The ``Assistant.stream`` interface: a draft piece the checks withdraw, then the checked ``Answer``."""

    def __init__(self, settings: Settings, delay: float = 0.0) -> None:
        self.settings = settings
        self.delay = delay
        self.calls: list[tuple[str, list | None]] = []
        self._lock = threading.Lock()

    def stream(self, question: str, *, history=None, **_):
        with self._lock:
            self.calls.append((question, history))
        if "explode" in question:
            raise ModelServerUnavailable("the model server at http://127.0.0.1:9/v1 is not reachable (refused)")

        def events() -> Iterator:
            yield DraftPiece(DRAFT)
            time.sleep(self.delay)
            yield Checking()
            yield Final(fake_answer(question))

        return events()


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on 127.0.0.1 and a free port; yields the /v1 base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def fake():
    return FakeAssistant(Settings(max_question_chars=200), delay=0.4)


@pytest.fixture(scope="module")
def base_url(fake):
    with serve(create_app(fake, keepalive_s=0.1)) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url():
    settings = Settings(api_key="s3cret-key")
    with serve(create_app(FakeAssistant(settings), settings)) as url:
        yield url


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def ask(url: str, question: str, **kw):
    return client(url).chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}], **kw)


def test_models_lists_the_assistant(base_url):
    models = client(base_url).models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert client(base_url).models.retrieve(MODEL_ID).id == MODEL_ID


def test_a_completion_carries_the_answer_and_its_citations(base_url):
    r = ask(base_url, "How much is a bus fare?")
    assert r.object == "chat.completion" and r.model == MODEL_ID
    assert r.choices[0].message.role == "assistant" and r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == "The passage answers: How much is a bus fare? [1]."
    assert r.usage.prompt_tokens == 120 and r.usage.total_tokens == 134
    rag = r.model_extra["rag"]
    assert rag["abstained"] is False and rag["reason"] is None
    assert rag["citations"] == [{
        "n": 1, "doc_id": "d1", "source": "/docs/fares.txt", "title": "Fares", "start": 10, "end": 48,
        "quote": "Bus fares are capped at £2 per journey.", "score": 0.8123, "page": 2, "heading": "Buses",
    }]
    assert rag["sentences"][0]["citations"] == [1] and rag["sentences"][0]["support"] == 0.93
    assert rag["sentences"][0]["supported"] is True


def test_streaming_sends_the_checked_answer_in_pieces_then_the_rag_chunk(base_url):
    chunks = list(ask(base_url, "How much is a bus fare?", stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "The passage answers: How much is a bus fare? [1]."
    assert "DRAFT" not in text  # the draft is never streamed: it could be withdrawn
    assert sum(1 for c in chunks if c.choices[0].delta.content) >= 5
    assert len({c.id for c in chunks}) == 1
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["rag"]["citations"][0]["quote"] == "Bus fares are capped at £2 per journey."
    assert all("rag" not in (c.model_extra or {}) for c in chunks[:-1])


def test_the_stream_keeps_the_connection_alive_and_ends_with_done(base_url):
    body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "How much?"}], "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert ": keep-alive" in lines  # sent while the (0.4 s) answer is prepared; keep-alives every 0.1 s
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] == "stop" and final["usage"]["completion_tokens"] == 14
    assert final["rag"]["abstained"] is False


def test_earlier_turns_become_the_history(base_url, fake):
    messages = [
        {"role": "system", "content": "Ignored: the assistant keeps its own rules."},
        {"role": "user", "content": "How much is a bus fare?"},
        {"role": "assistant", "content": "It is capped at £2 [1]."},
        {"role": "user", "content": [{"type": "text", "text": "Until when?"}]},
    ]
    r = client(base_url).chat.completions.create(model=MODEL_ID, messages=messages)
    assert r.choices[0].message.content.startswith("The passage answers: Until when?")
    assert fake.calls[-1] == ("Until when?", [("How much is a bus fare?", "It is capped at £2 [1].")])


def test_a_refusal_is_a_normal_completion(base_url):
    for stream in (False, True):
        if stream:
            chunks = list(ask(base_url, "What will the weather be?", stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            rag = chunks[-1].model_extra["rag"]
            finish = chunks[-1].choices[0].finish_reason
        else:
            r = ask(base_url, "What will the weather be?")
            text, rag, finish = r.choices[0].message.content, r.model_extra["rag"], r.choices[0].finish_reason
        assert text == ABSTAIN_TEXT and finish == "stop"
        assert rag["abstained"] is True and rag["reason"] == "no_relevant_passages" and rag["citations"] == []


def test_a_key_is_required_when_one_is_set(keyed_url):
    with pytest.raises(openai.AuthenticationError) as info:
        client(keyed_url, "wrong-key").chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "How much?"}])
    assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(keyed_url, "wrong-key").models.list()
    for headers in ({}, {"Authorization": "Basic czNjcmV0LWtleQ=="}):
        r = httpx.post(f"{keyed_url}/chat/completions", json={"model": MODEL_ID, "messages": []}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "invalid_api_key" and r.json()["error"]["type"] == "invalid_request_error"
    r = client(keyed_url, "s3cret-key").chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "How much?"}])
    assert r.choices[0].message.content.startswith("The passage answers")


def test_a_wrong_key_is_refused_for_streams_too(keyed_url):
    with pytest.raises(openai.AuthenticationError):
        list(ask(keyed_url, "How much?", stream=True))


BAD_REQUESTS = [
    # (body, status, param, code)
    ({"model": MODEL_ID}, 400, "messages", "missing_required_parameter"),
    ({"model": MODEL_ID, "messages": []}, 400, "messages", "empty_array"),
    ({"model": MODEL_ID, "messages": "How much?"}, 400, "messages", "invalid_type"),
    ({"model": MODEL_ID, "messages": ["How much?"]}, 400, "messages.[0]", "invalid_type"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "   \n "}]}, 400, "messages.[0].content", "empty_question"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": 5}]}, 400, "messages.[0].content", "invalid_type"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages.[0].content", "invalid_content"),
    ({"model": MODEL_ID, "messages": [{"role": "robot", "content": "Hi?"}]}, 400, "messages.[0].role", "invalid_value"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "x" * 201}]}, 400, "messages.[0].content", "question_too_long"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}, 400, "messages.[1].role", "invalid_value"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "Q?"}], "stream": "yes"}, 400, "stream", "invalid_type"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "Q?"}], "n": 3}, 400, "n", "unsupported_value"),
    ({"messages": [{"role": "user", "content": "Q?"}]}, 400, "model", "missing_required_parameter"),
    ({"model": 7, "messages": [{"role": "user", "content": "Q?"}]}, 400, "model", "invalid_type"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "Q?"}]}, 404, "model", "model_not_found"),
    ({"model": MODEL_ID, "messages": [{"role": "user", "content": "Q?"}], "stream": True, "n": 2}, 400, "n", "unsupported_value"),
]


@pytest.mark.parametrize("body,status,param,code", BAD_REQUESTS, ids=[f"{c}-{p}" for _, _, p, c in BAD_REQUESTS])
def test_bad_requests_get_openai_error_bodies(base_url, body, status, param, code):
    r = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error")
    assert err["message"] and "\n" not in err["message"] and "Traceback" not in err["message"]


def test_malformed_json_unknown_paths_and_huge_bodies_get_error_bodies(base_url):
    r = httpx.post(f"{base_url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(f"{base_url}/chat/completions", json=[1, 2])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.get(f"{base_url}/completions")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{base_url}/chat/completions")
    assert r.status_code == 405 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = httpx.post(f"{base_url}/chat/completions", content=b" " * 1_000_001, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_the_openai_client_raises_its_own_errors_for_bad_requests(base_url):
    with pytest.raises(openai.NotFoundError) as info:
        client(base_url).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Q?"}])
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as info:
        client(base_url).chat.completions.create(model=MODEL_ID, messages=[])
    assert info.value.body["param"] == "messages"


def test_a_failure_while_answering_is_a_500_error_body(base_url):
    r = httpx.post(f"{base_url}/chat/completions", json={"model": MODEL_ID, "messages": [{"role": "user", "content": "explode now"}]})
    assert r.status_code == 500
    assert r.json()["error"] == {
        "message": "the model server at http://127.0.0.1:9/v1 is not reachable (refused)",
        "type": "server_error", "param": None, "code": "answer_failed",
    }
    with pytest.raises(openai.APIError, match="not reachable"):
        list(ask(base_url, "explode in a stream", stream=True))


def test_eight_concurrent_clients_each_get_their_own_answer():
    slow = FakeAssistant(Settings(), delay=1.0)
    questions = [f"Question number {i}: what about item {i}?" for i in range(8)]

    def one(url: str, i: int) -> tuple[str, str]:
        if i % 2:
            chunks = list(ask(url, questions[i], stream=True))
            return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].model_extra["rag"]["standalone_question"]
        r = ask(url, questions[i])
        return r.choices[0].message.content, r.model_extra["rag"]["standalone_question"]

    with serve(create_app(slow)) as url, ThreadPoolExecutor(8) as pool:
        t0 = time.perf_counter()
        results = list(pool.map(lambda i: one(url, i), range(8)))
        elapsed = time.perf_counter() - t0
    for q, (text, standalone) in zip(questions, results):
        assert text == f"The passage answers: {q} [1]." and standalone == q
    assert sorted(q for q, _ in slow.calls) == sorted(questions)
    # Each answer takes 1 s: one after another they would take 8 s.
    assert elapsed < 5.0


def test_the_cli_has_an_api_command_bound_to_localhost():
    from rag.cli import build_parser, cmd_api

    import inspect

    from rag.openai_api import serve_api

    args = build_parser().parse_args(["api", "--port", "8123"])
    assert args.func is cmd_api and args.host == "127.0.0.1" and args.port == 8123
    assert inspect.signature(serve_api).parameters["host"].default == "127.0.0.1"
    assert "s3cret" not in repr(Settings(api_key="s3cret"))


@pytest.mark.models
def test_the_real_assistant_answers_through_the_api_with_checkable_citations(assistant):
    with serve(create_app(assistant)) as url:
        chunks = list(ask(url, "What share of swimming pools are at risk of closure?", stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    rag = chunks[-1].model_extra["rag"]
    assert rag["abstained"] is False and rag["citations"]
    assert "[" in text and text.count("[") >= len(rag["citations"]) >= 1
    for c in rag["citations"]:
        assert f"[{c['n']}]" in text
        assert assistant.document_text(c["doc_id"])[c["start"]:c["end"]] == c["quote"]
    assert "swimming" in text.lower() or "pool" in text.lower()
