"""Fixtures shared by the grading tests: the runner samples (tests/runner_samples.py) as SWE-bench instances."""

from __future__ import annotations

import pytest

from swe_env.importers import swebench

from ..runner_samples import write_sample


def _sample(tmp_path_factory, name: str):
    dataset, mirror, recipes = write_sample(tmp_path_factory.mktemp(name), name)
    return swebench.load_instances(dataset, mirror, swebench.load_recipes(recipes))[0]


@pytest.fixture(scope="module")
def shelfkit(tmp_path_factory):
    """The Django sample: its runtests.py on the real Django 4.2 (one listed test fails, one errors before the fix)."""
    return _sample(tmp_path_factory, "shelfkit")


@pytest.fixture(scope="module")
def polykit(tmp_path_factory):
    """The sympy sample: its bin/test on the real sympy."""
    return _sample(tmp_path_factory, "polykit")
