"""The `swe-env` command as a user runs it."""

from __future__ import annotations

import json
import uuid

import pytest

from ..helpers import TASKS_DIR, write_task
from ..helpers import run_cli as swe_env


def test_tasks_list_shows_every_task(tasks):
    result = swe_env("tasks", "list", "--tasks", str(TASKS_DIR))
    assert result.returncode == 0, result.stderr
    for task in tasks:
        assert task.id[:12] in result.stdout


def test_malformed_task_is_one_line_without_traceback(tmp_path):
    write_task(tmp_path / "bad", "id: bad\nrepo: x.bundle\nbase_commit: zzz\nproblem_statement: p\ntests:\n  fail_to_pass: [a]\n")
    result = swe_env("tasks", "list", "--tasks", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "field 'base_commit'" in lines[0] and "task.yaml" in lines[0]


@pytest.mark.docker
def test_validate_one_task(tasks):
    result = swe_env("validate", "--tasks", str(tasks[0].source))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 1 tasks valid" in result.stdout


@pytest.mark.docker
def test_demo_on_one_task_writes_trajectories(tmp_path, tasks, docker_client):
    out = tmp_path / "demo.jsonl"
    run_id = f"cli-demo-{uuid.uuid4().hex[:8]}"
    result = swe_env("demo", "--tasks", str(tasks[-1].source.parent), "--out", str(out), run_id=run_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every oracle row resolved" in result.stdout
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["agent"], r["resolved"], r["reward"]) for r in records) == [("null", False, 0.0), ("oracle", True, 1.0)]
    assert not docker_client.containers.list(all=True, filters={"label": f"swe_env.run={run_id}"})


@pytest.mark.docker
def test_gc_removes_orphans(docker_client, image):
    container = docker_client.containers.run(
        image,
        ["sleep", "300"],
        detach=True,
        auto_remove=True,
        labels={"swe_env.managed": "1", "swe_env.owner": "nowhere-host:1", "swe_env.expires": "1"},
    )
    result = swe_env("gc")
    assert result.returncode == 0, result.stderr
    assert container.name in result.stdout
    assert not docker_client.containers.list(all=True, filters={"id": container.id})


def test_bracketed_text_in_messages_is_printed_as_written(tmp_path):
    # rich reads "[server]" as markup and would print "swe-env" for "swe-env[server]".
    missing = tmp_path / "pip install 'swe-env[server]'" / "[bold]x[/]"
    result = swe_env("tasks", "list", "--tasks", str(missing))
    assert result.returncode == 2
    assert f"{missing}: no such file or directory" in result.stderr.replace("\n", "")


def test_every_command_renders_its_help():
    """Typer renders help text as rich markup, so a `[...]` in an option's help can break `--help` for that command."""
    import typer.main

    from swe_env.cli import app

    def commands(group, prefix: tuple[str, ...] = ()):
        for name, command in group.commands.items():
            yield (*prefix, name)
            if hasattr(command, "commands"):  # a group of commands
                yield from commands(command, (*prefix, name))

    from typer.testing import CliRunner

    runner = CliRunner()
    found = list(commands(typer.main.get_command(app)))
    assert ("images", "push") in found and ("rollout",) in found
    for path in found:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"swe-env {' '.join(path)} --help: {result.exception!r}"


# Every command, in the order `swe-env --help` lists it, with its arguments (upper case) and options in the order its
# help lists them. A command added, renamed, moved or given another option changes this on purpose, here too.
COMMANDS = {
    "setup": ["--tasks"],
    "synthesize": [
        "--repo",
        "--commit",
        "--name",
        "--environment",
        "--recipe",
        "--recipes",
        "--out",
        "--max-tasks",
        "--max-candidates",
        "--methods",
        "--kinds",
        "--functions",
        "--model",
        "--model-name",
        "--workers",
        "--hide-tests",
        "--seed",
        "--max-minutes",
        "--learn-timeout",
    ],
    "build": ["--tasks", "--images", "--registry", "--max-disk"],
    "validate": [
        "--tasks",
        "--dataset",
        "--repo-mirror",
        "--recipes",
        "--instances",
        "--sample",
        "--seed",
        "--workers",
        "--images",
        "--backend",
        "--ray-address",
        "--json",
        "--quiet",
    ],
    "rollout": [
        "--agent",
        "--tasks",
        "--episodes-per-task",
        "--workers",
        "--out",
        "--restart",
        "--backend",
        "--ray-address",
        "--warm-pool",
        "--base-url",
        "--model",
        "--tool-format",
        "--max-turns",
        "--registry",
        "--max-disk",
        "--json",
        "--quiet",
    ],
    "export": ["TRAJECTORIES", "--format", "--out", "--min-reward", "--resolved", "--dedupe"],
    "demo": ["--tasks", "--out", "--workers"],
    "evaluate": [
        "--dataset",
        "--predictions",
        "--run-id",
        "--max-workers",
        "--report-dir",
        "--repo-mirror",
        "--recipes",
        "--instance-ids",
        "--images",
        "--registry",
        "--max-disk",
        "--backend",
        "--ray-address",
        "--json",
        "--quiet",
    ],
    "gc": ["--all"],
    "trace": [
        "COMMAND",
        "--task",
        "--tasks",
        "--patch",
        "--function",
        "--args",
        "--out",
        "--format",
        "--include",
        "--depth",
        "--max-events",
        "--max-bytes",
        "--repr-cap",
        "--full-locals",
        "--trace-modules",
        "--timeout",
    ],
    "trace-corpus": [
        "--out",
        "--tasks",
        "--task",
        "--dataset",
        "--repo-mirror",
        "--recipes",
        "--select",
        "--suite",
        "--shards",
        "--tokenizer",
        "--with-test-patch",
        "--function-traces/--no-function-traces",
        "--max-function-traces",
        "--levels",
        "--context-bytes",
        "--max-repository-traces",
        "--before-after",
        "--dedupe/--no-dedupe",
        "--check/--no-check",
        "--max-events",
        "--max-bytes",
        "--repr-cap",
        "--max-traces",
        "--max-total-bytes",
        "--max-seconds",
        "--timeout",
        "--format",
        "--workers",
        "--restart",
        "--images",
    ],
    "serve": [
        "--tasks",
        "--host",
        "--port",
        "--token",
        "--operator-token",
        "--client-tokens-file",
        "--max-sessions",
        "--max-sessions-per-client",
        "--idle-timeout",
        "--trajectory-path",
        "--log-level",
        "--max-request-bytes",
        "--max-output-limit",
        "--max-command-timeout",
        "--max-episode-timeout",
        "--max-episode-steps",
    ],
    "tasks": [],
    "tasks list": ["--tasks", "--json", "--quiet"],
    "tasks new": ["--repo", "--base", "--fix", "--tests", "--out", "--id", "--environment"],
    "tasks import-swebench": ["FILE", "--out", "--repo-mirror", "--recipes"],
    "tasks import-harbor": ["FOLDER", "--out"],
    "images": [],
    "images ls": ["--label"],
    "images prune": ["--max-disk", "--older-than", "--keep", "--dry-run", "--label"],
    "images push": ["--registry", "--kind", "--label"],
}


def test_the_command_list_is_pinned():
    """Every command's name, place and options, as a user types them (the CLI's modules may move; this may not)."""
    import typer.main

    from swe_env.cli import app

    def commands(group, prefix: tuple[str, ...] = ()):
        for name, command in group.commands.items():
            yield " ".join((*prefix, name)), command
            if hasattr(command, "commands"):
                yield from commands(command, (*prefix, name))

    def words(command) -> list[str]:
        if hasattr(command, "commands"):
            return []
        return [
            param.name.upper() if param.param_type_name == "argument" else "/".join([param.opts[0], *param.secondary_opts[:1]])
            for param in command.params
        ]

    found = {path: words(command) for path, command in commands(typer.main.get_command(app))}
    assert list(found) == list(COMMANDS)
    assert found == COMMANDS
