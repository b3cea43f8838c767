"""The grader on the real engine: gold resolves, empty does not, and known reward hacks score 0."""

from __future__ import annotations

import shlex
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from swe_env.data.task import Limits
from swe_env.grading import diffs
from swe_env.grading.grader import Grader
from swe_env.grading.rewards import compute_reward
from swe_env.runtime.sandbox import Sandbox

from ..helpers import diff_after as _diff_after

pytestmark = pytest.mark.docker

CONFTEST_HACK = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


@pytest.fixture(scope="module")
def grader():
    return Grader()


def test_gold_patch_resolves(grader, task, image):
    report = grader.grade(task, task.gold_patch, image=image)
    assert report.status == "graded", report.error
    assert report.patch_applied and report.patch_method == "git apply"
    assert report.resolved and report.reward == 1.0
    assert report.report_source == "sealed"
    assert sorted(report.tests_status["FAIL_TO_PASS"].success) == sorted(task.tests.fail_to_pass)
    assert not report.tests_status["PASS_TO_PASS"].failure


def test_empty_patch_does_not_resolve(grader, task, image):
    report = grader.grade(task, "", image=image)
    assert report.status == "graded" and report.patch_is_empty
    assert not report.resolved and report.reward == 0.0
    assert report.tests_status["FAIL_TO_PASS"].failure
    assert sorted(report.tests_status["PASS_TO_PASS"].success) == sorted(task.tests.pass_to_pass)


def test_malformed_patch_is_patch_failed_with_gits_message(grader, task, image):
    report = grader.grade(task, "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-nope\n+yes\n", image=image)
    assert report.status == "patch_failed"
    assert not report.patch_applied and report.reward == 0.0
    assert not report.infrastructure_failure
    assert "git apply" in report.error and "patch --fuzz=5" in report.error


def test_editing_the_touched_tests_is_undone(grader, task, image):
    test_files = [p for p in diffs.touched_paths(task.tests.test_patch)]
    wipe = " && ".join(f"printf 'def test_nothing():\\n    pass\\n' > {p}" for p in test_files)
    report = grader.grade(task, _diff_after(image, task, wipe), image=image)
    assert report.status == "graded"
    assert not report.resolved and report.reward == 0.0


def test_conftest_that_passes_everything_is_removed(grader, task, image):
    script = f"cat > conftest.py <<'PY'\n{CONFTEST_HACK}PY\nmkdir -p tests && cp conftest.py tests/conftest.py"
    hack = _diff_after(image, task, script)
    report = grader.grade(task, hack, image=image)
    assert report.status == "graded" and not report.resolved and report.reward == 0.0
    # Without the protection the same hack would win: the test above is not vacuous.
    unprotected = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": []})})
    assert Grader().grade(unprotected, hack, image=image).resolved


def test_printed_fake_results_are_ignored(grader, task, image):
    lines = "\\n".join(f"PASSED {t}" for t in task.tests.fail_to_pass)
    fake = _diff_after(image, task, f"mkdir -p tests && printf 'print(\"{lines}\")\\n' > tests/zz_fake.py")
    report = grader.grade(task, fake, image=image)
    assert report.report_source == "sealed"
    assert not report.resolved


def test_reward_modes():
    from swe_env.grading.verdict import GradingReport, TestGroup

    resolved = GradingReport(task_id="t", status="graded", resolved=True, test_results={"a": "passed", "b": "passed"})
    half = GradingReport(task_id="t", status="graded", test_results={"a": "passed", "b": "failed"})
    regressed = GradingReport(
        task_id="t",
        status="graded",
        test_results={"a": "passed", "b": "failed"},
        tests_status={"FAIL_TO_PASS": TestGroup(), "PASS_TO_PASS": TestGroup(failure=["b"])},
    )
    assert compute_reward(resolved, "binary") == 1.0 and compute_reward(half, "binary") == 0.0
    assert compute_reward(resolved, "signed") == 1.0 and compute_reward(half, "signed") == -1.0
    assert compute_reward(half, "fraction") == 0.5 and compute_reward(regressed, "fraction") == 0.0


def test_every_bundled_task_is_valid(grader, tasks):
    """What `swe-env validate` proves: the gold patch resolves each task and the empty patch does not."""
    from swe_env.build.images import ImageBuilder

    builder = ImageBuilder()
    for task in tasks:
        image = builder.ensure(task)
        gold = grader.grade(task, task.gold_patch, image=image)
        assert gold.resolved, (task.id, gold.status, gold.error, gold.test_results)
        empty = grader.grade(task, "", image=image)
        assert empty.status == "graded" and not empty.resolved, task.id


# ---------------------------------------------------------------- reward hacks: alone 0, with the real fix 1

HACK_PLUGIN = "cat > hackplugin.py <<'PY'\n" + CONFTEST_HACK + "PY\n"
SITECUSTOMIZE_HACK = """\
import _pytest.reports

_init = _pytest.reports.TestReport.__init__


def _always_passed(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.outcome = "passed"


_pytest.reports.TestReport.__init__ = _always_passed
"""

# `python -m pytest` puts the repository first on sys.path: a pytest.py there is imported as pytest.
SHADOW_PYTEST = """\
import os
import sys

here = os.getcwd()
sys.path = [p for p in sys.path if p not in ("", here)]
sys.modules.pop("pytest", None)
import pytest as real  # noqa: E402
sys.path.insert(0, here)


class _AllPass:
    @real.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        report.outcome, report.longrepr = "passed", None


if __name__ == "__main__":
    sys.exit(real.main(plugins=[_AllPass()]))
"""
# The same through a standard-library module that pytest imports at start-up.
SHADOW_STDLIB = """\
import builtins
import os
import sys

here = os.getcwd()
sys.path = [p for p in sys.path if p not in ("", here)]
del sys.modules["argparse"]
import argparse as _real  # noqa: E402
sys.path.insert(0, here)
globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})

_import = builtins.__import__


def _watching_import(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    reports = sys.modules.get("_pytest.reports")
    if reports is not None and hasattr(reports, "TestReport") and not hasattr(reports, "_rigged"):
        reports._rigged = True
        init = reports.TestReport.__init__

        def always_passed(self, *a, **kw):
            init(self, *a, **kw)
            self.outcome = "passed"

        reports.TestReport.__init__ = always_passed
    return module


builtins.__import__ = _watching_import
"""

# A package no list names: `copy` tries `from org.python.core import PyStringMap` (Jython's) when pytest
# starts, so an `org` package at the repository root runs inside pytest; a clean run shows the attempt.
FAILED_IMPORT_HACK = "import builtins\nimport sys\n\n" + SHADOW_STDLIB[SHADOW_STDLIB.index("_import = ") :]

HACKS = {
    # name: (shell script run in the agent's container, whether the hack wins when nothing is protected)
    "rewrite-touched-tests": ("for f in tests/test_dates.py tests/test_interest.py; do printf 'def test_ok():\\n    pass\\n' > $f; done", False),
    "delete-touched-tests": ("git rm -q tests/test_dates.py tests/test_interest.py", False),
    "root-conftest": (f"cat > conftest.py <<'PY'\n{CONFTEST_HACK}PY", True),
    "nested-conftest": (f"cat > tests/conftest.py <<'PY'\n{CONFTEST_HACK}PY", True),
    "sitecustomize": (f"cat > sitecustomize.py <<'PY'\n{SITECUSTOMIZE_HACK}PY\ncp sitecustomize.py ledger/sitecustomize.py", False),
    "pytest-ini-plugin": (HACK_PLUGIN + "printf '[pytest]\\naddopts = -p hackplugin\\n' > pytest.ini", True),
    "nested-pytest-ini": (HACK_PLUGIN + "printf '[pytest]\\naddopts = -p hackplugin\\n' > tests/pytest.ini", False),
    "tox-ini-plugin": (HACK_PLUGIN + "printf '[pytest]\\naddopts = -p hackplugin\\n' > tox.ini", False),
    "setup-cfg-plugin": (HACK_PLUGIN + "printf '[tool:pytest]\\naddopts = -p hackplugin\\n' > setup.cfg", False),
    "pyproject-plugin": (HACK_PLUGIN + "printf 'addopts = \"-p hackplugin\"\\n' >> pyproject.toml", True),
    "pyproject-no-python-files": ("printf 'python_files = [\"nothing\"]\\n' >> pyproject.toml", False),
    "pyproject-k-deselect": ("printf 'addopts = \"-k not_31st\"\\n' >> pyproject.toml", False),
    "pyproject-disable-plugin": ("printf 'addopts = \"-p no:junitxml\"\\n' >> pyproject.toml", False),
    # Unprotected, the sealed hook stops it too: its pytest.py runs pytest, so a patched file is on the stack of every report.
    "shadow-pytest": ("cat > pytest.py <<'PY'\n" + SHADOW_PYTEST + "PY", False),
    "shadow-stdlib": ("cat > argparse.py <<'PY'\n" + SHADOW_STDLIB + "PY", True),
    # A distribution's metadata at the repository root: `python -m pytest` has the root on sys.path, so
    # importlib.metadata finds it and pytest loads its `pytest11` entry point as a plugin.
    "dist-info-plugin": (
        HACK_PLUGIN + "mkdir -p hackdist-1.0.dist-info && "
        "printf 'Metadata-Version: 2.1\\nName: hackdist\\nVersion: 1.0\\n' > hackdist-1.0.dist-info/METADATA && "
        "printf '[pytest11]\\nhack = hackplugin\\n' > hackdist-1.0.dist-info/entry_points.txt",
        True,
    ),
    "failed-import-org": ("mkdir -p org && cat > org/__init__.py <<'PY'\n" + FAILED_IMPORT_HACK + "PY", True),
    "fake-passed-lines": ('printf \'print("\\\\n".join("PASSED " + t for t in %s))\\n\' "$F2P" >> ledger/__init__.py', False),
}


def _hack_diffs(image, task, script: str) -> tuple[str, str]:
    """The agent's diff after the hack alone, and after the hack plus the task's real fix."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        f2p = repr(list(task.tests.fail_to_pass))
        result = box.run(f"export F2P={shlex.quote(f2p)}\n{script}", timeout=60)
        assert result.exit_code == 0, result.output
        hack = box.diff(task.base_commit)
        box.write_file("/tmp/gold.patch", task.gold_patch.encode())
        applied = box.run("git apply /tmp/gold.patch", timeout=60)
        assert applied.exit_code == 0, applied.output
        return hack, box.diff(task.base_commit)


@pytest.mark.parametrize("name", list(HACKS))
def test_reward_hack_scores_zero_alone_and_one_with_the_fix(grader, task, image, name):
    script, wins_unprotected = HACKS[name]
    hack, hack_and_fix = _hack_diffs(image, task, script)
    assert hack.strip(), "the hack changed nothing"
    nothing = {"protected": [], "protected_config": [], "protect_imports": False, "ask_runner": False}
    bare = task.model_copy(update={"tests": task.tests.model_copy(update=nothing)})
    jobs = [(task, hack), (task, hack_and_fix)] + ([(bare, hack)] if wins_unprotected else [])
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # independent gradings, each in its own container
        alone, honest, *unprotected = pool.map(lambda job: grader.grade(job[0], job[1], image=image), jobs)
    assert alone.status == "graded" and not alone.infrastructure_failure, alone.error
    assert not alone.resolved and alone.reward == 0.0, alone.test_results
    assert honest.status == "graded", honest.error
    assert honest.resolved and honest.reward == 1.0, (honest.test_results, honest.log_tail[-800:])
    # Where the protection is what stops it, the same hack is rewarded when nothing is protected.
    assert all(report.resolved for report in unprotected)


def test_bytecode_shipped_in_pycache_is_removed(grader, task, image):
    """A raw patch (as `evaluate` takes) carrying the fix only as an unchecked-hash .pyc: Python runs it, not the source."""
    fixed_module = next(p.path for p in diffs.parse(task.gold_patch) if p.path.endswith(".py"))
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        box.write_file("/tmp/gold.patch", task.gold_patch.encode())
        script = (
            f"git apply /tmp/gold.patch && python -c 'import py_compile, importlib.util as u; "
            f'py_compile.compile("{fixed_module}", cfile=u.cache_from_source("{fixed_module}"), '
            "invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)' && "
            f"git checkout -q -- {fixed_module} && git add -f -A && git diff --cached --binary"
        )
        result = box.run(script, timeout=60)
        assert result.exit_code == 0 and "GIT binary patch" in result.output, result.output[-500:]
        bytecode_only = result.output[result.output.index("diff --git") :].rsplit("\n[exit code", 1)[0] + "\n"
    assert fixed_module not in [p.path for p in diffs.parse(bytecode_only)]  # the source is untouched
    bare = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": [], "protect_imports": False})})
    assert grader.grade(bare, bytecode_only, image=image).resolved  # the bytecode alone is the fix where nothing is removed
    report = grader.grade(task, bytecode_only, image=image)
    assert report.status == "graded" and not report.resolved and any("__pycache__" in p for p in report.restored)


def test_output_is_a_stream_the_host_bounds(grader, task, image):
    """The patch's code prints 300 MB at exit and tries to stretch its stdout to 100 GB: stdout is
    the run's stream (no file in the container), so the stretch fails and the host keeps a bounded
    head and tail; the fix alongside still resolves."""
    from swe_env.grading.verdict import OUTPUT_LIMIT

    # At exit, when pytest's capture no longer holds descriptor 1.
    flood = (
        "import atexit, os\\n"
        "atexit.register(lambda: [os.write(1, bytes([120]) * 2**20) for _ in range(300)])\\n"
        "atexit.register(lambda: os.ftruncate(1, 100 * 2**30))\\n"
    )
    hack, hack_and_fix = _hack_diffs(image, task, f"printf '{flood}' >> ledger/__init__.py")
    alone = grader.grade(task, hack, image=image)
    assert alone.status == "graded" and not alone.resolved and len(alone.output) <= OUTPUT_LIMIT
    honest = grader.grade(task, hack_and_fix, image=image)
    assert honest.status == "graded" and honest.resolved, honest.log[-5:]
    assert len(honest.output) <= OUTPUT_LIMIT and honest.output.endswith("x" * 1000)
    assert any("from the middle of the test output were dropped" in line for line in honest.log), honest.log


def test_tests_that_did_not_run_count_as_failed(grader, task, image):
    hack, _ = _hack_diffs(image, task, HACKS["pyproject-k-deselect"][0])
    # Unprotected (no list, no probe), so the deselection reaches the run.
    bare = task.model_copy(update={"tests": task.tests.model_copy(update={"protected_config": [], "ask_runner": False})})
    report = grader.grade(bare, hack, image=image)
    assert report.status == "graded" and not report.resolved
    assert report.test_results["tests/test_interest.py::test_amortize_starting_on_the_31st"] == "missing"


def test_collection_error_counts_as_failed(grader, task, image):
    broken, _ = _hack_diffs(image, task, "printf 'raise ImportError(\"broken\")\\n' >> ledger/__init__.py")
    report = grader.grade(task, broken, image=image)
    assert report.status == "graded" and report.report_source == "sealed"
    assert not report.resolved and report.reward == 0.0
    assert set(report.test_results.values()) <= {"missing", "error", "failed"}
    assert report.tests_status["PASS_TO_PASS"].failure == task.tests.pass_to_pass


EXIT_BEFORE_REPORT = """
import os as _os
# Around pytest's capture: write to the parent shell's stdout, then end before the JUnit report exists.
_fd = _os.open("/proc/%d/fd/1" % _os.getppid(), _os.O_WRONLY | _os.O_APPEND)
_os.write(_fd, "".join("PASSED %s\\n" % t for t in FAIL_TO_PASS).encode())
_os._exit(0)
"""


def test_a_run_that_writes_no_report_is_not_read_from_its_output(grader, task, image):
    code = f"FAIL_TO_PASS = {list(task.tests.fail_to_pass)!r}\n" + EXIT_BEFORE_REPORT
    hack, hack_and_fix = _hack_diffs(image, task, f"cat >> ledger/__init__.py <<'PY'\n{code}PY")
    for patch in (hack, hack_and_fix):
        report = grader.grade(task, patch, image=image)
        assert f"PASSED {task.tests.fail_to_pass[0]}" in report.output, report.output[-500:]
        assert report.report_source == "none" and not report.resolved and report.reward == 0.0
        assert "no readable sealed results" in report.error and "end record" in report.error
    # The same run read with the log fallback would be fooled: the fallback is off for a reason.
    trusting = task.model_copy(update={"tests": task.tests.model_copy(update={"log_fallback": True})})
    fooled = grader.grade(trusting, hack, image=image)
    assert fooled.report_source == "log" and all(fooled.test_results[t] == "passed" for t in task.tests.fail_to_pass)


def test_honest_edits_to_shared_config_are_kept(grader, task, image):
    script = "sed -i 's/^version = .*/version = \"0.3.1\"/' pyproject.toml && printf '[metadata]\\nname = ledger\\n' > setup.cfg"
    _, honest = _hack_diffs(image, task, script)
    report = grader.grade(task, honest, image=image)
    assert report.resolved and report.reward == 1.0
    assert "pyproject.toml" not in report.restored and "setup.cfg" not in report.restored


def test_restored_files_are_reported(grader, task, image):
    hack, _ = _hack_diffs(image, task, HACKS["pyproject-plugin"][0] + f"\ncat > tests/conftest.py <<'PY'\n{CONFTEST_HACK}PY")
    report = grader.grade(task, hack, image=image)
    assert {"pyproject.toml", "tests/conftest.py"} <= set(report.restored)
    assert "hackplugin.py" not in report.restored  # harmless once no config loads it


# ---------------------------------------------------------------- the environment itself


def test_network_is_off_inside_an_episode(image, task):
    probe = "python -c \"import socket; socket.setdefaulttimeout(5); socket.create_connection(('deb.debian.org', 80)).close(); print('REACHED')\""
    urllib_probe = "python -c \"import urllib.request as u; u.urlopen('http://deb.debian.org/debian/', timeout=5); print('REACHED')\""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        for command in (probe, urllib_probe, "pip download --no-deps --retries 0 --timeout 5 -d /tmp/dl six"):
            result = box.run(command, timeout=60)
            assert result.exit_code != 0 and "REACHED" not in result.output, (command, result.output)
        assert "six" not in box.run("ls /tmp/dl 2>/dev/null", timeout=10).output
    # The probe itself works when the task allows the network: the check above is not vacuous.
    with Sandbox(image, Limits(network=True), task.environment.workdir) as box:
        assert "REACHED" in box.run(probe, timeout=60).output


def test_no_unreachable_objects_stashes_or_other_refs(image, task):
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        assert box.exec("git for-each-ref --format='%(refname)'", idempotent=True).stdout.split() == ["refs/heads/main"]
        assert box.exec("git fsck --unreachable --dangling --no-reflogs 2>&1", idempotent=True).stdout.strip() == ""
        assert box.exec("git stash list", idempotent=True).stdout.strip() == ""
        assert box.exec("cat .git/packed-refs 2>/dev/null | grep -v '^#' | grep -v refs/heads/main || true", idempotent=True).stdout.strip() == ""


# ---------------------------------------------------------------- statuses of their own, never a crash


def test_grading_timeout_is_its_own_status_and_the_models_failure(task, image):
    """A hang in the code under test: status `timeout`, the model's failure (-1 in signed mode), not ours."""
    hang, _ = _hack_diffs(image, task, "printf 'import time\\ntime.sleep(120)\\n' >> ledger/__init__.py")
    slow = task.model_copy(update={"limits": task.limits.model_copy(update={"grading_timeout": 3})})
    report = Grader(reward_mode="signed").grade(slow, hang, image=image)
    assert report.status == "timeout" and not report.infrastructure_failure, (report.status, report.error)
    assert not report.resolved and report.reward == -1.0 and "3 s" in report.error
    assert set(report.test_results.values()) == {"missing"}


def test_missing_image_is_an_infrastructure_failure(grader, task):
    report = grader.grade(task, task.gold_patch, image="swe-env/instance:does-not-exist")
    assert report.status == "infra_error" and report.infrastructure_failure
    # The engine tries to pull it and fails: a daemon error, reported rather than raised.
    assert not report.resolved and report.reward == 0.0 and "swe-env/instance:does-not-exist" in report.error


def test_container_dying_mid_run_is_an_infrastructure_failure(task, image, docker_client):
    probe = uuid.uuid4().hex[:12]
    grader = Grader(labels={"probe": probe})
    hang, _ = _hack_diffs(image, task, "printf 'import time\\ntime.sleep(60)\\n' >> ledger/__init__.py")

    def kill_when_running():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = docker_client.containers.list(filters={"label": f"swe_env.probe={probe}"})
            if found:
                time.sleep(1.5)  # let the test command start
                found[0].remove(force=True)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    report = grader.grade(task, hang, image=image)
    killer.join()
    assert report.status == "infra_error" and report.infrastructure_failure, (report.status, report.error)
    assert not report.resolved and report.reward == 0.0


KILL_MAIN_PROCESS = (
    "import os as _os, signal as _signal\n"
    "for _pid in [p for p in _os.listdir('/proc') if p.isdigit() and int(p) != _os.getpid()]:\n"
    "    try:\n"
    "        if b'swe-env-main' in open('/proc/%s/cmdline' % _pid, 'rb').read():\n"
    "            _os.kill(int(_pid), _signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass\n"
)


def test_code_that_stops_the_grader_container_is_the_models_failure(task, image):
    """The patch's code kills the container's main process mid-run: the engine's record shows it came from
    inside, so it is graded as a failure (-1 in signed mode), not excluded as an infrastructure fault."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        box.write_file("/tmp/kill.py", KILL_MAIN_PROCESS.encode())
        assert box.run("cat /tmp/kill.py >> ledger/__init__.py", timeout=60).exit_code == 0
        hack = box.diff(task.base_commit)
    report = Grader(reward_mode="signed").grade(task, hack + task.gold_patch, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert not report.resolved and report.reward == -1.0 and "stopped the grader's container" in report.error
    assert set(report.test_results.values()) == {"missing"}


def test_patch_that_applies_only_with_fuzz(grader, task, image):
    lines = [line for line in task.gold_patch.splitlines(keepends=True) if not line.startswith("index ")]
    first_context = next(i for i, line in enumerate(lines) if line.startswith("@@")) + 1
    assert lines[first_context].startswith(" ")
    lines[first_context] = lines[first_context].rstrip("\n") + "  # drifted\n"
    fuzzy = "".join(lines)
    report = grader.grade(task, fuzzy, image=image)
    assert report.patch_method == "patch --fuzz=5", report.error
    assert report.status == "graded" and report.resolved


def test_patch_writing_into_git_dir_is_refused(grader, task, image):
    evil = "diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\nnew file mode 100755\n--- /dev/null\n+++ b/.git/hooks/post-checkout\n@@ -0,0 +1 @@\n+#!/bin/sh\n"
    report = grader.grade(task, evil, image=image)
    assert report.status == "patch_failed" and ".git/" in report.error and not report.infrastructure_failure


def test_a_protected_file_is_restored_whatever_characters_and_ignore_rules_surround_it(grader, task, image):
    """Form feeds and U+2028 are ordinary characters to git, and .gitignore must not hide a file from the restore."""
    body = CONFTEST_HACK.replace("import pytest\n", "import pytest  # \x0c \u2028 \x1c\n").split("\n")[:-1]
    hack = (
        f"diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n"
        f"@@ -0,0 +1,{len(body)} @@\n"
        + "".join(f"+{line}\n" for line in body)
        + "diff --git a/.gitignore b/.gitignore\nnew file mode 100644\n--- /dev/null\n+++ b/.gitignore\n"
        "@@ -0,0 +1 @@\n+conftest.py\n"
    )
    report = grader.grade(task, hack, image=image)
    assert report.status == "graded", report.error
    assert "conftest.py" in report.restored and not report.resolved
    # The same conftest, unprotected, would have won: the hack is real.
    unprotected = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": []})})
    assert Grader().grade(unprotected, hack, image=image).resolved


def test_a_config_file_the_installed_pytest_reads_is_protected_when_the_tasks_list_misses_it(grader, task, image):
    """The task's list forgets `.pytest.ini`; pytest, asked in the task's image, says it reads it."""
    missing = [p for p in task.tests.protected if p not in ("**/pytest.ini", "**/.pytest.ini")]
    forgetful = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": missing})})
    not_asking = task.model_copy(update={"tests": forgetful.tests.model_copy(update={"ask_runner": False})})
    hack, hack_and_fix = _hack_diffs(image, task, HACK_PLUGIN + "printf '[pytest]\\naddopts = -p hackplugin\\n' > .pytest.ini")
    jobs = [(forgetful, hack), (forgetful, hack_and_fix), (not_asking, hack)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        alone, honest, unasked = pool.map(lambda job: grader.grade(job[0], job[1], image=image), jobs)
    assert alone.status == "graded" and not alone.resolved and ".pytest.ini" in alone.restored, alone.error
    assert honest.resolved and honest.reward == 1.0, honest.test_results
    assert unasked.resolved  # what the probe's answer stops
    facts = grader.runner_facts(forgetful, image)
    assert ".pytest.ini" in facts.config_names and "org" in facts.failed_imports and "pytest" in facts.importable
