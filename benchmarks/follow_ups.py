"""Which way of resolving follow-up questions answers them best? (tests/data/aleppo_followups.json)

Reader modes: ``rewrite`` (the reader reads the question with the pronoun replaced by its entity) or
``original`` (the reader reads the question as asked). Retrieval modes: ``question`` (as asked), ``rewrite``
(the rewritten question) or ``both`` (the rewritten question plus the previous question and answer).
``auto``: the rewritten question when a pronoun was replaced by a name, else (an ellipsis, "that claim") the
question plus the previous question and answer. Each combination is scored with the bot's own history and
with gold history; prints one
table.

    .venv/bin/python benchmarks/follow_ups.py [--file tests/data/aleppo_followups.json] [--details]

Quality numbers only (no timing), so it can run on a busy machine.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot  # noqa: F401  (offline environment first)
from bot.answering import QAService
from bot.config import PROJECT_ROOT, load_settings
from bot.follow_up_evaluation import evaluate_follow_ups, load_conversations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, default=PROJECT_ROOT / "tests" / "data" / "aleppo_followups.json")
    parser.add_argument("--details", action="store_true", help="print every wrong last turn")
    args = parser.parse_args()
    cases = load_conversations(args.file)
    service = QAService.from_settings(load_settings())
    print(f"{len(cases)} conversations, last turn scored (right = F1 >= 0.5, or abstaining when unanswerable)")
    print(f"{'reader':9} {'retrieval':10} {'own history':>12} {'gold history':>13} {'EM (own)':>9} {'F1 (own)':>9}")
    for reader, retrieval in itertools.product(("rewrite", "original"), ("question", "rewrite", "both", "auto")):
        if reader == "original" and retrieval in ("rewrite", "auto"):
            continue  # the rewrite only for retrieval is covered by "both"
        own = evaluate_follow_ups(service, cases, False, reader, retrieval)  # type: ignore[arg-type]
        gold = evaluate_follow_ups(service, cases, True, reader, retrieval)  # type: ignore[arg-type]
        print(
            f"{reader:9} {retrieval:10} {own.right_percent:11.1f}% {gold.right_percent:12.1f}%"
            f" {own.exact_match:9.1f} {own.f1:9.1f}"
        )
        if args.details:
            for row in own.per_conversation:
                if not row["right"]:
                    print(f"   ✗ {row['id']} {row['question']!r} read as {row['read_as']!r} → {row['prediction']!r}"
                          f" (gold {row['golds']}; history {row['history']})")


if __name__ == "__main__":
    main()
