"""TRL: swe-env as an environment for `GRPOTrainer(environment_factory=...)`, its methods the model's tools.

    from trl import GRPOConfig, GRPOTrainer
    from swe_env.integrations.trl import environment_factory, task_dataset

    trainer = GRPOTrainer(
        model="Qwen/Qwen3-0.6B",
        args=GRPOConfig(max_steps=100, max_tool_calling_iterations=30),
        train_dataset=task_dataset("tasks"),               # a `task_id` column: the G rollouts of a row share a task
        environment_factory=environment_factory("tasks", max_steps=30),
    )

Tested with the real TRL (the `trl` extra: trl 1.16.0, transformers 5.25.0, torch 2.13.0 CPU):
`tests/integrations/test_trl.py` runs `GRPOTrainer` for one step on the CPU with a tiny scripted model against
this class and the real engine. What TRL does with it (its `environment_factory` contract, TRL 1.8
to 1.17):

- `environment_factory` is called with no arguments, once per concurrent rollout; instances
  are pooled and reused, `reset` starting each rollout. `environment_factory(tasks, **options)`
  here returns such a callable; options are `swe_env.EnvConfig` fields.
- The tools are the class's public functions (names not starting with `_`), bound to the
  instance, other than the reserved `reset` and `get_reward`: here exactly the registry's
  default tools (`TOOL_NAMES`, `tools.DEFAULT_TOOLS`), each generated from
  `swe_env.tools.registry` with type hints and a Google-style docstring (transformers turns those
  into the JSON schema); `TRL_ARGUMENT_NAMES` renames the one argument whose name would shadow a
  builtin (`view`'s `range` is `view_range`). A tool is called with
  the model's arguments as keywords and its return value is `str()`'d into the tool message;
  an exception becomes `{"error": ...}`. Ours return the env's observation text and raise only
  for arguments that do not fit the signature; cleanup is therefore not a public method
  (`close_all()` is a module function, and a finished episode's container is gone already).
- `reset(**row)` gets the dataset row's columns (`prompt` included): a `task_id` column picks
  the task, else one is drawn (seeded by the `seed` option). It returns the task's problem
  statement and a line about the tools, which TRL appends to the row's last user message.
- `get_reward()` is called once per finished rollout and owns the reward: the grader's reward
  (`reward_mode`) of the submitted work; a rollout that ended without `submit` (the model
  stopped calling tools, or TRL's `max_tool_calling_iterations` ran out) has its working tree
  graded then, as `SWEEnv` grades a truncated episode. A reward function passed as
  `reward_funcs` gets the instances as `environments=` and can read `report` (the grading
  report), `reward`, `task_id` or `swe_env.data.trajectory` (the rollout's record).

Each rollout runs in its own container (started in `reset`, about a second; TRL calls the
resets one after another) and is graded in a fresh one; after grading no container is left.
"""

from __future__ import annotations

import functools
import inspect
import operator
import types
import typing
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.task import Task, load_tasks
from ..env import SWEEnv
from ..tools.registry import ALWAYS_OFFERED, DEFAULT_TOOLS, REGISTRY

TOOL_NAMES = tuple(DEFAULT_TOOLS)
"""The methods TRL exposes as tools: the registry's default tools, generated from it below (every other
public method would become a tool too, so there are none)."""
_WORKING_TOOLS = ", ".join(name for name in TOOL_NAMES if name != ALWAYS_OFFERED)
_live: weakref.WeakSet[SWEEnvTRL] = weakref.WeakSet()


class SWEEnvTRL:
    """One rollout's environment for TRL's `environment_factory`: a `SWEEnv` whose tools are methods."""

    def __init__(self, tasks: str | Path | Task | list[Task] = "tasks", **options: Any):
        options.setdefault("agent_name", "trl")
        self.swe_env = SWEEnv(tasks=tasks, **options)
        """The env behind the tools (a gymnasium env; its `trajectory` is the rollout's record)."""
        self.report: dict | None = None
        """The grading report of the last finished rollout (None before one finished)."""
        self.reward: float = 0.0
        """The last finished rollout's reward (what `get_reward` returned)."""
        self.task_id: str | None = None
        _live.add(self)

    # ------------------------------------------------------------ TRL's reserved methods

    def reset(self, **kwargs: Any) -> str:
        """Start a rollout: a fresh container for the row's `task_id` (or a drawn task); returns the task's text."""
        task_id = kwargs.get("task_id")
        observation, info = self.swe_env.reset(options={"task_id": task_id} if task_id else None)
        self.task_id, self.report, self.reward = info["task_id"], None, 0.0
        task = self.swe_env.task
        assert task is not None  # reset() just set it (or raised)
        text = (
            f"{task.problem_statement.rstrip()}\n\nThe repository is checked out at {task.environment.workdir}. "
            f"Use the tools ({_WORKING_TOOLS}) to fix the problem, then call {ALWAYS_OFFERED}."
        )
        prompt = kwargs.get("prompt")
        if isinstance(prompt, list) and prompt and isinstance(prompt[-1], dict):
            prompt = prompt[-1].get("content")
        # TRL appends this text to the last user message as it is: keep it apart from a prompt that has words.
        if isinstance(prompt, str) and prompt.strip() and not prompt[-1].isspace():
            text = "\n\n" + text
        return text

    def get_reward(self) -> float:
        """The graded reward of this rollout; work never submitted is graded now (as a truncated episode is)."""
        if self.swe_env.trajectory is None:
            return 0.0
        if self.report is None and self.swe_env.sandbox is not None:
            self._step({"tool": "submit"})
        if self.report is None:
            trajectory = self.swe_env.trajectory
            self.report, self.reward = trajectory.report, float(trajectory.reward or 0.0)
        return self.reward

    # ------------------------------------------------------------ helpers

    def _step(self, action: dict) -> str:
        if self.swe_env.trajectory is None:
            return "Error: no rollout is running (reset was not called)."
        observation, reward, terminated, truncated, info = self.swe_env.step(action)
        if (terminated or truncated) and self.report is None and self.swe_env.sandbox is None:
            self.report, self.reward = info.get("report"), float(reward)
        return observation

    def _close(self) -> None:
        self.swe_env.close()

    def __del__(self) -> None:
        try:
            self._close()
        except Exception:  # noqa: BLE001 - interpreter shutdown; the sandbox registry's atexit hook is the backstop
            pass


# ------------------------------------------------------------ the tools, generated from the registry

TRL_ARGUMENT_NAMES: dict[tuple[str, str], str] = {("view", "range"): "view_range"}
"""(tool, registry argument) -> the keyword TRL's method takes instead (`range` would shadow the builtin
in a Python signature). The one mapping between the two vocabularies; every other argument keeps its name."""


def _plain(annotation: Any) -> Any:
    """A field's type without pydantic's `Annotated` constraints (transformers' schema reads only the type)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _plain(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, [_plain(arg) for arg in typing.get_args(annotation)])
    return annotation


def _tool_method(name: str) -> Callable[..., str]:
    """`SWEEnvTRL.<name>`: the registry tool's argument model as a Python signature with type hints and a
    Google-style docstring (its docstring, each field's description under `Args:`, the tool's `returns`),
    which is all TRL and transformers' `get_json_schema` read. A call binds the keywords to that signature
    (a wrong one is a TypeError, which TRL hands the model as an error) and steps the env with them under
    the registry's names; arguments left at None are not sent, so the tool's own default applies."""
    tool = REGISTRY[name]
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    registry_names: dict[str, str] = {}
    described = []
    for field_name, field in tool.args.model_fields.items():
        keyword = TRL_ARGUMENT_NAMES.get((name, field_name), field_name)
        registry_names[keyword] = field_name
        annotations[keyword] = _plain(field.annotation)
        default = inspect.Parameter.empty if field.is_required() else field.default
        parameters.append(inspect.Parameter(keyword, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotations[keyword]))
        described.append(f"    {keyword}: {' '.join((field.description or '').split())}")
    annotations["return"] = str
    signature = inspect.Signature(parameters, return_annotation=str)
    doc = " ".join((tool.args.__doc__ or "").split())
    if described:
        doc += "\n\nArgs:\n" + "\n".join(described)
    doc += f"\n\nReturns:\n    {tool.returns}"

    def method(self: SWEEnvTRL, *args: Any, **kwargs: Any) -> str:
        bound = signature.bind(self, *args, **kwargs)
        arguments = {registry_names[k]: v for k, v in bound.arguments.items() if k != "self" and v is not None}
        return self._step({"tool": name, **arguments})

    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    method.__signature__ = signature  # type: ignore[attr-defined]  # what inspect.signature reports
    method.__annotations__ = annotations
    return method


for _name in TOOL_NAMES:
    setattr(SWEEnvTRL, _name, _tool_method(_name))


def environment_factory(tasks: str | Path | list[Task] = "tasks", **options: Any) -> Callable[[], SWEEnvTRL]:
    """What to pass as `GRPOTrainer(environment_factory=...)`: a no-argument callable making one `SWEEnvTRL`.

    The tasks are loaded once here (a mistake in a task file is raised now, not in the trainer);
    `options` are `swe_env.EnvConfig` fields (max_steps, reward_mode, command_timeout, ...).
    """
    loaded = tasks if isinstance(tasks, list) else load_tasks(tasks)
    if not loaded:
        raise ValueError(f"no tasks in {tasks}")

    def factory() -> SWEEnvTRL:
        return SWEEnvTRL(loaded, **options)

    return factory


def task_dataset(tasks: str | Path | list[Task] = "tasks", repeat: int = 1) -> Any:
    """A `datasets.Dataset` with one row per task (`prompt` an empty user turn, `task_id`), `repeat` times over.

    Rows carry the task, so the G rollouts TRL makes of one row share it (a fair GRPO group). Needs
    the `datasets` package (which TRL installs); `task_rows` gives the same rows as plain dicts.
    """
    from datasets import Dataset

    return Dataset.from_list(task_rows(tasks, repeat))


def task_rows(tasks: str | Path | list[Task] = "tasks", repeat: int = 1) -> list[dict]:
    """The rows of `task_dataset`: `{"prompt": [{"role": "user", "content": ""}], "task_id": id}`."""
    loaded = tasks if isinstance(tasks, list) else load_tasks(tasks)
    return [{"prompt": [{"role": "user", "content": ""}], "task_id": task.id} for _ in range(repeat) for task in loaded]


def close_all() -> None:
    """Remove the containers of every live `SWEEnvTRL` (rollouts still running are recorded as closed)."""
    for environment in list(_live):
        environment._close()
