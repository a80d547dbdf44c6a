"""Answer quality on the hand-written Aleppo question set, through the whole service (retrieval + reader).

The floors sit just under the numbers measured when the reader was committed (README, "Quality"); a drop
below them means a regression in chunking, retrieval, the reader or the no-answer rule.
"""

from bot.answering import QAService
from bot.evaluation import evaluate, load_questions
from tests.conftest import QUESTIONS_FILE

FLOORS = {"exact_match": 76.0, "f1": 83.0, "no_answer_accuracy": 91.0, "retrieval_recall": 96.0}


def test_question_set_scores_above_floor(qa_service: QAService):
    questions = load_questions(QUESTIONS_FILE)
    assert sum(1 for q in questions if q.golds) >= 30
    assert sum(1 for q in questions if not q.golds) >= 10
    report = evaluate(qa_service, questions)
    summary = report.summary()
    print(summary)
    for metric, floor in FLOORS.items():
        assert summary[metric] >= floor, (metric, summary[metric], floor)
