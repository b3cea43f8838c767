"""A SWE-bench-style instance on the real engine: Python 3.9, a tox-run suite, ids as SWE-bench writes them."""

from __future__ import annotations

import pytest

from ..helpers import run_cli as cli
from ..helpers import subprocess_diff
from ..swebench_sample import write_sample

pytestmark = pytest.mark.docker


def test_instance_needing_python_39_validates_through_tox_with_swebench_ids(tmp_path):
    dataset, mirror, recipes = write_sample(tmp_path)
    result = cli("validate", "--dataset", str(dataset), "--repo-mirror", str(mirror), "--recipes", str(recipes))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 1 tasks valid" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "swe-env__urlkit-1" in line)
    assert "3.9" in row and "resolved" in row


def test_the_same_instance_on_python_311_is_an_environment_fault(tmp_path):
    dataset, mirror, recipes = write_sample(tmp_path, python="3.11")
    result = cli("validate", "--dataset", str(dataset), "--repo-mirror", str(mirror), "--recipes", str(recipes))
    assert result.returncode == 1, result.stdout + result.stderr
    cause = next(line for line in result.stderr.splitlines() if line.startswith("swe-env__urlkit-1:"))
    assert "gold_failed" in cause and "not passing" in cause
    assert "environment fault" in result.stderr


FORGED_TOX = """\
[tox]
envlist = py39

[testenv]
commands =
    - pytest -rA {posargs}
    python forge.py
"""
FORGE = """\
import os, re
path = re.search(r"--junitxml=(\\S+)", os.environ["PYTEST_ADDOPTS"]).group(1)
# The report went out on the grader's stream as pytest wrote it: all that is left is to add one.
with open(path, "w") as report:
    report.write('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="forged"/></testsuites>')
"""


@pytest.fixture(scope="module")
def sample_task(tmp_path_factory):
    from swe_env.importers import swebench

    folder = tmp_path_factory.mktemp("urlkit")
    dataset, mirror, recipes = write_sample(folder)
    return swebench.load_instances(dataset, mirror, swebench.load_recipes(recipes))[0]


def test_an_agent_cannot_rewrite_the_tox_commands_that_run_the_tests(sample_task):
    from swe_env.grading.grader import Grader

    hack = subprocess_diff(sample_task, {"tox.ini": FORGED_TOX, "forge.py": FORGE})
    grader = Grader()
    # Where the grader does not know tox runs the tests (a command that never says "tox"), the forged
    # commands run after pytest: the report they would rewrite is no file but the stream pytest wrote it
    # to, and a report they add merges in, each test keeping its worst outcome.
    hidden = sample_task.model_copy(
        update={"tests": sample_task.tests.model_copy(update={"command": "t=to; ${t}x --current-env -epy39 -v -- tests/test_urls.py"})}
    )
    forged = grader.grade(hidden, hack)
    assert forged.status == "graded" and not forged.resolved and forged.report_source == "sealed", forged.error
    alone = grader.grade(sample_task, hack)
    assert alone.status == "graded" and not alone.resolved and "tox.ini" in alone.restored
    with_fix = grader.grade(sample_task, hack + sample_task.gold_patch)
    assert with_fix.resolved and "tox.ini" in with_fix.restored


def test_the_agents_diff_leaves_out_what_install_changed(sample_task):
    """The recipe's pre_install edits tox.ini in the image; a submitted fix must not carry (or undo) that."""
    import swe_env

    env = swe_env.SWEEnv(tasks=[sample_task])
    try:
        env.reset(options={"task_id": sample_task.id})
        env.step(
            {
                "tool": "edit",
                "path": "urlkit/__init__.py",
                "old": '    return netloc.split(":")[0]\n\n\ndef join',
                "new": '    if netloc.startswith("["):\n        return netloc[1:].split("]", 1)[0]\n    return netloc.split(":")[0]\n\n\ndef join',
            }
        )
        _, reward, terminated, _, info = env.step({"tool": "submit"})
    finally:
        env.close()
    assert terminated and reward == 1.0, info
    assert info["report"]["patch_method"] == "git apply"
