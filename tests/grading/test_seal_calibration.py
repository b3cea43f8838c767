"""The sealed hook calibrated on real gold patches (issue 23, `bench/calibrate_gold.py`), on the real engine
with a Python 3.9 build of a bundled task (most SWE-bench images are 3.9).

A test's own subprocess says nothing of the recorder: before, every interpreter started under the
tests inherited its `PYTHONPATH`, ran it, and printed "Error in sitecustomize ... KeyError" on
stderr (the module took itself out of `sys.modules`, which 3.9's import reads back), so a test
asserting a subprocess's empty stderr failed: pytest-dev__pytest-7521's gold patch did not resolve
(`testing/test_capture.py::test_crash_on_closing_tmpfile_py27`).

The `code.__new__` rule:

On Python 3.8-3.10, `marshal` announces `code.__new__` for every code object it reads, so an import
that loads a module from its `.pyc` looked like code "making a code object" to the hook, charged to
the patched line that imported: django__django-11141's gold patch (Django 3.1, Python 3.9) was
flagged at `django/db/migrations/loader.py:77` and `:106`, its `import_module` of the migrations a
test had written. An import is not a forgery; code that unmarshals or builds a code object itself
still is."""

from __future__ import annotations

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.grading.grader import Grader

from ..helpers import with_code as _with_code

pytestmark = pytest.mark.docker

LAZY_IMPORT = """
def _later():
    import colorsys  # not imported by pytest; the image's stdlib has its .pyc
    return colorsys
_later()
"""

QUIET_SUBPROCESS = """
import subprocess as _subprocess, sys as _sys
_said = _subprocess.run([_sys.executable, "-c", "pass"], capture_output=True).stderr
if _said:
    raise RuntimeError("a subprocess wrote on stderr: %r" % _said)
"""

UNMARSHALS_CODE = """
import marshal as _marshal
_code = _marshal.loads(_marshal.dumps(compile("x = 1", "elsewhere.py", "exec")))
"""


@pytest.fixture(scope="module")
def task39(task):
    return task.model_copy(update={"environment": task.environment.model_copy(update={"python": "3.9"})})


@pytest.fixture(scope="module")
def image39(docker_client, task39):
    return ImageBuilder().ensure(task39)


def test_an_import_from_a_pyc_in_patched_code_is_not_flagged(task39, image39):
    _, with_fix = _with_code(image39, task39, LAZY_IMPORT)
    report = Grader(reward_policy="strict").grade(task39, with_fix, image=image39)
    assert report.status == "graded" and report.resolved and report.report_source == "sealed", (report.error, report.log)
    assert report.tampering == [] and report.reward == 1.0, report.tampering


def test_patched_code_that_unmarshals_a_code_object_is_still_flagged(task39, image39):
    _, with_fix = _with_code(image39, task39, UNMARSHALS_CODE)
    report = Grader(reward_policy="strict").grade(task39, with_fix, image=image39)
    assert report.status == "graded" and report.resolved, (report.error, report.log)
    assert any("makes a code object" in text for text in report.tampering), report.tampering
    assert report.reward == 0.0


def test_a_subprocess_of_the_tests_writes_nothing_of_ours_on_stderr(task39, image39):
    _, with_fix = _with_code(image39, task39, QUIET_SUBPROCESS)
    report = Grader(reward_policy="strict").grade(task39, with_fix, image=image39)
    assert report.status == "graded" and report.report_source == "sealed", (report.error, report.log)
    assert report.resolved and report.reward == 1.0, report.log_tail[-2000:]
