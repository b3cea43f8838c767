"""The one judge of endings (`endings.judge`): pure logic, the evidence handed in."""

from __future__ import annotations

import pytest

from swe_env import endings
from swe_env.endings import Evidence, judge
from swe_env.errors import GRADING_KINDS, KINDS, grading_is_infrastructure
from swe_env.runtime.disk import DiskLimitExceeded
from swe_env.runtime.execute import DeadlineExceeded, OutputLost
from swe_env.runtime.lifecycle import SandboxError


def _never() -> Evidence:
    raise AssertionError("an exception that carries its ending needs no evidence")


def test_exceptions_that_carry_an_ending_of_the_agents_need_no_evidence():
    assert judge("step", DiskLimitExceeded("wrote 2 GB"), evidence=_never) == endings.Ending("disk_limit", "agent", "wrote 2 GB")
    killed = judge("step", DeadlineExceeded("git did not end"), evidence=_never)
    assert (killed.name, killed.kind, killed.scored) == ("sandbox_killed", "agent", True)
    assert killed.cause == "the agent's processes stopped the environment's own work: git did not end"
    lost = judge("step", OutputLost("lost thrice"), evidence=lambda: Evidence(alive=True))
    assert (lost.name, lost.ours, lost.scored) == ("sandbox_died", True, False)


def test_a_step_failure_is_judged_by_the_engines_records():
    failed = SandboxError("the shell did not answer")
    assert judge("step", failed, evidence=lambda: None).name == "sandbox_died"  # the engine cannot tell: ours
    assert judge("step", failed, evidence=Evidence(alive=False)).name == "sandbox_died"  # stopped from outside
    inside = judge("step", failed, evidence=Evidence(alive=False, stopped_from_inside="exit code 137"))
    assert (inside.name, inside.cause) == ("sandbox_killed", "the agent's commands stopped the container: exit code 137")
    stopped = judge("step", failed, evidence=Evidence(alive=True, stopped_processes=3))
    assert stopped.name == "sandbox_killed" and "(3 of them stopped by a signal" in stopped.cause
    broken = judge("step", failed, evidence=Evidence(alive=True, altered_programs=("/bin/bash",)))
    assert broken.name == "sandbox_broken" and "(/bin/bash)" in broken.cause and broken.kind == "agent"
    assert judge("step", failed, evidence=Evidence(alive=True)).name == "sandbox_died"
    bug = judge("step", KeyError("x"), evidence=_never)
    assert (bug.name, bug.kind, bug.cause) == ("internal_error", "infrastructure", "KeyError: 'x'")


def test_a_diff_that_cannot_be_taken():
    alive, dead = Evidence(alive=True), Evidence(alive=False)
    assert judge("diff", SandboxError("git failed"), evidence=alive) == endings.Ending("patch_failed", "model", "git failed")
    assert judge("diff", SandboxError("gone"), evidence=dead).ours
    assert not judge("diff", DeadlineExceeded("stopped"), evidence=_never).ours  # the agent's processes
    assert judge("diff", OutputLost("lost"), evidence=_never).ours  # the engine's, whatever the container


def test_a_grading_is_judged_by_the_table_and_by_the_records_only():
    for status in GRADING_KINDS:
        assert judge("grading", status=status).ours == grading_is_infrastructure(status)
    failed = SandboxError("the tests' container died")
    assert judge("grading", failed, evidence=Evidence(alive=False)).name == "infra_error"
    assert judge("grading", failed, evidence=None).name == "infra_error"
    code = judge("grading", failed, evidence=Evidence(alive=False, stopped_from_inside="exit code 137"))
    assert code == endings.Ending("graded", "model", "the code under test stopped the grader's container: exit code 137")
    left = judge("grading", DeadlineExceeded("x"), evidence=Evidence(alive=True, stopped_processes=2))
    assert left.cause.endswith("2 of its processes were left stopped by a signal (SIGSTOP) or by a tracer (ptrace)")
    # In the grader's container the exception's type decides nothing: no records, ours.
    assert judge("grading", DeadlineExceeded("x"), evidence=Evidence(alive=True)).ours


def test_processes_that_outlived_every_stop_are_the_codes_doing_whatever_else_is_found():
    """Red team rt6b, A1 and A2: a ptrace of the container's main process drops the host's signals, so the stop fails
    and the container, killed by the host, is no longer running: the host's record that the engine answered while
    the processes outlived every stop (`Evidence.unstopped`) decides, before the engine's other records."""
    left = "3 processes listed, 1 of them stopped or traced"
    failed = SandboxError("the processes in container x could not be stopped")
    for seen in (Evidence(alive=False, unstopped=left), Evidence(alive=True, unstopped=left)):
        episode = judge("step", failed, evidence=seen)
        assert (episode.name, episode.kind, episode.scored) == ("sandbox_killed", "agent", True) and left in episode.cause
        graded = judge("grading", failed, evidence=seen)
        assert (graded.name, graded.kind) == ("graded", "model") and left in graded.cause
        # An ending of ours the exception carries yields to it too (the output lost after the kill).
        assert judge("step", OutputLost("lost"), evidence=seen).name == "sandbox_killed"
    # Without that record a container stopped from outside stays ours.
    assert judge("step", failed, evidence=Evidence(alive=False)).ours
    assert judge("grading", failed, evidence=Evidence(alive=False)).ours


def test_a_grader_step_that_fails_after_the_patch_is_judged_by_the_clean_base():
    """Red team rt6b, A3: a step of the grader's own (the test patch, the restore) that fails on the patched tree is the
    model's when a fresh container of the same image does the steps (`Evidence.clean_base`), else ours."""
    failed = SandboxError("the task's test patch does not apply: fatal: true/false are no valid working-tree-encodings")
    model = judge("grading", failed, evidence=Evidence(alive=True, clean_base=True))
    assert (model.name, model.kind) == ("patch_failed", "model") and "clean base" in model.cause and "working-tree" in model.cause
    assert judge("grading", failed, evidence=Evidence(alive=True, clean_base=False)).ours  # the task's own test patch is broken
    assert judge("grading", failed, evidence=Evidence(alive=True, clean_base=None)).ours  # the engine could not tell


def test_outside_a_step_and_the_table():
    assert judge("outside", SandboxError("x")).name == "infra_error"
    assert judge("outside", ValueError("the agent's bug")).name == "agent_error"
    assert judge("outside", OSError()).kind == KINDS["infra_error"] == "infrastructure"
    with pytest.raises(ValueError):
        judge("step")
    with pytest.raises(ValueError):
        judge("grading", status="not-a-status")


def test_an_ending_of_ours_carried_by_the_exception_yields_to_programs_the_agent_changed():
    """`OutputLost` is the engine's fault unless the engine's list of changes shows the agent replaced a program
    the host runs (red team rt3, b2: bash made to print nothing)."""
    lost = OutputLost("the engine lost the output of /bin/bash 3 times in a row")
    assert judge("step", lost, evidence=Evidence(alive=True)).name == "sandbox_died"
    assert judge("step", lost, evidence=None).name == "sandbox_died"
    broken = judge("step", lost, evidence=Evidence(alive=True, altered_programs=("/usr/bin/bash",)))
    assert broken.name == "sandbox_broken" and broken.kind == "agent" and "/usr/bin/bash" in broken.cause


def test_the_engines_times_are_read_to_the_nanosecond():
    from swe_env.runtime.lifecycle import engine_time_ns

    assert engine_time_ns("2026-12-07T13:10:00.123456789Z") == 1796649000_123456789
    assert engine_time_ns("2026-12-07T13:10:00Z") == 1796649000_000000000
    assert engine_time_ns("2026-12-07T14:10:00.5+01:00") == 1796649000_500000000
    assert engine_time_ns("0001-01-01T00:00:00Z") is None  # the engine's zero time: never started
    assert engine_time_ns("yesterday") is None and engine_time_ns("") is None


def test_an_exit_0_before_the_ttl_is_told_by_the_engines_two_records():
    """Red team rt3, b3, judged from the engine's start record and die event (both its clock): how late the host
    reads them, or how its clock differs, plays no part."""
    from swe_env.runtime.lifecycle import _TTL_SLACK_SECONDS, ended_before_ttl, main_process_lived

    start = 1796649000_000000000
    lived = main_process_lived(start, start + 3 * 10**9)
    assert lived == 3.0 and ended_before_ttl(lived, 3600)  # a ptrace made it exit 0 three seconds in
    # The TTL ran out: bash counts whole seconds (up to one early) and the engine records its start a little late.
    assert not ended_before_ttl(3600 - 1.5, 3600)
    assert not ended_before_ttl(3600 - _TTL_SLACK_SECONDS, 3600) and ended_before_ttl(3600 - _TTL_SLACK_SECONDS - 1, 3600)
    assert main_process_lived(None, start) is None and main_process_lived(start, None) is None
    assert main_process_lived(start, start - 1) is None  # records that disagree decide nothing


def test_a_containers_time_to_live_outlasts_the_deadlines_of_the_work_in_it(task):
    """Red team rt6b, T1: a TTL end is judged ours, so the TTL must never end an episode or a grading before the host's
    own deadlines do: an episode's container lives `EPISODE_TTL_MARGIN` past its `episode_timeout` at least, a
    grading's past its longest grading, however long the task's limits."""
    from swe_env.data.task import Limits
    from swe_env.env import EPISODE_TTL_MARGIN, episode_ttl
    from swe_env.grading.grader import _longest_grading, grading_ttl
    from swe_env.runtime.engine import DEFAULT_TTL_SECONDS

    assert episode_ttl(Limits()) == DEFAULT_TTL_SECONDS
    for hours in (4, 10):
        assert episode_ttl(Limits(episode_timeout=hours * 3600)) >= hours * 3600 + EPISODE_TTL_MARGIN
        slow = task.model_copy(update={"limits": task.limits.model_copy(update={"grading_timeout": hours * 3600})})
        assert grading_ttl(slow) > _longest_grading(slow) > hours * 3600
