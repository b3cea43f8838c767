"""Traces before and after a task's fix: a task synthesized from a bundled sample repository, traced on the real
engine on its buggy and its fixed tree; and the comparison of two traces (pure)."""

from __future__ import annotations

import pytest

from swe_env.data.task import Environment, load_tasks
from swe_env.synth import pipeline
from swe_env.traces import corpus, pairs
from swe_env.traces.host import Trace, TraceEntry, TraceEvent, parse_cwm

from ..helpers import ROOT, corpus_containers
from ..helpers import run_cli as swe_env

SAMPLE_ENV = Environment(pip_packages=["pytest==8.3.5"])
"""The bundled tasks' environment: their env layer is reused."""


def _event(kind, line, function="f", frame=0, depth=0, source="x", **extra) -> TraceEvent:
    return TraceEvent(event=kind, file="m.py", line=line, function=function, frame=frame, depth=depth, source=source, **extra)


def _trace(events: list[TraceEvent]) -> Trace:
    return Trace(
        trace_id="t",
        thread="MainThread",
        entry=TraceEntry(file="m.py", function="f", line=1),
        repr_cap=200,
        full_locals=False,
        event_count=len(events),
        events=events,
    )


def test_first_divergence_and_the_functions_whose_events_differ():
    common = [_event("call", 1, locals={"a": "1"}), _event("call", 10, "g", frame=1, depth=1, locals={"b": "2"})]
    buggy = _trace(
        [
            *common,
            _event("line", 11, "g", frame=1, depth=1, source="if b < 2:"),
            _event("return", 11, "g", frame=1, depth=1, value="False"),
            _event("return", 2, value="None"),
        ]
    )
    fixed = _trace(
        [
            *common,
            _event("line", 11, "g", frame=1, depth=1, source="if b <= 2:"),
            _event("return", 11, "g", frame=1, depth=1, value="True"),
            _event("call", 20, "h", frame=2, depth=1),
            _event("return", 20, "h", frame=2, depth=1, value="0"),
            _event("return", 2, value="None"),
        ]
    )
    found = pairs.first_divergence(buggy, fixed)
    assert found is not None and found.index == 2
    assert found.before.source == "if b < 2:" and found.after.source == "if b <= 2:"
    changes = {(c.function, c.change) for c in pairs.functions_changed(buggy, fixed)}
    assert changes == {("g", "changed"), ("h", "only_after")}  # f's own events are the same
    assert pairs.first_divergence(buggy, buggy) is None and pairs.functions_changed(buggy, buggy) == []
    # Objects' addresses in reprs differ between any two runs: they are not a divergence.
    moved = _trace([event.model_copy(update={"locals": {"a": "<object at 0x7fc982bb0860>"}}) if event.locals else event for event in buggy.events])
    placed = _trace([event.model_copy(update={"locals": {"a": "<object at 0x7f6aacfe0900>"}}) if event.locals else event for event in buggy.events])
    assert pairs.first_divergence(moved, placed) is None and pairs.functions_changed(moved, placed) == []
    shorter = _trace(buggy.events[:3])
    assert pairs.first_divergence(shorter, buggy).model_dump(include={"index", "after"}) == {"index": 3, "after": buggy.events[3].model_dump()}


@pytest.fixture(scope="module")
def synthesized_task(tmp_path_factory, docker_client):
    out = tmp_path_factory.mktemp("synth") / "tasks"
    pipeline.synthesize(
        pipeline.SynthConfig(
            repo=str(ROOT / "tasks/repos/slugkit.bundle"),
            environment=SAMPLE_ENV,
            out=out,
            max_tasks=1,
            max_candidates=8,
            methods=["procedural"],
            kinds=["flip_comparison", "comparison_boundary", "swap_bool_operator", "remove_guard", "remove_early_return", "change_constant"],
        )
    )
    found = load_tasks(out)
    assert len(found) == 1
    return found[0]


def test_a_synthesized_task_is_traced_before_and_after_its_bug(synthesized_task, tmp_path):
    task = synthesized_task
    assert task.meta["method"] == "procedural" and task.gold_patch and task.tests.fail_to_pass
    manifest = pairs.trace_before_after([task], tmp_path / "pairs")
    row = manifest.tasks[task.id]
    assert row.status == "done", row.error
    assert row.tests == task.tests.fail_to_pass and row.pairs == len(row.tests) == row.diverged
    found = pairs.read_pairs(tmp_path / "pairs", task.id)
    assert [p.test_id for p in found] == row.tests
    mutated = task.meta["function"].split(".")[-1]
    for pair in found:
        # The bug decides these tests: they fail on the buggy tree and pass once the fix is applied.
        assert pair.outcome_before in ("failed", "error") and pair.outcome_after == "passed", pair.test_id
        assert pair.meta["method"] == "procedural" and pair.meta["kind"] == task.meta["kind"]
        assert pair.before.level == pair.after.level == "repository"
        assert pair.before.test_id == pair.after.test_id == pair.test_id
        # The two executions share a prefix, then differ; the mutated function is among those whose events differ.
        divergence = pair.first_divergence
        assert divergence is not None and divergence.index > 0
        prefixes = [side.model_copy(update={"events": side.events[: divergence.index]}) for side in (pair.before, pair.after)]
        assert pairs.first_divergence(*prefixes) is None and divergence.before != divergence.after
        assert any(change.function.split(".")[-1] == mutated for change in pair.functions_changed), pair.functions_changed
        # Each side carries its own tree's source of what the test reached, in CWM's layout, with tokens counted.
        sources = [{b.source for b in side.context or []} for side in (pair.before, pair.after)]
        assert sources[0] != sources[1]
        for side in (pair.before, pair.after):
            text = corpus.render_record(side)["text"]
            assert side.tokens == len(text.encode()) and parse_cwm(text).frames
        assert pair.tokens == pair.before.tokens + pair.after.tokens
    assert manifest.totals["pairs"] == row.pairs and manifest.totals["bytes"] == (tmp_path / "pairs" / row.shard).stat().st_size
    assert corpus_containers() == []


def test_cli_before_after(synthesized_task, tmp_path):
    folder = synthesized_task.source.parent
    result = swe_env("trace-corpus", "--before-after", "--tasks", str(folder), "--out", str(tmp_path / "ba"))
    assert result.returncode == 0, result.stderr
    assert "diverged" in result.stdout
    manifest = pairs.PairManifest.model_validate_json((tmp_path / "ba" / "pairs.json").read_text())
    row = manifest.tasks[synthesized_task.id]
    assert row.status == "done" and row.diverged == row.pairs == len(synthesized_task.tests.fail_to_pass)
    assert f"{row.pairs} pair(s) of {row.pairs} test(s), {row.diverged} diverged" in result.stdout
    assert corpus_containers() == []
