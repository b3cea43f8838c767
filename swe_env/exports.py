"""Trajectories as training data: OpenAI-style chat messages with native tool calls (`to_chat`), or CWM's chat
format (`to_cwm`, its reasoning mode included); which episodes are worth training on (`select`), near-duplicates
dropped (`drop_near_duplicates`), and the export of trajectory files (`export`, `swe-env export`).

Above the tool registry: a conversation's prompts and tool schemas are the registry's (`tools.instructions`,
`tools.schemas`, each tool's CWM block), so the records (`data.trajectory`) stay below it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from . import tools
from .data.trajectory import Trajectory, episode_key, iter_trajectories
from .errors import RETRYABLE_ENDINGS
from .tools import cwm_call  # noqa: F401 - public here too, as it was in data.trajectory

SYSTEM_PROMPT = (
    "You are a software engineer working in a repository inside a sandbox. Fix the issue described by "
    "the user: explore the code, reproduce the problem, edit the files, run the tests, and submit when "
    "you are done. Make exactly one tool call per turn."
)
"""The system message of exported conversations (and of the openai agent)."""

DEFAULT_WORKDIR = "/testbed"
ExportFormat = Literal["chat", "cwm"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


CWM_REASONING_PROMPT = (
    "You are a helpful AI assistant. You always reason before responding, using the following format:\n\n"
    "<think>\nyour internal reasoning\n</think>\nyour external response"
)
"""How a system prompt starts in CWM's reasoning mode (CWM's PROMPTING_GUIDE.md, "Reasoning")."""
THINK_START = "<think>\n"
"""What an assistant turn starts with in reasoning mode; the reasoning ends at THINK_END."""
THINK_END = "</think>"


def cwm_system_prompt(names: list[str], reasoning: bool = False) -> str:
    """The system prompt of a CWM export: the tools announced as CWM's guide shows, one block each.

    ```
    [CWM_REASONING_PROMPT, in reasoning mode, then a blank line]
    SYSTEM_PROMPT

    You have access to the following tools:

    <tool: bash>
    [command(s)]
    </tool>
    Runs [command(s)] ...

    <tool: submit>
    </tool>
    Finishes the episode ...
    ```
    """
    blocks = []
    for name in names:
        tool = tools.REGISTRY.get(name)  # a record names only known tools; a hand-made one may not
        arguments, description = (tool.cwm_arguments, tool.cwm_description) if tool else ("[arguments]", "")
        blocks.append(f"<tool: {name}>\n" + (f"{arguments}\n" if arguments else "") + f"</tool>\n{description}")
    parts = [CWM_REASONING_PROMPT] if reasoning else []
    parts += [SYSTEM_PROMPT, "You have access to the following tools:\n\n" + "\n\n".join(blocks)]
    return "\n\n".join(parts)


def _tool_names(trajectory: Trajectory) -> list[str]:
    return tools.offered(trajectory.config.get("tools", tools.DEFAULT_TOOLS))


def workdir_of(trajectory: Trajectory) -> str:
    """Where the episode's repository was: the recorded workdir (older records: config's, else /testbed)."""
    return trajectory.workdir or trajectory.config.get("workdir") or DEFAULT_WORKDIR


def _prompt(trajectory: Trajectory, action_format: tools.ActionFormat) -> str:
    instructions = tools.instructions(workdir_of(trajectory), action_format, _tool_names(trajectory))
    return f"{trajectory.problem_statement.rstrip()}\n\n{instructions}"


def _reasoning(raw: Any) -> str | None:
    """The model's own words around its tool call, when the raw action has any."""
    if isinstance(raw, dict) and isinstance(raw.get("content"), str):
        text = raw["content"]
    elif isinstance(raw, str) and "<tool:" in raw:
        text = raw[: raw.index("<tool:")]
    else:
        return None
    return text.strip() or None


def _as_text(raw: Any) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)


def _metadata(trajectory: Trajectory) -> dict[str, Any]:
    return {
        "task_id": trajectory.task_id,
        "episode_id": trajectory.episode_id,
        "agent": trajectory.agent,
        "model": trajectory.model,
        "reward": trajectory.reward,
        "resolved": trajectory.resolved,
        "termination": trajectory.termination,
        "steps": len(trajectory.steps),
    }


def to_chat(trajectory: Trajectory) -> dict[str, Any]:
    """One conversation in OpenAI's chat format with native tool calls: {"messages", "tools", "metadata"}.

    A step whose action could not be parsed becomes an assistant text turn answered by a user
    turn holding the error. The grader's verdict after `submit` is left out, so a conversation
    ends with the model's last call.
    """
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _prompt(trajectory, "openai")},
    ]
    for step in trajectory.steps:
        if step.action is None:
            messages.append({"role": "assistant", "content": _as_text(step.raw)})
            messages.append({"role": "user", "content": step.observation})
            continue
        call_id = f"call_{step.index}"
        arguments = {key: value for key, value in step.action.items() if key != "tool"}
        messages.append(
            {
                "role": "assistant",
                "content": _reasoning(step.raw),
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": step.action["tool"], "arguments": json.dumps(arguments, ensure_ascii=False)},
                    }
                ],
            }
        )
        if step.action["tool"] != "submit":
            messages.append({"role": "tool", "tool_call_id": call_id, "content": step.observation})
    return {"messages": messages, "tools": tools.schemas(_tool_names(trajectory)), "metadata": _metadata(trajectory)}


def to_cwm(trajectory: Trajectory, reasoning: bool = False) -> dict[str, Any]:
    """One episode in CWM's chat format (CWM's PROMPTING_GUIDE.md): {"messages", "text", "metadata"}.

    `text` is `<|begin_of_text|>`, then for every message
    `<|start_header_id|>ROLE<|end_header_id|>\\n\\nCONTENT<|eot_id|>`, ROLE being `system`,
    `user`, `assistant` or `tool: NAME`. In `messages` a tool result is
    `{"role": "tool", "tool": NAME, "content": ...}`, the others `{"role", "content"}`.

    - system: `cwm_system_prompt` (the tools as `<tool: NAME>` blocks; in reasoning mode it
      starts with CWM_REASONING_PROMPT);
    - user: the problem statement and where the repository is;
    - assistant: the agent's turn as it produced it when it wrote CWM's format (raw text with
      a `<tool:` block, or an action that did not parse), else its words and the parsed
      action written by `cwm_call` (words holding a `<tool:`, `</tool>`, `<think>` or
      `</think>` tag are left out: the turn must read back as its action). In reasoning
      mode a turn is `<think>\\n` + the words before the call + `\\n</think>\\n` + the
      call; a raw text with its own `</think>` (written after the `<think>\\n` prompt) only
      gets THINK_START in front, and one that starts with `<think>` is kept;
    - `tool: NAME`: the observation, verbatim. An action that did not parse is answered by a
      user turn holding the error (as CWM's SWE RL environment answers format errors), and
      the grader's verdict after `submit` is left out.

    System, user and assistant contents are stripped of surrounding whitespace, tool results
    are not, as CWM's tokenizer encodes messages. `actions.parse` reads every assistant turn
    back to its step's action.
    """
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": cwm_system_prompt(_tool_names(trajectory), reasoning)},
        {"role": "user", "content": _cwm_user_prompt(trajectory)},
    ]
    for step in trajectory.steps:
        raw_text = isinstance(step.raw, str) and "<tool:" in step.raw
        if raw_text or step.action is None:
            content = _as_text(step.raw)
        else:
            words = _reasoning(step.raw)
            if words and any(tag in words for tag in _CWM_TAGS):
                words = None  # would make the turn read back as another call, or none
            content = (f"{words}\n\n" if words else "") + cwm_call(step.action)
        if reasoning:
            content = _with_thinking(content)
        messages.append({"role": "assistant", "content": content.strip()})
        if step.action is None:
            messages.append({"role": "user", "content": step.observation.strip()})
        elif step.action["tool"] != "submit":
            messages.append({"role": "tool", "tool": step.action["tool"], "content": step.observation})
    text = "<|begin_of_text|>" + "".join(f"<|start_header_id|>{_cwm_role(m)}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
    return {"messages": messages, "text": text, "metadata": {**_metadata(trajectory), "reasoning": reasoning}}


_CWM_TAGS = ("<tool:", "</tool>", "<think>", THINK_END)


def _with_thinking(content: str) -> str:
    """An assistant turn in reasoning mode: the words before the call are the reasoning."""
    if content.lstrip().startswith("<think>"):
        return content
    if THINK_END in content:
        return THINK_START + content
    start = content.find("<tool:")
    words, answer = (content[:start], content[start:]) if start >= 0 else ("", content)
    return f"{THINK_START}{words.strip()}\n{THINK_END}\n{answer.strip()}"


def _cwm_role(message: dict[str, Any]) -> str:
    return f"tool: {message['tool']}" if message["role"] == "tool" else message["role"]


def _cwm_user_prompt(trajectory: Trajectory) -> str:
    where = workdir_of(trajectory)
    return f"{trajectory.problem_statement.strip()}\n\nThe repository is checked out at {where}.".strip()


def select(
    trajectories: Iterable[Trajectory],
    min_reward: float | None = None,
    resolved_only: bool = False,
    include_failures: bool = False,
) -> Iterator[Trajectory]:
    """Trajectories worth training on: by reward and resolution; infrastructure failures and
    episodes without steps are dropped unless `include_failures`."""
    for trajectory in trajectories:
        if not include_failures and (trajectory.termination in RETRYABLE_ENDINGS or not trajectory.steps):
            continue
        if resolved_only and not trajectory.resolved:
            continue
        if min_reward is not None and trajectory.reward < min_reward:
            continue
        yield trajectory


def _shingles(trajectory: Trajectory) -> set[str]:
    actions = [json.dumps(step.action or {"raw": _as_text(step.raw)}, sort_keys=True) for step in trajectory.steps]
    pairs = itertools.pairwise(["<start>", *actions, "<end>"])
    return {hashlib.blake2b("\x00".join(pair).encode(), digest_size=8).hexdigest() for pair in pairs}


def drop_near_duplicates(trajectories: Iterable[Trajectory], threshold: float = 0.9) -> Iterator[Trajectory]:
    """Skip an episode whose action sequence is this similar (Jaccard of consecutive action
    pairs) to one already kept for the same task; 1.0 drops exact repeats only."""
    kept: dict[str, list[set[str]]] = {}
    for trajectory in trajectories:
        shingles = _shingles(trajectory)
        seen = kept.setdefault(trajectory.task_id, [])
        if any(len(shingles & other) / len(shingles | other) >= threshold for other in seen):
            continue
        seen.append(shingles)
        yield trajectory


def export(
    sources: Iterable[str | Path],
    out: str | Path,
    fmt: ExportFormat = "chat",
    min_reward: float | None = None,
    resolved_only: bool = False,
    dedupe: float | None = None,
    reasoning: bool = False,
) -> tuple[int, int]:
    """Write the selected trajectories of `sources` to `out` as JSONL in `fmt`; returns (read, written).

    When a file holds the same episode twice (a resumed rollout that re-ran an infrastructure
    failure), the last record wins. `reasoning` writes CWM's reasoning mode (cwm only; see `to_cwm`).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be chat or cwm, not {fmt!r}")
    if reasoning and fmt != "cwm":
        raise ValueError("reasoning mode is a cwm export option")
    convert = to_chat if fmt == "chat" else functools.partial(to_cwm, reasoning=reasoning)
    latest: dict[Any, Trajectory] = {}
    for source in sources:
        if not Path(source).is_file():
            raise ValueError(f"{source}: no such trajectory file")
        for trajectory in iter_trajectories(source):
            key = episode_key(trajectory) if trajectory.episode_index is not None else trajectory.episode_id
            latest.pop(key, None)  # re-insert so the order is that of the last occurrence
            latest[key] = trajectory
    chosen: Iterable[Trajectory] = select(latest.values(), min_reward, resolved_only)
    if dedupe is not None:
        chosen = drop_near_duplicates(chosen, dedupe)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(out, "w", encoding="utf-8") as handle:
        for trajectory in chosen:
            handle.write(json.dumps(convert(trajectory), ensure_ascii=False) + "\n")
            written += 1
    return len(latest), written
