"""The one rule for what counts as a question: the CLI, the Telegram bot and evaluation all go through it.

Why tokens and not only characters: the reader reads the question and a slice of a passage in one window of
``reader.max_seq_length`` tokens, sliding over the passage ``stride`` tokens at a time. A question of 1,000
characters can be 500 tokens; it leaves no room for the passage, and the tokenizer fails (or, just under the
limit, slides one token at a time: hundreds of windows per passage). So the question may take at most the
window minus the stride, the 3 special tokens and ``MIN_PASSAGE_STEP_TOKENS``: every window then moves on by
at least that many passage tokens.

Why lone surrogates are replaced: bytes that are not UTF-8 reach Python as lone surrogates (``\\udcff``, from
argv or a stream decoded with ``surrogateescape``); no tokenizer takes them, and they cannot be printed or
sent as JSON. They become U+FFFD, the Unicode replacement character, as a UTF-8 decoder with
``errors="replace"`` would have made them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.config import ReaderSettings
from bot.errors import EmptyQuestionError, QuestionNotTextError, QuestionTooLongError

# Passage tokens each reader window moves on by, at least, for the longest question allowed.
MIN_PASSAGE_STEP_TOKENS = 64
# [CLS] question [SEP] passage [SEP]
SPECIAL_TOKENS_PER_WINDOW = 3

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def max_question_tokens(reader: ReaderSettings) -> int:
    """The most question tokens that leave every reader window room to move over the passage."""
    return max(1, reader.max_seq_length - reader.stride - SPECIAL_TOKENS_PER_WINDOW - MIN_PASSAGE_STEP_TOKENS)


def replace_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (undecodable input bytes) replaced by U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def clean_question(
    question: object,
    *,
    max_chars: int,
    max_tokens: int,
    count_tokens: Callable[[str], int],
) -> str:
    """The question as it will be asked, or an InvalidQuestionError subclass (which rule) saying what is wrong.

    White space and control characters collapse to single spaces; ``count_tokens`` is the reader's own
    tokenizer (question tokens, no special tokens).
    """
    if not isinstance(question, str):
        raise QuestionNotTextError("the question must be text")
    cleaned = " ".join(_CONTROL_CHARS.sub(" ", replace_surrogates(question)).split())
    if not cleaned:
        raise EmptyQuestionError("the question is empty")
    if len(cleaned) > max_chars:
        raise QuestionTooLongError(f"the question is too long: {len(cleaned):,} characters; the limit is {max_chars:,}")
    tokens = count_tokens(cleaned)
    if tokens > max_tokens:
        raise QuestionTooLongError(
            f"the question is too long: {tokens:,} words and word pieces; the limit is {max_tokens:,}"
        )
    return cleaned
