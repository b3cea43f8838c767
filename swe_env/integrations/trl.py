"""TRL: swe-env as an environment for `GRPOTrainer(environment_factory=...)`, its methods the model's tools.

    from trl import GRPOConfig, GRPOTrainer
    from swe_env.integrations.trl import environment_factory, task_dataset

    trainer = GRPOTrainer(
        model="Qwen/Qwen3-0.6B",
        args=GRPOConfig(max_steps=100, max_tool_calling_iterations=30),
        train_dataset=task_dataset("tasks"),               # a `task_id` column: the G rollouts of a row share a task
        environment_factory=environment_factory("tasks", max_steps=30),
    )

Written against the contract TRL documents for `environment_factory` (TRL 1.8 to 1.17 and its
main branch; `GRPOTrainer`'s docstring and `docs/source/grpo_trainer.md`, "Environments"), not
against an installed TRL: TRL needs torch, too heavy for this project's CI, so the tests
(`tests/test_trl.py`) drive the class the way that contract says TRL does, on the real engine:

- `environment_factory` is called with no arguments, once per concurrent rollout; instances
  are pooled and reused, `reset` starting each rollout. `environment_factory(tasks, **options)`
  here returns such a callable; options are `swe_env.EnvConfig` fields.
- The tools are the instance's public bound methods (`inspect.getmembers(..., inspect.ismethod)`,
  names not starting with `_`) other than the reserved `reset` and `get_reward`: here exactly
  `bash`, `edit`, `view`, `create`, `undo_edit` and `submit`, each with type hints and a
  Google-style docstring (transformers turns those into the JSON schema). A tool is called with
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

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..env import SWEEnv
from ..data.task import Task, load_tasks

TOOL_NAMES = ("bash", "edit", "view", "create", "undo_edit", "submit")
"""The methods TRL exposes as tools (every other public method would become one too, so there are none)."""
_live: "weakref.WeakSet[SWEEnvTRL]" = weakref.WeakSet()


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
        text = (f"{task.problem_statement.rstrip()}\n\nThe repository is checked out at {task.environment.workdir}. "
                "Use the tools (bash, view, edit, create, undo_edit) to fix the problem, then call submit.")
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

    # ------------------------------------------------------------ the tools

    def bash(self, command: str, timeout: float | None = None) -> str:
        """
        Run a command in a persistent bash shell in the repository; the working directory and exported
        variables are kept between calls.

        Args:
            command: The shell command to run.
            timeout: Seconds before the command is killed (default: the task's limit).

        Returns:
            The command's combined output, then its exit code.
        """
        return self._step({"tool": "bash", "command": command, **({"timeout": timeout} if timeout else {})})

    def view(self, path: str, view_range: list[int] | None = None) -> str:
        """
        Show a file with line numbers, or list a directory two levels deep.

        Args:
            path: File or directory path, relative to the repository root or absolute inside it.
            view_range: Optional [first, last] line numbers to show; last may be -1 for the end of the file.

        Returns:
            The numbered lines, or the directory listing.
        """
        return self._step({"tool": "view", "path": path, **({"range": view_range} if view_range else {})})

    def edit(self, path: str, old: str, new: str) -> str:
        """
        Replace one exact occurrence of `old` with `new` in a file.

        Args:
            path: File path, relative to the repository root or absolute inside it.
            old: Exact text to replace; it must occur exactly once in the file.
            new: The replacement text.

        Returns:
            The edited region of the file, or why nothing was changed.
        """
        return self._step({"tool": "edit", "path": path, "old": old, "new": new})

    def create(self, path: str, content: str) -> str:
        """
        Create a new file (parent folders are made); it is an error if the file exists.

        Args:
            path: Path of the new file.
            content: The whole content of the file.

        Returns:
            What was created.
        """
        return self._step({"tool": "create", "path": path, "content": content})

    def undo_edit(self, path: str) -> str:
        """
        Undo the last edit or create made to a file with these tools.

        Args:
            path: File path whose last edit is undone.

        Returns:
            What was restored.
        """
        return self._step({"tool": "undo_edit", "path": path})

    def submit(self, patch: str | None = None) -> str:
        """
        Finish: the repository's changes (or the patch given) are graded by hidden tests. Call it once, at the end.

        Args:
            patch: Optional unified diff to grade instead of the working tree's changes (e.g. without scratch files).

        Returns:
            The verdict.
        """
        return self._step({"tool": "submit", **({"patch": patch} if patch is not None else {})})

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
