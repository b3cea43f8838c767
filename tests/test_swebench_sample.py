"""A SWE-bench-style instance on the real engine: Python 3.9, a tox-run suite, ids as SWE-bench writes them."""

from __future__ import annotations

import pytest

from .swebench_sample import write_sample
from .test_evaluate import cli

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
