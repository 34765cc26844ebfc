"""The chat page's helpers: file names, upload checks, the HTML of answers, sources and refusals.

The rendering and handler tests use no model; the upload tests use the packaged
embedder on a private copy of the article's index.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import RagError
from rag.types import Answer, Citation, Reason, Sentence
from ui.render import (
    MAX_NAME_CHARS,
    Turn,
    UploadError,
    chat_history,
    check_upload,
    esc,
    link_markers,
    render_answer,
    render_documents,
    render_source_view,
    render_transcript,
    render_turn,
    sanitize_filename,
)

DOC = (
    "Leisure report\n\nIntro text about councils. "
    "One third of <swimming pools> are at risk & closing {{soon}} ${x}. "
    "More text after the cited span."
)
SPAN = "One third of <swimming pools> are at risk & closing {{soon}} ${x}."


def _cit(n=1, text=DOC, span=SPAN, **kw) -> Citation:
    start = text.index(span)
    fields = dict(
        n=n, doc_id="d1", source="/data/report.txt", title="Leisure <report>", start=start,
        end=start + len(span), quote=span, score=0.42, page=None, heading=None,
    )
    fields.update(kw)
    return Citation(**fields)


def _answer(**kw) -> Answer:
    fields = dict(
        question="What share of pools are at risk?",
        text="One third of pools are at risk [1].",
        abstained=False,
        citations=[_cit()],
        sentences=[Sentence("One third of pools are at risk.", (1,), 0.91, True)],
        standalone_question="What share of pools are at risk?",
    )
    fields.update(kw)
    return Answer(**fields)


def _refusal() -> Answer:
    return Answer(
        question="What is the capital of Australia?",
        text="The documents don't say. I found nothing in the indexed documents that answers this question.",
        abstained=True,
        reason=Reason.NO_RELEVANT_PASSAGES,
        standalone_question="What is the capital of Australia?",
    )


def _unescape_text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


# ----- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("report.txt", "report.txt"),
        ("docs/sub/report.md", "report.md"),
        ("docs\\report.pdf", "report.pdf"),
        ("my report (final)!.txt", "my_report_final_.txt"),
        (".hidden.txt", "hidden.txt"),
        ("Übersicht 2024.md", "Übersicht_2024.md"),
        ("report..final.txt", "report.final.txt"),
        ("na\x00me\x07.txt", "name.txt"),
    ],
)
def test_sanitize_filename_keeps_a_safe_base_name(name, expected):
    assert sanitize_filename(name) == expected


@pytest.mark.parametrize(
    "name", ["/etc/passwd.txt", "\\\\server\\share\\a.txt", "C:\\Users\\me\\a.txt", "../secret.txt", "a/../../b.txt", "..", "", "  ", "???"]
)
def test_sanitize_filename_refuses_absolute_climbing_and_empty_names(name):
    with pytest.raises(UploadError):
        sanitize_filename(name)


def test_sanitize_filename_never_leaves_a_separator_or_dot_dot():
    for name in ["a/b/c.txt", "x\\y.txt", "...a.txt", "a....txt", "a/./b.txt"]:
        safe = sanitize_filename(name)
        assert "/" not in safe and "\\" not in safe and ".." not in safe and not safe.startswith(".")


def test_sanitize_filename_shortens_long_names_but_keeps_the_suffix():
    safe = sanitize_filename("a" * 500 + ".pdf")
    assert len(safe) <= MAX_NAME_CHARS and safe.endswith(".pdf")


# ----- upload checks --------------------------------------------------------------------------


def test_check_upload_accepts_supported_types_in_any_case():
    assert check_upload("Notes.TXT", 10, 20) == "Notes.TXT"
    assert check_upload("paper.pdf", 10, 20) == "paper.pdf"


def test_check_upload_refuses_a_wrong_type_naming_the_accepted_ones():
    with pytest.raises(UploadError) as err:
        check_upload("tool.exe", 10, 20)
    msg = str(err.value)
    assert "tool.exe" in msg and "unsupported file type .exe" in msg and ".pdf" in msg


def test_check_upload_refuses_a_file_over_the_size_limit():
    with pytest.raises(UploadError) as err:
        check_upload("big.txt", 21 * 1024 * 1024, 20)
    assert "over the 20 MB limit" in str(err.value)
    assert check_upload("ok.txt", 20 * 1024 * 1024, 20) == "ok.txt"


def test_check_upload_refuses_an_empty_file():
    with pytest.raises(UploadError, match="empty"):
        check_upload("empty.md", 0, 20)


# ----- escaping and markers -------------------------------------------------------------------


def test_esc_neutralises_markup_and_template_syntax_without_changing_the_text():
    raw = "<script>alert('x')</script> {{value}} ${value} `tick` & \"q\""
    out = esc(raw)
    assert "<" not in out and "{" not in out and "$" not in out and "`" not in out
    assert html.unescape(out) == raw


def test_link_markers_links_only_markers_with_a_citation():
    out = link_markers(esc("A [1]. B [2]."), 3, {1: _cit()})
    assert 'data-turn="3" data-n="1"' in out and 'class="cite-ref"' in out
    assert out.count("cite-ref") == 1 and "[2]" in out


# ----- answers and refusals -------------------------------------------------------------------


def test_answer_shows_clickable_markers_cited_sources_and_sentence_support():
    a = _answer(
        text="One third of pools are at risk [1]. They will all close tomorrow [1].",
        sentences=[
            Sentence("One third of pools are at risk.", (1,), 0.91, True),
            Sentence("They will all close tomorrow.", (1,), 0.12, False),
        ],
    )
    out = render_answer(0, Turn(a.question, status="done", answer=a))
    assert out.count('class="cite-ref"') == 2
    assert out.count('class="source-card"') == 1
    assert esc(SPAN) in out and "Leisure &lt;report&gt;" in out and "score 0.420" in out
    assert 'class="sent supported"' in out and "support 0.91" in out
    assert 'class="sent unsupported"' in out and "support 0.12" in out and "⚠" in out and "✓" in out


def test_refusal_says_the_documents_do_not_answer_and_shows_no_sources():
    a = _refusal()
    out = render_turn(0, Turn(a.question, status="done", answer=a))
    assert 'data-state="refused"' in out
    assert "The documents don&#x27;t say" in out
    assert "source-card" not in out and "cite-ref" not in out and "Sources" not in out
    assert "No passage in the indexed documents is relevant" in out


def test_refusal_hides_sources_even_if_the_answer_carries_some():
    a = Answer("q", "The documents don't say.", True, citations=[_cit()], reason=Reason.MODEL_DECLINED)
    out = render_answer(0, Turn("q", status="done", answer=a))
    assert "source-card" not in out and "cite-ref" not in out and esc(SPAN) not in out


def test_streaming_turn_shows_the_partial_text_escaped_and_not_yet_clickable():
    out = render_answer(0, Turn("q", status="running", partial="Pools <b>at risk</b> [1"))
    assert "Pools &lt;b&gt;at risk&lt;/b&gt; [1" in out and "cite-ref" not in out


def test_queued_and_error_turns_say_what_is_happening():
    assert "Waiting in queue" in render_answer(0, Turn("q"))
    out = render_answer(0, Turn("q", status="error", error="the question is <empty>"))
    assert "the question is &lt;empty&gt;" in out and "Traceback" not in out


def test_details_show_the_rewritten_question_of_a_follow_up():
    a = _answer(question="and round 2?", standalone_question="How much did round 2 of the Levelling Up Fund give?")
    out = render_answer(0, Turn("and round 2?", status="done", answer=a))
    assert "Searched for" in out and "How much did round 2 of the Levelling Up Fund give?" in out


def test_chat_history_pairs_only_answered_turns():
    turns = [
        Turn("q1", status="done", answer=_answer(question="q1", text="a1 [1].")),
        Turn("q2", status="error", error="boom"),
        Turn("q3", status="done", answer=_refusal()),
        Turn("q4", status="running"),
    ]
    assert chat_history(turns) == [("q1", "a1 [1]."), ("q3", _refusal().text)]


def test_empty_transcript_welcomes_and_a_full_one_keeps_the_order():
    assert "welcome" in render_transcript([])
    out = render_transcript([Turn("first?", status="done", answer=_answer()), Turn("second?")])
    assert out.index("first?") < out.index("second?") and 'id="turn-1"' in out


# ----- the source viewer ----------------------------------------------------------------------


def test_source_view_marks_exactly_the_cited_span_escaped_with_context():
    out = render_source_view(DOC, _cit())
    marked = re.search(r'<mark id="cited-span">(.*?)</mark>', out, re.S).group(1)
    assert _unescape_text(marked) == SPAN
    assert "<swimming" not in out and "{{soon}}" not in out and "${x}" not in out
    before, after = out.split("<mark", 1)[0], out.split("</mark>", 1)[1]
    assert "Intro text about councils." in _unescape_text(before)
    assert "More text after the cited span." in _unescape_text(after)


def test_source_view_of_a_long_document_shows_a_window_around_the_span():
    text = "x" * 50_000 + SPAN + "y" * 50_000
    out = render_source_view(text, _cit(text=text), whole_doc_chars=1000, context_chars=300)
    marked = re.search(r'<mark id="cited-span">(.*?)</mark>', out, re.S).group(1)
    assert _unescape_text(marked) == SPAN
    visible = _unescape_text(out)
    assert visible.count("x") >= 300 and visible.count("x") < 400 and "… " in visible and " …" in visible


def test_source_view_uses_the_offsets_not_a_text_search():
    text = SPAN + " middle " + SPAN  # the quote occurs twice; the citation points at the second
    start = text.rindex(SPAN)
    c = _cit(text=text, start=start, end=start + len(SPAN))
    out = render_source_view(text, c)
    before = _unescape_text(out.split("<mark", 1)[0])
    assert before.endswith(SPAN + " middle ")


def test_source_view_notes_a_changed_or_removed_document_and_still_shows_the_quote():
    changed = render_source_view("completely different text " * 10, _cit())
    assert "has changed" in changed and esc(SPAN) in changed
    gone = render_source_view(None, _cit())
    assert "no longer in the index" in gone and esc(SPAN) in gone


def test_source_view_shows_page_when_the_citation_has_one():
    assert "page 4" in render_source_view(DOC, _cit(page=4))
    assert "page" not in render_source_view(DOC, _cit(page=None)).split("sv-body")[0]


def test_documents_table_lists_uploads_first_and_escapes_titles(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    docs = [
        {"doc_id": "a", "source": "/corpus/article.txt", "title": "Article", "chunks": 7},
        {"doc_id": "b", "source": str(uploads / "mine.txt"), "title": "Mine <b>", "chunks": 1},
    ]
    out = render_documents(docs, uploads)
    assert out.index("Mine &lt;b&gt;") < out.index("Article") and "uploaded" in out and "2 documents" in out


# ----- handlers (no model: a fake assistant) --------------------------------------------------


class _FakeAssistant:
    """Streams its items as events: text becomes draft pieces, an Answer the final event."""

    def __init__(self, items=None, error=None):
        self.items, self.error, self.calls = items or [], error, []

    def stream(self, question, **kw):
        from rag import Checking, DraftPiece, Final

        self.calls.append((question, kw))
        if self.error:
            raise self.error
        for item in self.items:
            if isinstance(item, Answer):
                yield Checking()
                yield Final(item)
            else:
                yield DraftPiece(item)


class _FakePool:
    def __init__(self, assistant, tmp_path):
        self.assistant, self.uploads_dir = assistant, tmp_path / "uploads"

    def for_model(self, model):
        return self.assistant


    def document_text(self, doc_id):
        return DOC if doc_id == "d1" else None

    def documents(self):
        return []


@pytest.fixture()
def handlers_for(tmp_path):
    from ui.app import ChatHandlers

    def make(assistant):
        return ChatHandlers(Settings().replace(data_dir=tmp_path), _FakePool(assistant, tmp_path))

    return make


def test_a_question_streams_then_ends_with_the_cited_answer(handlers_for):
    fake = _FakeAssistant(["One third ", "of pools [1]."], None)
    fake.items.append(_answer())
    h = handlers_for(fake)
    _, turns, _, _, _ = h.start_turn("  What share of pools are at risk?  ", [])
    outputs = list(h.answer_turn(turns, 4, "qwen2.5-1.5b", False))
    html_out, final = outputs[-1]
    assert final[-1].status == "done" and 'class="cite-ref"' in html_out and 'class="source-card"' in html_out
    assert any("One third" in o[0] and "cite-ref" not in o[0] for o in outputs[:-1])
    assert fake.calls[0][1]["k"] == 4 and fake.calls[0][1]["strict"] is False and fake.calls[0][1]["history"] is None


def test_follow_up_passes_the_earlier_turns_as_history(handlers_for):
    fake = _FakeAssistant([_answer()])
    h = handlers_for(fake)
    first = [Turn("How much did round 1 give?", status="done", answer=_answer(text="£1.7bn [1]."))]
    _, turns, _, _, _ = h.start_turn("and how much did round 2 give?", first)
    list(h.answer_turn(turns, 3, "qwen2.5-0.5b", True))
    assert fake.calls[0][1]["history"] == [("How much did round 1 give?", "£1.7bn [1].")]
    assert fake.calls[0][1]["strict"] is True


def test_an_empty_question_is_refused_without_adding_a_turn(handlers_for):
    h = handlers_for(_FakeAssistant())
    with pytest.warns(UserWarning, match="empty"):
        _, turns, _, _, _ = h.start_turn("   ", [])
    assert turns == []


def test_library_errors_become_a_message_not_a_traceback(handlers_for):
    h = handlers_for(_FakeAssistant(error=RagError("the index is corrupt: rebuild it with rag index")))
    _, turns, _, _, _ = h.start_turn("Anything?", [])
    with pytest.warns(UserWarning):
        html_out, final = list(h.answer_turn(turns, 4, "qwen2.5-1.5b", False))[-1]
    assert final[-1].status == "error" and "The index is corrupt" in html_out


def test_unexpected_errors_are_logged_and_shown_as_a_generic_message(handlers_for, caplog):
    h = handlers_for(_FakeAssistant(error=ZeroDivisionError("boom")))
    _, turns, _, _, _ = h.start_turn("Anything?", [])
    html_out, final = list(h.answer_turn(turns, 4, "qwen2.5-1.5b", False))[-1]
    assert final[-1].status == "error" and "Something went wrong" in html_out
    assert "ZeroDivisionError" not in html_out and "boom" not in html_out
    assert "ZeroDivisionError" in caplog.text


def test_a_question_sent_while_the_previous_answer_is_checked_stays_in_the_box_with_a_busy_notice(handlers_for):
    from ui.app import BUSY_NOTE

    h = handlers_for(_FakeAssistant())
    box, turns, _, _, note = h.start_turn("First?", [])
    assert box == "" and note == ""
    for status in ("queued", "running", "checking"):
        busy = [turns[-1].but(status=status)]
        with pytest.warns(UserWarning, match="wait"):
            box, after, _, _, note = h.start_turn("Second?", busy)
        # The box is left as it is (the question stays typed), the turns are unchanged, the notice says why.
        assert [t.question for t in after] == ["First?"]
        assert note == BUSY_NOTE and "still answering" in note
        assert not isinstance(box, str)


def test_the_draft_is_shown_as_a_draft_while_it_is_checked(handlers_for):
    fake = _FakeAssistant(["One third ", "of pools [1]."], None)
    fake.items.append(_answer())
    h = handlers_for(fake)
    _, turns, _, _, _ = h.start_turn("What share of pools are at risk?", [])
    pages = [page for page, _ in h.answer_turn(turns, 4, "qwen2.5-1.5b", False)]
    checking = [page for page in pages if "checking every sentence" in page]
    assert len(checking) == 1, pages
    assert 'class="answer-text streaming draft"' in checking[0] and "One third" in checking[0]
    assert "checking every sentence" not in pages[-1] and "draft" not in pages[-1]


def test_sessions_do_not_share_turns(handlers_for):
    h = handlers_for(_FakeAssistant([_answer()]))
    _, alice, _, _, _ = h.start_turn("Alice asks?", [])
    _, bob, _, _, _ = h.start_turn("Bob asks?", [])
    alice_final = list(h.answer_turn(alice, 4, "qwen2.5-1.5b", False))[-1][1]
    assert [t.question for t in alice_final] == ["Alice asks?"] and [t.question for t in bob] == ["Bob asks?"]
    assert bob[-1].status == "queued"


class _FakeApiAssistant:
    def __init__(self, result):
        self.result, self.calls = result, []

    def ask(self, question, **kw):
        self.calls.append(question)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_the_ask_api_returns_the_answer_as_json(handlers_for):
    fake = _FakeApiAssistant(_answer())
    out = handlers_for(fake).api_ask("What share of pools are at risk?")
    assert fake.calls == ["What share of pools are at risk?"]
    assert out == _answer().to_dict() and out["citations"][0]["n"] == 1


@pytest.mark.parametrize(
    "error, shown",
    [(ValueError("the question is empty"), "The question is empty"), (ZeroDivisionError("boom"), "Something went wrong")],
)
def test_the_ask_api_turns_errors_into_a_message_not_a_traceback(handlers_for, error, shown):
    import gradio as gr

    with pytest.raises(gr.Error) as info:
        handlers_for(_FakeApiAssistant(error)).api_ask("   ")
    assert shown in info.value.message and "ZeroDivisionError" not in info.value.message


def test_opening_a_source_renders_the_marked_document(handlers_for):
    h = handlers_for(_FakeAssistant())
    turns = [Turn("q", status="done", answer=_answer())]
    view = h.source_html(turns, 0, 1)
    assert 'id="cited-span"' in view and esc(SPAN) in view
    assert h.source_html(turns, 0, 9) is None and h.source_html(turns, 5, 1) is None
    assert h.source_html(turns, "x", 1) is None


def test_parse_auth_needs_user_and_password():
    from ui.app import parse_auth

    assert parse_auth(None) is None
    assert parse_auth("alice:s3:cret") == ("alice", "s3:cret")
    for bad in ["alice", ":pw", "alice:", ""]:
        with pytest.raises(ValueError):
            parse_auth(bad)


# ----- uploads into a real index (packaged embedder) ------------------------------------------


@pytest.fixture()
def pool(article_settings, tmp_path):
    from ui.service import AssistantPool

    index = tmp_path / "index"
    shutil.copytree(article_settings.index_dir, index)
    return AssistantPool(article_settings.replace(index_dir=index, data_dir=tmp_path / "data"))


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / "incoming" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def test_upload_of_a_text_file_is_copied_and_indexed(pool, tmp_path):
    before = {d["doc_id"] for d in pool.documents()}
    src = _write(tmp_path, "river side.txt", "The Riverside Library opens at 9am on Saturdays and closes at 5pm.")
    steps = []
    outcome = pool.add_uploads([(src, "river side.txt")], progress=lambda f, d: steps.append(f))
    assert outcome.ok and outcome.added == ["river_side.txt"] and "indexed" in outcome.message(20)
    stored = pool.uploads_dir / "river_side.txt"
    assert stored.read_bytes() == src.read_bytes()
    new = [d for d in pool.documents() if d["doc_id"] not in before]
    assert len(new) == 1 and Path(new[0]["source"]) == stored.resolve()
    assert steps and steps[-1] == 1.0
    hits = pool.primary.search("When does the Riverside Library open on Saturdays?", 2)
    assert any("Riverside" in p.text for p in hits)


@pytest.mark.parametrize(
    "name,data,why",
    [
        ("tool.exe", b"MZ\x90\x00binary", "unsupported file type .exe"),
        ("notes.txt", b"\x00\x01\x02\x00binary\x00", "binary"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("blank.md", b"   \n\n  ", "empty"),
    ],
)
def test_rejected_upload_gets_a_message_and_leaves_the_index_as_it_was(pool, tmp_path, name, data, why):
    before = pool.documents()
    outcome = pool.add_uploads([(_write(tmp_path, name, data), name)])
    assert not outcome.ok and outcome.refused[0][0] == name and why in outcome.refused[0][1]
    msg = outcome.message(20)
    assert f"**{name}** was not added" in msg and "leave the index as it was" in msg
    assert pool.documents() == before
    assert not pool.uploads_dir.exists() or not any(pool.uploads_dir.iterdir())


def test_upload_over_the_size_limit_is_refused_before_copying(pool, tmp_path):
    small = type(pool)(pool.settings.replace(max_upload_mb=1))
    src = _write(tmp_path, "big.txt", "word " * 300_000)
    outcome = small.add_uploads([(src, "big.txt")])
    assert "over the 1 MB limit" in outcome.refused[0][1]
    assert not (small.uploads_dir / "big.txt").exists()


def test_a_broken_replacement_keeps_the_indexed_version_and_its_file(pool, tmp_path):
    good = "The Riverside Library opens at 9am on Saturdays and closes at 5pm."
    pool.add_uploads([(_write(tmp_path, "lib.txt", good), "lib.txt")])
    before = pool.documents()
    outcome = pool.add_uploads([(_write(tmp_path, "lib2/lib.txt", b"\x00\x00binary\x00"), "lib.txt")])
    assert not outcome.ok
    assert pool.documents() == before
    assert (pool.uploads_dir / "lib.txt").read_text() == good


def test_removing_an_uploaded_document_drops_it_and_its_file(pool, tmp_path):
    pool.add_uploads([(_write(tmp_path, "lib.txt", "The Riverside Library opens at 9am on Saturdays."), "lib.txt")])
    doc = next(d for d in pool.documents() if d["source"].endswith("lib.txt"))
    msg = pool.remove(doc["doc_id"])
    assert "Removed" in msg and doc["doc_id"] not in {d["doc_id"] for d in pool.documents()}
    assert not (pool.uploads_dir / "lib.txt").exists()
    with pytest.raises(RagError):
        pool.remove(doc["doc_id"])


def test_an_assistant_for_another_model_sees_documents_uploaded_later(pool, tmp_path):
    other = pool.for_model("qwen2.5-0.5b")
    n = len(other.documents())
    pool.add_uploads([(_write(tmp_path, "lib.txt", "The Riverside Library opens at 9am on Saturdays."), "lib.txt")])
    assert len(pool.for_model("qwen2.5-0.5b").documents()) == n + 1
