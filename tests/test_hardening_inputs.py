"""Hostile inputs: odd questions and broken files never crash the assistant or damage an index.

Questions: empty, whitespace, 100,000 characters, control characters, invalid Unicode and other
languages. Files: empty, binary, non-UTF-8, corrupt / encrypted / text-less PDFs, oversized,
duplicates and paths with ``..`` in them, through the library and through ``rag index``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from conftest import ARTICLE, write_pdf
from rag.config import Settings
from rag.errors import LoadError
from rag.indexer import Indexer
from rag.loaders import decode_bytes, load_document
from rag.pipeline import Assistant, clean_question
from rag.policy import ABSTAIN_TEXT, OFF_TOPIC_TEXT
from rag.store import MANIFEST, IndexStore

RAG = Path(sys.executable).with_name("rag")

PARKS = "Parks policy\n\nThe council maintains 40 parks and plans two more by 2027. Park gates close at dusk."
BINS = "# Waste collection\n\nGeneral waste bins are collected every two weeks; recycling is collected weekly."
LIBRARIES = "Library strategy\n\nThe county runs 12 libraries. Opening hours were cut in 2022 to save money."


def run_rag(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(RAG), *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def snapshot(index_dir: Path) -> dict:
    """Everything an index holds, loaded and checksum-verified: documents, chunks and vectors by id."""
    store = IndexStore.load(index_dir)
    vecs, ids = store.vectors()
    return {
        "documents": {d.doc_id: (d.source, d.text) for d in store.documents.values()},
        "chunks": dict(store.chunks),
        "vectors": {int(i): v for i, v in zip(ids, vecs)},
        "ntotal": store.index.ntotal,
    }


def assert_snapshot_kept(before: dict, after: dict) -> None:
    """Every document, chunk and vector of ``before`` is still in ``after``, unchanged."""
    for doc_id, value in before["documents"].items():
        assert after["documents"].get(doc_id) == value
    for cid, chunk in before["chunks"].items():
        assert after["chunks"].get(cid) == chunk
        np.testing.assert_array_equal(after["vectors"][cid], before["vectors"][cid])
    assert after["ntotal"] == len(after["chunks"])


def encrypted_pdf(path: Path, text: str = "Secret budget plans for the parks.") -> Path:
    from pypdf import PdfWriter

    plain = write_pdf(path.with_name(path.stem + "-plain.tmp"), [text])
    writer = PdfWriter(clone_from=str(plain))
    writer.encrypt("correct horse battery staple")
    with open(path, "wb") as f:
        writer.write(f)
    plain.unlink()
    return path


def textless_pdf(path: Path) -> Path:
    """A PDF whose only page has no text layer (what a scan without OCR looks like)."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    with open(path, "wb") as f:
        writer.write(f)
    return path


@pytest.fixture()
def good_docs(tmp_path) -> Path:
    d = tmp_path / "good"
    d.mkdir()
    (d / "parks.txt").write_text(PARKS, encoding="utf-8")
    (d / "bins.md").write_text(BINS, encoding="utf-8")
    return d


# ----- questions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   ", "\n\t  \r\n", "\x00\x07\x1b", "\u200b\u200e\ufeff"])
def test_empty_or_invisible_question_raises_a_clear_value_error_without_loading_a_model(article_settings, question):
    from rag.registry import loaded_backends

    before = loaded_backends()
    with pytest.raises(ValueError, match="empty"):
        Assistant(article_settings).ask(question)
    assert loaded_backends() == before


@pytest.mark.parametrize("question", ["   ", "\t\n"])
def test_cli_prints_a_friendly_error_and_exits_2_for_a_blank_question(article_settings, question):
    proc = run_rag("ask", question, "--index", str(article_settings.index_dir))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "empty" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_cli_treats_undecodable_argument_bytes_as_an_empty_question(article_settings):
    # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape).
    proc = subprocess.run(
        [os.fsencode(RAG), b"ask", b"\xff\xfe\x80 \x01", b"--index", os.fsencode(article_settings.index_dir)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(b"error: ") and b"empty" in proc.stderr and b"Traceback" not in proc.stderr


def test_a_100000_character_question_is_refused_with_a_message(article_settings):
    from rag.registry import loaded_backends

    before = loaded_backends()
    question = ("Why are leisure centres at risk of closure? " * 2300)[:99_999] + "?"
    with pytest.raises(ValueError, match=r"characters long; the limit is 2,000"):
        Assistant(article_settings).ask(question)
    assert loaded_backends() == before


def test_cli_refuses_a_100000_character_question_without_a_traceback(article_settings):
    proc = run_rag("ask", "x" * 100_000, "--index", str(article_settings.index_dir))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the question is 100,000 characters long")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("size", [100_000, 10_000_000])
def test_refusing_a_huge_question_uses_bounded_memory(size):
    question = "pools " * (size // 6)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="limit"):
            clean_question(question, 2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"clean_question({len(question):,} chars): peak {peak / 1e6:.2f} MB")
    assert peak < 2_000_000, f"refusing a {len(question):,}-character question allocated {peak / 1e6:.1f} MB"


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=300))
def test_clean_question_returns_printable_utf8_text_or_raises_value_error(raw):
    try:
        q = clean_question(raw, 200)
    except ValueError as exc:
        assert "empty" in str(exc) or "limit" in str(exc)
        return
    q.encode("utf-8")  # no lone surrogates left
    assert q == q.strip() and 0 < len(q) <= 200
    assert "  " not in q and "\n" not in q and "\x00" not in q


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=120))
def test_retrieval_never_crashes_on_any_cleaned_question(assistant, raw):
    try:
        q = clean_question(raw, 2000)
    except ValueError:
        return
    passages = assistant.search(q, k=3)
    assert len(passages) <= 3
    for p in passages:
        assert assistant.document_text(p.chunk.doc_id)[p.chunk.start : p.chunk.end] == p.text


QUESTIONS_WITH_NOISE = [
    "What share of swimming pools\x00 are at risk\x07 of closure?\ud800",
    "What share of \u200bswimming pools are at risk of closure?\udfff\x1b[31m",
]

OTHER_LANGUAGES = [
    "Quelle part des piscines risque de fermer, et pourquoi ?",
    "有多少游泳池面临关闭的风险？",
    "ما هي نسبة حمامات السباحة المعرضة لخطر الإغلاق؟",
    "Почему центры досуга находятся под угрозой закрытия?",
    "¿Por qué están en riesgo los centros de ocio? 🏊‍♀️",
]


def _assert_well_formed(answer, assistant) -> None:
    import re

    if answer.abstained:
        assert answer.text in (ABSTAIN_TEXT, OFF_TOPIC_TEXT) and answer.citations == []
        return
    numbers = {c.n for c in answer.citations}
    assert numbers and set(int(n) for n in re.findall(r"\[(\d+)\]", answer.text)) <= numbers
    for c in answer.citations:
        assert assistant.document_text(c.doc_id)[c.start : c.end] == c.quote


@pytest.mark.models
@pytest.mark.parametrize("question", QUESTIONS_WITH_NOISE)
def test_control_characters_and_lone_surrogates_do_not_stop_a_correct_answer(assistant, question):
    answer = assistant.ask(question)
    assert not answer.abstained, answer
    assert "third" in answer.text.lower()
    _assert_well_formed(answer, assistant)
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")  # serialisable as valid UTF-8


@pytest.mark.models
@pytest.mark.parametrize("question", OTHER_LANGUAGES)
def test_questions_in_other_languages_are_answered_or_declined_never_crash(assistant, question):
    answer = assistant.ask(question)
    print(f"{question!r} -> abstained={answer.abstained} reason={answer.reason} text={answer.text!r}")
    _assert_well_formed(answer, assistant)
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")


# ----- files: the loader --------------------------------------------------------------------------


FRENCH = (
    "Politique municipale des piscines\n\n"
    "Le conseil a décidé de fermer deux piscines l'été prochain. Les coûts de l'énergie ont augmenté "
    "de façon spectaculaire, et un tiers des piscines sont menacées de fermeture."
)
SPANISH = "El ayuntamiento cerrará dos piscinas. Los costes de energía han aumentado; un tercio está en riesgo."
ENCODED_TEXTS = [
    ("french-cp1252.txt", FRENCH, "cp1252"),
    ("french-latin1.txt", "Le café coûte 3 euros à Montréal, déjà réglé. Ça marche très bien, l'été.", "latin-1"),
    ("spanish-cp1252.md", SPANISH, "cp1252"),
    ("english-cp1252.txt", "The council’s budget is £5m — a “significant” cut; cafés stay open.", "cp1252"),
    ("russian-cp1251.txt", "Городской совет закроет два бассейна. Расходы на энергию выросли.", "cp1251"),
    ("japanese-shift-jis.txt", "図書館は月曜日に閉館します。公園は毎日開いています。", "shift_jis"),
    ("german-utf16.txt", "Die Stadt schließt zwei Schwimmbäder. Öffnungszeiten ändern sich.", "utf-16"),
]


@pytest.mark.parametrize("name,text,encoding", ENCODED_TEXTS)
def test_non_utf8_text_files_are_decoded_to_the_original_text(tmp_path, name, text, encoding):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    assert load_document(path).text == text


def _truncated_pdf(folder: Path) -> Path:
    whole = write_pdf(folder / "whole.pdf", ["Parks are open until dusk."]).read_bytes()
    (folder / "cut.pdf").write_bytes(whole[:150])
    return folder / "cut.pdf"


def _zeros_pdf(folder: Path) -> Path:
    (folder / "zeros.pdf").write_bytes(b"\0" * 4096)
    return folder / "zeros.pdf"


def _binary_txt(folder: Path) -> Path:
    (folder / "photo.txt").write_bytes(bytes(range(256)) * 64)
    return folder / "photo.txt"


BROKEN_FILES = {
    "encrypted-pdf": (lambda folder: encrypted_pdf(folder / "locked.pdf"), "password-protected"),
    "textless-pdf": (lambda folder: textless_pdf(folder / "scan.pdf"), "no text layer"),
    "truncated-pdf": (_truncated_pdf, "PDF"),
    "zero-bytes-pdf": (_zeros_pdf, "PDF"),
    "binary-as-txt": (_binary_txt, "binary"),
}


@pytest.mark.parametrize("kind", list(BROKEN_FILES))
def test_broken_files_raise_a_load_error_that_names_the_file(tmp_path, kind):
    make, message = BROKEN_FILES[kind]
    path = make(tmp_path)
    with pytest.raises(LoadError, match=message) as info:
        load_document(path)
    assert str(info.value).startswith(path.name + ":")


def test_a_pdf_with_one_textless_page_keeps_the_other_pages_and_page_numbers(tmp_path):
    from pypdf import PdfReader, PdfWriter

    text_pdf = write_pdf(tmp_path / "two.pdf", ["Page one about parks.", "Page three about libraries."])
    reader = PdfReader(str(text_pdf))
    writer = PdfWriter()
    writer.add_page(reader.pages[0])
    writer.add_blank_page(612, 792)
    writer.add_page(reader.pages[1])
    with open(tmp_path / "mixed.pdf", "wb") as f:
        writer.write(f)
    doc = load_document(tmp_path / "mixed.pdf")
    assert "parks" in doc.text and "libraries" in doc.text
    assert doc.page_at(doc.text.index("libraries")) == 3


def test_decode_bytes_never_raises_anything_but_load_error_on_random_bytes():
    rng = np.random.default_rng(7)
    for size in (1, 7, 100, 5000):
        for _ in range(20):
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            try:
                text = decode_bytes(data, "random.txt")
            except LoadError:
                continue
            assert isinstance(text, str)


# ----- files: indexing ----------------------------------------------------------------------------


def _bad_files(folder: Path) -> dict[str, str]:
    """Write one file of each broken kind; returns name -> a word the skip reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_bytes(b" \n\n\t \n")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 16)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n" + b"\x00garbage" * 50)
    encrypted_pdf(folder / "locked.pdf")
    textless_pdf(folder / "scanned.pdf")
    (folder / "huge.txt").write_text("The parks budget is large. " * 50_000, encoding="utf-8")  # ~1.35 MB
    (folder / "parks-copy.txt").write_text(PARKS, encoding="utf-8")  # same text as good/parks.txt
    return {
        "empty.txt": "empty",
        "blank.md": "empty",
        "image.txt": "binary",
        "broken.pdf": "PDF",
        "locked.pdf": "password",
        "scanned.pdf": "no text layer",
        "huge.txt": "limit",
        "parks-copy.txt": "duplicate",
    }


def test_indexer_skips_each_broken_file_with_a_reason_and_indexes_the_rest(tmp_path, good_docs, embedder):
    settings = Settings().replace(index_dir=tmp_path / "idx", max_upload_mb=1)
    indexer = Indexer(settings, embedder)
    indexer.run([good_docs], progress=False)
    before = snapshot(settings.index_dir)

    incoming = tmp_path / "incoming"
    expected = _bad_files(incoming)
    (incoming / "libraries.txt").write_text(LIBRARIES, encoding="utf-8")
    (incoming / "french.txt").write_bytes(FRENCH.encode("cp1252"))
    _, report = indexer.run([good_docs, incoming], progress=False)

    reasons = {Path(p).name: why for p, why in report.skipped}
    assert set(reasons) == set(expected), report.summary()
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    assert sorted(Path(p).name for p in report.added) == ["french.txt", "libraries.txt"]
    assert not report.ok

    after = snapshot(settings.index_dir)
    assert_snapshot_kept(before, after)
    texts = {Path(src).name: text for src, text in after["documents"].values()}
    assert texts["french.txt"] == FRENCH
    assert set(texts) == {"parks.txt", "bins.md", "libraries.txt", "french.txt"}


@pytest.mark.models  # a `rag index` subprocess loads the embedder
def test_cli_index_reports_every_skipped_file_exits_nonzero_and_keeps_the_old_index(tmp_path, good_docs):
    index_dir = tmp_path / "idx"
    proc = run_rag("index", str(good_docs), "--index", str(index_dir), "--quiet")
    assert proc.returncode == 0, proc.stderr
    before = snapshot(index_dir)

    incoming = tmp_path / "incoming"
    expected = _bad_files(incoming)
    (incoming / "libraries.txt").write_text(LIBRARIES, encoding="utf-8")
    (incoming / "notes.docx").write_bytes(b"PK\x03\x04 not really a document")
    missing = tmp_path / "no-such-folder"
    proc = run_rag(
        "index", str(incoming), str(incoming / "notes.docx"), str(missing), "--index", str(index_dir), "--quiet",
        env={"RAG_MAX_UPLOAD_MB": "1"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    skipped = [ln for ln in proc.stdout.splitlines() if ln.startswith("skipped")]
    for name, word in expected.items():
        line = next((ln for ln in skipped if f"{name}:" in ln), None)
        assert line is not None and word in line, (name, skipped)
    assert any("notes.docx" in ln and "unsupported file type" in ln for ln in skipped)
    assert any(str(missing) in ln and "no such file" in ln for ln in skipped)
    assert len(skipped) == len(expected) + 2, "\n".join(skipped)
    assert any(ln.startswith("added") and ln.endswith("libraries.txt") for ln in proc.stdout.splitlines())

    after = snapshot(index_dir)
    assert_snapshot_kept(before, after)
    assert {Path(s).name for s, _ in after["documents"].values()} == {"parks.txt", "bins.md", "libraries.txt"}


@pytest.mark.models  # a `rag index` subprocess loads the embedder
def test_cli_index_of_only_broken_files_leaves_the_index_files_byte_identical(tmp_path, good_docs):
    index_dir = tmp_path / "idx"
    assert run_rag("index", str(good_docs), "--index", str(index_dir), "--quiet").returncode == 0
    files_before = {p.name: p.read_bytes() for p in index_dir.iterdir()}

    incoming = tmp_path / "incoming"
    expected = _bad_files(incoming)
    proc = run_rag("index", str(incoming), "--index", str(index_dir), "--quiet", env={"RAG_MAX_UPLOAD_MB": "1"})
    assert proc.returncode == 1
    assert sum(ln.startswith("skipped") for ln in proc.stdout.splitlines()) == len(expected), proc.stdout
    assert {p.name: p.read_bytes() for p in index_dir.iterdir()} == files_before
    IndexStore.load(index_dir)


@pytest.mark.models  # a `rag index` subprocess loads the embedder
def test_indexing_a_path_with_dot_dot_stores_the_resolved_source_once(tmp_path, good_docs, monkeypatch):
    index_dir = tmp_path / "idx"
    monkeypatch.chdir(tmp_path)
    tricky = "good/../good/parks.txt"
    absolute = str(good_docs / "parks.txt")
    proc = run_rag("index", tricky, absolute, "./good//parks.txt", "--index", str(index_dir), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = IndexStore.load(index_dir)
    sources = [d.source for d in store.documents.values()]
    assert sources == [str((good_docs / "parks.txt").resolve())]
    assert ".." not in sources[0] and Path(sources[0]).is_absolute()

    # The same file named another way later is unchanged, not a duplicate or a second document.
    proc = run_rag("index", f"{good_docs}/../good/./parks.txt", "--index", str(index_dir), "--quiet")
    assert proc.returncode == 0 and "1 unchanged" in proc.stdout, proc.stdout


def test_odd_file_names_are_indexed_and_reported_verbatim(tmp_path, embedder):
    folder = tmp_path / "odd names"
    folder.mkdir()
    names = ["café – notes.txt", "-rf.txt", "semi;colon $(echo x).md", "日本語.txt"]
    for i, name in enumerate(names):
        (folder / name).write_text(f"Note {i}: the council maintains {10 + i} parks.", encoding="utf-8")
    settings = Settings().replace(index_dir=tmp_path / "idx")
    _, report = Indexer(settings, embedder).run([folder], progress=False)
    assert sorted(Path(p).name for p in report.added) == sorted(names) and report.ok
    loaded = IndexStore.load(settings.index_dir)
    assert sorted(Path(d.source).name for d in loaded.documents.values()) == sorted(names)


def test_reindexing_after_a_file_breaks_keeps_its_last_good_version(tmp_path, good_docs, embedder):
    settings = Settings().replace(index_dir=tmp_path / "idx")
    indexer = Indexer(settings, embedder)
    indexer.run([good_docs], progress=False)
    before = snapshot(settings.index_dir)
    (good_docs / "parks.txt").write_bytes(b"\x00\x01binary now\x00" * 40)
    _, report = indexer.run([good_docs], progress=False)
    assert [Path(p).name for p, _ in report.skipped] == ["parks.txt"] and not report.removed
    assert_snapshot_kept(before, snapshot(settings.index_dir))


def test_duplicate_documents_under_different_names_are_indexed_once(tmp_path, good_docs, embedder):
    shutil.copy(good_docs / "parks.txt", good_docs / "parks (1).txt")
    shutil.copy(good_docs / "parks.txt", good_docs / "PARKS-final.txt")
    settings = Settings().replace(index_dir=tmp_path / "idx")
    _, report = Indexer(settings, embedder).run([good_docs], progress=False)
    loaded = IndexStore.load(settings.index_dir)
    parks_docs = [d for d in loaded.documents.values() if "40 parks" in d.text]
    assert len(parks_docs) == 1
    assert sorted(why.split(" of ")[0] for _, why in report.skipped) == ["duplicate", "duplicate"]
    manifest = json.loads((settings.index_dir / MANIFEST).read_text())
    assert manifest["n_chunks"] == len(loaded.chunks) == loaded.index.ntotal


def test_the_article_is_never_a_duplicate_of_itself_when_indexed_twice(tmp_path, embedder):
    settings = Settings().replace(index_dir=tmp_path / "idx")
    indexer = Indexer(settings, embedder)
    indexer.run([ARTICLE], progress=False)
    _, report = indexer.run([ARTICLE, ARTICLE.parent / ".." / ARTICLE.parent.name / ARTICLE.name], progress=False)
    assert report.ok and len(report.unchanged) == 1 and not report.changed


def test_many_multi_chunk_documents_indexed_in_one_run_keep_one_vector_per_chunk(tmp_path, embedder):
    folder = tmp_path / "reports"
    folder.mkdir()
    for i in range(6):
        body = " ".join(f"Ward {w} of district {i} spent £{w * 7 + i}k on parks in {2000 + w}." for w in range(40))
        (folder / f"report-{i}.txt").write_text(f"District {i} report\n\n{body}\n", encoding="utf-8")
    settings = Settings().replace(index_dir=tmp_path / "idx")
    store, report = Indexer(settings, embedder).run([folder], progress=False)
    assert len(report.added) == 6 and report.chunks_added > 6 * 2  # several chunks per document
    loaded = IndexStore.load(settings.index_dir)
    assert len(loaded.chunks) == report.chunks_added == loaded.index.ntotal
    vecs, ids = loaded.vectors()
    fresh = embedder.encode([loaded.chunks[int(i)].embed_text for i in ids])
    np.testing.assert_allclose(vecs, fresh, atol=1e-4)
