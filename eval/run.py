"""``rag eval``: run a suite, write ``metrics.json``, ``report.md`` and plots, gate on thresholds.

    rag eval --suite seed                         # the team-written article questions
    rag eval --suite whitepaper --split dev       # only the dev part (for tuning); --split test to report
    rag eval --suite judge --limit 100            # the judge on a stratified WiCE sample
    rag eval --suite verdicts                     # the Yes/No lead on 130 question/reply pairs
    rag eval --suite conditionalqa --data DIR     # licensed data from DIR/conditionalqa (or RAG_EVAL_DATA)
    rag eval --suite seed --compare eval/reports/latest/seed/metrics.json
    rag eval --suite seed --fail-under answerable_correct=0.9 --fail-under declined_correctly=1
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

from rag import PROJECT_ROOT, Settings

from . import metrics as M
from .suites import SPLIT_CHOICES, SPLIT_SUITES, SPLITS, SUITES, SuiteResult

log = logging.getLogger(__name__)

REPORTS = PROJECT_ROOT / "eval" / "reports"
#: The metrics shown in the all / dev / test table of report.md (others stay in the full table).
MAIN_METRICS = (
    "questions",
    "answerable_correct",
    "declined_correctly",
    "required_facts",
    "cited_supporting_sentence",
    "retrieval_recall@4",
    "faithfulness",
    "wrong_refusal_rate",
)
SPLIT_NOTE = (
    "The dev split is for tuning prompts and thresholds; the test split is only reported on "
    "(never tune on it), so its figures are the honest estimate."
)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def _json_metrics(metrics: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}


def _split_lines(result: SuiteResult) -> list[str]:
    """The split note and, with both splits present, the main metrics as an all / dev / test table."""
    if result.name not in SPLIT_SUITES:
        return []
    lines = [f"Split: `{result.split}`. {SPLIT_NOTE}", ""]
    if result.by_split:
        lines += ["| metric | all | dev | test |", "|---|---|---|---|"]
        columns = (result.metrics, *(result.by_split[s] for s in SPLITS))
        for k in MAIN_METRICS:
            if k in result.metrics:
                lines.append(f"| {k} | " + " | ".join(_fmt(m.get(k, float("nan"))) for m in columns) + " |")
        lines.append("")
    lines += ["Every metric of the selected items:", ""]
    return lines


def _miss_lines(result: SuiteResult) -> list[str]:
    """The answerable questions that were missed, by reason, most frequent first (only reasons that occur)."""
    if not result.misses_by_reason:
        return []
    parts = [p for p in ("all", *SPLITS) if p in result.misses_by_reason]
    counts = result.misses_by_reason
    answerable = {
        p: sum(1 for r in result.rows if r.get("type") == "answerable" and p in ("all", r.get("split"))) for p in parts
    }
    lines = ["## Answerable questions missed, by reason", ""]
    names = [result.split if p == "all" else p for p in parts]
    lines += ["| reason | " + " | ".join(names) + " |", "|---" * (len(parts) + 1) + "|"]
    for key, n in counts["all"].items():  # most frequent first; a split's count is never above the total
        if n:
            lines.append(f"| {M.MISS_REASONS[key]} | " + " | ".join(str(counts[p][key]) for p in parts) + " |")
    lines.append("| **missed** | " + " | ".join(f"{sum(counts[p].values())} of {answerable[p]}" for p in parts) + " |")
    refusals = " | ".join(_fmt(result.wrong_refusals[p]) for p in parts)
    lines.append(f"| wrong refusals (abstained / answerable) | {refusals} |")
    lines += ["", "An answer missing a fact counts under the missing fact even when its citations are also off.", ""]
    return lines


def write_report(result: SuiteResult, out: Path, settings: Settings, elapsed: float) -> None:
    """Write metrics.json, report.md and PNG plots for one suite run."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": result.name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": settings.model,
        "judge": settings.judge,
        "elapsed_s": round(elapsed, 1),
        "metrics": _json_metrics(result.metrics),
    }
    if result.name in SPLIT_SUITES:
        payload["split"] = result.split
    if result.by_split:
        payload["by_split"] = {s: _json_metrics(m) for s, m in result.by_split.items()}
    if result.misses_by_reason:
        payload["misses_by_reason"] = result.misses_by_reason["all"]
        payload["wrong_refusals"] = _json_metrics(result.wrong_refusals)["all"]
        if result.by_split:
            payload["misses_by_reason_by_split"] = {s: result.misses_by_reason[s] for s in result.by_split}
            payload["wrong_refusals_by_split"] = {s: _json_metrics(result.wrong_refusals)[s] for s in result.by_split}
    (out / "metrics.json").write_text(json.dumps(payload, indent=2))
    with open(out / "rows.jsonl", "w", encoding="utf-8") as f:
        for r in result.rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    plots = _plots(result, out)

    lines = [f"# Evaluation report: `{result.name}`", ""]
    lines.append(f"Run {payload['date']}, model `{settings.model}`, judge `{settings.judge}`, {elapsed:.0f} s in all.")
    lines.append("")
    lines += _split_lines(result)
    lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in result.metrics.items()]
    lines.append("")
    for note in result.notes:
        lines.append(f"- {note}")
    for p in plots:
        lines += ["", f"![{p.stem}]({p.name})"]
    if result.misses_by_reason:
        lines += [""] + _miss_lines(result)
    failures = [r for r in result.rows if r.get("correct") is False]
    lines += ["", f"## Failures ({len(failures)} of {len(result.rows)})", ""]
    if not failures:
        lines.append("None.")
    for r in failures:
        kind = ", ".join(x for x in (r.get("type"), r.get("split")) if x)
        lines.append(f"### {r['id']}" + (f" ({kind})" if kind else ""))
        if "question" in r:
            lines.append(f"- **Question:** {r['question']}")
        if "reply" in r:
            lines.append(f"- **Reply:** {r['reply']}")
        if "claim" in r:
            lines.append(f"- **Claim:** {r['claim']} (label {'supported' if r['label'] else 'not supported'}, score {r['score']:.3f})")
        if "answer" in r:
            lines.append(f"- **Answer:** {r['answer']}" + (f" (abstained: {r.get('reason')})" if r.get("abstained") else ""))
        reason = M.miss_reason(r)
        if reason:
            lines.append(f"- **Missed because:** {M.MISS_REASONS[reason]}")
        if r.get("why"):
            lines.append(f"- **Why it failed:** {r['why']}")
        if r.get("reference"):
            lines.append(f"- **Expected:** {r['reference']}")
        for s in r.get("supporting") or []:
            lines.append(f"- **Supporting sentence:** {' '.join(s.split())}")
        for c in r.get("citations") or []:
            lines.append(f"- **Cited [{c['n']}]:** {' '.join(c['quote'].split())[:300]}")
        for s in r.get("sentences") or []:
            if s.get("supported") is False:
                lines.append(f"- **Unsupported sentence:** {s['text']} (support {s.get('support')})")
        if r.get("gold"):
            lines.append(f"- **Gold answers:** {', '.join(r['gold'])}")
        lines.append("")
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


def _plots(result: SuiteResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    shares = {k: v for k, v in result.metrics.items() if isinstance(v, float) and 0 <= v <= 1 and not k.endswith("_s") and "threshold" not in k}
    if shares:
        fig, ax = plt.subplots(figsize=(8, 0.35 * len(shares) + 1))
        names = list(shares)
        ax.barh(names, [shares[n] for n in names], color="#3b7dd8")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        for i, n in enumerate(names):
            ax.text(min(shares[n] + 0.01, 0.92), i, f"{shares[n]:.2f}", va="center", fontsize=8)
        ax.set_title(f"{result.name}: metrics")
        fig.tight_layout()
        paths.append(out / "metrics.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    if result.roc is not None:
        fpr, tpr = result.roc
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot(fpr, tpr, label=f"judge (AUC {result.metrics.get('roc_auc', float('nan')):.3f})")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("Judge ROC on WiCE dev")
        ax.legend(loc="lower right")
        fig.tight_layout()
        paths.append(out / "roc.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    lat = [x for x in result.latencies if x]
    if lat:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(lat, bins=min(30, max(5, len(lat) // 2)), color="#6aa84f")
        ax.set_xlabel({"judge": "seconds per claim-passage pair", "verdicts": "seconds per pair"}.get(result.name, "seconds per question"))
        ax.set_ylabel("count")
        ax.set_title(f"{result.name}: latency")
        fig.tight_layout()
        paths.append(out / "latency.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def compare(metrics: dict, other_path: Path) -> str:
    other = json.loads(Path(other_path).read_text())
    other = other.get("metrics", other)
    lines = [f"{'metric':36s} {'this':>10s} {'other':>10s} {'delta':>10s}"]
    for k, v in metrics.items():
        o = other.get(k)
        if isinstance(v, (int, float)) and isinstance(o, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            lines.append(f"{k:36s} {v:10.3f} {o:10.3f} {v - o:+10.3f}")
    return "\n".join(lines)


def check_thresholds(metrics: dict, rules: list[str]) -> list[str]:
    """Failures of ``metric=value`` rules (a metric under its value, or missing)."""
    failed = []
    for rule in rules:
        name, _, value = rule.partition("=")
        if not value:
            raise ValueError(f"--fail-under takes METRIC=VALUE, got {rule!r}")
        got = metrics.get(name.strip())
        if got is None or (isinstance(got, float) and math.isnan(got)) or got < float(value):
            failed.append(f"{name.strip()} = {got} < {value}")
    return failed


def main(args: argparse.Namespace, settings: Settings) -> int:
    """``rag eval``: run ``args.suite`` with ``settings``; exit status 1 when a ``--fail-under`` rule fails."""
    if args.suite not in SUITES:
        print(f"error: unknown suite {args.suite!r}; choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    split = getattr(args, "split", None) or "all"
    if split not in SPLIT_CHOICES:
        print(f"error: unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}", file=sys.stderr)
        return 2
    if split != "all" and args.suite not in SPLIT_SUITES:
        print(f"error: --split applies to {' and '.join(sorted(SPLIT_SUITES))} only, not {args.suite!r}", file=sys.stderr)
        return 2
    settings = settings.replace(eval_data=getattr(args, "data", None))
    out = Path(args.out) if args.out else REPORTS / args.suite
    t0 = time.perf_counter()
    options = {"split": split} if args.suite in SPLIT_SUITES else {}
    result = SUITES[args.suite](settings, limit=args.limit, **options)
    elapsed = time.perf_counter() - t0
    write_report(result, out, settings, elapsed)
    print(f"{args.suite}: {len(result.rows)} items in {elapsed:.0f}s; report in {out}/report.md")
    for k, v in result.metrics.items():
        print(f"  {k:36s} {_fmt(v)}")
    if result.misses_by_reason:
        missed = {k: n for k, n in result.misses_by_reason["all"].items() if n}
        print("  missed answerable by reason: " + (", ".join(f"{k} {n}" for k, n in missed.items()) or "none"))
    if args.compare:
        print(compare(result.metrics, Path(args.compare)))
    failed = check_thresholds(result.metrics, args.fail_under)
    for f in failed:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failed else 0
