"""The one value type that leaves the answering service: what the CLI, the bot and evaluation consume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Source:
    """Where an answer was found: the article and character offsets of the answer in its cleaned text."""

    article_id: str
    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Alternative:
    """A runner-up answer span, shown so that a user can judge a close call."""

    text: str
    score: float
    context: str
    source: Source


@dataclass(frozen=True)
class Answer:
    """The service's answer to one question; ``text`` is None when the article doesn't say.

    ``context`` is the sentence that contains the answer and ``context_start``/``context_end`` locate the
    answer inside that sentence, so renderers can highlight it without searching for it again.
    """

    question: str
    text: str | None
    score: float
    context: str | None = None
    context_start: int | None = None
    context_end: int | None = None
    source: Source | None = None
    alternatives: tuple[Alternative, ...] = field(default_factory=tuple)

    @property
    def answered(self) -> bool:
        return self.text is not None

    def to_json_dict(self) -> dict[str, Any]:
        """The CLI's JSON-lines contract: question, answer, score, context (with the answer's offsets in it),
        source, alternatives; ``from_json_dict`` reads it back (the bot in front of ``qabot serve`` workers)."""
        return {
            "question": self.question,
            "answer": self.text,
            "score": round(self.score, 4),
            "context": self.context,
            "context_start": self.context_start,
            "context_end": self.context_end,
            "source": asdict(self.source) if self.source else None,
            "alternatives": [
                {
                    "answer": alt.text,
                    "score": round(alt.score, 4),
                    "context": alt.context,
                    "source": asdict(alt.source),
                }
                for alt in self.alternatives
            ],
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Answer:
        """The ``Answer`` that ``to_json_dict`` wrote (scores as rounded there); KeyError/TypeError when it is not
        one, so that a client can tell a broken reply from an answer."""
        source = data["source"]
        return cls(
            question=data["question"],
            text=data["answer"],
            score=float(data["score"]),
            context=data.get("context"),
            context_start=data.get("context_start"),
            context_end=data.get("context_end"),
            source=Source(**source) if source else None,
            alternatives=tuple(
                Alternative(alt["answer"], float(alt["score"]), alt["context"], Source(**alt["source"]))
                for alt in data.get("alternatives") or ()
            ),
        )
