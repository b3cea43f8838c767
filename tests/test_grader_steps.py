"""The grader's steps before the test run go through the container's private shell, not a `docker exec` each
(`prepare._step`): on the real engine, a gold patch is graded with no one-off process before the tests, and
the same verdict comes from the one-exec-per-step path; a step's output, status and deadline are kept."""

from __future__ import annotations

import re
import time

import pytest

from swe_env.grading import grader, prepare
from swe_env.grading.grader import Grader
from swe_env.runtime import engine
from swe_env.runtime.execute import Executor
from swe_env.runtime.sandbox import Sandbox, SandboxError

pytestmark = pytest.mark.docker


def test_a_grading_runs_no_one_off_process_before_the_tests(task, image, monkeypatch):
    calls: list[str] = []
    real_exec = Executor.exec

    def counted(self, argv, *args, **kwargs):
        calls.append(argv if isinstance(argv, str) else " ".join(argv))
        return real_exec(self, argv, *args, **kwargs)

    grader_ = Grader()
    grader_.runner_facts(task, image)  # the probe runs once per image, in a container of its own
    monkeypatch.setattr(Executor, "exec", counted)
    report = grader_.grade(task, task.gold_patch, image=image)
    assert report.status == "graded" and report.resolved, (report.status, report.error)
    assert report.patch_method == "git apply"
    assert calls == []  # the numstat, the apply, the listings and the restore all went through the shell
    # The path it replaced (one exec per step) gives the same verdict.
    monkeypatch.setattr(prepare, "STEPS_IN_SHELL", False)
    before = grader_.grade(task, task.gold_patch, image=image)
    assert before.status == "graded" and before.resolved and before.patch_method == "git apply"
    assert len(calls) >= 3
    assert (before.test_results, before.restored) == (report.test_results, report.restored)


def test_a_step_keeps_its_streams_status_and_deadline(task, image, monkeypatch):
    with Sandbox.for_task(task, image, "grader", user=None) as box:
        both = prepare._step(box, "pwd; echo to-stderr >&2; exit 97")
        assert both.exit_code == 97
        assert both.stdout.splitlines() == [box.workdir, "to-stderr"]  # in the repository, both streams in order
        parsed = prepare._step(box, "printf 'a\\0b'; echo to-stderr >&2", parse=True)
        assert parsed.exit_code == 0 and parsed.stdout == "a\0b"  # stdout only, NUL bytes kept
        monkeypatch.setattr(prepare, "STEP_TIMEOUT", 2.0)
        started = time.monotonic()
        with pytest.raises(SandboxError, match="did not finish"):
            prepare._step(box, "sleep 60")
        assert time.monotonic() - started < 30  # the host's deadline, not the command's end
        assert prepare._step(box, "echo again").stdout == "again\n"  # the shell answers after the kill


def test_a_warm_pool_grades_in_kept_containers_and_removes_them(task, image, monkeypatch):
    grader_ = Grader(warm_pool=1)
    try:
        first = grader_.grade(task, task.gold_patch, image=image)  # a miss: started on its path, one kept after
        assert grader_._pool is not None and grader_._pool.wait_until_full(timeout=300)
        second = grader_.grade(task, task.gold_patch, image=image)  # a kept one
        assert first.resolved and second.resolved, (first.error, second.error)
        assert grader_._pool.hits == 1
        # A kept container without enough time-to-live left for a grading is removed, not used.
        monkeypatch.setattr(grader, "_TTL_MARGIN", 10 * 86400.0)
        third = grader_.grade(task, task.gold_patch, image=image)
        assert third.resolved, third.error
        used = [re.search(r"swe-env-grader-[0-9a-f]{12}", " ".join(report.log)) for report in (first, second, third)]
        names = {found.group(0) for found in used if found}
        assert len(names) == 3  # three containers, each used once
    finally:
        grader_.close()
    left = engine.client().containers.list(all=True, sparse=True, filters={"label": f"{engine.MANAGED_LABEL}=1"})
    assert not names & {name.lstrip("/") for container in left for name in container.attrs.get("Names") or []}
