"""The ``rag`` command line.

    rag index PATH... [--index DIR] [--rebuild] [--prune]
    rag ask "QUESTION" [--index DIR] [--json] [-k N] [--strict] [--judge MODE]
    rag docs [--index DIR]              list indexed documents
    rag remove DOC... [--index DIR]     remove documents by id or path
    rag serve [--host H] [--port P]     the chat in the browser (from ``ui``)
    rag api [--host H] [--port P]       the assistant as an OpenAI-compatible API
    rag llama-server [--parallel N]     llama.cpp's batching model server, for many users at once
    rag eval --suite NAME               the offline evaluation (from ``eval``)
    rag bench [--quick]                 the speed benchmark (from ``eval``)

``python -m rag`` is the same command. Settings come from ``RAG_*`` environment variables (see
``rag.config``) and the flags below. Each command imports only what it needs, so ``rag ask``
starts quickly.

Commands that live outside the library (``serve``, ``eval``, ``bench``) are plug-ins: packages
declare them under the ``rag.commands`` entry-point group as a function that takes the
sub-parsers and ``add_common_options`` and registers its command; the library never imports them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import TextIO

from .config import Settings, setup_offline
from .errors import RagError
from .types import Answer, Checking, DraftPiece, Final

log = logging.getLogger("rag")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """``Settings.from_env()`` with the command's flags applied."""
    s = Settings.from_env()
    return s.replace(
        index_dir=getattr(args, "index", None),
        top_k=getattr(args, "k", None),
        model=getattr(args, "model", None),
        backend=getattr(args, "backend", None),
        judge=getattr(args, "judge", None),
        strict=True if getattr(args, "strict", False) else None,
    )


def add_common_options(p: argparse.ArgumentParser) -> None:
    """The options every command takes: index, model, backend, verbosity."""
    p.add_argument("--index", metavar="DIR", help="index folder (default: the default corpus's index)")
    p.add_argument("--model", help="qwen2.5-1.5b (default), qwen2.5-0.5b or a .gguf path")
    p.add_argument("--backend", choices=["llama-cpp", "transformers", "openai"], help="generator backend")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def cmd_index(args: argparse.Namespace) -> int:
    from .errors import IndexFormatError
    from .pipeline import Assistant

    settings = settings_from_args(args)
    assistant = Assistant(settings)
    try:
        report = assistant.index(args.paths, rebuild=args.rebuild, prune=args.prune, progress=not args.quiet)
    except IndexFormatError as exc:
        if not args.rebuild_if_stale:
            raise
        print(f"rebuilding: {str(exc).split(': rebuild')[0]}", file=sys.stderr)
        report = assistant.index(args.paths, rebuild=True, prune=args.prune, progress=not args.quiet)
    print(report.summary())
    return 1 if report.skipped else 0


def _print_sources(answer: Answer, out: TextIO) -> None:
    flagged = [s for s in answer.sentences if s.supported is False]
    if flagged:
        out.write("\nNot supported by the cited passages:\n")
        for s in flagged:
            out.write(f"  ! {s.text}\n")
    if answer.citations:
        out.write("\nSources:\n")
    for c in answer.citations:
        where = f", page {c.page}" if c.page else ""
        out.write(f"[{c.n}] {c.title}{where} ({Path(c.source).name}, chars {c.start}-{c.end}, score {c.score:.3f})\n")
        quote = " ".join(c.quote.split())
        out.write(f'    "{quote}"\n')


def _preload_generator(assistant) -> None:
    try:
        _ = assistant.generator
    except Exception:  # the question's own path reports the problem
        log.debug("preloading the model failed", exc_info=True)


class DraftView:
    """Shows the unchecked draft on a terminal, marked as a draft, then erases it for the checked answer."""

    LABEL = "Draft (not checked yet): "

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.text = ""

    def _write(self, s: str) -> None:
        self.out.write(s)
        self.out.flush()

    def piece(self, text: str) -> None:
        if not self.text:
            self._write("\x1b[2m" + self.LABEL)
        self.text += text
        self._write(text)

    def checking(self) -> None:
        if self.text:
            self._write("  [checking against the sources…]")

    def erase(self) -> None:
        """Remove the draft lines (the terminal may have wrapped them)."""
        if not self.text:
            return
        width = max(20, shutil.get_terminal_size((80, 24)).columns)
        shown = self.LABEL + self.text + "  [checking against the sources…]"
        rows = sum(max(1, -(-len(line) // width)) for line in shown.split("\n"))
        self._write("\x1b[0m\r" + ("\x1b[1A" * (rows - 1)) + "\x1b[J")


def cmd_ask(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant

    settings = settings_from_args(args)
    out = sys.stdout
    if args.index is None and not Path(settings.index_dir, "manifest.json").exists():
        from .pipeline import ensure_default_index

        ensure_default_index(settings, progress=sys.stderr.isatty())
    assistant = get_assistant(settings=settings)
    events = assistant.stream(args.question)  # validates the question before anything loads
    # The answering model loads while the embedder and the index load: start-up overlaps on 2 cores.
    threading.Thread(target=_preload_generator, args=(assistant,), name="rag-preload", daemon=True).start()
    draft = DraftView(out) if out.isatty() and not args.json else None
    answer = None
    for event in events:
        if isinstance(event, Final):
            answer = event.answer
        elif draft is not None and isinstance(event, DraftPiece):
            draft.piece(event.text)
        elif draft is not None and isinstance(event, Checking):
            draft.checking()
    assert answer is not None
    if args.json:
        out.write(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False) + "\n")
        return 0
    if draft is not None:
        draft.erase()
    out.write(answer.text + "\n")
    _print_sources(answer, out)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant

    docs = get_assistant(settings=settings_from_args(args)).documents()
    for d in docs:
        print(f"{d['doc_id']}  {d['chunks']:5d} chunks  {d['title']}  ({d['source']})")
    print(f"{len(docs)} documents")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant

    for src in get_assistant(settings=settings_from_args(args)).delete_from_index(args.docs):
        print(f"removed {src}")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from .openai_api import serve_api

    return serve_api(settings_from_args(args), host=args.host, port=args.port)


def cmd_llama_server(args: argparse.Namespace) -> int:
    from .llama_server import LlamaServer
    from .models import model_path

    settings = settings_from_args(args)
    model = Path(settings.model) if Path(settings.model).is_file() else model_path(settings.model, settings.cache_dir)
    server = LlamaServer(
        model, parallel=args.parallel, ctx_per_slot=settings.n_ctx, threads=args.threads or settings.n_threads, port=args.port
    )
    if args.print_command:
        print(" ".join(server.command))
        return 0
    print(f"starting {' '.join(server.command)}", file=sys.stderr)

    def stop_on_signal(signum, frame):  # `kill` and a closed terminal stop the server too, not only Ctrl-C
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on_signal)
    try:
        server.start()
        print(
            f"llama-server is ready at {server.base_url} ({args.parallel} answers at a time); point the assistant at it with\n"
            f"  export RAG_BACKEND=openai RAG_OPENAI_BASE_URL={server.base_url} RAG_OPENAI_MODEL={server.alias}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        rc = server.proc.wait()
        print(f"error: llama-server exited with status {rc}: {server.log_tail(600)}", file=sys.stderr)
        return 1
    finally:
        server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Offline cited question answering over policy documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="index files or folders (incremental)")
    p.add_argument("paths", nargs="+", help="files (.txt .md .html .pdf) or folders")
    p.add_argument("--rebuild", action="store_true", help="start from an empty index")
    p.add_argument("--prune", action="store_true", help="remove indexed documents not under PATHS")
    p.add_argument(
        "--rebuild-if-stale",
        action="store_true",
        help="rebuild an index this version cannot use (older format, other embedder or chunker settings, a damaged file)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)
    add_common_options(p)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.add_argument("-k", type=int, help="passages to retrieve (default 4)")
    p.add_argument("--strict", action="store_true", help="drop sentences the judge does not support")
    p.add_argument("--judge", choices=["llm", "lexical", "off"], help="how sentences are checked (default llm)")
    p.set_defaults(func=cmd_ask)
    add_common_options(p)

    p = sub.add_parser("docs", help="list the indexed documents")
    p.set_defaults(func=cmd_docs)
    add_common_options(p)

    p = sub.add_parser("remove", help="remove documents by doc id or source path")
    p.add_argument("docs", nargs="+")
    p.set_defaults(func=cmd_remove)
    add_common_options(p)

    p = sub.add_parser("api", help="serve the assistant as an OpenAI-compatible API (/v1/chat/completions)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    p.set_defaults(func=cmd_api)
    add_common_options(p)

    p = sub.add_parser(
        "llama-server",
        help="run llama.cpp's batching model server on 127.0.0.1 (build it with `make llama-server`)",
        description="Serve the answer model with llama-server, which decodes --parallel answers at once; "
        "then set RAG_BACKEND=openai RAG_OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 RAG_OPENAI_MODEL=local.",
    )
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    p.add_argument("--parallel", type=int, default=4, help="answers decoded at once (default 4)")
    p.add_argument("--threads", type=int, help="CPU threads (default: RAG_N_THREADS, all cores)")
    p.add_argument("--print-command", action="store_true", help="print the llama-server command line and exit")
    p.add_argument("--model", help="qwen2.5-1.5b (default), qwen2.5-0.5b or a .gguf path")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.set_defaults(func=cmd_llama_server)

    for entry in sorted(entry_points(group="rag.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a plug-in whose package is not installed
            log.debug("command %s unavailable: %s", entry.name, exc)
            continue
        register(sub, add_common_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    setup_offline()
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        # Dependencies' own progress bars and logs ("Loading weights", index building) only with -v;
        # our progress bars (indexing, evaluation) stay.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        for noisy in ("httpx", "faiss", "faiss.loader", "sentence_transformers", "transformers", "bm25s", "llama_cpp"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (RagError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
