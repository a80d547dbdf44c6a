"""Answer quality on the hand-written Aleppo question sets, through the whole service (retrieval + reader +
answer verifier).

The floors sit just under the numbers measured with the shipped reader and verifier (README, "Quality"); a drop
below them means a regression in chunking, retrieval, the reader, the verifier or the no-answer rule. One
question is worth ~2 points on the answerable set and 2.5 on the unanswerable one.
"""

from bot.answer_types import fits_the_question
from bot.answering import QAService
from bot.evaluation import evaluate, load_questions
from tests.conftest import QUESTIONS_FILE, UNANSWERABLE_FILE

# measured: EM 78.4, F1 86.7, no-answer accuracy 92.6, recall 100 (index built by the bulk embedder, 2026-12-02)
FLOORS = {"exact_match": 76.0, "f1": 84.0, "no_answer_accuracy": 90.0, "retrieval_recall": 96.0}
# measured: 72.5 % of the 40 refused; confidence AUROC over both files 74.7 (the previous verifier: 65.0 % and
# 76.7 on today's index, 81.2 with the index the earlier embedding batches built: the int8 embedder's vectors
# depend a little on their batch, and on 22 chunks that moves a few questions' passages; see README "Quality").
# AUROC is taken among answered questions, so it falls when wrong answers that already ranked low are refused
# instead.
UNANSWERABLE_REFUSED_FLOOR = 70.0
BOTH_FILES_FLOORS = {"confidence_auroc": 72.5}


def test_question_set_scores_above_floor(qa_service: QAService):
    questions = load_questions(QUESTIONS_FILE)
    assert sum(1 for q in questions if q.golds) >= 30
    assert sum(1 for q in questions if not q.golds) >= 10
    report = evaluate(qa_service, questions)
    summary = report.summary()
    print(summary)
    for metric, floor in FLOORS.items():
        assert summary[metric] >= floor, (metric, summary[metric], floor)


def test_topic_related_unanswerable_questions_are_refused(qa_service: QAService):
    """tests/data/aleppo_unanswerable.json: a test set only, never tuned on (issue 7)."""
    questions = load_questions(UNANSWERABLE_FILE)
    assert len(questions) >= 30 and not any(q.golds for q in questions)
    summary = evaluate(qa_service, questions).summary()
    print(summary)
    assert summary["refused_unanswerable"] >= UNANSWERABLE_REFUSED_FLOOR, summary


def test_confidence_ranks_right_answers_above_wrong_ones(qa_service: QAService):
    questions = load_questions(QUESTIONS_FILE) + load_questions(UNANSWERABLE_FILE)
    summary = evaluate(qa_service, questions).summary()
    print(summary)
    for metric, floor in BOTH_FILES_FLOORS.items():
        assert summary[metric] >= floor, (metric, summary[metric], floor)


def test_answer_shape_rule_decides_only_unanswerable_article_questions(qa_service: QAService):
    """The answer-shape rule (``bot.answer_types``) scores a span 0, so a refusal it decides reads "100 % sure it
    doesn't". The model card defends that number with this count: on the article the rule rejects the reader's
    top span only for questions the article does not answer (``pytest -s -k shape_rule`` prints the count)."""
    questions = load_questions(QUESTIONS_FILE) + load_questions(UNANSWERABLE_FILE)
    decided = []
    for question in questions:
        spans, _ = qa_service.candidates(question.question)
        if spans and not fits_the_question(question.question, spans[0].data or ""):
            decided.append(question)
    answerable = [q.question for q in decided if q.golds]
    print(f"\nthe shape rule rejects the top span of {len(decided)} of {len(questions)} questions, "
          f"{len(decided) - len(answerable)} of them unanswerable")  # fmt: skip
    assert decided, "the rule decided no question: the count the model card quotes is gone"
    assert not answerable, answerable
