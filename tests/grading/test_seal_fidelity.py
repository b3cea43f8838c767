"""The seal never changes what the tests do (issue 23's fidelity bug, SWE-bench's pytest-dev__pytest-10081).

There the grader's pytest plugin imported `unittest` before any test ran; pytest's own tests run pytest in
process (`pytester`), which imports a module afresh in each inner run unless the outer process had it, and
drops it again afterwards. Under the seal the inner runs shared one `unittest`, state left by an earlier
inner run decided a later one, and a test that fails in a raw run passed: the empty patch scored 1.

Here the bundled task's tests are replaced by inner in-process runs of the same kind (with `--pdb`) on a module
pytest itself does not import, but the start-up module did (`hashlib`, for its own hashing), and a test that
lists the modules loaded when the tests run. Each is run raw (the test command alone, in the task's image, as
`bench/seal_fidelity.py` does) and graded sealed on the real engine: every outcome must be the raw run's, the
F2P-shaped test that fails raw must fail sealed (the empty patch scores 0), and the sealed process may hold no
module the raw one does not, but the start-up module's placeholder and the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.grading import testlogs
from swe_env.grading.grader import Grader

from ..helpers import added_file, bench_module

ROOT = Path(__file__).resolve().parents[2]

INNER_RUNS = '''\
"""Inner in-process pytest runs, as pytest's own suite makes them (pytester restores sys.modules after each)."""
import sys

pytest_plugins = "pytester"

COUNTING = """
import hashlib

def test_count():
    hashlib.runs_seen = getattr(hashlib, "runs_seen", 0) + 1
    print("runs seen:", hashlib.runs_seen)
"""


def test_each_inner_run_starts_afresh(pytester):
    pytester.makepyfile(test_counting=COUNTING)
    for _ in range(2):
        result = pytester.runpytest_inprocess("--pdb", "-s", "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*runs seen: 1*"])


def test_an_earlier_inner_run_is_seen(pytester):
    # Fails in a raw run (each inner run imports hashlib afresh): the FAIL_TO_PASS-shaped test no patch fixes.
    pytester.makepyfile(test_counting=COUNTING)
    seen = []
    for _ in range(2):
        result = pytester.runpytest_inprocess("--pdb", "-s", "-p", "no:cacheprovider")
        seen.append(int(result.stdout.str().split("runs seen:")[1].split()[0]))
    assert seen[1] > seen[0]


def test_modules_loaded():
    print("MODULES", " ".join(sorted(name for name, module in list(sys.modules.items()) if module is not None)))
'''

_TEST_FILE = "tests/test_inner_runs.py"
_FILE_ID = _TEST_FILE
FRESH = f"{_FILE_ID}::test_each_inner_run_starts_afresh"
CARRIED = f"{_FILE_ID}::test_an_earlier_inner_run_is_seen"
MODULES = f"{_FILE_ID}::test_modules_loaded"
OURS = {"sitecustomize", "swe_env_seal"}
"""What the sealed process may hold beyond the raw one: the start-up module's empty placeholder and the plugin."""


@pytest.fixture(scope="module")
def seal_fidelity():
    with bench_module("seal_fidelity") as module:
        yield module


def _modules(output: str) -> set[str]:
    lines = [line for line in output.splitlines() if line.startswith("MODULES ")]
    assert lines, output[-3000:]
    return set(lines[-1].split()[1:])


def test_inner_in_process_runs_behave_under_the_seal_as_they_do_raw(tasks, docker_client, seal_fidelity):
    base = next(t for t in tasks if t.id == "slugkit-pluralize-vowel-y")
    task = base.model_copy(
        update={
            "tests": base.tests.model_copy(
                update={"test_patch": added_file(_TEST_FILE, INNER_RUNS.splitlines()), "fail_to_pass": [CARRIED], "pass_to_pass": [FRESH, MODULES]}
            )
        }
    )
    image = ImageBuilder().ensure(task)

    exit_code, output, _seconds = seal_fidelity.raw_run(task, image, "")
    raw = testlogs.parse_pytest_summary(output)
    assert raw.get(FRESH) == "passed" and raw.get(CARRIED) == "failed", output[-3000:]

    report = Grader().grade(task, "", image=image)
    assert report.status == "graded" and report.report_source == "sealed", report.log
    under_seal = testlogs.parse_pytest_summary(report.output)
    assert seal_fidelity.compare(raw, under_seal, report.test_results, [CARRIED, FRESH, MODULES]) == [], report.output[-3000:]
    assert report.test_results == {CARRIED: "failed", FRESH: "passed", MODULES: "passed"}
    assert not report.resolved and report.reward == 0.0
    assert report.tampering == []
    extra = _modules(report.output) - _modules(output)
    assert extra <= OURS, sorted(extra)


def test_compare_names_each_test_whose_outcome_differs(seal_fidelity):
    # f: a summary line an inner run printed (no record, not listed); g: a listed test the seal did not record;
    # h: a listed test -rA does not name (skipped) that the seal says passed; j: an XFAIL line (read as skipped),
    # recorded passed as SWE-bench counts it.
    raw = {"a": "passed", "b": "failed", "c": "passed", "d": "failed", "f": "passed", "g": "passed", "j": "skipped"}
    log = {"a": "passed", "b": "passed", "c": "error", "d": "error", "f": "passed", "g": "passed", "j": "skipped"}
    records = {
        "a": "passed",
        "b": "passed",
        "c": "failed",
        "d": "failed",
        "e": "missing",
        "f": "missing",
        "g": "missing",
        "h": "passed",
        "i": "skipped",
        "j": "passed",
    }
    assert seal_fidelity.compare(raw, log, records, ["a", "e", "g", "h", "i"]) == [
        {"test": "b", "raw": "failed", "sealed_log": "passed", "sealed_record": "passed"},
        {"test": "c", "raw": "passed", "sealed_log": "failed", "sealed_record": "failed"},
        {"test": "g", "raw": "passed", "sealed_log": "passed", "sealed_record": "missing"},
        {"test": "h", "raw": "missing", "sealed_log": "missing", "sealed_record": "passed"},
    ]


def test_a_cache_this_process_renamed_under_a_relative_name_is_read(tmp_path):
    # pytest's own test_orphaned_pyc_file (pytest-dev__pytest-5103, passing raw, failing sealed): py_compile writes
    # __pycache__/orphan.*.pyc, the test renames it to ./orphan.pyc (relative names) and an import opens it under
    # its absolute name. The cache guard took the two names for two files and refused its own cache.
    (tmp_path / "orphan.py").write_text("value = 17\n")
    guard = Path(__file__).resolve().parents[2] / "swe_env" / "grading" / "reporter" / "sitecustomize.py"
    script = textwrap.dedent(f"""
        import glob, importlib.util, os, py_compile, sys
        spec = importlib.util.spec_from_file_location("swe_env_site", {str(guard)!r})
        site = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(site)
        sys.addaudithook(site._cache_guard(0))
        os.chdir({str(tmp_path)!r})
        py_compile.compile("orphan.py")
        os.remove("orphan.py")
        os.rename(glob.glob("__pycache__/orphan.*.pyc")[0], "orphan.pyc")
        sys.path.insert(0, {str(tmp_path)!r})
        import orphan
        print(orphan.value)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWE_ENV_") and k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert done.stdout.split() == ["17"], done.stderr[-2000:]
