"""One candidate decided: (a model candidate asked,) applied in a worker's container, its tests run twice, judged
by the validation rule (`grading.rule`, as `swe-env validate`), deduplicated, and written as a task when it holds."""

from __future__ import annotations

import hashlib
import json

from ..grading import rule
from .candidates import Candidate
from .context import Run
from .make_task import task_id_of, write
from .suite import Worker


def normalised_diff(patch: str) -> str:
    """A diff's changed lines without whitespace or headers: two candidates with the same one are the same bug."""
    return "\n".join("".join(line.split()) for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))


def evaluate(run: Run, worker: Worker, candidate: Candidate) -> tuple[str, dict]:
    """Ask (a model candidate), apply, run twice, judge by the rule, dedupe, write: (outcome, what the state records)."""
    config, suite = run.config, run.suite
    if candidate.request is not None and not candidate.patch:
        if run.model is None:
            return "model_connection", {}
        with run.timed("model"):
            answer = run.model.bug(candidate.request)
        if answer.reason:
            return answer.reason, {"detail": answer.detail[:200]} if answer.detail else {}
        candidate.patch, candidate.new_text = answer.patch, answer.new_source
    with run.timed("apply"):
        problem = worker.apply(candidate.patch)
    if problem:
        with run.timed("reset"):
            worker.reset()
        return "does_not_apply", {}
    stable = set(suite.passing)
    considered = [test for test in (candidate.tests if candidate.tests is not None else suite.passing) if test in stable]
    try:
        with run.timed("tests_first"):
            # A bug breaking more tests than FAIL_TO_PASS may hold is dropped: pytest need not run the rest.
            first = worker.run_tests(candidate.tests, max_failures=config.max_fail_to_pass + 1)
        broken = [t for t in considered if rule.status_in(first.statuses, t) != rule.PASSED]
        if not broken:
            return "no_failing_test", {}
        if len(broken) > config.max_fail_to_pass:
            return "too_many_failing", {}
        with run.timed("tests_second"):
            second = worker.run_tests(candidate.tests)
    finally:
        with run.timed("reset"):
            worker.reset()
    without = [first.statuses, second.statuses]
    fail_to_pass, pass_to_pass, flaky = rule.derive(without, suite.runs, among=considered)
    if flaky:
        return "flaky", {"flaky": flaky[:5]}
    if not fail_to_pass:
        return "no_failing_test", {}
    judged = rule.check(fail_to_pass, pass_to_pass, without, suite.runs)
    if not judged.valid:
        return "rule", {"violation": judged.violations[0]}
    if candidate.parts_fail and not all(set(part) <= set(fail_to_pass) for part in candidate.parts_fail):
        return "combine_masked", {}
    key = hashlib.sha256(json.dumps([fail_to_pass, normalised_diff(candidate.patch)]).encode()).hexdigest()[:16]
    with run.lock:
        if key in run.state.keys:
            return "duplicate", {}
        if not run.claim():
            return "enough_tasks", {}
        run.state.keys.add(key)
    task_id = task_id_of(run.name, candidate)
    try:
        with run.timed("write"):
            write(run, candidate, task_id, fail_to_pass, pass_to_pass, first.messages)
    except BaseException:
        with run.lock:
            run.state.keys.discard(key)
            run.release()
        raise
    return "validated", {"task": task_id, "key": key, "fail_to_pass": len(fail_to_pass), "fail_to_pass_ids": fail_to_pass}
