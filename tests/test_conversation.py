"""Conversation memory and follow-up resolution: the store's bounds, the resolution rules, and the follow-up
set scored through the real service (the quality floor just under what benchmarks/follow_ups.py measured)."""

from __future__ import annotations

import json

import pytest

from bot.conversation import (
    InMemoryConversationStore,
    Resolved,
    Turn,
    answer_resolved,
    describe,
    resolve_follow_up,
)
from bot.follow_up_evaluation import evaluate_follow_ups, load_conversations
from tests.conftest import DATA_DIR, QUESTIONS_FILE

FOLLOW_UPS_FILE = DATA_DIR / "aleppo_followups.json"
FOLLOW_UP_FLOOR = 80.0  # percent of last turns right with the bot's own history (measured: 81.8)


def turn(question: str, answer: str | None) -> Turn:
    return Turn(question=question, read_as=question, answer=answer)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the store ------------------------------------------------------------------------------------------


def test_store_keeps_the_last_turns_per_conversation():
    store = InMemoryConversationStore(max_turns=2)
    for index in range(3):
        store.append("a", turn(f"q{index}", f"a{index}"))
    store.append("b", turn("other", None))
    assert [t.question for t in store.get("a")] == ["q1", "q2"]
    assert [t.question for t in store.get("b")] == ["other"]
    store.reset("a")
    assert store.get("a") == [] and len(store.get("b")) == 1


def test_store_forgets_idle_conversations_and_stays_bounded():
    clock = FakeClock()
    store = InMemoryConversationStore(max_conversations=2, idle_seconds=60, clock=clock)
    store.append("old", turn("q", "a"))
    clock.now = 61
    assert store.get("old") == []  # idle too long: a fresh start
    store.append("old", turn("q2", "a2"))
    assert [t.question for t in store.get("old")] == ["q2"]
    store.append("b", turn("q", "a"))
    store.append("c", turn("q", "a"))
    assert len(store) == 2 and store.get("old") == []  # least recently used went first


def test_store_rejects_nonsense_bounds():
    with pytest.raises(ValueError):
        InMemoryConversationStore(max_conversations=0)


# -- resolution -----------------------------------------------------------------------------------------


def test_first_question_is_untouched():
    resolved = resolve_follow_up("Where is it based?", [])
    assert resolved == Resolved("Where is it based?", "Where is it based?")
    assert not resolved.is_follow_up and describe(resolved) is None


def test_self_contained_questions_are_left_alone_even_after_a_turn():
    """Every single-turn question of the article set, asked right after another turn: none is rewritten."""
    data = json.loads(QUESTIONS_FILE.read_text(encoding="utf-8"))
    questions = [qa["question"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    history = [turn("Who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar")]
    touched = [q for q in questions if resolve_follow_up(q, history).is_follow_up]
    assert touched == []


@pytest.mark.parametrize(
    ("previous", "answer", "question", "expected"),
    [
        # a list answer: "them" is what the previous question was about, not the answer
        ("who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar", "who backs them?", "who backs Ahrar al-Sham?"),
        (
            "What was Jabhat Fatah al-Sham formerly known as?",
            "Jabhat al-Nusra",
            "Which network was it affiliated with?",
            "Which network was Jabhat Fatah al-Sham affiliated with?",
        ),
        # "which <thing>" question: the answer is the thing
        ("What alliance aided the Free Syrian Army?", "Jaysh al Fateh", "What is it also called?",
         "What is Jaysh al Fateh also called?"),
        ("Who was in Aleppo while the battle unfolded?", "Hadi Alabdallah", "Where is he receiving treatment?",
         "Where is Hadi Alabdallah receiving treatment?"),
        ("Where did the aid convoy come from?", "Idlib", "What was it carrying?", "What was the aid convoy carrying?"),
        ("How much territory did the opposition recapture?", "35 square kilometers", "How much is that in miles?",
         "How much is 35 square kilometers in miles?"),
        ("Which firm published a daily briefing?", "The Soufan Group", "On which day?",
         "On which day The Soufan Group?"),
        # one plural noun answer, another verb: "them" is the answer
        ("Who dominated the pro-regime forces?", "Foreign fighters", "who backs them?", "who backs Foreign fighters?"),
    ],
)  # fmt: skip
def test_references_are_replaced_by_their_entity(previous: str, answer: str, question: str, expected: str):
    resolved = resolve_follow_up(question, [turn(previous, answer)])
    assert resolved.question_for_reader == expected
    assert resolved.interpreted_as == expected
    assert describe(resolved)


def test_retrieval_gets_the_previous_turn_when_nothing_was_named():
    resolved = resolve_follow_up("Who disputed that claim?", [turn("What did the regime claim?", "heavy losses")])
    assert resolved.question_for_reader == "Who disputed that claim?" and resolved.interpreted_as is None
    assert "What did the regime claim?" in resolved.retrieval_query and "heavy losses" in resolved.retrieval_query


def test_describe_names_the_pronoun_and_entity():
    resolved = resolve_follow_up("When was it founded?", [turn("Who backs Ahrar al-Sham?", "Turkey and Qatar")])
    assert describe(resolved) == "reading ‘it’ as Ahrar al-Sham"


# -- through the real service ---------------------------------------------------------------------------


def test_a_follow_up_is_answered_with_the_previous_turn(qa_service):
    history = [turn("Who characterises Ahrar al-Sham as a terror organisation?", "Russia and the Syrian government")]
    resolved = resolve_follow_up("who backs it?", history)
    (answer,) = answer_resolved(qa_service, [resolved])
    assert answer.text == "Turkey, Saudi Arabia, and Qatar"


def test_follow_up_set_scores_above_floor(qa_service):
    cases = load_conversations(FOLLOW_UPS_FILE)
    assert len(cases) >= 25
    report = evaluate_follow_ups(qa_service, cases)
    print([(row["id"], row["read_as"], row["prediction"]) for row in report.per_conversation if not row["right"]])
    assert report.right_percent >= FOLLOW_UP_FLOOR


def test_qabot_eval_scores_a_follow_up_file(service_settings, tmp_path):
    """``qabot eval`` recognises a conversations file; the history comes from the bot or, asked, the golds."""
    from typer.testing import CliRunner

    from bot.cli import app

    data = json.loads(FOLLOW_UPS_FILE.read_text(encoding="utf-8"))
    wanted = {"followup-01", "followup-28"}  # an answerable and an unanswerable last turn
    data["conversations"] = [c for c in data["conversations"] if c["id"] in wanted]
    questions = tmp_path / "followups.json"
    questions.write_text(json.dumps(data), encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"index_dir: {service_settings.index_dir}\n")
    report = tmp_path / "report.json"
    for extra in ([], ["--gold-history"]):
        command = ["eval", str(questions), "--config", str(config), "--report", str(report), *extra]
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, result.output
        assert "conversations        2" in result.output and "last turns right     100.0 % (2 of 2)" in result.output
        rows = json.loads(report.read_text())["conversations"]
        assert [row["read_as"] for row in rows] == ["Who characterises Ahrar al-Sham as a terror organisation?",
                                                    "When was Ahrar al-Sham founded?"]


def test_every_replaced_word_is_described():
    history = [turn("From which country did Hadi Alabdallah give his interview?", "Turkey")]
    resolved = resolve_follow_up("What is he receiving there?", history)
    assert resolved.question_for_reader == "What is Hadi Alabdallah receiving in Turkey?"
    assert describe(resolved) == "reading ‘he’ as Hadi Alabdallah and ‘there’ as Turkey"


def test_what_about_asks_the_previous_question_about_the_new_subject():
    history = [turn("who backs Ahrar al-Sham?", "Turkey, Saudi Arabia, and Qatar")]
    resolved = resolve_follow_up("What about Jabhat Fatah al-Sham?", history)
    assert resolved.question_for_reader == "who backs Jabhat Fatah al-Sham?"
    assert resolved.retrieval_query == "who backs Jabhat Fatah al-Sham?"  # the old answer would mislead retrieval
    assert describe(resolved) == "reading it as “who backs Jabhat Fatah al-Sham?”"
