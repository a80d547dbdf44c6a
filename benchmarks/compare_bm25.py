"""Per-question BM25 rankings side by side: Haystack's InMemoryBM25Retriever (BM25Plus, what qabot used before)
against qabot's bm25s index (``bot.keyword_index``) and against bm25s with its own defaults.

    .venv/bin/python benchmarks/compare_bm25.py [tests/data/aleppo_questions.json] [--top-k 4]

Prints, per question whose top-k differs, the chunk ids of each ranking; then how many questions agree.
It shows why a plain ``bm25s`` swap loses questions (tokens, the BM25+ delta, idf) while ours agrees.
Uses the chunks of the current index build (``qabot index`` first).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from haystack.document_stores.in_memory import InMemoryDocumentStore

from bot.config import load_settings
from bot.evaluation import load_questions
from bot.indexing import load_index
from bot.keyword_index import KeywordIndex

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("questions", nargs="?", default=str(ROOT / "tests/data/aleppo_questions.json"))
    parser.add_argument("--top-k", type=int, default=4)
    args = parser.parse_args()

    import bm25s

    documents = load_index(load_settings()).store.filter_documents()
    haystack = InMemoryDocumentStore(bm25_algorithm="BM25Plus")
    haystack.write_documents([replace(d, embedding=None) for d in documents])
    ours = KeywordIndex.build(documents)
    plain = bm25s.BM25(method="bm25+")
    plain.index(bm25s.tokenize([d.content or "" for d in documents], stopwords="en", show_progress=False),
                show_progress=False)
    position = {d.id: i for i, d in enumerate(documents)}

    questions = [q.question for q in load_questions(Path(args.questions))]
    same_ours = same_plain = 0
    for question in questions:
        reference = [position[d.id] for d in haystack.bm25_retrieval(question, top_k=args.top_k)]
        mine = [position[d.id] for d in ours.search(question, args.top_k)]
        tokens = bm25s.tokenize([question], stopwords="en", show_progress=False)
        found, scores = plain.retrieve(tokens, k=min(args.top_k, len(documents)), show_progress=False)
        theirs = [int(i) for i, s in zip(found[0], scores[0], strict=True) if s > 0]
        same_ours += mine == reference
        same_plain += theirs == reference
        if mine != reference or theirs != reference:
            print(f"{question}\n  haystack BM25Plus {reference}\n  qabot bm25s       {mine}")
            print(f"  bm25s defaults    {theirs}")
    print(f"\n{len(questions)} questions, top-{args.top_k} chunks identical to Haystack's BM25Plus: "
          f"qabot bm25s {same_ours}, bm25s defaults (bm25+, en stop words) {same_plain}")


if __name__ == "__main__":
    main()
