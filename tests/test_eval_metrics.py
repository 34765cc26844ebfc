from __future__ import annotations

import json
import math

import pytest

from eval import metrics as M
from eval.run import check_thresholds, compare


def test_token_f1_and_exact_match_follow_squad_normalisation():
    assert M.exact_match("The Fund.", "fund") == 1.0
    assert M.token_f1("one third of pools", "a third of swimming pools") == pytest.approx(2 * (3 / 4) * (3 / 4) / 1.5)
    assert M.token_f1("", "x") == 0.0
    assert M.token_f1("pools [1] closing", "pools closing") == 1.0


def test_required_facts_accept_any_alternative_and_report_the_missing():
    ok, missing = M.facts_present("One third of pools face closure.", [["one third", "1/3"], ["energy"]])
    assert not ok and missing == ["energy"]
    assert M.facts_present("A third… due to energy bills", [["a third"], ["energy"]])[0]


def test_a_yes_or_no_fact_counts_only_as_the_answers_first_word():
    facts = [["No"], ["criteria"]]
    assert M.facts_present("No — leisure centres don't meet the criteria [3].", facts)[0]
    assert not M.facts_present("Leisure centres do not meet the criteria [3].", facts)[0]
    assert not M.facts_present("Nobody meets the criteria [3].", facts)[0]
    assert M.facts_present("Yes, one third of pools [5].", [["Yes"], ["third"]])[0]


def test_a_gold_answer_is_contained_as_whole_words_and_a_verdict_only_as_the_first_word():
    assert M.contains_answer("It costs £11,222 [2].", "£11,222")
    assert M.contains_answer("You must tell them within 10 days.", "within 10 days")
    assert not M.contains_answer("You must tell them within 100 days.", "within 10 days")
    assert M.contains_answer("No. You cannot claim it [1].", "no")
    assert M.contains_answer("Yes, if you were born before 1960.", "yes")
    assert not M.contains_answer("You do not qualify, and there is no appeal.", "no")
    assert not M.contains_answer("I know nothing about that.", "no")
    assert not M.contains_answer("Anything", "")


def test_gold_answered_accepts_half_the_words_of_a_span_but_never_of_a_verdict():
    assert M.gold_answered("The payment is 25% of the rent.", ["25%"])
    assert M.gold_answered("He must apply within ten days of the change.", ["within 10 days of the change"])
    assert not M.gold_answered("No appeal is possible.", ["yes"])
    assert not M.gold_answered("There is no limit.", ["no"])
    assert M.gold_answered("No.", ["no"])
    assert not M.gold_answered("Something else entirely.", [])


def test_quote_containment_ignores_whitespace_and_quote_styles():
    assert M.quote_contains("He said   ‘a small\nfraction’ of it.", "‘a small fraction’")


def test_ranking_metrics():
    ranked = ["a", "b", "c", "d"]
    assert M.recall_at_k({"b", "z"}, ranked, 2) == 0.5
    assert M.reciprocal_rank({"c"}, ranked) == pytest.approx(1 / 3)
    assert M.ndcg_at_k({"a"}, ranked, 10) == 1.0
    assert M.ndcg_at_k({"b"}, ranked, 10) == pytest.approx(1 / math.log2(3))


def test_abstention_scores():
    s = M.abstention_scores([True, True, False, False], [True, False, True, False])
    assert s == {"abstention_precision": 0.5, "abstention_recall": 0.5, "wrong_refusal_rate": 0.5}


def test_roc_auc_and_balanced_accuracy():
    labels = [1, 1, 0, 0]
    assert M.roc_auc(labels, [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert M.roc_auc(labels, [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert M.balanced_accuracy(labels, [0.9, 0.4, 0.2, 0.6], 0.5) == 0.5
    t, bacc = M.best_threshold(labels, [0.9, 0.8, 0.2, 0.1])
    assert bacc == 1.0 and 0.2 < t <= 0.8
    fpr, tpr = M.roc_curve(labels, [0.9, 0.8, 0.2, 0.1])
    assert fpr[0] == 0 and tpr[-1] == 1




def test_fail_under_flags_low_and_missing_metrics():
    m = {"a": 0.95, "b": 0.5, "c": float("nan")}
    assert check_thresholds(m, ["a=0.9"]) == []
    assert len(check_thresholds(m, ["b=0.9", "c=0.1", "missing=0"])) == 3
    with pytest.raises(ValueError):
        check_thresholds(m, ["a"])


def test_compare_prints_deltas(tmp_path):
    other = tmp_path / "metrics.json"
    other.write_text(json.dumps({"metrics": {"a": 0.5}}))
    out = compare({"a": 0.75}, other)
    assert "+0.250" in out


def test_a_citation_holds_the_evidence_by_a_supporting_sentence_or_the_cited_documents_card():
    from types import SimpleNamespace as C

    item = {"source": ["paper.txt"], "required_facts": [["2 February"], ["2022"]]}
    card = C(quote='About this document: "Paper", a policy paper, published by DLUHC on 2 February 2022.', source="index/sources/paper.txt")
    body = C(quote="Mission Three: By 2030, local public\ntransport will improve.", source="index/sources/paper.txt")
    assert M.cites_evidence([body], ["local public transport will improve"], item)
    assert not M.cites_evidence([body], ["pride in place"], item)
    assert M.cites_evidence([card], ["Published 2 February 2022"], item)
    # The card of another document, or a card without the asked fact, is no evidence.
    assert not M.cites_evidence([C(quote=card.quote, source="other.txt")], ["Published 2 February 2022"], item)
    assert not M.cites_evidence([card], ["x"], {"source": ["paper.txt"], "required_facts": [["Luke Bevir"]]})
    assert not M.cites_evidence([card], ["x"], {"source": ["paper.txt"], "required_facts": []})


def test_a_retrieved_passage_holds_the_evidence_by_the_same_rule_as_a_citation():
    item = {"source": ["paper.txt"], "required_facts": [["DLUHC"]]}
    card = 'About this document: "Paper", a policy paper, published by DLUHC on 2 February 2022.'
    assert M.holds_evidence(card, "sources/paper.txt", ["Department for Levelling Up"], item)
    assert not M.holds_evidence("DLUHC is mentioned here.", "sources/paper.txt", ["Department for Levelling Up"], item)
    assert M.holds_evidence("The Department for Levelling Up said so.", "x.txt", ["Department for Levelling Up"], item)


def test_a_question_is_yes_no_when_every_gold_answer_is_a_verdict():
    assert M.is_verdict_gold(["Yes"]) and M.is_verdict_gold(["yes", "no"])
    assert not M.is_verdict_gold(["yes", "within 10 days"])
    assert not M.is_verdict_gold([])
    assert M.opens_with_verdict("No. You cannot claim it [1].")
    assert not M.opens_with_verdict("Nobody can claim it [1].")
