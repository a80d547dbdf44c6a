"""``qabot eval``: score the whole service (retrieval + reader + no-answer rule) on a SQuAD-format file.

Answerable questions are scored with the official SQuAD v1.1 exact match and token F1 (best over the gold
answers). Unanswerable questions (``is_impossible: true`` or no answers, SQuAD 2.0 style) count as correct
only when the service says the article doesn't say. Retrieval recall@k asks whether any gold answer text
occurs in the passages handed to the reader.

Confidence is judged among the answered questions, where "right" means token F1 >= 0.5 (any answer to an
unanswerable question is wrong): AUROC is the chance that a right answer's confidence beats a wrong one's
(50 = useless, 100 = perfect ranking); ECE is the mean gap between confidence and accuracy over ten equal-width
confidence bins (0 = the confidence reads as a probability).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from haystack import Document

from bot.answer import Answer
from bot.answering import QAService
from bot.errors import QabotError
from bot.squad_metrics import best_over_golds, exact_match, token_f1


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    golds: tuple[str, ...]  # empty for an unanswerable question


@dataclass
class EvalReport:
    answerable: int = 0
    unanswerable: int = 0
    exact_match: float = 0.0  # over answerable questions, percent
    f1: float = 0.0  # over answerable questions, percent
    no_answer_accuracy: float = 0.0  # answered-vs-abstained decision over all questions, percent
    abstained_on_answerable: int = 0
    answered_unanswerable: int = 0
    retrieval_recall: float = 0.0  # percent of answerable questions whose gold text was retrieved
    retrieval_top_k: int = 0
    refused_unanswerable: float = 0.0  # percent of unanswerable questions the service refused
    answered: int = 0
    confidence_auroc: float = float("nan")  # right vs wrong among answered, percent
    calibration_error: float = float("nan")  # ECE among answered, percent
    per_question: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "per_question"}


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a SQuAD v1.1/v2.0 JSON file into a flat list of questions."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        return [
            EvalQuestion(
                qid=str(qa["id"]),
                question=qa["question"],
                golds=() if qa.get("is_impossible") else tuple(a["text"] for a in qa.get("answers", [])),
            )
            for article in data
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise QabotError(f"cannot read SQuAD-format questions from {path}: {error}") from error


def gold_retrieved(passages: list[Document], golds: tuple[str, ...]) -> bool:
    """Retrieval recall's rule: some gold answer text occurs in some passage handed to the reader."""
    return any(gold in (doc.content or "") for doc in passages for gold in golds)


def evaluate(service: QAService, questions: list[EvalQuestion]) -> EvalReport:
    """Ask every question through the real service and score the answers."""
    report = EvalReport(retrieval_top_k=service.settings.retrieval.top_k)
    em_sum = f1_sum = recall_hits = decision_hits = 0.0
    for item in questions:
        answer, passages = service.answer_with_passages(item.question)
        row = _score(item, answer)
        if item.golds:
            report.answerable += 1
            em_sum += row["em"]
            f1_sum += row["f1"]
            retrieved = gold_retrieved(passages, item.golds)
            recall_hits += retrieved
            row["retrieved"] = retrieved
            report.abstained_on_answerable += not answer.answered
        else:
            report.unanswerable += 1
            report.answered_unanswerable += answer.answered
        decision_hits += answer.answered == bool(item.golds)
        report.per_question.append(row)
    if report.answerable:
        report.exact_match = 100 * em_sum / report.answerable
        report.f1 = 100 * f1_sum / report.answerable
        report.retrieval_recall = 100 * recall_hits / report.answerable
    if questions:
        report.no_answer_accuracy = 100 * decision_hits / len(questions)
    if report.unanswerable:
        report.refused_unanswerable = 100 * (1 - report.answered_unanswerable / report.unanswerable)
    answered = [row for row in report.per_question if row["prediction"] is not None]
    report.answered = len(answered)
    scores = np.array([row["score"] for row in answered], dtype=float)
    right = np.array([row.get("f1", 0.0) >= 0.5 for row in answered], dtype=float)
    report.confidence_auroc = 100 * auroc(scores, right)
    report.calibration_error = 100 * expected_calibration_error(scores, right)
    return report


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half; nan unless both kinds are present."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if not len(positives) or not len(negatives):
        return float("nan")
    above = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(above / (len(positives) * len(negatives)))


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by how many fall in each."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    if not len(scores):
        return float("nan")
    which = np.minimum((scores * bins).astype(int), bins - 1)
    gaps = [
        abs(scores[which == b].mean() - labels[which == b].mean()) * (which == b).sum()
        for b in range(bins)
        if (which == b).any()
    ]
    return float(sum(gaps) / len(scores))


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    exact_match: float  # answerable questions, abstaining scores 0
    f1: float
    no_answer_accuracy: float
    overall_f1: float  # SQuAD 2.0 style: all questions, a correct abstention scores 1


def threshold_sweep(service: QAService, questions: list[EvalQuestion], steps: int = 20) -> list[SweepRow]:
    """How EM/F1 and abstentions trade off as the no-answer threshold moves from 0 to 0.95.

    Each question is read once with the threshold at 0 (best span always kept, with its confidence), then
    every threshold is applied to those results: abstain when the confidence is below it.
    """
    best = [service.answer_with_passages(item.question, no_answer_threshold=0.0)[0] for item in questions]
    rows = []
    for step in range(steps):
        threshold = round(step / steps, 4)
        em = f1 = decisions = overall = 0.0
        for item, answer in zip(questions, best, strict=True):
            answered = answer.answered and answer.score >= threshold
            decisions += answered == bool(item.golds)
            if item.golds:
                prediction = answer.text if answered else ""
                em += best_over_golds(exact_match, prediction or "", item.golds)
                item_f1 = best_over_golds(token_f1, prediction or "", item.golds)
                f1 += item_f1
                overall += item_f1
            else:
                overall += not answered
        answerable = sum(1 for item in questions if item.golds) or 1
        rows.append(
            SweepRow(
                threshold=threshold,
                exact_match=100 * em / answerable,
                f1=100 * f1 / answerable,
                no_answer_accuracy=100 * decisions / max(1, len(questions)),
                overall_f1=100 * overall / max(1, len(questions)),
            )
        )
    return rows


def _score(item: EvalQuestion, answer: Answer) -> dict:
    row = {"id": item.qid, "question": item.question, "prediction": answer.text, "score": round(answer.score, 4)}
    if item.golds:
        prediction = answer.text or ""
        row["golds"] = list(item.golds)
        row["em"] = best_over_golds(exact_match, prediction, item.golds)
        row["f1"] = best_over_golds(token_f1, prediction, item.golds)
    else:
        row["correct_abstention"] = not answer.answered
    return row
