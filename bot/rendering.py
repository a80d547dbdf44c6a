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


TITLE_CHARS = 60  # a source line longer than the answer buries the answer
REFUSAL_HINT = "I answer questions whose answer is written in the article, such as who, what, where or when."


def confidence_words(score: float) -> str:
    """The confidence as a person says it, with the number: "fairly sure (82%)"."""
    levels = ((0.9, "very sure"), (0.75, "fairly sure"), (0.6, "somewhat sure"), (0.0, "not sure"))
    words = next(words for floor, words in levels if score >= floor)
    return f"{words} ({score:.0%})"


def short_title(title: str, limit: int = TITLE_CHARS) -> str:
    """The title cut at a word boundary under ``limit`` characters, with an ellipsis when cut."""
    if len(title) <= limit:
        return title
    cut = title[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:—–-")
    return f"{cut}…"


def render_telegram_html(
    answer: Answer, note: str | None = None, url: str | None = None, hint: str | None = None
) -> list[str]:
    """Telegram HTML (parse_mode=HTML): every piece of article text escaped, split under the 4,096 limit.

    ``note`` says how a follow-up was read ("reading ‘it’ as Ahrar al-Sham"), ``url`` links the source line,
    ``hint`` follows a refusal (what the bot can answer instead).
    """
    head = [f"<i>{html.escape(note)}</i>"] if note else []
    if not answer.answered:
        refusal = html.escape(f"🤷 {NO_ANSWER_TEXT}")
        if note or hint:  # the bot's refusal: how sure, then what it can do instead
            refusal += f" <i>({answer.score:.0%} sure it doesn't)</i>"
        lines = [*head, refusal]
        if hint:
            lines.append(html.escape(hint))
        return split_message("\n".join(lines))
    parts = [*head, f"<b>{html.escape(answer.text or '')}</b>\n<i>{confidence_words(answer.score)}</i>"]
    context = _highlighted_context(answer, "<u>", "</u>", escape=html.escape)
    if context:
        parts.append(f"<blockquote>{context}</blockquote>")
    if answer.source:
        title = html.escape(short_title(answer.source.title))
        if url:
            title = f'<a href="{html.escape(url, quote=True)}">{title}</a>'
        parts.append(f"— {title}")
    return split_message("\n".join(parts))


def render_alternatives_html(answer: Answer) -> list[str]:
    """The runner-up answers ("Other answers" button), each with its confidence and sentence."""
    if not answer.alternatives:
        return ["No other answer comes close."]
    lines = ["<b>Other possible answers</b>"]
    for alternative in answer.alternatives:
        lines.append(f"• <b>{html.escape(alternative.text)}</b> <i>({alternative.score:.0%})</i>")
        lines.append(f"  “{html.escape(alternative.context)}”")
    return split_message("\n".join(lines))


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
