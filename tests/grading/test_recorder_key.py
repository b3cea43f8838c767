"""Django's and sympy's recorders: whose process holds the key (red team rt6b, S3) and what the runners' outcome
machinery calls in the standard library (rt6b, D3 and S2), on the host with the real sympy and on the real engine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from swe_env.grading import runners, seal

from ..helpers import UNITTEST_SUITE, django_stub, sealing_object, subprocess_diff
from ..runner_samples import SAMPLES, write_sample

RECORDER_FILES = ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py")


def sealed_run(tmp_path, sealed_by: str, runner: str, argv: list[str], patched: list[str], **more_env: str):
    """`argv` run in `tmp_path` as the grader runs a recorder's test command: the start-up module (and, for `native`,
    the native seal) first on PYTHONPATH, a key file, the runner's own environment (`runners.Runner.environment`)."""
    recorder = tmp_path / "recorder"
    recorder.mkdir(exist_ok=True)
    for name in RECORDER_FILES:
        (recorder / name).write_bytes((runners._REPORTER / name).read_bytes())
    shared = sealing_object(sealed_by)
    if shared:
        from swe_env.grading import native

        (recorder / native.FILE_NAME).write_bytes(shared)
    key = seal.new_key()
    (tmp_path / "run.key").write_bytes(seal.key_file(key, [str(tmp_path / path) for path in patched], False))
    results = tmp_path / "results"
    results.write_bytes(b"")
    own = runners.runner_named(runner).environment(str(results), str(tmp_path / "run.key"), str(tmp_path))
    env = {**os.environ, **own, "PYTHONPATH": f"{recorder}:{tmp_path}", **more_env}
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    return run, seal.read(results.read_bytes(), key, runner)


def write_files(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


# rt6b S3 (written anew): the library, imported by the test file before sympy's loop enters a test, starts a child
# Python that runs sympy's own runner on a file of do-nothing tests named like the test file's own.
CHILD_RUNS_A_SUITE_OF_ITS_OWN = """

def _helper_run(give=None):
    import os, re, subprocess, sys, tempfile

    if os.environ.get("POLYKIT_HELPER"):
        return
    names = []
    for arg in sys.argv[1:]:
        if arg.endswith(".py") and os.path.exists(arg):
            names += re.findall(r"^def (test_\\w+)\\(", open(arg).read(), re.M)
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "test_helper.py"), "w") as handle:
        handle.write("".join("def %s():\\n    pass\\n\\n\\n" % name for name in names))
    script = (
        "from sympy.testing.runtests import PyTestReporter, SymPyTests\\n"
        "r = PyTestReporter(verbose=False)\\nt = SymPyTests(r)\\nr.root_dir(%r)\\n"
        "t._testfiles.append(%r)\\nt.test(sort=True)\\n" % (folder, os.path.join(folder, "test_helper.py"))
    )
    env = dict(os.environ, POLYKIT_HELPER="1", **(give or {}))
    subprocess.run([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""


def polykit(tmp_path, library_tail: str) -> str:
    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    write_files(tmp_path, {**files, source: files[source] + library_tail})
    with open(tmp_path / SAMPLES["polykit"][3], "a") as tests:
        tests.write(SAMPLES["polykit"][4])
    return source


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_child_the_library_starts_cannot_take_the_key(tmp_path, sealed_by):
    pytest.importorskip("sympy")
    source = polykit(tmp_path, CHILD_RUNS_A_SUITE_OF_ITS_OWN + "\n_helper_run()\n")
    run, sealed = sealed_run(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "-C", SAMPLES["polykit"][3]], [source])
    assert sealed.results is not None and sealed.seal == sealed_by, (sealed.error, sealed.notes, run.stderr)
    by_id = sealed.results.by_id
    # The test command's own process recorded its own tests: the ones that fail before the fix failed.
    assert by_id["test_bivariate"] == "failed" and by_id["test_generators_inferred"] == "error", by_id
    assert by_id["test_univariate"] == "passed", by_id


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_child_given_the_graders_variables_is_flagged_and_writes_no_result(tmp_path, sealed_by):
    """The variables and the key file are gone before any repository code runs; a child the library hands them
    (the results path guessed, the key file's path made up) finds no key, writes nothing sealed, and its runner's
    announcement is flagged."""
    pytest.importorskip("sympy")
    give = {"SWE_ENV_RESULTS": str(tmp_path / "results"), "SWE_ENV_RUNNER": "sympy", "SWE_ENV_KEY": str(tmp_path / "run.key")}
    source = polykit(tmp_path, CHILD_RUNS_A_SUITE_OF_ITS_OWN + "\n_helper_run(%r)\n" % give)
    run, sealed = sealed_run(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "-C", SAMPLES["polykit"][3]], [source])
    assert sealed.results is not None, (sealed.error, run.stderr)
    assert sealed.results.by_id["test_bivariate"] == "failed", sealed.results.by_id
    assert any("a second process announced itself as the grader's sympy recorder" in flag for flag in sealed.flags), sealed.flags


# As sympy's `test()` (what sympy's bin/test calls) decides where its tests run, with polykit's tests.
SYMPY_TEST_ENTRY = """\
#!/usr/bin/env python
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, root)
from sympy.testing.runtests import run_in_subprocess_with_hash_randomization

ret = run_in_subprocess_with_hash_randomization("main", function_args=(root, sys.argv[1:]), module="polyrun")
if ret is False:  # no child (PYTHONHASHSEED is set): here
    import polyrun

    ret = polyrun.main(root, sys.argv[1:])
sys.exit(ret)
"""
POLYRUN = """\
import os


def main(root, paths):
    from sympy.testing.runtests import PyTestReporter, SymPyTests

    reporter = PyTestReporter(verbose=False)
    tests = SymPyTests(reporter)
    reporter.root_dir(root)
    tests._testfiles.extend(os.path.join(root, path) for path in paths)
    return 0 if tests.test(sort=True) else 1
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_sympys_own_test_function_runs_the_tests_in_the_process_that_holds_the_key(tmp_path, sealed_by):
    """sympy's `test()` re-runs the tests in a child for a hash seed unless PYTHONHASHSEED is set; the sympy runner's
    environment sets one, so the first process, which took the key, runs and records them."""
    pytest.importorskip("sympy")
    source = polykit(tmp_path, "")
    write_files(tmp_path, {"bin/test": SYMPY_TEST_ENTRY, "polyrun.py": POLYRUN})
    run, sealed = sealed_run(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", SAMPLES["polykit"][3]], [source])
    assert sealed.results is not None and sealed.flags == [], (sealed.error, sealed.flags, run.stdout[-2000:], run.stderr[-2000:])
    assert sealed.results.by_id["test_univariate"] == "passed" and sealed.results.by_id["test_bivariate"] == "failed"
    assert "PYTHONHASHSEED" in runners.runner_named("sympy").environment("r", "k", "w")


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_django_runs_record_in_the_first_process_and_its_children_get_no_variables(tmp_path, sealed_by):
    django_stub(tmp_path)
    probe = (
        "import os, subprocess, sys\nNAMES = ('SWE_ENV_RESULTS', 'SWE_ENV_RUNNER', 'SWE_ENV_KEY')\n"
        "CHILD = subprocess.run([sys.executable, '-c', 'import os; print([k for k in %r if k in os.environ])' % (NAMES,)],"
        " capture_output=True, text=True).stdout\n"
    )
    suite = (
        UNITTEST_SUITE
        + "\n\nclass Child(unittest.TestCase):\n    def test_child(self):\n        import lib\n        self.assertEqual(lib.CHILD.strip(), '[]')\n"
    )
    write_files(tmp_path, {"t_suite.py": "import django.test.runner\nimport lib\n" + suite, "lib.py": probe})
    run, sealed = sealed_run(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "t_suite"], [])
    assert sealed.results is not None and sealed.flags == [], (sealed.error, sealed.flags, run.stderr)
    assert sealed.results.by_id["test_child (t_suite.Child)"] == "passed", (sealed.results.by_id, run.stderr)


# rt6b D3 and S2 (written anew): the standard library class behind `@contextmanager` made to swallow the exception
# thrown into unittest's `testPartExecutor` (resumed as if nothing was raised) or sympy's `raise_on_deprecated`.
SWALLOWS_IN_CONTEXTLIB = """

def _quiet(names=("testPartExecutor", "raise_on_deprecated")):
    import contextlib

    plain = contextlib._GeneratorContextManager.__exit__

    def __exit__(self, typ, value, traceback):
        if typ is not None and getattr(getattr(self, "gen", None), "__name__", "") in names:
            try:
                next(self.gen)
            except StopIteration:
                pass
            return True
        return plain(self, typ, value, traceback)

    contextlib._GeneratorContextManager.__exit__ = __exit__


_quiet()
"""
# The same through `warnings.catch_warnings`, which sympy's `raise_on_deprecated` enters around the test.
SWALLOWS_IN_CATCH_WARNINGS = """

def _quiet():
    import warnings

    warnings.catch_warnings.__exit__ = lambda self, *exc: True


_quiet()
"""
# What honest suites do with these modules: warnings recorded and shown through logging, context managers of their own,
# `mock.patch` of a warnings function (undone before the outcome), subtests.
HONEST_STDLIB_USE = """

import contextlib
import logging
import unittest
import warnings
from unittest import mock


class Honest(unittest.TestCase):
    def test_warnings(self):
        logging.captureWarnings(True)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.warn("x")
        self.assertEqual(len(seen), 1)

    @mock.patch("warnings.warn")
    def test_patched(self, warn):
        warnings.warn("y")
        warn.assert_called_once()

    def test_context(self):
        @contextlib.contextmanager
        def managed():
            yield 1

        with managed() as value, contextlib.suppress(KeyError):
            self.assertEqual(value, 1)
            {}["k"]
        for i in range(2):
            with self.subTest(i=i):
                self.assertLess(i, 2)

    def test_fails(self):
        with contextlib.ExitStack():
            self.assertEqual(1, 2)
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize("attacked", [True, False])
def test_unittests_outcome_machinery_in_contextlib_is_compared_at_each_outcome(tmp_path, sealed_by, attacked):
    django_stub(tmp_path)
    lib = SWALLOWS_IN_CONTEXTLIB if attacked else "VALUE = 1\n"
    write_files(tmp_path, {"t_suite.py": "import django.test.runner\nimport lib\n" + UNITTEST_SUITE + HONEST_STDLIB_USE, "lib.py": lib})
    run, sealed = sealed_run(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "t_suite"], ["lib.py"])
    assert sealed.results is not None, (sealed.error, run.stderr)
    by_id = sealed.results.by_id
    if not attacked:  # honest uses of warnings, contextlib and mock: nothing flagged, every outcome as it was
        assert sealed.flags == [], sealed.flags
        assert by_id["test_fail (t_suite.T)"] == by_id["test_fails (t_suite.Honest)"] == "failed", by_id
        assert all(by_id["test_%s (t_suite.Honest)" % name] == "passed" for name in ("warnings", "patched", "context")), by_id
        return
    assert "failures" not in run.stderr.splitlines()[-1], run.stderr[-500:]  # unittest itself saw no failure
    assert any("_GeneratorContextManager.__exit__" in flag for flag in sealed.flags), sealed.flags


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize("library", ["contextlib", "catch_warnings"])
def test_sympys_outcome_machinery_in_the_standard_library_is_compared_at_each_outcome(tmp_path, sealed_by, library):
    pytest.importorskip("sympy")
    tail = SWALLOWS_IN_CONTEXTLIB if library == "contextlib" else SWALLOWS_IN_CATCH_WARNINGS
    source = polykit(tmp_path, tail)
    run, sealed = sealed_run(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "-C", SAMPLES["polykit"][3]], [source])
    assert sealed.results is not None, (sealed.error, run.stderr)
    why = "_GeneratorContextManager.__exit__" if library == "contextlib" else "catch_warnings.__exit__"
    assert any(why in flag for flag in sealed.flags), (sealed.flags, run.stdout[-1500:])


# S2 put back by itself: the library's function, called by the test, arms the swallowing `__exit__`, which puts the
# standard one back as it swallows, so every comparison (before the test, at its outcome) sees contextlib intact.
SWALLOWS_AND_PUTS_BACK = """

def _arm():
    import contextlib

    manager = contextlib._GeneratorContextManager
    plain = manager.__exit__

    def __exit__(self, typ, value, traceback):
        manager.__exit__ = plain
        if typ is not None and getattr(getattr(self, "gen", None), "__name__", "") == "raise_on_deprecated":
            return True
        return plain(self, typ, value, traceback)

    manager.__exit__ = __exit__


_plain_total_degree = total_degree


def total_degree(expr, *gens):
    _arm()
    return _plain_total_degree(expr, *gens)
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_sympy_test_whose_exception_is_swallowed_fails_however_briefly_the_swallower_was_there(tmp_path, sealed_by):
    pytest.importorskip("sympy")
    source = polykit(tmp_path, SWALLOWS_AND_PUTS_BACK)
    run, sealed = sealed_run(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "-C", SAMPLES["polykit"][3]], [source])
    assert sealed.results is not None, (sealed.error, run.stderr)
    assert sealed.results.by_id["test_bivariate"] == "failed" and sealed.results.by_id["test_generators_inferred"] == "error"
    assert sealed.results.by_id["test_univariate"] == "passed", sealed.results.by_id
    assert any("raise_on_deprecated swallowed the exception its test raised" in flag for flag in sealed.flags), sealed.flags


# D3 put back by itself: the library's function, called by the test, arms a `__exit__` that resumes unittest's
# `testPartExecutor` as if nothing was raised and puts the standard one back as it does.
PART_SWALLOWED_AND_PUT_BACK = """
def _arm():
    import contextlib

    manager = contextlib._GeneratorContextManager
    plain = manager.__exit__

    def __exit__(self, typ, value, traceback):
        if typ is not None and getattr(getattr(self, "gen", None), "__name__", "") == "testPartExecutor":
            manager.__exit__ = plain
            try:
                next(self.gen)
            except StopIteration:
                pass
            return True
        return plain(self, typ, value, traceback)

    manager.__exit__ = __exit__


def lookup(key):
    _arm()
    return {}[key]
"""
SUITE_CALLING_THE_LIBRARY = """
import unittest

import lib


class Lookups(unittest.TestCase):
    def test_missing(self):
        self.assertEqual(lib.lookup("k"), 1)

    def test_plain(self):
        self.assertEqual(1, 1)
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_unittest_part_swallowed_unrecorded_fails_however_briefly_the_swallower_was_there(tmp_path, sealed_by):
    django_stub(tmp_path)
    write_files(tmp_path, {"t_suite.py": "import django.test.runner\n" + SUITE_CALLING_THE_LIBRARY, "lib.py": PART_SWALLOWED_AND_PUT_BACK})
    run, sealed = sealed_run(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "t_suite"], ["lib.py"])
    assert sealed.results is not None, (sealed.error, run.stderr)
    assert "OK" in run.stderr.splitlines()[-1], run.stderr[-500:]  # unittest itself saw two passes
    assert any("testPartExecutor swallowed the exception the test raised (KeyError)" in flag for flag in sealed.flags), sealed.flags
    assert sealed.results.by_id["test_missing (t_suite.Lookups)"] == "failed", sealed.results.by_id
    assert sealed.results.by_id["test_plain (t_suite.Lookups)"] == "passed", sealed.results.by_id


ARMED_BY_SHELFKIT = """

_plain_mark, _plain_digits = shelf_mark, isbn_digits


def shelf_mark(author, year):
    _arm()
    return _plain_mark(author, year)


def isbn_digits(text):
    _arm()
    return _plain_digits(text)
"""


@pytest.fixture(scope="module")
def sample_tasks(tmp_path_factory):
    from swe_env.importers import swebench

    found = {}
    for name in ("shelfkit", "polykit"):
        dataset, mirror, recipes = write_sample(tmp_path_factory.mktemp(name), name)
        found[name] = swebench.load_instances(dataset, mirror, swebench.load_recipes(recipes))[0]
    return found


# What each library adds on the real engine, and what must be flagged (None: the attack only loses its reward).
ATTACKS = {
    "s3": ("polykit", CHILD_RUNS_A_SUITE_OF_ITS_OWN + "\n_helper_run()\n", None),
    "s2": ("polykit", SWALLOWS_IN_CONTEXTLIB, "_GeneratorContextManager.__exit__"),
    "d3": ("shelfkit", SWALLOWS_IN_CONTEXTLIB, "_GeneratorContextManager.__exit__"),
    "s2-put-back": ("polykit", SWALLOWS_AND_PUTS_BACK, "raise_on_deprecated swallowed the exception"),
    "d3-put-back": ("shelfkit", "\n" + PART_SWALLOWED_AND_PUT_BACK + ARMED_BY_SHELFKIT, "testPartExecutor swallowed the exception"),
}


@pytest.mark.docker
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_the_attack_scores_minus_one_on_the_real_engine(sample_tasks, attack):
    from swe_env.grading.grader import Grader

    name, tail, why = ATTACKS[attack]
    task = sample_tasks[name]
    files, source = SAMPLES[name][0], SAMPLES[name][1]
    report = Grader(reward_mode="signed", reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + tail}))
    assert report.status == "graded" and report.reward == -1.0, (report.test_results, report.error, report.tampering)
    if why is not None:
        assert any(why in flag for flag in report.tampering), report.tampering


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_the_samples_gold_patches_still_resolve_unflagged(sample_tasks, name):
    from swe_env.grading.grader import Grader

    task = sample_tasks[name]
    report = Grader(reward_mode="signed", reward_policy="strict").grade(task, task.gold_patch or "")
    assert report.resolved and report.reward == 1.0 and report.tampering == [], (report.test_results, report.error, report.tampering)
