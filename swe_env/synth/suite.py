"""One worker's container: the clean tree of the repository, a candidate applied, tests run, the tree reset.

A worker keeps ONE container (`Sandbox`, through `runtime.engine` like every other) for all its
candidates and puts the tree back with git between them; a container per candidate would cost
a start and a stop each. Results come from the JUnit report pytest writes (`grading.runners`'
settings and `grading.testlogs`' reading, as the grader's), outside the repository.
"""

from __future__ import annotations

import shlex
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

from ..data.task import Task
from ..grading import runners, testlogs
from ..grading.protection import GIT
from ..runtime.sandbox import Sandbox, SandboxError
from ..traces.corpus import SuiteReach, suite_reach

WORKSPACE = "/run/swe-env-synth"
_PASSING = {"passed": "passed", "xfailed": "passed", "xpassed": "passed"}


@dataclass
class TestRun:
    """One run of some tests: each test's status, and the message of each failing one."""

    statuses: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    output_tail: str = ""


def normal_outcome(outcome: str) -> str:
    """The tracer plugin's outcome as the grader's status (an expected failure passes)."""
    return _PASSING.get(outcome, outcome)


class Worker:
    """A started container from a task's image whose tree is put back to base_commit between candidates."""

    def __init__(self, task: Task, image: str, labels: dict[str, str] | None = None):
        self.task = task
        self.box = Sandbox.for_task(task, image, "synth", labels=labels, user=None)

    def __enter__(self) -> Worker:
        self.box.start()
        self.box.exec(f"mkdir -p {WORKSPACE}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.box.close()

    def learn(self, runs: int = 2, timeout: float | None = None, traced_timeout: Callable[[float], float] | None = None) -> SuiteReach:
        """The suite run `runs - 1` times untraced and once traced: outcomes of each run, what each test reached.
        Each untraced run is bounded by `timeout` (default the task's `limits.grading_timeout`), the traced one by
        `traced_timeout` of the slowest untraced run's seconds (default the same bound)."""
        argv = shlex.split(self.task.tests.command)
        reach = suite_reach(
            self.box, argv, timeout or self.task.limits.grading_timeout, untraced_runs=max(0, runs - 1), traced_timeout=traced_timeout
        )
        reach.runs = [{test: normal_outcome(outcome) for test, outcome in run.items()} for run in reach.runs]
        self.reset()
        return reach

    def apply(self, patch: str) -> str | None:
        """Apply a candidate's diff to the clean tree: None, or why it does not apply."""
        path = f"{WORKSPACE}/{uuid.uuid4().hex}.patch"
        self.box.write_file(path, patch.encode("utf-8", errors="surrogateescape"))
        applied = self.box.exec(f"{GIT} apply --whitespace=nowarn {shlex.quote(path)}")
        return None if applied.exit_code == 0 else (applied.output.strip()[-200:] or "git apply failed")

    def reset(self) -> None:
        """Back to the clean tree (tracked files as committed, untracked ones removed; ignored ones stay)."""
        reset = self.box.exec(f"{GIT} reset --hard -q && {GIT} clean -fdq", user="root")
        if reset.exit_code != 0:
            raise SandboxError(f"resetting the tree of {self.box.name} failed: {reset.output.strip()[-200:]}")

    def run_tests(self, tests: list[str] | None = None, max_failures: int | None = None) -> TestRun:
        """Run `tests` (node ids; None: the task's command as written) and read every test's status; with
        `max_failures`, pytest stops after that many (`--maxfail`: the tests it did not run are missing)."""
        report = f"{WORKSPACE}/{uuid.uuid4().hex}.xml"
        command = self.task.tests.command + (f" --maxfail={int(max_failures)}" if max_failures else "")
        command += "".join(" " + shlex.quote(test) for test in tests) if tests else ""
        run = self.box.exec(
            ["/bin/bash", "-c", command], timeout=self.task.limits.grading_timeout, env={"PYTEST_ADDOPTS": runners.junit_options(report)}, user="root"
        )
        result = TestRun(output_tail=run.output[-2000:])
        try:
            data = self.box.read(report, max_bytes=runners.RESULTS_LIMIT).data.decode("utf-8", errors="replace")
        except FileNotFoundError:
            return result
        self.box.exec(["rm", "-f", report], user="root")
        try:
            result.statuses = dict(testlogs.parse_junit_reports(data).by_id)
            result.messages = failure_messages(data)
        except testlogs.ReportError:
            pass
        return result


def failure_messages(xml_text: str) -> dict[str, str]:
    """Node id -> the first line of the failure's (or error's) message, for each failing testcase of a report."""
    messages: dict[str, str] = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        node_id = testlogs.node_id_of(case.get("classname", ""), case.get("name", ""), case.get("file"))
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if node_id is None or problem is None:
            continue
        text = (problem.get("message") or problem.text or "").strip()
        messages[node_id] = " ".join(text.splitlines()[0].split())[:300] if text else ""
    return messages
