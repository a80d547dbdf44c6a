"""Sentence splitting and chunking on the real article: no answer sentence is ever cut."""

import itertools

from bot.articles import load_article, parse_article
from bot.chunking import SentenceChunker, article_document, sentence_spans, split_long_spans
from bot.config import ChunkingSettings
from tests.conftest import SEED_ARTICLE


def test_sentences_of_tricky_prose():
    text = "He said “It was fast.” Then he left. Mr. Smith met U.S. officials. The end"
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["He said “It was fast.”", "Then he left.", "Mr. Smith met U.S. officials.", "The end"]


def test_paragraph_break_ends_a_sentence():
    text = "‘A much more cohesive operation’\n\nAlabdallah’s account lines up."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "‘A much more cohesive operation’",
        "Alabdallah’s account lines up.",
    ]


def test_chunks_cover_article_on_sentence_boundaries_with_overlap():
    article = load_article(SEED_ARTICLE)
    settings = ChunkingSettings(sentences_per_chunk=3, overlap_sentences=1, max_chunk_chars=800)
    chunks = SentenceChunker(settings).run([article_document(article)])["documents"]
    spans = sentence_spans(article.text)
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    covered = set()
    for chunk in chunks:
        start, end = chunk.meta["start"], chunk.meta["end"]
        assert chunk.content == article.text[start:end]
        assert start in starts and end in ends, "a chunk cut a sentence"
        assert chunk.meta["article_id"] == "aleppo-siege-2016"
        covered.update(i for i, (s, e) in enumerate(spans) if start <= s and e <= end)
    assert covered == set(range(len(spans)))
    for previous, following in itertools.pairwise(chunks):
        assert following.meta["start"] < previous.meta["end"], "neighbouring chunks should overlap"


def test_max_chunk_chars_limits_growth():
    article = load_article(SEED_ARTICLE)
    settings = ChunkingSettings(sentences_per_chunk=10, overlap_sentences=0, max_chunk_chars=300)
    chunks = SentenceChunker(settings).run([article_document(article)])["documents"]
    longest_sentence = max(e - s for s, e in sentence_spans(article.text))
    assert all(len(c.content) <= max(300, longest_sentence) for c in chunks)


def test_a_sentence_longer_than_max_chunk_chars_is_cut_at_word_boundaries():
    """A page scraped onto one line with no full stop must not become one huge chunk (issue 9, item 10)."""
    words = [f"word{i}" for i in range(40_000)]  # ~300 KB, no sentence end anywhere
    words[1234] = "x" * 1500  # and one "word" longer than the limit
    text = " ".join(words)
    settings = ChunkingSettings(sentences_per_chunk=3, overlap_sentences=1, max_chunk_chars=800)
    document = article_document(parse_article(f"Title\n\n{text}\n", "one-line"))
    chunks = SentenceChunker(settings).run([document])["documents"]
    assert all(0 < len(chunk.content) <= 800 for chunk in chunks)
    assert all(document.content[c.meta["start"] : c.meta["end"]] == c.content for c in chunks)
    pieces = [piece for chunk in chunks for piece in chunk.content.split(" ")]
    assert set(pieces) >= {w for w in words if len(w) <= 800}  # every ordinary word whole in some chunk
    assert "".join(c.content for c in chunks).count("x") >= 1500  # the long word cut, not dropped


def test_split_long_spans_keeps_short_spans_and_cuts_long_ones():
    text = "aaa bbb ccc ddd"
    assert split_long_spans(text, [(0, 15)], 100) == [(0, 15)]
    assert [text[s:e] for s, e in split_long_spans(text, [(0, 15)], 8)] == ["aaa bbb", "ccc ddd"]
    word = "abcdefghij"
    assert [word[s:e] for s, e in split_long_spans(word, [(0, 10)], 4)] == ["abcd", "efgh", "ij"]
