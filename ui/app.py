"""The chat page (Gradio 6): streamed, cited answers; sources you can check; your own documents.

Layout::

    +-------------------------------------------+-------------------------------+
    | conversation (#transcript)                | [Source] [Documents] [Settings]|
    |   question / streamed answer with [n]     |  Source: the cited document,   |
    |   ✓/⚠ sentence check, numbered sources    |   the span in <mark>           |
    | [question box..................] [Ask]    |  Documents: upload, list,      |
    | example questions   [New conversation]    |   remove  Settings: k, model,  |
    +-------------------------------------------+   strict                       |

Every session keeps its own turns in ``gr.State``; all sessions share the models.
Answers are queued one at a time (``concurrency_id="assistant"``, limit 1), and
indexing waits in the same queue, so the index never changes under a running answer.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from rag import DEFAULT_INDEX_DIR, Settings, setup_offline

setup_offline()  # before gradio is imported: GRADIO_ANALYTICS_ENABLED=False

import gradio as gr  # noqa: E402

from rag import Checking, DraftPiece, Final, RagError, clean_question, ensure_default_index, store_exists  # noqa: E402

from .render import (  # noqa: E402
    ALLOWED_SUFFIXES,
    EXAMPLE_QUESTIONS,
    Turn,
    chat_history,
    esc,
    document_choices,
    render_documents,
    render_source_view,
    render_transcript,
    source_view_placeholder,
)
from .service import MODEL_CHOICES, AssistantPool  # noqa: E402

log = logging.getLogger(__name__)

TITLE = "Policy documents assistant"
GENERIC_ERROR = "Something went wrong while answering. Please try again; the details are in the server log."
STATIC = Path(__file__).resolve().parent / "static"
#: Clicks on [n] markers open the source (a Python event); the view follows the conversation.
TRANSCRIPT_JS = (STATIC / "transcript.js").read_text(encoding="utf-8")
#: After a new source is shown, its <mark> scrolls into view.
VIEWER_JS = (STATIC / "viewer.js").read_text(encoding="utf-8")
CSS = (STATIC / "app.css").read_text(encoding="utf-8")


def _theme() -> gr.themes.Base:
    # System fonts only: nothing is fetched from the network.
    return gr.themes.Soft(
        font=["system-ui", "Segoe UI", "Roboto", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
    )


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``"USER:PASS"`` -> ``("USER", "PASS")``; None stays None.

    Raises:
        ValueError: when either part is empty.
    """
    if auth is None:
        return None
    user, sep, password = str(auth).partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth must be USER:PASSWORD, both non-empty")
    return user.strip(), password


# ----- the page -------------------------------------------------------------------------------

BUSY_NOTE = (
    "⏳ The assistant is still answering your previous question. Your new question is kept in the box: "
    "send it again when that answer is shown."
)


class CitationClick(gr.EventData):
    """A click on a ``[n]`` marker or a "Show in document" button: which turn, which citation."""

    def __init__(self, target: Any, data: Any) -> None:
        super().__init__(target, data)
        data = data if isinstance(data, dict) else {}
        self.turn: Any = data.get("turn")
        self.n: Any = data.get("n")


class ChatHandlers:
    """The page's event handlers, one object shared by all sessions.

    Per-session data only ever travels in the arguments (``turns`` is the session's
    ``gr.State``); the object itself holds the settings and the shared assistants.
    """

    def __init__(self, settings: Settings, pool: AssistantPool) -> None:
        self.settings = settings
        self.pool = pool

    @staticmethod
    def busy(turns: list[Turn] | None) -> bool:
        return bool(turns) and turns[-1].status in ("queued", "running", "checking")

    def start_turn(self, question: str, turns: list[Turn]):
        """Queue-free first step: show the question at once (or refuse it with a message).

        While the session's previous answer is still being written or checked, the new question
        stays in the box and a notice under it says so (nothing is silently dropped).

        Returns (question box, turns, transcript, examples row, busy notice).
        """
        turns = list(turns or [])
        if self.busy(turns):
            gr.Warning("Please wait until the current answer is finished.")
            return gr.update(), turns, gr.update(), gr.update(), BUSY_NOTE
        try:
            q = clean_question(question or "", self.settings.max_question_chars)
        except ValueError as exc:
            gr.Warning(_sentence(str(exc)))
            return gr.update(), turns, gr.update(), gr.update(), ""
        turns.append(Turn(q))
        return "", turns, render_transcript(turns), gr.Row(visible=False), ""

    def answer_turn(self, turns: list[Turn], k: float, model: str, strict: bool):
        """Answer the session's queued question, streaming (transcript, turns) pairs.

        Runs one at a time across all sessions. Errors become a message in the turn.
        """
        turns = list(turns or [])
        if not turns or turns[-1].status != "queued":
            yield render_transcript(turns), turns
            return
        i = len(turns) - 1
        t = turns[i].but(status="running", settings={"k": int(k), "model": model, "strict": bool(strict)})
        turns[i] = t
        yield render_transcript(turns), turns
        try:
            assistant = self.pool.for_model(model)
            events = assistant.stream(
                t.question, history=chat_history(turns[:i]) or None, k=int(k), strict=bool(strict)
            )
            partial, answer, last = "", None, 0.0
            for event in events:
                if isinstance(event, Final):
                    answer = event.answer
                elif isinstance(event, Checking):
                    turns[i] = t.but(status="checking", partial=partial)
                    yield render_transcript(turns), turns
                elif isinstance(event, DraftPiece):
                    partial += event.text
                    now = time.monotonic()
                    if now - last >= self.settings.ui_refresh_s:
                        last = now
                        turns[i] = t.but(partial=partial)
                        yield render_transcript(turns), turns
            if answer is None:
                raise RuntimeError("the answer stream ended without a final answer")
            turns[i] = t.but(status="done", partial=partial, answer=answer)
        except (ValueError, RagError) as exc:
            msg = _sentence(str(exc))
            gr.Warning(msg)
            turns[i] = t.but(status="error", error=msg)
        except Exception:  # never a traceback in the user's face
            log.exception("answering %r failed", t.question)
            turns[i] = t.but(status="error", error=GENERIC_ERROR)
        yield render_transcript(turns), turns

    def api_ask(self, question: str) -> dict:
        """The ``/ask`` API endpoint: one standalone question, answered with the page's defaults.

        Returns ``Answer.to_dict()`` (text, abstained, citations, sentences). Shares the model and
        the generation queue with the chat; a bad question comes back as a clear error message.
        """
        try:
            answer = self.pool.for_model(None).ask(question or "")
        except (ValueError, RagError) as exc:
            raise gr.Error(_sentence(str(exc))) from None
        except Exception:  # never a traceback to the caller
            log.exception("answering %r through the API failed", question)
            raise gr.Error(GENERIC_ERROR) from None
        return answer.to_dict()

    def source_html(self, turns: list[Turn], turn: Any, n: Any) -> str | None:
        """The source viewer for citation ``n`` of turn ``turn``, or None if there is none."""
        try:
            t = (turns or [])[int(turn)]
            n = int(n)
        except (TypeError, ValueError, IndexError):
            return None
        if t.answer is None:
            return None
        c = next((c for c in t.answer.citations if c.n == n), None)
        if c is None:
            return None
        try:
            text = self.pool.document_text(c.doc_id)
        except Exception:  # a broken index must not break the page
            log.exception("reading document %s failed", c.doc_id)
            text = None
        return render_source_view(text, c)

    def open_source(self, turns: list[Turn], evt: CitationClick):
        view = self.source_html(turns, evt.turn, evt.n)
        if view is None:
            return gr.update(), gr.update()
        return view, gr.Tabs(selected="source")

    def clear(self, turns: list[Turn]):
        if self.busy(turns):
            gr.Warning("Please wait until the current answer is finished.")
            return gr.update(), turns, gr.update(), gr.update()
        return render_transcript([]), [], source_view_placeholder(), gr.Row(visible=True)

    def refresh_docs(self):
        try:
            docs = self.pool.documents()
        except (RagError, OSError) as exc:
            return f'<div class="error-msg">{esc(_sentence(str(exc)))}</div>', gr.Dropdown(choices=[], value=None)
        return render_documents(docs, self.pool.uploads_dir), gr.Dropdown(choices=document_choices(docs), value=None)

    def on_upload(self, files: Any, progress=gr.Progress(track_tqdm=True)):
        """Index uploaded files; returns (message, document list, remove dropdown, cleared upload box)."""
        paths = files if isinstance(files, list) else ([files] if files else [])
        pairs = [(p, Path(str(p)).name) for p in paths]
        try:
            outcome = self.pool.add_uploads(pairs, progress=lambda frac, desc: progress(frac, desc=desc))
            msg = outcome.message(self.settings.max_upload_mb)
        except Exception:
            log.exception("upload failed")
            msg = "✗ The upload failed; the index was not changed. The details are in the server log."
        else:
            if not outcome.ok:
                gr.Warning("Some files were not added: see the Documents tab.")
        html_docs, dropdown = self.refresh_docs()
        return msg, html_docs, dropdown, None

    def on_remove(self, doc_id: str | None):
        if not doc_id:
            gr.Warning("Choose a document to remove first.")
            return gr.update(), *self.refresh_docs()
        try:
            msg = self.pool.remove(doc_id)
        except (RagError, ValueError) as exc:
            msg = f"✗ {_sentence(str(exc))}"
        except Exception:
            log.exception("removing %s failed", doc_id)
            msg = "✗ The document could not be removed; the details are in the server log."
        return msg, *self.refresh_docs()


def build_app(settings: Settings, pool: AssistantPool | None = None) -> gr.Blocks:
    """Build the page for ``settings`` (launch it with ``launch_app``)."""
    pool = pool or AssistantPool(settings)
    h = ChatHandlers(settings, pool)
    model_choices = list(MODEL_CHOICES)
    if settings.model not in {m for _, m in model_choices}:
        model_choices.append((f"{settings.model} (configured)", settings.model))

    # -- layout ------------------------------------------------------------------------------

    with gr.Blocks(title=TITLE) as demo:
        turns = gr.State([])
        gr.HTML(
            f"<h1>{TITLE}</h1><p>Answers come only from the indexed documents, every sentence cited. "
            "Everything runs on this computer.</p>",
            elem_id="app-header",
            js_on_load=None,
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                transcript = gr.HTML(
                    render_transcript([]),
                    elem_id="transcript",
                    js_on_load=TRANSCRIPT_JS,
                    autoscroll=False,
                    min_height=320,
                    max_height=640,
                )
                with gr.Row(elem_id="ask-row"):
                    question = gr.Textbox(
                        show_label=False,
                        placeholder="Ask a question about the documents…",
                        lines=1,
                        max_lines=4,
                        scale=6,
                        elem_id="question",
                        autofocus=True,
                    )
                    ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask-btn")
                busy_note = gr.Markdown("", elem_id="busy-note")
                with gr.Row(elem_id="examples") as examples_row:
                    example_btns = [
                        gr.Button(q, size="sm", elem_classes=["example-q"], min_width=160) for q in EXAMPLE_QUESTIONS
                    ]
                clear_btn = gr.Button("New conversation", size="sm", variant="secondary", elem_id="clear-btn")
            with gr.Column(scale=2, min_width=340):
                with gr.Tabs(selected="source", elem_id="side-tabs") as tabs:
                    with gr.Tab("Source", id="source", elem_id="tab-source"):
                        viewer = gr.HTML(source_view_placeholder(), elem_id="source-viewer", js_on_load=VIEWER_JS)
                    with gr.Tab("Documents", id="documents", elem_id="tab-documents") as docs_tab:
                        upload = gr.File(
                            label=f"Add documents: .txt, .md, .html or .pdf, up to {settings.max_upload_mb} MB each",
                            file_types=list(ALLOWED_SUFFIXES),
                            file_count="multiple",
                            type="filepath",
                            elem_id="upload",
                        )
                        upload_status = gr.Markdown(elem_id="upload-status")
                        doc_list = gr.HTML(elem_id="doc-list", js_on_load=None)
                        with gr.Row(equal_height=True):
                            doc_pick = gr.Dropdown(
                                label="Remove a document", choices=[], value=None, scale=3, elem_id="doc-pick"
                            )
                            remove_btn = gr.Button("Remove", variant="stop", scale=1, min_width=90, elem_id="remove-btn")
                    with gr.Tab("Settings", id="settings", elem_id="tab-settings"):
                        k = gr.Slider(
                            1, 10, value=min(max(settings.top_k, 1), 10), step=1,
                            label="Passages to retrieve (k)", elem_id="k",
                        )
                        model = gr.Radio(model_choices, value=settings.model, label="Model", elem_id="model")
                        strict = gr.Checkbox(
                            value=settings.strict,
                            label="Strict mode: leave out sentences the sources do not support",
                            elem_id="strict",
                        )
                        gr.Markdown(
                            "Answers are generated one at a time for everyone using this page; "
                            "while another answer is being written, yours waits in the queue."
                        )

        # -- wiring --------------------------------------------------------------------------

        answer_kwargs = dict(
            fn=h.answer_turn,
            inputs=[turns, k, model, strict],
            outputs=[transcript, turns],
            concurrency_limit=1,
            concurrency_id="assistant",
            show_progress="minimal",
            api_visibility="private",
        )
        start_outputs = [question, turns, transcript, examples_row, busy_note]
        for trigger in (ask_btn.click, question.submit):
            trigger(h.start_turn, [question, turns], start_outputs, queue=False, api_visibility="private").then(
                **answer_kwargs
            )
        for btn, q in zip(example_btns, EXAMPLE_QUESTIONS):
            btn.click(
                lambda ts, q=q: h.start_turn(q, ts), [turns], start_outputs, queue=False, api_visibility="private"
            ).then(**answer_kwargs)
        transcript.click(h.open_source, [turns], [viewer, tabs], queue=False, api_visibility="private")
        clear_btn.click(h.clear, [turns], [transcript, turns, viewer, examples_row], queue=False, api_visibility="private")
        upload.upload(
            h.on_upload,
            [upload],
            [upload_status, doc_list, doc_pick, upload],
            concurrency_limit=1,
            concurrency_id="assistant",
            show_progress_on=[upload_status],
            api_visibility="private",
        )
        remove_btn.click(
            h.on_remove,
            [doc_pick],
            [upload_status, doc_list, doc_pick],
            concurrency_limit=1,
            concurrency_id="assistant",
            api_visibility="private",
        )
        gr.api(
            h.api_ask,
            api_name="ask",
            api_description="Answer one question from the indexed documents; returns the Answer as JSON.",
            concurrency_limit=1,
            concurrency_id="assistant",
        )
        demo.load(h.refresh_docs, None, [doc_list, doc_pick], queue=False, api_visibility="private")
        docs_tab.select(h.refresh_docs, None, [doc_list, doc_pick], queue=False, api_visibility="private")

    demo.queue(default_concurrency_limit=1, max_size=settings.ui_queue_size)
    return demo


def _sentence(msg: str) -> str:
    msg = msg.strip()
    return (msg[:1].upper() + msg[1:]) if msg else msg


# ----- launching ------------------------------------------------------------------------------


def launch_app(
    app: gr.Blocks,
    settings: Settings,
    *,
    open_browser: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Launch the page offline on ``settings.host``/``settings.port`` (``settings.auth`` when set);
    returns its local URL (``block=False`` returns at once)."""
    host, port = settings.host, settings.port
    credentials = parse_auth(settings.auth or None)
    if host not in ("127.0.0.1", "localhost", "::1") and credentials is None:
        log.warning("listening on %s without --auth: anyone who can reach this address can use the page", host)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        auth=credentials,
        auth_message="Sign in to use the policy documents assistant." if credentials else None,
        inbrowser=open_browser,
        share=False,
        prevent_thread_lock=not block,
        max_file_size=f"{settings.max_upload_mb}mb",
        ssr_mode=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=[],
        quiet=quiet,
        show_error=False,
        theme=_theme(),
        css=CSS,
    )
    return url


def prepare_index(settings: Settings, pool: AssistantPool) -> None:
    """Build/refresh the default index when it is the one in use; then re-add earlier uploads.

    Raises:
        RagError: a custom index folder holds no index.
    """
    if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve():
        ensure_default_index(settings, progress=True)
        # Uploads kept in the data folder are re-checked (unchanged files cost nothing).
        pool.reindex_uploads()
    elif not store_exists(settings):
        raise RagError(f"no index in {settings.index_dir}: run `rag index PATH --index {settings.index_dir}` first")


def serve(settings: Settings, open_browser: bool = False) -> int:
    """Start the chat page on ``settings.host``:``settings.port`` and serve until interrupted; returns the exit status."""
    parse_auth(settings.auth or None)  # fail fast on a malformed --auth
    pool = AssistantPool(settings)
    prepare_index(settings, pool)
    # Load the models in the background so the first question does not wait for them.
    threading.Thread(target=_warm_up, args=(pool,), name="rag-warm-up", daemon=True).start()
    app = build_app(settings, pool)
    try:
        url = launch_app(app, settings, open_browser=open_browser, block=False)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
        return 1
    log.info("the chat is at %s", url)
    try:
        app.block_thread()  # returns on Ctrl+C
    finally:
        app.close()
    return 0


def _warm_up(pool: AssistantPool) -> None:
    try:
        pool.primary.warm_up()
    except Exception:  # the first question will report the problem
        log.warning("warm-up failed", exc_info=True)
