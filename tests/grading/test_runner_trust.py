"""What the grader trusts about the runner itself (red team rt3, issue 23): whether the patch changes the runner
(c4: decided from where the runner's packages are really imported from, not from folder names), and pytest's
assertion-rewrite cache written during the run by another process (c3: never read).

The attacks run on the real engine under `reward_policy="strict"`; the same code with the real fix still scores 1.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swe_env.grading import runner_probe, runners
from swe_env.grading.grader import Grader

from ..helpers import CACHE_FORGING_LIBRARY, added_file, attack_code, run_sealed_pytest, sealing_object, with_code

SITECUSTOMIZE = Path(runners.__file__).with_name("reporter") / "sitecustomize.py"

# c4 (rt3): the library registers a plugin on the live config whose pytest_runtest_call wrapper swallows the
# failures; a patched `docs/pytest/NOTES.txt` used to make the grader take the patch for the runner's own.
SWALLOWING_PLUGIN = """
def _register_checks():
    import sys
    finders = getattr(sys, "meta" + "_path")
    config = next((getattr(f, "config", None) for f in finders if getattr(f, "config", None) is not None), None)
    if config is None:
        return
    mark = getattr(__import__("py" + "test"), "hook" + "impl")

    def around(item):
        outcome = yield
        outcome.force_result(None)

    class Checks:
        pass

    setattr(Checks, "py" + "test_runtest_call", staticmethod(mark(hookwrapper=True)(around)))
    config.pluginmanager.register(Checks(), "ledger-checks")


_register_checks()
"""
NOTES = added_file("docs/pytest/NOTES.txt", ["How this project is tested."])


# ---------------------------------------------------------------- c4: the runner's own files, as the image says


def test_the_runner_is_changed_only_through_its_real_files():
    in_site_packages = runner_probe.RunnerFacts(runner_code=frozenset())
    pytest_itself = runner_probe.RunnerFacts(runner_code=frozenset({"src/_pytest", "src/pytest", "src/pluggy.py"}))
    runner = runners.runner_named("pytest")
    assert not runner.runner_is_repo(["docs/pytest/NOTES.txt", "ledger/__init__.py"], in_site_packages)
    assert not runner.runner_is_repo(["docs/pytest/NOTES.txt"], pytest_itself)
    assert not runner.runner_is_repo(["src/_pytest_extra/x.py"], pytest_itself)
    assert runner.runner_is_repo(["src/_pytest/python.py"], pytest_itself)
    assert runner.runner_is_repo(["src/pluggy.py"], pytest_itself)
    assert not runner.runner_is_repo(["src/_pytest/python.py"], runner_probe.RunnerFacts())  # not asked: checks stay on


def test_the_runner_probe_answer_is_read_bounded_and_kept():
    assert runner_probe.runner_paths('noise\n["src/_pytest", "/abs", "../up", "a/../b", 3, ""]') == {"src/_pytest"}
    assert runner_probe.runner_paths("not json") is None
    assert runner_probe.runner_paths("{}") is None
    facts = runner_probe.RunnerFacts(runner_code=frozenset({"src/_pytest"}))
    assert runner_probe.RunnerFacts.from_json(facts.to_json()).runner_code == {"src/_pytest"}
    assert runner_probe.RunnerFacts.from_json(runner_probe.RunnerFacts().to_json()).runner_code is None


def test_the_runner_probe_finds_packages_inside_the_repository(tmp_path):
    (tmp_path / "_pytest").mkdir()
    (tmp_path / "_pytest" / "__init__.py").write_text("")
    (tmp_path / "pluggy.py").write_text("")
    done = subprocess.run(
        [sys.executable, "-c", runner_probe.RUNNER_PROBE, *runner_probe.RUNNER_MODULES], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert runner_probe.runner_paths(done.stdout) == {"_pytest", "pluggy.py"}  # pytest itself: from the venv


@pytest.mark.docker
def test_a_patched_folder_named_pytest_does_not_make_the_patch_the_runner(task, image):
    alone, with_fix = with_code(image, task, attack_code(task, SWALLOWING_PLUGIN))
    report = Grader(reward_policy="strict").grade(task, alone + NOTES, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == 0.0, (report.test_results, report.tampering)
    assert any("implemented by code the patch changed" in text for text in report.tampering), report.tampering
    honest = Grader(reward_policy="strict").grade(task, task.gold_patch + NOTES, image=image)
    assert honest.status == "graded" and honest.reward == 1.0, (honest.error, honest.tampering)
    assert honest.tampering == [], honest.tampering


# The repository's own `pluggy.py` (as pytest's own repository holds its runner): the real pluggy loaded in its place,
# then the module's `__file__` pointed at this file, the repository's root folder. Before, the hooks took the runner's
# folders from those `__file__`s at the plugin's hello, so every file of the repository was the runner's.
PLUGGY_IN_THE_REPOSITORY = """
import os as _os, sys as _sys
_here = _os.path.dirname(_os.path.abspath(__file__))
_saved = _sys.path[:]
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
del _sys.modules["pluggy"]
import pluggy as _real
_sys.path[:] = _saved
_real.__file__ = __file__
_sys.modules["pluggy"] = _real
"""
LIBRARY_TEST = "import ledger_lib\n\n\ndef test_fixed():\n    assert ledger_lib.fixed()\n"


def test_the_runner_places_go_to_the_hooks_only_when_the_patch_changes_the_runner():
    from swe_env.grading import seal

    facts = runner_probe.RunnerFacts(runner_code=frozenset({"src/_pytest", "pluggy.py"}))
    runner = runners.runner_named("pytest")
    assert runner.runner_places(["pluggy.py", "lib.py"], facts) == ["pluggy.py", "src/_pytest"]
    assert runner.runner_places(["lib.py"], facts) == []
    assert runner.runner_places(["pluggy.py"], runner_probe.RunnerFacts()) == []
    text = seal.key_file(b"k", ["/r/pluggy.py"], True, runner_places=["/r/pluggy.py", "relative", "/r/a\nb"]).decode()
    assert text.splitlines()[-1] == "@runner /r/pluggy.py" and "relative" not in text and "/r/a" not in text
    assert "@runner" not in seal.key_file(b"k", ["/r/x.py"], False, runner_places=["/r/pluggy.py"]).decode()


@pytest.mark.parametrize("sealed_by", ["native", "python"])
def test_the_runners_own_files_are_the_probes_not_a_modules_file(tmp_path, sealed_by):
    """When the patch changes the runner, only the files the runner probe found are exempt from the hooks' checks (the
    key file's `@runner` paths), not the folders of `pytest`'s, `_pytest`'s and `pluggy`'s `__file__`, which the patched
    runner sets before the hello: here a patched `pluggy.py` at the repository's root pointed them at the root, and a
    library's plugin registered on the live config swallowed the failure unflagged."""
    from swe_env.grading import seal

    data = sealing_object(sealed_by)
    library = SWALLOWING_PLUGIN + "\n\ndef fixed():\n    return False\n"
    files = {"test_it.py": LIBRARY_TEST, "ledger_lib.py": library, "pluggy.py": PLUGGY_IN_THE_REPOSITORY}
    written, key = run_sealed_pytest(tmp_path, data, files, ["pluggy.py", "ledger_lib.py"], runner_is_repo=True, runner_places=["pluggy.py"])
    sealed = seal.read(written, key, "pytest")
    assert sealed.seal == sealed_by, (sealed.error, sealed.notes)
    assert any("implemented by code the patch changed" in flag and "ledger_lib.py" in flag for flag in sealed.flags), sealed.flags


# ---------------------------------------------------------------- c3: caches written during the run are not read


def _guard_script(started: str) -> str:
    """A Python run with the hook's cache guard installed (`started`: an expression for its start, in ns)."""
    return (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('swe_env_site', {str(SITECUSTOMIZE)!r})\n"
        "site = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(site)\n"
        f"sys.addaudithook(site._cache_guard({started}))\n"
    )


def test_a_pyc_changed_after_the_start_is_not_read_and_the_source_is_compiled(tmp_path):
    (tmp_path / "mod.py").write_text("VALUE = 'source'\n")
    cached = Path(importlib.util.cache_from_source(str(tmp_path / "mod.py")))
    cached.parent.mkdir()
    stat = os.stat(tmp_path / "mod.py")
    header = b"\0\0\0\0" + (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    forged = importlib.util.MAGIC_NUMBER + header + marshal.dumps(compile("VALUE = 'forged'\n", "mod.py", "exec"))
    cached.write_bytes(forged)
    script = _guard_script("0") + textwrap.dedent(f"""
        sys.path.insert(0, {str(tmp_path)!r})
        try:
            open({str(cached)!r}, "rb")
        except PermissionError:
            print("refused")
        import mod
        print(mod.VALUE)
        open({str(cached)!r}, "rb").close()  # the cache this process wrote (renamed into place) is read
        print("read")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWE_ENV_") and k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["refused", "source", "read"], done.stderr
    # A cache older than the process is read as usual.
    cached.write_bytes(forged)
    later = _guard_script("__import__('time').time_ns() + 10**12") + f"sys.path.insert(0, {str(tmp_path)!r})\nimport mod\nprint(mod.VALUE)\n"
    done = subprocess.run([sys.executable, "-c", later], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["forged"], done.stderr


def test_a_pyc_this_process_wrote_in_place_is_read(tmp_path):
    """Calibration (calib4, pytest-dev__pytest-11143: pytest's own test_read_pyc_more_invalid writes `.pyc` bytes with
    `write_bytes` and reads them back with `_read_pyc`): a cache the process itself wrote is its own, created or
    rewritten in place; one another process changed after that is still refused."""
    cached = tmp_path / "source.pyc"
    script = _guard_script("0") + textwrap.dedent(f"""
        import pathlib, subprocess
        cached = pathlib.Path({str(cached)!r})
        for _ in range(2):  # created, then rewritten in place
            cached.write_bytes(b"written by this process")
            print(cached.read_bytes().decode())
        subprocess.run([sys.executable, "-c", "import pathlib; pathlib.Path({str(cached)!r}).write_bytes(b'x')"], check=True)
        __import__("time").sleep(2.5)
        subprocess.run([sys.executable, "-c", "import pathlib; pathlib.Path({str(cached)!r}).write_bytes(b'x')"], check=True)
        try:
            cached.read_bytes()
        except PermissionError:
            print("refused")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWE_ENV_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.splitlines() == ["written by this process"] * 2 + ["refused"], done.stderr


@pytest.mark.docker
def test_a_rewrite_cache_forged_during_the_run_is_not_read(tasks):
    from swe_env.build.images import ImageBuilder

    # rt3's task: the F2P tests are in a module pytest imports after the library (the forger's reach).
    task = next(t for t in tasks if t.id == "ledger-negative-rounding")
    image = ImageBuilder().ensure(task)
    alone, with_fix = with_code(image, task, CACHE_FORGING_LIBRARY)
    report = Grader(reward_policy="strict").grade(task, alone, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert report.reward == 0.0, (report.test_results, report.tampering)
    assert all(report.test_results.get(test_id) != "passed" for test_id in task.tests.fail_to_pass), report.test_results
    # One forging event is one flag record, however many test modules' caches it forged (four here; one record each
    # before), naming where the patch's code started the forger.
    forged = [flag for flag in report.tampering if "compiled code written by another process" in flag]
    assert len(forged) == 1 and "ledger/" in forged[0].split(" (")[0], report.tampering
    # With the real fix and the same forger, the forged cache is still never read (the tests pass on the fixed
    # source), and the forging itself is flagged by the hook (a compiled file another process wrote after the
    # patch's code started one): the strict policy withholds the reward, the lenient one gives it.
    honest = Grader(reward_policy="strict").grade(task, with_fix, image=image)
    assert honest.status == "graded" and honest.resolved, (honest.error, honest.tampering)
    assert [bool("compiled code written by another process" in flag) for flag in honest.tampering].count(True) == 1, honest.tampering
    lenient = Grader(reward_policy="lenient").grade(task, with_fix, image=image)
    assert lenient.resolved and lenient.reward == 1.0, (lenient.error, lenient.tampering)
