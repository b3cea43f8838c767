"""mini-swe-agent (the real package, pinned in the `minisweagent` extra) in our containers, graded by our grader.

Its own `DefaultAgent` and `DeterministicModel`, its SWE-bench config (`swebench.yaml`), its
`get_environment` resolving our class from the dotted path, its `update_preds_file` writing
`preds.json`; our `swe-env evaluate` reading that file unchanged. Real Docker engine throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("MSWEA_SILENT_STARTUP", "1")

from minisweagent.agents.default import DefaultAgent  # noqa: E402
from minisweagent.config import get_config_from_spec  # noqa: E402
from minisweagent.environments import get_environment  # noqa: E402
from minisweagent.models.test_models import DeterministicModel, make_output  # noqa: E402

from swe_env.grading import diffs  # noqa: E402
from swe_env.integrations.minisweagent import SWEEnvEnvironment, run_batch  # noqa: E402

from ..helpers import ROOT, TASKS_DIR  # noqa: E402

pytestmark = pytest.mark.docker

CLASS_PATH = "swe_env.integrations.minisweagent.SWEEnvEnvironment"
SWEBENCH = get_config_from_spec("swebench.yaml")
"""mini-swe-agent's own SWE-bench config: its agent templates, limits and observation template."""
SUBMIT = "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat patch.txt"
"""The exact submission command swebench.yaml teaches."""


def model(commands: list[str]) -> DeterministicModel:
    """mini-swe-agent's DeterministicModel answering with one bash action per turn (no cost, so no cost limit)."""
    outputs = [make_output(f"THOUGHT: step {i}", [{"command": c}], cost=0.0) for i, c in enumerate(commands)]
    return DeterministicModel(outputs=outputs, observation_template=SWEBENCH["model"]["observation_template"])


def apply_gold(task) -> str:
    return f"git apply <<'SWE_ENV_EOF'\n{task.gold_patch}SWE_ENV_EOF"


def gold_commands(task) -> list[str]:
    """swebench.yaml's workflow: fix, a reproduction script, `git diff -- FILES > patch.txt`, submit."""
    files = " ".join(diffs.touched_paths(task.gold_patch))
    return [
        apply_gold(task),
        "printf 'print(1)\\n' > reproduce_issue.py && python reproduce_issue.py",
        f"git diff -- {files} > patch.txt",
        "cat patch.txt",
        SUBMIT,
    ]


def environment(task, **config):
    """Our class, resolved by mini-swe-agent's own get_environment from the dotted path."""
    return get_environment({**SWEBENCH["environment"], "environment_class": CLASS_PATH, "tasks": str(TASKS_DIR), "task_id": task.id, **config})


def _gone(docker_client, container_id: str) -> bool:
    return not [c for c in docker_client.containers.list(all=True, filters={"id": container_id}) if c.status != "removing"]


def test_default_agent_submits_the_gold_patch_and_gets_reward_1(task, image, docker_client):
    env = environment(task)
    assert isinstance(env, SWEEnvEnvironment)
    container = env.reset_info["container_id"]
    try:
        agent = DefaultAgent(model(gold_commands(task)), env, **SWEBENCH["agent"])
        info = agent.run(task.problem_statement)
        assert info["exit_status"] == "Submitted" and info["graded"] == "patch"
        assert info["reward"] == 1.0 and info["resolved"] is True and info["report"]["status"] == "graded"
        # What was graded is exactly the submitted text: the fix, not the scratch files beside it.
        assert info["submission"] == info["agent_submission"]
        assert diffs.touched_paths(info["submission"]) == diffs.touched_paths(task.gold_patch)
        assert "reproduce_issue.py" not in info["submission"] and "patch.txt" not in info["submission"]
        assert agent.messages[-1]["role"] == "exit"
        # Observations went through mini-swe-agent's template with the real exit code.
        shown = agent.messages[-3]  # the observation of `cat patch.txt`, before the submitting turn
        assert shown["role"] == "user" and shown["extra"]["returncode"] == 0
        assert shown["content"].startswith("<returncode>0</returncode>\n<output>\ndiff --git a/")
        saved = agent.serialize()
        assert saved["info"]["config"]["environment_type"] == CLASS_PATH
        assert saved["info"]["swe_env"]["reward"] == 1.0 and saved["info"]["swe_env"]["termination"] == "submitted"
        assert saved["info"]["exit_status"] == "Submitted" and saved["info"]["submission"] == info["submission"]
        # The episode is over: another action runs nothing.
        assert env.execute({"command": "echo again"})["returncode"] == -1
    finally:
        env.cleanup()
    assert _gone(docker_client, container)


def test_each_action_is_a_fresh_subshell_in_cwd(task, image):
    with environment(task, env={"GREETING": "hello world"}, timeout=30) as env:
        assert env.execute({"command": "cd /tmp && export FOO=bar && pwd"}) == {"output": "/tmp\n", "returncode": 0, "exception_info": ""}
        out = env.execute({"command": 'echo "[$FOO] [$GREETING]"; pwd'})
        assert out["output"] == "[] [hello world]\n/testbed\n" and out["returncode"] == 0
        assert env.execute({"command": "pwd"}, cwd="/tmp")["output"] == "/tmp\n"
        # exit, a failing command, a syntax error and even killing itself end only that action's subshell.
        assert env.execute({"command": "echo out; echo err >&2; exit 3"}) == {"output": "out\nerr\n", "returncode": 3, "exception_info": ""}
        assert env.execute({"command": "false"})["returncode"] == 1
        assert env.execute({"command": 'echo "unbalanced'})["returncode"] == 2
        killed = env.execute({"command": "kill -9 $BASHPID"})
        assert killed["returncode"] == 137 and killed["output"] == ""
        shell_pid = env.swe_env.sandbox.shell.pid
        assert env.execute({"command": "echo $$"})["output"].strip() == str(shell_pid)  # the same persistent shell
        # A timeout is mini-swe-agent's: returncode -1 and the exception text; the next action runs normally.
        slow = env.execute({"command": "echo started; sleep 30"}, timeout=1)
        assert slow["returncode"] == -1 and slow["extra"]["exception_type"] == "TimeoutExpired"
        assert "timed out after 1 seconds" in slow["exception_info"] and slow["output"].startswith("started")
        assert "cd --" not in slow["output"]  # nothing of the wrapper shows
        assert env.execute({"command": "echo fine"})["output"] == "fine\n"
        # Exact output, Unicode and a missing final newline included (a submission must arrive byte for byte).
        assert env.execute({"command": "printf 'caf\\xc3\\xa9\\n\\ttab\\nno newline'"})["output"] == "café\n\ttab\nno newline"
        variables = env.get_template_vars()
        assert variables["system"] == "Linux" and variables["machine"] and variables["cwd"] == "/testbed"
        assert variables["task_id"] == task.id and variables["timeout"] == 30
        steps = env.swe_env.get_trajectory().steps
        assert [s.action["tool"] for s in steps] == ["bash"] * len(steps)  # every action recorded by SWEEnv


@pytest.mark.parametrize("case", ["unapplied_patch", "empty_patch_mode", "marker_only_fixed", "marker_only_nothing"])
def test_what_is_graded_is_what_was_submitted(task, image, case):
    """The patch text when one is submitted (whatever the tree holds), the tree when the text is no diff."""
    if case == "unapplied_patch":  # the fix only in a file, the tree untouched: the submitted patch resolves
        commands, config = (
            [
                f"cat > /tmp/fix.diff <<'SWE_ENV_EOF'\n{task.gold_patch}SWE_ENV_EOF",
                "git status --porcelain | wc -l",
                "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT && cat /tmp/fix.diff",
            ],
            {},
        )
        expected = (1.0, "patch")
    elif case == "empty_patch_mode":  # the tree fixed, nothing submitted, submission: patch -> no change graded
        commands, config = [apply_gold(task), "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"], {"submission": "patch"}
        expected = (0.0, "patch")
    elif case == "marker_only_fixed":  # mini.yaml's bare marker, auto: the working tree is graded
        commands, config = [apply_gold(task), "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"], {}
        expected = (1.0, "tree")
    else:  # nothing done, nothing submitted
        commands, config = ["echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"], {}
        expected = (0.0, "tree")
    with environment(task, **config) as env:
        info = DefaultAgent(model(commands), env, **SWEBENCH["agent"]).run(task.problem_statement)
    assert info["exit_status"] == "Submitted"
    assert (info["reward"], info["graded"]) == expected
    if case == "unapplied_patch":
        assert info["submission"] == task.gold_patch
    if case in ("empty_patch_mode", "marker_only_nothing"):
        assert info["submission"] == "" and info["report"]["patch_is_empty"]


def test_a_failing_submit_command_does_not_submit(task, image):
    """swebench.yaml: "If the command fails (nonzero exit status), it will not submit"."""
    commands = [SUBMIT, apply_gold(task), f"git diff > patch.txt", SUBMIT]  # the first cat fails: no patch.txt
    with environment(task) as env:
        agent = DefaultAgent(model(commands), env, **SWEBENCH["agent"])
        info = agent.run(task.problem_statement)
    assert info["exit_status"] == "Submitted" and info["reward"] == 1.0
    assert agent.n_calls == 4


def test_the_envs_step_budget_ends_the_agent_with_a_graded_tree(task, image):
    commands = [apply_gold(task), "echo one", "echo two", "echo never"]
    with environment(task, env_options={"max_steps": 3}) as env:
        info = DefaultAgent(model(commands), env, **SWEBENCH["agent"]).run(task.problem_statement)
    assert info["exit_status"] == "LimitsExceeded" and info["termination"] == "max_steps"
    assert info["reward"] == 1.0 and diffs.touched_paths(info["submission"]) == diffs.touched_paths(task.gold_patch)


def _evaluate(preds, run_id: str, reports) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "swe_env.cli",
            "evaluate",
            "--dataset",
            str(TASKS_DIR),
            "--predictions",
            str(preds),
            "--run-id",
            run_id,
            "--max-workers",
            "3",
            "--report-dir",
            str(reports),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((reports / f"deterministic.{run_id}.json").read_text())


def test_batch_of_every_task_writes_preds_json_that_evaluate_grades_the_same(tasks, tmp_path, docker_client):
    ids = sorted(t.id for t in tasks)
    out = tmp_path / "gold"
    results = run_batch(TASKS_DIR, SWEBENCH, out, model_factory=lambda task: model(gold_commands(task)), workers=3)
    assert sorted(results) == ids
    assert all(r["exit_status"] == "Submitted" and r["reward"] == 1.0 for r in results.values()), results
    preds = json.loads((out / "preds.json").read_text())
    assert sorted(preds) == ids
    for task in tasks:
        entry = preds[task.id]
        assert set(entry) == {"model_name_or_path", "instance_id", "model_patch"}
        assert entry["model_name_or_path"] == "deterministic" and entry["instance_id"] == task.id
        assert diffs.touched_paths(entry["model_patch"]) == diffs.touched_paths(task.gold_patch)
        saved = json.loads((out / task.id / f"{task.id}.traj.json").read_text())
        assert saved["instance_id"] == task.id and saved["info"]["exit_status"] == "Submitted"
        assert saved["info"]["swe_env"]["reward"] == 1.0
    report = _evaluate(out / "preds.json", "msa-gold", tmp_path / "reports")
    assert report["resolved_ids"] == ids and report["error_ids"] == report["unresolved_ids"] == []

    # A re-run skips what preds.json has.
    assert run_batch(TASKS_DIR, SWEBENCH, out, model_factory=lambda task: model([])) == {}

    # Nothing submitted on every task: reward 0 in the env, empty patches in preds.json, none resolved by evaluate.
    empty = tmp_path / "empty"
    results = run_batch(TASKS_DIR, SWEBENCH, empty, workers=3, model_factory=lambda task: model(["echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"]))
    assert sorted(results) == ids and all(r["reward"] == 0.0 for r in results.values())
    assert all(entry["model_patch"] == "" for entry in json.loads((empty / "preds.json").read_text()).values())
    report = _evaluate(empty / "preds.json", "msa-empty", tmp_path / "reports")
    assert report["empty_patch_ids"] == ids and report["resolved_ids"] == []
    left = docker_client.containers.list(all=True, filters={"label": "swe_env.managed=1"})
    assert not [c for c in left if c.labels.get("swe_env.owner", "").endswith(f":{os.getpid()}") and c.status != "removing"]
