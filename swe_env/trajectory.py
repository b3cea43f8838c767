"""Episode records, one JSON line each, written so a crash never leaves half a line;
and their exports for training: OpenAI-style chat messages, or CWM's tool-call text.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from . import tools

SCHEMA_VERSION = 1


class Step(BaseModel):
    """One step of an episode."""

    index: int
    raw: Any = None
    """The action exactly as the agent sent it (model text, dict, ...)."""
    action: dict[str, Any] | None = None
    """The parsed action, or None when it could not be parsed."""
    observation: str
    exit_code: int | None = None
    error: bool = False
    """The action was invalid or the tool reported an error."""
    notes: list[str] = []
    env_seconds: float = 0.0
    agent_seconds: float | None = None


class Trajectory(BaseModel):
    """Everything about one episode, for mid-training data and for debugging."""

    schema_version: int = SCHEMA_VERSION
    task_id: str
    agent: str = "unknown"
    model: str | None = None
    episode_id: str
    episode_index: int | None = None
    """Which of a rollout's episodes of this task (0, 1, ...); the resume key with task, agent and model."""
    image: str | None = None
    config: dict[str, Any] = {}
    problem_statement: str = ""
    steps: list[Step] = Field(default_factory=list)
    diff: str = ""
    report: dict[str, Any] | None = None
    reward: float = 0.0
    resolved: bool = False
    termination: str | None = None
    """submitted, max_steps, time_limit, disk_limit, sandbox_died, internal_error, closed, abandoned, agent_error or infra_error."""
    error: str | None = None
    seconds: float = 0.0


class TrajectoryWriter:
    """Appends trajectories to a JSONL file, one whole line per write (thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, trajectory: Trajectory) -> None:
        line = (trajectory.model_dump_json() + "\n").encode()
        with self._lock:
            # One os.write of a whole line on an O_APPEND descriptor: a crash leaves either the
            # full line or nothing, never a fragment that breaks the file for readers.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(line)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Read a JSONL file of trajectories (skips a torn last line, if any)."""
    result = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            result.append(Trajectory.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError):
            continue
    return result


def iter_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Like `read_trajectories`, one at a time (files of millions of episodes stay out of memory)."""
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                yield Trajectory.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValueError):
                continue


# ---------------------------------------------------------------- resuming

RETRYABLE_ENDINGS = frozenset({"infra_error", "sandbox_died", "internal_error", "closed", "abandoned"})
"""Endings that say nothing about the agent: a resumed rollout runs these episodes again."""


def episode_key(trajectory: Trajectory) -> tuple[str, str | None, str, int | None]:
    """(agent, model, task, episode index): what a rollout episode is known by in its output file."""
    return trajectory.agent, trajectory.model, trajectory.task_id, trajectory.episode_index


def finished_keys(path: str | Path) -> set[tuple[str, str | None, str, int | None]]:
    """Keys of the episodes in a trajectory file that ended for a reason of the agent's own."""
    if not Path(path).exists():
        return set()
    return {episode_key(t) for t in iter_trajectories(path) if t.termination not in RETRYABLE_ENDINGS}


# ---------------------------------------------------------------- exports

SYSTEM_PROMPT = (
    "You are a software engineer working in a repository inside a sandbox. Fix the issue described by "
    "the user: explore the code, reproduce the problem, edit the files, run the tests, and submit when "
    "you are done. Make exactly one tool call per turn."
)
"""The system message of exported conversations (and of the openai agent)."""

DEFAULT_WORKDIR = "/testbed"
ExportFormat = Literal["chat", "cwm"]


def cwm_call(action: dict[str, Any]) -> str:
    """A parsed action written as a CWM tool-call block, the form `actions.parse` reads back."""
    name = action["tool"]
    if name in ("bash", "trace"):
        body = action["command"]
    elif name == "edit":
        body = f"{action['path']}\n<<<<<<< SEARCH\n{action['old']}\n=======\n{action['new']}\n>>>>>>> REPLACE"
    elif name == "create":
        body = f"{action['path']}\n{action['content']}"
    elif name == "view":
        body = action["path"] + ("\n{} {}".format(*action["range"]) if action.get("range") else "")
    elif name == "undo_edit":
        body = action["path"]
    else:
        body = ""
    return f"<tool: {name}>\n{body}\n</tool>" if body else f"<tool: {name}>\n</tool>"


def _tool_names(trajectory: Trajectory) -> list[str]:
    return list(dict.fromkeys([*trajectory.config.get("tools", tools.DEFAULT_TOOLS), "submit"]))


def _prompt(trajectory: Trajectory, action_format: str) -> str:
    workdir = trajectory.config.get("workdir", DEFAULT_WORKDIR)
    instructions = tools.instructions(workdir, action_format, _tool_names(trajectory))
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
        "task_id": trajectory.task_id, "episode_id": trajectory.episode_id, "agent": trajectory.agent,
        "model": trajectory.model, "reward": trajectory.reward, "resolved": trajectory.resolved,
        "termination": trajectory.termination, "steps": len(trajectory.steps),
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
        messages.append({
            "role": "assistant",
            "content": _reasoning(step.raw),
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": step.action["tool"], "arguments": json.dumps(arguments, ensure_ascii=False)}}],
        })
        if step.action["tool"] != "submit":
            messages.append({"role": "tool", "tool_call_id": call_id, "content": step.observation})
    return {"messages": messages, "tools": tools.schemas(_tool_names(trajectory)), "metadata": _metadata(trajectory)}


def to_cwm(trajectory: Trajectory) -> dict[str, Any]:
    """One episode in CWM's text tool format: {"messages", "text", "metadata"}.

    Assistant turns are `<tool: NAME> ... </tool>` blocks (the model's exact text when it wrote
    that format, else the parsed action written in it); every env output is a `tool` turn.
    `text` joins the turns with Llama-3-style header tokens, as CWM's tokenizer does.
    """
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": _prompt(trajectory, "cwm")},
    ]
    for step in trajectory.steps:
        if isinstance(step.raw, str) and "<tool:" in step.raw or step.action is None:
            content = _as_text(step.raw)
        else:
            reasoning = _reasoning(step.raw)
            content = (f"{reasoning}\n\n" if reasoning else "") + cwm_call(step.action)
        messages.append({"role": "assistant", "content": content})
        if step.action is None or step.action["tool"] != "submit":
            messages.append({"role": "tool", "content": step.observation})
    text = "<|begin_of_text|>" + "".join(
        f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages
    )
    return {"messages": messages, "text": text, "metadata": _metadata(trajectory)}


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
    pairs = zip(["<start>", *actions], [*actions, "<end>"])
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
) -> tuple[int, int]:
    """Write the selected trajectories of `sources` to `out` as JSONL in `fmt`; returns (read, written).

    When a file holds the same episode twice (a resumed rollout that re-ran an infrastructure
    failure), the last record wins.
    """
    if fmt not in ("chat", "cwm"):
        raise ValueError(f"export format must be chat or cwm, not {fmt!r}")
    convert = to_chat if fmt == "chat" else to_cwm
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
