"""SWE-bench instances and predictions: reading, recipes, import into task files (pure logic, no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swe_env.data.task import load_tasks
from swe_env.importers import swebench
from swe_env.importers.swebench import DatasetError

from ..helpers import run_cli as swe_env
from ..helpers import swebench_records, write_swebench_dataset


def test_jsonl_json_list_and_json_object_read_the_same(tmp_path, tasks):
    records = swebench_records(tasks[:2])
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "b.json").write_text(json.dumps(records, indent=2))
    (tmp_path / "c.json").write_text(json.dumps({r["instance_id"]: {k: v for k, v in r.items() if k != "instance_id"} for r in records}))
    read = [swebench.read_records(tmp_path / name) for name in ("a.jsonl", "b.json", "c.json")]
    assert read[0] == read[1] == records
    assert sorted(read[2], key=lambda r: r["instance_id"]) == sorted(records, key=lambda r: r["instance_id"])


def test_parquet_is_read_with_pyarrow(tmp_path, tasks):
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet

    records = swebench_records(tasks[:2])
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(records), tmp_path / "d.parquet")
    assert swebench.read_records(tmp_path / "d.parquet") == records


def test_instance_becomes_a_task_with_mirror_and_recipe(tmp_path, tasks):
    dataset, mirror, recipes_file = write_swebench_dataset(tmp_path, tasks)
    loaded = swebench.load_instances(dataset, mirror, swebench.load_recipes(recipes_file))
    assert [t.id for t in loaded] == [t.id for t in tasks]
    for imported, original in zip(loaded, tasks, strict=True):
        assert Path(imported.repo).parent == mirror.resolve()
        assert imported.tests.fail_to_pass == original.tests.fail_to_pass
        assert imported.tests.pass_to_pass == original.tests.pass_to_pass
        assert imported.gold_patch == original.gold_patch
        assert imported.environment.pip_packages == ["pytest==8.3.5"] and imported.environment.install == []
        assert imported.meta["version"] == "0.1" and imported.meta["repo"].startswith("swe-env/")


def test_default_recipe_runs_only_the_test_patch_files(tasks):
    record = swebench_records(tasks[:1])[0]
    task = swebench.instance_to_task(record, repo_mirror=None)
    assert task.repo == f"https://github.com/{record['repo']}.git"
    assert task.environment.install == ["python -m pip install -e ."]
    assert task.tests.command.endswith("tests/test_dates.py tests/test_interest.py")


def test_recipe_lookup_order(tmp_path):
    recipes = swebench.load_recipes(None)
    assert swebench.recipe_for("pallets/flask", "2.3", recipes).python == "3.11"
    assert swebench.recipe_for("psf/requests", "2.27", recipes).install == ["python -m pip install ."]
    assert swebench.recipe_for("someone/else", None, recipes) is None
    user = tmp_path / "mine.yaml"
    user.write_text('defaults: {python: "3.13"}\n"pallets/flask": {"9.9": {pip_packages: [flask-extra]}}\n')
    merged = swebench.load_recipes(user)
    assert merged["pallets/flask"]["9.9"].python == "3.13"  # the user's defaults reach the user's recipes...
    assert merged["pallets/flask"]["2.3"] == recipes["pallets/flask"]["2.3"]  # ...and no built-in one


def test_builtin_recipes_pin_their_test_dependencies_and_use_a_python_we_have():
    from swe_env.data.task import PYTHON_IMAGES, nearest_python

    for repo, versions in swebench.builtin_recipes().items():
        for version, recipe in versions.items():
            assert nearest_python(recipe.python) in PYTHON_IMAGES, (repo, version)
            assert recipe.pip_uploaded_prior_to or all("==" in p for p in recipe.pip_packages), (repo, version)
            assert swebench.TEST_FILES in recipe.test_command or swebench.TEST_LABELS in recipe.test_command, (repo, version)


EVAL_SCRIPT = """#!/bin/bash
set -uxo pipefail
cd /testbed
git checkout abc123 tests/test_x.py
: '>>>>> Start Test Output'
pytest -rA tests/test_x.py
: '>>>>> End Test Output'
git checkout abc123 tests/test_x.py
"""


def test_eval_script_gives_the_test_command_and_python_is_recorded(tasks):
    assert swebench.eval_script_test_command(EVAL_SCRIPT) == "pytest -rA tests/test_x.py"
    assert swebench.eval_script_test_command("echo no markers") is None
    record = swebench_records(tasks[:1])[0]
    record.update(
        repo="psf/requests",
        version="2.27",
        eval_script=EVAL_SCRIPT,
        log_parser="parse_log_requests",
        image="swebench/sweb.eval.x86_64.psf_1776_requests-1:latest",
        eval_type="pass_and_fail",
    )
    task = swebench.instance_to_task(record)
    assert task.tests.command == "pytest -rA tests/test_x.py"
    assert task.environment.python == "3.9" and task.environment.os_image == "debian:bullseye"
    assert task.meta["python_requested"] == "3.9" and task.meta["python_used"] == "3.9"
    assert task.meta["log_parser"] == "parse_log_requests" and task.meta["image"].startswith("swebench/")
    record["eval_script"] = 42
    with pytest.raises(DatasetError, match="field 'eval_script': must be a string"):
        swebench.instance_to_task(record)


def test_requirement_files_are_read_at_the_setup_commit_with_nested_files(tmp_path):
    import subprocess

    from swe_env.build import repos

    repo = tmp_path / "r"
    (repo / "requirements").mkdir(parents=True)
    (repo / "requirements" / "dev.txt").write_text("# dev\n-r base.txt\npytest==7.1.2  # pinned\n-e .\n--index-url http://x\n")
    (repo / "requirements" / "base.txt").write_text("click>=8\n./local\nimportlib-metadata; python_version < '3.8'\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    found = repos.read_requirements(str(repo), sha, ["requirements.txt", "requirements/dev.txt"])
    assert found == ["click>=8", "importlib-metadata; python_version < '3.8'", "pytest==7.1.2"]
    assert repos.read_requirements(str(repo), sha, ["nope.txt"]) == []


def test_import_writes_task_files_that_round_trip(tmp_path, tasks):
    dataset, mirror, recipes_file = write_swebench_dataset(tmp_path, tasks)
    written = swebench.import_instances(dataset, tmp_path / "out", mirror, swebench.load_recipes(recipes_file))
    assert len(written) == len(tasks)
    again = {t.id: t for t in load_tasks(tmp_path / "out")}
    for task in tasks:
        assert again[task.id].gold_patch == task.gold_patch
        assert again[task.id].tests.test_patch == task.tests.test_patch
        assert again[task.id].problem_statement == task.problem_statement


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.pop("base_commit"), "field 'base_commit': required field is missing"),
        (lambda r: r.update(FAIL_TO_PASS="[not json"), "field 'FAIL_TO_PASS': a string that is not a JSON list"),
        (lambda r: r.update(PASS_TO_PASS=[1, 2]), "field 'PASS_TO_PASS': must be a list of test ids"),
        (lambda r: r.update(base_commit="xyz"), "field 'base_commit': must be a hexadecimal commit sha"),
        (lambda r: r.update(instance_id="bad id!"), "field 'id': must contain only"),
    ],
)
def test_bad_instance_names_file_record_and_field(tmp_path, tasks, change, expected):
    records = swebench_records(tasks[:2])
    change(records[1])
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(DatasetError) as info:
        swebench.load_instances(path)
    assert str(info.value).startswith(f"{path}: record 2") and expected in str(info.value)


def test_unreadable_files_are_clear_errors(tmp_path):
    (tmp_path / "broken.json").write_text('[{"instance_id": ')
    (tmp_path / "broken.jsonl").write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DatasetError, match=r"broken.json: not valid JSON \(line 1\)"):
        swebench.read_records(tmp_path / "broken.json")
    with pytest.raises(DatasetError, match=r"broken.jsonl: line 2: not valid JSON"):
        swebench.read_records(tmp_path / "broken.jsonl")
    with pytest.raises(DatasetError, match="no such file"):
        swebench.read_records(tmp_path / "absent.jsonl")
    with pytest.raises(DatasetError, match=r"no mirror of a/b \(expected a__b"):
        swebench.resolve_repo("a/b", tmp_path)


def test_predictions_forms_and_errors(tmp_path, tasks):
    ids = [t.id for t in tasks[:2]]
    rows = [{"instance_id": i, "model_name_or_path": "org/model", "model_patch": "diff"} for i in ids]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.json").write_text(json.dumps({r["instance_id"]: r for r in rows}))
    for name in ("p.jsonl", "p.json"):
        assert {p.instance_id for p in swebench.load_predictions(tmp_path / name, tasks)} == set(ids)
    assert {p.model_patch for p in swebench.load_predictions("empty", tasks)} == {""}
    assert [p.model_patch for p in swebench.load_predictions("gold", tasks)] == [t.gold_patch for t in tasks]
    bad_cases = [
        ({"instance_id": ids[0], "model_name_or_path": "m"}, "field 'model_patch': required field is missing"),
        ({"instance_id": ids[0], "model_patch": "d"}, "field 'model_name_or_path': required field is missing"),
        ({"instance_id": "nope", "model_name_or_path": "m", "model_patch": "d"}, "'nope' is not in the dataset"),
        ({"instance_id": ids[0], "model_name_or_path": "m", "model_patch": 3}, "must be a string or null"),
    ]
    for row, expected in bad_cases:
        (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n")
        with pytest.raises(DatasetError) as info:
            swebench.load_predictions(tmp_path / "bad.jsonl", tasks)
        assert str(info.value).startswith(f"{tmp_path / 'bad.jsonl'}: prediction 1") and expected in str(info.value)


def test_cli_import_and_user_mistakes_are_one_line(tmp_path, tasks):
    dataset, mirror, recipes = write_swebench_dataset(tmp_path, tasks[:2])
    result = swe_env(
        "tasks", "import-swebench", str(dataset), "--out", str(tmp_path / "out"), "--repo-mirror", str(mirror), "--recipes", str(recipes)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(t.id for t in tasks[:2])
    (tmp_path / "bad.jsonl").write_text('{"instance_id": "x"}\n')
    (tmp_path / "preds.json").write_text('[{"instance_id": "x"}]')
    for args, expected in [
        (("tasks", "import-swebench", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o2")), "field 'repo'"),
        (
            ("evaluate", "--dataset", str(tmp_path / "out"), "--predictions", str(tmp_path / "preds.json"), "--run-id", "r"),
            "preds.json: prediction 1 ('x'): field 'model_name_or_path'",
        ),
    ]:
        result = swe_env(*args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(lines) == 1 and expected in lines[0], result.stderr


def test_sample_is_stratified_by_repository_and_repeatable(tasks):
    from swe_env.run import validation

    many = [task.model_copy(update={"id": f"{task.id}-{n}", "meta": {"repo": f"org/r{n % 3}"}}) for task in tasks for n in range(6)]
    chosen = validation.sample_tasks(many, 9, seed=1)
    assert len(chosen) == 9 and len({t.id for t in chosen}) == 9
    assert sorted(validation.repo_of(t) for t in chosen) == ["org/r0"] * 3 + ["org/r1"] * 3 + ["org/r2"] * 3
    assert [t.id for t in validation.sample_tasks(many, 9, seed=1)] == [t.id for t in chosen]
    assert [t.id for t in validation.sample_tasks(many, 9, seed=2)] != [t.id for t in chosen]
    assert {validation.repo_of(t) for t in validation.sample_tasks(many, 2, seed=0)} <= {"org/r0", "org/r1", "org/r2"}
    assert len(validation.sample_tasks(many, 2, seed=0)) == 2
    assert validation.sample_tasks(many, 10_000) == many


def test_gold_failure_causes_are_one_line():
    from swe_env.grading.verdict import GradingReport, TestGroup
    from swe_env.run.validation import gold_failure_cause

    report = GradingReport(
        task_id="t",
        status="graded",
        report_source="sealed",
        test_results={"a::x": "failed", "a::y": "missing"},
        tests_status={"FAIL_TO_PASS": TestGroup(failure=["a::x"]), "PASS_TO_PASS": TestGroup(failure=["a::y"])},
        output="requests.exceptions.ConnectionError: Failed to establish a new connection",
    )
    cause = gold_failure_cause(report)
    assert "\n" not in cause and "2 listed test(s) not passing (failed/missing): FAIL_TO_PASS a::x and 1 more" in cause
    assert "network" in cause
    broken = GradingReport(task_id="t", status="test_patch_failed", error="the task's test patch does not apply:\nerror: x")
    assert gold_failure_cause(broken) == "test_patch_failed: the task's test patch does not apply: error: x"


def test_install_commands_get_the_instance_version(tmp_path, tasks):
    user = tmp_path / "r.yaml"
    user.write_text('"swe-env/ledger": {"*": {install: ["SETUPTOOLS_SCM_PRETEND_VERSION={version}.0 pip install -e ."]}}\n')
    record = swebench_records(tasks[:1])[0]
    record["repo"] = "swe-env/ledger"
    task = swebench.instance_to_task(record, swebench.load_recipes(user))
    assert task.environment.install == ["SETUPTOOLS_SCM_PRETEND_VERSION=0.1.0 pip install -e ."]


def test_an_instance_with_an_image_keeps_it_and_the_eval_scripts_activation():
    from swe_env.importers import swebench as sb

    script = (
        "#!/bin/bash\nset -uxo pipefail\nsource /opt/miniconda3/bin/activate\nconda activate testbed\ncd /testbed\n"
        ": '>>>>> Start Test Output'\npytest -rA t.py\n: '>>>>> End Test Output'\n"
    )
    record = {
        "instance_id": "o__r-1",
        "repo": "o/r",
        "base_commit": "a" * 40,
        "patch": "",
        "test_patch": "",
        "FAIL_TO_PASS": ["t.py::a"],
        "PASS_TO_PASS": [],
        "image": "swebench/sweb.eval.x86_64.o_1776_r-1:latest",
        "eval_script": script,
    }
    task = sb.instance_to_task(record)
    assert task.environment.image == "swebench/sweb.eval.x86_64.o_1776_r-1:latest"
    assert task.environment.activate == "source /opt/miniconda3/bin/activate && conda activate testbed"
    assert task.tests.command == "pytest -rA t.py"
    assert sb.instance_to_task({**record, "image": None}).environment.image is None
    assert sb.eval_script_activation("cd /testbed\nsource x\n") is None
