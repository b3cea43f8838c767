"""Learning a repository's suite once, before any candidate: which tests pass in every run (a test whose outcome
differs is flaky and never decides anything) and which repository functions each passing test enters (the only
functions a candidate changes)."""

from __future__ import annotations

from dataclasses import dataclass

from ..grading import rule
from .refs import is_test_path
from .suite import Worker

LEARN_RUNS = 2


@dataclass
class Suite:
    """What learning found: stable passing tests, flaky ones, and the tests reaching each function."""

    runs: list[dict[str, str]]
    output_tail: str
    passing: list[str]
    flaky: list[str]
    reaching: dict[tuple[str, str], set[str]]


def learn(worker: Worker) -> Suite:
    """Learn the suite in `worker`'s started container (`LEARN_RUNS` runs, the last one traced)."""
    reach = worker.learn(runs=LEARN_RUNS)
    runs = reach.runs
    tests = sorted({test for run in runs for test in run})
    flaky = rule.flaky_tests(runs, tests)
    passing = [t for t in tests if t not in flaky and all(rule.status_in(run, t) == rule.PASSED for run in runs)]
    reaching: dict[tuple[str, str], set[str]] = {}
    stable = set(passing)
    for test, places in reach.reached.items():
        if test not in stable:
            continue
        for file, _line, function in places:
            if file.startswith("/") or not file.endswith(".py") or is_test_path(file):
                continue
            reaching.setdefault((file, function), set()).add(test)
    return Suite(runs, reach.output_tail, passing, flaky, reaching)
