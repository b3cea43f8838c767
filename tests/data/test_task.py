"""Task specs: loading the bundled tasks and one-line errors for malformed files."""

from __future__ import annotations

import pytest

from swe_env.data.task import DEFAULT_TEST_COMMAND, TaskSpecError, load_task_file, load_tasks

from ..helpers import TASKS_DIR, write_task

GOOD = """\
id: demo-task
repo: ../repos/minicsv.bundle
base_commit: 0123456789abcdef0123456789abcdef01234567
problem_statement: Something is broken.
tests:
  fail_to_pass: ["tests/test_a.py::test_x"]
"""


def test_bundled_tasks_load_and_are_many():
    tasks = load_tasks(TASKS_DIR)
    assert len(tasks) >= 8
    assert len({t.repo for t in tasks}) >= 3
    assert [t.id for t in tasks] == sorted(t.id for t in tasks)
    for task in tasks:
        assert task.gold_patch and task.tests.test_patch and task.tests.fail_to_pass and task.tests.pass_to_pass
        assert task.source is not None and task.source.parent.name == task.id


def test_defaults_and_relative_repo(tmp_path):
    path = write_task(tmp_path / "demo-task", GOOD)
    task = load_task_file(path)
    assert task.tests.command == DEFAULT_TEST_COMMAND
    assert task.environment.workdir == "/testbed"
    assert task.limits.network is False
    assert task.repo_location() == str((tmp_path / "repos" / "minicsv.bundle").resolve())


def test_load_single_file_and_single_folder(tmp_path):
    write_task(tmp_path / "demo-task", GOOD)
    assert [t.id for t in load_tasks(tmp_path / "demo-task")] == ["demo-task"]
    assert [t.id for t in load_tasks(tmp_path / "demo-task" / "task.yaml")] == ["demo-task"]
    assert [t.id for t in load_tasks(tmp_path)] == ["demo-task"]


@pytest.mark.parametrize(
    ("change", "field", "cause"),
    [
        (lambda t: t.replace("problem_statement: Something is broken.\n", ""), "problem_statement", "required field is missing"),
        (lambda t: t.replace("0123456789abcdef0123456789abcdef01234567", "not-a-sha"), "base_commit", "hexadecimal"),
        (lambda t: t + "limits:\n  max_steps: many\n", "limits.max_steps", "integer"),
        (lambda t: t + "limits:\n  memory: lots\n", "limits.memory", "size"),
        (lambda t: t + "colour: blue\n", "colour", "unknown field"),
        (lambda t: t.replace('["tests/test_a.py::test_x"]', "[]"), "tests.fail_to_pass", "at least one"),
    ],
)
def test_malformed_spec_names_file_task_and_field(tmp_path, change, field, cause):
    path = write_task(tmp_path / "demo-task", change(GOOD))
    with pytest.raises(TaskSpecError) as info:
        load_task_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "task 'demo-task'" in message
    assert f"field '{field}'" in message
    assert cause in message
    assert "\n" not in message


def test_bad_yaml_names_the_line(tmp_path):
    path = write_task(tmp_path / "t", "id: [unclosed\n")
    with pytest.raises(TaskSpecError, match=r"task.yaml: not valid YAML \(line \d+\)"):
        load_task_file(path)


def test_duplicate_ids_name_both_files(tmp_path):
    write_task(tmp_path / "a", GOOD)
    write_task(tmp_path / "b", GOOD)
    with pytest.raises(TaskSpecError) as info:
        load_tasks(tmp_path)
    assert "duplicate id" in str(info.value)
    assert str(tmp_path / "a") in str(info.value) and str(tmp_path / "b") in str(info.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(TaskSpecError, match="no such file"):
        load_tasks(tmp_path / "nowhere")
    with pytest.raises(TaskSpecError, match="no task files"):
        load_tasks(tmp_path)


def test_python_version_picks_the_nearest_base_image(tmp_path):
    from swe_env.data.task import Environment, nearest_python

    assert [nearest_python(v) for v in ("3.5", "3.6", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")] == [
        "3.9",
        "3.9",
        "3.9",
        "3.9",
        "3.9",
        "3.11",
        "3.11",
        "3.13",
        "3.13",
    ]
    assert Environment(python="3.9").os_image == "debian:bullseye"
    assert Environment(python="3.10").python_used == "3.9"
    assert Environment().os_image == "debian:bookworm" and Environment().python_used == "3.11"
    assert Environment(python="3.9", base_image="ubuntu:22.04").os_image == "ubuntu:22.04"
    assert Environment(python="3.9", base_image="ubuntu:22.04").python_used is None
    path = write_task(tmp_path / "demo-task", GOOD.replace("tests:", "environment: {python: '2.7'}\ntests:"))
    with pytest.raises(TaskSpecError, match=r"field 'environment.python': must be a Python 3 version"):
        load_tasks(path)


def test_the_field_reference_page_is_current():
    """docs/task-reference.md is generated from the models' field docstrings; a field added or reworded
    without regenerating it fails here (regenerate: `python -m swe_env.data.reference > docs/task-reference.md`)."""
    from swe_env.data import reference

    page = (TASKS_DIR.parent / "docs" / "task-reference.md").read_text()
    assert page == reference.render()
    assert "| `gold_patch_file` |" in page and "| `fail_to_pass` |" in page
