"""The `rag` command with a fake assistant: what a person sees on a terminal and in a pipe."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from fakes import FakeCollection, FakeJudge, FakeRetriever, ScriptedModel, fake_passages
from rag import Settings
from rag.context import ContextBuilder
from rag.pipeline import Assistant
from rag.verifier import Verifier

POOLS = "One third of swimming pools are at risk of closure due to high energy bills"


def _assistant(reply: str, settings: Settings) -> Assistant:
    store, passages = fake_passages()
    model = ScriptedModel(reply)
    return Assistant(
        settings,
        collection=FakeCollection(FakeRetriever(store, passages)),
        generator=model,
        context=ContextBuilder(model, whole_corpus_tokens=0, window_tokens=0),
        verifier=Verifier(FakeJudge((POOLS,)), mode="llm"),
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture()
def run_ask(monkeypatch, tmp_path):
    from rag import cli, pipeline

    (tmp_path / "manifest.json").write_text("{}")  # an index folder exists: nothing is built

    def run(reply: str, *flags: str, out: io.StringIO | None = None) -> tuple[int, str]:
        # The command's own settings (flags, environment) reach the assistant it asks.
        monkeypatch.setattr(pipeline, "get_assistant", lambda index=None, settings=None: _assistant(reply, settings))
        stdout = out or io.StringIO()
        monkeypatch.setattr(sys, "stdout", stdout)
        code = cli.main(["ask", "What share of pools are at risk?", "--index", str(tmp_path), *flags])
        return code, stdout.getvalue()

    return run


def test_piped_output_holds_only_the_checked_answer_and_its_sources(run_ask):
    code, out = run_ask(f"{POOLS} [1]. Every pool will close next winter [1].", "--strict")
    assert code == 0
    assert out.startswith(f"{POOLS} [1].\n")
    assert "next winter" not in out and "Draft" not in out and "\x1b[" not in out
    assert "Sources:" in out and "[1] The article" in out


def test_a_withdrawn_draft_never_reaches_a_pipe(run_ask):
    code, out = run_ask("The article was written by somebody else entirely [1].")
    assert code == 0
    assert out.startswith("The documents don't say.") and "somebody" not in out and "Sources:" not in out


def test_on_a_terminal_the_draft_is_marked_as_a_draft_then_replaced_by_the_checked_answer(run_ask):
    code, out = run_ask(f"{POOLS} [1]. Every pool will close next winter [1].", "--strict", out=_Terminal())
    assert code == 0
    draft_at = out.index("Draft (not checked yet): ")
    erase_at = out.index("\x1b[J")  # the draft is erased...
    assert draft_at < out.index("next winter") < erase_at
    checked = out[erase_at + len("\x1b[J") :]
    assert checked.startswith(f"{POOLS} [1].\n") and "next winter" not in checked  # ...and the checked answer follows


def test_json_output_is_the_answer_alone(run_ask):
    code, out = run_ask(f"{POOLS} [1].", "--json", out=_Terminal())
    assert code == 0
    data = json.loads(out)
    assert data["text"] == f"{POOLS} [1]." and data["reason"] is None and len(data["retrieved"]) == 3


def test_python_dash_m_rag_is_the_rag_command():
    proc = subprocess.run([sys.executable, "-m", "rag", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for command in ("index", "ask", "docs", "remove", "serve", "eval", "bench"):
        assert command in proc.stdout


def test_the_library_never_imports_ui_or_eval():
    import ast

    from rag import PROJECT_ROOT

    offenders = []
    for path in sorted((PROJECT_ROOT / "rag").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("ui", "eval")]
    assert offenders == []


def test_ui_and_eval_use_only_the_public_names_of_rag():
    import ast

    import rag
    from rag import PROJECT_ROOT

    offenders = []
    for folder in ("ui", "eval"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("rag"):
                    if node.module != "rag":
                        offenders.append(f"{path.relative_to(PROJECT_ROOT)}: from {node.module}")
                    offenders += [f"{path.name}: {a.name}" for a in node.names if a.name not in rag.__all__]
                elif isinstance(node, ast.Import):
                    offenders += [f"{path.name}: import {a.name}" for a in node.names if a.name.startswith("rag.")]
    assert offenders == []
