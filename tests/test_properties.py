"""Property-based tests (hypothesis): random bytes, unicode and sizes thrown at question validation, article
parsing and chunking. Each must either give a result that keeps its promises or refuse with our own error,
never crash. The examples are generated, not hand-picked, so they find what a list of hostile inputs misses.
"""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from bot.articles import MAX_ARTICLE_BYTES, is_boilerplate, load_article, parse_article
from bot.chunking import SentenceChunker
from bot.config import PROJECT_ROOT, ChunkingSettings, ReaderSettings
from bot.errors import ArticleError, InvalidQuestionError
from bot.question_rules import clean_question, max_question_tokens, replace_surrogates

READER = ReaderSettings()
MAX_CHARS = 1000
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any code point, lone surrogates included (undecodable input bytes arrive as those).
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=1500)
# Words and white space, many of them: exercises the limits in characters and in tokens.
wordy_text = st.lists(
    st.sampled_from(
        ["a", "who", "Ahrar", "al-Sham", "?", "\t", "\n", "   ", "ünïcödé", "東京", "🙂", "\x00", "\udcff"]
    ),
    max_size=700,
).map(" ".join)


@pytest.fixture(scope="module")
def reader_tokenizers(project_settings) -> tuple[Any, Tokenizer]:
    """The shipped reader's own question counter (the one QAService validates with: a copy of its set-up here
    once counted padding too, so every question looked 128 tokens long and was refused), and its tokenizer set
    up as the reader cuts windows."""
    from bot.pipeline import build_reader

    reader = build_reader(project_settings)
    reader.warm_up()
    windows = Tokenizer.from_file(str(PROJECT_ROOT / "models" / "reader" / "tokenizer.json"))
    windows.enable_truncation(READER.max_seq_length, stride=READER.stride, strategy="only_second")
    return reader, windows


@pytest.fixture(scope="module")
def untruncated_tokenizer() -> Tokenizer:
    """The reader's tokenizer.json parsed on its own; as shipped it pads and truncates to 128, this one does
    neither, as a counter must (a fixture: parsed only when a test needs it, not when the module is collected)."""
    tokenizer = Tokenizer.from_file(str(PROJECT_ROOT / "models" / "reader" / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


# -- question validation --------------------------------------------------------------------------------


@FAST
@given(
    question=st.one_of(
        any_text, wordy_text, st.binary(max_size=1200).map(lambda b: b.decode("utf-8", "surrogateescape"))
    )
)
@example(question="a " * 499)
@example(question="\udcff")
def test_a_question_is_either_refused_or_fits_the_reader(reader_tokenizers, question: str):
    reader, windows = reader_tokenizers
    count = reader.question_tokens

    limit = max_question_tokens(READER)
    try:
        cleaned = clean_question(question, max_chars=MAX_CHARS, max_tokens=limit, count_tokens=count)
    except InvalidQuestionError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert cleaned and cleaned == cleaned.strip() and len(cleaned) <= MAX_CHARS and count(cleaned) <= limit
    assert not any(0xD800 <= ord(char) <= 0xDFFF for char in cleaned)  # printable, JSON-able, tokenizable
    assert not any(char in cleaned for char in "\x00\n\r\t\x7f")
    assert clean_question(cleaned, max_chars=MAX_CHARS, max_tokens=limit, count_tokens=count) == cleaned
    cleaned.encode("utf-8")
    # What crashed before: the reader's windows over a long passage, with this question in front.
    encoding = windows.encode(cleaned, "word " * 600)
    assert len(encoding.overflowing) < 600 // 64 + 2  # the window moves on by at least 64 passage tokens


@FAST
@given(question=st.one_of(any_text, wordy_text))
@example(question="who backs [SEP] it? [CLS][PAD][MASK][UNK]")
@example(question="a " * 600)
def test_the_question_counter_counts_like_a_tokenizer_of_its_own(
    reader_tokenizers, untruncated_tokenizer: Tokenizer, question: str
):
    """The reader's counter shares its tokenizer's parsed model (``twin_tokenizer``) but not its window
    truncation: it counts exactly as a tokenizer parsed on its own from tokenizer.json, without truncation."""
    reader, _ = reader_tokenizers
    question = replace_surrogates(question)
    assert reader.question_tokens(question) == len(untruncated_tokenizer.encode(question, add_special_tokens=False).ids)


# -- article parsing ------------------------------------------------------------------------------------

front_matter_line = st.builds(
    "{}: {}".format, st.sampled_from(["title", "source", "date", "url", "other", "Title"]), st.text(max_size=40)
)
article_text = st.one_of(
    any_text,
    st.builds(
        lambda lines, newline, body: newline.join(["---", *lines, "---", body]),
        st.lists(front_matter_line, max_size=5),
        st.sampled_from(["\n", "\r\n", "\r"]),
        any_text,
    ),
)


@FAST
@given(raw=article_text)
@example(raw="---\r\ntitle: T\r\n---\r\nBody.\r\n")
def test_article_parsing_keeps_its_promises_or_refuses(raw: str):
    try:
        article = parse_article(raw, "random")
    except ArticleError as error:
        assert str(error).startswith("random")
        return
    assert article.info.title and article.text
    assert "\r" not in article.text and "\n\n\n" not in article.text
    for paragraph in article.text.split("\n\n"):
        assert paragraph == paragraph.strip() and paragraph and not is_boilerplate(paragraph)
    if raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").startswith("---\n"):
        assert article.info.title != "---"


@FAST
@given(data=st.binary(max_size=3000))
@example(data=b"---\r\ntitle: T\r\n---\r\nBody.\r\n")
@example(data=b"\xff\xfe\x00")
def test_any_bytes_load_as_an_article_or_an_article_error(tmp_path_factory: pytest.TempPathFactory, data: bytes):
    path = tmp_path_factory.mktemp("bytes") / "random.txt"
    path.write_bytes(data)
    try:
        article = load_article(path)
    except ArticleError as error:
        assert "\n" not in str(error)
        return
    assert article.info.article_id == "random" and article.text and len(data) <= MAX_ARTICLE_BYTES


# -- chunking -------------------------------------------------------------------------------------------

word = st.text(st.sampled_from(string.ascii_letters + "éü東-'"), min_size=1, max_size=30) | st.just("x" * 900)
sentence = (
    st.lists(word, min_size=1, max_size=80)
    .map(" ".join)
    .flatmap(lambda words: st.sampled_from([". ", "! ", "? ", " ", "\n", ".\n\n", "… "]).map(lambda end: words + end))
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sentences=st.lists(sentence, min_size=1, max_size=40),
    size=st.integers(1, 6),
    overlap=st.integers(0, 5),
    max_chars=st.integers(100, 1500),
)
def test_chunks_are_bounded_exact_slices_that_cover_the_text(sentences, size: int, overlap: int, max_chars: int):
    assume(overlap < size)
    text = "".join(sentences).strip()
    assume(text)
    from haystack import Document

    chunker = SentenceChunker(
        ChunkingSettings(sentences_per_chunk=size, overlap_sentences=overlap, max_chunk_chars=max_chars)
    )
    chunks = chunker.run([Document(content=text, meta={"article_id": "a"})])["documents"]
    covered = [False] * len(text)
    for chunk in chunks:
        start, end = chunk.meta["start"], chunk.meta["end"]
        assert chunk.content == text[start:end] and 0 < len(chunk.content) <= max_chars
        for s, e in zip(chunk.meta["sentence_starts"], chunk.meta["sentence_ends"], strict=True):
            assert 0 <= s < e <= len(chunk.content)
        covered[start:end] = [True] * (end - start)
    assert all(covered[i] for i, char in enumerate(text) if not char.isspace()), "text left out of every chunk"


def test_ordinary_inputs_are_accepted(reader_tokenizers):
    """The properties above also hold for a rule that refuses everything: ordinary inputs must pass untouched."""
    reader, _ = reader_tokenizers
    count = reader.question_tokens

    question = "Who backs Ahrar al-Sham?"
    limit = max_question_tokens(READER)
    assert clean_question(f"  {question}\n", max_chars=MAX_CHARS, max_tokens=limit, count_tokens=count) == question
    article = parse_article("---\r\ntitle: Bridge reopens\r\n---\r\nThe bridge reopened on Monday.\r\n", "bridge")
    assert article.info.title == "Bridge reopens" and article.text == "The bridge reopened on Monday."
