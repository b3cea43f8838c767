"""Turning what an agent sends into a validated tool call.

Accepted forms:
- a dict `{"tool": "bash", "command": "ls"}` (arguments inline) or
  `{"tool": "bash", "args": {...}}`;
- an OpenAI-style function call `{"name": "bash", "arguments": {...} or "<json>"}`,
  also wrapped as `{"type": "function", "function": {...}}`;
- a string holding any of the above as JSON;
- a string with one fenced ```bash block (the command inside it).
Anything else raises ActionError, which the env turns into an error observation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .tools import TOOLS

_FENCE = re.compile(r"```(?:bash|sh|shell)?[ \t]*\n(.*?)```", re.DOTALL)


class ActionError(ValueError):
    """The action could not be understood; the message tells the agent how to fix it."""


@dataclass
class ToolCall:
    """A parsed action: the tool's name and its validated arguments."""

    tool: str
    args: Any

    def to_dict(self) -> dict:
        return {"tool": self.tool, **self.args.model_dump(exclude_none=True)}


def parse(action: Any, allowed: list[str] | None = None) -> ToolCall:
    """Validate an action in any accepted form; raises ActionError with a helpful message."""
    allowed = allowed or list(TOOLS)
    if isinstance(action, (bytes, bytearray)):
        action = action.decode("utf-8", errors="replace")
    if isinstance(action, str):
        action = _from_text(action)
    if not isinstance(action, dict):
        raise ActionError(f"an action must be a JSON object or a dict, not {type(action).__name__}")
    if action.get("type") == "function" and isinstance(action.get("function"), dict):
        action = action["function"]
    name = action.get("tool", action.get("name"))
    if not isinstance(name, str):
        raise ActionError(f"the action names no tool; expected a 'tool' key with one of: {', '.join(allowed)}")
    if name not in allowed:
        raise ActionError(f"unknown tool {name!r}; available tools: {', '.join(allowed)}")
    if "arguments" in action or "args" in action:
        arguments = action.get("arguments", action.get("args"))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise ActionError(f"{name}: arguments are not valid JSON: {exc.msg} (position {exc.pos})") from None
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ActionError(f"{name}: arguments must be an object")
    else:
        arguments = {k: v for k, v in action.items() if k not in ("tool", "name", "type", "id")}
    try:
        return ToolCall(name, TOOLS[name].model_validate(arguments))
    except ValidationError as exc:
        raise ActionError(f"{name}: {_validation_message(exc)}") from None


def _from_text(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ActionError(f"the action is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    blocks = _FENCE.findall(text)
    if len(blocks) == 1:
        return {"tool": "bash", "command": blocks[0].rstrip("\n")}
    if len(blocks) > 1:
        raise ActionError(f"found {len(blocks)} ```bash blocks; send exactly one command per step")
    raise ActionError(
        'no action found: send a JSON object such as {"tool": "bash", "command": "ls"} '
        "or one ```bash fenced block"
    )


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        field = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "missing":
            parts.append(f"missing argument '{field}'")
        elif error["type"] == "extra_forbidden":
            parts.append(f"unexpected argument '{field}'")
        else:
            parts.append(f"argument '{field}': {error['msg']}")
    return "; ".join(parts)
