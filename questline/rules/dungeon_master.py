"""The Dungeon Master: turns chat messages into quest-log tool calls and fantasy prose.

``DungeonMaster`` is the small interface the session actor talks to; an
external language model can implement it later. ``LocalDungeonMaster`` is the
deterministic stand-in that needs no network: regular expressions find the
intent (create, list, complete, abandon, extend), ``dateparser`` resolves the
natural-language times in the user's zone, and templates chosen by a stable
hash write the prose, so the same message in the same state always gets the
same answer (testable, replayable).

The DM never mutates state: it proposes ``ToolCall`` s with the same params the
direct JSON API takes, the actor applies them through the same validation, and
the DM then reports each ``ToolOutcome`` in its own voice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import dateparser
import msgspec

from questline.rules.questmaster import CompletedQuest, Progress, Task, to_iso, to_ms

DEFAULT_XP = 50
MAX_TIME_WORDS = 10
MAX_MESSAGE_LENGTH = 10_000
PREVIOUS_STORIES = 3  # how many earlier completion stories a new one may build on
EPITHETS = (
    "the Ember-Sworn",
    "the Lantern-Bearer",
    "the Oathkeeper",
    "the Stormwalker",
    "the Unbowed",
)


# --------------------------------------------------------------------------- interface


class ToolCall(msgspec.Struct, frozen=True):
    """One quest-log operation, with the params of the direct JSON API."""

    tool: str  # createTask | updateTask | deleteTask | viewTasks
    params: dict[str, Any] = {}


class DMReply(msgspec.Struct, frozen=True):
    """What the DM says before any tool runs, and the tools it wants run (in order)."""

    chunks: list[str]
    tool_calls: list[ToolCall] = []


class ToolOutcome(msgspec.Struct, frozen=True):
    """What applying one ToolCall did, for the DM to narrate."""

    call: ToolCall
    ok: bool
    error: str | None = None
    task: Task | None = None  # the task created, updated, completed or abandoned
    previous_end_ms: int | None = None  # an update's end time before it
    xp_earned: int = 0
    bonus: int = 0
    penalty: int = 0
    narrative: str = ""
    tasks: list[Task] = []  # the active quests after the call


class SessionView(msgspec.Struct, frozen=True):
    """The part of a session's state the DM may read."""

    tasks: list[Task]
    recent: list[CompletedQuest]  # newest last
    progress: Progress


class DungeonMaster(Protocol):
    """What the session actor needs from a game master, local or remote."""

    def respond(self, message: str, state: SessionView, now_ms: int, zone: ZoneInfo) -> DMReply:
        """Understand ``message``: the opening words and the tool calls to run."""
        ...

    def report(self, outcome: ToolOutcome, now_ms: int, zone: ZoneInfo) -> list[str]:
        """Tell the adventurer what a tool call did (or why it failed)."""
        ...

    def narrate(
        self,
        task: Task,
        previous: Sequence[CompletedQuest],
        *,
        chapter: int,
        streak: int,
        xp_earned: int,
        now_ms: int,
        zone: ZoneInfo,
    ) -> str:
        """Chapter ``chapter`` of the session's chronicle: the completion story of ``task``,
        continuing the ``previous`` stories (oldest first)."""
        ...


# --------------------------------------------------------------------------- helpers


def _pick(options: Sequence[str], *seed: object) -> str:
    """A stable choice: the same seed always picks the same line (no ``random``)."""
    digest = hashlib.blake2b("|".join(map(str, seed)).encode(), digest_size=8).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _local(ms: int, zone: ZoneInfo) -> datetime:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).astimezone(zone)


def describe_when(ms: int, zone: ZoneInfo) -> str:
    """``5:00 PM on Friday, January 16`` in the user's zone."""
    moment = _local(ms, zone)
    hour = moment.strftime("%I").lstrip("0") or "12"
    return f"{hour}:{moment:%M} {moment:%p} on {moment:%A}, {moment:%B} {moment.day}"


_WORD = re.compile(r"[a-z0-9']+")
_STOPWORDS = frozenset(
    "a an the my our your this that these those quest quests task tasks mission missions to of "
    "for with as and on in at i i've ive im i'm me have has had just already please now it is "
    "be been was done mark marked finally called named".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _keywords(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}


def find_task(reference: str, tasks: Sequence[Task]) -> Task | list[Task] | None:
    """The active quest a phrase names: one Task, several equally good candidates, or None.

    Matches by number ("quest 2", "the second quest"), by id, or by the share of
    the phrase's keywords found in a quest's name; "it" works when only one quest exists.
    """
    if not tasks:
        return None
    text = reference.lower().strip()
    for task in tasks:
        if task.id.lower() in text:
            return task
    number = re.search(r"\b(?:quest|task|mission|number|#)\s*#?(\d{1,3})\b", text)
    if number and 1 <= int(number.group(1)) <= len(tasks):
        return tasks[int(number.group(1)) - 1]
    for word, index in _ORDINALS.items():
        if re.search(rf"\bthe {word} (?:quest|task|mission|one)\b", text):
            if index == -1:
                return tasks[-1]
            if index <= len(tasks):
                return tasks[index - 1]
    wanted = _keywords(text)
    if not wanted:
        return tasks[0] if len(tasks) == 1 else None
    scored: list[tuple[float, Task]] = []
    for task in tasks:
        have = _keywords(task.name)
        common = wanted & have
        if common:
            scored.append((len(common) / len(wanted | have), task))
    if not scored:
        return None
    best = max(score for score, _ in scored)
    winners = [task for score, task in scored if score == best]
    return winners[0] if len(winners) == 1 else winners


# --------------------------------------------------------------------------- time phrases

_TIME_HINT = re.compile(
    r"\b(today|tonight|tomorrow|noon|midnight|morning|afternoon|evening|night|eod|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thur|thurs|"
    r"fri|sat|sun|january|february|march|april|may|june|july|august|september|october|"
    r"november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|week|weeks|day|days|"
    r"hour|hours|minute|minutes|month|months|next|end of (?:the )?day)\b"
    r"|\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b|\d{4}-\d{2}-\d{2}",
    re.IGNORECASE,
)
_CLOCK_HINT = re.compile(
    r"\d\s*(?:am|pm|a\.m\.|p\.m\.)|\d:\d\d|\b(noon|midnight|morning|afternoon|evening|"
    r"tonight|night|hour|hours|minute|minutes)\b|T\d\d",
    re.IGNORECASE,
)
_STRONG_START = re.compile(
    r"(?:today|tonight|tomorrow|noon|midnight|eod|end of (?:the )?day|in \S+ (?:minute|hour|day|week)|"
    r"next\b|this (?:morning|afternoon|evening|week)|the day after tomorrow|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)
_RELATIVE_HINT = re.compile(r"^\s*in\s+\S+|\bago\b", re.IGNORECASE)
_END_OF_DAY = re.compile(r"^(?:the\s+)?(?:end of (?:the )?day|eod)(?:\s+today)?$", re.IGNORECASE)
_CONNECTOR = re.compile(
    r"\s*(?:,|\bby\b|\buntil\b|\btill\b|\bbefore\b|\bdue\b|\bdeadline\b|\bends?\b|\bat\b|\bon\b|"
    r"\bfor\b|\bto\b|\bon or before\b|\bno later than\b)\s*$",
    re.IGNORECASE,
)


def parse_when(phrase: str, now_ms: int, zone: ZoneInfo) -> int | None:
    """A natural-language moment ("5pm tomorrow", "friday", "in 2 hours") as Unix ms.

    Resolved in the user's ``zone`` relative to ``now_ms``. A day without a
    clock time means the end of that day (23:59 local: "by Friday" leaves all of
    Friday); a bare time already past today means tomorrow. Local wall times are
    turned into instants by ``zoneinfo``, so DST days come out right.
    """
    phrase = phrase.strip().strip(",.;!?").strip()
    if not phrase or not _TIME_HINT.search(phrase):
        return None
    now_local = _local(now_ms, zone)
    if _END_OF_DAY.match(phrase):
        return to_ms(now_local.replace(hour=23, minute=59, second=0, microsecond=0))
    parsed = dateparser.parse(
        phrase,
        languages=["en"],
        settings={
            "RELATIVE_BASE": now_local.replace(tzinfo=None),
            "PREFER_DATES_FROM": "future",
            "RETURN_AS_TIMEZONE_AWARE": False,
        },
    )
    if parsed is None:
        return None
    if parsed.tzinfo is not None:  # the phrase named its own zone ("5pm UTC")
        return to_ms(parsed)
    if not _CLOCK_HINT.search(phrase) and not _RELATIVE_HINT.search(phrase):
        parsed = parsed.replace(hour=23, minute=59, second=0, microsecond=0)
    moment = parsed.replace(tzinfo=zone)
    if to_ms(moment) <= now_ms and not _RELATIVE_HINT.search(phrase):
        moment = (parsed + timedelta(days=1)).replace(tzinfo=zone)  # calendar day, DST-safe
    return to_ms(moment)


def split_time_suffix(text: str, now_ms: int, zone: ZoneInfo) -> tuple[str, int | None, str]:
    """Split "finish my report by 5pm tomorrow" into ("finish my report", <ms>, "5pm tomorrow").

    The longest trailing run of words that parses as a moment wins; the words
    joining it to the rest ("by", "until", "at", ...) are dropped.
    """
    words = text.split()
    # Time phrases are short: looking at the last few words bounds the parser's work
    # (a 10,000-character message must not cost thousands of parses inside a turn).
    for start in range(max(0, len(words) - MAX_TIME_WORDS), len(words)):
        candidate = " ".join(words[start:])
        if not _TIME_HINT.search(candidate):
            continue
        # "call May about the march" has no deadline: a time phrase must follow a
        # connector ("by", "at", "due", ...) or open with an unmistakable time word.
        joined = start > 0 and _CONNECTOR.search(" " + words[start - 1]) is not None
        if not joined and not _STRONG_START.match(candidate):
            continue
        moment = parse_when(candidate, now_ms, zone)
        if moment is not None:
            head = " ".join(words[:start])
            while True:
                trimmed = _CONNECTOR.sub("", head)
                if trimmed == head:
                    break
                head = trimmed
            return head.strip(" ,.;:"), moment, candidate
    return text.strip(" ,.;:"), None, ""


_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "half an": 0.5,
    "half a": 0.5,
}
_DURATION = re.compile(
    r"\b(?:by|for|another|an extra|extra|a further)?\s*"
    r"(\d+(?:\.\d+)?|half an|half a|an|a|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
    r"\s+(?:more\s+|extra\s+)?(minute|min|hour|hr|day|week)s?\b",
    re.IGNORECASE,
)


def parse_extension(text: str) -> tuple[str, str, float] | None:
    """A relative extension ("by 2 hours", "by a day"): (matched text, unit, amount)."""
    match = _DURATION.search(text)
    if not match:
        return None
    raw = match.group(1).lower()
    amount = float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw)
    unit = {"min": "minute", "hr": "hour"}.get(match.group(2).lower(), match.group(2).lower())
    return match.group(0), unit, amount


def extend_by(end_ms: int, unit: str, amount: float, zone: ZoneInfo) -> int:
    """Push a deadline later: minutes and hours are elapsed time, days and weeks are
    calendar days in the user's zone (5 pm stays 5 pm across a DST change)."""
    if unit in ("minute", "hour"):
        return end_ms + int(amount * (60_000 if unit == "minute" else 3_600_000))
    days = amount * (7 if unit == "week" else 1)
    whole = int(days)
    local = _local(end_ms, zone).replace(tzinfo=None) + timedelta(days=whole)
    return to_ms(local.replace(tzinfo=zone)) + int((days - whole) * 86_400_000)


# --------------------------------------------------------------------------- intents

_XP = re.compile(
    r"(?:,?\s*(?:for|worth|with|and|reward(?:ing)?|giving)?\s*)?\b(\d{1,7})\s*(?:xp|exp|experience(?: points)?|points?)\b"
    r"|\b(?:xp|exp)\s*[:=]?\s*(\d{1,7})\b",
    re.IGNORECASE,
)
_CREATE = re.compile(
    r"^\s*(?:please\s+|can you\s+|could you\s+|i want to\s+|i'd like to\s+|let's\s+)?"
    r"(?:create|add|make|start|begin|log|set up|new|give me)\s+(?:me\s+)?(?:a\s+|an\s+|another\s+)?"
    r"(?:new\s+)?(?:side\s+)?(?:quest|task|mission|todo|to-do)\b\s*(?::|-)?\s*"
    r"(?:to\s+|for\s+|called\s+|named\s+|titled\s+|about\s+)?(?P<rest>.*)$"
    r"|^\s*(?:please\s+)?remind me to\s+(?P<rest2>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_LIST = re.compile(
    r"^\W*(?:please\s+|can you\s+|could you\s+)?(?:list|show|view|see|display|what|what's|whats|which|how many|tell me)\b.*\b(?:quests?|tasks?|missions?)\b"
    r"|^\s*(?:my\s+)?(?:quests|tasks|missions|quest log)\s*\??\s*$"
    r"|\bwhat (?:do i have|is left|remains)\b",
    re.IGNORECASE,
)
_EXTEND = re.compile(
    r"\b(?:extend|postpone|push back|push|delay|move|reschedule|defer|give me more time)\b",
    re.IGNORECASE,
)
_ABANDON = re.compile(
    r"\b(?:abandon|give up(?: on)?|forsake|drop|cancel|forfeit|delete|remove|quit)\b",
    re.IGNORECASE,
)
_COMPLETE = re.compile(
    r"\b(?:complete|completed|finish|finished|done|accomplished|accomplish|did|conquered|"
    r"vanquished|achieved|fulfilled|mark\b.*\bdone)\b",
    re.IGNORECASE,
)
_FILLER_VERBS = re.compile(
    r"\b(?:complete|completed|finish|finished|done|accomplished|accomplish|did|conquered|vanquished|"
    r"achieved|fulfilled|mark|abandon|give up(?: on)?|forsake|drop|cancel|forfeit|delete|remove|"
    r"quit|extend|postpone|push back|push|delay|move|reschedule|defer|i have|i've|i|just|please|"
    r"with|the deadline of|deadline)\b",
    re.IGNORECASE,
)


_PRONOUNS = {"my": "your", "me": "you", "i": "you", "myself": "yourself", "mine": "yours"}


def _deed(name: str, person: str = "second") -> str:
    """A quest name as a deed in a sentence: "Finish my report" -> "finish your report"
    (second person, for descriptions) or "finish their report" (third, for the stories)."""
    third = {"your": "their", "you": "they", "yourself": "themselves", "yours": "theirs"}
    words = []
    for word in name.split():
        core = word.lower()
        swapped = _PRONOUNS.get(core)
        if swapped and person == "third":
            swapped = {"you": "them" if core == "me" else "they"}.get(swapped, third.get(swapped))
        words.append(swapped or word)
    text = " ".join(words)
    return text[:1].lower() + text[1:]


def _title(name: str) -> str:
    name = re.sub(r"\s+", " ", name).strip(" ,.;:!?")
    return name[:1].upper() + name[1:]


class LocalDungeonMaster:
    """Deterministic, offline Dungeon Master (see the module docstring)."""

    # -- respond -------------------------------------------------------------------
    def respond(self, message: str, state: SessionView, now_ms: int, zone: ZoneInfo) -> DMReply:
        text = " ".join(message.split())
        if not text:
            return DMReply([self._greeting(state)])
        create = _CREATE.match(text)
        if create:
            return self._create(
                create.group("rest") or create.group("rest2") or "", text, now_ms, zone
            )
        if _LIST.search(text):
            return DMReply([self._list_intro(state)], [ToolCall("viewTasks")])
        if _EXTEND.search(text):
            return self._extend(text, state, now_ms, zone)
        if _ABANDON.search(text):
            return self._remove(text, state, complete=False)
        if _COMPLETE.search(text):
            return self._remove(text, state, complete=True)
        return DMReply([self._greeting(state)])

    def _greeting(self, state: SessionView) -> str:
        count = len(state.tasks)
        opener = _pick(
            (
                "Greetings, adventurer! The Dungeon Master awaits your command.",
                "Hail, traveller! The torches of the guild hall burn bright for you.",
                "Well met, wanderer! Your chronicle lies open before me.",
            ),
            count,
            state.progress.total_completed,
        )
        return (
            f"{opener} You carry {count} active quest{'s' if count != 1 else ''}. "
            'Speak, and I shall inscribe a new quest ("Create a quest to finish my report by 5pm '
            'tomorrow, 80 XP"), recount your quests, mark one complete, let you abandon one, '
            "or extend a deadline."
        )

    def _create(self, rest: str, text: str, now_ms: int, zone: ZoneInfo) -> DMReply:
        xp = DEFAULT_XP
        xp_match = _XP.search(rest)
        if xp_match:
            xp = int(xp_match.group(1) or xp_match.group(2))
            rest = (rest[: xp_match.start()] + " " + rest[xp_match.end() :]).strip()
        start_ms = now_ms
        start_match = re.search(
            r"\b(?:starting|start(?:s|ing)? at|beginning|from)\s+(.+?)\s+(?:until|till|to|and end(?:ing)?|ending|by)\s+(.+)$",
            rest,
            re.IGNORECASE,
        )
        if start_match:
            begin = parse_when(start_match.group(1), now_ms, zone)
            if begin is not None:
                start_ms = begin
                rest = rest[: start_match.start()] + " by " + start_match.group(2)
        name, end_ms, when_text = split_time_suffix(rest, now_ms, zone)
        if end_ms is None:
            # No deadline given: a day from now, on the local calendar.
            end_ms = extend_by(now_ms, "day", 1, zone)
        name = _title(name)
        if not name:
            return DMReply(
                [
                    "A quest with no name is but a whisper in the wind. Tell me what deed you would undertake."
                ]
            )
        params = {
            "taskName": name,
            "taskDescription": self.describe(name, end_ms, zone),
            "taskStartTime": to_iso(start_ms),
            "taskEndTime": to_iso(end_ms),
            "XP": xp,
        }
        opener = _pick(
            (
                "Greetings, adventurer! I shall inscribe your quest into the chronicles...",
                "Hark! A new quest stirs in the mists, and I set quill to parchment...",
                "So it is spoken, so it shall be written. I inscribe your quest...",
            ),
            name,
        )
        return DMReply([opener], [ToolCall("createTask", params)])

    def describe(self, name: str, end_ms: int, zone: ZoneInfo) -> str:
        """A fantasy description of a quest (stable for the same name and deadline)."""
        deed = _deed(name)
        when = describe_when(end_ms, zone)
        return _pick(
            (
                f"The elders of the realm call upon you to {deed} before the bells toll at {when}.",
                f"A sealed scroll bears a single charge: {deed}. The wax melts at {when}.",
                f"Word spreads through the taverns that only a true hero can {deed} before {when}.",
                f"The oracle has foreseen it: you shall {deed}, and the stars demand it by {when}.",
            ),
            name,
        )

    def _list_intro(self, state: SessionView) -> str:
        return _pick(
            (
                "Let us consult the quest log...",
                "I unroll the great map of your undertakings...",
                "The chronicle opens to the page of your unfinished deeds...",
            ),
            len(state.tasks),
        )

    def _reference(self, text: str, *strip: str) -> str:
        ref = _FILLER_VERBS.sub(" ", text)
        for piece in strip:
            if piece:
                ref = ref.replace(piece, " ")
        return " ".join(ref.split())

    def _which(self, text: str, state: SessionView, verb: str) -> Task | DMReply:
        found = find_task(text, state.tasks)
        if isinstance(found, Task):
            return found
        if not state.tasks:
            return DMReply([f"Your quest log is empty, adventurer; there is nothing to {verb}."])
        names = "; ".join(f"{i}. {t.name}" for i, t in enumerate(state.tasks, 1))
        if isinstance(found, list):
            return DMReply(
                [f"Several quests answer to that name. Which one shall I {verb}? {names}"]
            )
        return DMReply([f"I find no such quest in your log. Which one shall I {verb}? {names}"])

    def _remove(self, text: str, state: SessionView, *, complete: bool) -> DMReply:
        verb = "mark complete" if complete else "strike from the log"
        target = self._which(self._reference(text), state, verb)
        if isinstance(target, DMReply):
            return target
        params = {"taskId": target.id, "addXP": complete}
        if complete:
            opener = _pick(
                (
                    f'Trumpets sound across the valley! You claim victory over "{target.name}".',
                    f'The bards fall silent, then cheer: "{target.name}" is done!',
                    f'By steel and will, "{target.name}" is conquered!',
                ),
                target.id,
            )
        else:
            opener = (
                f'Very well. Even the bravest must sometimes retreat. I strike "{target.name}" '
                "from your log."
            )
        return DMReply([opener], [ToolCall("deleteTask", params)])

    def _extend(self, text: str, state: SessionView, now_ms: int, zone: ZoneInfo) -> DMReply:
        duration = parse_extension(text)
        if duration is not None:
            matched, unit, amount = duration
            target = self._which(self._reference(text, matched), state, "extend")
            if isinstance(target, DMReply):
                return target
            new_end = extend_by(target.end_ms, unit, amount, zone)
        else:
            head, new_end_or_none, when_text = split_time_suffix(text, now_ms, zone)
            if new_end_or_none is None:
                return DMReply(
                    [
                        "The sands of time shift at your word, but tell me how far: "
                        '"extend my report quest to Friday at 6pm" or "by 2 hours".'
                    ]
                )
            new_end = new_end_or_none
            target = self._which(self._reference(head), state, "extend")
            if isinstance(target, DMReply):
                return target
        opener = f'I bend the hourglass for "{target.name}"...'
        params: dict[str, Any] = {"taskId": target.id, "endTime": to_iso(new_end)}
        if target.description == self.describe(target.name, target.end_ms, zone):
            # The description is ours and names the old deadline: retell it.
            params["description"] = self.describe(target.name, new_end, zone)
        return DMReply([opener], [ToolCall("updateTask", params)])

    # -- report --------------------------------------------------------------------
    def report(self, outcome: ToolOutcome, now_ms: int, zone: ZoneInfo) -> list[str]:
        call = outcome.call
        if not outcome.ok:
            return [
                "Alas, the runes resist my quill: "
                f"{outcome.error or 'the spell failed'}. Speak again and we shall try anew."
            ]
        task = outcome.task
        if call.tool == "viewTasks":
            if not outcome.tasks:
                return ["Your quest log lies empty. Speak, and I shall forge a new adventure!"]
            lines = [
                f"{i}. {t.name} ({t.xp} XP), due by {describe_when(t.end_ms, zone)}"
                for i, t in enumerate(outcome.tasks, 1)
            ]
            return [f"You carry {len(lines)} active quest{'s' if len(lines) != 1 else ''}:", *lines]
        if task is None:
            return []
        if call.tool == "createTask":
            return [f'The quest "{task.name}" is yours, worth {task.xp} XP. {task.description}']
        if call.tool == "updateTask":
            return [
                f'The deadline of "{task.name}" now falls at {describe_when(task.end_ms, zone)}. '
                "Use the time wisely."
            ]
        if call.tool == "deleteTask" and call.params.get("addXP"):
            bonus = f" ({outcome.bonus} of it your streak bonus)" if outcome.bonus else ""
            return [outcome.narrative, f"You earn {outcome.xp_earned} XP{bonus}."]
        if call.tool == "deleteTask":
            return [f"The quest fades from the chronicle. It costs you {outcome.penalty} XP."]
        return []

    # -- narrate -------------------------------------------------------------------
    def narrate(
        self,
        task: Task,
        previous: Sequence[CompletedQuest],
        *,
        chapter: int,
        streak: int,
        xp_earned: int,
        now_ms: int,
        zone: ZoneInfo,
    ) -> str:
        # The hero's epithet is taken from the earlier stories, so the chronicle keeps
        # one hero; the first story picks it.
        epithet = next(
            (e for story in reversed(previous) for e in EPITHETS if e in story.narrative),
            _pick(EPITHETS, task.id),
        )
        deed = _deed(task.name, "third")
        parts: list[str] = []
        if previous:
            last = previous[-1]
            parts.append(
                _pick(
                    (
                        f'Fresh from the triumph of "{last.name}", {epithet} pressed on.',
                        f'The songs of "{last.name}" still echoed in the halls as {epithet} set out again.',
                        f'With the dust of "{last.name}" barely settled, {epithet} took up the next charge.',
                    ),
                    task.id,
                )
            )
        else:
            parts.append(f"Thus began the chronicle of {epithet}.")
        parts.append(
            _pick(
                (
                    f"The brave adventurer ventured into the depths and did {deed}, against all odds.",
                    f"Through fog and doubt, the hero strode on until the deed was done: {deed}.",
                    f"Steel rang and candles burned low, yet the task was met: {deed}.",
                ),
                task.id,
                "deed",
            )
        )
        if streak >= 2:
            parts.append(f"For {streak} days running the hero's resolve has not wavered.")
        parts.append(f"So ends chapter {chapter}, and {xp_earned} XP is etched into legend.")
        return " ".join(parts)
