"""Answer -> terminal text, JSON line, or Telegram HTML messages (escaped and split under 4,096 chars)."""

from __future__ import annotations

import html
import json

from bot.answer import Answer

NO_ANSWER_TEXT = "The article doesn't say."
TELEGRAM_MESSAGE_LIMIT = 4096


def render_json_line(answer: Answer) -> str:
    """One JSON object on one line (the ``qabot ask --json`` contract)."""
    return json.dumps(answer.to_json_dict(), ensure_ascii=False)


def _highlighted_context(answer: Answer, before: str, after: str, escape=lambda s: s) -> str | None:
    if answer.context is None:
        return None
    if answer.context_start is None or answer.context_end is None:
        return escape(answer.context)
    start, end = answer.context_start, answer.context_end
    return (
        escape(answer.context[:start])
        + before
        + escape(answer.context[start:end])
        + after
        + escape(answer.context[end:])
    )


def render_terminal(answer: Answer, color: bool = False) -> str:
    """Human output: the answer, its confidence and the source sentence with the answer highlighted."""
    if not answer.answered:
        return f"{NO_ANSWER_TEXT} ({answer.score:.0%} sure it doesn't)"  # a refusal's score: P(not in the article)
    bold, reset = ("\033[1m", "\033[0m") if color else ("", "")
    mark_open, mark_close = ("\033[1;33m", "\033[0m") if color else ("[", "]")
    lines = [f"{bold}{answer.text}{reset}  (confidence {answer.score:.0%})"]
    context = _highlighted_context(answer, mark_open, mark_close)
    if context:
        lines.append(f"  “{context}”")
    if answer.source:
        lines.append(f"  — {answer.source.title}, characters {answer.source.start}–{answer.source.end}")
    for alternative in answer.alternatives:
        lines.append(f"  also possible: {alternative.text} ({alternative.score:.0%})")
    return "\n".join(lines)


def render_telegram_html(answer: Answer) -> list[str]:
    """Telegram HTML (parse_mode=HTML): every piece of article text escaped, split under the 4,096 limit."""
    if not answer.answered:
        return [html.escape(f"🤷 {NO_ANSWER_TEXT}")]
    parts = [f"<b>{html.escape(answer.text or '')}</b>\n<i>confidence {answer.score:.0%}</i>"]
    context = _highlighted_context(answer, "<u>", "</u>", escape=html.escape)
    if context:
        parts.append(f"<blockquote>{context}</blockquote>")
    if answer.source:
        parts.append(f"— {html.escape(answer.source.title)}")
    return split_message("\n".join(parts))


def split_message(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Split on line breaks (then hard) so that no message exceeds Telegram's limit.

    Splitting inside an HTML tag pair would break parsing, so an over-long line is re-escaped as plain text.
    """
    if len(text) <= limit:
        return [text]
    messages: list[str] = []
    current = ""
    for line in text.split("\n"):
        if len(line) > limit:
            if current:
                messages.append(current)
                current = ""
            plain = html.escape(html.unescape(_strip_tags(line)))
            messages.extend(_hard_split(plain, limit))
            continue
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            messages.append(current)
            current = line
        else:
            current = candidate
    if current:
        messages.append(current)
    return messages


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"</?[a-z]+>", "", text)


def _hard_split(text: str, limit: int) -> list[str]:
    """Cut plain escaped text under ``limit`` without splitting an HTML entity such as ``&amp;``."""
    pieces = []
    while text:
        cut = min(limit, len(text))
        amp = text.rfind("&", max(0, cut - 8), cut)
        if amp != -1 and ";" not in text[amp:cut] and cut < len(text):
            cut = amp
        pieces.append(text[:cut])
        text = text[cut:]
    return pieces
