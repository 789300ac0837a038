"""The QuestMaster session actor: one quest log per ``sessionId`` (seed 002).

It owns the active quests, the completed-quest history, total XP, streaks and
the completion stories. Every operation is one turn, so two tabs completing the
same quest at once are serialised: the first turn completes it, the second
finds no such quest and grants nothing. Each turn that changes the log
publishes one update to the session's hub (``questmaster:{sessionId}``), so
other tabs watching the live stream see quests appear and vanish.

Replies are plain dicts (they cross the Ray hop); failures are replies too
(``{"ok": False, "error": "invalid" | "not_found", "message": ...}``) rather
than exceptions, so a chat turn whose second tool call fails still keeps the
first one's effect.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec

from questline.engine import Actor, Address
from questline.rules import questmaster as rules
from questline.rules.dungeon_master import (
    PREVIOUS_STORIES,
    DungeonMaster,
    LocalDungeonMaster,
    SessionView,
    ToolCall,
    ToolOutcome,
)
from questline.rules.questmaster import CompletedQuest, Progress, Task, TaskValidationError

KIND = "questmaster.session"
HISTORY_LIMIT = 1000  # completed quests kept for display; the totals in Progress stay exact
MAX_ACTIVE_TASKS = 500
DIRECT_TOOLS = ("createTask", "updateTask", "deleteTask")


def session_address(session_id: str) -> Address:
    return Address(KIND, session_id)


def session_hub(session_id: str) -> Address:
    return Address("hub", f"questmaster:{session_id}")


class QuestMasterSession(Actor):
    kind = KIND
    # Swap for an implementation backed by a language model; it runs inside the turn,
    # so whatever it decides is applied atomically with the rest of the turn.
    dungeon_master: ClassVar[DungeonMaster] = LocalDungeonMaster()

    # -- state -----------------------------------------------------------------------
    def _tasks(self) -> list[Task]:
        return self.storage.get("tasks", [], type=list[Task])

    def _history(self) -> list[CompletedQuest]:
        return self.storage.get("history", [], type=list[CompletedQuest])

    def _progress(self) -> Progress:
        return self.storage.get("progress", Progress(), type=Progress)

    def _zone(self, zone_name: str | None) -> ZoneInfo:
        """The request's zone, remembered for requests that send none (GET from a script)."""
        if zone_name:
            zone = rules.resolve_zone(zone_name)
            if self.storage.get("zone") != zone.key:
                self.storage.put("zone", zone.key)
            return zone
        return rules.resolve_zone(self.storage.get("zone"))

    def _publish(self, reason: str, zone: ZoneInfo) -> None:
        data = {
            "reason": reason,
            **rules.summary(self._progress(), self._tasks(), self.now(), zone),
        }
        self.tell(session_hub(self.key), "publish", [{"event": "tasks", "data": data}])

    # -- reads -----------------------------------------------------------------------
    def get_tasks(self, zone_name: str | None = None) -> dict[str, Any]:
        """Active quests with XP and streak figures (``GET``)."""
        zone = self._zone(zone_name)
        return rules.summary(self._progress(), self._tasks(), self.now(), zone)

    def get_history(self, zone_name: str | None = None) -> dict[str, Any]:
        """Completed quests, newest first, with statistics (``GET ?history=true``)."""
        self._zone(zone_name)
        history = self._history()
        return {
            "completedQuests": [quest.to_wire() for quest in reversed(history)],
            "statistics": rules.statistics(
                self._progress(), history, len(self._tasks()), self.now()
            ),
        }

    # -- direct tool calls -----------------------------------------------------------
    def run_tool(self, tool: str, params: Any, zone_name: str | None = None) -> dict[str, Any]:
        """``POST {tool, params}``: createTask / updateTask / deleteTask."""
        if tool not in DIRECT_TOOLS:
            return {"ok": False, "error": "invalid", "message": f"Unknown tool: {tool}"}
        zone = self._zone(zone_name)
        outcome = self._apply(
            ToolCall(tool, params if isinstance(params, dict) else {}), zone, raw_params=params
        )
        if not outcome.ok:
            return self._failure(outcome)
        self._publish(_reason(outcome.call), zone)
        if tool == "deleteTask":
            if outcome.call.params.get("addXP"):
                return {
                    "ok": True,
                    "body": {
                        "success": True,
                        "narrative": outcome.narrative,
                        "xpEarned": outcome.xp_earned,
                    },
                }
            return {"ok": True, "body": {"success": True}}
        assert outcome.task is not None
        return {"ok": True, "body": {"success": True, "task": outcome.task.to_wire()}}

    @staticmethod
    def _failure(outcome: ToolOutcome) -> dict[str, Any]:
        kind = "not_found" if outcome.error == "Task not found" else "invalid"
        return {"ok": False, "error": kind, "message": outcome.error}

    def _apply(self, call: ToolCall, zone: ZoneInfo, raw_params: Any = None) -> ToolOutcome:
        """Run one tool call against the log (validation errors become failed outcomes)."""
        params = call.params if raw_params is None else raw_params
        now = self.now()
        tasks = self._tasks()
        if call.tool == "viewTasks":
            return ToolOutcome(call, ok=True, tasks=tasks)
        try:
            if call.tool == "createTask":
                if len(tasks) >= MAX_ACTIVE_TASKS:
                    raise TaskValidationError(
                        f"Too many active quests (at most {MAX_ACTIVE_TASKS})"
                    )
                task = rules.validate_new_task(params, zone, task_id=str(uuid.uuid4()), now_ms=now)
                tasks.append(task)
                self.storage.put("tasks", tasks)
                return ToolOutcome(call, ok=True, task=task, tasks=tasks)
            task_id = rules.required_task_id(params)
            index = next((i for i, t in enumerate(tasks) if t.id == task_id), None)
            if call.tool == "deleteTask":
                complete = rules.add_xp_flag(params)
            if index is None:
                return ToolOutcome(call, ok=False, error="Task not found")
            task = tasks[index]
            if call.tool == "updateTask":
                updated = rules.apply_task_update(task, params, zone)
                tasks[index] = updated
                self.storage.put("tasks", tasks)
                return ToolOutcome(
                    call, ok=True, task=updated, previous_end_ms=task.end_ms, tasks=tasks
                )
            del tasks[index]
            self.storage.put("tasks", tasks)
            progress = self._progress()
            if not complete:
                after = rules.abandon_task(progress, task)
                self.storage.put("progress", after)
                return ToolOutcome(
                    call,
                    ok=True,
                    task=task,
                    penalty=progress.total_xp - after.total_xp,
                    tasks=tasks,
                )
            return self._complete(call, task, tasks, progress, zone, now)
        except TaskValidationError as exc:
            return ToolOutcome(call, ok=False, error=exc.message)

    def _complete(
        self,
        call: ToolCall,
        task: Task,
        tasks: list[Task],
        progress: Progress,
        zone: ZoneInfo,
        now: int,
    ) -> ToolOutcome:
        history = self._history()
        done = rules.complete_task(progress, task, now, zone)
        narrative = self.dungeon_master.narrate(
            task,
            history[-PREVIOUS_STORIES:],
            chapter=done.progress.total_completed,
            streak=done.progress.current_streak,
            xp_earned=done.xp_earned,
            now_ms=now,
            zone=zone,
        )
        history.append(msgspec.structs.replace(done.quest, narrative=narrative))
        self.storage.put("history", history[-HISTORY_LIMIT:])
        self.storage.put("progress", done.progress)
        return ToolOutcome(
            call,
            ok=True,
            task=task,
            xp_earned=done.xp_earned,
            bonus=done.bonus,
            narrative=narrative,
            tasks=tasks,
        )

    # -- chat ------------------------------------------------------------------------
    def chat(self, message: str, zone_name: str | None = None) -> dict[str, Any]:
        """One Dungeon Master exchange: ``{chunks, changed, tasks}``.

        ``tasks`` are the quests this message created or updated (the seed's
        metadata frame); ``changed`` says whether the log changed at all.
        """
        zone = self._zone(zone_name)
        now = self.now()
        view = SessionView(self._tasks(), self._history()[-PREVIOUS_STORIES:], self._progress())
        reply = self.dungeon_master.respond(message, view, now, zone)
        chunks = list(reply.chunks)
        touched: list[Task] = []
        reasons: list[str] = []
        for call in reply.tool_calls:
            outcome = self._apply(call, zone)
            chunks.extend(self.dungeon_master.report(outcome, now, zone))
            if outcome.ok and call.tool != "viewTasks":
                reasons.append(_reason(call))
                if call.tool in ("createTask", "updateTask") and outcome.task is not None:
                    touched.append(outcome.task)
        if reasons:
            self._publish(reasons[-1], zone)
        return {
            "chunks": [chunk for chunk in chunks if chunk],
            "changed": bool(reasons),
            "tasks": [task.to_wire() for task in touched],
        }


def _reason(call: ToolCall) -> str:
    if call.tool == "createTask":
        return "created"
    if call.tool == "updateTask":
        return "updated"
    return "completed" if call.params.get("addXP") else "abandoned"


QUESTMASTER_SESSION_ACTORS: tuple[type[Actor], ...] = (QuestMasterSession,)
