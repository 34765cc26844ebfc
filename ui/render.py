"""Pure presentation helpers of the chat page: HTML for turns, sources and documents.

Nothing here imports gradio or loads a model, so every function is cheap to test.
All text that comes from documents, questions or the model is HTML-escaped by
``esc``; the few tags written here are the only markup on the page.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from rag import SUPPORTED_SUFFIXES, Answer, Citation, Reason

#: File types accepted by the upload box (the loaders' list).
ALLOWED_SUFFIXES: tuple[str, ...] = tuple(SUPPORTED_SUFFIXES)

#: Questions offered on the empty page, about the default corpus's article.
EXAMPLE_QUESTIONS: tuple[str, ...] = (
    "What share of swimming pools are at risk of closure?",
    "Why are leisure centres struggling with energy bills?",
    "What does effective collaboration require?",
)

#: Documents up to this many characters are shown whole in the source viewer.
WHOLE_DOC_CHARS = 20_000
#: Otherwise this much text is shown on each side of the cited span.
CONTEXT_CHARS = 2_500
#: The longest file name kept for an upload (characters, suffix included).
MAX_NAME_CHARS = 120

_REASONS: dict[Reason, str] = {
    Reason.NO_RELEVANT_PASSAGES: "No passage in the indexed documents is relevant to this question.",
    Reason.MODEL_DECLINED: "The passages found do not contain the answer.",
    Reason.UNSUPPORTED: "A draft answer was written, but too little of it could be backed by the passages, so it was withheld.",
    Reason.NOT_AN_ANSWER: "The passages found do not answer this question, so no answer is given.",
    Reason.OFF_TOPIC: "This is not a question about the indexed documents.",
}

_SIMPLE_MARKER = re.compile(r"\[(\d{1,4})\]")


class UploadError(ValueError):
    """An uploaded file is refused; the message says why and what to do."""


# ----- session records ------------------------------------------------------------------------


@dataclass
class Turn:
    """One question of a browser session and what became of it.

    ``status``: ``queued`` (waiting for the model), ``running`` (retrieving or
    streaming the draft ``partial``), ``checking`` (the draft is complete and being checked),
    ``done`` (``answer`` is set) or ``error`` (``error`` is set).
    """

    question: str
    status: str = "queued"
    partial: str = ""
    answer: Answer | None = None
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def but(self, **changes: Any) -> "Turn":
        return replace(self, **changes)


def chat_history(turns: list[Turn]) -> list[tuple[str, str]]:
    """(question, answer text) pairs of the answered turns, for follow-up rewriting."""
    return [(t.question, t.answer.text) for t in turns if t.status == "done" and t.answer is not None]


# ----- escaping -------------------------------------------------------------------------------


def esc(text: Any) -> str:
    """HTML-escape ``text`` for element content and quoted attributes.

    Braces, ``$`` and backticks become character references too: the page's HTML
    components treat ``{{...}}`` and ``${...}`` as template syntax, and document
    text must never be interpreted. The text a reader sees (and ``textContent``)
    is unchanged.
    """
    s = html.escape(str(text), quote=True)
    return s.replace("{", "&#123;").replace("}", "&#125;").replace("$", "&#36;").replace("`", "&#96;")


# ----- uploads --------------------------------------------------------------------------------


def sanitize_filename(name: str) -> str:
    """A safe file name for ``data_dir/uploads`` from a name sent by a browser.

    Path components are stripped (``dir/a.txt`` -> ``a.txt``); absolute paths and
    ``..`` components are refused, as are names with nothing left. Characters other
    than letters, digits, ``.``, ``-`` and ``_`` become ``_``; leading dots go (no
    hidden files); long names are shortened, keeping the suffix.

    Raises:
        UploadError: the name is absolute, climbs with ``..``, or is empty.
    """
    raw = unicodedata.normalize("NFKC", str(name or ""))
    raw = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    if not raw.strip():
        raise UploadError("the file has no name")
    if raw.startswith(("/", "\\")) or PureWindowsPath(raw).is_absolute() or re.match(r"^[A-Za-z]:", raw):
        raise UploadError(f"{raw!r}: absolute paths are not accepted as file names")
    parts = re.split(r"[\\/]+", raw)
    if any(p.strip() == ".." for p in parts):
        raise UploadError(f"{raw!r}: file names may not contain '..'")
    base = parts[-1].strip()
    base = re.sub(r"[^\w.\-]+", "_", base, flags=re.UNICODE)
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"_{2,}", "_", base)
    base = base.lstrip("._-").rstrip(". ")
    stem, suffix = _split_suffix(base)
    if not stem.strip("_-."):
        raise UploadError(f"{raw!r}: the file name is empty once unsafe characters are removed")
    if len(base) > MAX_NAME_CHARS:
        base = stem[: MAX_NAME_CHARS - len(suffix)].rstrip("._-") + suffix
    return base


def _split_suffix(name: str) -> tuple[str, str]:
    p = PurePosixPath(name)
    suffix = p.suffix if len(p.suffix) <= 10 else ""
    return (name[: -len(suffix)] if suffix else name), suffix


def check_upload(name: str, size_bytes: int, max_mb: int) -> str:
    """Validate an upload's name, type and size; return the sanitised file name.

    Raises:
        UploadError: with a message naming the file and the reason.
    """
    safe = sanitize_filename(name)
    suffix = PurePosixPath(safe).suffix.lower()
    shown = PurePosixPath(re.split(r"[\\/]+", str(name))[-1]).name or safe
    if suffix not in ALLOWED_SUFFIXES:
        kinds = ", ".join(s for s in ALLOWED_SUFFIXES if s not in (".markdown", ".htm"))
        raise UploadError(f"{shown}: unsupported file type {suffix or '(none)'}; upload {kinds} files")
    limit = max_mb * 1024 * 1024
    if size_bytes > limit:
        raise UploadError(f"{shown}: the file is {size_bytes / (1024 * 1024):.1f} MB, over the {max_mb} MB limit")
    if size_bytes == 0:
        raise UploadError(f"{shown}: the file is empty")
    return safe


# ----- answers --------------------------------------------------------------------------------


def _fmt_score(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def link_markers(escaped: str, turn: int, citations: dict[int, Citation]) -> str:
    """Turn ``[n]`` markers of already-escaped text into buttons that open source ``n``.

    Markers without a matching citation stay plain text.
    """

    def sub(m: re.Match) -> str:
        n = int(m.group(1))
        c = citations.get(n)
        if c is None:
            return m.group(0)
        return (
            f'<a href="#src-{turn}-{n}" class="cite-ref" data-cite="1" data-turn="{turn}" data-n="{n}" '
            f'title="Open source {n}: {esc(c.title)}" role="button">[{n}]</a>'
        )

    return _SIMPLE_MARKER.sub(sub, escaped)


def _styled_markers(escaped: str) -> str:
    return _SIMPLE_MARKER.sub(lambda m: f'<span class="cite-pending">[{m.group(1)}]</span>', escaped)


def render_citation_card(turn: int, c: Citation) -> str:
    """One numbered source under an answer: title, page, score and the quoted passage."""
    where = [f'<span class="src-title">{esc(c.title)}</span>']
    if c.page:
        where.append(f'<span class="src-page">page {c.page}</span>')
    if c.heading and c.heading.strip() != c.title.strip():
        where.append(f'<span class="src-heading">{esc(c.heading)}</span>')
    where.append(f'<span class="src-score" title="retrieval score">score {c.score:.3f}</span>')
    return (
        f'<div class="source-card" id="src-{turn}-{c.n}" data-turn="{turn}" data-n="{c.n}" data-doc="{esc(c.doc_id)}">'
        f'<div class="src-head"><span class="src-n">[{c.n}]</span> {" · ".join(where)}</div>'
        f'<blockquote class="src-quote">{esc(c.quote)}</blockquote>'
        f'<button type="button" class="open-source" data-cite="1" data-turn="{turn}" data-n="{c.n}">'
        f"Show in document</button></div>"
    )


def render_support(sentences) -> str:
    """The per-sentence check: ✓ supported, ⚠ not supported, · not checked, with the score."""
    if not sentences:
        return ""
    items = []
    ok = bad = 0
    for s in sentences:
        if s.supported is True:
            icon, cls, label = "✓", "supported", "supported by its sources"
            ok += 1
        elif s.supported is False:
            icon, cls, label = "⚠", "unsupported", "not supported by the cited passages"
            bad += 1
        else:
            icon, cls, label = "·", "unchecked", "not checked"
        cites = "".join(f"[{n}]" for n in s.citations) or "no source"
        inferred = " (source added automatically)" if s.citation_inferred else ""
        items.append(
            f'<li class="sent {cls}" title="{label}"><span class="sent-icon">{icon}</span> '
            f'<span class="sent-text">{esc(s.text)}</span> '
            f'<span class="sent-meta">{cites}{inferred} · support {_fmt_score(s.support)}</span></li>'
        )
    summary = f"Sentence check: {ok} supported" + (f", {bad} not supported" if bad else "")
    return f'<details class="support" open><summary>{summary}</summary><ul>{"".join(items)}</ul></details>'


def render_refusal(answer: Answer) -> str:
    """An honest refusal: the documents don't answer this. No sources are shown."""
    why = _REASONS.get(Reason(answer.reason), "") if answer.reason is not None else ""
    return (
        f'<div class="refusal" role="status"><div class="refusal-head">{esc(answer.text)}</div>'
        + (f'<div class="refusal-why">{esc(why)}</div>' if why else "")
        + "</div>"
    )


def _details(turn_obj: Turn) -> str:
    a = turn_obj.answer
    if a is None:
        return ""
    rows = []
    if a.standalone_question and a.standalone_question != turn_obj.question:
        rows.append(f'<div class="rewritten">Searched for: <q>{esc(a.standalone_question)}</q></div>')
    else:
        rows.append('<div class="rewritten-same">The question was searched as asked.</div>')
    st = a.stats
    bits = []
    if st.total_s is not None:
        bits.append(f"{st.total_s:.1f} s in all")
    if st.first_token_s is not None:
        bits.append(f"first words after {st.first_token_s:.1f} s")
    if st.completion_tokens:
        bits.append(f"{int(st.completion_tokens)} tokens")
    s = turn_obj.settings
    if s:
        bits.append(f"model {esc(s.get('model', ''))}, k={s.get('k', '')}" + (", strict" if s.get("strict") else ""))
    if bits:
        rows.append(f'<div class="stats">{" · ".join(bits)}</div>')
    return f'<details class="turn-details"><summary>Details</summary>{"".join(rows)}</details>'


def render_answer(turn: int, turn_obj: Turn) -> str:
    """The assistant's side of a turn, in whatever state it is in."""
    t = turn_obj
    if t.status == "queued":
        return '<div class="status queued"><span class="spinner"></span>Waiting in queue… another answer is being written.</div>'
    if t.status == "error":
        return f'<div class="error-msg" role="alert">{esc(t.error or "Something went wrong.")}</div>'
    if t.status in ("running", "checking"):
        if not t.partial:
            return '<div class="status searching"><span class="spinner"></span>Searching the documents…</div>'
        body = _styled_markers(esc(t.partial))
        if t.status == "checking":
            return (
                f'<div class="answer-text streaming draft">{body}</div>'
                '<div class="status checking"><span class="spinner"></span>Draft complete: checking every sentence against its source…</div>'
            )
        return (
            f'<div class="answer-text streaming draft">{body}<span class="cursor">▍</span></div>'
            '<div class="status writing"><span class="spinner"></span>Writing a draft, then checking it against the sources…</div>'
        )
    a = t.answer
    if a is None:  # pragma: no cover - a done turn always has an answer
        return ""
    if a.abstained:
        return render_refusal(a) + _details(t)
    cites = {c.n: c for c in a.citations}
    body = link_markers(esc(a.text), turn, cites)
    cards = "".join(render_citation_card(turn, c) for c in a.citations)
    sources = (
        f'<div class="sources"><div class="sources-head">Sources ({len(a.citations)})</div>{cards}</div>' if cards else ""
    )
    return f'<div class="answer-text">{body}</div>{render_support(a.sentences)}{sources}{_details(t)}'


def render_turn(turn: int, turn_obj: Turn) -> str:
    state = turn_obj.status
    if state == "done" and turn_obj.answer is not None and turn_obj.answer.abstained:
        state = "refused"
    return (
        f'<div class="turn" id="turn-{turn}" data-turn="{turn}" data-state="{state}">'
        f'<div class="msg user"><div class="bubble">{esc(turn_obj.question)}</div></div>'
        f'<div class="msg bot"><div class="bubble">{render_answer(turn, turn_obj)}</div></div></div>'
    )


def render_transcript(turns: list[Turn]) -> str:
    """The whole conversation of a session, or the welcome text when it is empty."""
    if not turns:
        return (
            '<div class="welcome"><h3>Ask about your policy documents</h3>'
            "<p>Answers are written only from the indexed documents. Every sentence cites the "
            "passages it comes from: click a number like <span class=\"cite-pending\">[1]</span> to "
            "see the passage in its document. When the documents don't answer a question, the "
            "assistant says so.</p><p>Try one of the example questions below, or add your own "
            "documents in the <b>Documents</b> tab.</p></div>"
        )
    return f'<div class="transcript">{"".join(render_turn(i, t) for i, t in enumerate(turns))}</div>'


# ----- the source viewer ----------------------------------------------------------------------


def source_view_placeholder() -> str:
    return (
        '<div class="sv-empty">Click a source number such as <span class="cite-pending">[1]</span> in an '
        "answer, or <b>Show in document</b> under it, to read the cited passage in its document.</div>"
    )


def render_source_view(
    doc_text: str | None,
    c: Citation,
    *,
    whole_doc_chars: int = WHOLE_DOC_CHARS,
    context_chars: int = CONTEXT_CHARS,
) -> str:
    """The document around citation ``c``, its span ``doc_text[start:end]`` inside ``<mark>``.

    Short documents are shown whole; long ones with ``context_chars`` of text on
    each side. When the document is gone from the index, or its text no longer
    matches the citation, only the quoted passage is shown, with a note.
    """
    meta = [f'<span class="src-n">[{c.n}]</span> <span class="src-title">{esc(c.title)}</span>']
    if c.page:
        meta.append(f"page {c.page}")
    if c.heading and c.heading.strip() != c.title.strip():
        meta.append(esc(c.heading))
    meta.append(f"characters {c.start:,}–{c.end:,}")
    meta.append(f"score {c.score:.3f}")
    head = (
        f'<div class="sv-head">{" · ".join(meta)}</div>'
        f'<div class="sv-file" title="{esc(c.source)}">{esc(Path(c.source).name)}</div>'
    )
    valid = doc_text is not None and 0 <= c.start <= c.end <= len(doc_text) and doc_text[c.start : c.end] == c.quote
    if not valid:
        note = (
            "This document is no longer in the index; the cited passage was:"
            if doc_text is None
            else "The document has changed since this answer; the cited passage was:"
        )
        body = f'<div class="sv-note">{note}</div><div class="sv-body"><mark id="cited-span">{esc(c.quote)}</mark></div>'
        return f'<div class="source-view" data-doc="{esc(c.doc_id)}" data-n="{c.n}">{head}{body}</div>'
    assert doc_text is not None
    if len(doc_text) <= whole_doc_chars:
        lo, hi = 0, len(doc_text)
    else:
        lo, hi = max(0, c.start - context_chars), min(len(doc_text), c.end + context_chars)
    before = ("… " if lo > 0 else "") + doc_text[lo : c.start]
    after = doc_text[c.end : hi] + (" …" if hi < len(doc_text) else "")
    body = (
        f'<div class="sv-body">{esc(before)}<mark id="cited-span">{esc(doc_text[c.start : c.end])}</mark>'
        f"{esc(after)}</div>"
    )
    return f'<div class="source-view" data-doc="{esc(c.doc_id)}" data-n="{c.n}">{head}{body}</div>'


# ----- documents ------------------------------------------------------------------------------


def is_upload(source: str, uploads_dir: Path) -> bool:
    try:
        return Path(source).resolve().parent == Path(uploads_dir).resolve()
    except OSError:
        return False


def render_documents(docs: list[dict], uploads_dir: Path) -> str:
    """The indexed documents as a table: title, file, passages, origin."""
    if not docs:
        return '<div class="docs-empty">No documents are indexed. Upload some above.</div>'
    rows = []
    for d in sorted(docs, key=lambda d: (not is_upload(d["source"], uploads_dir), d["title"].lower())):
        origin = "uploaded" if is_upload(d["source"], uploads_dir) else "corpus"
        rows.append(
            f'<tr data-doc="{esc(d["doc_id"])}"><td>{esc(d["title"])}</td>'
            f'<td title="{esc(d["source"])}">{esc(Path(d["source"]).name)}</td>'
            f'<td class="num">{int(d.get("chunks", 0))}</td><td>{origin}</td></tr>'
        )
    return (
        '<table class="doc-table"><thead><tr><th>Title</th><th>File</th><th>Passages</th><th>Origin</th></tr>'
        f'</thead><tbody>{"".join(rows)}</tbody></table><div class="docs-count">{len(docs)} document'
        f'{"s" if len(docs) != 1 else ""} indexed</div>'
    )


def document_choices(docs: list[dict]) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the remove-a-document dropdown."""
    return [(f"{d['title']} ({Path(d['source']).name})", d["doc_id"]) for d in sorted(docs, key=lambda d: d["title"].lower())]
