"""The null agent: submits at once. Its reward is the floor every task must show (0)."""

from __future__ import annotations

from typing import Any


class NullAgent:
    name = "null"

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        pass

    def act(self, observation: str) -> dict:
        return {"tool": "submit"}
