"""swe-env's pytest plugin in the grader's container: loaded with `-p swe_env_seal` (before conftest
files and collection), it hands each outcome to the sealed audit hook that the grader's
`sitecustomize` installed at start-up, and holds nothing secret itself.

Importing it announces it to the hook (`swe_env.hello`: the hook captures this module's code
objects and reads the grading key) and hands over pytest's outcome exceptions (`swe_env.outcomes`);
after collection the items and their node ids (`swe_env.collected`: the hook snapshots the test modules, the items'
functions and markers, the fixture definitions; results are written under those ids); once pytest is configured (before collection) it hands over
pytest's, pluggy's and unittest's modules and classes as they are then (`swe_env.protect`); before and after each test's call
phase and at the end the hook compares them again (`swe_env.check`) and flags a change, and once more right before pytest calls
the test function (`swe_env.started`: a passing call phase that never got there did not run its test), and from its own wrapper
of the test function when that starts and when it raises (a passing call phase whose test never started, or raised, did not
pass). Each report pytest logs becomes one
record (`swe_env.test`: the hook checks that pytest's own `call_and_report` holds this report; a subtest's report,
pytest 9's, is `swe_env.subtest`: part of its test's call phase, whose pass a failed one withholds); a
skip, xfail or exit raised from a file the patch changed fails its test (`swe_env.raised`); the
session's end writes the end record (`swe_env.end`), without which nothing is believed.
"""

import sys

import pytest

_audit = getattr(sys, "audit", None)


def _machinery():
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name in ("pytest", "_pytest", "pluggy", "unittest") or name.startswith(("_pytest.", "pluggy.", "unittest."))):
            continue
        found.append(module)
        for value in list(vars(module).values()):
            if isinstance(value, type) and getattr(value, "__module__", None) == name:
                found.append(value)
    return tuple(found)


if _audit is not None:
    _audit("swe_env.hello")
    # pytest's outcome exceptions and xfail()'s code as they are before conftest files and collection:
    # the hook reads each phase's outcome from the exception pytest caught with these. unittest is not
    # imported here: a module the raw run has not imported yet must not be there in the sealed one (a test's
    # inner pytest run imports it afresh, and pytester's restore drops it again); the hook takes unittest's
    # machinery when the test process first imports it (`swe_env.imported`), and its SkipTest by name.
    # `xfail` is a function, or (pytest 8.2+) an object whose `__call__` raises.
    _xfail_code = getattr(pytest.xfail, "__code__", None) or getattr(getattr(type(pytest.xfail), "__call__", None), "__code__", None)  # noqa: B004 - the method itself, for its code
    _audit(
        "swe_env.outcomes",
        (
            pytest.skip.Exception,
            pytest.xfail.Exception,
            pytest.fail.Exception,
            pytest.exit.Exception,
            _xfail_code,
            getattr(sys.modules.get("unittest"), "SkipTest", None),
        ),
    )


# Every name a hook uses is bound as a default argument when the module is imported (pluggy
# passes only the hook's own arguments), so replacing this module's globals later changes nothing;
# setting a function's defaults or code is itself flagged by the sealed hook.


@pytest.hookimpl(trylast=True)
def pytest_configure(config, _audit=_audit, _machinery=_machinery):
    # After every plugin's configure (pytest's own change its classes as they configure), before collection.
    if _audit is not None:
        _audit("swe_env.protect", _machinery())


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session, _audit=_audit, _tuple=tuple, _str=str):
    # The test modules, items and fixture definitions as collected: the hook compares them after each test. With
    # each item's node id as collected: results are written under it, whatever the item's id is later (rt4 a4).
    if _audit is not None:
        items = _tuple(session.items)
        _audit("swe_env.collected", items, _tuple([_str(item.nodeid) for item in items]))


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item, _audit=_audit, _str=str):
    # Before the test runs too: what its setup changed and its teardown will put back (red team rt2, b8c).
    if _audit is not None:
        _audit("swe_env.check", "the setup of " + _str(item.nodeid))
    yield
    if _audit is not None:
        _audit("swe_env.check", _str(item.nodeid))


_FUNCTION = type(_machinery)


def _entering(
    item,
    _audit=_audit,
    _getattr=getattr,
    _setattr=setattr,
    _type=type,
    _function=_FUNCTION,
    _base_exception=BaseException,
):
    """The item's test function wrapped so that its own start (and a raise out of it) reaches the hook (red team
    rt6a, F1: a `pytest_pyfunc_call` implementation that returns a value without calling the test function, or
    pytest's own with its function replaced, ends the hook's dispatch after this plugin's wrapper); the function
    itself and the wrapper, or None for a test function that is neither a function nor a coroutine function (an
    async generator: pytest does not run those). A coroutine function gets a coroutine function: plugins (anyio,
    pytest-asyncio) and pytest pick how to run a test by that."""
    function = item.obj
    code = _getattr(function, "__code__", None)
    if _type(_getattr(function, "__func__", function)) is not _function or code is None or code.co_flags & 0x200:
        return None
    if code.co_flags & 0x180:  # CO_COROUTINE, CO_ITERABLE_COROUTINE

        async def swe_env_entered_async(*args, **kwargs):
            _audit("swe_env.started", item, "entered")
            try:
                return await function(*args, **kwargs)
            except _base_exception:
                _audit("swe_env.started", item, "raised")
                raise

        wrapper = swe_env_entered_async
    else:

        def swe_env_entered(*args, **kwargs):
            _audit("swe_env.started", item, "entered")
            try:
                return function(*args, **kwargs)
            except _base_exception:
                _audit("swe_env.started", item, "raised")
                raise

        wrapper = swe_env_entered
    # What plugins and pytest read of the test function (its name, its markers, hypothesis's handle) stays readable.
    for name in ("__module__", "__name__", "__qualname__", "__doc__"):
        _setattr(wrapper, name, _getattr(function, name, None))
    wrapper.__dict__.update(_getattr(function, "__dict__", {}))
    wrapper.__wrapped__ = function
    return function, wrapper


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pyfunc_call(pyfuncitem, _audit=_audit, _entering=_entering):
    # The innermost wrapper, right before pytest's own implementation calls the test function (red team rt5, R2):
    # the hook checks that pytest's runtest of this item's call phase got here and compares the machinery again;
    # a passing call phase that never got here did not run its test. Then the test function is wrapped for the
    # call: a passing call phase whose test function never started (or raised) did not run (pass) its test.
    item = pyfuncitem  # noqa: F841 - read by the hook (the running test's monkeypatch fixture)
    wrapped = None
    if _audit is not None:
        _audit("swe_env.started", pyfuncitem)
        wrapped = _entering(pyfuncitem)
        if wrapped is not None:
            pyfuncitem.obj = wrapped[1]
            _audit("swe_env.started", pyfuncitem, "wrapped")
    try:
        yield
    finally:
        if wrapped is not None and pyfuncitem.__dict__.get("_obj") is wrapped[1]:
            pyfuncitem.obj = wrapped[0]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item,
    call,
    _audit=_audit,
    _str=str,
    _tuple=tuple,
    _isinstance=isinstance,
    _outcomes=(pytest.skip.Exception, pytest.xfail.Exception, pytest.exit.Exception),
):
    yield
    excinfo = call.excinfo
    if _audit is None or excinfo is None or not _isinstance(excinfo.value, _outcomes):
        return
    # Every file on the raise's traceback: the hook fails the test when one is a file the patch changed.
    files, tb = [], excinfo.tb
    while tb is not None and len(files) < 1000:
        files.append(_str(tb.tb_frame.f_code.co_filename))
        tb = tb.tb_next
    _audit("swe_env.raised", _str(item.nodeid), _tuple(files))


def pytest_runtest_logreport(report, _audit=_audit, _str=str, _hasattr=hasattr, _name_of=type.__dict__["__name__"].__get__, _type=type):
    outcome, when = report.outcome, report.when
    if _audit is None or outcome not in ("passed", "failed", "skipped"):
        return  # another plugin's outcome (a rerun, say): the final report decides
    xfail = _hasattr(report, "wasxfail")
    if when == "call":
        if xfail:
            status = {"skipped": "xfailed", "passed": "xpassed"}.get(outcome, "failed")
        else:
            status = outcome
    elif outcome == "failed":
        status = "error"
    elif outcome == "skipped":
        status = "xfailed" if xfail else "skipped"
    else:
        return  # a passing setup or teardown says nothing
    if _name_of(_type(report)) in ("SubtestReport", "SubTestReport"):
        # pytest 9's subtests (and pytest-subtests) report each subtest from inside its test's call phase: a failed
        # one fails that test (the worst wins), none is a result of its own.
        _audit("swe_env.subtest", report, _str(report.nodeid), status)
        return
    _audit("swe_env.test", report, _str(report.nodeid), status)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus, _audit=_audit, _int=int):
    if _audit is not None:
        _audit("swe_env.check", "the session's end")
        _audit("swe_env.end", _int(exitstatus))
