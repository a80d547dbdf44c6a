"""Per-question BM25 rankings side by side: Haystack's InMemoryBM25Retriever (BM25Plus, what qabot used before)
against bm25s with its defaults, then with one difference removed at a time, and qabot's ``bot.keyword_index``.

    .venv/bin/python benchmarks/compare_bm25.py [tests/data/aleppo_questions.json] [--top-k 4] [--quiet]

Prints, per question where any ranking differs, the chunk numbers of each; then how many questions agree.
On the 68 article questions (top 4): bm25s defaults 23, + Haystack's tokens (one-letter tokens, no stop
words) 49, + Lucene idf 49, + the "+ delta" only for matching terms (qabot) 68. So a plain bm25s swap loses
questions through its tokenizer and, most, through BM25+'s lower bound given to every chunk. Uses the chunks
of the current index build (``qabot index`` first).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from haystack.document_stores.in_memory import InMemoryDocumentStore

from bot.config import load_settings
from bot.evaluation import load_questions
from bot.indexing import load_index
from bot.keyword_index import KeywordIndex, tokenize

ROOT = Path(__file__).resolve().parents[1]


def _top(scores, top_k: int, positive_only: bool) -> list[int]:
    import numpy as np

    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    return [int(i) for i in candidates[np.lexsort((candidates, -scores[candidates]))][:top_k]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("questions", nargs="?", default=str(ROOT / "tests/data/aleppo_questions.json"))
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args()

    import bm25s

    documents = load_index(load_settings()).store.filter_documents()
    haystack = InMemoryDocumentStore(bm25_algorithm="BM25Plus")
    haystack.write_documents([replace(d, embedding=None) for d in documents])
    ours = KeywordIndex.build(documents)
    position = {d.id: i for i, d in enumerate(documents)}
    texts = [d.content or "" for d in documents]

    # One cause at a time, from bm25s's defaults to ours (query words counted once in the last three):
    defaults = bm25s.BM25(method="bm25+")
    defaults.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    variants = {}
    for name, idf in (("+ Haystack tokens", "bm25+"), ("+ Lucene idf", "lucene")):
        model = bm25s.BM25(method="bm25+", idf_method=idf, k1=1.5, b=0.75, delta=1.0)
        model.index([tokenize(t) for t in texts], show_progress=False)
        variants[name] = model

    questions = [q.question for q in load_questions(Path(args.questions))]
    agree = dict.fromkeys(["bm25s defaults", *variants, "qabot (+ delta only for matching terms)"], 0)
    for question in questions:
        reference = [position[d.id] for d in haystack.bm25_retrieval(question, top_k=args.top_k)]
        tokens = bm25s.tokenize([question], stopwords="en", show_progress=False)
        found, scores = defaults.retrieve(tokens, k=min(args.top_k, len(documents)), show_progress=False)
        rankings = {"bm25s defaults": [int(i) for i, s in zip(found[0], scores[0], strict=True) if s > 0]}
        for name, model in variants.items():
            terms = [model.vocab_dict[t] for t in dict.fromkeys(tokenize(question)) if t in model.vocab_dict]
            rankings[name] = _top(model.get_scores(terms), args.top_k, positive_only=False) if terms else []
        rankings["qabot (+ delta only for matching terms)"] = [
            position[d.id] for d in ours.search(question, args.top_k)
        ]
        for name, ranking in rankings.items():
            agree[name] += ranking == reference
        if not args.quiet and any(r != reference for r in rankings.values()):
            print(f"{question}\n  {'haystack BM25Plus':<40} {reference}")
            for name, ranking in rankings.items():
                print(f"  {name:<40} {ranking}")
    print(f"\n{len(questions)} questions; top-{args.top_k} BM25 chunks identical to Haystack's BM25Plus:")
    for name, count in agree.items():
        print(f"  {name:<40} {count}")


if __name__ == "__main__":
    main()
