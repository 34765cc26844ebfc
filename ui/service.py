"""The thin layer between the page and the library: assistants per model, uploads, removals.

No gradio here. Every session shares the same ``Assistant`` objects (and, through
``rag.registry``, the same loaded models); what is per session lives in the page's
``gr.State``.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag import Assistant, RagError, Settings, get_assistant

from .render import UploadError, check_upload

log = logging.getLogger(__name__)

#: The models offered on the page: (label, model name).
MODEL_CHOICES: list[tuple[str, str]] = [
    ("Qwen2.5 1.5B (default, better answers)", "qwen2.5-1.5b"),
    ("Qwen2.5 0.5B (faster)", "qwen2.5-0.5b"),
]


@dataclass
class UploadOutcome:
    """What happened to the uploaded files; ``message`` says it in Markdown, ``ok`` if nothing was refused."""

    added: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    def message(self, max_mb: int) -> str:
        lines = []
        for name in self.added:
            lines.append(f"✓ **{name}** is indexed: you can ask about it now.")
        for name in self.unchanged:
            lines.append(f"✓ **{name}** was already indexed with the same content.")
        for name, why in self.refused:
            lines.append(f"✗ **{name}** was not added: {why}.")
        if self.refused:
            lines.append(
                f"\nAccepted: .txt, .md, .html and .pdf files with text, up to {max_mb} MB each. "
                "Refused files leave the index as it was."
            )
        return "\n\n".join(lines) if lines else "No file was uploaded."


class AssistantPool:
    """The assistants the page uses: one per model, all on ``settings.index_dir``.

    Indexing always goes through the assistant of ``settings.model`` (the primary);
    an assistant for another model holds its own copy of the index in memory, so it
    is replaced after the page changes the index.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._version = 0
        self._others: dict[str, tuple[Assistant, int]] = {}

    @property
    def uploads_dir(self) -> Path:
        return Path(self.settings.data_dir) / "uploads"

    @property
    def primary(self) -> Assistant:
        return get_assistant(settings=self.settings)

    def for_model(self, model: str | None) -> Assistant:
        """The assistant answering with ``model`` (default: the settings' model)."""
        if not model or model == self.settings.model:
            return self.primary
        with self._lock:
            entry = self._others.get(model)
            if entry is None or entry[1] != self._version:
                # A fresh Assistant re-reads the index; models stay shared via rag.registry.
                entry = (Assistant(self.settings.replace(model=model)), self._version)
                self._others[model] = entry
            return entry[0]

    def _index_changed(self) -> None:
        with self._lock:
            self._version += 1

    # ----- documents ------------------------------------------------------------------------

    def documents(self) -> list[dict]:
        return self.primary.documents()

    def document_text(self, doc_id: str) -> str | None:
        try:
            return self.primary.document_text(doc_id)
        except KeyError:
            return None

    def add_uploads(
        self, files: Sequence[tuple[str | Path, str]], progress: Callable[[float, str], None] | None = None
    ) -> UploadOutcome:
        """Copy uploads (``(temp path, original name)``) into ``data_dir/uploads`` and index them.

        A refused file (bad name, type or size; unreadable; a duplicate) is not kept
        and does not change the index; a file it would have replaced is restored.
        """
        outcome = UploadOutcome()
        step = progress or (lambda frac, desc: None)
        max_mb = self.settings.max_upload_mb
        staged: dict[str, tuple[Path, str, bytes | None]] = {}  # resolved dest -> (dest, shown name, backup)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        step(0.05, "Checking files")
        for tmp, original in files:
            tmp = Path(tmp)
            shown = Path(str(original).replace("\\", "/")).name or str(original)
            try:
                size = tmp.stat().st_size
            except OSError:
                outcome.refused.append((shown, "the upload could not be read"))
                continue
            try:
                safe = check_upload(str(original), size, max_mb)
            except UploadError as exc:
                outcome.refused.append((shown, str(exc).split(": ", 1)[-1]))
                continue
            dest = self.uploads_dir / safe
            key = str(dest.resolve())
            if key in staged:
                outcome.refused.append((shown, f"another file in this upload is also named {safe}"))
                continue
            backup = dest.read_bytes() if dest.exists() else None
            shutil.copyfile(tmp, dest)
            staged[key] = (dest, safe, backup)
        if not staged:
            step(1.0, "Done")
            return outcome

        step(0.2, f"Indexing {len(staged)} file{'s' if len(staged) > 1 else ''}")
        try:
            report = self.primary.index([d for d, _, _ in staged.values()], progress=True)
        except (RagError, OSError) as exc:
            for dest, safe, backup in staged.values():
                _restore(dest, backup)
                outcome.refused.append((safe, str(exc)))
            return outcome
        finally:
            self._index_changed()
        skipped = {}
        for file, why in report.skipped:
            skipped[str(Path(file).resolve())] = why
        changed = {str(Path(s).resolve()) for s in report.added + report.updated}
        for key, (dest, safe, backup) in staged.items():
            if key in skipped:
                _restore(dest, backup)
                outcome.refused.append((safe, _reason(skipped[key])))
            elif key in changed:
                outcome.added.append(safe)
            else:
                outcome.unchanged.append(safe)
        step(1.0, "Done")
        log.info("upload: %s", report.summary().splitlines()[-1])
        return outcome

    def remove(self, doc_id: str) -> str:
        """Remove a document from the index (and its uploaded file); returns a message."""
        docs = {d["doc_id"]: d for d in self.documents()}
        if doc_id not in docs:
            raise RagError("that document is no longer in the index")
        try:
            removed = self.primary.delete_from_index([doc_id])
        finally:
            self._index_changed()
        for source in removed:
            p = Path(source)
            if p.resolve().parent == self.uploads_dir.resolve() and p.exists():
                p.unlink()
        return f"Removed **{docs[doc_id]['title']}** ({Path(docs[doc_id]['source']).name}) from the index."

    def reindex_uploads(self) -> None:
        """Index the files already in ``data_dir/uploads`` (after the default index was refreshed)."""
        if not self.uploads_dir.is_dir():
            return
        files = sorted(p for p in self.uploads_dir.iterdir() if p.is_file())
        if not files:
            return
        report = self.primary.index(files, progress=False)
        self._index_changed()
        for file, why in report.skipped:
            log.warning("upload %s not indexed: %s", file, why)


def _restore(dest: Path, backup: bytes | None) -> None:
    try:
        if backup is None:
            dest.unlink(missing_ok=True)
        else:
            dest.write_bytes(backup)
    except OSError:  # pragma: no cover - best effort
        log.exception("could not restore %s", dest)


def _reason(why: str) -> str:
    if why.startswith("duplicate of "):
        return f"the same text is already indexed as {Path(why[len('duplicate of '):]).name}"
    return why
