"""A ``rag index`` killed with SIGKILL at any moment leaves the previous index loadable and correct.

Each kill starts from a copy of a small index (the "old" state) and runs ``rag index`` over a folder
of 200 generated documents (the "new" state). After the kill, the index must load with its checksums
verified and hold exactly the old documents or exactly the old plus all the new ones, with one
correct vector per chunk: never a mix, never stale vectors.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexFormatError
from rag.indexer import Indexer, index_settings
from rag.store import MANIFEST, IndexStore

RAG = Path(sys.executable).with_name("rag")
TOPICS = ["parks", "libraries", "bus routes", "bin collections", "housing repairs", "leisure centres", "schools", "roads"]


def _write_corpus(folder: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        facts = " ".join(
            f"In ward {int(rng.integers(1, 99))} the council spent £{int(rng.integers(1, 900))}k on {topic} in {2000 + i % 25}."
            for _ in range(12)
        )
        (folder / f"report-{seed}-{i:03d}.txt").write_text(f"Report {seed}-{i} on {topic}\n\n{facts}\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory, embedder):
    """An old index of 3 documents, and folders of new documents to index on top of it."""
    root = tmp_path_factory.mktemp("crash")
    old_docs = _write_corpus(root / "old-docs", 3, seed=1)
    settings = Settings().replace(index_dir=root / "old-index")
    Indexer(settings, embedder).run([old_docs], progress=False)
    return {
        "root": root,
        "old_index": settings.index_dir,
        "old_ids": set(IndexStore.load(settings.index_dir).documents),
        "big": _write_corpus(root / "big", 200, seed=2),
        "small": _write_corpus(root / "small", 12, seed=3),
        "expected": index_settings(settings, embedder),
    }


def _new_ids(folder: Path) -> set[str]:
    from rag.loaders import iter_files, load_document

    return {load_document(f).doc_id for f in iter_files([folder])}


def _fresh_copy(crash_setup, name: str) -> Path:
    target = crash_setup["root"] / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(crash_setup["old_index"], target)
    return target


def check_index(index_dir: Path, crash_setup, new_ids: set[str], embedder, *, rebuild: bool = False) -> str:
    """Assert the index is whole and holds either the old or the complete new documents; returns which.

    The new state is old + new documents, or only the new ones for a ``--rebuild``.
    """
    store = IndexStore.load(index_dir, crash_setup["expected"])  # verifies sizes and sha256 of every file
    ids = set(store.documents)
    old = crash_setup["old_ids"]
    new = new_ids if rebuild else old | new_ids
    assert ids in (old, new), f"a mix: {len(ids & new_ids)} of {len(new_ids)} new, {len(ids & old)} of {len(old)} old"
    assert store.index.ntotal == len(store.chunks)
    assert {c.doc_id for c in store.chunks.values()} == ids
    for c in store.chunks.values():
        assert store.documents[c.doc_id].text[c.start : c.end] == c.text
    # The vectors are those of their chunks (none stale, none swapped).
    sample = sorted(store.chunks)[:: max(1, len(store.chunks) // 6)]
    fresh = embedder.encode([store.chunks[i].embed_text for i in sample])
    stored = np.vstack([store.index.reconstruct(int(i)) for i in sample])
    np.testing.assert_allclose(stored, fresh, atol=1e-4)
    return "old" if ids == old else "new"


def _kill_after(cmd: list[str], index_dir: Path, when: float | str) -> dict:
    """Start ``cmd``, SIGKILL it after ``when`` seconds or when ``index_dir`` gets a new file."""
    before = set(os.listdir(index_dir))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    new_file = None
    try:
        if when == "first-new-file":
            while proc.poll() is None and time.perf_counter() - t0 < 600:
                fresh = set(os.listdir(index_dir)) - before
                if fresh:
                    new_file = sorted(fresh)[0]
                    break
                time.sleep(0.001)
        else:
            deadline = t0 + float(when)
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.01)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        proc.stderr.close()
    return {"killed_at_s": round(time.perf_counter() - t0, 3), "finished_first": finished, "new_file": new_file}


# Killed early (1.5 s), later (6.0 s) and as the first new file appears (while saving); the exact steps of
# saving are killed one by one in the next test.
@pytest.mark.parametrize("when", [1.5, 6.0, "first-new-file"])
def test_sigkill_during_rag_index_leaves_the_old_or_the_complete_new_index(crash_setup, embedder, when):
    index_dir = _fresh_copy(crash_setup, f"kill-{when}")
    cmd = [str(RAG), "index", str(crash_setup["big"]), "--index", str(index_dir), "--quiet"]
    info = _kill_after(cmd, index_dir, when)
    state = check_index(index_dir, crash_setup, _new_ids(crash_setup["big"]), embedder)
    print(f"kill at {when}: {info} -> {state} index")
    if when != "first-new-file":
        return
    # Killed while saving: the next run completes the update from whatever the kill left behind.
    assert info["new_file"] is not None and not info["finished_first"], info
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert check_index(index_dir, crash_setup, _new_ids(crash_setup["big"]), embedder) == "new"
    leftovers = [p.name for p in index_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# A SIGKILL at exact points of IndexStore.save, placed by patching the functions it calls.
KILL_AT = {
    # vectors written, chunk table not yet
    "before-chunk-table": "rag.store._write_jsonl = kill_now",
    # every data file written and checksummed, the new manifest written to its temp file, not renamed
    "before-manifest-rename": textwrap.dedent(
        """
        real_replace = os.replace
        def replace(src, dst, *a, **k):
            if str(dst).endswith("manifest.json"):
                kill_now()
            return real_replace(src, dst, *a, **k)
        os.replace = replace
        """
    ),
    # manifest switched, old generation's files not yet removed
    "before-stale-cleanup": "rag.store.IndexStore._remove_stale_files = lambda self, keep: kill_now()",
}
KILLER = """
import os, signal, sys
import rag.store, rag.cli
def kill_now(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
{patch}
sys.exit(rag.cli.main(["index", {folder!r}, "--index", {index!r}, "--quiet"] + {extra!r}))
"""


@pytest.mark.parametrize(
    "point,rebuild,expected_state",
    [
        ("before-chunk-table", False, "old"),
        ("before-manifest-rename", False, "old"),
        ("before-stale-cleanup", False, "new"),
        ("before-chunk-table", True, "old"),
        ("before-manifest-rename", True, "old"),
    ],
    ids=["update-before-chunk-table", "update-before-manifest-rename", "update-before-stale-cleanup",
         "rebuild-before-chunk-table", "rebuild-before-manifest-rename"],
)
def test_sigkill_at_each_step_of_saving_leaves_a_consistent_index(crash_setup, embedder, point, rebuild, expected_state):
    index_dir = _fresh_copy(crash_setup, f"point-{point}-{rebuild}")
    manifest_before = (index_dir / MANIFEST).read_bytes()
    extra = ["--rebuild"] if rebuild else []
    code = KILLER.format(patch=KILL_AT[point], folder=str(crash_setup["small"]), index=str(index_dir), extra=extra)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])

    new_ids = _new_ids(crash_setup["small"])
    assert check_index(index_dir, crash_setup, new_ids, embedder, rebuild=rebuild) == expected_state
    if expected_state == "old":
        assert (index_dir / MANIFEST).read_bytes() == manifest_before

    # A normal run afterwards finishes the job and tidies the leftovers of the killed one.
    proc = subprocess.run(
        [str(RAG), "index", str(crash_setup["small"]), "--index", str(index_dir), "--quiet", *extra],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    assert check_index(index_dir, crash_setup, new_ids, embedder, rebuild=rebuild) == "new"
    if expected_state == "old":
        files = json.loads((index_dir / MANIFEST).read_text())["files"]
        assert {p.name for p in index_dir.iterdir()} == {MANIFEST} | {f["name"] for f in files.values()}


# ----- a damaged or foreign index: clear CLI errors, no traceback ------------------------------------


def _damage(index_dir: Path, how: str) -> None:
    mpath = index_dir / MANIFEST
    m = json.loads(mpath.read_text())
    if how == "format-version":
        m["format_version"] = 999
    elif how == "other-embedder":
        m["settings"]["embedder"] = "some-other-embedder"
        m["settings"]["dim"] = 768
    elif how == "other-chunking":
        m["settings"]["chunk_tokens"] = 99
    elif how == "garbage-manifest":
        mpath.write_bytes(b"\x00{not json")
        return
    elif how == "missing-vectors":
        (index_dir / m["files"]["vectors"]["name"]).unlink()
        return
    elif how == "missing-sentences":
        (index_dir / m["files"]["sentences"]["name"]).unlink()
        return
    mpath.write_text(json.dumps(m))


@pytest.mark.parametrize(
    "how", ["format-version", "other-embedder", "other-chunking", "garbage-manifest", "missing-vectors", "missing-sentences"]
)
def test_cli_explains_how_to_rebuild_a_damaged_or_foreign_index_without_a_traceback(crash_setup, how):
    index_dir = _fresh_copy(crash_setup, f"damaged-{how}")
    _damage(index_dir, how)
    files_before = {p.name: p.read_bytes() for p in index_dir.iterdir()}

    for args in (["docs"], ["index", str(crash_setup["small"])]):
        proc = subprocess.run([str(RAG), *args, "--index", str(index_dir)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]  # (model-loading progress bars may come first)
        assert last.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
        assert "--rebuild" in last, last
        # Refusing to use the index never rewrites it.
        assert {p.name: p.read_bytes() for p in index_dir.iterdir()} == files_before

    proc = subprocess.run(
        [str(RAG), "index", str(crash_setup["small"]), "--index", str(index_dir), "--rebuild", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(IndexStore.load(index_dir, crash_setup["expected"]).documents) == _new_ids(crash_setup["small"])


@pytest.mark.parametrize("how", ["format-version", "other-chunking", "missing-sentences"])
def test_index_with_rebuild_if_stale_rebuilds_an_index_it_cannot_use_and_says_why(crash_setup, how):
    index_dir = _fresh_copy(crash_setup, f"stale-{how}")
    _damage(index_dir, how)
    proc = subprocess.run(
        [str(RAG), "index", str(crash_setup["small"]), "--index", str(index_dir), "--rebuild-if-stale", "--quiet"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "rebuilding: " in proc.stderr and "--rebuild" not in proc.stderr, proc.stderr
    store = IndexStore.load(index_dir, crash_setup["expected"])
    assert set(store.documents) == _new_ids(crash_setup["small"]) and store.sentence_index.ntotal > 0


def test_an_index_with_another_embedder_is_refused_in_process_with_the_rebuild_command(crash_setup):
    index_dir = _fresh_copy(crash_setup, "foreign")
    _damage(index_dir, "other-embedder")
    with pytest.raises(IndexFormatError, match=r"embedder: index has 'some-other-embedder'.*--rebuild"):
        IndexStore.load(index_dir, crash_setup["expected"])
