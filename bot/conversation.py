"""Conversation memory and follow-up resolution: "who backs Ahrar al-Sham?" then "when was it founded?".

Two jobs, both independent of how an answer is produced (``QAService`` stays stateless):

* ``ConversationStore`` keeps the last turns of each conversation (a Telegram chat, a CLI session). The
  in-memory store is bounded (conversations and turns) and forgets a conversation after idle time; it is a
  Protocol so that a shared store (PostgreSQL) can replace it without touching the callers.
* ``resolve_follow_up`` decides whether a question refers back (a pronoun such as it/he/they/there/that, or an
  ellipsis such as "On which day?") and, if so, gives the reader a rewritten question (the reference replaced
  by the entity it points to) and retrieval a query expanded with the previous question and answer. A
  self-contained question is returned untouched.

Why rules and not a model: no coreference model is installable offline here, and the questions people ask a
news bot are short; the rules below were chosen on ``tests/data/aleppo_followups.json`` with
``benchmarks/follow_ups.py`` (see the README for the numbers).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.answer_batcher import AnswerBatcher

if TYPE_CHECKING:  # the service pulls in the model libraries
    from bot.answer import Answer
    from bot.answering import ArticleScope

# -- memory ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One answered question: as asked, as the reader read it, and the answer (None = the article doesn't say)."""

    question: str
    read_as: str
    answer: str | None
    reference: tuple[str, str] | None = None  # (pronoun, entity) when the question was rewritten


class ConversationStore(Protocol):
    """Where conversations live; keyed by a conversation id (a chat id, a CLI session)."""

    def get(self, conversation_id: str) -> list[Turn]: ...

    def append(self, conversation_id: str, turn: Turn) -> None: ...

    def reset(self, conversation_id: str) -> None: ...


class InMemoryConversationStore:
    """Thread-safe, bounded, idle-expiring conversation memory for one process.

    ``max_conversations`` bounds memory whatever the number of chats (least recently used go first),
    ``max_turns`` keeps only what resolution needs, ``idle_seconds`` makes a question asked tomorrow a fresh
    start rather than a follow-up of yesterday's.
    """

    def __init__(
        self,
        max_conversations: int = 10_000,
        max_turns: int = 3,
        idle_seconds: float = 30 * 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_conversations < 1 or max_turns < 1 or idle_seconds <= 0:
            raise ValueError("max_conversations, max_turns and idle_seconds must be positive")
        self.max_conversations, self.max_turns, self.idle_seconds = max_conversations, max_turns, idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._conversations: OrderedDict[str, tuple[float, list[Turn]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._conversations)

    def get(self, conversation_id: str) -> list[Turn]:
        with self._lock:
            entry = self._conversations.get(conversation_id)
            if entry is None:
                return []
            last_seen, turns = entry
            if self._clock() - last_seen > self.idle_seconds:
                del self._conversations[conversation_id]
                return []
            return list(turns)

    def append(self, conversation_id: str, turn: Turn) -> None:
        with self._lock:
            now = self._clock()
            entry = self._conversations.pop(conversation_id, None)
            turns = entry[1] if entry is not None and now - entry[0] <= self.idle_seconds else []
            turns = [*turns, turn][-self.max_turns :]
            self._conversations[conversation_id] = (now, turns)
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)

    def reset(self, conversation_id: str) -> None:
        with self._lock:
            self._conversations.pop(conversation_id, None)


# -- follow-up resolution -------------------------------------------------------------------------------

ReaderMode = Literal["rewrite", "original"]
RetrievalMode = Literal["question", "rewrite", "both", "auto"]


@dataclass(frozen=True)
class Resolved:
    """What to ask: the reader's question, retrieval's query, and how a rewritten question was read."""

    question_for_reader: str
    retrieval_query: str
    interpreted_as: str | None = None  # the rewritten question, None when the question was left alone
    reference: tuple[str, str] | None = None  # ("it", "Ahrar al-Sham"): the first word replaced
    also: tuple[tuple[str, str], ...] = ()  # further words replaced in the same question ("there" → Turkey)

    @property
    def is_follow_up(self) -> bool:
        return self.retrieval_query != self.question_for_reader or self.interpreted_as is not None


_WORD = re.compile(r"[\w’'-]+|[^\w\s]")
_PERSON_PRONOUNS = {"he", "him", "his", "she", "her"}
_PLURAL_PRONOUNS = {"they", "them", "their"}
_THING_PRONOUNS = {"it", "its"}
_POSSESSIVES = {"its", "their", "his", "her"}
_AUX = {
    "is", "are", "was", "were", "be", "been", "do", "does", "did", "has", "have", "had", "can", "could", "will",
    "would", "should", "might", "may",
}  # fmt: skip
_PREPOSITIONS = {
    "in", "on", "at", "to", "for", "of", "from", "with", "by", "about", "into", "over", "after", "before",
    "during", "while", "under", "against", "as", "than",
}  # fmt: skip
_DETERMINERS = {"the", "a", "an"}
_ARTICLE_LIKE = _DETERMINERS | {"this", "these", "those", "he", "she", "it", "they", "we", "you", "i", "his", "her"}
_WH = {"who", "whom", "whose", "what", "which", "where", "when", "why", "how"}
_NOT_THINGS = {"kind", "type", "sort", "part", "parts", "day", "year", "time", "country", "city", "place"}
_PERSON_NOUNS = (
    "fighter|combatant|journalist|reporter|officer|official|commander|leader|spokesman|spokeswoman|man|woman|"
    "person|soldier|minister|president|analyst"
)
_PLACE_QUESTION = re.compile(r"^(where\b|from where\b|.*\bwhich (country|city|town|place|region)\b)", re.I)
_NON_ENTITY_QUESTION = re.compile(r"^(where|when|until when|since when|why|how (much|many|long|far))\b", re.I)
_ELLIPSIS_START = re.compile(r"^(and|what about|how about|or)\b", re.I)
_EXPLETIVE_VERBS = {"take", "takes", "took", "seem", "seems", "seemed", "mean", "means"}
_NAME_CONNECTORS = {"al", "of", "for", "the", "de", "bin", "ibn"}


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text)


def _is_name_token(token: str) -> bool:
    return token[:1].isupper() or bool(re.match(r"^(al|el|ad|as)-[A-Z]", token))


def _clean_entity(text: str) -> str:
    return re.sub(r"(’s|'s)$", "", text.strip(" ,.?!"))


def named_entities(question: str) -> list[str]:
    """Capitalised phrases of a question after its first word ("Ahrar al-Sham", "The Soufan Group")."""
    tokens = _tokens(question)
    entities, current = [], []
    for index, token in enumerate(tokens):
        if index == 0:
            continue
        starts_or_continues = _is_name_token(token) and token.casefold() not in _WH
        connects = current and token.casefold() in _NAME_CONNECTORS and index + 1 < len(tokens)
        if starts_or_continues or (connects and _is_name_token(tokens[index + 1])):
            current.append(token)
        else:
            if current:
                entities.append(_clean_entity(" ".join(current)))
            current = []
    if current:
        entities.append(_clean_entity(" ".join(current)))
    # A lone nationality adjective ("Which Syrian journalist …") names nothing by itself.
    return [entity for entity in entities if entity and not re.fullmatch(r"[A-Z][a-z]+(ian|ese|ish|i)", entity)]


def _noun_phrase(question: str, plural: bool = False) -> str | None:
    """A common-noun phrase of the question ("the aid convoy", "the artillery base", "civilians")."""
    tokens = [t for t in _tokens(question) if re.match(r"[\w’'-]", t)]
    lowered = [t.casefold() for t in tokens]
    aux_before = {i for i, t in enumerate(lowered) if t in {"did", "does", "do"}}
    for start, token in enumerate(lowered):
        if token not in _DETERMINERS or start == 0:
            continue
        end = start + 1
        while end < len(tokens) and lowered[end] not in _PREPOSITIONS | _AUX | _WH | {"that", ","}:
            end += 1
        words = tokens[start:end]
        if any(i < start for i in aux_before) and len(words) > 2:
            words = words[:-1]  # "did the aid convoy come from": the main verb follows the subject
        if len(words) >= 2 and (not plural or words[-1].endswith("s")):
            return " ".join(words)
    if plural:  # a bare plural noun, not the verb right after the question word ("Who backs …")
        first = 2 if lowered and lowered[0] in _WH else 1
        candidates = [t for t in tokens[first:] if re.fullmatch(r"[a-z]+[^s]s", t) and t.casefold() not in _AUX]
        return candidates[-1] if candidates else None
    return None


def _place_phrase(question: str) -> str | None:
    """The last "at the academy"/"in Aleppo" of a question ("according to" names a source, not a place)."""
    pattern = r"(?<!according )\b(?:in|at|to|into|from)\s+(the\s+[\w-]+|[A-Z][\w-]+(?:\s+[A-Z][\w-]+)*)"
    matches = re.findall(pattern, question)
    return matches[-1] if matches else None


def _looks_like_list(answer: str) -> bool:
    return "," in answer or " and " in answer


def _looks_like_name(answer: str) -> bool:
    words = answer.split()
    return 0 < len(words) <= 4 and all(_is_name_token(w) or w in _NAME_CONNECTORS for w in words)


def _asks_which_thing(question: str) -> bool:
    """ "Which group …?", "What alliance …?": the answer is the entity the next question talks about."""
    words = [t.casefold() for t in _tokens(question)[:2]]
    return len(words) == 2 and words[0] in {"which", "what"} and words[1] not in _AUX | _NOT_THINGS | _WH


def _references(question: str) -> list[tuple[int, str, bool]]:
    """(token index, pronoun, rewritable) for each word of ``question`` that refers outside it.

    Not references: possessives after a name in the same question ("Syrian government forces … their
    control"), existential "there" ("was there heavy fighting"), "that" introducing a clause ("said that the
    …"). "that"/"those"/"this" before a noun ("that claim") refer back but are left in place (the noun
    carries the meaning; retrieval still gets the previous turn).
    """
    tokens = _tokens(question)
    lowered = [t.casefold() for t in tokens]
    found = []
    for i, word in enumerate(lowered):
        nxt = lowered[i + 1] if i + 1 < len(lowered) else "?"
        prev = lowered[i - 1] if i else ""
        before = tokens[1:i]
        names_before = any(_is_name_token(t) for t in before)
        if word in _PERSON_PRONOUNS | _PLURAL_PRONOUNS | _THING_PRONOUNS:
            if word in _POSSESSIVES and names_before:
                continue  # "Syrian government forces … under their control"
            if word in _PERSON_PRONOUNS | _PLURAL_PRONOUNS and (names_before or "the" in lowered[:i]):
                continue  # "Did the fighter say they …": the antecedent is in the question itself
            if word == "it" and nxt in _EXPLETIVE_VERBS:
                continue  # "How long did it take …"
            found.append((i, word, True))
        elif word == "there":
            if nxt in _AUX or prev in _AUX or _place_phrase(" ".join(before)):
                continue  # "was there fighting", "at the academy when the fighter went there"
            found.append((i, word, True))
        elif word == "that":
            after_next = lowered[i + 2] if i + 2 < len(lowered) else "?"
            if not re.match(r"\w", nxt) or nxt in _PREPOSITIONS:
                found.append((i, word, True))
            elif nxt not in _ARTICLE_LIKE | _AUX and not _is_name_token(tokens[i + 1]) and not re.match(
                r"\w", after_next
            ):
                found.append((i, word, False))  # "that claim?" (not "that leads into …")
        elif word in {"those", "these", "this"} and re.match(r"\w", nxt) and nxt not in _AUX:
            found.append((i, word, False))
    return found


def _is_ellipsis(question: str) -> bool:
    words = [t for t in _tokens(question) if re.match(r"\w", t)]
    if _ELLIPSIS_START.match(question.strip()):
        return True
    return len(words) <= 3 and not named_entities(question)


def _opening(question: str) -> tuple[str, ...]:
    return tuple(t.casefold() for t in _tokens(question)[:2])


def _asks_for_plural_thing(asked: str, answer: str) -> bool:
    """A who/which/what question answered by one plural noun phrase ("Foreign fighters", not a list)."""
    words = answer.split()
    return (
        bool(words)
        and asked.split()[0].casefold() in {"who", "which", "what"}
        and not _looks_like_list(answer)
        and re.fullmatch(r"[a-z]+[^s]s", words[-1]) is not None
    )


def _entity_for(pronoun: str, previous: Turn, question: str = "") -> str | None:
    """What ``pronoun`` in ``question`` points to in the previous turn (its answer, or what it was about)."""
    asked, answer = previous.read_as, previous.answer
    carried = previous.reference[1] if previous.reference else None
    entities = named_entities(asked)
    if pronoun == "there":
        if answer and _PLACE_QUESTION.match(asked):
            return answer
        return _place_phrase(asked)
    if pronoun in _PERSON_PRONOUNS:
        if carried and previous.reference and previous.reference[0] in _PERSON_PRONOUNS:
            return carried
        first = asked.split()[0].casefold() if asked.split() else ""
        asks_person = first == "who" or re.match(rf"^which [\w-]* ?({_PERSON_NOUNS})\b", asked, re.I)
        if answer and asks_person and _looks_like_name(answer):
            return answer
        match = re.search(rf"\bthe (?:[\w-]+ ){{0,3}}?(?:{_PERSON_NOUNS})\b", asked, re.I)
        if match:
            return match.group(0)
        people = [e for e in entities if len(e.split()) >= 2]
        return people[0] if people else (answer if answer and _looks_like_name(answer) else None)
    if pronoun in _PLURAL_PRONOUNS:
        if carried and previous.reference and previous.reference[0] in _PLURAL_PRONOUNS:
            return carried
        same_verb = _opening(asked) == _opening(question)  # "who backs X?" → "who backs them?": still X
        if answer and not same_verb and _asks_for_plural_thing(asked, answer):
            return answer  # "Who dominated the pro-regime forces?" → "Foreign fighters" → "who backs them?"
        return _noun_phrase(asked, plural=True) or (entities[0] if entities else answer)
    if pronoun == "that" and answer:
        return answer  # "How much is that in miles?": what was just said
    # it / its / that
    if carried and previous.reference and previous.reference[0] in _THING_PRONOUNS | {"that"}:
        return carried
    if _NON_ENTITY_QUESTION.match(asked) or asked.casefold().startswith("who "):
        return entities[0] if entities else _noun_phrase(asked) or answer
    if answer and _looks_like_list(answer):
        return entities[0] if entities else _noun_phrase(asked)
    if answer and _asks_which_thing(asked):
        return answer
    if entities:
        return entities[0]
    return answer or _noun_phrase(asked)


def _replace(tokens: list[str], index: int, entity: str) -> list[str]:
    word = tokens[index].casefold()
    replacement = f"{entity}’s" if word in _POSSESSIVES else entity
    if word == "there":
        motion = index and tokens[index - 1].casefold() in {"go", "went", "come", "came", "return", "travel"}
        replacement = entity if re.match(r"^(in|at|to|from)\b", entity) else f"{'to' if motion else 'in'} {entity}"
    return [*tokens[:index], replacement, *tokens[index + 1 :]]


def _join(tokens: list[str]) -> str:
    text = " ".join(tokens)
    return re.sub(r"\s+([?.!,;:’'])", r"\1", text).replace("’ s", "’s")


_WHAT_ABOUT = re.compile(r"^(?:and |but )?(?:what|how) about (?P<subject>.+?)\W*$|^and (?P<subject2>.+?)\?$", re.I)


def _same_question_about(question: str, previous: Turn) -> str | None:
    """ "What about Qatar?" / "And Jabhat Fatah al-Sham?" after "who backs Ahrar al-Sham?": the previous
    question asked again about the new subject (its name swapped), or None when that does not apply."""
    match = _WHAT_ABOUT.match(question.strip())
    if not match:
        return None
    subject = (match.group("subject") or match.group("subject2") or "").strip()
    entities = named_entities(previous.read_as)
    names_something = any(_is_name_token(word) for word in subject.split()) or subject.casefold().startswith("the ")
    if not names_something or not entities or len(subject.split()) > 6:
        return None
    return previous.read_as.replace(entities[0], subject, 1)


def _ellipsis_topic(previous: Turn) -> str | None:
    """What an elliptical question ("On which day?") is about: the last answer, else the last question's name."""
    if previous.answer and not _looks_like_list(previous.answer):
        return previous.answer
    entities = named_entities(previous.read_as)
    return entities[0] if entities else previous.answer


def _ellipsis_question(question: str, topic: str) -> str:
    """ "On which day?" after "Which firm …? — The Soufan Group" → "On which day The Soufan Group?".

    Measured against joining the whole previous question (the reader then answered that question again).
    """
    base = _ELLIPSIS_START.sub("", question.strip().rstrip("?")).strip(" ,")
    return f"{base[:1].upper()}{base[1:]} {topic}?"


def resolve_follow_up(
    question: str,
    history: Sequence[Turn],
    reader_mode: ReaderMode = "rewrite",
    retrieval_mode: RetrievalMode = "auto",
) -> Resolved:
    """How to ask ``question`` given the conversation so far (oldest turn first).

    ``reader_mode``/``retrieval_mode`` exist so that ``benchmarks/follow_ups.py`` can measure the
    alternatives; the defaults are what measured best.
    """
    untouched = Resolved(question, question)
    if not history:
        return untouched
    previous = history[-1]
    references = _references(question)
    rewritable = [(i, word) for i, word, rewrite in references if rewrite]
    rewritten, reference, replaced, swapped_subject = question, None, [], False
    if rewritable:
        tokens = _tokens(question)
        replacements, used, replaced = [], set(), []
        for index, word in rewritable:  # the first mention gets the name; "he … his interview" keeps "his"
            entity = _entity_for(word, previous, question)
            if entity and entity.casefold() not in question.casefold() and entity not in used:
                used.add(entity)
                replacements.append((index, entity))
                replaced.append((word, entity))
                reference = reference or (word, entity)
        for index, entity in reversed(replacements):  # right to left: indices stay valid
            tokens = _replace(tokens, index, entity)
        rewritten = _join(tokens) if reference else question
    elif not references and (swapped := _same_question_about(question, previous)):
        rewritten, swapped_subject = swapped, True  # described whole: "reading it as “who backs Qatar?”"
    elif not references and _is_ellipsis(question) and (topic := _ellipsis_topic(previous)):
        rewritten = _ellipsis_question(question, topic)
        reference = ("", topic)
    elif not references:
        return untouched
    reader_question = rewritten if reader_mode == "rewrite" else question
    expansion = " ".join(part for part in (previous.read_as, previous.answer) if part)
    retrieval_query = {
        "question": question,
        "rewrite": rewritten,
        "both": f"{rewritten} {expansion}",
        # the rewrite when a pronoun was replaced by a name, else (ellipsis, "that claim") the previous turn too
        "auto": rewritten if (reference and reference[0]) or swapped_subject else f"{rewritten} {expansion}",
    }[retrieval_mode]
    interpreted = rewritten if rewritten != question and reader_mode == "rewrite" else None
    if reference is None and interpreted is None and retrieval_query == question:
        return untouched
    also = tuple((word, entity) for word, entity in replaced[1:]) if rewritable else ()
    return Resolved(reader_question, retrieval_query, interpreted, reference, also)


def describe(resolved: Resolved) -> str | None:
    """The line a user reads: "reading 'it' as Ahrar al-Sham" (or the whole question for an ellipsis)."""
    if resolved.reference:
        word, entity = resolved.reference
        if not word:
            return f"reading it as a question about {entity}"
        readings = [f"‘{w}’ as {e}" for w, e in (resolved.reference, *resolved.also)]
        return "reading " + " and ".join(readings)
    if resolved.interpreted_as:
        return f"reading it as “{resolved.interpreted_as}”"
    return None


# -- one conversational question through the service ------------------------------------------------------


class AnswersQuestions(Protocol):
    """The part of ``QAService`` a conversation needs (kept narrow so that tests and the bot can wrap it)."""

    def answer_many(
        self,
        questions: list[str],
        scopes: Sequence[frozenset[str] | None] | None = None,
        retrieval_queries: list[str | None] | None = None,
    ) -> list: ...


def answer_resolved(
    service: AnswersQuestions, resolved: Sequence[Resolved], scopes: Sequence[frozenset[str] | None] | None = None
) -> list:
    """Answer resolved questions in one batch; ``Answer.question`` is what the reader read.

    ``scopes`` (one per question, None = every article) limits each question to a chat's articles.
    Scopes and retrieval queries are passed only when some question has one, so a service (or a test
    double) that predates them keeps working for plain questions.
    """
    questions = [item.question_for_reader for item in resolved]
    options: dict[str, Any] = {}
    if scopes is not None and any(scope is not None for scope in scopes):
        options["scopes"] = list(scopes)
    if any(item.is_follow_up for item in resolved):
        options["retrieval_queries"] = [item.retrieval_query for item in resolved]
    return service.answer_many(questions, **options)


def resolved_batcher(
    service: AnswersQuestions, window: float, workers: int
) -> AnswerBatcher[tuple[Resolved, ArticleScope], Answer]:
    """An ``AnswerBatcher`` of (resolved question, scope) pairs: questions arriving within ``window`` seconds share
    one ``answer_resolved`` call, on one of ``workers`` threads (the Telegram bot and the HTTP API both use it)."""
    return AnswerBatcher(
        lambda batch: answer_resolved(service, [resolved for resolved, _ in batch], [scope for _, scope in batch]),
        window=window,
        workers=workers,
    )


def turn_for(question: str, resolved: Resolved, answer_text: str | None) -> Turn:
    """The turn to remember after answering ``question``."""
    return Turn(question, resolved.question_for_reader, answer_text, resolved.reference)


# -- one turn of a conversation (the CLI chat, the Telegram bot and the HTTP API all take turns here) ----------

async def take_turn(
    question: str,
    *,
    validate: Callable[[str], str],
    store: ConversationStore,
    conversation_id: str | None,
    scope: ArticleScope,
    answer: Callable[[Resolved, ArticleScope], Awaitable[Answer]],
) -> tuple[Answer, Resolved]:
    """Validate → resolve a follow-up against the conversation → answer → remember the turn.

    ``validate`` raises ``InvalidQuestionError`` before anything is read or remembered. ``conversation_id`` None
    is a question outside any conversation (nothing read, nothing remembered). The store may be a database
    (``bot.stores``), so it is read and written off the event loop. ``answer`` is how the caller answers one
    resolved question in ``scope`` (the Telegram bot and the HTTP API batch through an ``AnswerBatcher``).
    The answer's ``question`` is the question as asked; how it was read is ``Resolved.interpreted_as``.
    """
    question = validate(question)
    history = await asyncio.to_thread(store.get, conversation_id) if conversation_id is not None else []
    resolved = resolve_follow_up(question, history)
    result = replace(await answer(resolved, scope), question=question)
    if conversation_id is not None:
        await asyncio.to_thread(store.append, conversation_id, turn_for(question, resolved, result.text))
    return result, resolved


def turn_json_line(answer: Answer, resolved: Resolved) -> str:
    """The ``ask --json`` object plus ``interpreted_as`` (the rewritten question, or null) and ``reading`` (the
    line a person reads: "reading ‘it’ as Ahrar al-Sham", or null): ``chat --json`` and ``POST /ask`` print
    exactly this, and the Telegram bot in front of ``qabot serve`` workers shows ``reading`` as it would its own."""
    turn = {**answer.to_json_dict(), "interpreted_as": resolved.interpreted_as, "reading": describe(resolved)}
    return json.dumps(turn, ensure_ascii=False)
