"""Trace corpora: the tracer's corpus mode (one trace per test function, outcomes), function-level
traces, caps, deduplication, resuming, the CWM shards and the CLI. Containers are real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swe_env.traces import corpus, host as traces
from swe_env.runtime import engine
from swe_env.traces.corpus import CorpusOptions, CorpusTrace
from swe_env.traces.host import Trace, TraceEntry, TraceEvent, TraceOptions
from swe_env.traces.tracer import runner

from .test_cli import swe_env


def corpus_containers() -> list[str]:
    left = engine.client().containers.list(
        all=True, filters={"label": [f"{engine.MANAGED_LABEL}=1", f"swe_env.run={engine.RUN_ID}", "swe_env.kind=corpus"]})
    return [c.name for c in left if c.status != "removing"]


def shard_records(out: Path, row: corpus.TaskCorpus) -> list[CorpusTrace]:
    return [CorpusTrace.model_validate_json(line) for line in (out / row.shard).read_text().splitlines()]


def is_test_entry(record: CorpusTrace) -> bool:
    """The entry is the test function the node id names (class methods as Class.method, parameters cut)."""
    node = record.test_id.split("[")[0]
    return (node == f"{record.entry.file}::{record.entry.function.replace('.', '::')}"
            and record.entry.function.split(".")[-1].startswith("test"))


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
    for line, record in zip(lines, records):
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


def test_corpus_of_every_bundled_repository_keeps_every_outcome(tmp_path, tasks):
    one_per_repo = list({task.repo: task for task in tasks}.values())
    assert len(one_per_repo) >= 3
    manifest = corpus.trace_corpus(one_per_repo, tmp_path, CorpusOptions(cwm=True, max_function_traces_per_test=5),
                                   workers=2)
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


def test_hidden_tests_only_when_asked_with_failures_reported(tmp_path, task, image):
    selection = [*task.tests.fail_to_pass, *task.tests.pass_to_pass[:3]]
    options = CorpusOptions(with_test_patch=True, select=selection, function_traces=False)
    row = corpus.trace_corpus([task], tmp_path, options).tasks[task.id]
    assert row.status == "done" and row.with_test_patch
    assert row.command.split()[-len(selection):] == selection
    assert set(row.failed_tests) == set(task.tests.fail_to_pass)
    assert row.outcomes_checked and row.outcomes_unchanged
    records = shard_records(tmp_path, row)
    assert {r.test_id for r in records} == set(selection) and all(r.level == "test" for r in records)
    failing = [r for r in records if r.test_id in task.tests.fail_to_pass]
    assert all(r.events[-1].event == "exception" and r.events[-1].depth == 0 for r in failing)


def test_non_pytest_suites_are_refused_in_one_line(task):
    django_like = task.model_copy(update={"tests": task.tests.model_copy(update={"runner": "django"})})
    with pytest.raises(traces.TraceError, match="not pytest"):
        corpus.trace_corpus([django_like], "/nonexistent/never-written")
    with pytest.raises(runner.UsageError, match="pytest run"):
        runner.with_corpus_plugin(["python", "script.py"])
    assert runner.with_corpus_plugin(["python", "-m", "pytest", "-q"]) == [
        "python", "-m", "pytest", "-p", runner.CORPUS_PLUGIN, "-q"]


def test_cli_trace_corpus(tmp_path, task):
    out = tmp_path / "cli"
    result = swe_env("trace-corpus", "--task", task.id, "--out", str(out), "--format", "cwm", "--max-traces", "20",
                     "--select", "tests/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "trace corpus in" in result.stdout and "function trace(s)" in result.stdout
    manifest = corpus.load_manifest(out)
    assert manifest.totals["test_traces"] + manifest.totals["function_traces"] == 20
    assert manifest.options.select == ["tests/"] and manifest.tasks[task.id].stopped_by == "max_traces"
    assert len((out / "cwm" / f"{task.id}.jsonl").read_text().splitlines()) == 20
    bad = swe_env("trace-corpus", "--task", "no-such-task", "--out", str(out))
    assert bad.returncode == 2 and "--task: not in the tasks: no-such-task" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the tracer's corpus mode, outside containers

SUITE = {
    "pkg/__init__.py": "def add(a, b):\n    c = a + b\n    return c\n\n\ndef twice(x):\n    return add(x, x)\n",
    "tests/test_a.py": '''\
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
''',
}


def test_corpus_mode_traces_test_functions_only_and_records_outcomes(tmp_path):
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config = {"argv": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], "out": str(tmp_path / "t.jsonl"),
              "workdir": str(tmp_path),
              "corpus": {"outcomes": str(tmp_path / "o.jsonl"), "status": str(tmp_path / "s.json"), "sources": True}}
    (tmp_path / "c.json").write_text(json.dumps(config))
    done = subprocess.run([sys.executable, str(runner.__file__), str(tmp_path / "c.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr  # pytest's own exit code: a test failed
    outcomes = {json.loads(line)["test_id"].split("::", 1)[1]: json.loads(line)["outcome"]
                for line in (tmp_path / "o.jsonl").read_text().splitlines()}
    assert outcomes == {"test_add": "passed", "test_param[1]": "passed", "test_param[2]": "passed",
                        "test_fail": "failed", "test_xfail": "xfailed", "test_skipped": "skipped",
                        "test_setup_error": "error", "test_decorated": "passed", "TestClass::test_method": "passed"}
    raw = [corpus._RawTrace.model_validate_json(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [r.test_id.split("::", 1)[1] for r in raw] == [
        "test_add", "test_param[1]", "test_param[2]", "test_fail", "test_xfail", "test_decorated", "TestClass::test_method"]
    assert [r.entry.function for r in raw] == ["test_add", "test_param", "test_param", "test_fail", "test_xfail",
                                               "test_decorated", "TestClass.test_method"]
    # The fixture `two` called add() before the test: not traced. The test's calls are, with their sources.
    first = raw[0]
    assert [(e.event, e.function, e.depth) for e in first.events if e.event == "call"] == [
        ("call", "test_add", 0), ("call", "twice", 1), ("call", "add", 2)]
    assert set(first.sources) == {"pkg/__init__.py:6:twice", "pkg/__init__.py:1:add"}
    assert first.sources["pkg/__init__.py:1:add"]["source"] == "def add(a, b):\n    c = a + b\n    return c\n"
    status = json.loads((tmp_path / "s.json").read_text())
    assert status["written"] == 7 and status["stopped"] is None and status["errors"] == 0
    functions = corpus.function_traces(Trace.model_validate(first.model_dump()), first.sources)
    assert [(t.entry.function, [e.depth for e in t.events][0], t.entry.first_line) for t in functions] == [
        ("twice", 0, 6), ("add", 0, 1)]
    assert traces.parse_cwm(traces.render_cwm(functions[1])).ended


def event(kind, frame, depth, function="f", line=1, **more) -> TraceEvent:
    return TraceEvent(event=kind, file="m.py", line=line, function=function, frame=frame, depth=depth, source="x",
                      locals={} if kind in ("call", "line") else None, **more)


def test_function_traces_of_a_cut_trace():
    events = [event("call", 0, 0, "t"), event("call", 1, 1, "g", 5), event("line", 1, 1, "g", 6),
              event("return", 1, 1, "g", 6, value="1"), event("line", 0, 0, "t", 2), event("call", 2, 1, "h", 9),
              event("call", 3, 2, "k", 12), event("return", 3, 2, "k", 12, value="2"), event("line", 2, 1, "h", 10)]
    trace = Trace(trace_id="x:1", thread="MainThread", entry=TraceEntry(file="m.py", function="t", line=1),
                  repr_cap=200, full_locals=False, cut="max_events", event_count=len(events), events=events)
    found = corpus.function_traces(trace, {"m.py:5:g": {"source": "def g():\n    pass\n", "first_line": 5}})
    assert [(t.entry.function, len(t.events), t.cut, t.complete) for t in found] == [
        ("g", 3, None, True), ("h", 4, "max_events", True), ("k", 2, None, True)]
    assert [(e.frame, e.depth) for e in found[1].events] == [(0, 0), (1, 1), (1, 1), (0, 0)]
    assert found[0].entry.source.startswith("def g") and found[1].entry.source == ""
    assert traces.cwm_record(found[1])["cut"] == "max_events"
    assert corpus.function_traces(trace, {}, limit=1)[0].entry.function == "g"
