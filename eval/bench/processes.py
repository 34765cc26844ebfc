"""The sections that start processes: ``cold_start`` (``rag ask`` in a fresh process) and ``serve_rss`` (``rag serve``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rag import DEFAULT_INDEX_DIR

from .common import COLD_QUESTION, Context
from .stats import median, proc_status_kb, descendants

log = logging.getLogger(__name__)


# ----- 3. cold start -------------------------------------------------------------------------------


def _rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rag.cli"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def time_first_byte(cmd: list[str], timeout: float = 300.0, *, tty: bool = False) -> dict:
    """Run ``cmd``; seconds to its first stdout byte and to its exit, read byte by byte.

    With ``tty=True`` the command's stdout is a pseudo-terminal, as for a person at a shell (``rag ask``
    then streams its draft; into a pipe it writes only the checked answer).
    """
    master = slave = None
    if tty:
        import pty

        master, slave = pty.openpty()
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=slave if tty else subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, bufsize=0, env=_child_env()
        )
        if slave is not None:
            os.close(slave)

        def read(n: int) -> bytes:
            if master is None:
                return proc.stdout.read(n) if n > 0 else proc.stdout.read()
            chunks = []
            while True:
                try:
                    data = os.read(master, 1 if n > 0 else 65536)
                except OSError:  # EIO: the terminal's other end closed
                    data = b""
                if not data:
                    break
                chunks.append(data)
                if n > 0:
                    break
            return b"".join(chunks)

        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            first = read(1)
            t_first = time.perf_counter() - t0 if first else None
            rest = read(-1)
            rc = proc.wait()
            t_exit = time.perf_counter() - t0
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if master is not None:
                os.close(master)
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    out = (first + rest).decode("utf-8", errors="replace")
    return {"first_byte_s": t_first, "exit_s": t_exit, "rc": rc, "stdout_chars": len(out), "stdout_head": out[:200], "stderr_tail": stderr[-500:] if rc else ""}


#: Times each start-up step of a fresh process, in the order ``rag ask`` meets them.
_STARTUP_PHASES = """
import json, time
t0 = time.perf_counter()
from rag import Assistant  # noqa: F401  (what `rag ask` imports: the pipeline)
from rag import Settings, get_assistant
out = {"imports_s": time.perf_counter() - t0}
a = get_assistant(settings=Settings.from_env())
for name, step in (("embedder_s", lambda: a.collection.embedder), ("index_s", lambda: a.collection.retriever),
                   ("model_load_s", lambda: a.generator), ("kv_prefix_s", lambda: a.context.warm(a.store)),
                   ("judge_load_s", lambda: a.verifier())):
    t = time.perf_counter()
    step()
    out[name] = time.perf_counter() - t
out["total_s"] = time.perf_counter() - t0
print("PHASES " + json.dumps(out))
"""


def startup_phases(index_dir: Path | None = None) -> dict:
    """Where the start-up time of a fresh process goes: imports, embedder, index, model, KV prefix, judge."""
    env = _child_env()
    if index_dir is not None:
        env["RAG_INDEX_DIR"] = str(index_dir)
    proc = subprocess.run([sys.executable, "-c", _STARTUP_PHASES], capture_output=True, text=True, env=env, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PHASES ")), None)
    if line is None:
        raise RuntimeError(f"start-up phases failed: {proc.stderr[-500:]}")
    return json.loads(line[len("PHASES ") :])


def bench_cold_start(ctx: "Context") -> dict:
    settings = ctx.settings
    cmd = _rag_command() + ["ask", COLD_QUESTION]
    if ctx.args_model:
        cmd += ["--model", ctx.args_model]
    if Path(settings.index_dir).resolve() != DEFAULT_INDEX_DIR.resolve():
        cmd += ["--index", str(settings.index_dir)]
    bar = ctx.bar("cold start", ctx.plan.cold_runs + 2 * ctx.plan.import_runs, "run")
    imports, bare = [], []
    for _ in range(ctx.plan.import_runs):
        imports.append(time_first_byte([sys.executable, "-c", "import rag"])["exit_s"])
        bar.update(1)
        bare.append(time_first_byte([sys.executable, "-c", "pass"])["exit_s"])
        bar.update(1)
    runs = []
    for _ in range(ctx.plan.cold_runs):
        runs.append(time_first_byte(cmd, tty=True))
        bar.update(1)
    bar.close()
    phases = startup_phases(None if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve() else settings.index_dir)
    ok = [r for r in runs if r["rc"] == 0 and r["first_byte_s"] is not None]
    if not ok:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {runs[-1]['stderr_tail'] if runs else ''}")
    return {
        "command": " ".join(cmd),
        "note": "a fresh process each time, on a terminal (the draft streams); the OS file cache is warm",
        "startup_phases_s": phases,
        "runs": runs,
        "first_byte_p50_s": median([r["first_byte_s"] for r in ok]),
        "exit_p50_s": median([r["exit_s"] for r in ok]),
        "import_rag_p50_s": median(imports),
        "python_bare_p50_s": median(bare),
    }


# ----- 7. peak RSS of rag serve --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_peak(pid: int) -> tuple[int | None, int]:
    """Sum of VmHWM (bytes) over ``pid`` and its live descendants, and how many processes that is."""
    pids = [pid] + descendants(pid)
    vals = [proc_status_kb(p, "VmHWM") for p in pids]
    vals = [v for v in vals if v is not None]
    return (sum(vals) * 1024 if vals else None), len(vals)


def memory_breakdown(pid: int | str) -> dict:
    """Current RSS split (anonymous / file-backed) and PSS from /proc: file pages of a GGUF mapped by two
    llama.cpp instances count twice in RSS but once in PSS."""
    out: dict[str, int | None] = {
        "rss_bytes": _kb(proc_status_kb(pid, "VmRSS")),
        "rss_anon_bytes": _kb(proc_status_kb(pid, "RssAnon")),
        "rss_file_bytes": _kb(proc_status_kb(pid, "RssFile")),
    }
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("Pss", "Pss_Anon", "Pss_File"):
                    out[key.lower() + "_bytes"] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _kb(v: int | None) -> int | None:
    return None if v is None else v * 1024


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def _wait_rss_settled(pid: int, limit_s: float, quiet_s: float = 4.0) -> None:
    """Wait until the process's RSS stops growing (the background model warm-up is done)."""
    t_end = time.monotonic() + limit_s
    last = proc_status_kb(pid, "VmRSS") or 0
    still = time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(0.5)
        now = proc_status_kb(pid, "VmRSS")
        if now is None:
            return
        if abs(now - last) > max(2048, last * 0.01):
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet_s:
            return


def _answer_with_gradio_client(url: str, question: str) -> str:
    from gradio_client import Client

    client = Client(url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict") or {}
    named = api.get("named_endpoints") or {}
    for name, info in named.items():
        params = info.get("parameters") or []
        if params and any("question" in (p.get("parameter_name") or p.get("label") or "").lower() for p in params):
            client.predict(question, api_name=name)
            return f"gradio_client {name}"
    raise RuntimeError("the page exposes no public API endpoint taking a question (its events are api_visibility='private')")


def _answer_with_browser(url: str, question: str, timeout_s: float) -> str:
    """Ask through the page in Debian's Chromium, with the selectors of tests/test_ui_browser.py."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        raise RuntimeError("no /usr/bin/chromium for Playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = b.new_page()
            page.goto(url)
            page.fill("#question textarea", question, timeout=30_000)
            page.click("#ask-btn")
            sel = '#turn-0[data-state="done"], #turn-0[data-state="refused"], #turn-0[data-state="error"]'
            page.wait_for_selector(sel, timeout=int(timeout_s * 1000))
            state = page.get_attribute("#turn-0", "data-state")
        finally:
            b.close()
    if state == "error":
        raise RuntimeError("the page showed an error for the question")
    return f"browser (Playwright + Chromium), turn state {state}"


_LIB_PROCESS = """
import json, sys, time
from rag import Settings, get_assistant
a = get_assistant(settings=Settings.from_env())
a.warm_up()
ans = a.ask(sys.argv[1])
from eval.bench.processes import memory_breakdown
from eval.bench.stats import peak_rss_bytes
print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "memory_now": memory_breakdown("self"), "abstained": ans.abstained}))
"""


def _library_process_rss(question: str, model: str | None = None) -> dict:
    t0 = time.perf_counter()
    env = _child_env()
    if model:
        env["RAG_MODEL"] = model
    r = subprocess.run([sys.executable, "-c", _LIB_PROCESS, question], capture_output=True, text=True, timeout=600, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-500:])
    data = json.loads(r.stdout.strip().splitlines()[-1])
    data.update(
        label="library process (loads assistant, embedder and model, answers one question): not rag serve",
        seconds=time.perf_counter() - t0,
    )
    return data


def bench_serve_rss(ctx: "Context") -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = _rag_command() + ["serve", "--port", str(port)]
    if ctx.args_model:
        cmd += ["--model", ctx.args_model]
    out: dict[str, Any] = {"command": " ".join(cmd)}
    bar = ctx.bar("rag serve", 4, "step")
    logf = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env())
    try:
        deadline = time.monotonic() + ctx.plan.serve_timeout_s
        while time.monotonic() < deadline and proc.poll() is None and not _http_ok(url):
            time.sleep(0.5)
        started = proc.poll() is None and _http_ok(url)
        out["started"] = started
        bar.update(1)
        if started:
            out["page_up_s"] = time.perf_counter() - t0
            _wait_rss_settled(proc.pid, limit_s=120)
            out["loaded_rss_bytes"], _ = _tree_peak(proc.pid)
            bar.update(1)
            errors = []
            for how in ("gradio_client", "browser"):
                try:
                    if how == "gradio_client":
                        out["answered_via"] = _answer_with_gradio_client(url, COLD_QUESTION)
                    else:
                        out["answered_via"] = _answer_with_browser(url, COLD_QUESTION, ctx.plan.serve_timeout_s)
                    break
                except Exception as exc:  # noqa: BLE001 - try the next way, keep the reason
                    errors.append(f"{how}: {type(exc).__name__}: {str(exc)[:200]}")
            out["answer_errors"] = errors
            out["answered"] = "answered_via" in out
            time.sleep(0.5)
            peak, nproc = _tree_peak(proc.pid)
            out.update(peak_rss_bytes=peak, processes=nproc, memory_now=memory_breakdown(proc.pid))
            out["label"] = "rag serve" + (", after answering one question" if out["answered"] else ", models loaded, no question answered")
        bar.update(1)
    finally:
        _stop(proc)
        logf.seek(0)
        log_tail = logf.read().decode("utf-8", errors="replace")[-800:]
        logf.close()
    if not out.get("started"):
        out["serve_log_tail"] = log_tail
    if not out.get("started") or not out.get("answered"):
        log.info("rag serve %s: measuring a library process instead", "did not start" if not out.get("started") else "was not asked")
        out["fallback"] = _library_process_rss(COLD_QUESTION, ctx.args_model)
        if not out.get("started"):
            out["peak_rss_bytes"] = out["fallback"]["peak_rss_bytes"]
            out["label"] = out["fallback"]["label"]
    bar.update(1)
    bar.close()
    return out


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process we started (and its children, by pid), politely first."""
    if proc.poll() is not None:
        return
    kids = descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for k in kids:
        try:
            os.kill(k, 15)
        except OSError:
            pass
