"""Task synthesis, `tasks new` and the validation rule on the real engine.

Images are shared with the bundled tasks (the same environment: pytest only), candidates are few.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.data.task import Environment, load_task_file, load_tasks
from swe_env.grading.grader import Grader
from swe_env.run import validation
from swe_env.run.rollout import rollout
from swe_env.synth import pipeline, procedural, refs

from ..helpers import ROOT, SAMPLE_PIP_PACKAGES, TASKS_DIR
from ..helpers import run_cli as cli

pytestmark = pytest.mark.docker

SAMPLE_ENV = Environment(pip_packages=SAMPLE_PIP_PACKAGES)
"""The bundled tasks' environment: their env layer is reused."""


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, docker_client):
    out = tmp_path_factory.mktemp("synth") / "tasks"
    config = pipeline.SynthConfig(
        repo=str(ROOT / "tasks/repos/slugkit.bundle"), environment=SAMPLE_ENV, out=out, max_tasks=10, max_candidates=40, workers=2, hide_tests=False
    )
    summary = pipeline.synthesize(config)
    return out, config, summary


def test_synthesis_writes_ten_tasks_from_both_methods(synthesized):
    out, _config, summary = synthesized
    found = load_tasks(out)
    assert len(found) == summary.total_tasks == 10, summary
    assert summary.validated == 10 and summary.candidates >= 10
    assert summary.candidates == summary.validated + sum(summary.rejected.values()) + summary.not_needed
    methods = {task.meta["method"] for task in found}
    assert {"procedural", "history"} <= methods <= {"procedural", "history", "combine"}, methods
    by_id = {task.id: task for task in found}
    for task in found:
        assert task.meta["source_commit"] and task.meta["kind"]
        if task.meta["method"] == "procedural":
            assert task.meta["kind"] in procedural.KINDS
            assert task.meta["function"] and task.meta["file"].startswith("slugkit/")
        elif task.meta["method"] == "history":
            assert task.meta["kind"] == "revert_commit" and task.meta["reverted_commit"]
        else:  # two validated bugs of one file or folder: failing tests the union of theirs, the gold undoing both
            parts = [by_id[part] for part in task.meta["combined"].split(",")]
            assert set(task.tests.fail_to_pass) >= {t for part in parts for t in part.tests.fail_to_pass}
            assert task.meta["kind"] == "+".join(part.meta["kind"] for part in parts)
        assert not set(task.tests.fail_to_pass) & set(task.tests.pass_to_pass)
        assert all(test in task.problem_statement for test in task.tests.fail_to_pass[:3])
        # The scrubbed bundle: one commit, the buggy tree; the gold patch is in its own file.
        folder = task.source.parent
        assert (folder / "gold.patch").read_text() == task.gold_patch and "gold_patch_file" in (folder / "task.yaml").read_text()
        log = subprocess.run(["git", "bundle", "list-heads", str(folder / "repo.bundle")], capture_output=True, text=True)
        assert log.stdout.split() == [task.base_commit, "refs/heads/main"]


def test_each_synthesized_task_passes_the_validation_rule_and_the_oracle_resolves_it(synthesized, tmp_path):
    out, _config, _summary = synthesized
    found = load_tasks(out)
    builder = ImageBuilder()
    results = validation.validate_tasks(found, workers=2, builder=builder, grader=Grader(builder=builder))
    assert [(r.task_id, r.verdict, r.violations) for r in results if r.verdict != "valid"] == []
    assert all(r.gold and r.gold.resolved and r.empty and not r.empty.resolved for r in results)
    trajectories = rollout(found, "oracle", workers=2, out=tmp_path / "oracle.jsonl")
    unresolved = [(t.task_id, t.termination, t.error, (t.report or {}).get("status"), t.diff[:300]) for t in trajectories if not t.resolved]
    assert sorted(t.task_id for t in trajectories if t.resolved) == sorted(task.id for task in found), unresolved


def test_a_rerun_resumes_and_skips_what_is_decided(synthesized):
    out, config, first = synthesized
    again = pipeline.synthesize(config.model_copy(update={"max_tasks": 10}))
    assert again.candidates == 0 and again.validated == 0 and again.total_tasks == 10
    assert again.skipped == first.candidates - first.not_needed
    printed = cli("synthesize", "--repo", config.repo, "--out", str(out), "--max-tasks", "10")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert f"0 candidate(s), 0 validated, rejected: none; {again.skipped} decided by an earlier run; 10 task(s)" in " ".join(printed.stdout.split())
    unknown = cli("synthesize", "--repo", config.repo, "--out", str(out), "--methods", "mutate")
    assert unknown.returncode == 2 and "--methods: unknown method 'mutate'" in unknown.stderr
    no_endpoint = cli("synthesize", "--repo", config.repo, "--out", str(out), "--methods", "model")
    assert no_endpoint.returncode == 2 and "--methods model needs an endpoint: --model URL" in no_endpoint.stderr


FLAKY_REPO = {
    "calc/__init__.py": "",
    "calc/ops.py": textwrap.dedent("""\
        def add(a, b):
            return a + b


        def clamp(value, low, high):
            if value < low:
                return low
            if value > high:
                return high
            return value
    """),
    "tests/test_ops.py": textwrap.dedent("""\
        import os

        from calc.ops import add, clamp

        COUNTER = "/tmp/calc-flaky-counter"


        def test_add():
            assert add(2, 3) == 5


        def test_clamp():
            assert clamp(5, 0, 3) == 3
            assert clamp(-1, 0, 3) == 0
            assert clamp(2, 0, 3) == 2


        def test_flaky_add():
            # Deliberately flaky: passes and fails on alternate runs, whatever the code does.
            runs = int(open(COUNTER).read()) if os.path.exists(COUNTER) else 0
            with open(COUNTER, "w") as handle:
                handle.write(str(runs + 1))
            assert add(1, 1) == 2
            assert runs % 2 == 0
    """),
}


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True, text=True
    ).stdout


def test_a_flaky_test_never_becomes_fail_to_pass(tmp_path, docker_client):
    repo = tmp_path / "calc"
    for path, text in FLAKY_REPO.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "calc")
    out = tmp_path / "tasks"
    summary = pipeline.synthesize(
        pipeline.SynthConfig(
            repo=str(repo),
            environment=SAMPLE_ENV,
            out=out,
            max_tasks=2,
            methods=["procedural"],
            hide_tests=True,
            kinds=["swap_arithmetic", "comparison_boundary", "flip_comparison"],
        )
    )
    assert summary.flaky_tests == ["tests/test_ops.py::test_flaky_add"]
    found = load_tasks(out)
    assert found and summary.validated == len(found)
    for task in found:
        assert "tests/test_ops.py::test_flaky_add" not in task.tests.fail_to_pass + task.tests.pass_to_pass
    # --hide-tests: the failing tests are not in the agent's tree; the test patch brings them back.
    task = found[0]
    hidden = task.tests.fail_to_pass[0].split("::")[-1]
    tree = subprocess.run(
        ["git", "--git-dir", str(task.source.parent / "repo.bundle"), "show", f"{task.base_commit}:tests/test_ops.py"], capture_output=True, text=True
    )
    if tree.returncode:  # git reads a bundle only through a clone
        clone = tmp_path / "clone"
        subprocess.run(["git", "clone", "-q", str(task.source.parent / "repo.bundle"), str(clone)], check=True)
        tree = subprocess.run(["git", "-C", str(clone), "show", "HEAD:tests/test_ops.py"], capture_output=True, text=True)
    assert f"def {hidden}(" not in tree.stdout and f"+def {hidden}(" in task.tests.test_patch
    assert "not in your copy" in task.problem_statement
    builder = ImageBuilder()
    result = validation.validate_task(task, builder, Grader(builder=builder))
    assert result.verdict == "valid", (result.cause, result.violations)


def test_tasks_new_writes_a_task_from_two_refs_that_validates(tmp_path, docker_client):
    bundle = ROOT / "tasks/repos/slugkit.bundle"
    result = cli(
        "tasks",
        "new",
        "--repo",
        str(bundle),
        "--base",
        "main~2",
        "--fix",
        "main~1",
        "--out",
        str(tmp_path),
        "--id",
        "slugkit-unknown-filter",
        "--environment",
        str(_env_file(tmp_path)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    task = load_task_file(tmp_path / "slugkit-unknown-filter" / "task.yaml")
    assert "slugkit/template.py" in task.gold_patch and "tests/test_template.py" not in task.gold_patch
    assert "tests/test_template.py" in task.tests.test_patch
    assert "tests/test_template.py::test_unknown_filter_raises_template_error" in task.tests.fail_to_pass
    assert task.tests.pass_to_pass and not set(task.tests.fail_to_pass) & set(task.tests.pass_to_pass)
    assert "TemplateError" in task.problem_statement  # the fix commit's message
    checked = cli("validate", "--tasks", str(tmp_path / "slugkit-unknown-filter"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all 1 tasks valid" in checked.stdout


def _env_file(folder: Path) -> Path:
    path = folder / "environment.yaml"
    path.write_text('pip_packages: ["pytest==8.3.5"]\n')
    return path


def _sample(task_id: str):
    return next(task for task in load_tasks(TASKS_DIR) if task.id == task_id)


def test_validate_rejects_a_fail_to_pass_test_that_already_passes(tmp_path, docker_client):
    task = _sample("ledger-range-overlap-boundary")
    already = task.tests.pass_to_pass[0]
    broken = task.model_copy(
        update={
            "tests": task.tests.model_copy(update={"fail_to_pass": [*task.tests.fail_to_pass, already], "pass_to_pass": task.tests.pass_to_pass[1:]})
        }
    )
    builder = ImageBuilder()
    result = validation.validate_task(broken, builder, Grader(builder=builder))
    assert result.verdict == "invalid", (result.verdict, result.cause)
    assert result.violations == [f"{already}: FAIL_TO_PASS already passes without the fix"]


def test_validate_rejects_an_id_in_both_lists_and_says_so_in_one_line(tmp_path, docker_client):
    task = _sample("ledger-range-overlap-boundary")
    text = task.source.read_text().replace("  pass_to_pass:\n", f'  pass_to_pass:\n    - "{task.tests.fail_to_pass[0]}"\n')
    (tmp_path / "repos").symlink_to(TASKS_DIR / "repos")  # the same `repo` as the bundled task: its image is reused
    folder = tmp_path / task.id
    folder.mkdir()
    (folder / "task.yaml").write_text(text)
    result = cli("validate", "--tasks", str(folder))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert f"{task.id}: invalid: {task.tests.fail_to_pass[0]}: listed in both FAIL_TO_PASS and PASS_TO_PASS" in lines
    assert f"  violation: {task.tests.fail_to_pass[0]}: listed in both FAIL_TO_PASS and PASS_TO_PASS" in lines


def test_tasks_new_refuses_refs_whose_diff_has_no_fix(tmp_path):
    with pytest.raises(ValueError, match="changes only test files"):
        refs.task_from_refs(ROOT / "tasks/repos/slugkit.bundle", "main~1", "main~1", tmp_path)


def test_a_suite_with_no_passing_test_stops_with_the_cause_in_one_line(tmp_path, docker_client):
    repo = tmp_path / "broken"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests/test_all.py").write_text("from missing_module import thing\n\n\ndef test_x():\n    assert thing\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "broken")
    result = cli("synthesize", "--repo", str(repo), "--out", str(tmp_path / "out"), "--environment", str(_env_file(tmp_path)))
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "no test passes at HEAD (twice)" in message and "No module named 'missing_module'" in message, message
