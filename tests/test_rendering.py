"""Rendering: the JSON contract, Telegram HTML escaping and the 4,096-character split."""

import html
import json

from bot.answer import Alternative, Answer, Source
from bot.rendering import NO_ANSWER_TEXT, render_json_line, render_telegram_html, render_terminal, split_message

SOURCE = Source(article_id="a", title="A <b>title</b> & more", start=10, end=17)
ANSWER = Answer(
    question="q?",
    text="<Qatar>",
    score=0.912,
    context="Backed by <Qatar> & co.",
    context_start=10,
    context_end=17,
    source=SOURCE,
    alternatives=(Alternative(text="Turkey", score=0.2, context="c", source=SOURCE),),
)


def test_json_line_contract():
    payload = json.loads(render_json_line(ANSWER))
    assert set(payload) == {
        "question", "answer", "score", "context", "context_start", "context_end", "source", "alternatives"
    }  # fmt: skip
    assert (payload["context_start"], payload["context_end"]) == (10, 17)
    assert Answer.from_json_dict(payload) == ANSWER  # what the bot in front of `qabot serve` reads back
    assert payload["answer"] == "<Qatar>"
    assert payload["source"] == {"article_id": "a", "title": SOURCE.title, "start": 10, "end": 17}
    assert payload["alternatives"][0]["answer"] == "Turkey"
    empty = json.loads(render_json_line(Answer(question="q", text=None, score=0.9)))
    assert empty["answer"] is None and empty["context"] is None and empty["alternatives"] == []


def test_telegram_html_escapes_and_highlights():
    (message,) = render_telegram_html(ANSWER)
    assert "<b>&lt;Qatar&gt;</b>" in message
    assert "<u>&lt;Qatar&gt;</u>" in message
    assert "&amp; co." in message and "A &lt;b&gt;title&lt;/b&gt; &amp; more" in message


def test_no_answer_rendering():
    answer = Answer(question="q", text=None, score=0.8)
    assert NO_ANSWER_TEXT in render_terminal(answer)
    assert NO_ANSWER_TEXT in html.unescape(render_telegram_html(answer)[0])


def test_terminal_marks_answer_in_sentence():
    assert "[<Qatar>]" in render_terminal(ANSWER)


def test_split_message_respects_limit_and_entities():
    long_line = "&amp;" * 2000  # 10,000 characters of entities
    parts = split_message("<b>head</b>\n" + long_line, limit=4096)
    assert all(len(p) <= 4096 for p in parts)
    joined = "".join(parts[1:])
    assert html.unescape(joined) == "&" * 2000
    assert split_message("short") == ["short"]
