"""Turning what an agent sends into a validated tool call.

Accepted forms:
- a dict `{"tool": "bash", "command": "ls"}` (arguments inline) or
  `{"tool": "bash", "args": {...}}`;
- an OpenAI-style function call `{"name": "bash", "arguments": {...} or "<json>"}`,
  also wrapped as `{"type": "function", "function": {...}}`, or an assistant message
  `{"role": "assistant", "content": ..., "tool_calls": [one call]}`;
- a string holding any of the above as JSON;
- a model's raw text in CWM's tool format (exactly one block):

      <tool: bash>
      ls -la
      </tool>

      <tool: edit>
      path/to/file.py
      <<<<<<< SEARCH
      old lines
      =======
      new lines
      >>>>>>> REPLACE
      </tool>

  `create` takes the path on the first line and the content after it, `view` a path and
  optionally "FIRST LAST" on the second line, `undo_edit` a path, `submit` anything.
  The block is exactly what `tools.cwm_call` writes and the CWM export teaches, which
  is CWM's own tool-call pattern: `<tool: NAME>` (one space), a newline, the arguments, a
  newline and `</tool>` (or, without arguments, `<tool: NAME>`, a newline and `</tool>`).
  Text before the block is the model's own; when the text has `</think>` (CWM's reasoning
  mode), only what follows the first `</think>` is read for the call;
- a string with one fenced ```bash block (the command inside it).
Anything else raises ActionError, which the env turns into an error observation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..errors import did_you_mean
from . import MAX_ACTION_CHARS, REGISTRY, TOOLS

_FENCE = re.compile(r"```(?:bash|sh|shell)?[ \t]*\n(.*?)```", re.DOTALL)
_CWM_CALL = re.compile(r"<tool: ([A-Za-z_]+)>\n(?:(.*?)\n)?</tool>", re.DOTALL)
_THINK_END = "</think>"


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
        if len(action) > MAX_ACTION_CHARS:
            raise ActionError(
                f"the action is {len(action):,} characters, over the action space's limit of "
                f"{MAX_ACTION_CHARS:,}; nothing was run (write large content in parts)"
            )
        action = _from_text(action)
    if not isinstance(action, dict):
        raise ActionError(f"an action must be a JSON object or a dict, not {type(action).__name__}")
    if "tool_calls" in action or action.get("role") == "assistant":
        action = _from_message(action)
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
    for field, value in arguments.items():
        # Before anything runs: a command past the limit would take the shell tens of seconds to read.
        if isinstance(value, str) and len(value) > MAX_ACTION_CHARS:
            raise ActionError(
                f"{name}: argument {field!r} is {len(value):,} characters, over the action space's "
                f"limit of {MAX_ACTION_CHARS:,}; nothing was run (write large content in parts)"
            )
    try:
        args = TOOLS[name].model_validate(arguments)
    except ValidationError as exc:
        raise ActionError(f"{name}: {_validation_message(exc, TOOLS[name], name)}") from None
    for field, value in args:
        if isinstance(value, str):
            try:
                value.encode("utf-8", errors="surrogateescape")
            except UnicodeEncodeError:
                raise ActionError(f"{name}: argument '{field}' holds invalid Unicode (a lone surrogate)") from None
    return ToolCall(name, args)


def _from_message(message: dict) -> Any:
    calls = message.get("tool_calls") or []
    if len(calls) == 1:
        return calls[0]
    if len(calls) > 1:
        names = ", ".join(str((c.get("function") or c).get("name")) for c in calls if isinstance(c, dict))
        raise ActionError(f"the message has {len(calls)} tool calls ({names}); make exactly one per step")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str) or not content.strip():
        raise ActionError("the assistant message has no tool call and no text")
    return _from_text(content)


def _from_cwm(text: str) -> dict:
    if _THINK_END in text:
        text = text.split(_THINK_END, 1)[1]
    opened, closed = text.count("<tool:"), text.count("</tool>")
    if opened != 1 or closed != 1:
        raise ActionError(f"expected exactly one <tool: NAME> ... </tool> block, found {opened} opening and {closed} closing tags")
    calls = _CWM_CALL.findall(text)
    if len(calls) != 1:
        raise ActionError(
            "a tool call is written <tool: NAME>, a newline, the arguments, a newline and </tool> "
            "(the name after exactly one space, nothing else on the tag lines)"
        )
    name, body = calls[0]
    tool = REGISTRY.get(name)
    if tool is None:
        return {"tool": name}  # named in the refusal that follows
    try:
        return {"tool": name, **tool.from_cwm(body)}
    except ValueError as exc:
        raise ActionError(str(exc)) from None


def _from_text(text: str) -> Any:
    stripped = text.strip()
    if "<tool:" in text or "</tool>" in text:
        return _from_cwm(text)
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
        'no action found: send a JSON object such as {"tool": "bash", "command": "ls"}, a <tool: bash> ... </tool> block, or one ```bash fenced block'
    )


def _validation_message(exc: ValidationError, model: type, name: str) -> str:
    parts = []
    for error in exc.errors()[:3]:
        field = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "missing":
            parts.append(f"missing argument '{field}'")
        elif error["type"] == "extra_forbidden":
            known = list(getattr(model, "model_fields", {}))
            parts.append(f"unexpected argument '{field}'{did_you_mean(field, known)}; {name} takes {', '.join(known) or 'no arguments'}")
        else:
            parts.append(f"argument '{field}': {error['msg']}")
    return "; ".join(parts)
