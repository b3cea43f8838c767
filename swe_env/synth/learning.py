"""Learning a repository's suite once, before any candidate: which tests pass in every run (a test whose outcome
differs is flaky and never decides anything) and which repository functions each passing test enters (the only
functions a candidate changes).

How long learning may take: the untraced run is bounded like a grading (`Limits.grading_timeout`), and the traced
run relative to it (`TRACED_FACTOR` times the untraced run's seconds, at least the same bound), because its cost is
the suite's own time multiplied by the tracer's overhead, and the untraced run has just measured the suite's time on
this machine under its present load. A fixed bound for the traced run was too short for marshmallow's suite (about
1,200 tests) on a loaded 2-core machine and far too long to catch a hung suite on a small one. A bound per test is
not used: it needs a timer in the test process (pytest-timeout is not in every image), and a test cut short would
leave its reach half-known. `SynthConfig.learn_timeout` replaces both bounds; the run's deadline
(`max_minutes`) caps them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..grading import rule
from ..traces.host import TraceError
from ..traces.suite_run import SuiteTimeout
from .options import SynthConfig, SynthesisError
from .refs import is_test_path
from .suite import Worker

LEARN_RUNS = 2
TRACED_FACTOR = 20.0
"""The traced learning run may take this many times the untraced one (the tracer's measured cost in corpus mode is
1.6-7x an untraced run on a quiet machine; the rest is room for the load changing during the run)."""


@dataclass
class Suite:
    """What learning found: stable passing tests, flaky ones, and the tests reaching each function."""

    runs: list[dict[str, str]]
    output_tail: str
    passing: list[str]
    flaky: list[str]
    reaching: dict[tuple[str, str], set[str]]


def learn_bound(config: SynthConfig, default: float, untraced_seconds: float | None, left: float) -> tuple[float, str]:
    """The seconds one learning run may take and what set them (for the message when it runs out): the untraced
    run's (`untraced_seconds` None) or the traced run's (given the untraced run's seconds), `left` seconds before the
    run's deadline."""
    if config.learn_timeout:
        limit, why = config.learn_timeout, "--learn-timeout"
    elif untraced_seconds is not None and TRACED_FACTOR * untraced_seconds > default:
        limit, why = TRACED_FACTOR * untraced_seconds, f"{TRACED_FACTOR:g}x the untraced run's {untraced_seconds:.0f} s"
    else:
        limit, why = default, f"the default, {default:.0f} s"
    if left < limit:
        return max(1.0, left), "the time --max-minutes left"
    return limit, why


def learn(worker: Worker, config: SynthConfig, deadline: float = float("inf")) -> Suite:
    """Learn the suite in `worker`'s started container (`LEARN_RUNS` runs, the last one traced), each run within
    `learn_bound` and before `deadline` (`time.monotonic()`); a run out of time is a SynthesisError in one line."""
    default = worker.task.limits.grading_timeout
    why: list[str] = []

    def bound(untraced_seconds: float | None) -> float:
        limit, reason = learn_bound(config, default, untraced_seconds, deadline - time.monotonic())
        why.append(reason)
        return limit

    try:
        reach = worker.learn(runs=LEARN_RUNS, timeout=bound(None), traced_timeout=bound)
    except SuiteTimeout as exc:
        more = "more --max-minutes" if why[-1].endswith("--max-minutes left") else "a longer --learn-timeout SECONDS"
        raise SynthesisError(f"{config.repo}: learning the suite: {exc} (the bound: {why[-1]}); give {more}") from None
    except TraceError as exc:
        raise SynthesisError(f"{config.repo}: learning the suite: {exc}") from None
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
