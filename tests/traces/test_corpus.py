"""Trace corpora: the tracer's corpus mode (one trace per test function, outcomes), function-level
traces, caps, deduplication, resuming, the CWM shards and the CLI. Containers are real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swe_env.grading import runners as grading_runners
from swe_env.grading import seal
from swe_env.runtime.shell import CommandResult
from swe_env.traces import corpus
from swe_env.traces import host as traces
from swe_env.traces.corpus import CorpusOptions, CorpusTrace
from swe_env.traces.corpus_schema import RawTrace
from swe_env.traces.host import Trace, TraceEntry, TraceEvent, TraceOptions
from swe_env.traces.tracer import runner

from ..helpers import corpus_containers
from ..helpers import run_cli as swe_env


def shard_records(out: Path, row: corpus.TaskCorpus) -> list[CorpusTrace]:
    return [CorpusTrace.model_validate_json(line) for line in (out / row.shard).read_text().splitlines()]


def is_test_entry(record: CorpusTrace) -> bool:
    """The entry is the test function the node id names (class methods as Class.method, parameters cut)."""
    node = record.test_id.split("[")[0]
    return node == f"{record.entry.file}::{record.entry.function.replace('.', '::')}" and record.entry.function.split(".")[-1].startswith("test")


# ---------------------------------------------------------------- a whole bundled suite


@pytest.fixture(scope="module")
def whole(tmp_path_factory, task, image):
    out = tmp_path_factory.mktemp("corpus")
    manifest = corpus.trace_corpus([task], out, CorpusOptions(cwm=True))
    return out, manifest, manifest.tasks[task.id]


def test_each_test_function_is_one_trace_with_its_outcome_unchanged(whole, task):
    out, manifest, row = whole
    assert row.status == "done" and row.error is None, row
    assert row.command == task.tests.command and not row.with_test_patch
    records = shard_records(out, row)
    tests = [r for r in records if r.level == "test"]
    # Base commit without the hidden tests: the repository's own suite, which passes.
    assert set(task.tests.pass_to_pass) <= {r.test_id for r in tests}
    assert not set(task.tests.fail_to_pass) & {r.test_id for r in tests}
    assert len(tests) == row.test_traces == row.tests and not row.untraced_tests
    assert len({r.test_id for r in tests}) == len(tests)
    assert row.outcomes == {"passed": row.tests} and not row.failed_tests
    assert row.outcomes_checked and row.outcomes_unchanged and not row.outcome_changes
    for record in tests:
        assert is_test_entry(record), record.entry
        assert record.task_id == task.id and record.parent_trace_id is None
        first, last = record.events[0], record.events[-1]
        assert (first.event, first.depth, first.function) == ("call", 0, record.entry.function)
        assert last.depth == 0 and last.event in ("return", "exception")
        assert record.complete and record.cut is None
        assert record.entry.source.startswith("def ") or record.entry.source.lstrip().startswith("def ")
        # Below the test: the repository's own code only (no site-packages, no pytest).
        assert all(not e.file.startswith("/") for e in record.events), {e.file for e in record.events}
    assert any(e.depth > 0 and not e.file.startswith("tests/") for r in tests for e in r.events)


def test_function_level_traces_are_cut_from_their_tests(whole):
    out, _manifest, row = whole
    records = shard_records(out, row)
    by_id = {r.trace_id: r for r in records}
    functions = [r for r in records if r.level == "function"]
    assert functions and len(functions) == row.function_traces
    for record in functions:
        assert record.parent_trace_id in by_id and by_id[record.parent_trace_id].test_id == record.test_id
        first = record.events[0]
        assert (first.event, first.depth, first.frame, first.function) == ("call", 0, 0, record.entry.function)
        assert record.entry.line == first.line and record.entry.source
        assert min(e.depth for e in record.events) == 0
        if record.cut is None and record.complete:
            assert record.events[-1].depth == 0 and record.events[-1].event in ("return", "exception")
    # Deduplicated by content: no two records share a hash, and the hash is the content's.
    assert len({r.content_hash for r in records}) == len(records)
    assert all(r.content_hash == corpus.content_hash(r.entry, r.events) for r in records[:50])


def test_cwm_shard_parses_back_record_by_record(whole):
    out, _manifest, row = whole
    records = shard_records(out, row)
    lines = [json.loads(line) for line in (out / row.cwm_shard).read_text().splitlines()]
    assert [line["trace_id"] for line in lines] == [r.trace_id for r in records]
    for line, record in zip(lines, records, strict=True):
        parsed = traces.parse_cwm(line["text"])
        assert parsed.ended == (line["cut"] is None) and line["level"] == record.level
        assert len(parsed.frames) == len(record.events)
        assert parsed.context.split("\n")[parsed.entry_line - 1].endswith(traces.START_MARKER)


def test_manifest_counts_match_the_shards_and_no_container_is_left(whole):
    out, manifest, row = whole
    on_disk = corpus.load_manifest(out)
    assert on_disk == manifest
    assert row.bytes == (out / row.shard).stat().st_size
    assert manifest.totals["test_traces"] + manifest.totals["function_traces"] == len(corpus.read_corpus(out))
    assert manifest.totals["bytes"] == row.bytes and manifest.totals["outcome_changes"] == 0
    assert corpus_containers() == []


def test_resume_skips_finished_tasks_and_refuses_other_options(whole, task):
    out, manifest, _row = whole
    started = []
    again = corpus.trace_corpus([task], out, CorpusOptions(cwm=True), on_start=started.append)
    assert started == [] and again.tasks == manifest.tasks
    with pytest.raises(ValueError, match="other options"):
        corpus.trace_corpus([task], out, CorpusOptions(cwm=False))


@pytest.mark.docker  # starts containers through the CLI or the corpus, without the engine's fixture
def test_corpus_of_every_bundled_repository_keeps_every_outcome(tmp_path, tasks):
    one_per_repo = list({task.repo: task for task in tasks}.values())
    assert len(one_per_repo) >= 3
    manifest = corpus.trace_corpus(one_per_repo, tmp_path, CorpusOptions(cwm=True, max_function_traces_per_test=5), workers=2)
    assert set(manifest.tasks) == {task.id for task in one_per_repo} and not manifest.not_reached
    for row in manifest.tasks.values():
        assert row.status == "done" and row.outcomes_checked and row.outcomes_unchanged, row
        assert row.tests > 0 and row.test_traces + row.duplicates >= row.tests and not row.untraced_tests
        records = shard_records(tmp_path, row)
        assert all(is_test_entry(r) for r in records if r.level == "test")
        assert all(traces.parse_cwm(json.loads(line)["text"]) for line in (tmp_path / row.cwm_shard).read_text().splitlines())
    assert manifest.totals["outcome_changes"] == 0 and manifest.totals["failed_tasks"] == 0
    assert corpus_containers() == []


# ---------------------------------------------------------------- caps, hidden tests, selection


def test_caps_per_trace_and_per_corpus_are_respected_and_marked(tmp_path, task, image):
    options = CorpusOptions(trace=TraceOptions(max_events=12), max_traces=15, cwm=True, check_outcomes=False)
    manifest = corpus.trace_corpus([task], tmp_path, options)
    row = manifest.tasks[task.id]
    records = shard_records(tmp_path, row)
    assert len(records) == 15 == row.test_traces + row.function_traces
    assert row.status == "stopped" and row.stopped_by == "max_traces" and row.dropped_by_caps > 0
    assert all(r.event_count == len(r.events) <= 12 for r in records)
    cut = [r for r in records if r.cut == "max_events"]
    assert cut and row.cut.get("max_events") == len(cut)
    for line in (tmp_path / row.cwm_shard).read_text().splitlines():
        record = json.loads(line)
        assert traces.parse_cwm(record["text"]).ended == (record["cut"] is None)
        if record["cut"]:
            assert not record["text"].endswith(traces.END_OF_TEXT) and record["text"].endswith(traces.FRAME_SEP)
    assert not row.outcomes_checked and row.outcomes_unchanged is None

    small = corpus.trace_corpus([task], tmp_path / "bytes", CorpusOptions(max_bytes=60_000, check_outcomes=False))
    row = small.tasks[task.id]
    assert 0 < row.bytes <= 60_000 and row.stopped_by == "max_bytes"
    assert corpus_containers() == []


def test_a_selection_that_runs_no_test_is_an_error_with_its_cause(tmp_path, task, image):
    options = CorpusOptions(select=["-k", "no_test_is_named_like_this"], function_traces=False)
    manifest = corpus.trace_corpus([task], tmp_path, options)
    row = manifest.tasks[task.id]
    assert row.status == "failed" and row.tests == 0 and row.test_traces == 0 and row.shard is None
    # The cause in one line: nothing ran, pytest's exit code (5: no tests collected), the untraced
    # run's own count, what pytest collected, and pytest's last words.
    assert row.error.startswith("no test ran (exit code 5; untraced run: 0 test(s); collected: 0)"), row.error
    assert "deselected" in row.error and "\n" not in row.error
    assert manifest.totals["failed_tasks"] == 1
    # A re-run does not take the failed task as finished.
    started = []
    corpus.trace_corpus([task], tmp_path, options, on_start=started.append)
    assert started == [task]
    assert corpus_containers() == []


def test_nothing_traced_for_tests_that_ran_is_an_error():
    ran = corpus.TaskCorpus(task_id="t", status="done", tests=4, untraced_count=4, collected=4)
    result = CommandResult(exit_code=0, output="4 passed in 0.1s\n")
    why = corpus._nothing_recorded(ran, result, {"written": 0, "dropped": 0}, written=0)
    assert why == (
        "the tracer recorded no trace for the 4 test(s) that ran (tests in other processes, e.g. "
        "pytest-xdist's, are not traced) (exit code 0; untraced run: 4 test(s); collected: 4): 4 passed in 0.1s"
    )
    assert corpus._nothing_recorded(ran, result, {"written": 3}, written=3) is None
    capped = ran.model_copy(update={"stopped_by": "max_traces"})
    assert corpus._nothing_recorded(capped, result, {}, written=0) is None


def test_shards_split_a_suite_by_file_and_count_tokens(tmp_path, task, image):
    whole = corpus.trace_corpus([task], tmp_path / "whole", CorpusOptions(function_traces=False, check_outcomes=False))
    sharded = corpus.trace_corpus([task], tmp_path / "shards", CorpusOptions(function_traces=False, check_outcomes=False, shards=2), workers=2)
    rows = [sharded.tasks[f"{task.id}#{index}"] for index in (0, 1)]
    assert all(row.status == "done" and row.tests > 0 for row in rows), rows
    tests = [{r.test_id for r in shard_records(tmp_path / "shards", row)} for row in rows]
    assert not tests[0] & tests[1]
    assert tests[0] | tests[1] == {r.test_id for r in shard_records(tmp_path / "whole", whole.tasks[task.id])}
    assert not {t.split("::")[0] for t in tests[0]} & {t.split("::")[0] for t in tests[1]}  # whole files per shard
    # Tokens: byte-level by default, over each record's CWM text.
    records = corpus.read_corpus(tmp_path / "whole")
    assert all(r.tokens == len(traces.cwm_record(r)["text"].encode()) for r in records)
    assert whole.totals["tokens"] == sum(r.tokens for r in records) > 0
    with pytest.raises(ValueError, match="--tokenizer: nope.json"):
        corpus.token_counter("nope.json")
    assert corpus_containers() == []


def test_hidden_tests_only_when_asked_with_failures_reported(tmp_path, task, image):
    selection = [*task.tests.fail_to_pass, *task.tests.pass_to_pass[:3]]
    options = CorpusOptions(with_test_patch=True, select=selection, function_traces=False)
    row = corpus.trace_corpus([task], tmp_path, options).tasks[task.id]
    assert row.status == "done" and row.with_test_patch
    assert row.command.split()[-len(selection) :] == selection
    assert set(row.failed_tests) == set(task.tests.fail_to_pass)
    assert row.outcomes_checked and row.outcomes_unchanged
    records = shard_records(tmp_path, row)
    assert {r.test_id for r in records} == set(selection) and all(r.level == "test" for r in records)
    failing = [r for r in records if r.test_id in task.tests.fail_to_pass]
    assert all(r.events[-1].event == "exception" and r.events[-1].depth == 0 for r in failing)


def with_command(task, command: str, runner: str = "pytest", test_patch: str | None = None):
    update = {"command": command, "runner": runner, **({"test_patch": test_patch} if test_patch is not None else {})}
    return task.model_copy(update={"tests": task.tests.model_copy(update=update)})


def test_whole_suites_from_each_runners_command(task):
    whole, named = CorpusOptions(), CorpusOptions(suite="task")
    cases = [
        # (command, runner) -> the whole suite's argv, and the runner that names the tests
        (("pytest -rA -p no:cacheprovider tests/test_config.py tests/a.py::test_b", "pytest"), ["pytest", "-rA", "-p", "no:cacheprovider"], "pytest"),
        (("python -m pytest --tb=short -k 'a or b' testing/test_x.py", "pytest"), ["python", "-m", "pytest", "--tb=short", "-k", "a or b"], "pytest"),
        (("tox --current-env -epy39 -v -- tests/test_build.py", "pytest"), ["python", "-m", "pytest", "-rA"], "pytest"),
        (
            ("./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1 admin_views.tests", "django"),
            ["./tests/runtests.py", "--verbosity", "2", "--settings=test_sqlite", "--parallel", "1"],
            "django",
        ),
        (("./tests/runtests.py --verbosity 2 admin_views", "django"), ["./tests/runtests.py", "--verbosity", "2", "--parallel", "1"], "django"),
        (
            ("PYTHONWARNINGS=ignore bin/test -C --verbose sympy/core/tests/test_basic.py", "sympy"),
            ["bin/test", "-C", "--verbose", "--no-subprocess"],
            "sympy",
        ),
    ]
    for (command, runner_name), argv, expected_runner in cases:
        run = corpus.corpus_command(with_command(task, command, runner_name), whole)
        assert (run.argv, run.runner) == (argv, expected_runner), command
    sympy = corpus.corpus_command(with_command(task, cases[-1][0][0], "sympy"), named)
    assert sympy.argv[-2:] == ["sympy/core/tests/test_basic.py", "--no-subprocess"] and sympy.env == {"PYTHONWARNINGS": "ignore"}
    tox = corpus.corpus_command(with_command(task, cases[2][0][0]), named)
    assert tox.argv == ["python", "-m", "pytest", "-rA", "tests/test_build.py"] and "tox" in tox.note
    assert corpus.corpus_command(task, CorpusOptions(select=["tests/x.py"])).argv[-1] == "tests/x.py"


def test_commands_the_tracer_cannot_follow_are_refused_in_one_line(task):
    harbor = with_command(task, "bash /tests/test.sh", "harbor")
    with pytest.raises(traces.TraceError, match="cannot follow"):
        corpus.trace_corpus([harbor], "/nonexistent/never-written")
    with pytest.raises(traces.TraceError, match="not one program"):
        corpus.corpus_command(with_command(task, "cd src && pytest"), CorpusOptions())
    django = with_command(task, "./tests/runtests.py --parallel 1", "django")
    with pytest.raises(traces.TraceError, match="no shards"):
        corpus.trace_corpus([django], "/nonexistent/never-written", CorpusOptions(shards=2))
    with pytest.raises(runner.UsageError, match="pytest run"):
        runner.with_corpus_plugin(["python", "script.py"])
    assert runner.with_corpus_plugin(["python", "-m", "pytest", "-q"]) == ["python", "-m", "pytest", "-p", runner.CORPUS_PLUGIN, "-q"]


@pytest.mark.docker  # starts containers through the CLI or the corpus, without the engine's fixture
def test_cli_trace_corpus(tmp_path, task):
    out = tmp_path / "cli"
    result = swe_env("trace-corpus", "--task", task.id, "--out", str(out), "--format", "cwm", "--max-traces", "20", "--select", "tests/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trace corpus in" in result.stdout and "function trace(s)" in result.stdout
    manifest = corpus.load_manifest(out)
    assert manifest.totals["test_traces"] + manifest.totals["function_traces"] == 20
    assert manifest.options.select == ["tests/"] and manifest.tasks[task.id].stopped_by == "max_traces"
    assert len((out / "cwm" / f"{task.id}.jsonl").read_text().splitlines()) == 20
    bad = swe_env("trace-corpus", "--task", "no-such-task", "--out", str(out))
    assert bad.returncode == 2 and "--task: not in the tasks: no-such-task" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    levels = swe_env("trace-corpus", "--task", task.id, "--out", str(out), "--levels", "module")
    assert levels.returncode == 2 and "--levels must be function, repository or both" in levels.stderr
    assert len(levels.stderr.strip().splitlines()) == 1
    repository = swe_env(
        "trace-corpus",
        "--task",
        task.id,
        "--out",
        str(tmp_path / "repo"),
        "--select",
        "tests/",
        "--levels",
        "repository",
        "--no-check",
        "--max-repository-traces",
        "3",
    )
    assert repository.returncode == 0, repository.stdout + repository.stderr
    assert "3 repository-level trace(s)" in repository.stdout
    assert {r.level for r in corpus.read_corpus(tmp_path / "repo")} == {"repository"}


# ---------------------------------------------------------------- the tracer's corpus mode, outside containers

SUITE = {
    "pkg/__init__.py": "def add(a, b):\n    c = a + b\n    return c\n\n\ndef twice(x):\n    return add(x, x)\n",
    "tests/test_a.py": """\
import functools

import pytest

from pkg import add, twice


@pytest.fixture
def two():
    return add(1, 1)


def test_add(two):
    assert twice(two) == 4


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert twice(n) == 2 * n


def test_fail():
    assert twice(1) == 3


@pytest.mark.xfail
def test_xfail():
    assert add(0, 1) == 2


@pytest.mark.skip
def test_skipped():
    pass


@pytest.fixture
def broken():
    raise RuntimeError("setup")


def test_setup_error(broken):
    pass


def decorate(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)
    return wrapper


@decorate
def test_decorated():
    assert add(2, 2) == 4


class TestClass:
    def test_method(self):
        assert add(0, 0) == 0
""",
}


def test_corpus_mode_traces_test_functions_only_and_records_outcomes(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = {
        "argv": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        "out": str(tmp_path / "t.jsonl"),
        "workdir": str(tmp_path),
        "corpus": {"outcomes": str(tmp_path / "o.jsonl"), "status": str(tmp_path / "s.json"), "sources": True},
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    done = subprocess.run([sys.executable, str(runner.__file__), str(tmp_path / "c.json")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # pytest's own exit code: a test failed
    outcomes = {
        json.loads(line)["test_id"].split("::", 1)[1]: json.loads(line)["outcome"] for line in (tmp_path / "o.jsonl").read_text().splitlines()
    }
    assert outcomes == {
        "test_add": "passed",
        "test_param[1]": "passed",
        "test_param[2]": "passed",
        "test_fail": "failed",
        "test_xfail": "xfailed",
        "test_skipped": "skipped",
        "test_setup_error": "error",
        "test_decorated": "passed",
        "TestClass::test_method": "passed",
    }
    raw = [RawTrace.model_validate_json(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r.test_id.split("::", 1)[1] for r in raw] == [
        "test_add",
        "test_param[1]",
        "test_param[2]",
        "test_fail",
        "test_xfail",
        "test_decorated",
        "TestClass::test_method",
    ]
    assert [r.entry.function for r in raw] == [
        "test_add",
        "test_param",
        "test_param",
        "test_fail",
        "test_xfail",
        "test_decorated",
        "TestClass.test_method",
    ]
    # The fixture `two` called add() before the test: not traced. The test's calls are, with their sources.
    first = raw[0]
    assert [(e.event, e.function, e.depth) for e in first.events if e.event == "call"] == [
        ("call", "test_add", 0),
        ("call", "twice", 1),
        ("call", "add", 2),
    ]
    assert set(first.sources) == {"pkg/__init__.py:6:twice", "pkg/__init__.py:1:add"}
    assert first.sources["pkg/__init__.py:1:add"]["source"] == "def add(a, b):\n    c = a + b\n    return c\n"
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["written"] == 7 and status["stopped"] is None and status["errors"] == 0
    functions = corpus.function_traces(Trace.model_validate(first.model_dump()), first.sources)
    assert [(t.entry.function, [e.depth for e in t.events][0], t.entry.first_line) for t in functions] == [("twice", 0, 6), ("add", 0, 1)]
    assert traces.parse_cwm(traces.render_cwm(functions[1])).ended


def run_tracer(folder: Path, argv: list[str], env: dict | None = None, **corpus_config) -> subprocess.CompletedProcess:
    config = {
        "argv": argv,
        "out": str(folder / "t.jsonl"),
        "workdir": str(folder),
        "corpus": {"outcomes": str(folder / "o.jsonl"), "status": str(folder / "s.json"), **corpus_config},
    }
    (folder / "c.json").write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, str(runner.__file__), str(folder / "c.json")], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )


def test_corpus_mode_runs_suites_that_make_warnings_errors(tmp_path):
    """flask's and pytest's own suites set `filterwarnings = error`: pytest's warning that it
    cannot rewrite the (already imported) corpus plugin was then an error, and no test ran."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_w.py").write_text("from pkg import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    (tmp_path / "setup.cfg").write_text("[tool:pytest]\ntestpaths = tests\nfilterwarnings =\n    error\n")
    done = run_tracer(tmp_path, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], sources=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()] == [
        {"test_id": "tests/test_w.py::test_add", "outcome": "passed"}
    ]
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["written"] == 1 and status["collected"] == 1 and status["exitstatus"] == 0


UNITTEST_SUITE = {
    "pkg/__init__.py": "def add(a, b):\n    return a + b\n",
    # Stands for Django's runner module: the grader's recorder takes its key when it is imported.
    "django/__init__.py": "",
    "django/test/__init__.py": "",
    "django/test/runner.py": "",
    "tests/runtests.py": "import sys, unittest\nsys.path.insert(0, '.')\nimport django.test.runner\n"
    "unittest.main(module=None, argv=['runtests', 'discover', '-s', 'tests', '-t', 'tests'])\n",
    "tests/app/__init__.py": "",
    "tests/app/tests.py": """\
import unittest

from pkg import add


class AddTests(unittest.TestCase):
    def setUp(self):
        self.two = add(1, 1)

    def test_add(self):
        self.assertEqual(add(self.two, 1), 3)

    def test_fails(self):
        self.assertEqual(add(1, 1), 3)

    @unittest.skip("not now")
    def test_skipped(self):
        pass


class MoreAddTests(AddTests):
    pass
""",
}


def test_corpus_mode_under_djangos_runner_names_tests_as_the_recorder_does(tmp_path):
    """Django's runner is unittest's: a test is entered by name, and the grader's recorder gives its outcome."""
    for name, text in UNITTEST_SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    recorder = tmp_path / "recorder"
    recorder.mkdir()
    files = grading_runners.runner_named("django").files(str(tmp_path))
    for path, data in files.items():
        Path(path).write_bytes(data)
    # The recorder seals its records as in a grading: a key it reads once, a stream it appends to.
    key = seal.new_key()
    (tmp_path / "recorder.key").write_bytes(seal.key_file(key, [], runner_is_repo=False))
    (tmp_path / "o.jsonl").write_bytes(b"")
    env = {
        **os.environ,
        "PYTHONPATH": str(recorder),
        **grading_runners.runner_named("django").environment(str(tmp_path / "o.jsonl"), str(tmp_path / "recorder.key")),
    }
    done = run_tracer(tmp_path, [sys.executable, "tests/runtests.py"], env=env, runner="django", sources=True)
    assert done.returncode == 1, done.stdout + done.stderr  # unittest.main exits 1: a test failed
    outcomes = {ids[0]: status for status, ids in seal.test_records((tmp_path / "o.jsonl").read_bytes(), key)}
    assert outcomes == {
        f"{name} (app.tests.{cls})": status
        for cls in ("AddTests", "MoreAddTests")
        for name, status in (("test_add", "passed"), ("test_fails", "failed"), ("test_skipped", "skipped"))
    }
    raw = [RawTrace.model_validate_json(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    # Each test that ran is one trace under the recorder's id; setUp (not a test) is not one.
    assert sorted(r.test_id for r in raw) == sorted(
        f"{name} (app.tests.{cls})" for cls in ("AddTests", "MoreAddTests") for name in ("test_add", "test_fails")
    )
    assert all(r.entry.function.startswith("AddTests.test_") and r.entry.file == "tests/app/tests.py" for r in raw)
    assert all([e.function for e in r.events if e.event == "call"] == [r.entry.function, "add"] for r in raw)


def event(kind, frame, depth, function="f", line=1, **more) -> TraceEvent:
    return TraceEvent(
        event=kind,
        file="m.py",
        line=line,
        function=function,
        frame=frame,
        depth=depth,
        source="x",
        locals={} if kind in ("call", "line") else None,
        **more,
    )


def test_function_traces_of_a_cut_trace():
    events = [
        event("call", 0, 0, "t"),
        event("call", 1, 1, "g", 5),
        event("line", 1, 1, "g", 6),
        event("return", 1, 1, "g", 6, value="1"),
        event("line", 0, 0, "t", 2),
        event("call", 2, 1, "h", 9),
        event("call", 3, 2, "k", 12),
        event("return", 3, 2, "k", 12, value="2"),
        event("line", 2, 1, "h", 10),
    ]
    trace = Trace(
        trace_id="x:1",
        thread="MainThread",
        entry=TraceEntry(file="m.py", function="t", line=1),
        repr_cap=200,
        full_locals=False,
        cut="max_events",
        event_count=len(events),
        events=events,
    )
    found = corpus.function_traces(trace, {"m.py:5:g": {"source": "def g():\n    pass\n", "first_line": 5}})
    assert [(t.entry.function, len(t.events), t.cut, t.complete) for t in found] == [
        ("g", 3, None, True),
        ("h", 4, "max_events", True),
        ("k", 2, None, True),
    ]
    assert [(e.frame, e.depth) for e in found[1].events] == [(0, 0), (1, 1), (1, 1), (0, 0)]
    assert found[0].entry.source.startswith("def g") and found[1].entry.source == ""
    assert traces.cwm_record(found[1])["cut"] == "max_events"
    assert corpus.function_traces(trace, {}, limit=1)[0].entry.function == "g"


# ---------------------------------------------------------------- repository-level traces


def _word_tokenizer(path: Path) -> Path:
    """A small tokenizer.json made here (a word-level vocabulary over CWM's tokens and a few words; no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [
        "<unk>",
        *(getattr(traces, name) for name in ("FRAME_SEP", "CALL_SEP", "LINE_SEP", "RETURN_SEP", "ACTION_SEP", "ARG_SEP", "EXCEPTION_SEP")),
        "def",
        "return",
    ]
    tokenizer = Tokenizer(models.WordLevel({word: index for index, word in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return path


def test_repository_level_traces_carry_the_sources_a_test_reached_bounded_and_counted(tmp_path, task, image):
    tokenizer = _word_tokenizer(tmp_path / "tokenizer.json")
    options = CorpusOptions(levels="both", cwm=True, check_outcomes=False, dedupe=False, tokenizer=str(tokenizer))
    manifest = corpus.trace_corpus([task], tmp_path / "both", options)
    row = manifest.tasks[task.id]
    assert row.status == "done", row.error
    records = shard_records(tmp_path / "both", row)
    tests = {r.test_id: r for r in records if r.level == "test"}
    repository = [r for r in records if r.level == "repository"]
    assert len(repository) == row.repository_traces == row.tests == len(tests) > 0
    assert manifest.totals["repository_traces"] == len(repository) and row.function_traces > 0
    lines = {line["trace_id"]: line for line in map(json.loads, (tmp_path / "both" / row.cwm_shard).read_text().splitlines())}
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(str(tokenizer))
    reached_other_files = 0
    for record in repository:
        twin = tests[record.test_id]
        # The test's whole trace across the modules it reaches: the test-level trace's events, with a wider context.
        assert record.events == twin.events and record.entry == twin.entry and record.trace_id == twin.trace_id + ".r"
        assert record.context and record.context[0].file == record.entry.file and record.context[0].source == record.entry.source
        # One block per function entered (a function entered at several lines, a generator resumed, is one block).
        entered = {(e.file, e.line, e.function) for e in record.events if e.event == "call" and e.depth}
        assert record.context_dropped == 0 and len(record.context) == len({(b.file, b.first_line) for b in record.context})
        assert 1 < len(record.context) <= len(entered) + 1 and {b.file for b in record.context[1:]} <= {f for f, _l, _n in entered}
        reached_other_files += any(not b.file.startswith("tests/") for b in record.context)
        line = lines[record.trace_id]
        parsed = traces.parse_cwm(line["text"])
        assert len(parsed.frames) == len(record.events) and parsed.ended == (line["cut"] is None)
        for block in record.context:
            assert f"# {block.file}\n" in parsed.context
            assert all(source_line in parsed.context for source_line in block.source.splitlines())
        assert parsed.context.split("\n")[parsed.entry_line - 1].endswith(traces.START_MARKER)
        # Tokens with the named tokenizer, per record, over its CWM text.
        assert record.tokens == line["tokens"] == len(loaded.encode(line["text"], add_special_tokens=False).ids)
        assert record.tokens != len(line["text"].encode())
        assert record.content_hash != twin.content_hash
    assert reached_other_files == len(repository)
    assert row.tokens == sum(r.tokens for r in records)

    # Bounds: a context cap per record (the test's own source always kept; what was left out counted) and a cap on
    # repository-level records in the whole corpus (counted; the task is done, not stopped).
    small = CorpusOptions(levels="repository", check_outcomes=False, dedupe=False, repository_context_bytes=1_000, max_repository_traces=2)
    capped = corpus.trace_corpus([task], tmp_path / "capped", small).tasks[task.id]
    assert capped.status == "done" and capped.repository_traces == 2 and capped.repository_dropped == row.tests - 2
    kept = shard_records(tmp_path / "capped", capped)
    assert {r.level for r in kept} == {"repository"} and capped.test_traces == capped.function_traces == 0
    for record in kept:
        context = corpus.repository_context(record, record.context or [])
        assert len(context.encode()) <= 1_000 or len(record.context or []) == 1
    full = {r.test_id: r for r in repository}
    for record in kept:
        assert record.context_dropped == len(full[record.test_id].context or []) - len(record.context or [])
    assert capped.context_dropped == sum(r.context_dropped for r in kept)
    assert capped.context_cut == sum(r.context_dropped > 0 for r in kept)
    assert corpus_containers() == []
