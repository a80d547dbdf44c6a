"""training/fit_verifier.py: the served-metrics report and the fixed threshold rule, on rows known by hand."""

import numpy as np

from training.fit_verifier import choose_threshold, report


def _rows() -> list[dict]:
    answerable = [{"golds": ["x"], "f1": 1.0, "kind": "answerable"} for _ in range(4)]
    unanswerable = [{"golds": [], "f1": 0.0, "kind": "cut"} for _ in range(4)]
    return answerable + unanswerable


def test_report_scores_what_serving_would_do():
    scores = np.array([0.9, 0.8, 0.3, 0.05, 0.6, 0.2, 0.1, 0.02])
    out = report(_rows(), scores, threshold=0.25)
    assert out["answerable_f1"] == 75.0  # the fourth answerable question is refused
    assert out["no_answer_accuracy_unanswerable"] == 75.0 and out["refused_cut_pct"] == 75.0
    assert out["auroc_all"] == 75.0  # the right 0.9, 0.8, 0.3, 0.05 beat 4, 4, 3 and 1 of the 4 wrong ones


def test_threshold_rule_spends_at_most_the_f1_budget():
    verifier = np.array([0.9, 0.8, 0.3, 0.05, 0.6, 0.2, 0.1, 0.02])
    reader = np.full(8, 0.9)  # the reader alone answers everything: F1 100 on the answerable half
    assert choose_threshold(_rows(), verifier, reader, max_f1_drop=0.0) == 0.05
    assert choose_threshold(_rows(), verifier, reader, max_f1_drop=25.0) == 0.3
