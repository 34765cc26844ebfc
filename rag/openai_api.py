"""The assistant as an OpenAI-compatible HTTP API: ``/v1/models`` and ``/v1/chat/completions``.

Any OpenAI client (the official ``openai`` package, LangChain, curl) can ask questions::

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8001/v1", api_key="KEY or anything")
    r = client.chat.completions.create(model="policy-rag", messages=[{"role": "user", "content": "..."}])
    r.choices[0].message.content     # the answer, with its [n] markers
    r.model_extra["rag"]             # citations, per-sentence support, abstained, reason

Mapping: the last message must come from the user and is the question; earlier user turns each
followed by an assistant turn become ``history`` (question, answer) pairs for follow-ups. System
and developer messages are accepted and ignored: the assistant keeps its own rules. Sampling
options (``temperature``, ``max_tokens``...) are accepted and ignored: answers are greedy and checked.

The extra field ``rag`` (on the completion; in streaming, on the last chunk before ``[DONE]``)::

    {"citations": [{"n", "doc_id", "source", "title", "start", "end", "quote", "score", "page", "heading"}],
     "sentences": [{"text", "citations", "support", "supported", "citation_inferred"}],
     "abstained": bool, "reason": str | null, "standalone_question": str | null}

A refusal ("The documents don't say...") is a normal completion with ``abstained: true``. Streaming
sends only the *checked* answer: the model's draft can still be withdrawn by the citation and
support checks, so while it is generated and checked the stream carries SSE keep-alive comments,
then the final text as content deltas, then the ``rag`` chunk and ``data: [DONE]``.

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``: 400 for bad requests
(including what other frameworks answer with 422), 401 for a missing or wrong key when
``Settings.api_key`` (``RAG_API_KEY``) is set, 404 for an unknown model or path, 413 for an
oversized body, 500 when answering fails.

Built on Starlette rather than FastAPI: two endpoints whose OpenAI-shaped bodies are checked by hand,
so that every error names the offending ``param`` in OpenAI's format; FastAPI's pydantic layer would
answer 422 in its own format and need translating back, and its generated docs pages are not wanted
here. Starlette (which FastAPI is built on) and uvicorn are already installed with Gradio.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .config import Settings
from .errors import RagError
from .pipeline import clean_question
from .types import Answer, Event, Final

log = logging.getLogger(__name__)

#: The model id clients name in their requests.
MODEL_ID = "policy-rag"
#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 1_000_000
#: Seconds between SSE keep-alive comments while an answer is generated and checked.
KEEPALIVE_S = 2.0

_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_PIECES = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request."""

    question: str
    history: list[tuple[str, str]]
    stream: bool
    include_usage: bool


class ApiError(Exception):
    """An error answered as an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


# ----- the one place that calls the assistant --------------------------------------------------


def _events(assistant: Any, question: str, history: Sequence[tuple[str, str]]) -> Iterator[Event]:
    """The assistant's typed stream (``DraftPiece``, ``Checking``, ``Final``).

    Every answer of the API goes through here, so a change of that interface is made in one place.
    """
    yield from assistant.stream(question, history=list(history) or None)


def _final_answer(assistant: Any, question: str, history: Sequence[tuple[str, str]]) -> Answer:
    answer = None
    for event in _events(assistant, question, history):
        if isinstance(event, Final):
            answer = event.answer
    if answer is None:
        raise RagError("the assistant produced no answer")
    return answer


# ----- request parsing --------------------------------------------------------------------------


def _text(content: Any, i: int) -> str:
    """A message's text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    param = f"messages.[{i}].content"
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, "only text content parts are supported", param=param, code="invalid_content")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ApiError(400, f"{param} must be a string or a list of text parts", param=param, code="invalid_type")


def parse_request(body: Any, max_question_chars: int) -> ChatRequest:
    """Validate an OpenAI chat completion body; raises ``ApiError`` naming the bad parameter."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter (a string)", param="model", code="invalid_type" if model is not None else "missing_required_parameter")
    if model != MODEL_ID:
        raise ApiError(404, f"the model '{model}' does not exist; use '{MODEL_ID}'", param="model", code="model_not_found")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object", param="stream_options", code="invalid_type")
    n = body.get("n", 1)
    if n is not None and n != 1:
        raise ApiError(400, "only n=1 is supported", param="n", code="unsupported_value")
    messages = body.get("messages")
    if messages is None:
        raise ApiError(400, "you must provide a messages parameter", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list):
        raise ApiError(400, "messages must be a list of messages", param="messages", code="invalid_type")
    if not messages:
        raise ApiError(400, "messages must not be empty: the last message is the question", param="messages", code="empty_array")
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise ApiError(400, f"messages.[{i}] must be an object", param=f"messages.[{i}]", code="invalid_type")
        role = m.get("role")
        if role not in _ROLES:
            raise ApiError(400, f"messages.[{i}].role must be one of {', '.join(sorted(_ROLES))}", param=f"messages.[{i}].role", code="invalid_value")
        turns.append((role, _text(m.get("content"), i)))
    last = len(turns) - 1
    if turns[last][0] != "user":
        raise ApiError(400, "the last message must come from the user: it is the question", param=f"messages.[{last}].role", code="invalid_value")
    try:
        question = clean_question(turns[last][1], max_question_chars)
    except ValueError as exc:
        code = "question_too_long" if "limit" in str(exc) else "empty_question"
        raise ApiError(400, str(exc), param=f"messages.[{last}].content", code=code) from None
    history: list[tuple[str, str]] = []
    for (role, text), (next_role, next_text) in zip(turns[:last], turns[1:last]):
        if role == "user" and next_role == "assistant" and text.strip() and next_text.strip():
            history.append((text, next_text))
    return ChatRequest(question, history, bool(stream), bool((options or {}).get("include_usage")))


# ----- responses --------------------------------------------------------------------------------


def rag_extra(answer: Answer) -> dict[str, Any]:
    """The documented ``rag`` field: citations, per-sentence support, abstention."""
    d = answer.to_dict()
    return {k: d[k] for k in ("citations", "sentences", "abstained", "reason", "standalone_question")}


def _usage(answer: Answer) -> dict[str, int]:
    prompt = int(answer.stats.prompt_tokens or 0)
    completion = int(answer.stats.completion_tokens or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(answer: Answer, cid: str, created: int) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.text}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": _usage(answer),
        "rag": rag_extra(answer),
    }


def _chunk(cid: str, created: int, delta: dict, finish: str | None = None, **extra: Any) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _error_event(exc: BaseException) -> str:
    err = exc if isinstance(exc, ApiError) else _server_error(exc)
    return f"data: {json.dumps(err.body(), ensure_ascii=False)}\n\n"


def _server_error(exc: BaseException) -> ApiError:
    if isinstance(exc, (RagError, ValueError)):
        message = " ".join(str(exc).split())
    else:
        log.error("answering failed", exc_info=exc)
        message = "the assistant failed to answer; see the server log"
    return ApiError(500, message, type="server_error", code="answer_failed")


# ----- the app ----------------------------------------------------------------------------------


def create_app(assistant: Any, settings: Settings | None = None, *, keepalive_s: float = KEEPALIVE_S, workers: int = 16):
    """The Starlette app serving ``assistant`` (anything with the ``Assistant.ask`` interface).

    Args:
        assistant: Usually ``rag.pipeline.get_assistant(settings=settings)``.
        settings: Reads ``api_key`` and ``max_question_chars`` (default: the assistant's settings).
        keepalive_s: Seconds between SSE keep-alive comments while an answer is prepared.
        workers: Threads that run answers; the model itself answers one question at a time.
    """
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    settings = settings or getattr(assistant, "settings", None) or Settings.from_env()
    api_key = settings.api_key
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rag-api")
    created_at = int(time.time())

    def check_key(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise ApiError(
                401,
                "missing or incorrect API key: send it as 'Authorization: Bearer KEY'" if header else "missing API key: send 'Authorization: Bearer KEY'",
                code="invalid_api_key",
            )

    def model_card() -> dict[str, Any]:
        return {"id": MODEL_ID, "object": "model", "created": created_at, "owned_by": "policy-rag"}

    async def models(request: Request) -> JSONResponse:
        check_key(request)
        return JSONResponse({"object": "list", "data": [model_card()]})

    async def model(request: Request) -> JSONResponse:
        check_key(request)
        name = request.path_params["name"]
        if name != MODEL_ID:
            raise ApiError(404, f"the model '{name}' does not exist; use '{MODEL_ID}'", param="model", code="model_not_found")
        return JSONResponse(model_card())

    async def completions(request: Request):
        check_key(request)
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES:,} bytes", code="request_too_large")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(413, f"the request body is over {MAX_BODY_BYTES:,} bytes", code="request_too_large")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None
        req = parse_request(body, settings.max_question_chars)
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        loop = asyncio.get_running_loop()
        if not req.stream:
            try:
                answer = await loop.run_in_executor(pool, _final_answer, assistant, req.question, req.history)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error body
                raise _server_error(exc) from exc
            return JSONResponse(completion_body(answer, cid, created))
        return StreamingResponse(
            _sse(loop, req, cid, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _sse(loop: asyncio.AbstractEventLoop, req: ChatRequest, cid: str, created: int) -> AsyncIterator[str]:
        future = loop.run_in_executor(pool, _final_answer, assistant, req.question, req.history)
        yield _chunk(cid, created, {"role": "assistant", "content": ""})
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=keepalive_s)
                if done:
                    break
                yield ": keep-alive\n\n"
            answer = future.result()
        except Exception as exc:  # noqa: BLE001 - reported in the stream: the status line has gone out
            yield _error_event(exc)
            return
        for piece in _PIECES.findall(answer.text):
            yield _chunk(cid, created, {"content": piece})
        extra: dict[str, Any] = {"rag": rag_extra(answer)}
        if req.include_usage:
            extra["usage"] = _usage(answer)
        yield _chunk(cid, created, {}, "stop", **extra)
        yield "data: [DONE]\n\n"

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        message = {404: f"no such path: {request.url.path}", 405: f"method {request.method} is not allowed here"}.get(
            status, str(getattr(exc, "detail", "error"))
        )
        err = ApiError(status, message, code="not_found" if status == 404 else None)
        return JSONResponse(err.body(), status_code=status)

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        err = _server_error(exc)
        return JSONResponse(err.body(), status_code=500)

    @asynccontextmanager
    async def lifespan(app):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{name:path}", model, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
        ],
        exception_handlers={ApiError: on_api_error, HTTPException: on_http_error, Exception: on_error},
        lifespan=lifespan,
    )
    app.state.assistant = assistant
    return app


def serve_api(settings: Settings, host: str = "127.0.0.1", port: int = 8001) -> int:
    """Serve the assistant for ``settings`` as an OpenAI-compatible API until interrupted (``rag api``)."""
    from pathlib import Path

    import uvicorn

    from .config import DEFAULT_INDEX_DIR
    from .pipeline import ensure_default_index, get_assistant

    if host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key:
        log.warning("listening on %s without a key: anyone who can reach it can use the API (set RAG_API_KEY)", host)
    if Path(settings.index_dir) == DEFAULT_INDEX_DIR and not (DEFAULT_INDEX_DIR / "manifest.json").exists():
        ensure_default_index(settings, progress=False)
    assistant = get_assistant(settings=settings)
    app = create_app(assistant, settings)
    log.info("OpenAI-compatible API at http://%s:%s/v1, model '%s'%s", host, port, MODEL_ID, ", key required" if settings.api_key else "")
    # uvicorn's own info lines say where it listens; one line per request would be noise.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    return 0


__all__ = ["MODEL_ID", "ApiError", "ChatRequest", "create_app", "parse_request", "rag_extra", "serve_api"]
