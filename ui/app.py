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

from rag.config import DEFAULT_INDEX_DIR, Settings, setup_offline

setup_offline()  # before gradio is imported: GRADIO_ANALYTICS_ENABLED=False

import gradio as gr  # noqa: E402

from rag.errors import RagError  # noqa: E402
from rag.pipeline import clean_question, ensure_default_index  # noqa: E402
from rag.store import IndexStore  # noqa: E402
from rag.types import Answer  # noqa: E402

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

# Clicks on [n] markers and "Show in document" buttons open the source (a Python event).
TRANSCRIPT_JS = """
element.addEventListener('click', (ev) => {
  const el = ev.target.closest('[data-cite]');
  if (!el || !element.contains(el)) return;
  ev.preventDefault();
  ev.stopPropagation();
  trigger('click', {turn: Number(el.dataset.turn), n: Number(el.dataset.n)});
});
// Follow the conversation while the reader is at its end: the bottom while an answer
// streams, the top of the answer once it is complete.
const box = element.closest('.html-container') || element.parentElement;
let follow = true;
box.addEventListener('scroll', () => {
  follow = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}, {passive: true});
watch('value', () => {
  const turns = element.querySelectorAll('.turn');
  if (!turns.length) { follow = true; return; }
  const last = turns[turns.length - 1];
  const state = last.dataset.state;
  if (state === 'queued') follow = true;
  if (!follow) return;
  if (state === 'queued' || state === 'running') {
    box.scrollTop = box.scrollHeight;
  } else {
    const top = last.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop - 8;
    box.scrollTop = Math.min(top, box.scrollHeight);
    follow = false;
  }
});
"""

# After a new source is shown, scroll its <mark> into view (once the tab is visible).
VIEWER_JS = """
const reveal = () => {
  let tries = 0;
  const go = () => {
    const m = element.querySelector('mark');
    if (!m) return;
    if (m.offsetParent === null && tries++ < 60) { setTimeout(go, 50); return; }
    const box = element.querySelector('.sv-body');
    if (box) box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
    const r = element.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight) element.scrollIntoView({block: 'start', behavior: 'smooth'});
  };
  go();
};
watch('value', reveal);
"""

CSS = """
/* the conversation stays readable while an answer is pending or streaming */
#transcript .pending { opacity: 1 !important; }
.spinner { display: inline-block; width: .8em; height: .8em; margin-right: .45em; vertical-align: -.05em;
  border: 2px solid var(--border-color-primary); border-top-color: var(--color-accent); border-radius: 50%;
  animation: spin .8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
#app-header h1 { margin: 0 0 .2rem 0; font-size: 1.5rem; }
#app-header p { margin: 0; opacity: .8; }
#transcript { border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
  padding: .75rem; background: var(--background-fill-secondary); }
#transcript .welcome { padding: 1rem 1.25rem; }
#transcript .welcome h3 { margin-top: 0; }
.turn { margin-bottom: 1rem; }
.msg { display: flex; margin: .35rem 0; }
.msg.user { justify-content: flex-end; }
.msg .bubble { max-width: 92%; padding: .6rem .85rem; border-radius: 12px; line-height: 1.5;
  background: var(--background-fill-primary); border: 1px solid var(--border-color-primary); }
.msg.user .bubble { background: var(--color-accent-soft); white-space: pre-wrap; }
.answer-text { white-space: pre-wrap; }
a.cite-ref { font-weight: 600; text-decoration: none; color: var(--color-accent); cursor: pointer;
  padding: 0 1px; border-radius: 3px; }
a.cite-ref:hover { background: var(--color-accent-soft); text-decoration: underline; }
.cite-pending { font-weight: 600; opacity: .7; }
.cursor { animation: blink 1s steps(2, start) infinite; }
@keyframes blink { to { visibility: hidden; } }
.status { font-size: .9em; opacity: .8; margin-top: .3rem; }
.refusal { border-left: 4px solid #d97706; padding: .25rem .75rem; }
.refusal-head { font-weight: 600; }
.refusal-why { font-size: .9em; opacity: .8; margin-top: .25rem; }
.error-msg { color: #b91c1c; }
details.support, details.turn-details { margin-top: .5rem; font-size: .88em; }
details.support summary, details.turn-details summary { cursor: pointer; opacity: .85; }
details.support ul { list-style: none; padding-left: .25rem; margin: .3rem 0; }
li.sent { margin: .2rem 0; }
li.sent.supported .sent-icon { color: #15803d; font-weight: 700; }
li.sent.unsupported .sent-icon { color: #b45309; font-weight: 700; }
li.sent.unsupported .sent-text { text-decoration: underline dotted #b45309; }
.sent-meta { opacity: .65; font-size: .9em; }
.sources { margin-top: .6rem; }
.sources-head { font-weight: 600; font-size: .9em; margin-bottom: .3rem; }
.source-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .45rem .6rem;
  margin: .35rem 0; font-size: .88em; background: var(--background-fill-secondary); }
.src-n { font-weight: 700; color: var(--color-accent); }
.src-title { font-weight: 600; }
.src-score, .src-page, .src-heading { opacity: .75; }
#transcript .source-card blockquote.src-quote { margin: .35rem 0 !important; padding: 0 0 0 .6rem !important; border-left: 3px solid var(--border-color-accent);
  white-space: pre-wrap; max-height: 9.5em; overflow-y: auto; }
button.open-source { font-size: .85em; padding: .1rem .5rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); }
button.open-source:hover { border-color: var(--color-accent); }
.turn-details .rewritten q { font-style: italic; }
.stats { opacity: .7; margin-top: .2rem; }
#source-viewer .sv-empty { padding: 1rem; opacity: .8; }
.source-view .sv-head { font-size: .92em; margin-bottom: .2rem; }
.source-view .sv-file { font-size: .8em; opacity: .65; margin-bottom: .4rem; }
.source-view .sv-note { font-size: .9em; color: #b45309; margin-bottom: .3rem; }
.source-view .sv-body { position: relative; white-space: pre-wrap; max-height: 62vh; overflow-y: auto;
  padding: .6rem; border: 1px solid var(--border-color-primary); border-radius: 8px; line-height: 1.55;
  background: var(--background-fill-primary); font-size: .92em; }
.source-view mark { background: #fde68a; color: inherit; padding: 1px 0; border-radius: 2px; }
.doc-table { width: 100%; font-size: .88em; border-collapse: collapse; }
.doc-table th, .doc-table td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--border-color-primary); }
.doc-table td.num { text-align: right; }
.docs-count { font-size: .8em; opacity: .7; margin-top: .3rem; }
#examples { gap: .4rem; }
#examples button { white-space: normal; }
"""


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
        return bool(turns) and turns[-1].status in ("queued", "running")

    def start_turn(self, question: str, turns: list[Turn]):
        """Queue-free first step: show the question at once (or refuse it with a message).

        Returns (question box, turns, transcript, examples row).
        """
        turns = list(turns or [])
        if self.busy(turns):
            gr.Warning("Please wait until the current answer is finished.")
            return gr.update(), turns, gr.update(), gr.update()
        try:
            q = clean_question(question or "", self.settings.max_question_chars)
        except ValueError as exc:
            gr.Warning(_sentence(str(exc)))
            return gr.update(), turns, gr.update(), gr.update()
        turns.append(Turn(q))
        return "", turns, render_transcript(turns), gr.Row(visible=False)

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
            stream = assistant.ask(
                t.question, stream=True, history=chat_history(turns[:i]) or None, k=int(k), strict=bool(strict)
            )
            partial, answer, last = "", None, 0.0
            for item in stream:
                if isinstance(item, Answer):
                    answer = item
                    continue
                partial += item
                now = time.monotonic()
                if now - last >= 0.08:
                    last = now
                    turns[i] = t.but(partial=partial)
                    yield render_transcript(turns), turns
            if answer is None:
                raise RuntimeError("the answer stream ended without an Answer")
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

    def open_source(self, turns: list[Turn], evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        view = self.source_html(turns, data.get("turn"), data.get("n"))
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
        start_outputs = [question, turns, transcript, examples_row]
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

    demo.queue(default_concurrency_limit=1, max_size=64)
    return demo


def _sentence(msg: str) -> str:
    msg = msg.strip()
    return (msg[:1].upper() + msg[1:]) if msg else msg


# ----- launching ------------------------------------------------------------------------------


def launch_app(
    app: gr.Blocks,
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    open_browser: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Launch the page offline; returns its local URL (``block=False`` returns at once)."""
    credentials = parse_auth(auth)
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
    elif not IndexStore.exists(settings.index_dir):
        raise RagError(f"no index in {settings.index_dir}: run `rag index PATH --index {settings.index_dir}` first")


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    open_browser: bool = False,
) -> int:
    """Start the chat page and serve until interrupted; returns the exit status."""
    parse_auth(auth)  # fail fast on a malformed --auth
    pool = AssistantPool(settings)
    prepare_index(settings, pool)
    # Load the models in the background so the first question does not wait for them.
    threading.Thread(target=_warm_up, args=(pool,), name="rag-warm-up", daemon=True).start()
    app = build_app(settings, pool)
    try:
        url = launch_app(app, settings, host=host, port=port, auth=auth, open_browser=open_browser, block=False)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc)
        return 1
    log.info("the chat is at %s", url)
    try:
        app.block_thread()  # returns on Ctrl+C
    finally:
        app.close()
    return 0


def _warm_up(pool: AssistantPool) -> None:
    try:
        a = pool.primary
        _ = a.store, a.embedder, a.backend, a.judge
    except Exception:  # the first question will report the problem
        log.warning("warm-up failed", exc_info=True)
