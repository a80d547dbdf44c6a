"""Articles from the chat, end to end: /add, documents, per-chat isolation, quotas, /sources, /use, /forget.

The real bot (``build_application``) and a real QAService over a temp copy of the articles talk to the Bot API
emulator (extended with getFile, file download and editMessageText, see ``server.js``); pages come from the local
news site of ``tests/ingest_helpers.py``, fetched with ``ingest.allow_private_urls`` on for this config only.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from bot.config import Settings, TelegramSettings, with_overrides
from bot.telegram_articles import ADMINS_ONLY, READING
from tests.conftest import SEED_ARTICLE
from tests.ingest_helpers import FERRY_HTML, PDF_LINES, PDF_TITLE, NewsSite, make_pdf, news_site
from tests.telegram_emulator.harness import Emulator, EmulatorClient, node_available, running_emulator
from tests.test_telegram_bot import bold_answer, bot_and_client, shown_text

pytestmark = [
    pytest.mark.skipif(not node_available(), reason="node is not on PATH: these tests need the Bot API emulator"),
    pytest.mark.asyncio(loop_scope="session"),
]

TOKEN = "555000:articles-bot-token"
ADMIN = 900
CHAT_A, CHAT_B = 501, 502
HARBOUR_MASTER_QUESTION = "Who is the harbour master of Port Kerran?"


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    running = news_site()
    yield running
    running.close()


@pytest.fixture(scope="module")
def article_emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def article_settings(project_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Its own articles folder (the seed article) and index, so adding articles touches no other test."""
    from bot.indexing import build_index

    root = tmp_path_factory.mktemp("chat-articles")
    (root / "articles").mkdir()
    shutil.copy(SEED_ARTICLE, root / "articles" / SEED_ARTICLE.name)
    settings = with_overrides(
        project_settings,
        {
            "articles_dir": root / "articles",
            "index_dir": root / "index",
            "ingest.allow_private_urls": True,
            "ingest.read_timeout_s": 2.0,
        },
    )
    build_index(settings, progress_bar=False)
    return settings


@pytest.fixture(scope="module")
def article_service(article_settings: Settings):
    from bot.answering import QAService

    return QAService.from_settings(article_settings)


def _telegram(emulator: Emulator, **changes) -> TelegramSettings:
    return TelegramSettings(base_url=emulator.bot_api_url, admin_user_ids=(ADMIN,), **changes)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def per_chat(article_service, article_emulator: Emulator) -> AsyncIterator[EmulatorClient]:
    """The bot with per-chat articles on: one article per chat, 20,000 characters."""
    settings = _telegram(article_emulator, user_articles="per_chat", chat_max_articles=1, chat_max_chars=20_000)
    async with bot_and_client(article_service, TOKEN, settings, article_emulator) as client:
        yield client


async def _add(client: EmulatorClient, chat: int, command: str | None = None, **document) -> str:
    """Send /add or a document and return what the progress message was edited into."""
    if command is not None:
        await client.send_command(chat, command)
    else:
        await client.send_document(chat, **document)
    (_progress,) = await client.replies(chat)  # the emulator stores edits in place: it may be edited already
    return await client.edited_text(chat, READING)


async def _answer(client: EmulatorClient, chat: int, question: str) -> str:
    await client.send_text(chat, question)
    (reply,) = await client.replies(chat)
    return shown_text(reply)


async def test_non_admins_cannot_add_when_user_articles_are_off(article_service, article_emulator: Emulator):
    settings = _telegram(article_emulator)  # user_articles: off (the default)
    async with bot_and_client(article_service, "555001:off-bot-token", settings, article_emulator) as client:
        await client.send_command(601, "/add https://example.org/news/story")
        (reply,) = await client.replies(601)
        assert reply["text"] == ADMINS_ONLY
        await client.send_document(601, file_name="story.txt", data=b"A title\n\nSome text. " * 40)
        (reply,) = await client.replies(601)
        assert reply["text"] == ADMINS_ONLY


async def test_admin_adds_a_url_to_the_shared_library(per_chat: EmulatorClient, site: NewsSite):
    result = await _add(per_chat, ADMIN, f"/add {site.url('/news/bridge')}")
    assert "Added to the shared library" in result and "Tidal bridge opens in Port Kerran" in result
    again = await _add(per_chat, ADMIN, f"/add {site.url('/go/bridge')}")
    assert "already have" in again
    # Another chat (not an admin) asks about it: shared means everyone.
    await per_chat.send_text(CHAT_B, "Who cut the ribbon to open the tidal bridge?")
    (reply,) = await per_chat.replies(CHAT_B)
    assert "Ines Calloway" in bold_answer(reply)
    assert f'<a href="{site.url("/news/bridge")}">' in reply["text"]  # the source line links the article


async def test_progress_message_is_edited_into_the_result(per_chat: EmulatorClient, site: NewsSite):
    """A page that answers after the read timeout: "Reading the article…" first, then the failure in its place."""
    await per_chat.send_command(ADMIN, f"/add {site.url('/slow')}")
    (progress,) = await per_chat.replies(ADMIN)
    assert progress["text"] == READING
    final = await per_chat.edited_text(ADMIN, READING)
    assert final.startswith("Sorry, I couldn't add that:") and "did not answer in time" in final


async def test_failures_get_a_clear_message(per_chat: EmulatorClient, site: NewsSite):
    assert "login page" in await _add(per_chat, ADMIN, f"/add {site.url('/login')}")
    assert "404" in await _add(per_chat, ADMIN, f"/add {site.url('/missing')}")
    await per_chat.send_command(ADMIN, "/add not-a-link")
    (reply,) = await per_chat.replies(ADMIN)
    assert reply["text"].startswith("Send /add followed by a link")
    await per_chat.send_document(ADMIN, file_name="photo.jpg", data=b"\xff\xd8\xff\xe0")
    (reply,) = await per_chat.replies(ADMIN)
    assert "photo.jpg is none of them" in reply["text"]


async def test_chat_article_is_seen_by_its_chat_only(per_chat: EmulatorClient):
    result = await _add(per_chat, CHAT_A, file_name="notice.pdf", data=make_pdf(PDF_TITLE, PDF_LINES))
    assert "Added for this chat only" in result and PDF_TITLE in result

    assert "Edda Lindqvist" in await _answer(per_chat, CHAT_A, HARBOUR_MASTER_QUESTION)
    # Chat B asks the very same question (same batch window, same cache): never from chat A's article.
    assert "Edda Lindqvist" not in await _answer(per_chat, CHAT_B, HARBOUR_MASTER_QUESTION)
    assert "Lindqvist" not in await _answer(per_chat, CHAT_B, "Which channel will be dredged, and by which dredger?")

    await per_chat.send_command(CHAT_B, "/sources")
    (listing,) = await per_chat.replies(CHAT_B)
    assert PDF_TITLE not in shown_text(listing) and "Tidal bridge" in shown_text(listing)
    await per_chat.send_command(CHAT_A, "/sources")
    (listing,) = await per_chat.replies(CHAT_A)
    assert f"{PDF_TITLE} [this chat only]" in shown_text(listing)
    # /help and /start list titles by the same rule: chat A's article is not shown to chat B.
    for command in ("/help", "/start"):
        await per_chat.send_command(CHAT_B, command)
        (help_text,) = await per_chat.replies(CHAT_B)
        assert PDF_TITLE not in shown_text(help_text) and "Tidal bridge" in shown_text(help_text)
    await per_chat.send_command(CHAT_A, "/help")
    (help_text,) = await per_chat.replies(CHAT_A)
    assert PDF_TITLE in shown_text(help_text)


def _long_article(title: str, sentences: int) -> bytes:
    body = " ".join(f"Berth {n} of the new marina was leased to boat owner number {n * 7}." for n in range(sentences))
    return f"{title}\n\n{body}\n".encode()


async def test_quota_per_chat(per_chat: EmulatorClient):
    result = await _add(per_chat, CHAT_A, file_name="marina.txt", data=_long_article("Marina berths", 40))
    assert "already has 1 of its 1 articles" in result
    result = await _add(per_chat, CHAT_B, file_name="marina.txt", data=_long_article("Marina berths", 400))
    assert "over its 20,000-character limit" in result


async def test_html_document_becomes_a_chat_article(per_chat: EmulatorClient):
    result = await _add(per_chat, CHAT_B, file_name="ferry.html", data=FERRY_HTML)
    assert "Added for this chat only" in result and "The Kerran Flyer makes its last crossing" in result
    assert "212" in await _answer(per_chat, CHAT_B, "How many passengers were on the last crossing of the ferry?")
    assert "Paulo Brandt" not in await _answer(per_chat, CHAT_B, "Who edits the Morning Brief newsletter?")


async def test_use_focuses_on_one_article_and_forget_removes_it(per_chat: EmulatorClient):
    await per_chat.send_command(CHAT_A, "/sources")
    (listing,) = await per_chat.replies(CHAT_A)
    lines = shown_text(listing).splitlines()
    number = next(line.split(".", 1)[0] for line in lines if line.split(".", 1)[-1].strip().startswith(PDF_TITLE))

    await per_chat.send_command(CHAT_A, f"/use {number}")
    (reply,) = await per_chat.replies(CHAT_A)
    assert PDF_TITLE in shown_text(reply)
    assert "Turkey" not in await _answer(per_chat, CHAT_A, "Who backs Ahrar al-Sham?")  # the Aleppo article is out
    await per_chat.send_command(CHAT_A, "/use all")
    await per_chat.replies(CHAT_A)
    assert "Turkey, Saudi Arabia, and Qatar" in await _answer(per_chat, CHAT_A, "Who backs Ahrar al-Sham?")

    await per_chat.send_command(CHAT_A, "/forget 99")
    (reply,) = await per_chat.replies(CHAT_A)
    assert reply["text"].startswith("Send /forget N")
    await per_chat.send_command(CHAT_A, f"/forget {number}")
    (reply,) = await per_chat.replies(CHAT_A)
    assert "Forgotten" in reply["text"] and PDF_TITLE in shown_text(reply)
    assert "Edda Lindqvist" not in await _answer(per_chat, CHAT_A, HARBOUR_MASTER_QUESTION)
    # The quota is free again.
    assert "Added for this chat only" in await _add(per_chat, CHAT_A, file_name="bridge-notes.md", data=(
        b"# Cycle routes to the tidal bridge\n\n" + b"The council will paint new cycle lanes on Quay Street. " * 20
    ))


class _RecordedMessage:
    """Just the two Message calls ``_ingest_with_progress`` makes (reply, then edit), recorded."""

    def __init__(self) -> None:
        self.edits: list[str] = []

    def build_reply_arguments(self, **_: object) -> dict:
        return {}

    async def reply_text(self, text: str, **_: object) -> _RecordedMessage:
        return self

    async def edit_text(self, text: str, **_: object) -> None:
        self.edits.append(text)


async def test_a_telegram_error_shown_to_the_chat_never_quotes_the_token():
    from telegram.error import NetworkError

    from bot.telegram_articles import _ingest_with_progress
    from bot.telegram_token import REDACTED

    async def failing_download():
        raise NetworkError(f"httpx.ConnectError: http://127.0.0.1:1/file/bot{TOKEN}/documents/file_1.pdf")

    message = _RecordedMessage()
    await _ingest_with_progress(message, None, failing_download, TOKEN)  # type: ignore[arg-type]
    (shown,) = message.edits
    assert "couldn't download that file" in shown and TOKEN not in shown and REDACTED in shown
