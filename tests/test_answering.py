"""The answering service end to end: real index on disk, real embedder, real reader, real article."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.answering import QAService
from bot.articles import load_article
from bot.errors import InvalidQuestionError
from tests.conftest import BOILERPLATE_MARKERS, SEED_ARTICLE, settings_with

ARTICLE_TEXT = load_article(SEED_ARTICLE).text


def test_flagship_question(qa_service: QAService):
    answer = qa_service.answer("who backs Ahrar al-Sham?")
    assert answer.text == "Turkey, Saudi Arabia, and Qatar"
    assert answer.context == "It is backed by Turkey, Saudi Arabia, and Qatar."
    assert answer.context[answer.context_start : answer.context_end] == answer.text
    assert answer.source is not None and answer.source.article_id == "aleppo-siege-2016"
    assert ARTICLE_TEXT[answer.source.start : answer.source.end] == answer.text
    assert 0.5 <= answer.score <= 1.0


def test_answer_sources_point_into_the_article(qa_service: QAService):
    for question in ("Where was Alabdallah interviewed from?", "What is Jaysh al Fateh also called?"):
        answer = qa_service.answer(question)
        assert answer.answered, question
        assert ARTICLE_TEXT[answer.source.start : answer.source.end] == answer.text
        assert answer.context in ARTICLE_TEXT
        for alternative in answer.alternatives:
            assert ARTICLE_TEXT[alternative.source.start : alternative.source.end] == alternative.text
            assert alternative.score <= answer.score


@pytest.mark.parametrize(
    "question",
    ["What is the capital of Australia?", "Who wrote Pride and Prejudice?", "Why has the F-35 hit another snag?"],
)
def test_unrelated_questions_get_no_answer(qa_service: QAService, question: str):
    answer = qa_service.answer(question)
    assert answer.text is None and answer.context is None and answer.source is None


def test_boilerplate_is_never_an_answer_or_context(qa_service: QAService, article_questions: list[dict]):
    questions = [qa["question"] for qa in article_questions] + [
        "What should I watch now?",
        "Where can I follow Business Insider?",
        "What arrives in my inbox each day?",
    ]
    for answer in qa_service.answer_many(questions):
        shown = " ".join(filter(None, [answer.text, answer.context, *(a.context for a in answer.alternatives)]))
        assert not any(marker in shown for marker in BOILERPLATE_MARKERS), answer


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "empty"), ("   \n\t ", "empty"), ("\x00\x01", "empty"), ("why? " * 300, "limit is 1,000")],
)
def test_bad_questions_are_refused_without_side_effects(qa_service: QAService, question: str, message: str):
    cache_before = dict(qa_service._cache)
    with pytest.raises(InvalidQuestionError, match=message):
        qa_service.answer(question)
    with pytest.raises(InvalidQuestionError):
        qa_service.answer_many(["who backs Ahrar al-Sham?", question])
    assert dict(qa_service._cache) == cache_before


def test_answer_many_keeps_order_and_matches_single_answers(service_settings):
    """A burst gives exactly the answers and scores that one-by-one questions get (no answer cache in play).

    Six questions give the reader more windows than one ONNX call takes; int8 activations are quantized per
    call, so windows of different questions must never share a call or their scores would drift.
    """
    service = QAService.from_settings(
        settings_with(service_settings, answers=service_settings.answers.model_copy(update={"cache_size": 0}))
    )
    questions = [
        "Who backs Ahrar al-Sham?",
        "What is the capital of Australia?",
        "What does SOHR stand for?",
        "Who leads the Free Syrian Army's Fastaqim Kama Umirt brigade?",
        "Which city did the rebels try to break the siege of?",
        "What did the Soufan Group call the offensive?",
    ]
    batch = service.answer_many(questions)
    singles = [service.answer(q) for q in questions]
    assert [a.question for a in batch] == questions
    assert [(a.text, a.score) for a in batch] == [(a.text, a.score) for a in singles]


def test_repeated_question_is_served_from_cache(qa_service: QAService):
    first = qa_service.answer("What did the government forces deliver?")
    second = qa_service.answer("what did the government forces deliver")
    assert second.text == first.text and second.question == "what did the government forces deliver"


def test_concurrent_questions_get_their_own_answers(qa_service: QAService):
    questions = ["Who backs Ahrar al-Sham?", "What does SOHR stand for?", "What is the capital of Australia?"] * 4
    expected = {q: qa_service.answer(q).text for q in set(questions)}
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(qa_service.answer, questions))
    assert [a.text for a in results] == [expected[q] for q in questions]


def test_new_article_is_picked_up_and_cache_dropped(service_settings, tmp_path: Path):
    """A running service notices `qabot index add` (new build on disk) and answers from the new article."""
    import shutil

    from bot.indexing import add_article, build_index
    from tests.conftest import settings_with

    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    settings = settings_with(service_settings, articles_dir=articles, index_dir=tmp_path / "index")
    build_index(settings, progress_bar=False)
    service = QAService.from_settings(settings)
    question = "What did the rover find near the pole?"
    assert service.answer(question).text is None
    new = tmp_path / "rover.txt"
    new.write_text("Rover finds water\n\nThe Perseverance rover found ice near the pole on Tuesday, NASA said.\n")
    add_article(settings, new, progress_bar=False)
    answer = service.answer(question)
    assert answer.text is not None and "ice" in answer.text
    assert answer.source.article_id == "rover"
    assert {a.article_id for a in service.articles()} == {"aleppo-siege-2016", "rover"}


def test_service_is_thread_safe_under_index_reload(qa_service: QAService):
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            qa_service.answer("Who reported the fighter's message?")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_low_dense_only_passages_are_not_read_when_asked(service_settings):
    """With retrieval.dense_only_top 1, every passage read is BM25-backed or FAISS's best hit."""
    retrieval = service_settings.retrieval.model_copy(update={"dense_only_top": 1})
    service = QAService.from_settings(settings_with(service_settings, retrieval=retrieval))
    pipeline = service._pipeline.retrieval
    skipped = 0
    for question in ["Who backs Ahrar al-Sham?", "What did the Soufan Group call the offensive?", "Who is Hadi?"]:
        outputs = pipeline.run(
            {"text_embedder": {"text": question}, "bm25_retriever": {"query": question}},
            include_outputs_from={"dense_retriever", "bm25_retriever", "joiner"},
        )
        lexical = {d.id for d in outputs["bm25_retriever"]["documents"]}
        best_dense = outputs["dense_retriever"]["documents"][0].id
        read = outputs["agreement"]["documents"]
        assert read and all(d.id in lexical or d.id == best_dense for d in read)
        assert [d.id for d in read] == [d.id for d in outputs["joiner"]["documents"] if d in read]
        skipped += len(outputs["joiner"]["documents"]) - len(read)
        assert service.answer_with_passages(question)[1] == read
    assert skipped > 0
