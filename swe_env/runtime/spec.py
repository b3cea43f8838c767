"""What a sandbox is made of, decided once: `SandboxSpec`, frozen, built from a task by `for_task`.

The env (and its warm pool, which keys sandboxes by spec), the grader, traces, corpora, synthesis and
the Harbor importer all start their containers from a spec made here, so a task's limits, workdir,
environment, user and services become a container's in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..data.task import Limits, Service, Task
from . import engine

DEFAULT_OUTPUT_LIMIT = 10_000
"""Characters of a command's output the agent's shell keeps by default (`EnvConfig.output_limit`)."""


@dataclass(frozen=True)
class SandboxSpec:
    """Everything that makes two sandboxes interchangeable before an agent touches them."""

    image: str
    limits: Limits
    workdir: str = "/testbed"
    env: tuple[tuple[str, str], ...] = ()
    """The container's environment, sorted (a tuple, so the spec is hashable)."""
    kind: str = "episode"
    """The `swe_env.kind` label and the container name's middle (episode, grader, trace, ...)."""
    labels: tuple[tuple[str, str], ...] = ()
    """Extra `swe_env.<key>` labels, sorted."""
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    ttl_seconds: int = engine.DEFAULT_TTL_SECONDS
    user: str | None = None
    """Who the agent's shell, the file shell and one-off processes run as (None: root)."""
    services: tuple[Service, ...] = ()
    """Processes started in the background, as root, right after the container (`task.Service`)."""

    @classmethod
    def for_task(cls, task: Task, image: str, kind: str, labels: dict[str, str] | None = None, **overrides: Any) -> SandboxSpec:
        """The spec of a sandbox for `task` from `image`: the task's limits, workdir, environment, user and
        services, labelled with the task's id; `overrides` replace fields (`limits=` an episode's limits,
        `user=None` for root as the grader runs, `output_limit=`, `ttl_seconds=`)."""
        environment = task.environment
        spec = cls(
            image,
            task.limits,
            environment.workdir,
            _pairs(environment.env),
            kind,
            _pairs({"task": task.id, **(labels or {})}),
            user=environment.user,
            services=tuple(environment.services),
        )
        return spec.but(**overrides) if overrides else spec

    @classmethod
    def of(
        cls,
        image: str,
        limits: Limits,
        workdir: str = "/testbed",
        env: dict[str, str] | None = None,
        kind: str = "episode",
        labels: dict[str, str] | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        ttl_seconds: int = engine.DEFAULT_TTL_SECONDS,
        user: str | None = None,
        services: tuple[Service, ...] | list[Service] = (),
    ) -> SandboxSpec:
        """A spec from plain arguments, for what has no task (`Sandbox(image, limits, ...)`, the tests)."""
        return cls(image, limits, workdir, _pairs(env), kind, _pairs(labels), output_limit, ttl_seconds, user, tuple(services))

    def but(self, **changes: Any) -> SandboxSpec:
        """This spec with some fields replaced (`env` and `labels` may be given as dicts)."""
        for name in ("env", "labels"):
            if isinstance(changes.get(name), dict):
                changes[name] = _pairs(changes[name])
        if "services" in changes:
            changes["services"] = tuple(changes["services"])
        return replace(self, **changes)

    @property
    def key(self) -> tuple:
        """What the warm pool keys sandboxes by (Limits and Service are pydantic models, not hashable:
        their JSON stands for them)."""
        return (
            self.image,
            self.limits.model_dump_json(),
            self.workdir,
            self.env,
            self.kind,
            self.labels,
            self.output_limit,
            self.ttl_seconds,
            self.user,
            tuple(service.model_dump_json() for service in self.services),
        )


def _pairs(mapping: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((mapping or {}).items()))
