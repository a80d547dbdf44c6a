"""How the Telegram bot answers a message, shared by its handler modules: a quoted reply, the typing status,
and the words for a question the service refused.

Its own module because all three handler modules send these: ``bot.telegram_bot`` (start-up, /help, the
application), ``bot.telegram_chat`` (answering) and ``bot.telegram_articles`` (/sources). They import each other
(``telegram_bot`` the other two, ``telegram_chat`` ``telegram_articles``); kept in ``telegram_bot`` or
``telegram_chat``, these could be imported by the modules below only inside their functions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, InlineKeyboardMarkup, Message
from telegram.constants import ChatAction, ParseMode

from bot.errors import EmptyQuestionError, InvalidQuestionError, QuestionTooLongError

log = logging.getLogger(__name__)

EMPTY_QUESTION = "Your message has no question in it. Send me a question about the article as text."


def question_problem(error: InvalidQuestionError) -> str:
    """What the user reads about a question the service refused (the same words here and behind the workers:
    ``ServeClient`` rebuilds the workers' error type from their 422). Chosen by the error's type, which says
    which rule refused the question; its text is the rule's own wording and may change."""
    if isinstance(error, EmptyQuestionError):
        return EMPTY_QUESTION
    if isinstance(error, QuestionTooLongError):
        return f"Sorry, I can't answer that: {error}. Please ask something shorter."
    return f"Sorry, I can't answer that: {error}."


async def reply_to(
    message: Message, texts: Sequence[str], as_html: bool = False, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Reply to ``message`` (quoted), one Telegram message per text; still sent if the question was deleted.

    The bot's one way of replying with text (answers, /help, /sources, refusals): ``markup`` (an answer's buttons)
    goes under the last message, where the reader ends up.
    """
    for index, text in enumerate(texts):
        await message.reply_text(
            text,
            parse_mode=ParseMode.HTML if as_html else None,
            do_quote=message.build_reply_arguments(allow_sending_without_reply=True),
            reply_markup=markup if index == len(texts) - 1 else None,
        )


async def show_typing(bot: Bot, chat_id: int) -> None:
    """Best effort: a chat without the 'typing…' status still gets its answer."""
    try:
        await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
    except Exception as error:
        log.debug("could not show typing in chat %s: %s", chat_id, error)
