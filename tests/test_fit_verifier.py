"""training/fit_verifier.py: the served-metrics report and the fixed threshold rule, on rows known by hand."""

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from bot.config import PROJECT_ROOT
from bot.verifier import AnswerVerifier, span_features
from training.fit_verifier import build_mix, choose_threshold, main, report, verifier_scores
from training.squad_data import DEFAULT_SQUAD_PATH


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


def _served_row(half: str, answerable: bool, reader_score: float, question_word: str) -> dict:
    """A rows.jsonl row as ``ask`` writes it: the reader's best span and what the verifier reads of it."""
    passage = "The castle was built by King Arthur in 1120. It burned down in 1402."
    inputs = {
        "question": f"Who {question_word} the castle?",
        "answer": "King Arthur",
        "reader_score": reader_score,
        "sentence": "The castle was built by King Arthur in 1120.",
        "passage": passage,
        "other_scores": [0.1],
    }
    return {
        "question": inputs["question"],
        "golds": ["King Arthur"] if answerable else [],
        "kind": "answerable" if answerable else "perturbed",
        "half": half,
        "text": "King Arthur",
        "reader_score": reader_score,
        "f1": 1.0 if answerable else 0.0,
        "inputs": inputs,
        "candidates": [],
    }


def test_baseline_is_reported_on_the_same_rows(tmp_path):
    """``--baseline`` scores an existing verifier (the shipped one) on the refit's rows, at its own threshold and
    the new one, so a refit can be told apart from a mere move along the same trade-off."""
    rows = []
    for half in ("fit", "report"):
        for i in range(6):
            rows.append(_served_row(half, True, 0.55 + 0.07 * i, "built"))
            rows.append(_served_row(half, False, 0.35 + 0.07 * i, "destroyed"))
        rows.append({**_served_row(half, False, 0.0, "owns"), "inputs": None, "text": None})
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    shipped = PROJECT_ROOT / "models" / "reader" / "verifier.json"
    out = tmp_path / "verifier.json"
    app = typer.Typer()
    app.command()(main)
    result = CliRunner().invoke(
        app, ["--out", str(out), "--work", str(tmp_path), "--reuse-rows", "--baseline", str(shipped)]
    )
    assert result.exit_code == 0, result.output
    fitted = json.loads(out.read_text(encoding="utf-8"))
    baseline = AnswerVerifier.from_file(shipped)
    report_rows = [r for r in rows if r["half"] == "report"]
    expected = report(report_rows, verifier_scores(report_rows, baseline), baseline.threshold)
    assert fitted["metrics"]["report"][f"baseline {shipped} at {baseline.threshold}"] == expected
    assert f"baseline {shipped} at {fitted['threshold']}" in fitted["metrics"]["fit"]
    served = verifier_scores(report_rows, baseline)
    with_span = np.array([span_features(**r["inputs"]) for r in report_rows[:-1]])
    assert served[:-1] == pytest.approx(baseline.probabilities(with_span))  # these "Who" answers pass the shape rule
    assert served[-1] == 0.0  # no span: nothing to be confident about


@pytest.mark.skipif(not DEFAULT_SQUAD_PATH.exists(), reason=f"SQuAD data not at {DEFAULT_SQUAD_PATH}")
def test_antonym_questions_are_added_without_changing_the_other_draws():
    """``--antonyms-per-half`` adds antonym-swapped questions and leaves the shipped fit's questions as they were
    (so the shipped verifier can be scored on a mix that also holds them, ``--baseline``)."""
    corpus, plain = build_mix(DEFAULT_SQUAD_PATH, 13, 40, 40, antonyms_per_half=0)
    same_corpus, with_antonyms = build_mix(DEFAULT_SQUAD_PATH, 13, 40, 40, antonyms_per_half=10)
    assert same_corpus == corpus
    added = [q for q in with_antonyms if q["kind"] == "antonym"]
    assert [q for q in with_antonyms if q["kind"] != "antonym"] == plain
    assert len(added) == 20 and {q["half"] for q in added} == {"fit", "report"}
    assert not any(q["golds"] for q in added)
    asked = {q["question"] for q in plain}
    assert not asked & {q["question"] for q in added}  # each is a changed question, not one already asked
