"""The whole deployment on one machine: ``scripts/deploy-local.sh start 2 --telegram``.

Real processes throughout: two ``qabot serve`` workers on one PostgreSQL + pgvector store (a schema of this
module's own), haproxy round-robin in front of them, and ``qabot telegram`` in webhook mode forwarding every
question to haproxy (``telegram.answer_url``), its replies going to the Bot API emulator. Telegram's side of a
webhook is played here: the test POSTs Telegram-shaped updates to the bot's webhook with the
``X-Telegram-Bot-Api-Secret-Token`` header, as Telegram does (the emulator's own webhook delivery sends no secret
and would be refused). Skipped, with the reason, when PostgreSQL, node or haproxy cannot be had.

The workers start once for the module (about 20-40 s of it); the tests share them and use one chat each.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bot.config import PROJECT_ROOT, Settings, TelegramSettings
from bot.serve_client import WORKERS_DOWN, conversation_key
from bot.telegram_articles import ARTICLES_AT_WORKERS
from bot.telegram_bot import webhook_arguments
from bot.telegram_chat import NEW_CONVERSATION
from bot.telegram_replies import EMPTY_QUESTION
from tests.telegram_emulator.harness import Emulator, EmulatorClient, node_available, reply_target, running_emulator
from tests.test_pgvector_backend import _config_file, _free_port_base, pg_settings  # noqa: F401 (fixtures)
from tests.test_pgvector_store import pg_dsn  # noqa: F401 (a fixture)
from tests.test_telegram_bot import shown_text
from tests.test_telegram_chat import buttons

TOKEN = "424242:qabot-webhook-deploy-SECRET"
SCRIPT = PROJECT_ROOT / "scripts" / "deploy-local.sh"
FOLLOW_UPS = json.loads((PROJECT_ROOT / "tests" / "data" / "aleppo_followups.json").read_text())["conversations"]
OPENING, FOLLOW_UP = next(c for c in FOLLOW_UPS if c["id"] == "followup-01")["turns"][:2]

pytestmark = [
    pytest.mark.skipif(not node_available(), reason="node is not on PATH: the Bot API emulator needs it"),
    pytest.mark.asyncio(loop_scope="session"),
]
_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


@dataclass(frozen=True)
class Deployment:
    lb_url: str
    webhook: str  # where Telegram would post the updates
    secret: str
    run_dir: Path
    env: dict[str, str]

    def bot_pid(self) -> int:
        return int((self.run_dir / "telegram.pid").read_text())

    def asks_per_worker(self) -> list[int]:
        return [(self.run_dir / f"worker-{i}.log").read_text().count("POST /ask") for i in (1, 2)]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def deployment(pg_settings: Settings, emulator: Emulator, tmp_path_factory) -> Iterator[Deployment]:  # noqa: F811
    folder = tmp_path_factory.mktemp("webhook-deploy")
    base = _free_port_base(4)  # haproxy, two workers, the bot's webhook
    env = {
        **os.environ,
        "QABOT_CONFIG": str(_config_file(pg_settings, folder)),
        "QABOT_DEPLOY_DIR": str(folder / "run"),
        "QABOT_LB_PORT": str(base),
        "QABOT_BOT_PORT": str(base + 3),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": emulator.bot_api_url,
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", "2", "--telegram"], env=env, capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0 and os.geteuid() != 0 and "haproxy is missing" in started.stderr:
        pytest.skip("haproxy is not installed and cannot be installed here (not root)")
    try:
        assert started.returncode == 0, started.stderr
        printed = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
        assert TOKEN not in started.stdout + started.stderr
        settings = TelegramSettings(mode="webhook", webhook_url=f"http://127.0.0.1:{base + 3}/telegram")
        yield Deployment(
            lb_url=printed["QABOT_URL"],
            webhook=f"http://127.0.0.1:{base + 3}/telegram",
            secret=webhook_arguments(settings, TOKEN)["secret_token"],  # the bot's own rule
            run_dir=folder / "run",
            env=env,
        )
        assert printed["QABOT_WEBHOOK"].startswith(f"http://127.0.0.1:{base + 3}")
    finally:
        stopped = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=180)
        log = (folder / "run" / "telegram.log").read_text() if (folder / "run" / "telegram.log").exists() else ""
        assert TOKEN not in log, "the bot token leaked into the bot's log"
        assert stopped.returncode == 0, stopped.stderr


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def users(deployment: Deployment, emulator: Emulator) -> AsyncIterator[Users]:
    async with httpx.AsyncClient(timeout=30) as http:
        client = EmulatorClient(emulator, TOKEN)
        try:
            yield Users(deployment, http, client)
        finally:
            await client.aclose()


class Users:
    """Telegram's part: updates to the webhook (with the secret header), the bot's replies read at the emulator."""

    def __init__(self, deployment: Deployment, http: httpx.AsyncClient, emulator: EmulatorClient) -> None:
        self.deployment, self.http, self.emulator = deployment, http, emulator

    async def post(self, update: dict[str, Any]) -> None:
        response = await self.http.post(
            self.deployment.webhook,
            json={"update_id": next(_update_ids), **update},
            headers={"X-Telegram-Bot-Api-Secret-Token": self.deployment.secret},
        )
        assert response.status_code == 200, response.text

    async def say(self, user_id: int, text: str, count: int = 1) -> list[dict[str, Any]]:
        """Send ``text`` from ``user_id`` in a private chat; the bot's ``count`` replies."""
        message = _message(user_id, text)
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        await self.post({"message": message})
        return await self.emulator.replies(user_id, count=count, timeout=60)

    async def press(self, user_id: int, reply: dict[str, Any], data: str) -> list[dict[str, Any]]:
        chat = {"id": user_id, "type": "private", "first_name": "U"}
        source = {"message_id": reply["message_id"], "date": int(time.time()), "chat": chat, "text": "…"}
        query = {"id": f"cb-{next(_update_ids)}", "from": _user(user_id), "chat_instance": "1", "data": data}
        await self.post({"callback_query": {**query, "message": source}})
        return await self.emulator.replies(user_id, timeout=60)


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}


def _message(user_id: int, text: str) -> dict[str, Any]:
    chat = {"id": user_id, "type": "private", "first_name": f"User{user_id}"}
    return {"message_id": next(_message_ids), "date": int(time.time()), "chat": chat, "from": _user(user_id),
            "text": text}  # fmt: skip


def stored_turns(pg_settings: Settings, chat_id: int) -> list[str]:  # noqa: F811
    """The chat's conversation as the workers keep it in PostgreSQL (``http:`` + the bot's key for the chat)."""
    from bot.stores.pgvector_conversations import PostgresConversationStore

    store = PostgresConversationStore(pg_settings)
    try:
        return [turn.question for turn in store.get("http:" + conversation_key(TOKEN, chat_id))]
    finally:
        store.close()


# -- the tests ----------------------------------------------------------------------------------------------


async def test_the_bot_forwards_and_loads_no_model(deployment: Deployment):
    """The bot process is a thin front end: no ONNX runtime mapped, so no reader and no embedder in it."""
    maps = Path(f"/proc/{deployment.bot_pid()}/maps").read_text()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{deployment.bot_pid()}/status").read_text()).group(1))
    print(f"bot RSS {rss_kib / 1024:.0f} MiB")
    assert "onnxruntime" not in maps and "libtorch" not in maps
    log = (deployment.run_dir / "telegram.log").read_text()
    assert f"forwarding questions to {deployment.lb_url}/ask" in log


async def test_a_question_and_its_follow_up_on_the_other_worker(users: Users, deployment: Deployment):
    (sources,) = await users.say(701, "/sources")  # GET /articles once (cached): the round robin moves on
    assert "1. Syria's opposition is on the verge" in shown_text(sources) and "/use" not in shown_text(sources)
    assert sources["parse_mode"] == "HTML" and reply_target(sources) is not None  # quoted, like every reply
    before = deployment.asks_per_worker()

    (first,) = await users.say(701, OPENING["question"])
    assert OPENING["answers"][0] in shown_text(first)
    assert "Other answers" in buttons(first) or "👍" in buttons(first)
    after_first = deployment.asks_per_worker()

    (second,) = await users.say(701, FOLLOW_UP["question"])
    after_second = deployment.asks_per_worker()
    assert FOLLOW_UP["answers"][0] in shown_text(second), shown_text(second)
    assert "reading ‘it’ as Ahrar al-Sham" in shown_text(second)  # resolved from the shared conversation table
    first_worker = [b - a for a, b in zip(before, after_first, strict=True)]
    second_worker = [b - a for a, b in zip(after_first, after_second, strict=True)]
    assert sorted([first_worker, second_worker]) == [[0, 1], [1, 0]], (first_worker, second_worker)


async def test_new_resets_the_conversation_in_the_shared_store(users: Users, pg_settings: Settings):  # noqa: F811
    await users.say(702, OPENING["question"])
    assert stored_turns(pg_settings, 702) == [OPENING["question"]]
    (reset,) = await users.say(702, "/new")
    assert reset["text"] == NEW_CONVERSATION
    assert stored_turns(pg_settings, 702) == []
    (alone,) = await users.say(702, FOLLOW_UP["question"])  # no earlier turn: not read as a follow-up
    assert "reading" not in shown_text(alone)


async def test_other_answers_and_votes_work_through_the_workers(users: Users, deployment: Deployment):
    """The /ask JSON carries the runner-ups, so "Other answers" is answered from the bot's memory of the answer."""
    (answer,) = await users.say(703, "What is Ahrar al-Sham a coalition of?")
    keys = buttons(answer)
    assert set(keys) == {"Other answers", "👍", "👎"}, keys
    (others,) = await users.press(703, answer, keys["Other answers"])
    assert "Other possible answers" in shown_text(others)
    source = {"message_id": answer["message_id"], "date": int(time.time()), "chat": {"id": 703, "type": "private"}}
    vote = {"id": "vote-1", "from": _user(703), "chat_instance": "1", "data": keys["👍"], "message": source}
    await users.post({"callback_query": vote})
    votes_file = deployment.run_dir / "votes.jsonl"
    deadline = time.monotonic() + 10
    while not votes_file.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    (vote,) = [json.loads(line) for line in votes_file.read_text().splitlines()]
    assert vote["vote"] == "up" and vote["question"] == "What is Ahrar al-Sham a coalition of?"


async def test_article_commands_and_bad_questions_get_one_clear_message(users: Users):
    (refused,) = await users.say(704, "/add https://example.org/story")
    assert refused["text"] == ARTICLES_AT_WORKERS
    (helped,) = await users.say(704, "/help")  # the workers' shared library (GET /articles)
    assert "I know this article:" in shown_text(helped) and "Syria's opposition is on the verge" in shown_text(helped)
    (too_long,) = await users.say(704, "x" * 1500)  # the workers' 422, in the bot's words
    assert shown_text(too_long).startswith("Sorry, I can't answer that:") and "1,000" in shown_text(too_long)
    assert shown_text(too_long).endswith("Please ask something shorter.")  # the 422's reason: too_long
    (empty,) = await users.say(704, " \n ")  # reason: empty, worded as the bot words its own refusal
    assert empty["text"] == EMPTY_QUESTION


async def test_unreachable_workers_give_one_clear_message(users: Users, deployment: Deployment):
    """Last in the module: the workers are stopped; the bot stays up and says so once per question."""
    for pidfile in sorted(deployment.run_dir.glob("worker-*.pid")):
        os.kill(int(pidfile.read_text()), signal.SIGTERM)
    for pidfile in sorted(deployment.run_dir.glob("worker-*.pid")):
        deadline = time.monotonic() + 60
        while Path(f"/proc/{int(pidfile.read_text())}").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    (reply,) = await users.say(705, "Who backs Ahrar al-Sham?")
    assert reply["text"] == WORKERS_DOWN
    assert await users.emulator.new_replies(705) == []  # one message, not one per retry
    (reset,) = await users.say(705, "/new")
    assert reset["text"] == WORKERS_DOWN
    log = (deployment.run_dir / "telegram.log").read_text()
    assert "Traceback" not in log and TOKEN not in log
