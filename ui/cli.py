"""``rag serve``: the chat page, registered as a ``rag.commands`` plug-in (gradio loads only when it runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("serve", help="start the chat in the browser")
    p.add_argument("--host", help="listen address (default 127.0.0.1, RAG_HOST)")
    p.add_argument("--port", type=int, help="port (default 7860, RAG_PORT)")
    p.add_argument("--auth", help="USER:PASSWORD required to use the page (RAG_AUTH)")
    p.add_argument("--open", action="store_true", help="open a browser tab")
    p.set_defaults(func=_serve)
    add_common_options(p)


def _serve(args: argparse.Namespace) -> int:
    from rag import settings_from_args

    from .app import serve

    settings = settings_from_args(args).replace(host=args.host, port=args.port, auth=args.auth)
    return serve(settings, open_browser=args.open)
