"""Test runners: how the grader gets machine-readable results out of a task's test command.

A runner decides three things for one grading: what the test command's process gets (the
environment, files in the grader's private folder), which repository files are the runner
itself (restored whole to base_commit when changed), and how its results file is read. The
task's command always runs as written.

- `pytest`: a JUnit XML report requested through PYTEST_ADDOPTS (and tox's setenv).
- `django` and `sympy`: their runners write no report, so a grader-owned recorder
  (`swe_env/reporter/sitecustomize.py`, standard library only) is put first on PYTHONPATH in
  the grader's private folder; it hooks unittest's `TestResult` (Django's runner is unittest's)
  or sympy's `PyTestReporter` once their module is imported and appends one JSON line per
  outcome. The test output is never parsed: what the tests print is the agent's code talking.

Adding a runner: a `Runner` subclass here with its `name`, registered in `RUNNERS`, plus a hook
in the recorder when the runner has no report of its own; `tests.runner` then accepts the name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar, get_args

from . import testlogs
from .task import RunnerName

RESULTS_LIMIT = 64 * 1024 * 1024
"""Bytes of a results file (JUnit report or recorder's lines) that are read; a larger file is not believed."""
_RECORDER = Path(__file__).with_name("reporter") / "sitecustomize.py"
_RUNS_TOX = re.compile(r"(?:^|[\s;&|(/'\"])tox(?:[\s'\"]|$)")


class ResultsError(ValueError):
    """A results file that cannot be believed (not written, too large, malformed)."""


class Runner:
    """The pytest runner; the base of the others."""

    name: ClassVar[str] = "pytest"
    report_name: ClassVar[str] = "junit.xml"
    """The results file's name in the grader's private folder."""
    owned_files: ClassVar[tuple[str, ...]] = ()
    """Repository files that are the runner itself: restored whole to base_commit when changed."""

    def files(self, workspace: str) -> dict[str, bytes]:
        """Files the grader writes into its private folder before the run (path -> bytes)."""
        return {}

    def environment(self, workspace: str) -> dict[str, str]:
        """Variables for the test command's process."""
        # tox (4.12+) gives its commands only listed variables, and a tox.ini's own `setenv` may
        # set PYTEST_ADDOPTS (sphinx's does): TOX_OVERRIDE appends ours to setenv, so it wins.
        addopts = f"--junitxml={workspace}/{self.report_name} -o junit_family=xunit1 -p no:cacheprovider"
        return {"PYTEST_ADDOPTS": addopts, "TOX_OVERRIDE": f"testenv.setenv+=PYTEST_ADDOPTS={addopts}"}

    def prelude(self, workspace: str) -> str:
        """Shell lines run before the task's command (in the same shell)."""
        return ""

    def protected_files(self, command: str) -> list[str]:
        """Files restored whole when changed: the runner's own, and tox.ini when tox runs the tests.

        When tox runs the tests, `tox.ini`'s `commands` decide what runs (a patched one could
        rewrite the report after the runner wrote it), so the whole file is the grader's.
        """
        return [*self.owned_files, *(["tox.ini"] if _RUNS_TOX.search(command) else [])]

    def read(self, data: bytes) -> testlogs.JUnitResults | testlogs.RecordedResults:
        """Results from the results file's bytes; ResultsError when they cannot be read."""
        try:
            return testlogs.parse_junit(data.decode("utf-8", errors="replace"))
        except testlogs.ReportError as exc:
            raise ResultsError(str(exc)) from None


class _RecorderRunner(Runner):
    """A runner whose outcomes the grader's recorder writes (one JSON line each)."""

    report_name: ClassVar[str] = "results.jsonl"

    def files(self, workspace: str) -> dict[str, bytes]:
        return {f"{workspace}/recorder/sitecustomize.py": _RECORDER.read_bytes()}

    def environment(self, workspace: str) -> dict[str, str]:
        return {"SWE_ENV_RESULTS": f"{workspace}/{self.report_name}", "SWE_ENV_RUNNER": self.name}

    def prelude(self, workspace: str) -> str:
        # Exported here, not passed to the exec: the image's own PYTHONPATH must be kept behind ours.
        return f'export PYTHONPATH="{workspace}/recorder${{PYTHONPATH:+:$PYTHONPATH}}"'

    def read(self, data: bytes) -> testlogs.RecordedResults:
        if len(data) > RESULTS_LIMIT:
            raise ResultsError(f"the results file is larger than {RESULTS_LIMIT} bytes")
        results = testlogs.RecordedResults()
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                ids, status = record["ids"], record["status"]
            except (ValueError, KeyError, TypeError):
                raise ResultsError(f"line {number} of the results file is not a record") from None
            status = _RECORDED_STATUS.get(status)
            if status is None or not isinstance(ids, list):
                raise ResultsError(f"line {number} of the results file is not a record")
            results.records += 1
            for test_id in ids:
                if isinstance(test_id, str):
                    testlogs.keep_worst(results.by_id, test_id, status)
        return results


_RECORDED_STATUS = {
    "passed": testlogs.PASSED, "failed": testlogs.FAILED, "error": testlogs.ERROR, "skipped": testlogs.SKIPPED,
    # SWE-bench's Django and sympy parsers record no expected failure or unexpected success, so
    # a listed test that ends so is missing, i.e. failed, there; here too.
    "xfailed": testlogs.FAILED, "xpassed": testlogs.FAILED,
}


class DjangoRunner(_RecorderRunner):
    """Django's `tests/runtests.py` (unittest underneath); ids as SWE-bench lists them."""

    name: ClassVar[str] = "django"
    owned_files: ClassVar[tuple[str, ...]] = ("tests/runtests.py", "tests/test_sqlite.py")


class SympyRunner(_RecorderRunner):
    """sympy's `bin/test` (its own runner); ids are the test functions' names."""

    name: ClassVar[str] = "sympy"
    # The runner, its entry script and the helpers tests use to declare XFAIL / skip / raises.
    owned_files: ClassVar[tuple[str, ...]] = (
        "bin/test", "sympy/testing/runtests.py", "sympy/utilities/runtests.py",
        "sympy/testing/pytest.py", "sympy/utilities/pytest.py",
    )


RUNNERS: dict[str, type[Runner]] = {runner.name: runner for runner in (Runner, DjangoRunner, SympyRunner)}
assert set(RUNNERS) == set(get_args(RunnerName)), "every runner a task may name has a class here"


def runner_named(name: RunnerName) -> Runner:
    return RUNNERS[name]()
