"""A newcomer's first hour: every mistake refused up front with one line that names the cause, scripts get
JSON and silence, and tasks that hold the same thing share one image (issue 26)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from swe_env import SWEEnv
from swe_env.build import repos
from swe_env.build.images import ImageBuilder
from swe_env.data.task import TaskSpecError, load_task_file
from swe_env.errors import clip
from swe_env.tools import MAX_ACTION_CHARS, actions

from .helpers import run_cli as swe_env
from .helpers import write_task


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- silent acceptance


@pytest.mark.docker
def test_unknown_reset_option_and_oversized_command_are_refused_and_the_shell_keeps_its_state(task, image):
    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        env.step({"tool": "bash", "command": "export KEPT=42; mkdir -p /tmp/here && cd /tmp/here"})
        container = env.sandbox.id if env.sandbox else None
        with pytest.raises(
            ValueError,
            match=r"^unknown reset option 'task-id' \(did you mean 'task_id'\?\); "
            r"reset options are task_id, action_format, episode_index, model$",
        ):
            env.reset(options={"task-id": task.id})
        with pytest.raises(ValueError, match=r"^unknown reset option 'bogus';"):
            env.reset(options={"bogus": 1})
        assert env.sandbox is not None and env.sandbox.id == container  # the running episode went on
        assert env.action_space.max_length == MAX_ACTION_CHARS == 1_000_000
        huge = "x" * 20_000_000
        observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": huge})
        assert observation == (
            "Error: bash: argument 'command' is 20,000,000 characters, over the action space's "
            "limit of 1,000,000; nothing was run (write large content in parts)"
        )
        assert not (terminated or truncated) and reward == 0
        observation, *_ = env.step("y" * (MAX_ACTION_CHARS + 1))  # a raw text action past the limit
        assert observation.startswith("Error: the action is 1,000,001 characters, over the action space's limit")
        observation, *_ = env.step({"tool": "bash", "command": "echo $KEPT; pwd"})
        assert observation.splitlines()[:2] == ["42", "/tmp/here"]
    finally:
        env.close()


def test_tool_argument_typos_get_the_nearest_name():
    with pytest.raises(
        actions.ActionError,
        match=r"^view: unexpected argument 'view_range' \(did you mean 'range'\?\); "
        r"view takes path, range$",
    ):
        actions.parse({"tool": "view", "path": "a.py", "view_range": [1, 5]})


def test_readme_tools_schemas_after_a_bare_import():
    code = "import swe_env; print(len(swe_env.tools.schemas()))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "6", result.stderr


# ---------------------------------------------------------------- messages that hide the cause


def test_a_task_file_shows_every_problem_unknown_fields_first(tmp_path):
    path = write_task(
        tmp_path / "t", "id: t\nrepo: r.bundle\nbase_comit: abc1234\nproblem_statement: p\ntests:\n  fail_to_pas: [a]\nlimits: {max_step: 3}\n"
    )
    with pytest.raises(TaskSpecError) as info:
        load_task_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: task 't': ")
    problems = message.split(": task 't': ", 1)[1].split("; field ")
    assert [p.removeprefix("field ") for p in problems] == [
        "'tests.fail_to_pas': unknown field (did you mean 'fail_to_pass'?)",
        "'limits.max_step': unknown field (did you mean 'max_steps'?)",
        "'base_comit': unknown field (did you mean 'base_commit'?)",
        "'base_commit': required field is missing",
        "'tests.fail_to_pass': required field is missing",
    ]


def test_cut_messages_end_between_words():
    text = "the patch does not apply: git apply: error: patch failed: ledger/money.py:12 " * 5
    head, tail = clip(text, 100), clip(text, 100, keep="tail")
    assert head.endswith(" …") and text.startswith(head.removesuffix(" …"))
    assert tail.startswith("… ") and " ".join(text.split()).endswith(tail.removeprefix("… "))
    assert len(head) <= 102 and len(tail) <= 102


def test_a_wrong_repository_path_is_the_task_files_error(tmp_path, task):
    text = task.source.read_text().replace("repo: ../repos/", "repo: ../nowhere/")
    path = write_task(tmp_path / "moved", text)
    moved = load_task_file(path)
    expected = f"{path.resolve()}: task '{task.id}': field 'repo': no such file or directory: ../nowhere/"
    with pytest.raises(TaskSpecError, match="^" + expected.replace(".", r"\.")):
        repos.resolve_commit(moved)  # what a build, reset or validate meets: the task's error, not the machinery's
    result = swe_env("tasks", "list", "--tasks", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert [" ".join(line.split()) for line in lines_of(result.stderr)] == [
        f"error: {expected}{moved.repo.removeprefix('../nowhere/')} (relative to {path.resolve().parent})"
    ]


# ---------------------------------------------------------------- scripts


def test_version_json_and_quiet(tasks):
    from swe_env import __version__

    assert swe_env("--version").stdout.strip() == f"swe-env {__version__}"
    listed = swe_env("tasks", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [row["id"] for row in rows] == [task.id for task in tasks]
    assert all(row["error"] is None and row["fail_to_pass"] >= 1 for row in rows)
    quiet = swe_env("tasks", "list", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    for command in ("validate", "rollout", "evaluate"):
        help_text = " ".join(swe_env(command, "--help").stdout.split())
        assert "--json" in help_text and "--quiet" in help_text, command


def test_help_loads_no_engine_sdk():
    code = (
        "import sys; from swe_env.cli import app; import typer.main; "
        "print(sorted(m for m in ('docker', 'git', 'swe_env.build.images', 'swe_env.runtime.sandbox') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr


# ---------------------------------------------------------------- disk


@pytest.mark.docker
def test_tasks_holding_the_same_thing_share_one_instance_image(task, tmp_path, docker_client):
    copies = []
    for n in range(3):
        text = task.source.read_text().replace(f"id: {task.id}", f"id: {task.id}-copy{n}")
        text = text.replace("repo: ../repos/", f"repo: {task.source.parent.parent}/repos/")
        copies.append(load_task_file(write_task(tmp_path / f"copy{n}", text)))
    builder = ImageBuilder()
    tags = {builder.instance_tag(copy) for copy in [task, *copies]}
    assert len(tags) == 1 and task.id not in next(iter(tags))
    assert builder.ensure(copies[0]) == builder.ensure(copies[2]) == builder.ensure(task) == next(iter(tags))
    labels = docker_client.images.get(next(iter(tags))).labels
    assert "swe_env.task" not in labels and labels["swe_env.commit"].startswith(task.base_commit)
    # What the image holds decides: another install step is another image.
    other = task.model_copy(update={"environment": task.environment.model_copy(update={"install": ["true"]})})
    assert builder.instance_tag(other) not in tags


@pytest.mark.docker
def test_validate_names_the_nearest_reported_id_of_a_misspelt_one(task, tmp_path):
    listed = task.tests.fail_to_pass[0]
    text = task.source.read_text().replace("repo: ../repos/", f"repo: {task.source.parent.parent}/repos/")
    write_task(tmp_path / "typo", text.replace(listed, listed[:-1]))
    result = swe_env("validate", "--tasks", str(tmp_path), "--json")
    assert result.returncode == 1, result.stderr
    [row] = json.loads(result.stdout)
    assert row["verdict"] == "gold_failed" and row["cause"].endswith(f"(missing): FAIL_TO_PASS {listed[:-1]} (did you mean {listed!r}?)")
