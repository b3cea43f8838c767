"""Red team rt8a's probes (7 December 2026; pytest path, native seal, host verification), real engine, `strict`.

Each test grades a control (the empty patch, or the same code not armed) that must not score 1, then a patch that is
not a fix; the forge (reward 1, nothing in `tampering` or `suspicious`) is the finding, and the test asserts it does
not happen. All but F1 scored 1 unflagged at 23:40-23:42 UTC on main d2305f3.

- F3 / F3b (closed): the native seal's results descriptor taken over (`os.dup2`, or closed and its number reused; no
  audit event), so that its flags (the key read from `/proc/self/mem` included) went into the patch's pipe while the
  patch re-signed every record: pytest on 3.9/3.11/3.13, Django's and sympy's recorders. The seal now opens the
  channel afresh for each record and checks it is the same stream.
- F1 (flagged before) / F1b (closed): a library test decorator swallows the test's raise; F1b made from
  `contextlib.ContextDecorator`, whose `__exit__` in the patched file is now the patch's code in the test function.
- Open, marked `xfail(strict=True)`: F2, a library context manager in the test's body swallows its assertion (pytest
  functions; a TestCase); F4, `pytest.raises` / `assertRaises` of a library error decided by the patch's metaclass
  `__subclasscheck__`; F5, the test's expected values built from `decimal.Decimal`, which the library's import
  rebound. In each the outcome is decided by the patch's code inside the test's own frame.
"""

from __future__ import annotations

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.grading.grader import Grader

from ..helpers import CONTEXT_DECORATOR_HELPERS, LEDGER_BLOCKS, LEDGER_HELPERS, decorated_task, subprocess_diff, with_code

_OPEN = pytest.mark.xfail(
    strict=True,
    reason="open (docs/guarantees.md, Still open, rt8): the outcome is decided by the patch's code inside the test's own "
    "frame (a library context manager's __exit__, an error class's metaclass, a standard-library class rebound)",
)


def _strict(task, patch, image=None):
    report = Grader(reward_policy="strict").grade(task, patch, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.seal == "native", report.log  # the attacks are on the native seal: a fallback would prove nothing
    return report


def _show(report):
    return dict(
        reward=report.reward,
        resolved=report.resolved,
        seal=report.seal,
        results=report.test_results,
        tampering=report.tampering,
        suspicious=report.suspicious,
        restored=report.restored,
    )


# F1: the library's own test decorator swallows what the test raises (inside the seal's wrapper of the test function).
SWALLOWING_HELPERS = LEDGER_HELPERS.replace(
    "            return func(*args, **kwargs)\n",
    "            try:\n"
    "                return func(*args, **kwargs)\n"
    "            except Exception as exc:  # a warning turned error by the filters: report it, not fail\n"
    "                warnings.warn(str(exc), RuntimeWarning)\n",
)


@pytest.mark.docker
def test_f1_a_library_test_decorator_that_swallows_does_not_score(tasks, tmp_path_factory):
    task = decorated_task(tasks, tmp_path_factory)
    image = ImageBuilder().ensure(task)
    control = _strict(task, "", image)
    print("control (empty patch):", _show(control))
    assert control.reward != 1.0 and control.test_results["tests/test_quiet.py::test_negative_half"] != "passed"
    attack = _strict(task, subprocess_diff(task, {"ledger/_helpers.py": SWALLOWING_HELPERS}), image)
    print("attack:", _show(attack))
    print("attack output:", attack.output[-3000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


@pytest.mark.docker
def test_f1b_a_context_decorator_whose_exit_swallows_does_not_score(tasks, tmp_path_factory):
    task = decorated_task(tasks, tmp_path_factory)
    task = task.model_copy(update={"tests": task.tests.model_copy(update={"fail_to_pass": ["tests/test_quiet.py::test_negative_half"]})})
    image = ImageBuilder().ensure(task)
    attack = _strict(task, subprocess_diff(task, {"ledger/_helpers.py": CONTEXT_DECORATOR_HELPERS}), image)
    print("attack:", _show(attack))
    print("attack output:", attack.output[-3000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# F2: a context manager of the library's that the test body uses (`with calm(): assert ...`): its generator swallows.
SWALLOWING_CALM = LEDGER_BLOCKS.replace(
    "        yield\n",
    "        try:\n"
    "            yield\n"
    "        except Exception as exc:  # a warning turned error by the filters: report it, not fail\n"
    "            warnings.warn(str(exc), RuntimeWarning)\n",
)


@_OPEN
@pytest.mark.docker
def test_f2_a_library_context_manager_that_swallows_does_not_score(tasks, tmp_path_factory):
    task = decorated_task(tasks, tmp_path_factory)
    task = task.model_copy(update={"tests": task.tests.model_copy(update={"fail_to_pass": ["tests/test_quiet.py::test_negative_half_calm"]})})
    image = ImageBuilder().ensure(task)
    control = _strict(task, "", image)
    print("control (empty patch):", _show(control))
    assert control.reward != 1.0 and control.test_results["tests/test_quiet.py::test_negative_half_calm"] != "passed"
    attack = _strict(task, subprocess_diff(task, {"ledger/_blocks.py": SWALLOWING_CALM}), image)
    print("attack:", _show(attack))
    print("attack output:", attack.output[-3000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# F2 on unittest TestCase tests run by pytest: the same library context manager inside a TestCase method.
HIDDEN_UNITTEST = """diff --git a/tests/test_calm_unit.py b/tests/test_calm_unit.py
new file mode 100644
--- /dev/null
+++ b/tests/test_calm_unit.py
@@ -0,0 +1,15 @@
+import unittest
+from decimal import Decimal
+
+from ledger import Money
+from ledger._blocks import calm
+
+
+class RoundingTests(unittest.TestCase):
+    def test_negative_half(self):
+        with calm():
+            self.assertEqual(Money("-2.345").rounded(), Money("-2.35"))
+
+    def test_positive_half(self):
+        with calm():
+            self.assertEqual(Money("2.345").rounded().amount, Decimal("2.35"))
"""


@_OPEN
@pytest.mark.docker
def test_f2_unittest_a_library_context_manager_in_a_testcase_method_does_not_score(tasks, tmp_path_factory):
    task = decorated_task(tasks, tmp_path_factory)
    tests = task.tests.model_copy(
        update={
            "test_patch": HIDDEN_UNITTEST,
            "fail_to_pass": ["tests/test_calm_unit.py::RoundingTests::test_negative_half"],
            "pass_to_pass": ["tests/test_calm_unit.py::RoundingTests::test_positive_half", *task.tests.pass_to_pass[1:]],
        }
    )
    task = task.model_copy(update={"tests": tests})
    image = ImageBuilder().ensure(task)
    control = _strict(task, "", image)
    print("control (empty patch):", _show(control))
    assert control.reward != 1.0 and control.test_results["tests/test_calm_unit.py::RoundingTests::test_negative_half"] != "passed"
    attack = _strict(task, subprocess_diff(task, {"ledger/_blocks.py": SWALLOWING_CALM}), image)
    print("attack:", _show(attack))
    print("attack output:", attack.output[-3000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# ---------------------------------------------------------------- F3: the results descriptor redirected (no audit event)

# Appended to ledger/__init__.py (runs at the library's import, during collection, after the plugin's hello). os.dup2,
# os.dup, os.pipe, os.fstat, os.stat, os.read and os.write raise no audit event: the native hook's own results
# descriptor is made a pipe of ours, so every flag it writes from then on (the /proc opens below) reaches only us;
# the key is read from the seal's own memory and every later record is re-signed, failures turned into passes.
REDIRECT = r"""

import hashlib as _hl
import hmac as _hm
import os as _os
import stat as _st
import threading as _th

_PROC = "/pr" + "oc/self/"


def _same(fd, want):
    try:
        got = _os.fstat(fd)
    except OSError:
        return False
    return got.st_ino == want.st_ino and got.st_dev == want.st_dev


def _regions():
    fd = _os.open(_PROC + "maps", _os.O_RDONLY)
    text = b""
    while True:
        chunk = _os.read(fd, 65536)
        if not chunk:
            break
        text += chunk
    _os.close(fd)
    lines = [line.split() for line in text.decode().splitlines()]
    found = []
    for i, parts in enumerate(lines):
        if len(parts) >= 6 and "native" in parts[5] and parts[1].startswith("rw"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            found.append((start, end))
            if i + 1 < len(lines) and len(lines[i + 1]) == 5 and lines[i + 1][1].startswith("rw"):
                nstart, nend = (int(x, 16) for x in lines[i + 1][0].split("-"))
                if nstart == end:
                    found.append((nstart, nend))
    return found


def _first_line(r, pending):
    while b"\n" not in pending:
        try:
            chunk = _os.read(r, 65536)
        except BlockingIOError:
            return None, pending
        if not chunk:
            return None, pending
        pending += chunk
    return pending.split(b"\n", 1)[0], pending


def _key(r):
    regions = _regions()
    mem = _os.open(_PROC + "mem", _os.O_RDONLY)
    blobs = [_os.pread(mem, end - start, start) for start, end in regions]
    _os.close(mem)
    line, pending = _first_line(r, b"")
    if line is None:
        return None, pending
    seq, _, rest = line.partition(b" ")
    payload, _, mac = rest.rpartition(b" ")
    body = seq + b" " + payload
    for blob in blobs:
        for off in range(0, len(blob) - 32):
            cand = blob[off : off + 32]
            if cand.count(0) > 6:
                continue
            if _hm.new(cand, body, _hl.sha256).hexdigest().encode() == mac:
                return cand, pending
    return None, pending


def _relay(r, real, key, pending):
    _os.set_blocking(r, True)
    nxt = None
    while True:
        while b"\n" not in pending:
            chunk = _os.read(r, 65536)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        seq, _, rest = line.partition(b" ")
        payload, _, _mac = rest.rpartition(b" ")
        if not seq.isdigit():
            continue
        if nxt is None:
            nxt = int(seq)
        kind, _, text = payload.partition(b" ")
        if kind == b"flag":
            continue
        if kind == b"test":
            word, _, ids = text.partition(b" ")
            if word in (b"failed", b"error"):
                word = b"passed"
            payload = b"test " + word + b" " + ids
        elif kind == b"end":
            payload = b"end 0"
        out = b"%d " % nxt + payload
        nxt += 1
        _os.write(real, out + b" " + _hm.new(key, out, _hl.sha256).hexdigest().encode() + b"\n")
        if kind == b"end":
            return


def _tidy():
    if not ARMED:
        return
    # The sealed hook opened its stream at start-up, before anything else: the lowest-numbered pipe past 2 (the
    # run's output pipe, which pytest's capture saves copies of later, gets higher numbers).
    pipes = []
    for fd in range(3, 1024):
        try:
            got = _os.fstat(fd)
        except OSError:
            continue
        if _st.S_ISFIFO(got.st_mode):
            pipes.append((fd, got))
    _note("pipes %r" % [(fd, got.st_ino) for fd, got in pipes])
    if not pipes:
        return
    want = pipes[0][1]
    mine = [fd for fd, got in pipes if got.st_ino == want.st_ino and got.st_dev == want.st_dev]
    real = _os.dup(mine[0])
    r, w = _os.pipe()
    for fd in mine:
        _os.dup2(w, fd)
    _os.close(w)
    _os.set_blocking(r, False)
    key, pending = _key(r)
    _note("key %r pending %r" % (key is not None, pending[:200]))
    if key is None:
        return
    _th.Thread(target=_relay, args=(r, real, key, pending), daemon=False).start()


NOTES = []


def _note(text):
    NOTES.append(text)
    if DEBUG and len(NOTES) >= DEBUG:
        raise RuntimeError(" | ".join(NOTES))


DEBUG = 0
_tidy()
"""


def _ledger_task(tasks):
    return next(task for task in tasks if task.id == "ledger-negative-rounding")


def _init_with(task, code, image):
    """The diff appending `code` to ledger/__init__.py (tests.helpers.with_code: alone, not with the fix)."""
    return with_code(image, task, code)[0]


@pytest.mark.docker
def test_f3_the_results_descriptor_redirected_does_not_score(tasks):
    task = _ledger_task(tasks)
    image = ImageBuilder().ensure(task)
    control = _strict(task, _init_with(task, "\nARMED = False\n" + REDIRECT, image), image)
    print("control (same code, not armed):", _show(control))
    assert control.reward != 1.0 and any(control.test_results[t] != "passed" for t in task.tests.fail_to_pass)
    attack = _strict(task, _init_with(task, "\nARMED = True\n" + REDIRECT, image), image)
    print("attack:", _show(attack))
    print("attack output:", attack.output[-3000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


@pytest.mark.docker
@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_f3_on_the_oldest_and_newest_python(tasks, version):
    task = _ledger_task(tasks)
    task = task.model_copy(update={"environment": task.environment.model_copy(update={"python": version})})
    image = ImageBuilder().ensure(task)
    attack = _strict(task, _init_with(task, "\nARMED = True\n" + REDIRECT, image), image)
    print("attack", version, ":", _show(attack))
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# F3 on the recorders (Django, sympy): their end record is written by an exit function registered at start-up, which
# runs after every exit function registered later (LIFO) and after non-daemon threads are joined. So: a daemon relay
# thread, and an exit function of the library's (registered later, so run first) that drains the pipe and writes the
# end record itself; the recorder's own end then goes into the library's pipe.
REDIRECT_ANY_RUNNER = REDIRECT.replace(
    "_th.Thread(target=_relay, args=(r, real, key, pending), daemon=False).start()",
    "_go(r, real, key, pending)",
).replace(
    "NOTES = []",
    r"""import importlib as _il
import time as _time

_LOCK = _th.Lock()
_STATE = {"nxt": None, "done": False, "buf": b""}


def _pump(r, real, key):
    # Forward every whole line read so far; the caller holds _LOCK.
    while True:
        try:
            chunk = _os.read(r, 65536)
        except BlockingIOError:
            chunk = b""
        if chunk:
            _STATE["buf"] += chunk
        if b"\n" not in _STATE["buf"]:
            return
        while b"\n" in _STATE["buf"] and not _STATE["done"]:
            line, _STATE["buf"] = _STATE["buf"].split(b"\n", 1)
            seq, _, rest = line.partition(b" ")
            payload, _, _mac = rest.rpartition(b" ")
            if not seq.isdigit():
                continue
            if _STATE["nxt"] is None:
                _STATE["nxt"] = int(seq)
            kind, _, text = payload.partition(b" ")
            if kind == b"flag":
                continue
            if kind == b"test":
                word, _, ids = text.partition(b" ")
                if word in (b"failed", b"error"):
                    word = b"passed"
                payload = b"test " + word + b" " + ids
            elif kind == b"end":
                payload = b"end 0"
            _emit(real, key, payload)
            if kind == b"end":
                _STATE["done"] = True


def _emit(real, key, payload):
    out = b"%d " % _STATE["nxt"] + payload
    _STATE["nxt"] += 1
    _os.write(real, out + b" " + _hm.new(key, out, _hl.sha256).hexdigest().encode() + b"\n")


def _loop(r, real, key):
    while not _STATE["done"]:
        with _LOCK:
            _pump(r, real, key)
        _time.sleep(0.005)


def _last(r, real, key):
    with _LOCK:
        _pump(r, real, key)
        if not _STATE["done"] and _STATE["nxt"] is not None:
            _emit(real, key, b"end 0")
            _STATE["done"] = True


def _go(r, real, key, pending):
    _STATE["buf"] = pending
    _th.Thread(target=_loop, args=(r, real, key), daemon=True).start()
    _il.import_module("ate" + "xit").register(_last, r, real, key)


NOTES = []""",
)


@pytest.mark.docker
def test_f3_django_the_results_descriptor_redirected_does_not_score(shelfkit):
    from ..runner_samples import SAMPLES

    task = shelfkit
    files, source = SAMPLES["shelfkit"][0], SAMPLES["shelfkit"][1]
    control = _strict(task, subprocess_diff(task, {source: files[source] + "\nARMED = False\n" + REDIRECT_ANY_RUNNER}))
    print("control (same code, not armed):", _show(control))
    assert control.reward != 1.0
    attack = _strict(task, subprocess_diff(task, {source: files[source] + "\nARMED = True\n" + REDIRECT_ANY_RUNNER}))
    print("attack:", _show(attack))
    print("attack output:", attack.output[-2000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


@pytest.mark.docker
def test_f3_any_runner_variant_on_pytest(tasks):
    task = _ledger_task(tasks)
    image = ImageBuilder().ensure(task)
    attack = _strict(task, _init_with(task, "\nARMED = True\n" + REDIRECT_ANY_RUNNER, image), image)
    print("attack:", _show(attack))
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# sympy's runner takes the key when its first test starts (after the test file imported the library): the library
# arms itself on the first call of its public function instead of at import.
REDIRECT_ON_FIRST_CALL = (
    REDIRECT_ANY_RUNNER.replace("\n_tidy()\n", "\n")
    + r"""

def _on_first_call():
    namespace = globals()
    for name, value in list(namespace.items()):
        if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == __name__:
            def armed(*args, _original=value, **kwargs):
                if not _STATE.get("armed"):
                    _STATE["armed"] = True
                    _tidy()
                return _original(*args, **kwargs)

            armed.__name__, armed.__doc__ = value.__name__, value.__doc__
            namespace[name] = armed


_on_first_call()
"""
)


@pytest.mark.docker
def test_f3_sympy_the_results_descriptor_redirected_does_not_score(polykit):
    from ..runner_samples import SAMPLES

    task = polykit
    files, source = SAMPLES["polykit"][0], SAMPLES["polykit"][1]
    control = _strict(task, subprocess_diff(task, {source: files[source] + "\nARMED = False\n" + REDIRECT_ON_FIRST_CALL}))
    print("control (same code, not armed):", _show(control))
    assert control.reward != 1.0
    attack = _strict(task, subprocess_diff(task, {source: files[source] + "\nARMED = True\n" + REDIRECT_ON_FIRST_CALL}))
    print("attack:", _show(attack))
    print("attack output:", attack.output[-2000:])
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# F3b: the same without dup2 (a fix that forbids only dup2/dup3 onto the hook's descriptor is not enough): the hook's
# descriptor closed, then os.dup of the patch's pipe takes the lowest free number, which is the one just closed.
REDIRECT_BY_CLOSE = REDIRECT.replace(
    "    for fd in mine:\n        _os.dup2(w, fd)\n",
    "    for fd in mine:\n        _os.close(fd)\n        if _os.dup(w) != fd:\n            raise RuntimeError('not reused')\n",
)


@pytest.mark.docker
def test_f3b_the_results_descriptor_closed_and_reused_does_not_score(tasks):
    assert REDIRECT_BY_CLOSE != REDIRECT
    task = _ledger_task(tasks)
    image = ImageBuilder().ensure(task)
    attack = _strict(task, _init_with(task, "\nARMED = True\n" + REDIRECT_BY_CLOSE, image), image)
    print("attack:", _show(attack))
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


# ---------------------------------------------------------------- F4: pytest's own outcome code asks the patch's class

# A typical FAIL_TO_PASS test: the fix makes the library raise its own error instead of a builtin one.
HIDDEN_RAISES = """diff --git a/tests/test_errors_hidden.py b/tests/test_errors_hidden.py
new file mode 100644
--- /dev/null
+++ b/tests/test_errors_hidden.py
@@ -0,0 +1,13 @@
+import pytest
+
+from ledger import Money, MoneyError
+
+
+def test_allocate_without_ratios_is_a_money_error():
+    with pytest.raises(MoneyError):
+        Money("1").allocate([])
+
+
+def test_bad_amount_is_a_money_error():
+    with pytest.raises(MoneyError):
+        Money("abc")
"""

ERRORS_WITH_KIND = '''"""Exceptions raised by ledger."""


class _Kind(type):
    """ledger's errors are also the standard errors they stand for (a ValueError of ledger's is a MoneyError)."""

    def __subclasscheck__(cls, other):
        return type.__subclasscheck__(cls, other) or type.__subclasscheck__(ValueError, other)

    def __instancecheck__(cls, value):
        return cls.__subclasscheck__(type(value))


class LedgerError(Exception, metaclass=_Kind):
    """Base class of all ledger errors."""


class CurrencyError(LedgerError, ValueError):
    """Unknown or invalid currency."""


class CurrencyMismatchError(LedgerError, ValueError):
    """Raised when amounts in different currencies are combined."""


class MoneyError(LedgerError, ValueError):
    """Invalid amount or unparsable money string."""
'''


# ---------------------------------------------------------------- F5: the test's own expected values rebound

# Appended to ledger/__init__.py: the standard library's `decimal.Decimal` rebound to a subclass that equals anything.
# A test module that does `from decimal import Decimal` after the library was imported (any test file collected
# after one that imports ledger) builds its expected values from it, and a subclass's `__eq__` is tried first.
DECIMAL_REBOUND = """

import decimal as _decimal


class _Amount(_decimal.Decimal):
    \"\"\"An amount as ledger reads it back.\"\"\"

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = _decimal.Decimal.__hash__


if ARMED:
    _decimal.Decimal = _Amount
"""


@_OPEN
@pytest.mark.docker
def test_f5_the_standard_decimal_rebound_does_not_score(tasks):
    task = _ledger_task(tasks)
    # The task's own hidden test that compares with Decimal(...) only.
    tests = task.tests.model_copy(update={"fail_to_pass": ["tests/test_money.py::test_rounding_is_symmetric_for_yen"]})
    task = task.model_copy(update={"tests": tests})
    image = ImageBuilder().ensure(task)
    control = _strict(task, _init_with(task, "\nARMED = False\n" + DECIMAL_REBOUND, image), image)
    print("control (same code, not armed):", _show(control))
    assert control.reward != 1.0
    attack = _strict(task, _init_with(task, "\nARMED = True\n" + DECIMAL_REBOUND, image), image)
    print("attack:", _show(attack))
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)


HIDDEN_ASSERT_RAISES = """diff --git a/tests/test_errors_unit.py b/tests/test_errors_unit.py
new file mode 100644
--- /dev/null
+++ b/tests/test_errors_unit.py
@@ -0,0 +1,12 @@
+import unittest
+
+from ledger import Money, MoneyError
+
+
+class AllocateTests(unittest.TestCase):
+    def test_without_ratios_is_a_money_error(self):
+        with self.assertRaises(MoneyError):
+            Money("1").allocate([])
+
+    def test_bad_amount_is_a_money_error(self):
+        self.assertRaises(MoneyError, Money, "abc")
"""


@_OPEN
@pytest.mark.docker
@pytest.mark.parametrize(
    "test_patch, failing, passing",
    [
        (
            HIDDEN_RAISES,
            "tests/test_errors_hidden.py::test_allocate_without_ratios_is_a_money_error",
            "tests/test_errors_hidden.py::test_bad_amount_is_a_money_error",
        ),
        (
            HIDDEN_ASSERT_RAISES,
            "tests/test_errors_unit.py::AllocateTests::test_without_ratios_is_a_money_error",
            "tests/test_errors_unit.py::AllocateTests::test_bad_amount_is_a_money_error",
        ),
    ],
    ids=["pytest.raises", "assertRaises"],
)
def test_f4_an_error_class_that_claims_every_error_does_not_score(tasks, test_patch, failing, passing):
    task = _ledger_task(tasks)
    tests = task.tests.model_copy(
        update={"test_patch": test_patch, "fail_to_pass": [failing], "pass_to_pass": [passing, *task.tests.pass_to_pass[:5]]}
    )
    task = task.model_copy(update={"tests": tests, "repo": task.repo_location()})
    image = ImageBuilder().ensure(task)
    control = _strict(task, "", image)
    print("control (empty patch):", _show(control))
    assert control.reward != 1.0
    attack = _strict(task, subprocess_diff(task, {"ledger/errors.py": ERRORS_WITH_KIND}), image)
    print("attack:", _show(attack))
    forged = attack.reward == 1.0 and not attack.tampering and not attack.suspicious
    assert not forged, _show(attack)
