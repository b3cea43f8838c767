"""The oracle agent: replays a task's gold patch through the edit/create tools, then submits.

It proves a task is solvable through the same tools a model uses, so a task whose gold
patch cannot be replayed this way is caught by `swe-env validate`.
"""

from __future__ import annotations

import shlex
from collections import deque
from typing import Any

from ..data.task import Task
from ..grading import diffs


class OracleAgent:
    name = "oracle"

    def __init__(self, tasks: list[Task]):
        self._gold = {task.id: task.gold_patch for task in tasks}
        self._queue: deque[dict] = deque()

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        patch = self._gold.get(info["task_id"])
        if not patch:
            raise ValueError(f"task {info['task_id']!r} has no gold_patch; the oracle cannot solve it")
        self._queue = deque(actions_for_patch(patch))
        self._queue.append({"tool": "submit"})

    def act(self, observation: str) -> dict:
        return self._queue.popleft() if self._queue else {"tool": "submit"}


def actions_for_patch(patch: str) -> list[dict]:
    """Tool calls that turn the base tree into the patched one."""
    calls: list[dict] = []
    for file in diffs.parse(patch):
        if file.binary:
            raise ValueError(f"{file.path}: binary changes cannot be replayed with the edit tool")
        if file.old_path is None:
            calls.append({"tool": "create", "path": file.new_path, "content": "".join(h.new for h in file.hunks)})
        elif file.new_path is None:
            calls.append({"tool": "bash", "command": f"rm -- {shlex.quote(file.old_path)}"})
        else:
            if file.old_path != file.new_path:
                calls.append({"tool": "bash", "command": f"git mv -- {shlex.quote(file.old_path)} {shlex.quote(file.new_path)}"})
            calls.extend({"tool": "edit", "path": file.new_path, "old": h.old, "new": h.new} for h in file.hunks)
    return calls
