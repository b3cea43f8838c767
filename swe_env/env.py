"""SWEEnv: a gymnasium.Env in which an agent fixes a repository with tools.

`reset` starts a fresh container for a task and returns the problem statement;
`step` runs one tool call; `submit` (or running out of budget) grades the work in a
separate container with the hidden tests. Agent mistakes are observations, never
exceptions out of `step`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym

from . import endings, tools
from .build import store
from .build.images import ImageBuilder
from .config import EnvConfig, check_reset_options
from .data.task import Limits, Task, load_tasks
from .data.trajectory import Step, Trajectory, TrajectoryWriter
from .errors import Termination
from .grading.grader import Grader, GradingReport
from .grading.rewards import compute_reward
from .runtime import engine, pool
from .runtime.pool import WarmPool
from .runtime.sandbox import Sandbox, SandboxError
from .runtime.spec import SandboxSpec
from .spaces import OBSERVATION_MAX_LENGTH, CodeText, render_text  # noqa: F401  (re-exported)
from .tools import actions


class _Episode(NamedTuple):
    """The running episode's parts, none of them None (`SWEEnv._episode`)."""

    task: Task
    sandbox: Sandbox
    files: tools.FileTools
    trajectory: Trajectory
    limits: Limits


class SWEEnv(gym.Env):
    """Fix a repository at a commit so that hidden tests pass.

    Observation: text (the problem statement and tool list on reset, tool output after).
    Action: a tool call as a dict (`{"tool": "bash", "command": "ls"}`), a JSON string of
    one, an OpenAI-style function call, or a ```bash fenced block.
    Reward: 0 until the episode ends; then the grader's reward (see EnvConfig.reward_mode).
    `info` after the last step holds the grading report under "report".
    """

    metadata = {"render_modes": ["ansi", "human"]}

    def __init__(self, tasks: str | Path | Task | list[Task], render_mode: str | None = None, **options: Any):
        self.config = EnvConfig(**options)
        if isinstance(tasks, (str, Path)):
            tasks = load_tasks(tasks)
        elif isinstance(tasks, Task):
            tasks = [tasks]
        if not tasks:
            raise ValueError("SWEEnv needs at least one task")
        self.tasks: list[Task] = list(tasks)
        self._by_id = {task.id: task for task in self.tasks}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, not {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = CodeText()
        self.action_space = CodeText(tools.MAX_ACTION_CHARS)
        self.builder = ImageBuilder(images=self.config.images, registry=self.config.registry, published_namespace=self.config.published_namespace)
        store.prune_before_building(self.config.max_disk)
        self.grader = Grader(self.config.reward_mode, self.builder, reward_policy=self.config.reward_policy)
        self._tool_names = tools.offered(self.config.tools)
        self._writer = TrajectoryWriter(self.config.trajectory_path) if self.config.trajectory_path else None
        self._pool = WarmPool(self.config.warm_pool) if self.config.warm_pool else None
        self.sandbox: Sandbox | None = None
        self.task: Task | None = None
        self.trajectory: Trajectory | None = None
        self._files: tools.FileTools | None = None
        self._done = True
        self._started = 0.0
        self._steps = 0
        self._last_text = ""
        self._agent_seconds: float | None = None
        self._episode_limits: Limits | None = None

    # ------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        """Start an episode. `options`: `task_id`, `action_format`, and for the record `episode_index`
        and `model` (kept in the trajectory). Options are checked before anything else: a refused
        reset (KeyError for an unknown task_id, ValueError for a bad option) leaves the running
        episode, its container and the random generator as they were; an unknown option is a ValueError."""
        options = check_reset_options(options)
        action_format = options.get("action_format", self.config.action_format)
        if action_format not in tools.ACTION_FORMATS:
            raise ValueError(f"action_format must be one of {', '.join(tools.ACTION_FORMATS)}, not {action_format!r}")
        task_id = options.get("task_id")
        if task_id is not None and task_id not in self._by_id:
            raise KeyError(unknown_task_message(task_id, self._by_id))
        episode_index, model = options.get("episode_index"), options.get("model")
        if episode_index is not None and (isinstance(episode_index, bool) or not isinstance(episode_index, int) or episode_index < 0):
            raise ValueError(f"episode_index must be an integer >= 0, not {episode_index!r}")
        if model is not None and not isinstance(model, str):
            raise ValueError(f"model must be a string, not {model!r}")
        super().reset(seed=seed)
        self._finish_episode("abandoned", write=True)
        if task_id is not None:
            task = self._by_id[task_id]
        else:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        image = self.builder.ensure(task)
        limits = self._episode_limits = self._limits(task)
        spec = SandboxSpec.for_task(task, image, "episode", limits=limits, output_limit=self.config.output_limit, ttl_seconds=episode_ttl(limits))
        sandbox = self._pool.acquire(spec) if self._pool is not None else pool.start(spec)
        if self._pool is not None and not _outlives_the_episode(sandbox, limits):
            self._pool.release(sandbox)  # kept too long: its time to live would end before the episode's own deadline
            sandbox = pool.start(spec)
        self.task, self.sandbox, self._files = task, sandbox, tools.FileTools(sandbox)
        self._done, self._steps, self._started = False, 0, time.monotonic()
        self.trajectory = Trajectory(
            task_id=task.id,
            agent=self.config.agent_name,
            episode_id=uuid.uuid4().hex[:16],
            image=image,
            config=self.config.model_dump(exclude={"trajectory_path"}) | {"limits": limits.model_dump()},
            problem_statement=task.problem_statement,
            workdir=task.environment.workdir,
            episode_index=episode_index,
            model=model,
        )
        instructions = tools.instructions(task.environment.workdir, action_format, self._tool_names)
        observation = f"{task.problem_statement.rstrip()}\n\n{instructions}"
        self._last_text = observation
        info = {
            "task_id": task.id,
            "image": image,
            "container_id": sandbox.id,
            "episode_id": self.trajectory.episode_id,
            "max_steps": limits.max_steps,
            "tools": self._tool_names,
            "action_format": action_format,
        }
        if action_format == "openai":
            info["tool_schemas"] = tools.schemas(self._tool_names)
        return observation, info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict]:
        if self.trajectory is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            return "The episode is over; call reset() to start a new one.", 0.0, True, False, {"error": "episode over"}
        episode = self._episode
        started = time.monotonic()
        self._steps += 1
        info: dict[str, Any] = {"step": self._steps}
        record = Step(index=self._steps, raw=_jsonable(action), observation="", agent_seconds=self._agent_seconds)
        self._agent_seconds = None
        reward, terminated, truncated = 0.0, False, False
        try:
            call = actions.parse(action, self._tool_names)
            record.action = call.to_dict()
        except actions.ActionError as exc:
            call = None
            record.observation, record.error = f"Error: {exc}", True
        try:
            result = tools.run(call.tool, call.args, self._tool_context(episode)) if call is not None else None
            if result is not None and result.submitted:
                report = self._grade(episode, result.patch)
                record.observation = _report_text(report)
                reward, terminated = report.reward, True
                self._finish_episode("submitted", report=report)
                info["report"] = report.model_dump()
            elif result is not None:
                assert call is not None  # a result comes only from a parsed call
                record.observation, record.exit_code = _render(result), result.exit_code
                if tools.REGISTRY[call.tool].runs_commands:
                    # The text's "[exit code N]" is only for reading: a command can print it too.
                    info["exit_code"], info["timed_out"] = result.exit_code, result.timed_out
                record.error, record.notes = result.error, result.notes
            reason = self._budget_spent(episode.limits) if not terminated else None
            if reason is not None:
                truncated = True
                record.notes.append(f"episode truncated: {reason}")
                final = self._grade(episode) if self.config.grade_on_truncation else None
                reward = final.reward if final else 0.0
                if final is not None:
                    info["report"] = final.model_dump()
                self._finish_episode(reason, report=final)
        except Exception as exc:  # noqa: BLE001 - step never raises: the judge says how the episode ends and whose it is
            truncated, terminated = True, False
            reward = self._end_with(episode, record, info, exc, endings.judge("step", exc, evidence=episode.sandbox.life.evidence))
        record.env_seconds = round(time.monotonic() - started, 4)
        episode.trajectory.steps.append(record)
        if self._done:
            self._write_trajectory()
        observation = record.observation[:OBSERVATION_MAX_LENGTH]
        self._last_text = observation
        if self.render_mode == "human":
            self.render()
        return observation, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        return render_text(self.render_mode, self.task.id if self.task else None, self._steps, self._last_text)

    def close(self) -> None:
        self._finish_episode("closed", write=True)
        if self._pool is not None:
            self._pool.close()
        super().close()

    # ------------------------------------------------------------ helpers

    def get_trajectory(self) -> Trajectory | None:
        """A copy of the current (or last) episode's record; None before the first reset.

        The public way to the record, also through gymnasium's wrappers
        (`env.unwrapped.get_trajectory()`, `env.get_wrapper_attr("get_trajectory")()`);
        `RemoteSWEEnv` has the same method."""
        return self.trajectory.model_copy(deep=True) if self.trajectory is not None else None

    def note_agent_seconds(self, seconds: float) -> None:
        """Record how long the agent took to choose the next action (stored with that step)."""
        self._agent_seconds = round(seconds, 4)

    def _limits(self, task: Task) -> Limits:
        overrides = {
            key: value
            for key, value in (
                ("max_steps", self.config.max_steps),
                ("command_timeout", self.config.command_timeout),
                ("episode_timeout", self.config.episode_timeout),
            )
            if value is not None
        }
        return task.limits.model_copy(update=overrides)

    @property
    def _episode(self) -> _Episode:
        """The running episode's parts; RuntimeError when none is running (before reset(), or once it ended:
        `_finish_episode` lets go of the sandbox)."""
        if self._done or self.task is None or self.sandbox is None or self._files is None or self.trajectory is None or self._episode_limits is None:
            raise RuntimeError("call reset() first")
        return _Episode(self.task, self.sandbox, self._files, self.trajectory, self._episode_limits)

    def _tool_context(self, episode: _Episode) -> tools.ToolContext:
        remaining = max(episode.limits.episode_timeout - (time.monotonic() - self._started), 1.0)
        return tools.ToolContext(episode.sandbox, episode.files, episode.limits.command_timeout, remaining, self.config.output_limit)

    def _budget_spent(self, limits: Limits) -> Termination | None:
        if self._steps >= limits.max_steps:
            return "max_steps"
        if time.monotonic() - self._started >= limits.episode_timeout:
            return "time_limit"
        return None

    def _end_with(self, episode: _Episode, record: Step, info: dict, exc: Exception, ending: endings.Ending) -> float:
        """End the episode as `endings.judge` found (the reward: 0, or the unresolved one when the agent's
        commands broke its own container: a graded report says so, nothing in the container believed)."""
        record.error = True
        if ending.scored:
            report = GradingReport(task_id=episode.task.id, status="graded", error=ending.cause)
            report.reward = compute_reward(report, self.config.reward_mode, None, episode.task.gold_patch)
            info["report"], info["error"] = report.model_dump(), ending.cause
            record.observation = f"The episode was ended: {ending.cause}."
            self._finish_episode(ending.name, report=report, error=ending.cause)  # type: ignore[arg-type]
            return report.reward
        record.observation = _ENDED.get(ending.name, _ENDED["sandbox_died"]).format(ending.cause)
        info["error"] = str(exc)
        self._finish_episode(ending.name, error=str(exc))  # type: ignore[arg-type]
        return 0.0

    def _grade(self, episode: _Episode, patch: str | None = None) -> GradingReport:
        """Grade the working tree's diff, or `patch` when the agent submitted one (`submit(patch=...)`)."""
        task, sandbox = episode.task, episode.sandbox
        if patch is not None:
            episode.trajectory.diff = patch
            return self.grader.grade(task, patch, image=sandbox.image)
        try:
            diff = sandbox.diff(task.base_commit)
        except SandboxError as exc:
            if endings.judge("diff", exc, evidence=lambda: endings.Evidence(alive=sandbox.alive())).ours:
                raise  # the step's judge looks at the container's records
            # The container is fine (or the engine answered but the diff did not end: the agent's
            # processes stopped it) but git is not (the agent removed or broke .git, wrote into the
            # diff's output, stopped it): its work cannot be read, the agent's doing, not ours.
            report = GradingReport(
                task_id=task.id, status="patch_failed", error=f"the agent's work could not be read, so no diff could be taken: {exc}"
            )
            report.reward = compute_reward(report, self.config.reward_mode, None, task.gold_patch)
            return report
        episode.trajectory.diff = diff
        return self.grader.grade(task, diff, image=sandbox.image)

    def _finish_episode(self, reason: Termination, report: GradingReport | None = None, error: str | None = None, write: bool = False) -> None:
        if self._done:
            return
        self._done = True
        if self.trajectory is not None:
            self.trajectory.termination = reason
            self.trajectory.error = error
            self.trajectory.seconds = round(time.monotonic() - self._started, 3)
            if report is not None:
                self.trajectory.report = report.model_dump()
                self.trajectory.reward, self.trajectory.resolved = report.reward, report.resolved
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None and self._pool is not None:
            self._pool.release(sandbox)
        elif sandbox is not None:
            sandbox.close()
        if write and self.trajectory is not None and self.trajectory.steps:
            self._write_trajectory()

    def _write_trajectory(self) -> None:
        if self._writer is not None and self.trajectory is not None:
            self._writer.write(self.trajectory)


def unknown_task_message(task_id: Any, known: Any, listed: int = 20) -> str:
    """The message for a reset naming a task the env does not have (the first `listed` known ids)."""
    names = sorted(known)
    shown = ", ".join(names[:listed]) + (f", ... ({len(names) - listed} more)" if len(names) > listed else "")
    return f"unknown task_id {task_id!r}; known: {shown}"


EPISODE_TTL_MARGIN = 1800
"""Seconds an episode's container lives past the episode's own deadline (`episode_timeout`): the last command's host
deadline, the diff on submit and a loaded engine fit in it, so the container's time to live never ends an episode its
own time limit should have ended (red team rt6b, T1: a TTL end is judged ours, and with an `episode_timeout` of the TTL
or more an agent that ran to its time limit had its container ended by the TTL)."""


def episode_ttl(limits: Limits) -> int:
    """The time to live of an episode's container: the engine's default, or more when the episode may run longer."""
    return max(engine.DEFAULT_TTL_SECONDS, int(limits.episode_timeout) + EPISODE_TTL_MARGIN)


def _outlives_the_episode(sandbox: Sandbox, limits: Limits) -> bool:
    """Whether a sandbox taken from the warm pool has its time to live left for a whole episode (and the margin)."""
    started = sandbox.life.started_at
    return started is not None and sandbox.life.spec.ttl_seconds - (time.monotonic() - started) >= limits.episode_timeout + EPISODE_TTL_MARGIN


_ENDED = {
    "disk_limit": "The episode was ended: {}.",
    "sandbox_died": "The sandbox failed and the episode cannot continue: {}",
    "internal_error": "The environment failed and the episode cannot continue: {}",
}
"""What the agent reads when its episode ends by `endings.judge` without a report (the cause filled in)."""


def _render(result: tools.ToolResult) -> str:
    text = result.output
    for note in result.notes:
        text += f"\n[{note}]"
    if result.exit_code is not None and not result.error:
        text += f"\n[exit code {result.exit_code}]"
    return text


def _report_text(report: GradingReport) -> str:
    if report.status != "graded":
        return f"Submitted. Grading status: {report.status}. {report.error or ''}".strip()
    verdict = "resolved" if report.resolved else "not resolved"
    return f"Submitted. The task is {verdict} (reward {report.reward:g})."


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return repr(value)
