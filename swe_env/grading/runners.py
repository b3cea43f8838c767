"""Test runners: how the grader gets machine-readable results out of a task's test command.

A runner decides three things for one grading: what the test command's process gets (the
environment, files in the grader's private folder), which repository files are the runner
itself (restored whole to base_commit when changed), and how its results are read. The
task's command always runs as written.

Results travel on the test run's second stream (`Sandbox.exec_to_end`): the runner is told to
write them to a path that is that stream (`/proc/<the grader's shell>/fd/3`), so they leave the
container as they are written and no file is left for a process of the code under test to
rewrite after the run. Only Harbor's verifier writes a file of its own, read after every
process in the container was stopped.

- `pytest`: a JUnit XML report requested through PYTEST_ADDOPTS (and tox's setenv); a command
  that runs pytest more than once writes several, and each test's worst outcome counts.
- `django` and `sympy`: their runners write no report, so a grader-owned recorder
  (`swe_env/grading/reporter/sitecustomize.py`, standard library only) is put first on PYTHONPATH in
  the grader's private folder; it hooks unittest's `TestResult` (Django's runner is unittest's)
  or sympy's `PyTestReporter` once their module is imported and writes one JSON line per
  outcome. The test output is never parsed: what the tests print is the agent's code talking.
- `harbor`: a Harbor task's verifier (`swe_env.data.harbor`): the tests folder, carried by the test
  patch under `HARBOR_TESTS_IN_PATCH`, is moved to `/tests`, `/logs/verifier` is made anew
  after the patch is applied, and the reward file the verifier writes there
  (`reward.json`, else `reward.txt`) is the result: one id, `reward`, passed when it is 1.

Adding a runner: a `Runner` subclass here with its `name`, registered in `RUNNERS`, plus a hook
in the recorder when the runner has no report of its own; `tests.runner` then accepts the name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import ClassVar, Literal, get_args

from . import testlogs
from ..data.task import RunnerName

RESULTS_LIMIT = 64 * 1024 * 1024
"""Bytes of a results file (JUnit report or recorder's lines) that are read; a larger file is not believed."""
MAX_RECORD_BYTES = 1024 * 1024
"""Bytes of one recorder line (one outcome: a few ids); a longer line is not a record."""
_RECORDER = Path(__file__).with_name("reporter") / "sitecustomize.py"
_RUNS_TOX = re.compile(r"(?:^|[\s;&|(/'\"])tox(?:[\s'\"]|$)")


class ResultsError(ValueError):
    """A results file that cannot be believed (not written, too large, malformed)."""


ResultsSource = Literal["junit", "recorder", "reward"]
"""Where a runner's statuses come from (`GradingReport.report_source`, besides the log and none)."""


class Runner:
    """The pytest runner; the base of the others."""

    name: ClassVar[str] = "pytest"
    streams_results: ClassVar[bool] = True
    """The runner writes its results to the path `environment` is given (the run's results stream);
    False: to files of its own (`results_paths`), read after the run."""
    source: ClassVar[ResultsSource] = "junit"
    """What `GradingReport.report_source` says when this runner's results were read."""
    owned_files: ClassVar[tuple[str, ...]] = ()
    """Repository files that are the runner itself: restored whole to base_commit when changed."""

    def files(self, workspace: str) -> dict[str, bytes]:
        """Files the grader writes into its private folder before the run (path -> bytes)."""
        return {}

    def environment(self, results: str) -> dict[str, str]:
        """Variables for the test command's process; `results` is the path its results go to."""
        # tox (4.12+) gives its commands only listed variables, and a tox.ini's own `setenv` may
        # set PYTEST_ADDOPTS (sphinx's does): TOX_OVERRIDE appends ours to setenv, so it wins.
        addopts = f"--junitxml={results} -o junit_family=xunit1 -p no:cacheprovider"
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

    def results_paths(self, workspace: str) -> list[str]:
        """Where the results files of a runner that does not stream them may be; `read_results`
        gets those that exist, in this order."""
        return []

    def read_results(self, found: list[tuple[str, bytes]]) -> testlogs.JUnitResults | testlogs.RecordedResults:
        """Results from what was written (path or "stream", bytes), in `results_paths`' order: the first decides."""
        path, data = found[0]
        return self.read(data, path)

    @property
    def results_label(self) -> str:
        """The results file as an error message names it."""
        return "JUnit report" if self.name == "pytest" else f"{self.name} results file"

    def read(self, data: bytes, path: str = "") -> testlogs.JUnitResults | testlogs.RecordedResults:
        """Results from the bytes of the results file at `path`; ResultsError when they cannot be read."""
        if not data or data.isspace():  # not strip(): that copies the whole stream
            raise ResultsError("none was written")
        try:
            return testlogs.parse_junit_reports(data)  # streamed: never decoded or parsed whole
        except testlogs.ReportError as exc:
            raise ResultsError(str(exc)) from None


class _RecorderRunner(Runner):
    """A runner whose outcomes the grader's recorder writes (one JSON line each)."""

    source: ClassVar[ResultsSource] = "recorder"

    def files(self, workspace: str) -> dict[str, bytes]:
        return {f"{workspace}/recorder/sitecustomize.py": _RECORDER.read_bytes()}

    def environment(self, results: str) -> dict[str, str]:
        return {"SWE_ENV_RESULTS": results, "SWE_ENV_RUNNER": self.name}

    def prelude(self, workspace: str) -> str:
        # Exported here, not passed to the exec: the image's own PYTHONPATH must be kept behind ours.
        return f'export PYTHONPATH="{workspace}/recorder${{PYTHONPATH:+:$PYTHONPATH}}"'

    def read(self, data: bytes, path: str = "") -> testlogs.RecordedResults:
        if len(data) > RESULTS_LIMIT:
            raise ResultsError(f"the results file is larger than {RESULTS_LIMIT} bytes")
        if not data or data.isspace():
            raise ResultsError("no outcome was recorded")
        results = testlogs.RecordedResults()
        for number, line in testlogs.iter_lines(data, MAX_RECORD_BYTES):  # one line at a time, never a list of them
            if line is None:
                raise ResultsError(f"line {number} of the results file is longer than {MAX_RECORD_BYTES} bytes")
            if not line.strip():
                continue
            if results.records >= testlogs.MAX_TESTCASES:
                raise ResultsError(f"the results file holds more than {testlogs.MAX_TESTCASES} records")
            try:
                record = json.loads(line.decode("utf-8", errors="replace"))
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
            if len(results.by_id) > testlogs.MAX_TESTCASES:
                raise ResultsError(f"the results file names more than {testlogs.MAX_TESTCASES} tests")
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


HARBOR_TESTS_IN_PATCH = ".swe-env-harbor/tests"
"""Where a Harbor task's test patch puts its tests folder; the harbor runner moves it to `/tests` before the run."""
HARBOR_TESTS_DIR = "/tests"
HARBOR_VERIFIER_DIR = "/logs/verifier"
"""Harbor's fixed paths: its tests are copied to /tests, its verifier writes its reward into /logs/verifier."""
HARBOR_REWARD_ID = "reward"
"""The one result of a Harbor task (its FAIL_TO_PASS list): passed when the reward is 1."""


class HarborRunner(Runner):
    """A Harbor task's verifier, `/tests/test.sh`: its reward file is the result.

    Before the command (after the patch is applied and protected files restored): the tests
    folder the test patch laid in the repository is moved to `/tests` (and leaves the tree),
    and `/logs/verifier` is removed and made again, empty, so no reward file written before
    this point (by the image, by anything of the agent's) exists. After it, `reward.json` (a
    JSON object; its `reward` key decides) is read if it exists, else `reward.txt` (one number),
    as Harbor's verifier reads them; a missing, empty, non-numeric or non-finite reward is no
    result, so the task counts as failed. Both files written with different rewards: neither is
    believed (one was not the verifier's).
    """

    name: ClassVar[str] = "harbor"
    source: ClassVar[ResultsSource] = "reward"
    streams_results: ClassVar[bool] = False

    @property
    def results_label(self) -> str:
        return f"reward file ({HARBOR_VERIFIER_DIR}/reward.json or reward.txt)"

    def environment(self, results: str) -> dict[str, str]:
        return {}

    def prelude(self, workspace: str) -> str:
        tests, verifier, laid = HARBOR_TESTS_DIR, HARBOR_VERIFIER_DIR, HARBOR_TESTS_IN_PATCH
        return (f"{{ rm -rf {tests} {verifier} && mkdir -p {verifier} && mv {laid} {tests} "
                f"&& rm -rf {laid.split('/')[0]} && chmod -R a+rX {tests} && chmod -R a+rwX {verifier} "
                f"&& chmod +x {tests}/test.sh; }} || {{ echo 'swe-env: could not lay out {tests}' >&2; exit 98; }}")

    def results_paths(self, workspace: str) -> list[str]:
        return [f"{HARBOR_VERIFIER_DIR}/reward.json", f"{HARBOR_VERIFIER_DIR}/reward.txt"]

    def read_results(self, found: list[tuple[str, bytes]]) -> testlogs.RecordedResults:
        # Harbor reads reward.json when it exists. Both written and disagreeing: one is not the verifier's
        # (code under test wrote reward.json while test.sh wrote reward.txt, say), so neither is believed.
        rewards = {parse_reward(data, json_file=path.endswith(".json")) for path, data in found}
        if len(rewards) > 1:
            raise ResultsError("reward.json and reward.txt were both written and disagree")
        return self._results(rewards.pop())

    def read(self, data: bytes, path: str = "") -> testlogs.RecordedResults:
        return self._results(parse_reward(data, json_file=path.endswith(".json")))

    def _results(self, reward: float) -> testlogs.RecordedResults:
        results = testlogs.RecordedResults(records=1)
        results.by_id[HARBOR_REWARD_ID] = testlogs.PASSED if reward == 1.0 else testlogs.FAILED
        return results


def parse_reward(data: bytes, json_file: bool) -> float:
    """The reward in a Harbor reward file: reward.txt holds one number, reward.json an object whose `reward` key decides."""
    if len(data) > RESULTS_LIMIT:
        raise ResultsError(f"the reward file is larger than {RESULTS_LIMIT} bytes")
    text = data.decode("utf-8", errors="replace").strip()
    if not text:
        raise ResultsError("the reward file is empty")
    try:
        value = json.loads(text) if json_file else float(text)
    except ValueError:
        raise ResultsError(f"the reward file is not {'JSON' if json_file else 'a number'}: {text[:80]!r}") from None
    if json_file:
        if not isinstance(value, dict) or "reward" not in value:
            raise ResultsError("reward.json has no 'reward' key")
        value = value["reward"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ResultsError(f"the reward is not a finite number: {value!r}")
    return float(value)


RUNNERS: dict[str, type[Runner]] = {runner.name: runner for runner in (Runner, DjangoRunner, SympyRunner, HarborRunner)}
assert set(RUNNERS) == set(get_args(RunnerName)), "every runner a task may name has a class here"


def runner_named(name: RunnerName) -> Runner:
    return RUNNERS[name]()
