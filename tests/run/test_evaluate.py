"""`swe-env evaluate` on the real engine: SWE-bench's layout and keys, re-runs, mixed outcomes, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from swe_env import evaluate
from swe_env.importers.swebench import Prediction

from ..helpers import ROOT, ctrl_c_reaches_it, swebench_records, write_swebench_dataset
from ..helpers import run_cli as cli

pytestmark = pytest.mark.docker

RUN_REPORT_KEYS = {
    "total_instances",
    "submitted_instances",
    "completed_instances",
    "resolved_instances",
    "unresolved_instances",
    "empty_patch_instances",
    "error_instances",
    "resolved_ids",
    "unresolved_ids",
    "error_ids",
    "empty_patch_ids",
    "completed_ids",
    "incomplete_ids",
    "submitted_ids",
    "schema_version",
}
INSTANCE_FILES = {"report.json", "patch.diff", "test_output.txt", "run_instance.log"}


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tasks):
    """The bundled tasks written as a SWE-bench JSONL file and imported through the CLI."""
    folder = tmp_path_factory.mktemp("swebench")
    dataset, mirror, recipes = write_swebench_dataset(folder, tasks)
    result = cli("tasks", "import-swebench", str(dataset), "--out", str(folder / "tasks"), "--repo-mirror", str(mirror), "--recipes", str(recipes))
    assert result.returncode == 0, result.stderr
    return folder


def test_gold_resolves_all_and_empty_is_all_empty(imported, tasks):
    reports = imported / "reports"
    ids = sorted(t.id for t in tasks)
    gold = cli(
        "evaluate",
        "--dataset",
        str(imported / "tasks"),
        "--predictions",
        "gold",
        "--run-id",
        "gold-run",
        "--max-workers",
        "4",
        "--report-dir",
        str(reports),
    )
    assert gold.returncode == 0, gold.stdout + gold.stderr
    report = json.loads((reports / "gold.gold-run.json").read_text())
    assert RUN_REPORT_KEYS <= set(report) and report["schema_version"] == 2
    assert report["resolved_ids"] == report["completed_ids"] == report["submitted_ids"] == ids
    assert report["total_instances"] == report["resolved_instances"] == len(ids)
    assert report["error_ids"] == report["unresolved_ids"] == report["empty_patch_ids"] == report["incomplete_ids"] == []
    for task in tasks:
        folder = reports / "logs" / "run_evaluation" / "gold-run" / "gold" / task.id
        assert {p.name for p in folder.iterdir()} == INSTANCE_FILES
        entry = json.loads((folder / "report.json").read_text())[task.id]
        assert entry["resolved"] and entry["patch_successfully_applied"] and not entry["patch_is_None"]
        assert sorted(entry["tests_status"]["FAIL_TO_PASS"]["success"]) == sorted(task.tests.fail_to_pass)
        assert (folder / "patch.diff").read_text() == task.gold_patch
        assert "passed" in (folder / "test_output.txt").read_text()

    # The SWE-bench file itself works as --dataset too (with the mirror and recipes).
    empty = cli(
        "evaluate",
        "--dataset",
        str(imported / "instances.jsonl"),
        "--repo-mirror",
        str(imported / "mirror"),
        "--recipes",
        str(imported / "recipes.yaml"),
        "--predictions",
        "empty",
        "--run-id",
        "empty-run",
        "--report-dir",
        str(reports),
    )
    assert empty.returncode == 0, empty.stdout + empty.stderr
    report = json.loads((reports / "empty.empty-run.json").read_text())
    assert RUN_REPORT_KEYS <= set(report)
    assert report["empty_patch_ids"] == ids and report["empty_patch_instances"] == len(ids)
    assert report["resolved_ids"] == report["completed_ids"] == report["error_ids"] == []


def test_rerun_with_the_same_id_skips_finished_instances(imported, tasks):
    chosen = tasks[:2]
    first = evaluate(chosen, "gold", "rerun", max_workers=2, report_dir=imported / "rerun")
    assert [r.outcome for r in first.results] == ["resolved", "resolved"]
    assert not any(r.cached for r in first.results)
    log = imported / "rerun" / "logs" / "run_evaluation" / "rerun" / "gold" / chosen[0].id / "run_instance.log"
    before = log.stat().st_mtime_ns
    again = evaluate(chosen, "gold", "rerun", max_workers=2, report_dir=imported / "rerun")
    assert all(r.cached and r.outcome == "resolved" for r in again.results)
    assert log.stat().st_mtime_ns == before
    assert again.reports["gold"]["resolved_ids"] == sorted(t.id for t in chosen)


def test_mixed_predictions_are_classified_like_swebench(imported, tasks):
    gold_task, empty_task, broken_task, missing_task = tasks[:4]
    predictions = [
        Prediction(instance_id=gold_task.id, model_name_or_path="org/model", model_patch=gold_task.gold_patch),
        Prediction(instance_id=empty_task.id, model_name_or_path="org/model", model_patch=None),
        Prediction(
            instance_id=broken_task.id,
            model_name_or_path="org/model",
            model_patch="diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n",
        ),
    ]
    seen = []
    outcome = evaluate(tasks[:4], predictions, "mixed", max_workers=3, report_dir=imported / "mixed", on_result=seen.append)
    report = outcome.reports["org/model"]
    assert report["resolved_ids"] == [gold_task.id]
    assert report["empty_patch_ids"] == [empty_task.id]
    assert report["error_ids"] == [broken_task.id] and "patch_failed" in report["error_details"][broken_task.id]
    assert report["incomplete_ids"] == [missing_task.id]
    assert report["submitted_instances"] == 3 and report["total_instances"] == 4
    assert sorted(r.instance_id for r in seen) == sorted(p.instance_id for p in predictions)
    # Slashes in model names become double underscores, as in SWE-bench.
    assert (imported / "mixed" / "org__model.mixed.json").is_file()
    broken_dir = imported / "mixed" / "logs" / "run_evaluation" / "mixed" / "org__model" / broken_task.id
    assert not (broken_dir / "report.json").exists()
    assert "patch_failed" in (broken_dir / "run_instance.log").read_text()


def test_ctrl_c_stops_cleanly_and_leaves_no_container(imported, tasks, docker_client):
    chosen = tasks[:3]
    predictions = imported / "hanging.jsonl"
    rows = [{"instance_id": t.id, "model_name_or_path": "slow", "model_patch": _hanging_patch(t, imported)} for t in chosen]
    assert all("time.sleep(300)" in row["model_patch"] for row in rows)
    predictions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    run_id = f"ctrlc-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SWE_ENV_RUN_ID": run_id}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swe_env.cli",
            "evaluate",
            "--dataset",
            str(imported / "tasks"),
            "--predictions",
            str(predictions),
            "--run-id",
            run_id,
            "--max-workers",
            "2",
            "--report-dir",
            str(imported / "ctrlc"),
            "--instance-ids",
            ",".join(t.id for t in chosen),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _graders_of(docker_client, run_id):
            time.sleep(0.2)
        assert _graders_of(docker_client, run_id), "no grader container started"
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        try:
            _out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate()
            left = docker_client.containers.list(all=True, filters={"label": f"swe_env.run={run_id}"})
            for container in left:
                container.remove(force=True)
            left = [container.name for container in left]
            pytest.fail(f"evaluate did not end within 120 s of Ctrl-C; containers {left}; stderr:\n{err[-3000:]}")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not docker_client.containers.list(all=True, filters={"label": f"swe_env.run={run_id}"})
    report = json.loads((imported / "ctrlc" / f"slow.{run_id}.json").read_text())
    assert set(report["incomplete_ids"]) == {t.id for t in chosen}
    assert report["error_ids"] == [] and report["resolved_ids"] == []


def _graders_of(docker_client, run_id: str) -> list:
    return docker_client.containers.list(filters={"label": [f"swe_env.run={run_id}", "swe_env.kind=grader"]})


def _hanging_patch(task, scratch) -> str:
    """A patch that makes the package every test imports sleep for minutes (made with git on the host)."""
    package = task.id.split("-")[0]
    tree = scratch / f"hang-{task.id}"
    if not tree.exists():
        subprocess.run(["git", "clone", "-q", task.repo_location(), str(tree)], check=True)
        subprocess.run(["git", "-C", str(tree), "checkout", "-q", task.base_commit], check=True)
        with open(tree / package / "__init__.py", "a") as handle:
            handle.write("import time\ntime.sleep(300)\n")
    return subprocess.run(["git", "-C", str(tree), "diff"], check=True, capture_output=True, text=True).stdout


def test_validate_dataset_names_instances_whose_gold_fails(tmp_path, tasks):

    dataset, mirror, recipes = write_swebench_dataset(tmp_path, tasks[:2])
    records = swebench_records(tasks[:2])
    records[1]["patch"] = tasks[0].gold_patch  # another task's fix: does not apply here, a broken instance
    dataset.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cli("validate", "--dataset", str(dataset), "--repo-mirror", str(mirror), "--recipes", str(recipes))
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stderr.splitlines() if line.startswith(f"{tasks[1].id}: ")]
    assert len(broken) == 1 and "gold_failed" in broken[0] and "not passing" in broken[0]
    assert not [line for line in result.stderr.splitlines() if line.startswith(f"{tasks[0].id}: ")]
    assert "environment fault, not a model failure" in result.stderr
