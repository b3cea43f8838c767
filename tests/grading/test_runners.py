"""Runners other than pytest: Django's runtests.py and sympy's bin/test, graded from the grader's recorder.

The recorder is tested on the host's own unittest; the samples run the real Django and sympy
from PyPI on the real engine, validated through the CLI and attacked as an agent would.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import pytest

from swe_env.grading import runners, seal
from swe_env.importers import swebench

from ..helpers import UNITTEST_SUITE, django_stub, sealing_object, subprocess_diff
from ..helpers import run_cli as cli
from ..runner_samples import write_sample

RECORDER_DIR = os.path.join(os.path.dirname(runners.__file__), "reporter")


# ---------------------------------------------------------------- reading results (no engine)


def _sealed_run(
    tmp_path, runner: str, argv: list[str], patched: list[str] = (), recorder=RECORDER_DIR, **more_env: str
) -> tuple[subprocess.CompletedProcess, seal.Sealed]:
    """Run `argv` in `tmp_path` with the grader's start-up module (from `recorder`) and a key, as the grader does
    (results to a file); `more_env` is added to the run's environment."""
    key = seal.new_key()
    (tmp_path / "run.key").write_bytes(seal.key_file(key, [str(tmp_path / p) for p in patched], False))
    results = tmp_path / "results"
    results.write_bytes(b"")
    env = {
        **os.environ,
        "PYTHONPATH": f"{recorder}:{tmp_path}",
        "SWE_ENV_RESULTS": str(results),
        "SWE_ENV_RUNNER": runner,
        "SWE_ENV_KEY": str(tmp_path / "run.key"),
        **more_env,
    }
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    return run, seal.read(results.read_bytes(), key, runner)


def test_each_runner_owns_its_files():
    assert runners.runner_named("pytest").protected_files("tox -e py39") == ["tox.ini"]
    assert runners.runner_named("pytest").protected_files("pytest tests") == []
    assert "tests/runtests.py" in runners.runner_named("django").protected_files("./tests/runtests.py")
    assert {"bin/test", "sympy/testing/runtests.py", "sympy/utilities/runtests.py"} <= set(
        runners.runner_named("sympy").protected_files("bin/test -C")
    )


def test_swebench_instances_get_their_runner_from_the_log_parser(tmp_path):
    record = {
        "instance_id": "o__r-1",
        "repo": "o/r",
        "base_commit": "a" * 40,
        "patch": "",
        "test_patch": "diff --git a/tests/forms/test_x.py b/tests/forms/test_x.py\n--- a/tests/forms/test_x.py\n"
        "+++ b/tests/forms/test_x.py\n@@ -1 +1 @@\n-a\n+b\n",
        "FAIL_TO_PASS": ["test_a (forms.test_x.T)"],
        "PASS_TO_PASS": [],
        "log_parser": "parse_log_django",
    }
    recipes = swebench.parse_recipes({"o/r": {"*": {"test_command": "./tests/runtests.py --parallel 1 {test_labels}"}}}, "r")
    task = swebench.instance_to_task(record, recipes)
    assert task.tests.runner == "django"
    assert task.tests.command == "./tests/runtests.py --parallel 1 forms.test_x"
    assert swebench.instance_to_task({**record, "log_parser": "parse_log_sympy"}, recipes).tests.runner == "sympy"
    assert swebench.instance_to_task({**record, "log_parser": "parse_log_pytest"}, recipes).tests.runner == "pytest"
    assert swebench.django_label("tests/a/b.py") == "a.b" and swebench.django_label("x/t.py") == "x.t"


# ---------------------------------------------------------------- the recorder under a real unittest


def test_the_recorder_writes_every_id_form_and_status_of_unittest_outcomes(tmp_path):
    (tmp_path / "t_suite.py").write_text("import django.test.runner\n" + UNITTEST_SUITE)
    django_stub(tmp_path)
    run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "-v", "t_suite"])
    assert "FAILED" in run.stderr  # the recorder changes no outcome
    assert sealed.error is None and sealed.flags == [], (sealed.error, sealed.flags)
    by_id = sealed.results.by_id
    assert by_id["test_ok (t_suite.T)"] == by_id["test_ok (t_suite.T.test_ok)"] == "passed"
    assert by_id["First line of the docstring."] == "passed"
    assert by_id["test_fail (t_suite.T)"] == "failed" and by_id["test_error (t_suite.T)"] == "error"
    assert by_id["test_skip (t_suite.T)"] == "skipped"
    assert by_id["test_expected (t_suite.T)"] == "failed"  # as SWE-bench's Django parser: not a pass
    assert by_id["test_subtests (t_suite.T)"] == "failed"  # one failing subtest fails its test


SWAPS_THE_RESULTS = """
import unittest.result as _result
_result.TestResult.addFailure = _result.TestResult.addSuccess
_result.TestResult.addError = _result.TestResult.addSuccess
"""


def test_code_that_rewires_the_recorders_hooks_is_not_believed(tmp_path):
    """A patched module that makes unittest report failures as successes through the recorder's own
    hooks: each such record is refused and flagged."""
    (tmp_path / "t_suite.py").write_text("import django.test.runner\nimport swapper\n" + UNITTEST_SUITE)
    (tmp_path / "swapper.py").write_text(SWAPS_THE_RESULTS)
    django_stub(tmp_path)
    _run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "t_suite"], patched=["swapper.py"])
    assert "test_fail (t_suite.T)" not in (sealed.results.by_id if sealed.results else {})
    assert any("TestResult.add" in flag for flag in sealed.flags), sealed.flags


REBINDS_THE_TESTS = """
import importlib
import sys


def rebind():
    for value in list(vars(sys.modules["t_suite"]).values()):
        if isinstance(value, type) and value.__name__ == "T":
            for key in list(vars(value)):
                if key.startswith("test"):
                    setattr(value, key, staticmethod(importlib.invalidate_caches))
"""


def test_a_test_whose_method_was_replaced_after_the_suite_was_built_fails_and_is_flagged(tmp_path):
    """rt4-C1's class on the host's unittest: the patch's code (run by an earlier test here, by a Django system
    check there) replaces every test method of a class with a standard-library function once the suite is built;
    unittest's own `run` then reports successes, with no frame of the patch's on the stack."""
    (tmp_path / "t_suite.py").write_text(
        "import django.test.runner\nimport rebinder\n"
        + UNITTEST_SUITE
        + """

class A(unittest.TestCase):
    def test_first(self):
        rebinder.rebind()
"""
    )
    (tmp_path / "rebinder.py").write_text(REBINDS_THE_TESTS)
    django_stub(tmp_path)
    run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "-v", "t_suite.A", "t_suite.T"], patched=["rebinder.py"])
    assert "test_fail (t_suite.T" in run.stderr and "ok" in run.stderr  # unittest itself saw successes
    by_id = sealed.results.by_id
    assert by_id["test_first (t_suite.A)"] == "passed"
    assert by_id["test_ok (t_suite.T)"] == by_id["test_fail (t_suite.T)"] == by_id["test_error (t_suite.T)"] == "failed"
    assert any("T.test_fail was changed after the suite was built" in flag for flag in sealed.flags), sealed.flags


def test_a_test_method_that_is_not_its_files_code_fails_and_is_flagged(tmp_path):
    """Bound before the suite was built (by the patch's code at import): the method is still not the test file's."""
    (tmp_path / "t_suite.py").write_text("import django.test.runner\n" + UNITTEST_SUITE + "\nimport rebinder\nrebinder.rebind()\n")
    (tmp_path / "rebinder.py").write_text(REBINDS_THE_TESTS)
    django_stub(tmp_path)
    _run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "t_suite"], patched=["rebinder.py"])
    assert sealed.results.by_id["test_ok (t_suite.T)"] == "failed"
    assert any("test_ok about to run is not code of its test file" in flag for flag in sealed.flags), sealed.flags


# Red team rt5, D1: the library wraps sys.stderr at import (the runner's stream, made later); when unittest's verbose
# result writes "test_x (module.Class...)" right after `startTest`'s check, the wrapper sets Class.test_x to a function
# that puts the original back and returns: unittest's `run` takes that method, the next check finds the class as it was.
WRITES_THE_METHOD_AWAY = """
import re
import sys


class _Progress(object):
    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def write(self, text):
        found = re.match(r"^(test\\w*) \\(([\\w.]+)\\)", text)
        if found:
            name, where = found.groups()
            parts = where.split(".")
            if parts[-1] == name:
                parts.pop()
            cls = getattr(sys.modules.get(".".join(parts[:-1])), parts[-1], None)
            if cls is not None and name in vars(cls):
                before = vars(cls)[name]

                def quick(self, *args, **kwargs):
                    setattr(cls, name, before)

                setattr(cls, name, quick)
        return self._stream.write(text)


sys.stderr = _Progress(sys.stderr)
"""

# The same route, once a test's "ok" is written (after its outcome was recorded): unittest's `TestCase.run` replaced
# for the next test by one that puts it back and reports a success without calling the test's method.
RUNS_NOTHING_NEXT = """
import sys
import unittest


class _Progress(object):
    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def write(self, text):
        if text == "ok":
            case = unittest.TestCase
            before = vars(case)["run"]

            def run(self, result=None):
                case.run = before
                result.startTest(self)
                result.addSuccess(self)
                result.stopTest(self)

            case.run = run
        return self._stream.write(text)


sys.stderr = _Progress(sys.stderr)
"""


# Legit: a setUp that patches a method of its own class (undone by its cleanup), between `startTest` and the call.
SETUP_PATCHES_ITS_CLASS = """

from unittest import mock


class P(unittest.TestCase):
    def helper(self):
        return 1

    def setUp(self):
        patcher = mock.patch.object(P, "helper", return_value=2)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_patched(self):
        self.assertEqual(self.helper(), 2)
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_test_method_replaced_after_the_check_and_put_back_fails_and_is_flagged(tmp_path, sealed_by):
    """unittest's call of the test's method (`TestCase._callTestMethod`, hooked) must get the function the class held
    when the suite was built, and a pass needs that call; the same suite without the library is unchanged."""
    from swe_env.grading import native

    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for name in ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py"):
        (recorder / name).write_bytes(open(os.path.join(RECORDER_DIR, name), "rb").read())
    data = sealing_object(sealed_by)
    if data:
        (recorder / native.FILE_NAME).write_bytes(data)
    for case, prelude, patched in [
        ("legit", "", []),
        ("attack", "import progress\n", ["progress.py"]),
        ("nothing run", "import progress\n", ["progress.py"]),
    ]:
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        (folder / "t_suite.py").write_text(
            "import django.test.runner\n" + prelude + UNITTEST_SUITE + (SETUP_PATCHES_ITS_CLASS if case == "legit" else "")
        )
        (folder / "progress.py").write_text(RUNS_NOTHING_NEXT if case == "nothing run" else WRITES_THE_METHOD_AWAY)
        django_stub(folder)
        run, sealed = _sealed_run(folder, "django", [sys.executable, "-m", "unittest", "-v", "t_suite"], patched, recorder)
        assert sealed.seal == sealed_by and sealed.results is not None, (sealed.error, sealed.notes)
        by_id = sealed.results.by_id
        if case == "legit":
            assert sealed.flags == [], sealed.flags
            assert by_id["test_ok (t_suite.T)"] == "passed" and by_id["test_fail (t_suite.T)"] == "failed"
            assert by_id["test_patched (t_suite.P)"] == "passed", by_id
            continue
        if case == "nothing run":  # every test after the first: a success reported by other code than unittest's run
            assert by_id.get("test_fail (t_suite.T)") != "passed" or sealed_by == "native", by_id  # failed or missing
            assert any("never called through unittest's _callTestMethod in test_fail (t_suite.T)" in flag for flag in sealed.flags), sealed.flags
            continue
        assert "test_fail (t_suite.T.test_fail) ... ok" in run.stderr, run.stderr  # unittest itself saw a success
        if sealed_by == "python":  # the pure-Python seal writes the records itself
            assert by_id["test_fail (t_suite.T)"] == by_id["test_error (t_suite.T)"] == "failed", by_id
        assert any("another function than the test's class held for test_fail in test_fail (t_suite.T)" in flag for flag in sealed.flags), (
            sealed.flags
        )


# Red team rt5, D2: imported from the top of the test module (half-imported), the library runs a fresh copy of it
# through its own spec's loader (the import system's compile of the file's own bytes), replaces every test method of
# the copy's classes by code it compiles under the test file's own name, and puts the copy in `sys.modules` (the outer
# import returns that): the suite is built from the copy, so no check after `addTest` sees a change.
RUNS_THE_TEST_MODULE_AGAIN = """
import importlib.util
import sys
import unittest


def settle():
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        path = getattr(module, "__file__", None) or ""
        if spec is None or not getattr(spec, "_initializing", False) or not path.endswith("t_suite.py"):
            continue
        fresh = importlib.util.module_from_spec(spec)
        sys.modules[name] = fresh
        spec.loader.exec_module(fresh)
        for value in list(vars(fresh).values()):
            if isinstance(value, type) and issubclass(value, unittest.TestCase) and value.__module__ == name:
                for key in list(vars(value)):
                    if key.startswith("test"):
                        space = {}
                        exec(compile("\\n" * 3 + "def %s(self):\\n    pass\\n" % key, path, "exec"), space)
                        space[key].__doc__ = getattr(vars(value)[key], "__doc__", None)
                        setattr(value, key, space[key])


settle()
"""

# The same copy run again, its methods left as its import made them: the tests are the test file's own code.
RUNS_IT_AGAIN_ONLY = RUNS_THE_TEST_MODULE_AGAIN.split("        for value in")[0] + "\n\nsettle()\n"


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_test_methods_compiled_under_the_test_files_name_in_a_second_run_fail_and_are_flagged(tmp_path, sealed_by):
    from swe_env.grading import native

    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for name in ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py"):
        (recorder / name).write_bytes(open(os.path.join(RECORDER_DIR, name), "rb").read())
    data = sealing_object(sealed_by)
    if data:
        (recorder / native.FILE_NAME).write_bytes(data)
    into_its_dict = RUNS_THE_TEST_MODULE_AGAIN.replace("space = {}", "space = vars(fresh)")  # the module's own globals
    for case, library in [
        ("run again", RUNS_IT_AGAIN_ONLY),
        ("test file in the diff", ""),
        ("attack", RUNS_THE_TEST_MODULE_AGAIN),
        ("attack in its dict", into_its_dict),
    ]:
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        (folder / "t_suite.py").write_text("import django.test.runner\nimport settler\n" + UNITTEST_SUITE)
        (folder / "settler.py").write_text(library)
        django_stub(folder)
        patched = ["settler.py"] + (["t_suite.py"] if case == "test file in the diff" else [])
        run, sealed = _sealed_run(folder, "django", [sys.executable, "-m", "unittest", "-v", "t_suite"], patched, recorder)
        assert sealed.seal == sealed_by and sealed.results is not None, (sealed.error, sealed.notes)
        by_id = sealed.results.by_id
        if case == "run again":  # a module run twice by the import system: its own code (each copy's)
            assert not any("test method" in flag for flag in sealed.flags), sealed.flags
            assert by_id["test_ok (t_suite.T)"] == "passed" and by_id["test_fail (t_suite.T)"] == "failed", by_id
            continue
        if case == "test file in the diff":  # a test class the agent's diff wrote (rt6b, D1): the patch's, not a test file's
            assert any("the test class t_suite.T is the patch's code" in flag for flag in sealed.flags), sealed.flags
            assert by_id["test_ok (t_suite.T)"] == "failed" and by_id["test_fail (t_suite.T)"] == "failed", by_id
            continue
        assert "test_fail (t_suite.T.test_fail) ... ok" in run.stderr or "test_fail (t_suite.T) ... ok" in run.stderr, run.stderr
        assert by_id["test_fail (t_suite.T)"] == by_id["test_error (t_suite.T)"] == "failed", by_id
        assert any("test_fail about to run is not a def its test file's code made" in flag for flag in sealed.flags), sealed.flags


# Red team rt5, S2: the library replaces `inspect.isfunction`; sympy's runner calls it on each `test_*` value of the
# namespace it exec'd the test file in, and the replacement rebinds every test it does not know to a copy of a passing
# test's code under the new test's name (sympy reports `f.__name__`; same file, same globals).
REBINDS_GATHERED_TESTS = """


def _prefer_plain_functions():
    import inspect
    import types

    plain = inspect.isfunction
    seen = set()
    known = ("test_univariate", "test_not_a_polynomial", "test_negative_powers")

    def isfunction(obj):
        space = getattr(obj, "__globals__", None)
        if type(space) is dict and id(space) not in seen and known[0] in space:
            seen.add(id(space))
            model = space[known[0]]
            for name, value in list(space.items()):
                if name.startswith("test_") and name not in known and plain(value):
                    space[name] = types.FunctionType(model.__code__, space, name)
        return plain(obj)

    inspect.isfunction = isfunction


_prefer_plain_functions()
"""


# What sympy's own suite does (`_both_exp_pow` in its test files): a test file's own decorator that copies the name.
OWN_DECORATOR_AND_ALIAS = """


def _twice(func):
    def wrapper():
        func()
        func()

    wrapper.__name__ = func.__name__
    return wrapper


@_twice
def test_decorated_here():
    assert total_degree(x, x) == 1


test_alias = test_univariate
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_sympy_tests_rebound_to_another_tests_code_fail_and_are_flagged(tmp_path, sealed_by):
    pytest.importorskip("sympy")
    from swe_env.grading import native

    from ..runner_samples import POLY_NEW_TESTS, POLYKIT, POLYKIT_FIXED, SYMPY_FILES

    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for name in ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py"):
        (recorder / name).write_bytes(open(os.path.join(RECORDER_DIR, name), "rb").read())
    data = sealing_object(sealed_by)
    if data:
        (recorder / native.FILE_NAME).write_bytes(data)
    for case, library in [("fixed", POLYKIT_FIXED), ("attack", POLYKIT + REBINDS_GATHERED_TESTS)]:
        folder = tmp_path / case
        for name, text in SYMPY_FILES.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
        (folder / "polykit/__init__.py").write_text(library)
        with open(folder / "polykit/tests/test_degree.py", "a") as tests:
            tests.write(POLY_NEW_TESTS + (OWN_DECORATOR_AND_ALIAS if case == "fixed" else ""))
        run, sealed = _sealed_run(
            folder,
            "sympy",
            [sys.executable, "bin/test", "-C", "--verbose", "polykit/tests/test_degree.py"],
            ["polykit/__init__.py"],
            recorder,
            PYTHONWARNINGS="ignore::UserWarning,ignore::SyntaxWarning",
        )
        assert sealed.seal == sealed_by and sealed.results is not None, (sealed.error, sealed.notes, run.stdout, run.stderr)
        by_id = sealed.results.by_id
        if case == "fixed":  # sympy's XFAIL wrapper holds its test in its closure: looked into, believed
            assert sealed.flags == [], sealed.flags
            assert by_id["test_bivariate"] == by_id["test_univariate"] == by_id["test_decorated_here"] == "passed", by_id
            continue
        assert "test_bivariate ok" in run.stdout or "[OK]" in run.stdout, run.stdout  # sympy itself saw passes
        assert by_id["test_bivariate"] == by_id["test_generators_inferred"] == "failed", by_id
        assert by_id["test_univariate"] == "passed", by_id
        assert any("is not the def its test file made under that name" in flag and "test_bivariate" in flag for flag in sealed.flags), sealed.flags


CONVERTS_ASYNC_TESTS = """
import asyncio
import unittest

from asgiref.sync import AsyncToSync


class AsyncCase(unittest.TestCase):
    def __call__(self, result=None):  # as Django's SimpleTestCase._setup_and_call, before unittest's run
        method = getattr(self, self._testMethodName)
        if asyncio.iscoroutinefunction(method):
            setattr(self, self._testMethodName, AsyncToSync(method))
        return super().__call__(result)


class T(AsyncCase):
    async def test_async(self):
        pass

    async def test_async_fails(self):
        self.assertEqual(1, 2)
"""
FAKE_ASGIREF = """
import asyncio


class AsyncToSync:
    def __init__(self, awaitable):
        self.awaitable = awaitable

    def __call__(self, *args):
        return asyncio.run(self.awaitable(*args))
"""


def test_djangos_conversion_of_async_tests_is_not_tampering(tmp_path):
    (tmp_path / "t_async.py").write_text("import django.test.runner\n" + CONVERTS_ASYNC_TESTS)
    (tmp_path / "asgiref").mkdir()
    (tmp_path / "asgiref" / "__init__.py").write_text("")
    (tmp_path / "asgiref" / "sync.py").write_text(FAKE_ASGIREF)
    django_stub(tmp_path)
    _run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "t_async"])
    assert sealed.flags == [], sealed.flags
    assert sealed.results.by_id["test_async (t_async.T)"] == "passed"
    assert sealed.results.by_id["test_async_fails (t_async.T)"] == "failed"


# Django's serializers tests (`tests/serializers/tests.py`'s `register_tests`): one test per serializer format, each a
# `functools.partialmethod` of a def of the test file set on the class at import (django__django-12209, calib6). unittest
# calls the `functools.partial` the partialmethod gives the test; its description line is the partial's docstring.
REGISTERS_PARTIAL_TESTS = """
from functools import partialmethod


class F(unittest.TestCase):
    pass


def format_test(self, format):
    self.assertEqual(format, "json")


for format in ("json", "xml"):
    setattr(F, "test_%s_format" % format, partialmethod(format_test, format))
"""

# The patch's code, from an earlier test (a Django system check there), sets each partialmethod's func to a no-op
# after the suite was built: the class still holds the same partialmethod object.
REPOINTS_THE_PARTIALS = """
import functools
import sys


def repoint():
    for value in list(vars(sys.modules["t_suite"]).values()):
        if isinstance(value, type) and value.__name__ == "F":
            for key, held in list(vars(value).items()):
                if isinstance(held, functools.partialmethod):
                    held.func = lambda self, *args: None
"""


def test_partialmethod_tests_of_the_test_file_are_not_tampering(tmp_path):
    (tmp_path / "t_suite.py").write_text("import django.test.runner\n" + UNITTEST_SUITE + REGISTERS_PARTIAL_TESTS)
    django_stub(tmp_path)
    _run, sealed = _sealed_run(tmp_path, "django", [sys.executable, "-m", "unittest", "-v", "t_suite"])
    assert sealed.flags == [], sealed.flags
    assert sealed.results.by_id["test_json_format (t_suite.F)"] == "passed", sealed.results.by_id
    assert sealed.results.by_id["test_xml_format (t_suite.F)"] == "failed"
    # The id SWE-bench lists for such a test: its description line, functools.partial's docstring (the worst of both).
    description = functools.partial.__doc__.strip().split("\n")[0].strip()
    assert sealed.results.by_id[description] == "failed", sealed.results.by_id


def test_a_partialmethod_test_pointed_elsewhere_fails_and_is_flagged(tmp_path):
    """After the suite was built (the same partialmethod object, another func) or before (a partialmethod of the
    patch's function set by the patch's code at import): neither runs the test file's own def."""
    for case in ("after", "before"):
        folder = tmp_path / case
        folder.mkdir()
        if case == "after":
            suite = REGISTERS_PARTIAL_TESTS + "\n\nclass A(unittest.TestCase):\n    def test_first(self):\n        repointer.repoint()\n"
            (folder / "repointer.py").write_text(REPOINTS_THE_PARTIALS)
            argv = [sys.executable, "-m", "unittest", "-v", "t_suite.A", "t_suite.F"]
        else:
            suite = REGISTERS_PARTIAL_TESTS.replace("partialmethod(format_test", "partialmethod(repointer.passes")
            (folder / "repointer.py").write_text("def passes(self, *args):\n    pass\n")
            argv = [sys.executable, "-m", "unittest", "-v", "t_suite"]
        (folder / "t_suite.py").write_text("import django.test.runner\nimport repointer\n" + UNITTEST_SUITE + suite)
        django_stub(folder)
        run, sealed = _sealed_run(folder, "django", argv, patched=["repointer.py"])
        assert "test_xml_format (t_suite.F" in run.stderr and "ok" in run.stderr, run.stderr  # unittest saw a success
        assert sealed.results.by_id["test_xml_format (t_suite.F)"] == "failed", (case, sealed.results.by_id)
        why = "another function than the test's class held for test_xml_format" if case == "after" else "test_xml_format about to run is not code"
        assert any(why in flag for flag in sealed.flags), (case, sealed.flags)


def test_a_second_process_finds_no_key(tmp_path):
    (tmp_path / "t_suite.py").write_text("import django.test.runner\n" + UNITTEST_SUITE)
    django_stub(tmp_path)
    run, sealed = _sealed_run(tmp_path, "django", ["/bin/sh", "-c", f"{sys.executable} -m unittest t_suite; {sys.executable} -m unittest t_suite"])
    assert run.stderr.count("Ran 7 tests") == 2
    assert sealed.error is None and sealed.results.by_id["test_ok (t_suite.T)"] == "passed"


def test_the_recorder_is_inert_without_its_variables(tmp_path):
    (tmp_path / "t_suite.py").write_text(UNITTEST_SUITE)
    env = {**os.environ, "PYTHONPATH": RECORDER_DIR}
    for name in ("SWE_ENV_RESULTS", "SWE_ENV_KEY"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "unittest", "t_suite"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "Ran 7 tests" in run.stderr and list(tmp_path.iterdir()) == [tmp_path / "t_suite.py"]


# ---------------------------------------------------------------- the samples on the real engine


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    found = {}
    for name in ("shelfkit", "polykit"):
        folder = tmp_path_factory.mktemp(name)
        dataset, mirror, recipes = write_sample(folder, name)
        found[name] = (dataset, mirror, recipes, swebench.load_instances(dataset, mirror, swebench.load_recipes(recipes))[0])
    return found


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_the_sample_validates_through_the_cli(samples, name):
    dataset, mirror, recipes, _ = samples[name]
    result = cli("validate", "--dataset", str(dataset), "--repo-mirror", str(mirror), "--recipes", str(recipes))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 1 tasks valid" in result.stdout


@pytest.fixture(scope="module")
def grader():
    from swe_env.grading.grader import Grader

    return Grader()


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_before_the_fix_one_listed_test_fails_and_one_errors(samples, grader, name):
    task = samples[name][3]
    report = grader.grade(task, "")
    assert report.status == "graded" and report.report_source == "recorder" and not report.resolved
    assert [report.test_results[t] for t in task.tests.fail_to_pass] == ["failed", "error"]
    assert all(report.test_results[t] == "passed" for t in task.tests.pass_to_pass)


PRINTS_FAKE_RESULTS = {
    "shelfkit": (
        "shelfkit/__init__.py",
        "print('test_x_check_digit (shelf.tests.IsbnCheckDigitTests) ... ok')\nprint(\"The shelf mark is made from the author's surname. ... ok\")\n",
    ),
    "polykit": ("polykit/__init__.py", "print('test_bivariate ok')\nprint('test_generators_inferred ok')\n"),
}


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_printed_results_count_for_nothing(samples, grader, name):
    from ..runner_samples import SAMPLES

    task = samples[name][3]
    path, printing = PRINTS_FAKE_RESULTS[name]
    files = SAMPLES[name][0]
    report = grader.grade(task, subprocess_diff(task, {path: files[path] + printing}))
    assert report.status == "graded" and not report.resolved


# rt4-C1: a Django system check (ordinary code of the library's, run by DiscoverRunner.run_tests after the suite is
# built and before it runs) turns every test method into a standard-library no-op. rt4-S1: the library aliases the
# running sympy reporter's failure methods to its (hooked) test_pass. Neither knows the hidden tests' names.
REBINDS_FROM_A_CHECK = """

def _register_checks():
    try:
        from django.core import checks
    except ImportError:
        return

    @checks.register
    def _catalogue_check(app_configs=None, **kwargs):
        import importlib
        import os
        import sys
        here = os.getcwd() + os.sep
        base = sys.modules["unittest"].TestCase
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None) or ""
            if not path.startswith(here) or not os.path.basename(path).startswith("test"):
                continue
            for value in list(vars(module).values()):
                if isinstance(value, type) and issubclass(value, base):
                    for key in list(vars(value)):
                        if key.startswith("test"):
                            setattr(value, key, staticmethod(importlib.invalidate_caches))
        return []


_register_checks()
"""
ALIASES_THE_REPORTER = """

def _quiet_progress():
    import sys
    session = getattr(sys.modules.get("__main__"), "reporter", None)
    done = getattr(session, "test" + "_pass", None)
    if done is not None:
        for name in ("fail", "exception"):
            setattr(session, "test_" + name, done)


_quiet_progress()
"""
OUTCOME_FORGERIES = {
    "shelfkit": (REBINDS_FROM_A_CHECK, "was changed after the suite was built"),
    "polykit": (ALIASES_THE_REPORTER, "test_fail was set on the reporter itself"),
}


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_tests_replaced_or_outcomes_redirected_by_the_library_fail_and_are_flagged(samples, grader, name):
    from ..runner_samples import SAMPLES

    task = samples[name][3]
    files, source = SAMPLES[name][0], SAMPLES[name][1]
    code, why = OUTCOME_FORGERIES[name]
    alone = grader.grade(task, subprocess_diff(task, {source: files[source] + code}))
    assert alone.status == "graded" and not alone.resolved, alone.test_results
    assert all(alone.test_results[t] == "failed" for t in task.tests.fail_to_pass), alone.test_results
    assert any(why in flag for flag in alone.tampering), alone.tampering
    gold = grader.grade(task, task.gold_patch or "")  # the real fix: resolved, nothing flagged
    assert gold.resolved and gold.tampering == [], (gold.test_results, gold.tampering)


FAKE_BIN_TEST = textwrap.dedent("""\
    #!/usr/bin/env python
    import json, os
    with open(os.environ["SWE_ENV_RESULTS"], "a") as out:
        for name in ["test_bivariate", "test_generators_inferred", "test_univariate", "test_not_a_polynomial"]:
            out.write(json.dumps({"ids": [name], "status": "passed"}) + "\\n")
    """)


@pytest.mark.docker
def test_an_agent_cannot_replace_sympys_runner(samples, grader, monkeypatch):
    task = samples["polykit"][3]
    hack = subprocess_diff(task, {"bin/test": FAKE_BIN_TEST})
    with monkeypatch.context() as patched:  # where nothing restores the runner, its lines are still not sealed
        patched.setattr(runners.SympyRunner, "owned_files", ())
        unprotected = grader.grade(task, hack)
        # The key is taken at start-up (rt6b S3): the fake runner's process writes its begin and end, and no result.
        assert not unprotected.resolved and unprotected.report_source in ("none", "recorder"), unprotected.error
        assert not any(status == "passed" for status in unprotected.test_results.values()), unprotected.test_results
    alone = grader.grade(task, hack)
    assert alone.status == "graded" and not alone.resolved and "bin/test" in alone.restored
    with_fix = grader.grade(task, _combined(task, {"bin/test": FAKE_BIN_TEST}))
    assert with_fix.resolved and "bin/test" in with_fix.restored


GREEN_RUNNER = textwrap.dedent('''\
    import unittest

    from django.test.runner import DiscoverRunner


    def _flat(suite):
        for test in suite:
            if isinstance(test, unittest.TestSuite):
                yield from _flat(test)
            else:
                yield test


    class AllGreen(DiscoverRunner):
        """Reports every collected test as a success without running it."""

        def run_suite(self, suite, **kwargs):
            result = unittest.TestResult()
            for test in _flat(suite):
                result.addSuccess(test)
            return result
    ''')


@pytest.mark.docker
def test_an_agent_cannot_point_djangos_settings_at_its_own_runner(samples, grader, monkeypatch):
    from ..runner_samples import TEST_SQLITE

    task = samples["shelfkit"][3]
    files = {"tests/test_sqlite.py": TEST_SQLITE + 'TEST_RUNNER = "shelfkit.green.AllGreen"\n', "shelfkit/green.py": GREEN_RUNNER}
    with monkeypatch.context() as patched:  # where nothing restores the settings, the sealed hook refuses
        patched.setattr(runners.DjangoRunner, "owned_files", ())  # outcomes handed over by the agent's runner
        hidden = task.model_copy(update={"tests": task.tests.model_copy(update={"protected": []})})
        unprotected = grader.grade(hidden, subprocess_diff(task, files))
        assert not unprotected.resolved and any("patch changed on the stack" in f for f in unprotected.tampering), (
            unprotected.error,
            unprotected.tampering,
        )
    alone = grader.grade(task, subprocess_diff(task, files))
    assert alone.status == "graded" and not alone.resolved and "tests/test_sqlite.py" in alone.restored
    with_fix = grader.grade(task, _combined(task, files))
    assert with_fix.resolved and "tests/test_sqlite.py" in with_fix.restored


def _combined(task, files: dict[str, str]) -> str:
    """The hack's files plus the gold fix, as one diff."""
    from ..runner_samples import SAMPLES

    name = task.id.removeprefix("swe-env__").rsplit("-", 1)[0]
    _, source, fixed, *_ = SAMPLES[name]
    return subprocess_diff(task, {**files, source: fixed})


def test_the_builtin_django_recipes_use_the_django_runner():
    recipes = swebench.builtin_recipes()["django/django"]
    assert {recipe.runner for recipe in recipes.values()} == {"django"}
    assert recipes["4.2"].python == "3.9" and recipes["5.0"].python == "3.11"


@pytest.mark.docker
def test_a_test_method_replaced_after_the_check_fails_and_is_flagged_on_django(samples):
    """rt5's D1 on the real Django sample: the library's stderr wrapper replaces each test method when the runner writes
    its name (after `startTest`'s check) and the method puts itself back; unittest's call of it is checked."""
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    task = samples["shelfkit"][3]
    files, source = SAMPLES["shelfkit"][0], SAMPLES["shelfkit"][1]
    report = Grader(reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + WRITES_THE_METHOD_AWAY}))
    assert report.status == "graded" and report.reward == 0.0, (report.test_results, report.tampering)
    assert all(report.test_results[t] == "failed" for t in task.tests.fail_to_pass), report.test_results
    assert any("another function than the test's class held" in flag for flag in report.tampering), report.tampering


# Hidden tests as Django's serializers tests make theirs (django__django-12209): a def of the test file per year, set on
# an empty class as `functools.partialmethod`s.
PARTIAL_SHELF_TESTS = """

from functools import partialmethod  # noqa: E402


def surname_year_test(self, year):
    self.assertEqual(shelf_mark("Ada Lovelace", year), "LOV-%d" % year)


class YearTests(SimpleTestCase):
    pass


for year in (1843, 1852):
    setattr(YearTests, "test_year_%d" % year, partialmethod(surname_year_test, year))
"""

# A Django system check of the library's (run after the suite is built) points every partialmethod of a test class at
# a no-op: the class holds the same objects, their func is another.
REPOINTS_FROM_A_CHECK = """

def _register_checks():
    try:
        from django.core import checks
    except ImportError:
        return

    @checks.register
    def _catalogue_check(app_configs=None, **kwargs):
        import functools
        import sys
        base = sys.modules["unittest"].TestCase
        for module in list(sys.modules.values()):
            for value in list(vars(module).values()):
                if isinstance(value, type) and issubclass(value, base) and value.__module__ == getattr(module, "__name__", None):
                    for held in list(vars(value).values()):
                        if isinstance(held, functools.partialmethod):
                            held.func = lambda self, *args: None
        return []


_register_checks()
"""


@pytest.mark.docker
def test_partialmethod_tests_pass_with_the_fix_and_cannot_be_repointed_on_django(samples):
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES, SHELF_NEW_TESTS, SHELF_TESTS

    task = samples["shelfkit"][3]
    source = SAMPLES["shelfkit"][1]
    listed = ["test_year_1843 (shelf.tests.YearTests)", "test_year_1852 (shelf.tests.YearTests)"]
    hidden_patch = subprocess_diff(task, {"tests/shelf/tests.py": SHELF_TESTS + SHELF_NEW_TESTS + PARTIAL_SHELF_TESTS})
    tests = task.tests.model_copy(update={"test_patch": hidden_patch, "fail_to_pass": task.tests.fail_to_pass + listed})
    partial_task = task.model_copy(update={"tests": tests})
    grader = Grader(reward_policy="strict")
    gold = grader.grade(partial_task, task.gold_patch or "")
    assert gold.resolved and gold.reward == 1.0 and gold.tampering == [], (gold.test_results, gold.tampering)
    repointed = grader.grade(partial_task, subprocess_diff(task, {source: SAMPLES["shelfkit"][2] + REPOINTS_FROM_A_CHECK}))
    assert repointed.status == "graded" and repointed.reward == 0.0, (repointed.test_results, repointed.tampering)
    assert all(repointed.test_results[t] == "failed" for t in listed), repointed.test_results
    assert any("another function than the test's class held for test_year_1843" in flag for flag in repointed.tampering), repointed.tampering


# ---------------------------------------------------------------- class D: the runners' module namespaces (rt5 D3, S3)

# rt5 D3: `_Outcome` rebound in unittest.case's module dict (what `TestCase.run` looks up at call time), for good.
REBINDS_UNITTESTS_OUTCOME = """

def _tolerant_checks():
    import contextlib
    import unittest.case as case

    class _Outcome(case._Outcome):
        @contextlib.contextmanager
        def testPartExecutor(self, test_case, subTest=False, isTest=False):
            try:
                yield
            except Exception:
                pass

    vars(case)["_Outcome"] = _Outcome


_tolerant_checks()
"""
# rt5 S3: sympy's `raise_on_deprecated` (its test loop's `with` around each test) rebound in the runner's module dict.
REBINDS_SYMPYS_RUNNER_GLOBAL = """

def _quiet_deprecations():
    import contextlib
    import sys

    runner = sys.modules.get("sympy.testing.runtests")
    if runner is None:
        return

    @contextlib.contextmanager
    def relaxed():
        try:
            yield
        except Exception:
            pass

    vars(runner)["raise_on_deprecated"] = relaxed


_quiet_deprecations()
"""
NAMESPACE_FORGERIES = {
    "shelfkit": (REBINDS_UNITTESTS_OUTCOME, "unittest.case._Outcome"),
    "polykit": (REBINDS_SYMPYS_RUNNER_GLOBAL, "sympy.testing.runtests.raise_on_deprecated"),
}


def _sealed_run_by(tmp_path, sealed_by: str, runner: str, argv: list[str], patched: list[str] = ()) -> seal.Sealed:
    """`_sealed_run` with the recorder copied next to the run and, for `native`, the native seal shipped with it."""
    from ..helpers import sealing_object

    recorder = tmp_path / "recorder"
    recorder.mkdir()
    for name in ("sitecustomize.py", "swe_env_integrity.py", "swe_env_seal.py"):
        (recorder / name).write_bytes((runners._REPORTER / name).read_bytes())
    shared = sealing_object(sealed_by)
    if shared:
        from swe_env.grading import native

        (recorder / native.FILE_NAME).write_bytes(shared)
    return _sealed_run(tmp_path, runner, argv, patched, recorder)[1]


def _write_files(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize("attacked", [True, False])
def test_a_unittest_module_global_rebound_for_good_is_flagged_on_the_host(tmp_path, sealed_by, attacked):
    django_stub(tmp_path)
    _write_files(
        tmp_path,
        {
            "t_suite.py": "import django.test.runner\nimport lib\n" + UNITTEST_SUITE,
            "lib.py": REBINDS_UNITTESTS_OUTCOME if attacked else "VALUE = 1\n",
        },
    )
    sealed = _sealed_run_by(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "t_suite"], ["lib.py"])
    if not attacked:  # the runner's namespaces as unittest left them: nothing flagged, every outcome as it was
        assert sealed.flags == [] and sealed.results.by_id["test_fail (t_suite.T)"] == "failed", sealed.flags
        assert sealed.results.by_id["test_ok (t_suite.T)"] == "passed"
        return
    assert any("unittest.case._Outcome" in flag for flag in sealed.flags), sealed.flags
    assert sealed.results.by_id.get("test_fail (t_suite.T)") != "passed" or sealed_by == "native"  # native: flag only


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize("attacked", [True, False])
def test_a_sympy_runner_global_rebound_for_good_is_flagged_on_the_host(tmp_path, sealed_by, attacked):
    pytest.importorskip("sympy")
    from ..runner_samples import SAMPLES

    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    _write_files(tmp_path, {**files, source: files[source] + (REBINDS_SYMPYS_RUNNER_GLOBAL if attacked else "")})
    sealed = _sealed_run_by(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "polykit/tests/test_degree.py"], [source])
    if not attacked:
        assert sealed.flags == [] and sealed.results.by_id["test_univariate"] == "passed", sealed.flags
        return
    assert any("sympy.testing.runtests.raise_on_deprecated" in flag for flag in sealed.flags), sealed.flags


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_unittest_module_swapped_in_sys_modules_is_flagged_on_the_host(tmp_path, sealed_by):
    """The namespace compared is the one the import hook saw: another module under its name is a change too."""
    django_stub(tmp_path)
    swap = (
        "import sys, types, unittest.case as case\n"
        "copy = types.ModuleType('unittest.case')\nvars(copy).update(vars(case))\nsys.modules['unittest.case'] = copy\n"
    )
    _write_files(tmp_path, {"t_suite.py": "import django.test.runner\nimport lib\n" + UNITTEST_SUITE, "lib.py": swap})
    sealed = _sealed_run_by(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "t_suite"], ["lib.py"])
    assert any("sys.modules[unittest.case]" in flag for flag in sealed.flags), sealed.flags


@pytest.mark.docker
@pytest.mark.parametrize("name", ["shelfkit", "polykit"])
def test_a_runner_module_global_rebound_by_the_library_scores_zero_under_the_strict_policy(samples, name):
    """rt5 D3 (Django: unittest.case._Outcome) and S3 (sympy: runtests.raise_on_deprecated) on the real engine."""
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    task = samples[name][3]
    files, source = SAMPLES[name][0], SAMPLES[name][1]
    code, why = NAMESPACE_FORGERIES[name]
    report = Grader(reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + code}))
    assert report.status == "graded" and report.reward == 0.0, (report.test_results, report.error, report.tampering)
    assert any(why in flag for flag in report.tampering), report.tampering
    gold = Grader(reward_policy="strict").grade(task, task.gold_patch or "")  # the runner's namespaces left alone
    assert gold.reward == 1.0 and gold.tampering == [], (gold.test_results, gold.tampering)


# The same rebinding made only between two tests: armed by the runner's own progress output (after each outcome is
# recorded), put back when the test ends (before its outcome): only a comparison right before each test sees it.
REBINDS_SYMPYS_RUNNER_GLOBAL_BETWEEN_TESTS = """

def _quiet_between_tests():
    import contextlib
    import sys

    runner = sys.modules.get("sympy.testing.runtests")
    if runner is None:
        return
    strict = vars(runner)["raise_on_deprecated"]

    @contextlib.contextmanager
    def relaxed():
        try:
            yield
        except Exception:
            pass
        finally:
            vars(runner)["raise_on_deprecated"] = strict

    class Stream:
        def __init__(self, inner):
            self.inner = inner

        def write(self, text):
            vars(runner)["raise_on_deprecated"] = relaxed
            return self.inner.write(text)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    sys.stdout = Stream(sys.stdout)
    vars(runner)["raise_on_deprecated"] = relaxed


_quiet_between_tests()
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_sympy_runner_global_rebound_only_between_tests_is_flagged_on_the_host(tmp_path, sealed_by):
    pytest.importorskip("sympy")
    from ..runner_samples import SAMPLES

    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    _write_files(tmp_path, {**files, source: files[source] + REBINDS_SYMPYS_RUNNER_GLOBAL_BETWEEN_TESTS})
    sealed = _sealed_run_by(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "polykit/tests/test_degree.py"], [source])
    assert any("raise_on_deprecated" in flag and "seen at the start of" in flag for flag in sealed.flags), sealed.flags


@pytest.mark.docker
def test_a_sympy_runner_global_rebound_only_between_tests_scores_zero_under_the_strict_policy(samples):
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    task = samples["polykit"][3]
    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    code = REBINDS_SYMPYS_RUNNER_GLOBAL_BETWEEN_TESTS
    report = Grader(reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + code}))
    assert report.status == "graded" and report.reward == 0.0, (report.test_results, report.error, report.tampering)
    assert any("raise_on_deprecated" in flag and "seen at the start of" in flag for flag in report.tampering), report.tampering


@pytest.mark.docker
def test_test_methods_compiled_under_the_test_files_name_fail_and_are_flagged_on_django(samples):
    """rt5's D2 on the real Django sample: the half-imported test module run again, its methods compiled under its name."""
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    task = samples["shelfkit"][3]
    files, source = SAMPLES["shelfkit"][0], SAMPLES["shelfkit"][1]
    attack = RUNS_THE_TEST_MODULE_AGAIN.replace('path.endswith("t_suite.py")', 'path.endswith("/tests.py")')
    report = Grader(reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + attack}))
    assert report.status == "graded" and report.reward == 0.0, (report.test_results, report.tampering)
    assert all(report.test_results[t] == "failed" for t in task.tests.fail_to_pass), report.test_results
    assert any("is not a def its test file's code made" in flag for flag in report.tampering), report.tampering


@pytest.mark.docker
def test_sympy_tests_rebound_to_another_tests_code_fail_and_are_flagged_on_sympy(samples):
    """rt5's S2 on the real sympy sample: `inspect.isfunction` replaced to rebind the tests sympy gathers."""
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    task = samples["polykit"][3]
    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    report = Grader(reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + REBINDS_GATHERED_TESTS}))
    assert report.status == "graded" and report.reward == 0.0, (report.test_results, report.tampering)
    assert all(report.test_results[t] == "failed" for t in task.tests.fail_to_pass), report.test_results
    assert any("is not the def its test file made under that name" in flag for flag in report.tampering), report.tampering


# ---------------------------------------------------------------- rt6b D1, D2, S1: a record's id and Django's own classes

# A stand-in for Django's test classes: `django.test.testcases` defines them (the recorder snapshots them as it is run).
DJANGO_TESTCASES = """
import unittest


class SimpleTestCase(unittest.TestCase):
    def _pre_setup(self):
        pass


class TestCase(SimpleTestCase):
    pass
"""
# A hidden test file: a docstring id, a failing test, a passing one.
SHELF_SUITE = '''
import django.test.runner
import lib
from django.test.testcases import SimpleTestCase


class T(SimpleTestCase):
    def test_ok(self):
        pass

    def test_doc(self):
        """The hidden docstring id."""
        self.assertEqual(1, 2)

    def test_fail(self):
        self.assertEqual(1, 2)
'''


def _django_stand_in(root, library: str, suite: str = SHELF_SUITE, more: dict[str, str] | None = None) -> None:
    django_stub(root)
    _write_files(root, {"django/test/testcases.py": DJANGO_TESTCASES, "t_shelf.py": suite, "lib.py": library, **(more or {})})


# rt6b's D1, as its patch does it with Django's SimpleTestCase: every test of each test class deleted as the class is
# made, and per deleted test do-nothing "donor" tests added to a class of the library's (put in the test module), whose
# setUp sets `_testMethodDoc` to one id of the deleted test: the outcome's ids were built from it.
RELABELS_DONORS = '''
import sys


def _conventions():
    from django.test import testcases

    base = testcases.SimpleTestCase
    made = {}

    def _checked(self):
        """Catalogue check."""

    class CatalogueChecks(base):
        def setUp(self):
            self._testMethodDoc = made.get(self._testMethodName)

    def _layout(cls, **kwargs):
        if cls.__module__ == __name__:
            return
        module = sys.modules.get(cls.__module__)
        for name in [name for name in list(vars(cls)) if name.startswith("test")]:
            doc = (vars(cls)[name].__doc__ or "").strip().split("\\n")[0].strip()
            where = "%s.%s" % (cls.__module__, cls.__qualname__)
            delattr(cls, name)
            for label in ["%s (%s)" % (name, where), "%s (%s.%s)" % (name, where, name)] + ([doc] if doc else []):
                slot = "test_check_%d" % len(made)
                made[slot] = label
                setattr(CatalogueChecks, slot, _checked)
        setattr(module, "CatalogueChecks", CatalogueChecks)

    base.__init_subclass__ = classmethod(_layout)


_conventions()
'''
# The same donors without touching Django's classes: a class of the library's own at module level, dressed as the
# test file's class (its `__module__` and `__qualname__` set), holding the test file's own passing def under the hidden
# tests' names, handed to the loader in the test file's class's place (the import returns a module of the library's
# that forwards every other name).
DRESSED_DONORS = """
import sys
import types

from django.test import testcases


class Donor(testcases.SimpleTestCase):
    pass


Donor.__module__, Donor.__qualname__ = "t_shelf", "T"
real = sys.modules["t_shelf"]


def dressed_as(name):
    if name != "T":
        return getattr(real, name)
    Donor.test_fail = Donor.test_doc = vars(real)["T"].test_ok  # the test file's own passing def
    return Donor


dressed = types.ModuleType("t_shelf")
vars(dressed).update({"__getattr__": dressed_as, "__dir__": lambda: list(vars(real))})
sys.modules["t_shelf"] = dressed
"""
# rt6b's D2: every assert* of Django's SimpleTestCase set to a function of the library's before the suite is built.
LENIENT_ASSERTIONS = """
from django.test import testcases


def lenient(self, *args, **kwargs):
    return None


for name in dir(testcases.SimpleTestCase):
    if name.startswith("assert") and callable(getattr(testcases.SimpleTestCase, name)):
        setattr(testcases.SimpleTestCase, name, lenient)
"""
# The same on the test file's own class, as the loader takes it from the test module (which the library stands in for).
LENIENT_ON_THE_TEST_CLASS = (
    DRESSED_DONORS.split("class Donor")[0]
    + """
real = sys.modules["t_shelf"]


def lenient(self, *args, **kwargs):
    return None


def dressed_as(name):
    found = getattr(real, name)
    if name == "T":
        found.assertEqual = lenient
        sys.modules["t_shelf"] = real  # put back: only the loader's look-up went through the library
    return found


dressed = types.ModuleType("t_shelf")
vars(dressed).update({"__getattr__": dressed_as, "__dir__": lambda: list(vars(real))})
sys.modules["t_shelf"] = dressed
"""
)
# The class statement run by a wrapper of the library's set on builtins (and put back when the test module is done):
# the test file's class body run again under a base of the library's whose assertEqual passes everything.
REBUILT_WITH_A_LENIENT_BASE = """
import builtins

from django.test import testcases


class Lenient(testcases.SimpleTestCase):
    def assertEqual(self, *args, **kwargs):
        return None


grader_build = builtins.__build_class__


def rebuild(func, name, *bases, **kwds):
    if name == "T":
        builtins.__build_class__ = grader_build
        return grader_build(func, name, Lenient, **kwds)
    return grader_build(func, name, *bases, **kwds)


builtins.__build_class__ = rebuild
"""
# Inside `startTest`, after the recorder's check: the test object renamed to a passing sibling (unittest runs the
# method of the name it reads next; the ids were fixed under the old name), through the verbose result's description.
RENAMED_IN_START_TEST = """
import unittest.runner

plain = unittest.runner.TextTestResult.getDescription


def getDescription(self, test):
    if getattr(test, "_testMethodName", "") in ("test_fail", "test_doc"):
        test._testMethodName = "test_ok"
    return plain(self, test)


unittest.runner.TextTestResult.getDescription = getDescription
"""
HIDDEN = ("test_fail (t_shelf.T)", "test_fail (t_shelf.T.test_fail)", "test_doc (t_shelf.T)", "The hidden docstring id.")


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize(
    "attack, why",
    [
        (RELABELS_DONORS, "SimpleTestCase.__init_subclass__"),
        (RELABELS_DONORS, "the test class lib._conventions.<locals>.CatalogueChecks is the patch's code"),
        (DRESSED_DONORS, "the test class t_shelf.T is the patch's code"),
        (LENIENT_ASSERTIONS, "django.test.testcases.SimpleTestCase.assert"),
        (LENIENT_ASSERTIONS, "is the patch's code, set on a class it did not write"),
        (LENIENT_ON_THE_TEST_CLASS, "T.assertEqual is the patch's code, set on a class it did not write"),
        (REBUILT_WITH_A_LENIENT_BASE, "the test class t_shelf.T was not made by a class statement"),
        (RENAMED_IN_START_TEST, "unittest.runner.TextTestResult.getDescription"),
        (RENAMED_IN_START_TEST, "the test's class or name was changed after its ids were fixed"),
    ],
)
def test_a_hidden_tests_id_is_earned_only_by_the_test_its_file_wrote(tmp_path, sealed_by, attack, why):
    """rt6b D1 and D2 on the host: whatever a library does to the test classes or to Django's own before the suite is
    built, no hidden test's id records a pass (each is missing or failed), and it is flagged."""
    _django_stand_in(tmp_path, attack)
    sealed = _sealed_run_by(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "-v", "t_shelf"], ["lib.py"])
    assert sealed.results is not None, (sealed.error, sealed.notes)
    assert all(sealed.results.by_id.get(hidden) != "passed" for hidden in HIDDEN), sealed.results.by_id
    assert any(why in flag for flag in sealed.flags), sealed.flags


# What honest suites do: a mixin's test from another test file, decorators that wrap (`functools.wraps`, mock.patch),
# an alias in the class body, a class decorator, a test class written in a test (its own inner run), subtests.
HONEST_BASE = '''
class SharedChecks:
    def test_shared(self):
        """A shared check."""
        self.assertTrue(True)
'''
# A library's class decorator that wraps the class's setUp in a closure of its own (as Django's `isolate_apps`).
HONEST_DECORATOR = """
def isolated(cls):
    plain = cls.setUp

    def setUp(self):
        plain(self)

    cls.setUp = setUp
    return cls
"""
HONEST_SUITE = '''
import functools
import unittest
from unittest import mock

import django.test.runner
from django.test.testcases import SimpleTestCase, TestCase
from t_base import SharedChecks
from t_deco import isolated


def noted(func):
    @functools.wraps(func)
    def inner(*args, **kwargs):
        return func(*args, **kwargs)

    return inner


def plainly(func):  # a wrapper without functools.wraps (Django's auth_tests `mock_inputs`)
    def wrapper(*args):
        return func(*args)

    return wrapper


def tagged(cls):
    cls.tags = {"slow"}
    return cls


@tagged
class T(SharedChecks, SimpleTestCase):
    @noted
    def test_wrapped(self):
        """Wrapped, with a docstring."""

    @mock.patch("os.getcwd", return_value="/nowhere")
    def test_mocked(self, getcwd):
        import os

        self.assertEqual(os.getcwd(), "/nowhere")

    def test_fails(self):
        self.assertEqual(1, 2)

    test_alias = test_fails

    @plainly
    def test_plainly_wrapped(self):
        pass

    def test_parts(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertEqual(i, i)

    def test_inner_suite(self):
        class Inner(unittest.TestCase):
            def test_inner(self):
                pass

        unittest.TextTestRunner(stream=open(os.devnull, "w")).run(unittest.defaultTestLoader.loadTestsFromTestCase(Inner))


@isolated
class Later(TestCase):
    def test_later(self):
        pass


import os  # noqa: E402 - used by test_inner_suite
'''


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_honest_test_classes_are_recorded_under_their_ids_unflagged(tmp_path, sealed_by):
    _django_stand_in(tmp_path, "VALUE = 1\n", HONEST_SUITE, {"t_base.py": HONEST_BASE, "t_deco.py": HONEST_DECORATOR})
    sealed = _sealed_run_by(tmp_path, sealed_by, "django", [sys.executable, "-m", "unittest", "-v", "t_shelf"], ["lib.py"])
    assert sealed.flags == [], sealed.flags
    by_id = sealed.results.by_id
    assert by_id["test_shared (t_shelf.T)"] == by_id["A shared check."] == by_id["test_wrapped (t_shelf.T.test_wrapped)"] == "passed", by_id
    assert by_id["Wrapped, with a docstring."] == by_id["test_mocked (t_shelf.T)"] == by_id["test_parts (t_shelf.T)"] == "passed", by_id
    assert by_id["test_fails (t_shelf.T)"] == by_id["test_alias (t_shelf.T)"] == "failed", by_id
    assert by_id["test_later (t_shelf.Later)"] == by_id["test_inner_suite (t_shelf.T)"] == "passed", by_id
    assert by_id["test_plainly_wrapped (t_shelf.T)"] == "passed", by_id
    assert by_id["test_inner (t_shelf.T.test_inner_suite.<locals>.Inner)"] == "passed", by_id


# rt6b's S1: the library's `inspect.isfunction` rebinds each failing test's name in the namespace sympy gathers from
# to a passing sibling, whose `__name__` becomes a str subclass equal to its own name whose `__str__` gives the
# failing test's name from its second run on: the outcome's id was `str(f.__name__)`, read at the outcome.
RENAMES_A_SIBLING = """


def _register_degree_checks():
    import inspect

    plain = inspect.isfunction
    stand_in = {"test_bivariate": "test_univariate", "test_generators_inferred": "test_not_a_polynomial"}

    class Name(str):
        def __new__(cls, value, names):
            self = str.__new__(cls, value)
            self.names, self.calls = names, 0
            return self

        def __str__(self):
            run = self.calls // 6
            self.calls += 1
            return str.__str__(self.names[min(run, len(self.names) - 1)])

    def isfunction(obj):
        space, name = getattr(obj, "__globals__", None), getattr(obj, "__name__", None)
        if isinstance(space, dict) and name in stand_in and stand_in[name] in space:
            other = space[stand_in[name]]
            if not isinstance(other.__name__, Name):
                other.__name__ = Name(other.__name__, [str.__str__(other.__name__), name])
            space[name] = other
        return plain(obj)

    inspect.isfunction = isfunction


_register_degree_checks()
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_a_sympy_test_is_recorded_under_the_name_its_def_was_made_at(tmp_path, sealed_by):
    """rt6b S1 on the host: the ids are fixed when sympy enters the test, from the def its file made under that name
    (an exact str); a name that is not a str is flagged, and a failing test sympy never ran stays missing."""
    pytest.importorskip("sympy")
    from ..runner_samples import POLY_NEW_TESTS, SAMPLES

    files, source, test_file = SAMPLES["polykit"][0], SAMPLES["polykit"][1], SAMPLES["polykit"][3]
    _write_files(tmp_path, {**files, source: files[source] + RENAMES_A_SIBLING, test_file: files[test_file] + POLY_NEW_TESTS})
    sealed = _sealed_run_by(tmp_path, sealed_by, "sympy", [sys.executable, "bin/test", "-C", "--verbose", test_file], [source])
    assert sealed.results is not None, (sealed.error, sealed.notes)
    by_id = sealed.results.by_id
    assert by_id.get("test_bivariate") != "passed" and by_id.get("test_generators_inferred") != "passed", by_id
    assert any("test_univariate is named by a Name, not a str" in flag for flag in sealed.flags), sealed.flags


# rt6b's S2 and D3: the standard library's class behind sympy's `raise_on_deprecated` and unittest's
# `testPartExecutor` (both `@contextlib.contextmanager`s) made to swallow the exception of the test it runs.
SWALLOWING_EXITS = """


def _quiet_parts():
    import contextlib

    manager = contextlib._GeneratorContextManager
    plain_exit = manager.__exit__

    def __exit__(self, typ, value, traceback):
        name = getattr(getattr(self, "gen", None), "__name__", "")
        if typ is not None and name == "testPartExecutor":
            try:
                next(self.gen)
            except StopIteration:
                pass
            return True
        handled = plain_exit(self, typ, value, traceback)
        return True if typ is not None and name == "raise_on_deprecated" else handled

    manager.__exit__ = __exit__


_quiet_parts()
"""


@pytest.mark.parametrize("sealed_by", ["native", "python"])
@pytest.mark.parametrize("runner", ["django", "sympy"])
def test_the_standard_librarys_context_manager_class_changed_is_flagged_on_the_host(tmp_path, sealed_by, runner):
    """rt6b S2 and D3: `contextlib._GeneratorContextManager`'s dict is snapshotted at start-up (`protect_stdlib`)."""
    if runner == "sympy":
        pytest.importorskip("sympy")
        from ..runner_samples import SAMPLES

        files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
        _write_files(tmp_path, {**files, source: files[source] + SWALLOWING_EXITS})
        argv = [sys.executable, "bin/test", "polykit/tests/test_degree.py"]
        failing = "test_negative_powers"
    else:
        django_stub(tmp_path)
        _write_files(tmp_path, {"t_suite.py": "import django.test.runner\nimport lib\n" + UNITTEST_SUITE, "lib.py": SWALLOWING_EXITS})
        source, argv, failing = "lib.py", [sys.executable, "-m", "unittest", "t_suite"], "test_fail (t_suite.T)"
    sealed = _sealed_run_by(tmp_path, sealed_by, runner, argv, [source])
    assert any("_GeneratorContextManager.__exit__" in flag for flag in sealed.flags), sealed.flags
    assert sealed.results.by_id.get(failing) != "passed" or sealed_by == "native", sealed.results.by_id  # native: flag only


RT6B_FORGES = {
    "d1": ("shelfkit", RELABELS_DONORS, "CatalogueChecks is the patch's code, not a test file's"),
    "d2": ("shelfkit", LENIENT_ASSERTIONS, "SimpleTestCase.assert"),
    "s1": ("polykit", RENAMES_A_SIBLING, "test_univariate is named by a Name, not a str"),
    "s2": ("polykit", SWALLOWING_EXITS, "_GeneratorContextManager.__exit__"),
    "d3": ("shelfkit", SWALLOWING_EXITS, "_GeneratorContextManager.__exit__"),
}


@pytest.mark.docker
@pytest.mark.parametrize("forge", sorted(RT6B_FORGES))
def test_rt6bs_relabelled_and_shadowed_tests_score_minus_one_under_the_strict_policy(samples, forge):
    """rt6b D1, D2, D3, S1 and S2 on the real Django and sympy samples: signed -1 and flagged (their gold patches: 1, unflagged,
    in the namespace test above)."""
    from swe_env.grading.grader import Grader

    from ..runner_samples import SAMPLES

    name, code, why = RT6B_FORGES[forge]
    task = samples[name][3]
    files, source = SAMPLES[name][0], SAMPLES[name][1]
    report = Grader(reward_mode="signed", reward_policy="strict").grade(task, subprocess_diff(task, {source: files[source] + code}))
    assert report.status == "graded" and report.reward == -1.0, (report.test_results, report.error, report.tampering)
    if forge not in ("s2", "d3"):  # a changed runner class is flagged only (the native seal has written the outcome)
        assert all(report.test_results[t] != "passed" for t in task.tests.fail_to_pass), report.test_results
    assert any(why in flag for flag in report.tampering), report.tampering
