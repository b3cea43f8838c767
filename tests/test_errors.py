"""The one home of "whose fault is it": the exception tree and the endings (no Docker needed)."""

from __future__ import annotations

import importlib
from typing import get_args

import docker.errors
import pytest

from swe_env import errors
from swe_env.build.images import ImageBuildError
from swe_env.build.repos import RepoError
from swe_env.client import RemoteEnvError, SessionLost
from swe_env.data.trajectory import Trajectory
from swe_env.errors import (
    FAILED_ENDINGS,
    INFRASTRUCTURE_ENDINGS,
    KINDS,
    RETRYABLE_ENDINGS,
    InfrastructureError,
    Termination,
    classify_ending,
    classify_exception,
    is_infrastructure,
)
from swe_env.runtime.engine import EngineUnavailable
from swe_env.runtime.sandbox import DiskLimitExceeded, OutputLost, SandboxError
from swe_env.runtime.shell import ShellError


@pytest.mark.parametrize(
    "exc",
    [
        InfrastructureError("x"),
        EngineUnavailable("x"),
        ImageBuildError("x"),
        RepoError("x"),
        SandboxError("x"),
        OutputLost("x"),
        ShellError("x"),
        docker.errors.APIError("x"),
        OSError("x"),
        ConnectionResetError("x"),
        RemoteEnvError("x"),
        SessionLost("x"),
    ],
)
def test_infrastructure_failures_are_ours(exc):
    assert is_infrastructure(exc) and classify_exception(exc) == "infra_error"


@pytest.mark.parametrize("exc", [RuntimeError("x"), ValueError("x"), KeyError("x"), DiskLimitExceeded("x"), ZeroDivisionError()])
def test_everything_else_is_not(exc):
    assert not is_infrastructure(exc) and classify_exception(exc) == "agent_error"


def test_every_ending_has_one_kind_and_the_sets_are_todays():
    assert set(KINDS) == set(get_args(Termination))
    assert set(KINDS) == {
        "submitted",
        "max_steps",
        "time_limit",
        "disk_limit",
        "sandbox_killed",
        "sandbox_broken",
        "sandbox_died",
        "internal_error",
        "closed",
        "abandoned",
        "agent_error",
        "infra_error",
    }
    assert INFRASTRUCTURE_ENDINGS == {"infra_error", "sandbox_died", "internal_error"}
    assert RETRYABLE_ENDINGS == {"infra_error", "sandbox_died", "internal_error", "closed", "abandoned"}
    assert FAILED_ENDINGS == {"agent_error", "infra_error", "sandbox_died", "internal_error"}
    assert classify_ending("sandbox_killed") == "agent" and classify_ending("abandoned") == "interrupted"
    assert classify_ending(None) is None
    with pytest.raises(ValueError):
        classify_ending("exploded")


def test_the_other_modules_use_the_same_sets():
    rollout = importlib.import_module("swe_env.run.rollout")  # `swe_env.rollout` is also the function
    ray_jobs = importlib.import_module("swe_env.run.ray_jobs")
    trajectory = importlib.import_module("swe_env.data.trajectory")
    assert rollout.FAILED_ENDINGS is errors.FAILED_ENDINGS
    assert ray_jobs.RETRYABLE_ENDINGS is trajectory.RETRYABLE_ENDINGS is errors.RETRYABLE_ENDINGS


def test_termination_is_typed_and_files_stay_the_same():
    line = Trajectory(task_id="t", episode_id="e", termination="sandbox_died").model_dump_json()
    assert '"termination":"sandbox_died"' in line
    loaded = Trajectory.model_validate_json(line)
    assert type(loaded.termination) is str and loaded.termination == "sandbox_died"
    assert loaded.model_dump_json() == line
    assert Trajectory(task_id="t", episode_id="e").termination is None
    with pytest.raises(ValueError):
        Trajectory(task_id="t", episode_id="e", termination="exploded")


def test_the_server_answers_503_for_exactly_these():
    pytest.importorskip("fastapi")
    from swe_env.server import as_api_error

    assert as_api_error(SandboxError("gone")).status == 503
    assert as_api_error(ShellError("lost")).status == 503
    assert as_api_error(RuntimeError("bug")).status == 500
    assert as_api_error(ValueError("bad")).status == 422


def test_one_rule_says_whose_a_grading_status_is():
    """The grader and `evaluate` read the same table: a timeout is the code under test's (the model's)."""
    from swe_env.errors import GRADING_KINDS, grading_is_infrastructure
    from swe_env.grading.verdict import GradingReport
    from swe_env.run.evaluate import INFRA_STATUSES

    assert set(GRADING_KINDS) == set(GradingReport.model_fields["status"].annotation.__args__)
    assert not grading_is_infrastructure("timeout") and not grading_is_infrastructure("patch_failed")
    assert set(INFRA_STATUSES) == {s for s in GRADING_KINDS if grading_is_infrastructure(s)} == {"infra_error", "test_patch_failed"}
    with pytest.raises(ValueError):
        grading_is_infrastructure("resolved")
