"""Bounds on what the host derives from agent-controlled input, pure (no container): flags, reports,
results streams, the edit tool's messages and its parser. Inputs are at or past each limit; memory is
measured with tracemalloc, time never asserted (work that is linear finishes; quadratic work would not
finish within the test's run on these sizes)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tracemalloc

import pytest

from swe_env.grading import grader, protection, runner_probe, runners, seal, suspicion, testlogs, verdict
from swe_env.grading.verdict import GradingReport, bound_report
from swe_env.tools import files as file_tools
from swe_env.tools import registry

from ..helpers import added_file as _added_file

MiB = 1024 * 1024


# ---------------------------------------------------------------- suspicion flags


def test_flags_stop_at_their_limit_and_say_so():
    flagged = 50_000
    patch = _added_file("pkg/" + "d" * 3000 + "/hook.py", ["import atexit  " + "x" * 500] * flagged)
    found = suspicion.flags(patch)
    assert len(found) == suspicion.MAX_FLAGS + 1
    assert found[-1].startswith(f"... the scan stopped at {suspicion.MAX_FLAGS} flags")
    # Each entry is short whatever the path and the line: the path and the line are cut.
    assert max(len(entry) for entry in found) < 500
    assert "interpreter's exit" in found[0] and found[0].endswith("...")


def test_flags_below_the_limit_are_all_listed():
    found = suspicion.flags(_added_file("pkg/hook.py", ["import atexit"] * 3))
    assert [entry.split(":")[1] for entry in found] == ["1", "2", "3"]
    # Files flagged as a whole count too: the list never passes its limit.
    many_files = "".join(_added_file(f"pkg/m{i}.pth", ["x"]) for i in range(suspicion.MAX_FLAGS + 50))
    found = suspicion.flags(many_files)
    assert len(found) == suspicion.MAX_FLAGS + 1 and found[-1].startswith("... the scan stopped")


def test_flags_of_a_large_patch_stay_small_in_memory():
    line = "os._exit(0)  # " + "y" * 80
    count = 8 * MiB // (len(line) + 2)  # the grader's own test takes a patch at the limit (test_grading_bounds.py)
    patch = _added_file("pkg/exit.py", [line] * count)
    tracemalloc.start()
    try:
        found = suspicion.flags(patch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(found) == suspicion.MAX_FLAGS + 1 and "the scan stopped" in found[-1]
    # The parsed patch is the cost (a few times its size); the flags add nothing past their limit.
    assert peak < 12 * len(patch)


# ---------------------------------------------------------------- the report's derived fields


def test_bound_report_cuts_every_field_derived_from_the_patch_or_the_run():
    report = GradingReport(
        task_id="t",
        status="graded",
        error="e" * (verdict.MAX_ERROR_CHARS * 10),
        restored=[f"f{i}.py" for i in range(verdict.MAX_LISTED * 3)],
        suspicious=[f"s{i}" for i in range(suspicion.MAX_FLAGS * 5)],
        log=["l" * (verdict.MAX_LOG_LINE_CHARS * 4)] * (verdict.MAX_LOG_LINES * 3),
    )
    bound_report(report)
    assert len(report.error) < verdict.MAX_ERROR_CHARS + 100 and report.error.endswith("characters cut]")
    assert len(report.restored) == verdict.MAX_LISTED + 1 and report.restored[-1] == f"... and {verdict.MAX_LISTED * 2} more"
    assert len(report.suspicious) == suspicion.MAX_FLAGS + 2
    assert len(report.log) == verdict.MAX_LOG_LINES + 1 and "lines cut" in report.log[verdict.MAX_LOG_LINES // 2]
    assert max(map(len, report.log)) <= verdict.MAX_LOG_LINE_CHARS + 3
    small = GradingReport(task_id="t", status="graded", error="short", restored=["a.py"], log=["one"])
    assert bound_report(small.model_copy(deep=True)) == small


def _task():
    from swe_env.data.task import load_tasks

    from ..helpers import TASKS_DIR

    return load_tasks(TASKS_DIR)[0]


def test_a_patch_past_the_limit_is_the_models_failure_without_a_container():
    patch = "diff --git a/x b/x\n" + "+" * (grader.MAX_PATCH_BYTES + 1)
    for mode, unresolved in (("binary", 0.0), ("signed", -1.0)):
        report = grader.Grader(reward_mode=mode).grade(_task(), patch, image="no-such-image:never-started")
        assert report.status == "patch_failed" and not report.infrastructure_failure
        assert "more than the grader takes" in report.error and report.reward == unresolved
    # Counted in bytes, not characters: two-byte characters past the limit are refused too.
    wide = "é" * (grader.MAX_PATCH_BYTES // 2 + 1)
    assert grader.Grader().grade(_task(), wide, image="none").status == "patch_failed"


@pytest.mark.parametrize("failure", [MemoryError, RuntimeError])
def test_grade_never_raises_and_labels_its_own_failure(monkeypatch, failure):
    def fails(*_args, **_kwargs):
        raise failure("x" * (verdict.MAX_ERROR_CHARS * 5))

    monkeypatch.setattr(grader.Grader, "_grade", fails)
    report = grader.Grader().grade(_task(), "a patch")
    assert report.status == "infra_error" and report.infrastructure_failure and report.reward == 0.0
    assert failure.__name__ in report.error and len(report.error) < verdict.MAX_ERROR_CHARS + 200


# ---------------------------------------------------------------- results streams


CASE = '<testcase classname="tests.test_a" name="test_{i}" file="tests/test_a.py"{body}'
REPORT = '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">{cases}</testsuite></testsuites>'


def _report(statuses: list[str]) -> str:
    bodies = {
        "passed": "/>",
        "failed": '><failure message="x">boom</failure></testcase>',
        "skipped": '><skipped type="pytest.skip"/></testcase>',
        "xfail": '><skipped type="pytest.xfail"/></testcase>',
        "error": '><error message="e"/></testcase>',
    }
    return REPORT.format(cases="".join(CASE.format(i=i, body=bodies[s]) for i, s in enumerate(statuses)))


def test_streamed_junit_reports_read_as_a_whole_parse_does(monkeypatch):
    statuses = ["passed", "failed", "skipped", "xfail", "error"] * 40
    two = (_report(statuses) + _report(statuses[::-1])).encode()
    whole = testlogs.parse_junit_reports(two)
    # Pieces of a few characters: every declaration and tag is split somewhere between two pieces.
    monkeypatch.setattr(testlogs, "FEED_CHARS", 7)
    pieces = testlogs.parse_junit_reports(two)
    assert pieces == whole and whole.cases == 2 * len(statuses)
    assert whole.by_id["tests/test_a.py::test_1"] == testlogs.FAILED  # failed once, error in the other: worst
    assert whole.by_id["tests/test_a.py::test_0"] == testlogs.ERROR
    single = testlogs.parse_junit(_report(["xfail"]))
    assert single.by_id == {"tests/test_a.py::test_0": testlogs.PASSED}


def test_invalid_bytes_on_the_results_stream_are_refused_in_bounded_memory():
    junk = b"\xff\xfe" * (32 * MiB)  # 64 MiB of bytes that are not UTF-8 (each decodes to U+FFFD)
    inside = b"<testsuite><testcase classname='a' name='b'><system-out>" + junk[: 16 * MiB] + b"</system-out></testcase></testsuite>"
    broken = junk[: 16 * MiB] + b"<testcase"
    tracemalloc.start()
    try:
        nothing = runners.Runner().read(junk)  # text, no testcase: nothing to believe
        results = runners.Runner().read(inside)
        with pytest.raises(runners.ResultsError, match="not valid XML"):
            runners.Runner().read(broken)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert nothing.cases == 0 and not nothing.by_id and not nothing.by_key
    assert results.cases == 1 and results.by_key[("a", "b")] == testlogs.PASSED
    # The input is not counted (it was made before tracing started); the parse holds a few pieces at most.
    assert peak < 8 * testlogs.FEED_CHARS * 4


def test_near_matches_are_looked_for_among_the_same_files_ids_only(monkeypatch):
    """A missing id's near match comes from its own file's reported ids, at most `_NEAREST_CANDIDATES` of them,
    so a run reporting many near-miss ids costs difflib a bounded amount (red team rt3, d2)."""
    compared: list[int] = []
    real = verdict.difflib.get_close_matches

    def counting(word, possibilities, *args, **kwargs):
        compared.append(len(possibilities))
        return real(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(verdict.difflib, "get_close_matches", counting)
    monkeypatch.setattr(verdict, "_NEAREST_CANDIDATES", 50)
    junit = testlogs.JUnitResults()
    for n in range(500):
        testlogs.add_node_status(junit, f"tests/test_other.py::test_{n}", testlogs.PASSED)
        testlogs.add_node_status(junit, f"tests/test_a.py::test_near_{n}", testlogs.PASSED)
    report = GradingReport(task_id="t", status="graded")
    verdict.record_statuses(report, ["tests/test_a.py::test_near_1x"], [], junit, "")
    assert report.test_results == {"tests/test_a.py::test_near_1x": testlogs.MISSING}
    assert report.nearest_ids == {"tests/test_a.py::test_near_1x": "tests/test_a.py::test_near_1"}
    assert compared == [50]


def test_the_restore_decision_is_the_same_set_as_the_pairwise_one_and_linear():
    """Tracked files under a restored folder are found by looking each file's folders up (red team rt3, d3:
    the pairwise test was |tracked| x |restored|)."""
    in_base = [f"pkg/m{i}/f{j}.py" for i in range(30) for j in range(20)] + ["tests/a/t.py", "tests/a/b/u.py", "setup.cfg"]
    named = ["tests/a", "pkg/m3/", "pkg/m4/f1.py", *[f"tests/new_{n}.py" for n in range(3000)]]
    decided = protection.paths_to_restore(
        named,
        named,
        in_base=in_base,
        protected=["tests/*", "pkg/*"],
        protected_config=[],
        protect_imports=False,
        test_patch_paths=[],
        config_changed=lambda _path: False,
    )
    restored = decided.paths
    pairwise = {p for p in in_base if p in restored or any(p.startswith(r.rstrip("/") + "/") for r in restored)}
    assert set(decided.checked_out) == pairwise
    assert {"tests/a/t.py", "tests/a/b/u.py"} <= pairwise and len(restored) > 3000


def test_too_many_testcases_are_not_believed(monkeypatch):
    monkeypatch.setattr(testlogs, "MAX_TESTCASES", 10)
    with pytest.raises(runners.ResultsError, match="more than 10 testcases"):
        runners.Runner().read(_report(["passed"] * 11).encode())
    assert runners.Runner().read(_report(["passed"] * 10).encode()).cases == 10


def test_unclosed_declarations_cost_linear_time():
    # `<?xml` openings that never close: a regex scanning to the end from each would be quadratic.
    with pytest.raises(runners.ResultsError):
        runners.Runner().read(b"<testsuite>" + b"<?xml " * (2 * MiB))


def test_sealed_stream_is_read_in_bounded_memory():
    """Invalid bytes on the results stream (what code under test can write there) cost the reader one pass and
    a bounded amount of memory: never a list of lines, never a copy per line kept."""
    key = seal.new_key()
    garbage = b"x" * (16 * MiB) + b"\n" + b" \n" * (2 * MiB) + b"\xff\xfe not a record\n" * 100_000
    tracemalloc.start()
    try:
        sealed = seal.read(garbage, key, "django")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sealed.results is None and sealed.error == "no sealed record was written"
    assert sealed.flags == ["100001 line(s) on the results stream were not written by the grader's sealed hook"]
    assert peak < 20 * MiB  # the one 16 MiB line is sliced once, then dropped


def test_iter_lines_numbers_lines_and_skips_long_ones():
    data = b"a\n\nbbbb\ncc"
    assert list(testlogs.iter_lines(data, 3)) == [(1, b"a"), (2, b""), (3, None), (4, b"cc")]
    assert list(testlogs.iter_lines(b"", 3)) == []


# ---------------------------------------------------------------- the edit tool


def _naive_lines(text: str, needle: str) -> list[int]:
    found, start = [], 0
    while (index := text.find(needle, start)) != -1:
        found.append(text.count("\n", 0, index) + 1)
        start = index + len(needle)
    return found


def test_occurrence_lines_match_counting_from_the_start():
    rng = random.Random(7)
    for _ in range(200):
        text = "".join(rng.choice("ab\n") for _ in range(rng.randint(0, 60)))
        needle = "".join(rng.choice("ab\n") for _ in range(rng.randint(1, 3)))
        assert file_tools._occurrence_lines(text, needle, 20) == _naive_lines(text, needle)[:20]


def test_occurrence_lines_of_a_large_file_are_linear():
    text = "x = 1\n" * 40_000  # 240 KB, 40,000 occurrences of the old text
    assert file_tools._occurrence_lines(text, "x = 1", file_tools.SHOWN_OCCURRENCES) == list(range(1, 21))
    assert file_tools._occurrence_lines(text, "never", 20) == []


_OLD_SEARCH_REPLACE = re.compile(r"\A(?P<path>[^\n]*)\n<<<<<<< SEARCH\n(?P<old>.*?)\n?=======\n(?P<new>.*?)\n?>>>>>>> REPLACE\s*\Z", re.DOTALL)


def test_edit_blocks_read_as_the_regex_read_them():
    rng = random.Random(11)
    parts = ["p.py\n", "<<<<<<< SEARCH\n", "=======\n", ">>>>>>> REPLACE", "\n", "a", " ", "x\n", "=======", "\t"]
    for _ in range(5000):
        body = "".join(rng.choice(parts) for _ in range(rng.randint(0, 9)))
        if rng.random() < 0.5:
            body = "p.py\n<<<<<<< SEARCH\n" + body + rng.choice(["", "\n"]) + ">>>>>>> REPLACE" + rng.choice(["", "\n", " \n"])
        match = _OLD_SEARCH_REPLACE.match(body)
        try:
            got = registry._edit_from(body)
        except ValueError:
            assert match is None, body
            continue
        assert match is not None and got == {"path": match["path"].strip(), "old": match["old"], "new": match["new"]}, body


def test_an_edit_block_of_many_dividers_without_a_close_is_refused_in_linear_time():
    body = "p.py\n<<<<<<< SEARCH\n" + "=======\n" * 200_000
    with pytest.raises(ValueError, match="expected the path"):
        registry._edit_from(body)
    ok = registry._edit_from("p.py\n<<<<<<< SEARCH\nold\n=======\n" + "=======\n" * 200_000 + ">>>>>>> REPLACE\n")
    assert ok["old"] == "old" and ok["new"].count("=======") == 200_000


# ---------------------------------------------------------------- what the installed runner reads


def _probe(script: str, *args: str) -> str:
    return subprocess.run([sys.executable, "-I", "-c", script, *args], capture_output=True, text=True, cwd="/", timeout=600, check=True).stdout


def test_importable_names_come_from_the_interpreter_not_a_list(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "mine.py").write_text("")
    names = runner_probe.module_names(_probe(runner_probe.IMPORTABLE_PROBE, str(repo)))
    assert {"json", "pytest", "pydantic", "docker"} <= names  # stdlib, pytest, installed packages
    assert "mine" not in names and "__pycache__" not in names
    assert runner_probe.module_names("ok\nnot a name\n../x\n") == {"ok"}
    # A new top-level module named like one of them is removed; one base_commit has is the project's own.
    assert protection.shadows_a_module("pydantic/__init__.py", set(), names)
    assert protection.shadows_a_module("docker.py", set(), names)
    assert not protection.shadows_a_module("docker.py", {"docker.py"}, names)
    assert not protection.shadows_a_module("pkg/docker.py", set(), names)
    assert not protection.shadows_a_module("brand_new_module.py", set(), names)


def test_the_config_files_pytest_reads_are_asked_of_pytest():
    import pytest as installed

    read = runner_probe.config_names(_probe(runner_probe.CONFIG_PROBE, json.dumps(runner_probe.CONFIG_CANDIDATES)))
    expected = {"pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"}
    if int(installed.__version__.split(".")[0]) >= 9:
        expected |= {"pytest.toml", ".pytest.toml"}
    assert read == expected
    facts = runner_probe.RunnerFacts(config_names=frozenset(read))
    assert set(facts.protected_config()) == {"**/pyproject.toml", "**/tox.ini", "**/setup.cfg"}
    assert {"**/pytest.ini", "**/.pytest.ini"} <= set(facts.protected())
    assert runner_probe.config_names('noise\n["pytest.ini", "evil/../x", 3]') == {"pytest.ini"}
    assert runner_probe.config_names("not json") == frozenset()


def test_a_clean_run_reports_the_imports_it_tried_and_missed(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(runner_probe.IMPORTS_SITE)
    out = tmp_path / "tried"
    program = "import json\ntry:\n    import no_such_optional_dep.sub\nexcept ImportError:\n    pass\n"
    env = {"PYTHONPATH": str(site), "SWE_ENV_PROBE_OUT": str(out), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", program], env=env, check=True, timeout=120)
    tried = runner_probe.module_names(out.read_text())
    assert "no_such_optional_dep" in tried and "json" not in tried
    facts = runner_probe.RunnerFacts(importable=frozenset({"json"}), failed_imports=tried)
    assert runner_probe.RunnerFacts.from_json(facts.to_json()) == facts
    assert protection.shadows_a_module("no_such_optional_dep/__init__.py", set(), facts.shadowable)


def test_what_the_command_names_is_read_too():
    files, plugins = runner_probe.named_in_command(
        "python -m pytest -c ci/pytest.cfg -p xdist.plugin -pmyplug -p no:cacheprovider --config-file=/repo/other.ini "
        "--config-file ../outside.ini -p 'bad name' -rA tests/",
        "/repo",
    )
    assert files == ["ci/pytest.cfg", "other.ini"] and plugins == {"xdist", "myplug"}
    assert runner_probe.named_in_command("pytest 'unclosed", "/repo") == ([], frozenset())
