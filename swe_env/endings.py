"""Whose fault an ending is, judged in one place from the evidence: `judge`.

The tables are `errors.KINDS` (how an episode ends) and `errors.GRADING_KINDS` (how a grading ends); this
module applies them to what happened: the exception (some carry their ending: `DiskLimitExceeded` is the
agent's `disk_limit`, `DeadlineExceeded` in the agent's container its `sandbox_killed`, `OutputLost` ours),
the engine's records of the container (`Evidence`, which nothing inside it can write: gathered by
`runtime.lifecycle.Lifecycle.evidence`), and a grading's status. The env's `step`, its diff, the grader,
rollouts, `evaluate` and the server ask `judge`; none decides whose fault something is on its own.

Pure: no engine, no I/O (the evidence is handed in, or a callable gathering it is, so it is read only
when the exception does not carry an ending of the agent's: one of ours yields to the evidence that the
agent changed the programs the host runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .errors import GRADING_KINDS, KINDS, classify_exception, is_infrastructure

Where = Literal["step", "diff", "grading", "outside"]
"""What was going on: an env step (`step`), taking the agent's diff (`diff`), a grading (`grading`), or
anything outside a step (`outside`: reset, a rollout's agent, a server call)."""


@dataclass(frozen=True)
class Evidence:
    """What the engine's records say about a container after a failure (nothing inside can alter them)."""

    alive: bool
    """The engine lists the container as running."""
    stopped_from_inside: str | None = None
    """Not running: why, when the event log shows its main process stopped from inside (`Lifecycle.stopped_from_inside`)."""
    stopped_processes: int = 0
    """Running: processes in state T or t (stopped by a signal or a tracer; the host never leaves one so)."""
    altered_programs: tuple[str, ...] = ()
    """Running: programs or libraries the host runs in it that the writable layer changed (`changes.HOST_PROGRAMS`)."""
    shell_refused: str | None = None
    """Running, after the agent's commands: the engine's answer when it cannot start the shell in the container while
    it starts it in a fresh container of the same image, asked then (`Lifecycle.shell_refused`): the container's own
    state stops it, the agent's doing (red team rt6b, A4: `/etc/passwd` made a folder)."""
    clean_base: bool | None = None
    """After one of the grader's own steps ran and failed on the patched tree: whether a fresh container of the same
    image, asked then, does the grader's git steps and takes the task's test patch (`prepare.clean_base_takes_test_patch`).
    True: the patch is what differs, so the failure is the model's (red team rt6b, A3)."""
    unstopped: str | None = None
    """After code the host does not trust ran: processes outlived every stop through the engine while the engine
    answered, so a process inside kept the main process from ending them, and the container was killed
    (`Lifecycle.unstopped`, the engine's listing of what was left): the code's doing, whatever else is found."""


@dataclass(frozen=True)
class Ending:
    """How something ended (`name`: an `errors.Termination`, or an `errors.GradingStatus` for a grading),
    whose it is (`kind`: from the tables; "model" or "infrastructure" for a grading) and why (`cause`)."""

    name: str
    kind: str
    cause: str = ""

    @property
    def ours(self) -> bool:
        """Says nothing about the agent (or the model): our machinery failed."""
        return self.kind == "infrastructure"

    @property
    def scored(self) -> bool:
        """An episode the agent's commands ended by breaking its own container: it is given a graded report
        with the unresolved reward (nothing in the container can be believed, so it is not graded)."""
        return self.name in ("sandbox_killed", "sandbox_broken")


def judge(
    where: Where, exc: BaseException | None = None, *, evidence: Evidence | Callable[[], Evidence | None] | None = None, status: str | None = None
) -> Ending:
    """The ending of what `exc` (or a grading that ended with `status`) ended, and whose it is.

    - `step`: an exception out of a tool call. One that carries its ending (`ending` on its class) ends so,
      unless that ending is ours and the evidence shows the agent changed a program the host runs
      (`sandbox_broken`: bash made to print nothing looks like the engine losing the output);
      our machinery's failure is the agent's when the evidence shows its commands stopped the container or
      its processes (`sandbox_killed`; also when its processes outlived every stop the host made through the engine
      while the engine answered, `Evidence.unstopped`) or changed a program the host runs there (`sandbox_broken`;
      also when the engine cannot start a shell there but can in a fresh container of the image, `Evidence.shell_refused`), else
      ours (`sandbox_died`; no evidence, or an engine that cannot tell, is ours); any other exception is a
      bug of ours (`internal_error`).
    - `diff`: the agent's diff could not be taken. The agent's (`patch_failed`) when the exception carries
      an ending of the agent's or the container is still running (git, not the container, failed: the
      agent broke `.git` or stopped the diff); else ours (the exception's ending, or `sandbox_died`).
    - `grading`: with `status`, that status and its kind (`errors.GRADING_KINDS`); with `exc`, a failure of
      the grader's container is the code under test's (`graded`, `cause` saying so) when the evidence shows
      it stopped the container, left processes stopped or traced, or kept them from being stopped
      (`Evidence.unstopped`), else ours (`infra_error`); a grader's own step that failed on the patched tree is
      the model's (`patch_failed`) when the task's clean base does those steps (`Evidence.clean_base`). The exception's type
      decides nothing here: in the grader's container every process is the code under test's.
    - `outside`: `agent_error` or `infra_error` by the exception's type (`errors.is_infrastructure`).
    """
    if where == "grading":
        return _grading(exc, _read(evidence), status)
    if exc is None:
        raise ValueError(f"judging a {where} needs the exception that ended it")
    if where == "outside":
        return _episode(classify_exception(exc), str(exc))
    carried = getattr(type(exc), "ending", None)
    if where == "diff":
        if carried is not None:
            return _grading_of("patch_failed", str(exc)) if KINDS[carried] == "agent" else _episode(carried, str(exc))
        seen = _read(evidence)
        return _grading_of("patch_failed", str(exc)) if seen is not None and seen.alive else _episode("sandbox_died", str(exc))
    if carried is not None:
        if KINDS[carried] != "agent":
            # An ending of ours (`OutputLost`: no byte came back) is what replacing the program the host runs
            # looks like too (bash made to print nothing): the engine's list of the agent's changes decides.
            seen = _read(evidence)
            if seen is not None and seen.unstopped:
                return _unstopped(seen)
            if seen is not None and seen.alive and seen.altered_programs:
                return _broken(seen, exc)
        return _episode(carried, _carried_cause(carried, exc))
    if not is_infrastructure(exc):
        return _episode("internal_error", f"{type(exc).__name__}: {exc}")
    seen = _read(evidence)
    if seen is None:
        return _episode("sandbox_died", str(exc))
    if seen.unstopped:
        return _unstopped(seen)
    if not seen.alive:
        if seen.stopped_from_inside:
            return _episode("sandbox_killed", f"the agent's commands stopped the container: {seen.stopped_from_inside}")
        return _episode("sandbox_died", str(exc))
    if seen.stopped_processes:
        return _episode(
            "sandbox_killed",
            f"the agent's commands stopped the container's processes "
            f"({seen.stopped_processes} of them stopped by a signal or a tracer, as the engine "
            f"lists them): {str(exc)[:300]}",
        )
    if seen.altered_programs:
        return _broken(seen, exc)
    if seen.shell_refused:
        return _episode(
            "sandbox_broken",
            f"the engine cannot start a shell in the agent's container, while it starts one in a fresh container of the same "
            f"image ({seen.shell_refused}): the agent's commands broke it: {str(exc)[:300]}",
        )
    return _episode("sandbox_died", str(exc))


def _unstopped(seen: Evidence) -> Ending:
    return _episode("sandbox_killed", f"the agent's processes could not be stopped: {seen.unstopped}")


def _broken(seen: Evidence, exc: BaseException) -> Ending:
    return _episode(
        "sandbox_broken", f"the environment's programs failed after the agent changed them ({', '.join(seen.altered_programs[:5])}): {str(exc)[:300]}"
    )


def _grading(exc: BaseException | None, seen: Evidence | None, status: str | None) -> Ending:
    if exc is None:
        if status is None:
            raise ValueError("judging a grading needs its status or the exception that ended it")
        return _grading_of(status)
    if seen is not None and seen.clean_base:
        return _grading_of(
            "patch_failed",
            "the grader's steps work on the task's clean base (a fresh container of the same image, asked now) "
            f"but failed after the patch reached the tree: {exc}",
        )
    if seen is not None and seen.unstopped:
        return _grading_of("graded", f"the code under test kept its processes from being stopped: {seen.unstopped}")
    cause = None
    if seen is not None and not seen.alive:
        cause = seen.stopped_from_inside
    elif seen is not None and seen.stopped_processes:
        cause = f"{seen.stopped_processes} of its processes were left stopped by a signal (SIGSTOP) or by a tracer (ptrace)"
    if cause is None:  # stopped from outside, or no record says otherwise: ours
        return _grading_of("infra_error", str(exc))
    return _grading_of("graded", f"the code under test stopped the grader's container: {cause}")


def _carried_cause(ending: str, exc: BaseException) -> str:
    if ending == "sandbox_killed":  # a host deadline the agent's processes made us miss (`DeadlineExceeded`)
        return f"the agent's processes stopped the environment's own work: {exc}"
    return str(exc)


def _episode(name: str, cause: str) -> Ending:
    if name not in KINDS:
        raise ValueError(f"not a termination: {name!r}")
    return Ending(name, KINDS[name], cause)


def _grading_of(status: str, cause: str = "") -> Ending:
    if status not in GRADING_KINDS:
        raise ValueError(f"not a grading status: {status!r}")
    return Ending(status, GRADING_KINDS[status], cause)


def _read(evidence: Evidence | Callable[[], Evidence | None] | None) -> Evidence | None:
    return evidence() if callable(evidence) else evidence
