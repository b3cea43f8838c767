"""mini-swe-agent on swe-env: an Environment class, and a batch runner that writes its `preds.json`.

mini-swe-agent (tested with 2.4.6, `pip install 'swe-env[minisweagent]'`) picks an environment
class by dotted path, so its own agents and configs run in our containers and are graded by
our grader unchanged:

    environment:
      environment_class: swe_env.integrations.minisweagent.SWEEnvEnvironment
      tasks: tasks                          # a task file, a task folder, or a folder of them
      task_id: ledger-negative-rounding     # None: a task drawn with `seed`
      timeout: 60

The class keeps mini-swe-agent's `Environment` contract as its `DockerEnvironment` does:

- `execute(action, cwd="", *, timeout=None)` runs `action["command"]` and returns
  `{"output", "returncode", "exception_info"}` (and `extra` on a timeout or a lost shell, with
  `returncode` -1, like DockerEnvironment's `subprocess.TimeoutExpired` case). Each action runs
  in a fresh subshell of the episode's one persistent shell, `( cd CWD && export K=V && eval
  COMMAND )`: a `cd` or `export` does not carry over to the next action, as mini-swe-agent's
  prompts promise, an `exit` or a `kill -9 $BASHPID` ends only that subshell (as under
  `bash -c`), and no process or container is started per action (a step costs what our `bash`
  tool costs plus a fork). `cwd` defaults to the config's, else the task's workdir
  (`/testbed`). The command goes through `SWEEnv.step`, so the task's
  limits, the memory/pid/disk checks, the timeout that kills the command's processes and the
  trajectory record all apply; output is kept whole up to `output_limit` (900,000 characters;
  past that head and tail, noted in the output).
- Submission: as in every mini-swe-agent environment, an action whose output's first line is
  `COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT` and whose exit code is 0 submits the rest of the
  output. The env then grades, in a fresh container with the hidden tests, exactly what was
  submitted (`submission`, default `auto`): text that is a unified diff is graded as that patch
  (`submit(patch=...)`; files the agent made and left out of it, scratch scripts included, are
  not graded), anything else (mini-swe-agent's default config submits nothing after the
  marker) grades the working tree's diff, as our own `submit` does. `patch` always grades the
  text (empty text: no change), `tree` always the tree. It then raises mini-swe-agent's
  `Submitted`, whose exit message's `extra` — what `DefaultAgent.run` returns — holds
  `exit_status: "Submitted"`, `submission` (the patch that was graded: that is what a
  `preds.json` must carry for `swe-env evaluate` to give the same verdict), `agent_submission`
  (the text after the marker), `reward`, `resolved` and the grading `report`.
- The env's own budget (the task's `limits.max_steps` and `episode_timeout`, or `env_options`)
  ending the episode, or a container that died, raises mini-swe-agent's `LimitsExceeded` /
  `TimeExceeded` or `InterruptAgentFlow` with an exit message (`exit_status` `LimitsExceeded`,
  `TimeExceeded`, or our termination: `sandbox_died`, `disk_limit`...); a budget end grades the
  tree as `SWEEnv` does. The budget counts actions (a model turn may hold several), and an
  action that submits on the very last allowed step ends as a budget end, its tree graded:
  give `env_options: {max_steps: N}` above the agent's own `step_limit` to leave that to the agent.
- `get_template_vars()` gives the config, the task (`task_id`, `problem_statement`, `cwd`) and the
  container's `uname` (`system`, `node`, `release`, `version`, `machine`), which mini-swe-agent's
  templates show the model; `serialize()` gives `info.config.environment` /
  `info.config.environment_type` like its environments, plus `info.swe_env` (task, episode,
  container, reward, report).
- `cleanup()` (also `close()`, the context manager and `__del__`) removes the container; an
  episode not yet graded is recorded as `closed`.

`run_batch` is mini-swe-agent's SWE-bench batch loop over our tasks: for each task, this env,
its agent class from the config (`DefaultAgent` unless `agent.agent_class` says otherwise) and
a model, then `<output>/<id>/<id>.traj.json` through the agent's `save` and `<output>/preds.json`
through mini-swe-agent's own `update_preds_file`, which `swe-env evaluate --predictions` reads
as it is. (mini-swe-agent's `mini-extra swebench` cannot be pointed at our tasks itself: it
tells an environment class other than its own nothing about the instance.)

Not supported: `interpreter` (commands always run in bash; a config's `interpreter: [bash, -c]`
is accepted and ignored), `bash -l`'s login profile.

Why one module of this size (just over 400 lines): mini-swe-agent's Environment class and the
batch runner that writes its `preds.json` are one integration, installed by one extra.
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import logging
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, Field, field_validator

try:
    from minisweagent.exceptions import InterruptAgentFlow, LimitsExceeded, Submitted, TimeExceeded
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError("swe_env.integrations.minisweagent needs mini-swe-agent: pip install 'swe-env[minisweagent]'") from exc

from ..data.task import Task, load_tasks
from ..data.trajectory import Trajectory
from ..env import SWEEnv
from ..grading import diffs
from ..runtime.sandbox import Sandbox
from ..runtime.shell import ansi_c_quote

SUBMIT_MARKER = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"
"""The first output line by which every mini-swe-agent environment recognises a submission."""
DEFAULT_OUTPUT_LIMIT = 900_000
"""Characters of one action's output kept whole (under the env's 1,000,000-character observation cap)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNAME_FIELDS = ("system", "node", "release", "version", "machine")


class SWEEnvEnvironmentConfig(BaseModel):
    """Keyword arguments of `SWEEnvEnvironment` (the `environment:` section of a mini-swe-agent config)."""

    tasks: str = "tasks"
    """A task file, a task folder, or a folder of them (as `swe-env --tasks`)."""
    task_id: str | None = None
    """The task of this episode; None draws one with `seed` (a folder of one task needs none)."""
    seed: int | None = None
    """Seed of the draw when `task_id` is None."""
    cwd: str = ""
    """Working directory of every action; empty: the task's workdir (`/testbed`)."""
    env: dict[str, str] = {}
    """Variables exported in every action's subshell."""
    forward_env: list[str] = []
    """Host variables exported in every action's subshell when set on the host (`env` wins on conflict)."""
    timeout: int = Field(default=60, gt=0, le=3600)
    """Seconds per action, unless `execute(..., timeout=)` says otherwise; its processes are killed after."""
    submission: Literal["auto", "patch", "tree"] = "auto"
    """What a submission grades: `auto` the submitted text when it is a diff, else the working tree's diff;
    `patch` always the submitted text; `tree` always the working tree's diff."""
    env_options: dict[str, Any] = {}
    """Options of `SWEEnv` (`swe_env.EnvConfig` fields: max_steps, episode_timeout, reward_mode,
    trajectory_path, warm_pool, images, ...); `output_limit` defaults to 900,000 here."""
    interpreter: list[str] = ["bash", "-c"]
    """Accepted for configs written for DockerEnvironment and ignored: actions always run in bash."""

    @field_validator("env")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not _ENV_NAME.match(name)]
        if bad:
            raise ValueError(f"not valid variable names: {', '.join(map(repr, bad))}")
        return value


class SWEEnvEnvironment:
    """A mini-swe-agent Environment backed by one `SWEEnv` episode (see the module's docstring)."""

    def __init__(self, *, config_class: type = SWEEnvEnvironmentConfig, logger: logging.Logger | None = None, **kwargs: Any):
        self.logger = logger or logging.getLogger("minisweagent.environment")
        self.config = config_class(**kwargs)
        self.swe_env: SWEEnv | None = None
        self.result: dict[str, Any] | None = None
        """After the episode ended: the exit message's `extra` (exit_status, submission, reward, report...)."""
        options = {"output_limit": DEFAULT_OUTPUT_LIMIT, "agent_name": "mini-swe-agent", **self.config.env_options}
        env = self.swe_env = SWEEnv(tasks=self.config.tasks, **options)
        try:
            reset_options = {"task_id": self.config.task_id} if self.config.task_id else None
            _, self.reset_info = env.reset(seed=self.config.seed, options=reset_options)
            task, sandbox = env.task, env.sandbox
            assert task is not None and sandbox is not None  # reset() just set them (or raised)
            self.task: Task = task
            self._uname = self._read_uname(sandbox)
        except BaseException:
            self.cleanup()
            raise
        self.logger.info(f"Started swe-env container {self.reset_info['container_id'][:12]} for task {self.task.id}")

    # ------------------------------------------------------------ mini-swe-agent's Environment protocol

    def execute(self, action: dict, cwd: str = "", *, timeout: int | None = None) -> dict[str, Any]:
        """Run `action["command"]` in a fresh subshell in `cwd`; raise `Submitted` on a submission."""
        env = self.swe_env
        if self.result is not None or env is None or env.sandbox is None:
            return {
                "output": "",
                "returncode": -1,
                "exception_info": "The episode is over (submitted, out of budget or closed); nothing was run.",
                "extra": {"exception_type": "EpisodeOver", "exception": "episode over"},
            }
        command = action.get("command", "")
        cwd = cwd or self.config.cwd or self.task.environment.workdir
        seconds = min(max(float(timeout or self.config.timeout), 1.0), 3600.0)
        observation, _, terminated, truncated, info = env.step({"tool": "bash", "command": self._wrap(command, cwd), "timeout": seconds})
        output = self._output(observation, info, command, seconds)
        if terminated or truncated:
            self._end(env, info, output)
        if self._is_submission(output):
            self._submit(env, "".join(output["output"].lstrip().splitlines(keepends=True)[1:]))
        return output

    def get_template_vars(self, **kwargs: Any) -> dict[str, Any]:
        return {
            **self.config.model_dump(),
            **self._uname,
            "task_id": self.task.id,
            "problem_statement": self.task.problem_statement,
            "cwd": self.config.cwd or self.task.environment.workdir,
            **kwargs,
        }

    def serialize(self) -> dict:
        trajectory = self.swe_env.trajectory if self.swe_env is not None else None
        swe_env_info: dict[str, Any] = {
            "task_id": self.task.id,
            "container_id": self.reset_info.get("container_id"),
            "image": self.reset_info.get("image"),
        }
        if trajectory is not None:
            swe_env_info |= {
                "episode_id": trajectory.episode_id,
                "termination": trajectory.termination,
                "reward": trajectory.reward,
                "resolved": trajectory.resolved,
                "report": trajectory.report,
            }
        return {
            "info": {
                "config": {
                    "environment": self.config.model_dump(mode="json"),
                    "environment_type": f"{self.__class__.__module__}.{self.__class__.__name__}",
                },
                "swe_env": swe_env_info,
            }
        }

    def cleanup(self) -> None:
        """Remove the container (an episode not graded yet is recorded as `closed`); safe to call twice."""
        env, self.swe_env = getattr(self, "swe_env", None), None
        if env is not None:
            env.close()

    close = cleanup

    def __enter__(self) -> SWEEnvEnvironment:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.cleanup()

    def __del__(self) -> None:
        try:
            self.cleanup()
        except Exception:  # noqa: BLE001 - interpreter shutdown; the sandbox registry's atexit hook is the backstop
            pass

    # ------------------------------------------------------------ helpers

    def _wrap(self, command: str, cwd: str) -> str:
        variables = {name: value for name in self.config.forward_env if (value := os.environ.get(name)) is not None}
        variables |= self.config.env
        exports = "".join(f"export {name}={shlex.quote(value)} && " for name, value in variables.items())
        # The command is parsed only inside the subshell (by eval), so its syntax errors, `exit`,
        # `cd`, exports and even a `kill -9 $BASHPID` end there; the persistent shell around it is
        # untouched. The subshell's stderr is the real one (fd 3); the outer shell's own stderr is
        # /dev/null, so its job report of a killed subshell ("Killed ( cd ... )") is not output.
        return f"{{ ( exec 2>&3 3>&-; cd -- {shlex.quote(cwd)} && {exports}eval {ansi_c_quote(command)} ); }} 3>&2 2>/dev/null"

    def _output(self, observation: str, info: dict, command: str, seconds: float) -> dict[str, Any]:
        exit_code, timed_out = info.get("exit_code"), info.get("timed_out", False)
        suffix = f"\n[exit code {exit_code}]"
        text = observation[: -len(suffix)] if exit_code is not None and observation.endswith(suffix) else observation
        if exit_code is not None and not timed_out:
            return {"output": text, "returncode": exit_code, "exception_info": ""}
        if timed_out:
            why = f"Command '{command}' timed out after {seconds:g} seconds"
            kind = "TimeoutExpired"
        else:
            why = info.get("error") or "the shell ended under the command and a new one was started"
            kind = "ShellRestarted"
        return {
            "output": text,
            "returncode": -1,
            "exception_info": f"An error occurred while executing the command: {why}",
            "extra": {"exception_type": kind, "exception": why},
        }

    def _is_submission(self, output: dict) -> bool:
        lines = output["output"].lstrip().splitlines(keepends=True)
        return bool(lines) and lines[0].strip() == SUBMIT_MARKER and output["returncode"] == 0

    def _submit(self, env: SWEEnv, text: str) -> None:
        step = _trajectory(env).steps[-1]
        if any("characters; " in note and "cut from the middle" in note for note in step.notes):
            # The submitted patch lost its middle to the output limit: grading it would grade garbage.
            raise InterruptAgentFlow(
                {
                    "role": "user",
                    "content": f"The submission was longer than the output limit ({env.config.output_limit} "
                    "characters) and was cut, so it was not submitted. Submit a smaller patch.",
                    "extra": {"interrupt_type": "SubmissionCut"},
                }
            )
        mode = self.config.submission
        as_patch = mode == "patch" or (mode == "auto" and bool(text.strip()) and bool(diffs.touched_paths(text)))
        _, _, _, _, info = env.step({"tool": "submit", "patch": text} if as_patch else {"tool": "submit"})
        if "report" not in info:
            self._end(env, info, None)
        report = info["report"]
        graded = _trajectory(env).diff or ""
        self.result = {
            "exit_status": "Submitted",
            "submission": graded,
            "agent_submission": text,
            "graded": "patch" if as_patch else "tree",
            "reward": report["reward"],
            "resolved": report["resolved"],
            "report": report,
        }
        raise Submitted({"role": "exit", "content": graded, "extra": dict(self.result)})

    def _end(self, env: SWEEnv, info: dict, output: dict | None) -> NoReturn:
        """The env ended the episode on its own (budget, dead container): an exit message for the agent."""
        trajectory = _trajectory(env)
        termination = trajectory.termination or "ended"
        report = info.get("report")
        status = {"max_steps": "LimitsExceeded", "time_limit": "TimeExceeded"}.get(termination, termination)
        self.result = {
            "exit_status": status,
            "submission": (trajectory.diff or "") if report else "",
            "termination": termination,
            "reward": report["reward"] if report else 0.0,
            "resolved": bool(report and report["resolved"]),
            "report": report,
            "error": info.get("error"),
        }
        content = f"The environment ended the episode: {termination}" + (f" ({info['error']})" if info.get("error") else "")
        if output is not None:
            self.result["last_output"] = output
        error = {"LimitsExceeded": LimitsExceeded, "TimeExceeded": TimeExceeded}.get(status, InterruptAgentFlow)
        raise error({"role": "exit", "content": content, "extra": dict(self.result)})

    def _read_uname(self, sandbox: Sandbox) -> dict[str, str]:
        result = sandbox.exec("uname -s; uname -n; uname -r; uname -v; uname -m", timeout=30, idempotent=True)
        values = result.stdout.splitlines()
        if result.exit_code != 0 or len(values) != len(_UNAME_FIELDS):
            return dict.fromkeys(_UNAME_FIELDS, "")
        return dict(zip(_UNAME_FIELDS, values, strict=True))


def _trajectory(env: SWEEnv) -> Trajectory:
    """The running episode's record (the env's own, not a copy): set from the first reset on."""
    assert env.trajectory is not None  # only called after a step, and step() needs a reset() first
    return env.trajectory


# ---------------------------------------------------------------- batch runs (mini-swe-agent's swebench loop)


def run_batch(
    tasks: str | Path,
    config: dict[str, Any],
    output_dir: str | Path,
    *,
    task_ids: list[str] | None = None,
    model_factory: Callable[[Task], Any] | None = None,
    workers: int = 1,
    redo_existing: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run a mini-swe-agent agent on each task and write `preds.json` and trajectories as its SWE-bench runner does.

    `config` is a mini-swe-agent config (`agent`, `model`, `environment` sections, as
    `mini-extra swebench -c` merges them, e.g. its own `swebench.yaml`); its `environment`
    section goes to `SWEEnvEnvironment` (or to the subclass of it that `environment_class`
    names; mini-swe-agent's own classes, such as swebench.yaml's `docker`, are replaced) with
    `tasks` and each `task_id`. The model is `model_factory(task)` when given (e.g. a
    `DeterministicModel` per task), else mini-swe-agent's `get_model(config=config["model"])`.
    Tasks already in `preds.json` are skipped unless `redo_existing`. Returns task id -> the
    agent's exit `extra` (exit_status, submission, reward, resolved, report), or
    `{"exit_status": <exception name>, "error": ...}` when the run failed before the agent ended.
    """
    from minisweagent.agents import get_agent
    from minisweagent.environments import get_environment, get_environment_class
    from minisweagent.models import get_model
    from minisweagent.run.benchmarks.swebench import remove_from_preds_file, update_preds_file

    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    preds = output / "preds.json"
    chosen = load_tasks(tasks)
    if task_ids is not None:
        unknown = sorted(set(task_ids) - {t.id for t in chosen})
        if unknown:
            raise KeyError(f"unknown task ids: {', '.join(unknown)}")
        chosen = [t for t in chosen if t.id in set(task_ids)]
    if not redo_existing and preds.exists():
        done = set(json.loads(preds.read_text()))
        chosen = [t for t in chosen if t.id not in done]

    # A config written for mini-swe-agent's SWE-bench runs names `docker`: our tasks run in our
    # class (or a subclass of it the config names).
    environment_class = config.get("environment", {}).get("environment_class") or ""
    if not (environment_class and issubclass(get_environment_class(environment_class), SWEEnvEnvironment)):
        environment_class = f"{__name__}.SWEEnvEnvironment"

    def one(task: Task) -> tuple[str, dict[str, Any]]:
        remove_from_preds_file(preds, task.id)
        traj_path = output / task.id / f"{task.id}.traj.json"
        traj_path.unlink(missing_ok=True)
        model = model_factory(task) if model_factory is not None else get_model(config=copy.deepcopy(config.get("model", {})))
        env_config = {**config.get("environment", {}), "environment_class": environment_class, "tasks": str(tasks), "task_id": task.id}
        env = agent = None
        result: dict[str, Any] = {"exit_status": None, "submission": ""}
        try:
            env = get_environment(env_config)
            agent = get_agent(model, env, config.get("agent", {}), default_type="default")
            result = dict(agent.run(task.problem_statement))
        except Exception as exc:  # noqa: BLE001 - one task's failure is its own row, as in mini-swe-agent's runner
            logging.getLogger("minisweagent").error(f"Error processing task {task.id}: {exc}", exc_info=True)
            result = {"exit_status": type(exc).__name__, "submission": "", "error": str(exc)}
        finally:
            if agent is not None:
                agent.save(
                    traj_path,
                    {"info": {"exit_status": result.get("exit_status"), "submission": result.get("submission") or ""}, "instance_id": task.id},
                )
            if env is not None and hasattr(env, "cleanup"):
                env.cleanup()
        update_preds_file(preds, task.id, model.config.model_name, result.get("submission") or "")
        return task.id, result

    results: dict[str, dict[str, Any]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for task_id, result in pool.map(one, chosen):
            results[task_id] = result
    return results
