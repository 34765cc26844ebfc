"""Evaluation suites: each builds (or reuses) its index, runs the questions and returns rows + metrics.

* ``seed``: team-written questions about the article, over the article alone (``eval/datasets/seed.jsonl``).
* ``whitepaper``: team-written questions over the default corpus (the article and the White Paper summary).
* ``seed-default``: the seed questions over the default corpus, as ``make run`` answers them: "When was the
  article published?" must find the article among two documents.
* ``conditionalqa``: 285 GOV.UK policy questions over a 7,506-sentence evidence pool.
* ``judge``: the claim-support judge against WiCE dev human labels.
* ``verdicts``: the "Yes."/"No." lead of yes/no answers on 130 question/reply pairs
  (``eval/datasets/verdicts.jsonl``): right, wrong or no verdict, per pair.

The team's question sets (``eval/datasets/``) and the default corpus (``index/sources/``: the article
and the White Paper summary) ship with the project. WiCE and ConditionalQA may not be copied into it: they are read from the folder
given by ``rag eval --data DIR`` or ``RAG_EVAL_DATA`` (default ``../shared/eval-data`` beside the
project), which holds ``wice/`` and ``conditionalqa/``.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag import PROJECT_ROOT, RagError, Settings

from . import metrics as M
from .bench.stats import percentile
from .paths import ARTICLE, DATASETS, WHITE_PAPER

log = logging.getLogger(__name__)

#: The data folder used when neither ``--data`` nor ``RAG_EVAL_DATA`` names one (and it exists).
DEFAULT_EVAL_DATA = PROJECT_ROOT.parent / "shared" / "eval-data"
#: Licensed data sets read from the data folder: sub-folder -> (name, where to get it).
EVAL_DATASETS = {
    "wice": ("WiCE", "https://github.com/ryokamoi/wice"),
    "conditionalqa": ("ConditionalQA", "https://haitian-sun.github.io/conditionalqa/"),
}
WICE_FILE = "wice_claim_dev_oracle_chunks.jsonl"
CONDITIONALQA_POOL = "evidence_pool_corpus.jsonl"
CONDITIONALQA_QUESTIONS = "conditionalqa_dev.jsonl"
DECLINE_TYPES = {"unanswerable", "off_topic", "injection"}
#: The parts of the team's question sets: ``dev`` for tuning prompts and thresholds, ``test`` only reported on.
SPLITS = ("dev", "test")
#: What ``--split`` accepts: one part, or ``all`` of them.
SPLIT_CHOICES = ("all", *SPLITS)
#: The suites whose items carry a ``split``.
SPLIT_SUITES = {"seed", "seed-default", "whitepaper", "conditionalqa"}
#: ConditionalQA's test part: a stratified sample of this many dev questions (``random.Random(0)``), the
#: fixed sample whose answers the README reports; its other questions are the dev part, for tuning.
CONDITIONALQA_TEST_SIZE = 100


@dataclass
class SuiteResult:
    name: str
    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    latencies: list[float] = field(default_factory=list)
    roc: tuple[list[float], list[float]] | None = None
    notes: list[str] = field(default_factory=list)
    #: The part of the question set that ran: ``all``, ``dev`` or ``test``.
    split: str = "all"
    #: The same metrics per split, when the rows hold both splits.
    by_split: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Missed answerable questions per reason (``metrics.MISS_REASONS``), for ``all`` rows and per split.
    misses_by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Share of answerable questions that abstained, for ``all`` rows and per split.
    wrong_refusals: dict[str, float] = field(default_factory=dict)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def select_split(items: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The items of one split (``dev`` or ``test``), or all of them for ``all``."""
    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}")
    return list(items) if split == "all" else [it for it in items if it.get("split") == split]


class EvalDataError(RagError):
    """A licensed evaluation data set is not in the data folder (the message is one line)."""


def eval_data_dir(settings: Settings | None = None) -> Path:
    """The data folder: ``settings.eval_data`` (``--data`` / ``RAG_EVAL_DATA``), else ``DEFAULT_EVAL_DATA``."""
    configured = (settings if settings is not None else Settings.from_env()).eval_data
    return Path(configured).expanduser() if configured else DEFAULT_EVAL_DATA


def eval_data_file(dataset: str, filename: str, settings: Settings | None = None) -> Path:
    """A file of a licensed data set, or ``EvalDataError`` saying where it was looked for and where to get it."""
    configured = (settings if settings is not None else Settings.from_env()).eval_data
    folder = eval_data_dir(settings) / dataset
    path = folder / filename
    if not path.is_file():
        name, url = EVAL_DATASETS[dataset]
        origin = "given by --data or RAG_EVAL_DATA" if configured else "the default; set --data DIR or RAG_EVAL_DATA"
        raise EvalDataError(
            f"{name} data not found: looked for {filename} in {folder} ({origin}); "
            f"get {name} from {url} and put it in a {dataset}/ folder inside the data folder "
            "(see docs/data-and-licences.md)"
        )
    return path


def _require(path: Path) -> None:
    if not path.exists():
        raise EvalDataError(f"{path} is missing from the project: restore it from version control")


def _eval_settings(base: Settings, suite: str) -> Settings:
    return base.replace(index_dir=base.cache_dir / "eval-index" / suite)


# ----- question-answering suites ------------------------------------------------------------------


def run_qa_suite(
    name: str, items: list[dict], settings: Settings, sources: list[Path], limit: int | None, split: str = "all"
) -> SuiteResult:
    """Ask every question of ``split`` through ``ask()`` and score answers, citations, abstention and faithfulness."""
    from rag import Assistant

    items = select_split(items, split)
    for s in sources:
        _require(s)
    assistant = Assistant(settings)
    try:
        report = assistant.index(sources, prune=True, progress=True)
    except RagError as exc:  # the suite's own index, built with other settings: build it again
        log.info("rebuilding the %s index: %s", name, exc)
        report = assistant.index(sources, rebuild=True, progress=True)
    log.info("index for %s: %s", name, report.summary().splitlines()[-1])
    t0 = time.perf_counter()
    # Models loaded and every window's KV state computed (or loaded) before the clock of any question starts.
    log.info("warm-up for %s: %s in %.1fs", name, assistant.warm_up(), time.perf_counter() - t0)
    if limit:
        items = items[:limit]
    rows = []
    for item in tqdm(items, desc=f"{name}: questions", unit="q"):
        rows.append(_score_qa(assistant, item))
    return qa_result(name, rows, split)


def _score_qa(assistant, item: dict) -> dict[str, Any]:
    t0 = time.perf_counter()
    answer = assistant.ask(item["question"])
    latency = time.perf_counter() - t0
    should_decline = item["type"] in DECLINE_TYPES
    supporting = item.get("supporting") or []
    evidence = supporting + (item.get("also_supporting") or [])
    facts_ok, missing = M.facts_present(answer.text, item.get("required_facts") or [])
    cited_ok = M.cites_evidence(answer.citations, evidence, item)
    # Retrieval quality, independent of the answer: where do the passages holding the evidence rank?
    ranked = answer.retrieved[:10] if supporting else []
    relevant_ranks = [i for i, p in enumerate(ranked) if M.holds_evidence(p.text, p.source, evidence, item)]
    ranked_ids = list(range(len(ranked)))
    relevant = set(relevant_ranks)
    if should_decline:
        correct = answer.abstained
        why = "" if correct else "answered a question it should decline"
    else:
        correct = (not answer.abstained) and facts_ok and cited_ok
        why = (
            "wrongly declined"
            if answer.abstained
            else "; ".join(
                x
                for x in [
                    f"missing facts: {', '.join(missing)}" if not facts_ok else "",
                    "no citation contains the supporting sentence" if not cited_ok else "",
                ]
                if x
            )
        )
    sents = [s for s in answer.sentences if s.support is not None]
    return {
        "id": item["id"],
        "type": item["type"],
        "split": item.get("split"),
        "question": item["question"],
        "answer": answer.text,
        "abstained": answer.abstained,
        "reason": answer.reason.value if answer.reason is not None else None,
        # The reason the draft failed when the answer is a quoted passage sentence instead (rag.fallback).
        "fallback_from": answer.stats.fallback_from,
        "window": answer.stats.window,
        "correct": bool(correct),
        "why": why,
        "reference": item.get("reference", ""),
        "supporting": supporting,
        "citations": [{"n": c.n, "title": c.title, "quote": c.quote} for c in answer.citations],
        "sentences": [s.to_dict() for s in answer.sentences],
        "f1": M.token_f1(answer.text, item["reference"]) if item.get("reference") and not answer.abstained else 0.0,
        "cited_supporting": cited_ok,
        "facts_ok": facts_ok,
        "recall@4": M.recall_at_k(relevant, ranked_ids, 4) if supporting else None,
        "recall@10": M.recall_at_k(relevant, ranked_ids, 10) if supporting else None,
        "mrr": M.reciprocal_rank(relevant, ranked_ids) if supporting else None,
        "ndcg@10": M.ndcg_at_k(relevant, ranked_ids, 10) if supporting else None,
        "faithfulness": (sum(1 for s in sents if s.supported) / len(sents)) if sents else None,
        "latency_s": latency,
        "first_token_s": answer.stats.first_token_s,
        "prompt_tokens": answer.stats.prompt_tokens,
        # The judge's P(the answer answers the question), also kept when it led to a refusal.
        "relevance": answer.stats.relevance,
    }


def qa_result(name: str, rows: list[dict], split: str = "all") -> SuiteResult:
    """Metrics of scored question rows, per split too when both are present, and the misses by reason."""
    parts = {"all": rows}
    if all(any(r.get("split") == s for r in rows) for s in SPLITS):
        parts.update({s: [r for r in rows if r.get("split") == s] for s in SPLITS})
    return SuiteResult(
        name,
        qa_metrics(rows),
        rows,
        [r["latency_s"] for r in rows],
        split=split,
        by_split={s: qa_metrics(parts[s]) for s in SPLITS if s in parts},
        misses_by_reason={p: M.misses_by_reason(sub) for p, sub in parts.items()},
        wrong_refusals={p: M.wrong_refusals(sub) for p, sub in parts.items()},
    )


def qa_metrics(rows: list[dict]) -> dict[str, float]:
    """The question-answering metrics of scored rows (see ``_score_qa``)."""
    answerable = [r for r in rows if r["type"] not in DECLINE_TYPES]
    decline = [r for r in rows if r["type"] in DECLINE_TYPES]
    answered = [r for r in answerable if not r["abstained"]]
    m: dict[str, float] = {
        "questions": len(rows),
        "answerable_correct": M.mean(r["correct"] for r in answerable) if answerable else float("nan"),
        "declined_correctly": M.mean(r["correct"] for r in decline) if decline else float("nan"),
        "answer_f1": M.mean(r["f1"] for r in answerable),
        "required_facts": M.mean(r["facts_ok"] for r in answerable),
        "cited_supporting_sentence": M.mean(r["cited_supporting"] for r in answerable),
        "retrieval_recall@4": M.mean(r["recall@4"] for r in answerable),
        "retrieval_recall@10": M.mean(r["recall@10"] for r in answerable),
        "retrieval_mrr": M.mean(r["mrr"] for r in answerable),
        "retrieval_ndcg@10": M.mean(r["ndcg@10"] for r in answerable),
        "faithfulness": M.mean(r["faithfulness"] for r in answered),
        "latency_p50_s": percentile([r["latency_s"] for r in rows], 50),
        "latency_p95_s": percentile([r["latency_s"] for r in rows], 95),
    }
    for t in sorted({r["type"] for r in decline}):
        sub = [r for r in decline if r["type"] == t]
        m[f"declined_{t}"] = M.mean(r["correct"] for r in sub)
    m.update(M.abstention_scores([r["type"] in DECLINE_TYPES for r in rows], [r["abstained"] for r in rows]))
    # ALCE citation recall: a sentence counts when the union of its cited passages supports it (judge in ask()).
    judged = [s for r in answered for s in r["sentences"] if s["support"] is not None]
    m["citation_recall_alce"] = M.mean(1.0 if s["supported"] else 0.0 for s in judged) if judged else float("nan")
    return m


def run_seed(settings: Settings, limit: int | None = None, split: str = "all") -> SuiteResult:
    items = read_jsonl(DATASETS / "seed.jsonl")
    # The article alone: its questions (and which of them must be declined) were written for it.
    return run_qa_suite("seed", items, _eval_settings(settings, "seed"), [ARTICLE], limit, split)


def run_seed_default(settings: Settings, limit: int | None = None, split: str = "all") -> SuiteResult:
    items = read_jsonl(DATASETS / "seed.jsonl")
    # The same questions over the default corpus: the labels hold there too (the White Paper summary, from
    # a year before the article, answers none of the questions to decline), and every question about
    # "the article" or "the author" must now find it among two documents.
    return run_qa_suite("seed-default", items, _eval_settings(settings, "seed-default"), [ARTICLE, WHITE_PAPER], limit, split)


def run_whitepaper(settings: Settings, limit: int | None = None, split: str = "all") -> SuiteResult:
    items = read_jsonl(DATASETS / "whitepaper.jsonl")
    # The default corpus: the article and the White Paper summary together.
    return run_qa_suite("whitepaper", items, _eval_settings(settings, "whitepaper"), [ARTICLE, WHITE_PAPER], limit, split)


# ----- ConditionalQA ------------------------------------------------------------------------------


def conditionalqa_documents(settings: Settings | None = None) -> tuple[list, dict[str, tuple[str, int, int]]]:
    """One document per GOV.UK page from the evidence pool; returns docs and ev-id -> (doc_id, start, end).

    The pool is read from the data folder of ``settings`` (default: ``Settings.from_env()``).
    """
    from rag import Document, doc_id_for

    pool = eval_data_file("conditionalqa", CONDITIONALQA_POOL, settings)
    pages: dict[str, list[dict]] = defaultdict(list)
    for row in read_jsonl(pool):
        pages[row["url"]].append(row)
    docs, spans = [], {}
    for url, rows in pages.items():
        parts, offsets, pos = [], [], 0
        for r in rows:
            t = " ".join(r["text"].split())
            parts.append(t)
            offsets.append((r["_id"], pos, pos + len(t)))
            pos += len(t) + 1
        text = "\n".join(parts)
        doc = Document(doc_id=doc_id_for(text), source=url, title=url.rsplit("/", 1)[-1].replace("-", " "), text=text)
        docs.append(doc)
        for ev, s, e in offsets:
            spans[ev] = (doc.doc_id, s, e)
    return docs, spans


def stratified_sample(questions: list[dict], n: int, seed: int = 0) -> set[str]:
    """Ids of ``n`` of ``questions`` (ConditionalQA rows) drawn at random, unanswerable ones in proportion."""
    rng = random.Random(seed)
    unans = [q["id"] for q in questions if q["not_answerable"]]
    ans = [q["id"] for q in questions if not q["not_answerable"]]
    n_un = max(1, round(n * len(unans) / len(questions))) if questions else 0
    return set(rng.sample(unans, min(n_un, len(unans))) + rng.sample(ans, max(0, min(n - n_un, len(ans)))))


def conditionalqa_split(questions: list[dict]) -> dict[str, str]:
    """Question id -> ``test`` (the fixed sample of ``CONDITIONALQA_TEST_SIZE``) or ``dev`` (the rest)."""
    test = stratified_sample(questions, CONDITIONALQA_TEST_SIZE)
    return {q["id"]: "test" if q["id"] in test else "dev" for q in questions}


def run_conditionalqa(settings: Settings, limit: int | None = None, answer: bool = True, split: str = "all") -> SuiteResult:
    """Retrieval on every dev question; answers on ``split``'s questions.

    ``split="all"`` answers all of them, or with ``limit`` a stratified sample of ``limit`` (``--limit 100``
    is the test part); ``test`` answers the fixed test part; ``dev`` the other questions (with ``limit``, a
    stratified sample of them), for tuning.
    """
    from rag import Assistant, Indexer, get_embedder

    if split not in SPLIT_CHOICES:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLIT_CHOICES)}")
    questions_file = eval_data_file("conditionalqa", CONDITIONALQA_QUESTIONS, settings)
    docs, spans = conditionalqa_documents(settings)
    settings = _eval_settings(settings, "conditionalqa")
    t0 = time.perf_counter()
    indexer = Indexer(settings, get_embedder(settings))
    try:
        indexer.index_documents(docs, progress=True)
    except RagError as exc:  # the suite's own index, built by another version or with other settings
        log.info("rebuilding the conditionalqa index: %s", exc)
        indexer.index_documents(docs, progress=True, rebuild=True)
    assistant = Assistant(settings)
    index_s = time.perf_counter() - t0
    questions = read_jsonl(questions_file)
    part_of = conditionalqa_split(questions)
    # Retrieval is measured on every question; answers (slow on a CPU) on the questions of ``split``.
    pool = [q for q in questions if split == "all" or part_of[q["id"]] == split]
    to_answer = stratified_sample(pool, limit) if limit else {q["id"] for q in pool}
    rows = []
    for q in tqdm(questions, desc="conditionalqa", unit="q"):
        query = f"{q['scenario']} {q['question']}".strip()
        gold = {ev for ev in q.get("gold_evidence_ids") or [] if ev in spans}
        passages = assistant.search(query[: settings.max_question_chars], k=10)

        def hits(p) -> set[str]:
            return {ev for ev in gold if spans[ev][0] == p.chunk.doc_id and p.chunk.start <= spans[ev][1] < p.chunk.end}

        ranked_hits = [hits(p) for p in passages]
        recall = {k: (len(set().union(*ranked_hits[:k])) / len(gold) if gold else None) for k in (1, 4, 10)}
        first = next((i for i, h in enumerate(ranked_hits, 1) if h), None)
        rel = {i for i, h in enumerate(ranked_hits) if h}
        row = {
            "id": q["id"],
            "type": "unanswerable" if q["not_answerable"] else "answerable",
            "split": part_of[q["id"]],
            "question": query,
            "recall@1": recall[1],
            "recall@4": recall[4],
            "recall@10": recall[10],
            "mrr": (1.0 / first if first else 0.0) if gold else None,
            "ndcg@10": M.ndcg_at_k(rel, list(range(len(passages))), 10) if gold else None,
            "gold": [a["text"] for a in q.get("answers") or []],
        }
        if answer and q["id"] in to_answer:
            t1 = time.perf_counter()
            a = assistant.ask(query[: settings.max_question_chars])
            row.update(
                answer=a.text,
                abstained=a.abstained,
                reason=a.reason.value if a.reason is not None else None,
                fallback_from=a.stats.fallback_from,
                latency_s=time.perf_counter() - t1,
                em=M.best_over(row["gold"], a.text, M.exact_match) if not a.abstained else 0.0,
                f1=M.best_over(row["gold"], a.text, M.token_f1) if not a.abstained else 0.0,
                contains=M.best_over(row["gold"], a.text, M.contains_answer) if not a.abstained else 0.0,
            )
            # An answer without the gold answer counts as missing the asked fact (``metrics.miss_reason``).
            row["facts_ok"] = not a.abstained and M.gold_answered(a.text, row["gold"])
            row["correct"] = a.abstained if q["not_answerable"] else row["facts_ok"]
        rows.append(row)
    with_gold = [r for r in rows if r["recall@4"] is not None]
    m = {
        "questions": len(rows),
        "index_seconds": index_s,
        "documents": len(docs),
        "retrieval_recall@1": M.mean(r["recall@1"] for r in with_gold),
        "retrieval_recall@4": M.mean(r["recall@4"] for r in with_gold),
        "retrieval_recall@10": M.mean(r["recall@10"] for r in with_gold),
        "retrieval_mrr": M.mean(r["mrr"] for r in with_gold),
        "retrieval_ndcg@10": M.mean(r["ndcg@10"] for r in with_gold),
    }
    answered = [r for r in rows if "answer" in r]
    if answered:
        ans = [r for r in answered if r["type"] == "answerable"]
        yes_no = [r for r in ans if M.is_verdict_gold(r["gold"])]
        m.update(
            answer_em=M.mean(r["em"] for r in ans),
            answer_f1=M.mean(r["f1"] for r in ans),
            answer_contains_gold=M.mean(r["contains"] for r in ans),
            answer_gold=M.mean(r["facts_ok"] for r in ans),
            # The two kinds of question, apart: a yes/no one needs the verdict as the answer's first word.
            yes_no_questions=len(yes_no),
            answer_contains_gold_yes_no=M.mean(r["contains"] for r in yes_no),
            answer_contains_gold_span=M.mean(r["contains"] for r in ans if not M.is_verdict_gold(r["gold"])),
            yes_no_verdict_given=M.mean(M.opens_with_verdict(r["answer"]) for r in yes_no if not r["abstained"]),
            answered_questions=len(answered),
            latency_p50_s=percentile([r["latency_s"] for r in answered], 50),
            latency_p95_s=percentile([r["latency_s"] for r in answered], 95),
        )
        m.update(M.abstention_scores([r["type"] == "unanswerable" for r in answered], [r["abstained"] for r in answered]))
    return SuiteResult(
        "conditionalqa",
        m,
        rows,
        [r["latency_s"] for r in answered],
        split=split,
        misses_by_reason={"all": M.misses_by_reason(answered)} if answered else {},
        wrong_refusals={"all": M.wrong_refusals(answered)} if answered else {},
    )


# ----- the judge against WiCE ---------------------------------------------------------------------


def wice_claims(
    limit: int | None = None, seed: int = 0, settings: Settings | None = None
) -> list[tuple[str, str, int, list[str]]]:
    """(claim_id, claim, label, chunk texts) with label 1 = supported (WiCE's ``label`` 0).

    Read from the data folder of ``settings`` (default: ``Settings.from_env()``).
    """
    by_claim: dict[str, list[dict]] = defaultdict(list)
    for row in read_jsonl(eval_data_file("wice", WICE_FILE, settings)):
        by_claim[row["claim_id"]].append(row)
    claims = [(cid, rows[0]["answer"], 1 if rows[0]["label"] == 0 else 0, [r["context"] for r in rows]) for cid, rows in by_claim.items()]
    claims.sort(key=lambda c: c[0])
    if limit and limit < len(claims):
        rng = random.Random(seed)
        pos = [c for c in claims if c[2] == 1]
        neg = [c for c in claims if c[2] == 0]
        n_pos = round(limit * len(pos) / len(claims))
        claims = sorted(rng.sample(pos, n_pos) + rng.sample(neg, limit - n_pos), key=lambda c: c[0])
    return claims


def run_judge(settings: Settings, limit: int | None = None) -> SuiteResult:
    from rag import Judge

    claims = wice_claims(limit, settings=settings)  # before loading the model: missing data fails fast
    judge = Judge.from_settings(settings)
    rows, labels, scores, secs = [], [], [], []
    # Scores are kept per claim in the cache folder, so an interrupted run resumes where it stopped.
    cache = settings.cache_dir / "eval-judge" / f"wice-{judge.fingerprint}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = {r["id"]: r for r in read_jsonl(cache)} if cache.exists() else {}
    for cid, claim, label, chunks in tqdm(claims, desc="judge: WiCE claims", unit="claim"):
        t0 = time.perf_counter()
        if cid in done and len(done[cid]["rows"]) == len(chunks):
            per_row, dt = done[cid]["rows"], done[cid]["seconds"]
        else:
            per_row = [judge.support(claim, c) for c in chunks]
            dt = time.perf_counter() - t0
            with open(cache, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": cid, "rows": per_row, "seconds": dt}) + "\n")
        score = max(per_row) if per_row else 0.0
        rows.append({"id": cid, "claim": claim, "label": label, "score": score, "rows": per_row, "seconds": dt,
                     "correct": (score >= judge.threshold) == bool(label)})
        labels.append(label)
        scores.append(score)
        secs.append(dt / max(1, len(chunks)))
    best_t, best_bacc = M.best_threshold(labels, scores)
    # Honest estimate: choose the threshold on one half, measure on the other, and swap.
    idx = list(range(len(labels)))
    random.Random(1).shuffle(idx)
    halves = [idx[: len(idx) // 2], idx[len(idx) // 2 :]]
    cv = []
    for a, b in (halves, halves[::-1]):
        t, _ = M.best_threshold([labels[i] for i in a], [scores[i] for i in a])
        cv.append(M.balanced_accuracy([labels[i] for i in b], [scores[i] for i in b], t))
    m = {
        "claims": len(rows),
        "pairs": sum(len(r["rows"]) for r in rows),
        "roc_auc": M.roc_auc(labels, scores),
        "balanced_accuracy_at_default": M.balanced_accuracy(labels, scores, judge.threshold),
        "default_threshold": judge.threshold,
        "best_threshold_on_this_set": best_t,
        "balanced_accuracy_at_best_threshold": best_bacc,
        "balanced_accuracy_2fold_cv": M.mean(cv),
        "seconds_per_pair": M.mean(secs),
    }
    notes = [
        "Labels: 1 = supported (WiCE label 0); partially or not supported (WiCE label 1) count as not supported (0).",
        "best_threshold_on_this_set is tuned on these claims; balanced_accuracy_2fold_cv picks the threshold on one "
        "half and measures on the other (the honest figure).",
    ]
    return SuiteResult("judge", m, rows, secs, roc=M.roc_curve(labels, scores), notes=notes)


def verdict_pairs(limit: int | None = None) -> list[dict[str, Any]]:
    """The pairs of ``eval/datasets/verdicts.jsonl`` (the first ``limit`` of them; default all 130)."""
    pairs = read_jsonl(DATASETS / "verdicts.jsonl")
    return pairs[:limit] if limit else pairs


def verdict_rows(pairs: list[dict[str, Any]], settings: Settings, judge: Any = None) -> list[dict[str, Any]]:
    """The verdict ``judge`` (default: the real judge of ``settings``) gives each pair, its reply read as
    one supported sentence.

    Each row: ``id``, ``question``, ``reply``, ``expected`` ("Yes"/"No"), ``given`` ("Yes", "No" or None)
    ``outcome`` ("right", "wrong" or "none") and ``correct`` (None when no verdict was given).
    """
    from rag import Sentence, VerdictLead

    if judge is None:
        from rag import Judge

        judge = Judge.from_settings(settings)
    lead = VerdictLead.from_settings(settings)
    rows = []
    for p in tqdm(pairs, desc="verdicts: pairs", unit="pair"):
        t0 = time.perf_counter()
        given = lead.verdict(p["question"], [Sentence(p["reply"], (1,), 0.9, True)], judge)
        expected = p["verdict"].title()
        outcome = "none" if given is None else "right" if given == expected else "wrong"
        rows.append({"id": p["id"], "question": p["question"], "reply": p["reply"], "expected": expected,
                     "given": given, "outcome": outcome, "correct": None if given is None else outcome == "right",
                     "why": f"{given} given, {expected} expected", "seconds": time.perf_counter() - t0})
    return rows


def verdict_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Counts and rates of right, wrong and missing verdicts over ``verdict_rows``' rows."""
    n = len(rows)
    count = {k: sum(r["outcome"] == k for r in rows) for k in ("right", "wrong", "none")}
    given = count["right"] + count["wrong"]
    return {
        "pairs": n,
        "right": count["right"],
        "wrong": count["wrong"],
        "no_verdict": count["none"],
        "right_rate": count["right"] / n if n else 0.0,
        "wrong_rate": count["wrong"] / n if n else 0.0,
        "verdict_given_rate": given / n if n else 0.0,
        "precision_of_given": count["right"] / given if given else 0.0,
    }


def run_verdicts(settings: Settings, limit: int | None = None) -> SuiteResult:
    rows = verdict_rows(verdict_pairs(limit), settings)
    m = verdict_metrics(rows)
    notes = [
        "Each reply is read as one supported sentence; the verdict is what opens the checked answer "
        "(rag/verdict.py). A wrong verdict is worse than none: none leaves the answer as it was.",
        "Wrong pairs: " + ("; ".join(f"{r['id']} ({r['expected']} expected, {r['given']} given)" for r in rows
                                     if r["outcome"] == "wrong") or "none") + ".",
    ]
    return SuiteResult("verdicts", m, rows, [r["seconds"] for r in rows], notes=notes)


SUITES = {"seed": run_seed, "seed-default": run_seed_default, "whitepaper": run_whitepaper, "conditionalqa": run_conditionalqa, "judge": run_judge,
          "verdicts": run_verdicts}
