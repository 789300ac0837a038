"""QuestMaster wire shapes (seed 002) as msgspec Structs: the OpenAPI document is built
from them and the tests check every response against them, so docs and behaviour
cannot drift apart. (Requests are validated by ``rules.questmaster`` instead,
because the seed fixes the exact ``Task validation failed: ...`` messages.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct, field

Iso = Annotated[str, Meta(description="ISO 8601 timestamp, UTC with milliseconds")]
Xp = Annotated[int, Meta(ge=1, le=10_000)]


class ErrorResponse(Struct, forbid_unknown_fields=True):
    """Every error: a human-readable message."""

    error: str


class TaskOut(Struct, forbid_unknown_fields=True):
    """An active quest."""

    id: str
    name: str
    description: str
    startTime: Iso
    endTime: Iso
    XP: Xp


class TasksResponse(Struct, forbid_unknown_fields=True):
    """``GET``: active quests with XP and streak figures."""

    tasks: list[TaskOut]
    totalXP: int
    currentStreak: int
    longestStreak: int
    lastCompletionDate: Annotated[str, Meta(description="local date YYYY-MM-DD")] | None


class CompletedQuestOut(Struct, forbid_unknown_fields=True):
    """A completed quest (``completedAt`` and ``completionDate`` are the same instant)."""

    id: str
    name: str
    description: str
    startTime: Iso
    endTime: Iso
    completionDate: Iso
    completedAt: Iso
    XP: Xp
    xpEarned: int
    completionNarrative: str


class Statistics(Struct, forbid_unknown_fields=True):
    totalCompleted: int
    totalActive: int
    totalQuests: int
    completionRate: Annotated[float, Meta(description="percent, 2 decimals")]
    totalXP: int
    avgXPPerQuest: float
    recentCompletions: Annotated[int, Meta(description="completions in the last 7 days")]


class HistoryResponse(Struct, forbid_unknown_fields=True):
    """``GET ?history=true``: completed quests, newest first, and statistics."""

    completedQuests: list[CompletedQuestOut]
    statistics: Statistics


class CreateTaskParams(Struct):
    taskName: Annotated[str, Meta(min_length=1, max_length=200)]
    taskDescription: Annotated[str, Meta(min_length=1, max_length=2000)]
    taskStartTime: Iso
    taskEndTime: Iso
    XP: Xp


class UpdateTaskParams(Struct, omit_defaults=True):
    taskId: str
    name: str | None = None
    description: str | None = None
    startTime: Iso | None = None
    endTime: Iso | None = None
    XP: Xp | None = None


class DeleteTaskParams(Struct, omit_defaults=True):
    taskId: str
    addXP: Annotated[
        bool, Meta(description="true completes (earns XP), false abandons (-50 %)")
    ] = False


class ToolRequest(Struct):
    """``POST`` JSON: one direct task operation."""

    tool: Literal["createTask", "updateTask", "deleteTask"]
    params: Annotated[
        dict[str, Any],
        Meta(
            description="createTask: CreateTaskParams; updateTask: UpdateTaskParams; "
            "deleteTask: DeleteTaskParams"
        ),
    ]


class TaskResponse(Struct, forbid_unknown_fields=True):
    """createTask / updateTask."""

    success: bool
    task: TaskOut


class CompleteResponse(Struct, forbid_unknown_fields=True):
    """deleteTask with ``addXP: true``."""

    success: bool
    narrative: str
    xpEarned: int


class AbandonResponse(Struct, forbid_unknown_fields=True):
    """deleteTask with ``addXP: false``."""

    success: bool


class ChatMetadata(Struct, forbid_unknown_fields=True):
    """The chat stream's metadata frame: the quests this message created or changed."""

    type: Literal["metadata"]
    tasks: list[TaskOut]


class TokenRequest(Struct):
    sessionId: Annotated[str, Meta(pattern=r"^[A-Za-z0-9._~@:+=-]{1,128}$")]


class SessionCookie(Struct, forbid_unknown_fields=True):
    name: str
    value: str
    maxAge: int


class TokenResponse(Struct, forbid_unknown_fields=True):
    """A 5-minute agent token and the proxy's 30-day session cookie for one session."""

    sessionId: str
    token: str
    expiresAt: Annotated[int, Meta(description="Unix ms")]
    sessionCookie: SessionCookie


class LiveUpdate(Struct, forbid_unknown_fields=True):
    """``event: tasks`` on the live streams: the log after a change, and why."""

    reason: Literal["created", "updated", "completed", "abandoned"]
    tasks: list[TaskOut]
    totalXP: int
    currentStreak: int
    longestStreak: int
    lastCompletionDate: str | None = field(default=None)
