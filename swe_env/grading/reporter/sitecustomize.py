"""swe-env's result recorder, loaded at interpreter start-up in the grader's container only.

Standard library only, and Python 3.6+ syntax: it runs under the task's interpreter. It never
changes what a test does or prints; it only writes one JSON line per test outcome to the path
named by SWE_ENV_RESULTS (the grader's results stream):

    {"runner": "django", "ids": ["test_a (app.tests.T)", ...], "status": "passed"}

SWE_ENV_RUNNER picks what is recorded:

- `django`: every outcome that reaches `unittest.TestResult` (Django's runner is unittest's),
  under the ids SWE-bench's datasets use for it: `name (module.Class)`, Python 3.11's
  `name (module.Class.name)`, and the first line of the test's docstring.
- `sympy`: every outcome sympy's own runner reports (`PyTestReporter` in
  `sympy/testing/runtests.py` or `sympy/utilities/runtests.py`), under the test function's
  name and `file:name`.

Hooks are put in when the module that defines the hooked class has been imported, so nothing
is imported early. Statuses: passed, failed, error, skipped, xfailed, xpassed.
"""

import json
import os
import sys

_PATH = os.environ.get("SWE_ENV_RESULTS")
_RUNNER = os.environ.get("SWE_ENV_RUNNER")


def _record(runner, ids, status):
    line = json.dumps({"runner": runner, "ids": [i for i in ids if i], "status": status}) + "\n"
    try:
        # One write per line: up to the pipe's atomic size, lines from several processes never interleave.
        fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8", "surrogatepass"))
        finally:
            os.close(fd)
    except Exception:  # a recorder fault must never change a test's outcome
        pass


# ------------------------------------------------------------------ unittest (Django)

def _unittest_ids(test):
    test = getattr(test, "test_case", test)  # a subtest: the test it belongs to
    cls = type(test)
    name = getattr(test, "_testMethodName", None)
    where = "%s.%s" % (cls.__module__, getattr(cls, "__qualname__", cls.__name__))
    ids = []
    if name:
        ids += ["%s (%s)" % (name, where), "%s (%s.%s)" % (name, where, name)]
    else:
        ids.append(str(test))
    try:
        doc = test.shortDescription()
    except Exception:
        doc = None
    if doc:
        ids.append(doc.strip())
    return ids


def _hook_unittest(module):
    result_class = module.TestResult
    if getattr(result_class, "_swe_env_hooked", False):
        return
    result_class._swe_env_hooked = True

    def wrap(method_name, status_of):
        original = getattr(result_class, method_name)

        def hooked(self, test, *args):
            status = status_of(*args)
            if status is not None:
                _record("django", _unittest_ids(test), status)
            return original(self, test, *args)

        hooked.__name__ = original.__name__
        setattr(result_class, method_name, hooked)

    wrap("addSuccess", lambda: "passed")
    wrap("addFailure", lambda err: "failed")
    wrap("addError", lambda err: "error")
    wrap("addSkip", lambda reason: "skipped")
    wrap("addExpectedFailure", lambda err: "xfailed")
    wrap("addUnexpectedSuccess", lambda: "xpassed")
    # A failing subtest fails its test (recorded under the test's ids); a passing one says nothing.
    wrap("addSubTest", lambda subtest, err: None if err is None else (
        "failed" if issubclass(err[0], subtest.failureException) else "error"))


# ------------------------------------------------------------------ sympy's runner

def _hook_sympy(module):
    reporter = getattr(module, "PyTestReporter", None)
    if reporter is None or getattr(reporter, "_swe_env_hooked", False):
        return
    reporter._swe_env_hooked = True

    def current(self):
        function = getattr(self, "_active_f", None)
        name = getattr(function, "__name__", None)
        if not name:
            return []
        path = getattr(self, "_active_file", "") or ""
        return [name, "%s:%s" % (path.replace(os.sep, "/"), name)]

    def wrap(method_name, status):
        original = getattr(reporter, method_name, None)
        if original is None:
            return

        def hooked(self, *args, **kwargs):
            # A doctest's outcomes come with no active test function: they are not recorded.
            if getattr(self, "_swe_env_in_test", False):
                _record("sympy", current(self), status)
                self._swe_env_in_test = False
            return original(self, *args, **kwargs)

        hooked.__name__ = original.__name__
        setattr(reporter, method_name, hooked)

    original_entering = reporter.entering_test

    def entering_test(self, f):
        self._swe_env_in_test = True
        return original_entering(self, f)

    reporter.entering_test = entering_test
    for method_name, status in (("test_pass", "passed"), ("test_fail", "failed"), ("test_exception", "error"),
                                ("test_skip", "skipped"), ("test_xfail", "xfailed"), ("test_xpass", "xpassed")):
        wrap(method_name, status)


# ------------------------------------------------------------------ hooks after import

_HOOKS = {}
if _PATH and _RUNNER == "django":
    _HOOKS["unittest.result"] = _hook_unittest
elif _PATH and _RUNNER == "sympy":
    _HOOKS["sympy.testing.runtests"] = _hook_sympy
    _HOOKS["sympy.utilities.runtests"] = _hook_sympy


class _AfterImport(object):
    """A meta path entry that finds nothing itself: it wraps the loader of a hooked module."""

    def find_spec(self, name, path=None, target=None):
        hook = _HOOKS.get(name)
        if hook is None:
            return None
        import importlib.machinery
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                hook(module)
            except Exception:
                pass

        loader.exec_module = exec_module
        return spec


if _HOOKS:
    for _name, _hook in list(_HOOKS.items()):
        if _name in sys.modules:  # already imported before start-up finished
            _hook(sys.modules[_name])
    sys.meta_path.insert(0, _AfterImport())
