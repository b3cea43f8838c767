"""Test runners: how the grader gets machine-readable results out of a task's test command.

A runner decides three things for one grading: what the test command's process gets (the
environment, files in the grader's private folder), which repository files are the runner
itself (restored whole to base_commit when changed), and how its results are read. The
task's command always runs as written.

Results travel on the test run's second stream (`Sandbox.exec_to_end`), through a path that is
that stream (`/proc/<the grader's shell>/fd/3`, not inherited by the command), as sealed records
(`seal`): a grader-owned start-up module (`swe_env/grading/reporter/sitecustomize.py`, standard
library only) is put first on PYTHONPATH in the grader's private folder; before any repository
code runs it installs an audit hook that alone holds the run's key and writes every record,
MAC'd, the moment it is handed over. Only a whole chain ending in an end record is believed, so a
fake report, a killed or aborted run, or bytes someone else wrote are not.

- `pytest`: the grader's plugin (`reporter/swe_env_seal.py`, loaded with `-p` through
  PYTEST_ADDOPTS and tox's setenv) hands every report pytest logs to the hook, which believes
  it only from pytest's own `call_and_report`; a second pytest session in the same command
  finds no key (the first took it), so its tests are missing.
- `django` and `sympy`: the same start-up module hooks unittest's `TestResult` (Django's
  runner is unittest's) or sympy's `PyTestReporter` once their module is imported; the key is
  taken at start-up in the test command's first Python process (sympy's runs its tests in that
  process: PYTHONHASHSEED is set, so `test()` starts no child for a hash seed). The test output
  is never parsed: what the tests print is the agent's code talking.
- `harbor`: a Harbor task's verifier (`swe_env.importers.harbor`): the tests folder, carried by the test
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
import secrets
from pathlib import Path
from typing import ClassVar, Literal, get_args

from ..data.task import RunnerName
from . import native, testlogs
from .runner_probe import RunnerFacts

RESULTS_LIMIT = 64 * 1024 * 1024
"""Bytes of a results file (sealed records, a reward file) that are read; a larger one is not believed."""
_REPORTER = Path(__file__).with_name("reporter")
_SEALED_FILES = ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py")
_RECORDER_FILES = ("sitecustomize.py", "swe_env_integrity.py")
_RUNS_TOX = re.compile(r"(?:^|[\s;&|(/'\"])tox(?:[\s'\"]|$)")


def junit_options(path: str) -> str:
    """PYTEST_ADDOPTS for a run that is not a grading (task synthesis learning its own candidates' outcomes):
    a plain JUnit XML report at `path`. Gradings never use it: their results are sealed (`grading.seal`)."""
    return f"--junitxml={path} -o junit_family=xunit1 -p no:cacheprovider"


def _native(workspace: str) -> dict[str, bytes]:
    data = native.shared_object().data
    return {f"{workspace}/recorder/{native.FILE_NAME}": data} if data is not None else {}


class ResultsError(ValueError):
    """A results file that cannot be believed (not written, too large, malformed)."""


ResultsSource = Literal["sealed", "recorder", "reward"]
"""Where a runner's statuses come from (`GradingReport.report_source`, besides the log and none)."""


class Runner:
    """The pytest runner; the base of the others."""

    name: ClassVar[str] = "pytest"
    streams_results: ClassVar[bool] = True
    """The runner writes its results to the path `environment` is given (the run's results stream);
    False: to files of its own (`results_paths`), read after the run."""
    source: ClassVar[ResultsSource] = "sealed"
    """What `GradingReport.report_source` says when this runner's results were read."""
    owned_files: ClassVar[tuple[str, ...]] = ()
    """Repository files that are the runner itself: restored whole to base_commit when changed."""

    def files(self, workspace: str) -> dict[str, bytes]:
        """Files the grader writes into its private folder before the run (path -> bytes): the start-up
        module, the plugin, and the native seal's shared object when the host could build it (`native`)."""
        return {f"{workspace}/recorder/{name}": (_REPORTER / name).read_bytes() for name in _SEALED_FILES} | _native(workspace)

    def environment(self, results: str, key_path: str = "", workspace: str = "") -> dict[str, str]:
        """Variables for the test command's process; `results` is the path its results go to, `key_path`
        where the sealed hook finds the run's key, `workspace` the grader's private folder."""
        # tox (4.12+) gives its commands only listed variables, and a tox.ini's own `setenv` may
        # set PYTEST_ADDOPTS (sphinx's does): TOX_OVERRIDE appends ours to setenv (";" separates
        # overrides), so they win. Under tox the image's PYTHONPATH is not passed, as before.
        # Only the plugin: any other option changes what the tests do (`-p no:cacheprovider` took the `cache`
        # fixture away, so pytest's own test_cache_makedir errored under the grader and passed raw).
        addopts = "-p swe_env_seal"
        ours = {"PYTEST_ADDOPTS": addopts, **self._sealing(results, key_path)}
        overrides = {**ours, "PYTHONPATH": f"{workspace}/recorder"}
        return {**ours, "TOX_OVERRIDE": ";".join(f"testenv.setenv+={name}={value}" for name, value in overrides.items())}

    def _sealing(self, results: str, key_path: str) -> dict[str, str]:
        return {"SWE_ENV_RESULTS": results, "SWE_ENV_RUNNER": self.name, "SWE_ENV_KEY": key_path}

    def prelude(self, workspace: str) -> str:
        """Shell lines run before the task's command (in the same shell)."""
        # Exported here, not passed to the exec: the image's own PYTHONPATH must be kept behind ours.
        return f'export PYTHONPATH="{workspace}/recorder${{PYTHONPATH:+:$PYTHONPATH}}"'

    def runner_is_repo(self, patched: list[str], facts: RunnerFacts) -> bool:
        """Whether the patch changes the runner's own package (pytest's tasks on pytest): then the
        patched code is the runner, and the hook cannot hold it off its own stack.

        Decided from where pytest, _pytest and pluggy are really imported from in the task's image
        (`RunnerFacts.runner_code`), never from folder names: a patched `docs/pytest/NOTES.txt` is not the runner.
        Not asked (no probe): never the runner's, so the hooks' checks stay on."""
        return facts.changes_runner(patched)

    def runner_places(self, patched: list[str], facts: RunnerFacts) -> list[str]:
        """The repository paths (files or folders) of the runner's own code when the patch changes the runner
        (`runner_is_repo`): the runner probe's answer (`RunnerFacts.runner_code`), which the sealed hooks alone exempt
        from their stack checks; empty otherwise."""
        return sorted(facts.runner_code or ()) if self.runner_is_repo(patched, facts) else []

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
        return "sealed results" if self.name == "pytest" else f"sealed {self.name} results"

    def read(self, data: bytes, path: str = "") -> testlogs.JUnitResults | testlogs.RecordedResults:
        """Results from the bytes of the results file at `path`; ResultsError when they cannot be read."""
        if not data or data.isspace():  # not strip(): that copies the whole stream
            raise ResultsError("none was written")
        try:
            return testlogs.parse_junit_reports(data)  # streamed: never decoded or parsed whole
        except testlogs.ReportError as exc:
            raise ResultsError(str(exc)) from None


class _RecorderRunner(Runner):
    """A runner whose outcomes the grader's recorder (the sealed start-up module) writes."""

    source: ClassVar[ResultsSource] = "recorder"
    runner_packages: ClassVar[tuple[str, ...]] = ()
    """Folders of the repository that are this runner's own machinery (Django's test runner)."""

    def files(self, workspace: str) -> dict[str, bytes]:
        return {f"{workspace}/recorder/{name}": (_REPORTER / name).read_bytes() for name in _RECORDER_FILES} | _native(workspace)

    def environment(self, results: str, key_path: str = "", workspace: str = "") -> dict[str, str]:
        return self._sealing(results, key_path)

    def runner_is_repo(self, patched: list[str], facts: RunnerFacts) -> bool:
        return any(path.startswith(self.runner_packages) for path in patched) if self.runner_packages else False


class DjangoRunner(_RecorderRunner):
    """Django's `tests/runtests.py` (unittest underneath); ids as SWE-bench lists them."""

    name: ClassVar[str] = "django"
    runner_packages: ClassVar[tuple[str, ...]] = ("django/test/",)
    owned_files: ClassVar[tuple[str, ...]] = ("tests/runtests.py", "tests/test_sqlite.py")


class SympyRunner(_RecorderRunner):
    """sympy's `bin/test` (its own runner); ids are the test functions' names."""

    name: ClassVar[str] = "sympy"
    # The runner, its entry script and the helpers tests use to declare XFAIL / skip / raises.
    owned_files: ClassVar[tuple[str, ...]] = (
        "bin/test",
        "sympy/testing/runtests.py",
        "sympy/utilities/runtests.py",
        "sympy/testing/pytest.py",
        "sympy/utilities/pytest.py",
    )

    def environment(self, results: str, key_path: str = "", workspace: str = "") -> dict[str, str]:
        # sympy's `test()` re-runs the tests in a child Python with a random hash seed unless PYTHONHASHSEED is set; the
        # key is the test command's first process's, taken at its start (red team rt6b, S3), so the tests must run in
        # that process: a random seed given here keeps the run as random as sympy's own child would be.
        return {**super().environment(results, key_path, workspace), "PYTHONHASHSEED": str(secrets.randbelow(2**32))}


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

    def files(self, workspace: str) -> dict[str, bytes]:
        return {}

    def environment(self, results: str, key_path: str = "", workspace: str = "") -> dict[str, str]:
        return {}

    def runner_is_repo(self, patched: list[str], facts: RunnerFacts) -> bool:
        return False

    def prelude(self, workspace: str) -> str:
        tests, verifier, laid = HARBOR_TESTS_DIR, HARBOR_VERIFIER_DIR, HARBOR_TESTS_IN_PATCH
        return (
            f"{{ rm -rf {tests} {verifier} && mkdir -p {verifier} && mv {laid} {tests} "
            f"&& rm -rf {laid.split('/')[0]} && chmod -R a+rX {tests} && chmod -R a+rwX {verifier} "
            f"&& chmod +x {tests}/test.sh; }} || {{ echo 'swe-env: could not lay out {tests}' >&2; exit 98; }}"
        )

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
