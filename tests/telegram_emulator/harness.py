"""Test harness for the Telegram end-to-end tests: the telegram-test-api emulator and a client that plays users.

``running_emulator()`` starts ``server.js`` (telegram-test-api behind a small response fixer, see its header:
getMe gets ``is_bot`` and message dates come back in seconds, the two answers python-telegram-bot would reject)
on 127.0.0.1 and an ephemeral port chosen by node itself, so parallel runs never race for a port. It installs
the emulator with ``npm ci`` first when ``node_modules`` is missing, waits until the Bot API answers, and
stops the process afterwards (node also exits by itself when its stdin closes, so a killed test run leaves no
orphan).

``EmulatorClient`` speaks the emulator's client API (``/sendMessage``, ``/sendCommand``, ``/getUpdates`` for
the bot's replies, ``/getUpdatesHistory``), which is not Telegram's: user messages are posted whole, with the
bot token in the body, and the bot's replies come back as the raw parameters the bot sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import select
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

EMULATOR_DIR = Path(__file__).resolve().parent
EMULATOR_PACKAGE = EMULATOR_DIR / "node_modules" / "telegram-test-api"
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0


class EmulatorError(RuntimeError):
    """The emulator could not be installed or started; the message carries its output."""


def node_available() -> bool:
    return shutil.which("node") is not None


def ensure_installed() -> None:
    """Install the emulator from package-lock.json when its node_modules are missing (a fresh checkout)."""
    if EMULATOR_PACKAGE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise EmulatorError(f"node_modules missing in {EMULATOR_DIR} and npm is not on PATH to install them")
    command = [npm, "ci" if (EMULATOR_DIR / "package-lock.json").exists() else "install", "--no-audit", "--no-fund"]
    result = subprocess.run(command, cwd=EMULATOR_DIR, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 or not EMULATOR_PACKAGE.exists():
        raise EmulatorError(f"{' '.join(command)} failed in {EMULATOR_DIR}:\n{result.stdout}\n{result.stderr}")


@dataclass(frozen=True)
class Emulator:
    """A running emulator: where the bot and the test client reach it."""

    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def bot_api_url(self) -> str:
        """What goes in ``telegram.base_url``: the bot appends its token and the method."""
        return f"{self.url}/bot"


@contextlib.contextmanager
def running_emulator() -> Iterator[Emulator]:
    """Start the emulator, yield it once its Bot API answers, stop it on exit."""
    ensure_installed()
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            ["node", "server.js", HOST],
            cwd=EMULATOR_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            emulator = Emulator(_read_port(process, stderr))
            _wait_until_up(emulator)
            yield emulator
        finally:
            _stop(process)


def _read_port(process: subprocess.Popen[str], stderr: Any) -> int:
    """The port from the one JSON line server.js prints once it listens."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    try:
        return int(json.loads(line)["port"])
    except (ValueError, KeyError, TypeError):
        stderr.seek(0)
        raise EmulatorError(
            f"the emulator did not start (exit code {process.poll()}):\n{line}{stderr.read()}"
        ) from None


def _wait_until_up(emulator: Emulator) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{emulator.bot_api_url}probe/getMe", timeout=2) as response:
                if json.load(response).get("ok"):
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.stdin:
        process.stdin.close()
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stdout:
        process.stdout.close()


class EmulatorClient:
    """Plays Telegram users talking to one bot (by token), each user in their own private chat."""

    def __init__(self, emulator: Emulator, token: str) -> None:
        self._http = httpx.AsyncClient(base_url=emulator.url, timeout=10)
        self._token = token

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send_text(self, user_id: int, text: str) -> None:
        await self.send(user_id, text=text)

    async def send_command(self, user_id: int, command: str) -> None:
        """A command as Telegram delivers it: text plus a ``bot_command`` entity at offset 0."""
        length = len(command.split(" ", 1)[0])
        await self._post("/sendCommand", self._message(user_id, text=command, entities=[_command_entity(length)]))

    async def send(self, user_id: int, **content: Any) -> None:
        """Any message: ``text=...``, ``sticker={...}``, ``photo=[...]``..."""
        await self._post("/sendMessage", self._message(user_id, **content))

    async def send_document(self, user_id: int, file_name: str, data: bytes, mime_type: str | None = None) -> None:
        """A document message; its bytes are stored first so the bot's getFile and download find them."""
        file_id = f"doc-{user_id}-{time.monotonic_ns()}"
        await self._post("/uploadFile", {"file_id": file_id, "content_base64": base64.b64encode(data).decode()})
        document = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": file_name}
        document["file_size"] = len(data)
        if mime_type:
            document["mime_type"] = mime_type
        await self.send(user_id, document=document)

    async def edited_text(self, chat_id: int, progress: str, timeout: float = 60.0) -> str:
        """Once no bot message in the chat says ``progress`` any more, the text it was edited into.

        The emulator stores edits in place and ``/getUpdatesHistory`` shows every stored bot message.
        """
        deadline = time.monotonic() + timeout
        while True:
            history = (await self._post("/getUpdatesHistory", {"token": self._token}))["result"]
            ours = [u for u in history if str(u.get("message", {}).get("chat_id")) == str(chat_id) and "botToken" in u]
            ours.sort(key=lambda update: int(update["messageId"]))
            texts = [str(update["message"].get("text")) for update in ours]
            if texts and progress not in texts:
                return texts[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"chat {chat_id}: still {progress!r} after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def replies(self, chat_id: int, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait for ``count`` new bot messages in the chat (fails after ``timeout``); returns what the bot sent."""
        received: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            received += await self.new_replies(chat_id)
            if len(received) >= count:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"chat {chat_id}: {len(received)} of {count} replies after {timeout:.0f} s")
            await asyncio.sleep(0.05)
        return received

    async def new_replies(self, chat_id: int) -> list[dict[str, Any]]:
        """Bot messages in the chat not fetched before (the emulator marks them read), with their message_id."""
        body = await self._post("/getUpdates", {"token": self._token, "chatId": chat_id})
        return [{**update["message"], "message_id": update["messageId"]} for update in body["result"]]

    async def send_group(
        self,
        user_id: int,
        chat_id: int,
        text: str | None = None,
        entities: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
        **content: Any,
    ) -> None:
        """A message from ``user_id`` in the supergroup ``chat_id`` (negative), optionally replying to a message;
        ``content`` is any other message content (``sticker={...}``)."""
        message = self._message(user_id, **({"text": text} if text is not None else {}), **content)
        message["chat"] = {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        path = "/sendCommand" if entities and entities[0]["type"] == "bot_command" else "/sendMessage"
        await self._post(path, message)

    async def press_button(self, user_id: int, bot_message: dict[str, Any], data: str) -> None:
        """The user taps an inline button with ``data`` under ``bot_message`` (a reply from ``replies``)."""
        chat_id = int(bot_message["chat_id"])
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message = {"message_id": bot_message["message_id"], "chat": chat, "date": int(time.time()), "text": "…"}
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        await self._post("/sendCallback", {"botToken": self._token, "from": user, "message": message, "data": data})

    async def bot_calls(self, method: str) -> list[dict[str, str]]:
        """The parameters of this bot's calls to a method the wrapper records (setMyCommands, answerCallbackQuery)."""
        response = await self._http.get("/qabot/calls")
        response.raise_for_status()
        calls = [c["body"] for c in response.json()["result"] if c["token"] == self._token and c["method"] == method]
        return [_parameters(body) for body in calls]

    async def make_fail(self, method: str) -> None:
        """From now on (until ``reset_wrapper``) the wrapper answers ``method`` with a 400 error."""
        await self._post("/qabot/fail", {"method": method})

    async def reset_wrapper(self) -> None:
        await self._post("/qabot/reset", {})

    async def user_message_id(self, chat_id: int, text: str) -> int:
        """The message_id the emulator gave the user's message with this text (to check what a reply quotes)."""
        history = (await self._post("/getUpdatesHistory", {"token": self._token}))["result"]
        for update in history:
            message = update.get("message", {})
            if message.get("chat", {}).get("id") == chat_id and message.get("text") == text:
                return int(update["messageId"])
        raise AssertionError(f"no user message {text!r} in chat {chat_id}")

    def _message(self, user_id: int, **content: Any) -> dict[str, Any]:
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}", "username": f"user{user_id}"}
        chat = {"id": user_id, "type": "private", "first_name": user["first_name"], "username": user["username"]}
        return {"botToken": self._token, "from": user, "chat": chat, "date": int(time.time()), **content}

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._http.post(path, json=payload)
        response.raise_for_status()
        return response.json()


def _parameters(body: str) -> dict[str, str]:
    """A Bot API request body as python-telegram-bot sends it (form-encoded; JSON also accepted)."""
    if body.lstrip().startswith("{"):
        return {key: value if isinstance(value, str) else json.dumps(value) for key, value in json.loads(body).items()}
    return {key: values[-1] for key, values in urllib.parse.parse_qs(body).items()}


def _command_entity(length: int) -> dict[str, Any]:
    return {"offset": 0, "length": length, "type": "bot_command"}


def reply_target(bot_message: dict[str, Any]) -> int | None:
    """The message_id a bot message replies to (the bot sends ``reply_parameters`` as a JSON string)."""
    parameters = bot_message.get("reply_parameters")
    if isinstance(parameters, str):
        parameters = json.loads(parameters)
    return int(parameters["message_id"]) if parameters else None
