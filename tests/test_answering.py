"""The answering service end to end: real index on disk, real embedder, real reader, real article."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.answering import QAService
from bot.articles import load_article
from bot.config import with_overrides
from bot.errors import EmptyQuestionError, InvalidQuestionError, QuestionNotTextError, QuestionTooLongError
from tests.conftest import BOILERPLATE_MARKERS, SEED_ARTICLE

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
    ("question", "message", "kind"),
    [
        ("", "empty", EmptyQuestionError),
        ("   \n\t ", "empty", EmptyQuestionError),
        ("\x00\x01", "empty", EmptyQuestionError),
        ("why? " * 300, "limit is 1,000", QuestionTooLongError),
        ("a " * 499, "words and word pieces", QuestionTooLongError),
        (b"who?", "must be text", QuestionNotTextError),
    ],
)
def test_bad_questions_are_refused_without_side_effects(
    qa_service: QAService, question: str, message: str, kind: type[InvalidQuestionError]
):
    cache_before = dict(qa_service._cache)
    with pytest.raises(kind, match=message):
        qa_service.answer(question)
    with pytest.raises(InvalidQuestionError):
        qa_service.answer_many(["who backs Ahrar al-Sham?", question])
    with pytest.raises(InvalidQuestionError, match=message):  # the uncached paths (qabot eval, fit_verifier)
        qa_service.answer_with_passages(question)
    with pytest.raises(InvalidQuestionError, match=message):
        qa_service.candidates(question)
    assert dict(qa_service._cache) == cache_before


def test_answer_many_keeps_order_and_matches_single_answers(service_settings):
    """A burst gives exactly the answers and scores that one-by-one questions get (no answer cache in play).

    Six questions give the reader more windows than one ONNX call takes; int8 activations are quantized per
    call, so windows of different questions must never share a call or their scores would drift.
    """
    service = QAService.from_settings(with_overrides(service_settings, {"answers.cache_size": 0}))
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


@pytest.fixture(scope="module")
def uncached_service(service_settings) -> QAService:
    """A service without the answer cache: every question runs the whole pipeline."""
    return QAService.from_settings(with_overrides(service_settings, {"answers.cache_size": 0}))


def test_repeated_question_is_served_from_cache(qa_service: QAService):
    """The second question is the cached answer (the same object, asked differently), not a second reading."""
    first = qa_service.answer("What is Jaysh al Fateh also called?")
    second = qa_service.answer("what is jaysh al fateh also called")
    assert second.text == first.text and second.question == "what is jaysh al fateh also called"
    assert any(cached is first for cached in qa_service._cache.values())
    # A fresh reading builds new alternatives; the cached answer is copied with only the question replaced.
    assert first.alternatives and second.alternatives is first.alternatives


def test_concurrent_questions_get_their_own_answers(uncached_service: QAService):
    """Twelve threads, three different questions, no cache: every thread's answer is its own question's."""
    questions = ["Who backs Ahrar al-Sham?", "What does SOHR stand for?", "What is the capital of Australia?"] * 4
    expected = {q: uncached_service.answer(q).text for q in set(questions)}
    assert len(set(expected.values())) == 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(uncached_service.answer, questions))
    assert [a.question for a in results] == questions
    assert [a.text for a in results] == [expected[q] for q in questions]


def test_new_article_is_picked_up_and_cache_dropped(service_settings, tmp_path: Path):
    """A running service notices `qabot index add` (new build on disk) and answers from the new article."""
    import shutil

    from bot.indexing import add_article, build_index

    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    settings = with_overrides(service_settings, {"articles_dir": articles, "index_dir": tmp_path / "index"})
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


def test_service_is_thread_safe_under_index_reload(service_settings, tmp_path: Path):
    """Eight threads ask while a ninth keeps switching CURRENT between two builds: every switch is a reload
    under the service's lock, and every answer is still right."""
    import os
    import shutil

    from bot.indexing import CURRENT_FILE, current_build_name

    index_dir = tmp_path / "index"
    shutil.copytree(service_settings.index_dir, index_dir)
    build_a = current_build_name(index_dir)
    build_b = f"{build_a}-copy"
    shutil.copytree(index_dir / build_a, index_dir / build_b)
    settings = with_overrides(service_settings, {"index_dir": index_dir, "answers.cache_size": 0})
    service = QAService.from_settings(settings)
    builds_seen: set[str] = set()
    errors: list[BaseException] = []
    answers: list[str | None] = []
    done = threading.Event()

    def switch_builds() -> None:
        for turn in range(1000):
            if done.is_set():
                return
            temporary = index_dir / f"{CURRENT_FILE}.switch"
            temporary.write_text((build_b if turn % 2 == 0 else build_a) + "\n")
            os.replace(temporary, index_dir / CURRENT_FILE)
            done.wait(0.01)

    def ask() -> None:
        try:
            for _ in range(3):
                answers.append(service.answer("who backs Ahrar al-Sham?").text)
                builds_seen.add(service._index.build_dir.name)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    switcher = threading.Thread(target=switch_builds)
    switcher.start()
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    switcher.join()
    assert errors == []
    assert builds_seen == {build_a, build_b}, "the index was never reloaded while questions ran"
    assert answers == ["Turkey, Saudi Arabia, and Qatar"] * 24


def test_low_dense_only_passages_are_not_read_when_asked(service_settings):
    """With retrieval.dense_only_top 1, every passage read is BM25-backed or FAISS's best hit."""
    service = QAService.from_settings(with_overrides(service_settings, {"retrieval.dense_only_top": 1}))
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
