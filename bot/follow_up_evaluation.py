"""``qabot eval`` on a follow-up file: multi-turn conversations whose last turn is scored.

A last turn counts as right when its answer's token F1 against the best gold answer is at least 0.5 (the
answer names the right thing, perhaps with a word more or less), or, for a turn the article does not answer
(no gold answers), when the service abstains. By default the earlier turns are answered by the service itself
(as a user would experience it: a wrong first answer can spoil the follow-up); ``gold_history=True`` feeds
the gold answers instead, which measures resolution alone. The file layout is in tests/data/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bot.answering import QAService
from bot.conversation import ReaderMode, RetrievalMode, Turn, resolve_follow_up, turn_for
from bot.errors import QabotError
from bot.squad_metrics import best_over_golds, exact_match, token_f1

RIGHT_F1 = 0.5


@dataclass(frozen=True)
class ConversationCase:
    cid: str
    kind: str
    turns: tuple[tuple[str, tuple[str, ...]], ...]  # (question, gold answers); no golds = unanswerable


@dataclass
class FollowUpReport:
    conversations: int = 0
    right: int = 0
    exact_match: float = 0.0  # answerable last turns, percent
    f1: float = 0.0
    per_conversation: list[dict] = field(default_factory=list)

    @property
    def right_percent(self) -> float:
        return 100 * self.right / self.conversations if self.conversations else 0.0


def is_follow_up_file(path: Path) -> bool:
    try:
        return "conversations" in json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def load_conversations(path: Path) -> list[ConversationCase]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cases = [
            ConversationCase(
                cid=str(item["id"]),
                kind=str(item.get("kind", "")),
                turns=tuple((turn["question"], tuple(turn["answers"])) for turn in item["turns"]),
            )
            for item in data["conversations"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise QabotError(f"cannot read follow-up conversations from {path}: {error}") from error
    if any(len(case.turns) < 2 for case in cases):
        raise QabotError(f"{path}: every conversation needs at least two turns")
    return cases


def evaluate_follow_ups(
    service: QAService,
    cases: list[ConversationCase],
    gold_history: bool = False,
    reader_mode: ReaderMode = "rewrite",
    retrieval_mode: RetrievalMode = "auto",
) -> FollowUpReport:
    report = FollowUpReport()
    em_sum = f1_sum = answerable = 0.0
    for case in cases:
        history: list[Turn] = []
        for index, (question, golds) in enumerate(case.turns):
            resolved = resolve_follow_up(question, history, reader_mode, retrieval_mode)
            answer, _ = service.answer_with_passages(
                resolved.question_for_reader, retrieval_query=resolved.retrieval_query
            )
            is_last = index == len(case.turns) - 1
            if not is_last:
                remembered = (golds[0] if golds else None) if gold_history else answer.text
                history.append(turn_for(question, resolved, remembered))
                continue
            row = {
                "id": case.cid,
                "kind": case.kind,
                "question": question,
                "read_as": resolved.question_for_reader,
                "prediction": answer.text,
                "golds": list(golds),
                "history": [(turn.question, turn.answer) for turn in history],
            }
            if golds:
                answerable += 1
                em = best_over_golds(exact_match, answer.text or "", golds)
                f1 = best_over_golds(token_f1, answer.text or "", golds)
                em_sum, f1_sum = em_sum + em, f1_sum + f1
                row["right"] = f1 >= RIGHT_F1
            else:
                row["right"] = not answer.answered
            report.conversations += 1
            report.right += row["right"]
            report.per_conversation.append(row)
    if answerable:
        report.exact_match, report.f1 = 100 * em_sum / answerable, 100 * f1_sum / answerable
    return report
