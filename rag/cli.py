"""The ``rag`` command line.

    rag index PATH... [--index DIR] [--rebuild] [--prune]
    rag ask "QUESTION" [--index DIR] [--json] [-k N] [--strict] [--judge MODE]
    rag docs [--index DIR]              list indexed documents
    rag remove DOC... [--index DIR]     remove documents by id or path
    rag serve [--host H] [--port P]     the chat in the browser
    rag api [--host H] [--port P]       the assistant as an OpenAI-compatible API
    rag eval --suite NAME               the offline evaluation
    rag bench [--quick]                 the speed benchmark

Settings come from ``RAG_*`` environment variables (see ``rag.config``) and the flags
below. Each command imports only what it needs, so ``rag ask`` starts quickly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .config import Settings, setup_offline
from .errors import RagError

log = logging.getLogger("rag")


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    return s.replace(
        index_dir=getattr(args, "index", None),
        top_k=getattr(args, "k", None),
        model=getattr(args, "model", None),
        backend=getattr(args, "backend", None),
        judge=getattr(args, "judge", None),
        strict=True if getattr(args, "strict", False) else None,
    )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", metavar="DIR", help="index folder (default: the default corpus's index)")
    p.add_argument("--model", help="qwen2.5-1.5b (default), qwen2.5-0.5b or a .gguf path")
    p.add_argument("--backend", choices=["llama-cpp", "transformers", "openai"], help="generator backend")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")


def cmd_index(args: argparse.Namespace) -> int:
    from .pipeline import Assistant

    settings = _settings(args)
    report = Assistant(settings).index(args.paths, rebuild=args.rebuild, prune=args.prune, progress=not args.quiet)
    print(report.summary())
    return 1 if report.skipped else 0


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    print()
    if answer.abstained:
        return
    flagged = [s for s in answer.sentences if s.supported is False]
    if flagged:
        print("\nNot supported by the cited passages:")
        for s in flagged:
            print(f"  ! {s.text}")
    print("\nSources:")
    for c in answer.citations:
        where = f", page {c.page}" if c.page else ""
        print(f"[{c.n}] {c.title}{where} ({Path(c.source).name}, chars {c.start}-{c.end}, score {c.score:.3f})")
        quote = " ".join(c.quote.split())
        print(f"    \"{quote}\"")


def cmd_ask(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant
    from .types import Answer

    settings = _settings(args)
    if args.index is None and not Path(settings.index_dir, "manifest.json").exists():
        from .pipeline import ensure_default_index

        ensure_default_index(settings, progress=not args.json)
    assistant = get_assistant(settings=settings)
    stream = assistant.ask(args.question, stream=True)
    answer = None
    for item in stream:
        if isinstance(item, Answer):
            answer = item
        elif not args.json:
            sys.stdout.write(item)
            sys.stdout.flush()
    assert answer is not None
    if not args.json and answer.abstained:
        # What streamed was the model's refusal (or nothing): print the final wording.
        sys.stdout.write(("\r\n" if answer.stats.get("prompt_tokens") else "") + answer.text)
    elif not args.json:
        sys.stdout.write("\n\nAnswer: " + answer.text)
    _print_answer(answer, args.json)
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant

    docs = get_assistant(settings=_settings(args)).documents()
    for d in docs:
        print(f"{d['doc_id']}  {d['chunks']:5d} chunks  {d['title']}  ({d['source']})")
    print(f"{len(docs)} documents")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .pipeline import get_assistant

    for src in get_assistant(settings=_settings(args)).delete_from_index(args.docs):
        print(f"removed {src}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve

    return serve(_settings(args), host=args.host, port=args.port, auth=args.auth, open_browser=args.open)


def cmd_api(args: argparse.Namespace) -> int:
    from .openai_api import serve_api

    return serve_api(_settings(args), host=args.host, port=args.port)


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.run import main as eval_main

    return eval_main(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from eval.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Offline cited question answering over policy documents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="index files or folders (incremental)")
    p.add_argument("paths", nargs="+", help="files (.txt .md .html .pdf) or folders")
    p.add_argument("--rebuild", action="store_true", help="start from an empty index")
    p.add_argument("--prune", action="store_true", help="remove indexed documents not under PATHS")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_index)
    _add_common(p)

    p = sub.add_parser("ask", help="answer a question with cited passages")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    p.add_argument("-k", type=int, help="passages to retrieve (default 4)")
    p.add_argument("--strict", action="store_true", help="drop sentences the judge does not support")
    p.add_argument("--judge", choices=["llm", "lexical", "off"], help="how sentences are checked (default llm)")
    p.set_defaults(func=cmd_ask)
    _add_common(p)

    p = sub.add_parser("docs", help="list the indexed documents")
    p.set_defaults(func=cmd_docs)
    _add_common(p)

    p = sub.add_parser("remove", help="remove documents by doc id or source path")
    p.add_argument("docs", nargs="+")
    p.set_defaults(func=cmd_remove)
    _add_common(p)

    p = sub.add_parser("serve", help="start the chat in the browser")
    p.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"), help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")), help="port (default 7860)")
    p.add_argument("--auth", default=os.environ.get("RAG_AUTH"), help="USER:PASSWORD required to use the page")
    p.add_argument("--open", action="store_true", help="open a browser tab")
    p.set_defaults(func=cmd_serve)
    _add_common(p)

    p = sub.add_parser("api", help="serve the assistant as an OpenAI-compatible API (/v1/chat/completions)")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    p.set_defaults(func=cmd_api)
    _add_common(p)

    p = sub.add_parser("eval", help="run an evaluation suite")
    p.add_argument("--suite", default="seed", help="seed, whitepaper, conditionalqa or judge (default seed)")
    p.add_argument("--out", help="report folder (default eval/reports/<suite>)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items (a stratified sample for judge)")
    p.add_argument("--compare", metavar="OTHER_REPORT", help="print deltas against another report's metrics.json")
    p.add_argument("--fail-under", action="append", default=[], metavar="METRIC=VALUE", help="exit 1 if a metric is lower")
    p.add_argument("--judge", choices=["llm", "lexical", "off"], help="how answer sentences are checked")
    p.add_argument("-k", type=int, help="passages to retrieve")
    p.set_defaults(func=cmd_eval)
    _add_common(p)

    p = sub.add_parser("bench", help="run the speed benchmark")
    p.add_argument("--quick", action="store_true", help="a CI-sized run")
    p.add_argument("--out", help="output folder (default eval/reports/bench)")
    p.set_defaults(func=cmd_bench)
    _add_common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    setup_offline()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "faiss.loader", "sentence_transformers", "bm25s"):
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
