"""How long learning a suite may take (`learning.learn_bound`, `--learn-timeout`), and a suite that cannot be learned
in time ending the run in one line, on the real engine.

The bounds are pure and unit-tested; the one engine test runs the CLI on a repository written here whose only test
sleeps well past the bound it is given.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swe_env.synth.learning import TRACED_FACTOR, learn_bound
from swe_env.synth.options import SynthConfig

from ..helpers import SAMPLE_PIP_PACKAGES
from ..helpers import run_cli as cli

INF = float("inf")


def _config(**fields) -> SynthConfig:
    return SynthConfig(repo="r", out=Path("/tmp/unused"), **fields)


def test_the_untraced_run_has_the_default_bound():
    assert learn_bound(_config(), 600.0, None, INF) == (600.0, "the default, 600 s")


def test_the_traced_run_scales_with_the_untraced_run_and_never_goes_below_the_default():
    slow = 120.0  # marshmallow's untraced run on a loaded machine: 20x is 40 minutes, not a fixed 10
    assert learn_bound(_config(), 600.0, slow, INF) == (TRACED_FACTOR * slow, f"{TRACED_FACTOR:g}x the untraced run's 120 s")
    assert learn_bound(_config(), 600.0, 2.0, INF) == (600.0, "the default, 600 s")  # a small suite: the default stands


def test_learn_timeout_replaces_both_bounds():
    config = _config(learn_timeout=45)
    assert learn_bound(config, 600.0, None, INF) == (45.0, "--learn-timeout")
    assert learn_bound(config, 600.0, 300.0, INF) == (45.0, "--learn-timeout")


def test_the_run_deadline_caps_learning():
    assert learn_bound(_config(), 600.0, 120.0, 90.0) == (90.0, "the time --max-minutes left")
    assert learn_bound(_config(learn_timeout=30), 600.0, None, 90.0) == (30.0, "--learn-timeout")
    assert learn_bound(_config(), 600.0, None, -5.0)[0] == 1.0  # past the deadline: a bound that ends it at once


def test_learn_timeout_must_be_positive():
    with pytest.raises(ValueError, match="learn_timeout"):
        _config(learn_timeout=0)


SLOW_REPO = {
    "slow/__init__.py": "def one():\n    return 1\n",
    "tests/test_slow.py": "import time\n\nfrom slow import one\n\n\ndef test_one():\n    time.sleep(60)\n    assert one() == 1\n",
}


def test_a_suite_that_cannot_be_learned_in_time_is_one_line_from_the_cli(tmp_path, docker_client):
    repo = tmp_path / "slow"
    for path, text in SLOW_REPO.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "slow"]):
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True)
    environment = tmp_path / "environment.yaml"
    environment.write_text(f"pip_packages: {list(SAMPLE_PIP_PACKAGES)!r}\n")
    result = cli("synthesize", "--repo", str(repo), "--environment", str(environment), "--out", str(tmp_path / "out"), "--learn-timeout", "3")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("error:") == 1, result.stderr
    assert (
        "learning the suite: the suite's untraced run did not finish within 3 s (the bound: --learn-timeout); give a longer --learn-timeout SECONDS"
    ) in result.stderr
    assert not list((tmp_path / "out").glob("*/task.yaml"))
