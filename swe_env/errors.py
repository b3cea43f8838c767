"""Whose fault a failure is, decided in one place: the exception tree and the endings of an episode.

An agent's mistakes are observations (the env's `step` never raises for them), so the only
exceptions worth classifying are ours — the engine, an image, a mirror, a container, a shell, the
server — and everything else, which is the agent's (a crashed agent in a rollout) or a bug of ours
(inside `step`). `is_infrastructure` is the one test; `Termination` is the one list of how an
episode can end, and `KINDS` says once what each ending means, from which the sets that resume,
progress counts and training filters use are derived.
"""

from __future__ import annotations

import functools
from typing import Literal


class InfrastructureError(RuntimeError):
    """Base of the failures that are ours (the machinery, not the agent or the caller): the engine's
    `EngineUnavailable`, `ImageBuildError`, `RepoError`, `SandboxError`, `ShellError`, the client's
    `RemoteEnvError`, and any new one. Each says in one line what failed (the CLI prints them so)."""


@functools.cache
def infrastructure_errors() -> tuple[type[BaseException], ...]:
    """What counts as infrastructure: ours (`InfrastructureError`), and the engine's and the operating
    system's own (an agent's endpoint that keeps failing is an `OSError` too)."""
    # The engine SDK's exception is named here, on first use, not at import: the client imports this
    # module (for InfrastructureError) on machines that never talk to an engine. `except` takes the tuple.
    import docker.errors

    return (InfrastructureError, docker.errors.DockerException, OSError)


def is_infrastructure(exc: BaseException) -> bool:
    """Whether `exc` is a failure of the machinery (retry it) rather than the agent's or a bug of ours."""
    return isinstance(exc, infrastructure_errors())


Termination = Literal[
    "submitted",
    "max_steps",
    "time_limit",
    "disk_limit",
    "sandbox_killed",  # the agent's commands stopped its container, as the engine's record shows
    "sandbox_broken",  # the agent changed system programs the environment runs, which then failed
    "sandbox_died",  # the container or the engine failed under a running episode (stopped from outside: ours)
    "internal_error",  # a bug of ours ended the step
    "closed",
    "abandoned",  # the env was closed, or reset to another episode, before this one ended
    "agent_error",  # the agent raised (in a rollout)
    "infra_error",  # our machinery raised outside a step (reset, a lost server session or Ray worker)
]
"""How an episode ended: `Trajectory.termination`, as trajectory files hold it."""


Kind = Literal["agent", "agent_error", "infrastructure", "interrupted"]

KINDS: dict[Termination, Kind] = {
    "submitted": "agent",
    "max_steps": "agent",
    "time_limit": "agent",
    "disk_limit": "agent",
    "sandbox_killed": "agent",
    "sandbox_broken": "agent",
    "agent_error": "agent_error",
    "sandbox_died": "infrastructure",
    "internal_error": "infrastructure",
    "infra_error": "infrastructure",
    "closed": "interrupted",
    "abandoned": "interrupted",
}
"""What each ending says: the agent's own ending (graded or not), the agent's crash, our failure, or
an episode cut short by its caller."""


def classify_ending(termination: str | None) -> Kind | None:
    """The kind of an ending (None for an episode that has not ended)."""
    if termination is not None and termination not in KINDS:
        raise ValueError(f"not a termination: {termination!r}")
    return KINDS[termination] if termination is not None else None


def _endings(*kinds: Kind) -> frozenset[Termination]:
    return frozenset(ending for ending, kind in KINDS.items() if kind in kinds)


INFRASTRUCTURE_ENDINGS = _endings("infrastructure")
RETRYABLE_ENDINGS = _endings("infrastructure", "interrupted")
"""Endings that say nothing about the agent: a resumed rollout runs these episodes again, and
training exports leave them out."""
FAILED_ENDINGS = _endings("infrastructure", "agent_error")
"""Endings a rollout's progress counts as failed."""


GradingStatus = Literal["graded", "patch_failed", "test_patch_failed", "timeout", "infra_error"]
"""How a grading ended: `GradingReport.status`."""

GRADING_KINDS: dict[GradingStatus, Literal["model", "infrastructure"]] = {
    "graded": "model",
    "patch_failed": "model",  # the patch does not apply, or the agent's tree gave no diff
    "timeout": "model",  # the tests (with the patch) did not end within the grading timeout: the code under test hung
    "test_patch_failed": "infrastructure",  # the task's own hidden test patch does not apply
    "infra_error": "infrastructure",  # the engine, an image or a container failed, as its own evidence shows
}
"""Whose a grading's end is: the one rule the grader (`GradingReport.infrastructure_failure`, the reward)
and `evaluate` (its `infra_failure_ids`, and which instances are retried) both follow. A failure the
patch's code can cause is the model's; the engine's failures (an error of its own, a container stopped
from outside) are ours."""

INFRASTRUCTURE_STATUSES = frozenset(status for status, kind in GRADING_KINDS.items() if kind == "infrastructure")


def grading_is_infrastructure(status: str) -> bool:
    """Whether a grading that ended with `status` says nothing about the model (the reward is withheld)."""
    if status not in GRADING_KINDS:
        raise ValueError(f"not a grading status: {status!r}")
    return GRADING_KINDS[status] == "infrastructure"


def classify_exception(exc: BaseException) -> Termination:
    """The ending of an episode that `exc` stopped outside the env's step: ours or the agent's."""
    return "infra_error" if is_infrastructure(exc) else "agent_error"


def did_you_mean(word: str, choices, cutoff: float = 0.6) -> str:
    """`" (did you mean 'x'?)"` naming the choice closest to a mistyped `word` (`task-id` → `task_id`), or ""."""
    import difflib

    names = [str(choice) for choice in choices]
    folded = {name.lower().replace("-", "_"): name for name in names}
    key = str(word).lower().replace("-", "_")
    if key in folded and folded[key] != word:
        return f" (did you mean {folded[key]!r}?)"
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=cutoff)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def clip(text: str, limit: int = 300, keep: Literal["head", "tail"] = "head") -> str:
    """`text` on one line, at most about `limit` characters, cut between words (never mid-word) and marked
    with "…" where it was cut: the head of a message, or the tail of a tool's output (`keep="tail"`)."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    if keep == "head":
        cut = line[:limit]
        space = cut.rfind(" ")
        return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + " …"
    cut = line[-limit:]
    space = cut.find(" ")
    return "… " + (cut[space + 1 :] if 0 <= space < limit // 2 else cut)
