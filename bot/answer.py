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
        """The CLI's JSON-lines contract: question, answer, score, context, source, alternatives."""
        return {
            "question": self.question,
            "answer": self.text,
            "score": round(self.score, 4),
            "context": self.context,
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
