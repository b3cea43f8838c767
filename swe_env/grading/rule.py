"""The one validation rule every task answers to, hand-written, imported or synthesized.

A task is valid when, over every run of its tests:

- each FAIL_TO_PASS test fails without the fix and passes with it;
- each PASS_TO_PASS test passes on both sides;
- no id is in both lists;
- the gold patch applies cleanly (`git apply`; applying only with 3-way merging or fuzz is a warning);
- no deciding test is flaky: one whose status differs between two runs of the same side.

Pure: the callers run the tests (`swe-env validate` through the grader, synthesis and `swe-env
tasks new` in their own containers) and hand the per-test statuses here. `check` judges a task's
lists; `derive` makes the lists from the runs of two sides (what `tasks new` and synthesis write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Outcomes = Mapping[str, str]
"""One run of the tests: test id -> status (passed, failed, error, skipped, missing)."""

PASSED = "passed"
CLEAN_APPLY = "git apply"
"""The application method (`GradingReport.patch_method`) that counts as clean."""


@dataclass
class RuleResult:
    """What the rule found; a task is valid when `violations` is empty."""

    violations: list[str] = field(default_factory=list)
    """One line each: what is wrong and with which test."""
    warnings: list[str] = field(default_factory=list)
    """Worth a look, not a reason to refuse (a gold patch that needs fuzz)."""
    flaky: list[str] = field(default_factory=list)
    """Deciding tests whose status differed between runs of the same side."""

    @property
    def valid(self) -> bool:
        return not self.violations


def status_in(run: Outcomes, test_id: str) -> str:
    """A test's status in one run; a test the run did not report is missing."""
    return run.get(test_id, "missing")


def flaky_tests(runs: Sequence[Outcomes], tests: Iterable[str]) -> list[str]:
    """The tests among `tests` whose status is not the same in every run of `runs`."""
    return sorted(test for test in tests if len({status_in(run, test) for run in runs}) > 1)


def check(
    fail_to_pass: Sequence[str],
    pass_to_pass: Sequence[str],
    without_fix: Sequence[Outcomes],
    with_fix: Sequence[Outcomes],
    gold_method: str | None = CLEAN_APPLY,
) -> RuleResult:
    """Judge a task's lists against runs of its tests without the fix and with it (each side at least once).

    `gold_method` is how the gold patch applied (None: it did not). A test is called flaky only
    from two runs of one side that disagree; with one run per side nothing is called flaky.
    """
    result = RuleResult()
    if gold_method is None:
        result.violations.append("the gold patch does not apply")
    elif gold_method != CLEAN_APPLY:
        result.warnings.append(f"the gold patch applies only with {gold_method}, not cleanly with git apply")
    both = sorted(set(fail_to_pass) & set(pass_to_pass))
    for test in both:
        result.violations.append(f"{test}: listed in both FAIL_TO_PASS and PASS_TO_PASS")
    deciding = [*fail_to_pass, *pass_to_pass]
    result.flaky = sorted(set(flaky_tests(without_fix, deciding)) | set(flaky_tests(with_fix, deciding)))
    for test in result.flaky:
        seen = sorted({status_in(run, test) for run in [*without_fix, *with_fix]})
        result.violations.append(f"{test}: flaky (statuses {'/'.join(seen)} in runs of the same side)")
    for test in fail_to_pass:
        if test in result.flaky or test in both:
            continue
        before, after = _first(without_fix, test), _first(with_fix, test)
        if before == PASSED:
            result.violations.append(f"{test}: FAIL_TO_PASS already passes without the fix")
        if after is not None and after != PASSED:
            result.violations.append(f"{test}: FAIL_TO_PASS does not pass with the fix ({after})")
    for test in pass_to_pass:
        if test in result.flaky or test in both:
            continue
        for side, runs in (("without", without_fix), ("with", with_fix)):
            status = _first(runs, test)
            if status is not None and status != PASSED:
                result.violations.append(f"{test}: PASS_TO_PASS does not pass {side} the fix ({status})")
    return result


def derive(
    without_fix: Sequence[Outcomes], with_fix: Sequence[Outcomes], among: Iterable[str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """FAIL_TO_PASS, PASS_TO_PASS and flaky tests from runs of both sides (the lists `check` then accepts).

    FAIL_TO_PASS: not passing in any run without the fix, passing in every run with it;
    PASS_TO_PASS: passing in every run of both sides; flaky: a status that differs between runs
    of one side (never in either list). Tests failing on both sides are in none. `among`
    limits the tests considered (default: every test any run reported).
    """
    runs = [*without_fix, *with_fix]
    tests = sorted(set(among) if among is not None else {test for run in runs for test in run})
    flaky = sorted(set(flaky_tests(without_fix, tests)) | set(flaky_tests(with_fix, tests)))
    fail_to_pass, pass_to_pass = [], []
    for test in tests:
        if test in flaky:
            continue
        before, after = _first(without_fix, test), _first(with_fix, test)
        if after == PASSED and before == PASSED:
            pass_to_pass.append(test)
        elif after == PASSED and before is not None:
            fail_to_pass.append(test)
    return fail_to_pass, pass_to_pass, flaky


def _first(runs: Sequence[Outcomes], test: str) -> str | None:
    """The test's status on one side (the first run's; the runs agree on it unless it is flaky); None with no runs."""
    return status_in(runs[0], test) if runs else None
