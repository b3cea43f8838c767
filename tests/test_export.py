"""Trajectory exports: OpenAI chat messages, CWM text, filters, near-duplicates, the CLI."""

from __future__ import annotations

import json
import re

import pytest

from swe_env import tools
from swe_env.data.trajectory import Step, Trajectory, TrajectoryWriter, finished_keys
from swe_env.exports import CWM_REASONING_PROMPT, SYSTEM_PROMPT, cwm_call, drop_near_duplicates, export, to_chat, to_cwm
from swe_env.tools import actions

from .helpers import check_openai_chat
from .helpers import run_cli as swe_env

ACTIONS = [
    {"tool": "bash", "command": "ls -la\npwd"},
    {"tool": "edit", "path": "pkg/m.py", "old": "a = 1\n", "new": "a = 2\nb = 3"},
    {"tool": "create", "path": "new.py", "content": "print('hi')\n"},
    {"tool": "view", "path": "pkg/m.py", "range": [1, 40]},
    {"tool": "view", "path": "pkg"},
    {"tool": "undo_edit", "path": "pkg/m.py"},
    {"tool": "submit"},
]


@pytest.mark.parametrize("action", ACTIONS, ids=lambda a: a["tool"])
def test_cwm_call_reads_back_as_the_same_action(action):
    assert actions.parse(cwm_call(action)).to_dict() == action


def trajectory(task_id="t1", resolved=True, commands=("ls", "pytest"), index=0, termination="submitted") -> Trajectory:
    steps = [
        Step(
            index=1,
            raw="I will look.\n<tool: bash>\nls\n</tool>",
            action={"tool": "bash", "command": "ls"},
            observation="a\nb\n[exit code 0]",
            exit_code=0,
        ),
        Step(index=2, raw="no idea", action=None, observation="Error: no action found", error=True),
    ]
    steps += [
        Step(
            index=3 + n, raw={"role": "assistant", "content": "run", "tool_calls": []}, action={"tool": "bash", "command": c}, observation=f"out {c}"
        )
        for n, c in enumerate(commands)
    ]
    steps.append(
        Step(index=len(steps) + 1, raw={"tool": "submit"}, action={"tool": "submit"}, observation="Submitted. The task is resolved (reward 1).")
    )
    return Trajectory(
        task_id=task_id,
        episode_id=f"{task_id}-{index}-{len(commands)}",
        episode_index=index,
        agent="oracle",
        problem_statement="Fix the bug.",
        steps=steps,
        resolved=resolved,
        reward=1.0 if resolved else 0.0,
        termination=termination,
        config={"tools": ["bash", "edit", "view"]},
    )


def test_chat_export_follows_the_openai_schema():
    record = to_chat(trajectory())
    check_openai_chat(record)
    messages = record["messages"]
    assert "Fix the bug." in messages[1]["content"]
    assert messages[2]["content"] == "I will look." and messages[2]["tool_calls"][0]["function"]["name"] == "bash"
    assert messages[4] == {"role": "assistant", "content": "no idea"} and messages[5]["role"] == "user"
    assert messages[-1]["tool_calls"][0]["function"]["name"] == "submit"  # the grader's verdict is left out
    assert [t["function"]["name"] for t in record["tools"]] == ["bash", "edit", "view", "submit"]
    assert record["metadata"]["resolved"] is True


def test_cwm_export_keeps_model_text_and_renders_other_actions():
    record = to_cwm(trajectory())
    assistant = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    assert assistant[0] == "I will look.\n<tool: bash>\nls\n</tool>"
    assert assistant[2] == "run\n\n<tool: bash>\nls\n</tool>" and assistant[-1] == "<tool: submit>\n</tool>"
    system = record["messages"][0]["content"]
    assert system.startswith(SYSTEM_PROMPT) and "<tool: bash>\n[command(s)]\n</tool>\nRuns [command(s)]" in system
    assert [m["role"] for m in record["messages"][2:6]] == ["assistant", "tool", "assistant", "user"]
    assert record["messages"][3]["tool"] == "bash" and "<|start_header_id|>tool: bash<|end_header_id|>" in record["text"]
    assert record["text"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert record["text"].count("<|eot_id|>") == len(record["messages"])


GOLDEN_STEPS = [
    Step(index=1, raw="Let me look.\n<tool: bash>\nls\n</tool>\n", action={"tool": "bash", "command": "ls"}, observation="a.py\n[exit code 0]\n"),
    Step(index=2, raw="hmm", action=None, observation="Error: no action found", error=True),
    Step(
        index=3,
        raw={"role": "assistant", "content": "Fix it.", "tool_calls": []},
        action={"tool": "edit", "path": "a.py", "old": "x = 1", "new": "x = 2"},
        observation="Edited a.py.",
    ),
    Step(index=4, raw={"tool": "submit"}, action={"tool": "submit"}, observation="Submitted. The task is resolved."),
]
GOLDEN_TRAJECTORY = Trajectory(
    task_id="t",
    episode_id="t-0",
    agent="openai",
    problem_statement="Fix x.\n",
    steps=GOLDEN_STEPS,
    config={"tools": ["bash", "edit"], "workdir": "/repo"},
)
GOLDEN_TOOLS = (
    "You have access to the following tools:\n"
    "\n"
    "<tool: bash>\n"
    "[command(s)]\n"
    "</tool>\n"
    "Runs [command(s)] in a persistent bash shell in the repository: the working directory and exported "
    "variables are kept between calls. [command(s)] can be any non-interactive bash command(s), single or "
    "multi-line.\n"
    "\n"
    "<tool: edit>\n"
    "[path]\n"
    "<<<<<<< SEARCH\n"
    "[search_lines]\n"
    "=======\n"
    "[replacement_lines]\n"
    ">>>>>>> REPLACE\n"
    "</tool>\n"
    "Replaces [search_lines] in the file at [path] with [replacement_lines]; [search_lines] must match the "
    "file's text exactly, indentation included, and occur in it exactly once.\n"
    "\n"
    "<tool: submit>\n"
    "</tool>\n"
    "Finishes the episode: the repository as it is now is graded by hidden tests. Takes no arguments."
)
GOLDEN_SYSTEM = (
    "You are a software engineer working in a repository inside a sandbox. Fix the issue described by the user: "
    "explore the code, reproduce the problem, edit the files, run the tests, and submit when you are done. "
    "Make exactly one tool call per turn.\n\n" + GOLDEN_TOOLS
)
GOLDEN_REASONING = (
    "You are a helpful AI assistant. You always reason before responding, using the following format:\n"
    "\n"
    "<think>\n"
    "your internal reasoning\n"
    "</think>\n"
    "your external response\n\n"
)


def golden_text(system: str, turns: list[str]) -> str:
    return (
        "<|begin_of_text|>"
        f"<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nFix x.\n\nThe repository is checked out at /repo.<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{turns[0]}<|eot_id|>"
        "<|start_header_id|>tool: bash<|end_header_id|>\n\na.py\n[exit code 0]\n<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{turns[1]}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nError: no action found<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{turns[2]}<|eot_id|>"
        "<|start_header_id|>tool: edit<|end_header_id|>\n\nEdited a.py.<|eot_id|>"
        f"<|start_header_id|>assistant<|end_header_id|>\n\n{turns[3]}<|eot_id|>"
    )


def test_cwm_export_golden():
    record = to_cwm(GOLDEN_TRAJECTORY)
    assert record["text"] == golden_text(
        GOLDEN_SYSTEM,
        [
            "Let me look.\n<tool: bash>\nls\n</tool>",
            "hmm",
            "Fix it.\n\n<tool: edit>\na.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n</tool>",
            "<tool: submit>\n</tool>",
        ],
    )
    assert record["messages"][3] == {"role": "tool", "tool": "bash", "content": "a.py\n[exit code 0]\n"}
    assert record["metadata"]["reasoning"] is False


def test_cwm_export_golden_in_reasoning_mode():
    record = to_cwm(GOLDEN_TRAJECTORY, reasoning=True)
    assert record["text"] == golden_text(
        GOLDEN_REASONING + GOLDEN_SYSTEM,
        [
            "<think>\nLet me look.\n</think>\n<tool: bash>\nls\n</tool>",
            "<think>\n\n</think>\nhmm",
            "<think>\nFix it.\n</think>\n<tool: edit>\na.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n</tool>",
            "<think>\n\n</think>\n<tool: submit>\n</tool>",
        ],
    )
    # a model that wrote its own reasoning keeps it: after the <think>\n prompt, or with the tag itself
    steps = [
        Step(
            index=1,
            raw="I look with <tool: bash> first.\n</think>\n<tool: bash>\nls\n</tool>",
            action={"tool": "bash", "command": "ls"},
            observation="a.py",
        ),
        Step(index=2, raw="<think>\nnow\n</think>\n<tool: bash>\npwd\n</tool>", action={"tool": "bash", "command": "pwd"}, observation="/repo"),
    ]
    own = to_cwm(GOLDEN_TRAJECTORY.model_copy(update={"steps": steps}), reasoning=True)
    assert [m["content"] for m in own["messages"] if m["role"] == "assistant"] == [
        "<think>\nI look with <tool: bash> first.\n</think>\n<tool: bash>\nls\n</tool>",
        "<think>\nnow\n</think>\n<tool: bash>\npwd\n</tool>",
    ]
    assert CWM_REASONING_PROMPT + "\n\n" + SYSTEM_PROMPT == own["messages"][0]["content"][: len(CWM_REASONING_PROMPT + SYSTEM_PROMPT) + 2]


ROUND_TRIP_ACTIONS = [
    *ACTIONS,
    {"tool": "bash", "command": "printf 'a\\n'\n"},
    {"tool": "bash", "command": "\nls"},
    {"tool": "edit", "path": "a.py", "old": "", "new": "x\n\n"},
    {"tool": "edit", "path": "a.py", "old": "    if x:\n        y()\n", "new": ""},
    {"tool": "create", "path": "empty.py", "content": ""},
    {"tool": "create", "path": "b.py", "content": "\n\nz = '<think>'\n"},
    {"tool": "view", "path": "a.py", "range": [5, -1]},
    {"tool": "trace", "command": "python -m pytest tests/test_a.py::test_b"},
]


@pytest.mark.parametrize("reasoning", [False, True], ids=["plain", "reasoning"])
def test_every_exported_tool_call_parses_back(reasoning):
    names = ["bash", "edit", "undo_edit", "view", "create", "trace", "submit"]
    words = ["Step.", "I call <tool: x>?", "no </think> here"]  # the last two are left out: they hold tags
    steps = [
        Step(index=n, raw=action if n % 2 else {"role": "assistant", "content": words[n % 3]}, action=action, observation=f"out {n}")
        for n, action in enumerate(ROUND_TRIP_ACTIONS, start=1)
    ]
    steps.append(
        Step(
            index=len(steps) + 1,
            raw="Looking.\n<tool: view>\na.py\n1 2\n</tool>",
            action={"tool": "view", "path": "a.py", "range": [1, 2]},
            observation="1 a",
        )
    )
    record = to_cwm(Trajectory(task_id="t", episode_id="e", steps=steps, config={"tools": names}), reasoning=reasoning)
    turns = [m["content"] for m in record["messages"] if m["role"] == "assistant"]
    assert len(turns) == len(steps)
    for step, turn in zip(steps, turns, strict=True):
        assert actions.parse(turn, allowed=names).to_dict() == step.action, turn
    assert any(turn.startswith("Step.") or turn.startswith("<think>\nStep.") for turn in turns)
    # the blocks the system prompt teaches read as calls of their tools (placeholders as values)
    system = record["messages"][0]["content"]
    blocks = re.findall(r"<tool: \w+>\n.*?</tool>", system, re.DOTALL)
    assert [b.split(">")[0][7:] for b in blocks] == names
    for block in blocks:
        call = actions.parse(block.replace("[first] [last]", "1 -1"), allowed=names).to_dict()
        assert call["tool"] in names and all(v.startswith("[") for v in call.values() if isinstance(v, str) and v != call["tool"])


def test_near_duplicates_are_dropped_per_task():
    runs = [
        trajectory("t1", commands=("ls", "pytest")),
        trajectory("t1", commands=("ls", "pytest")),
        trajectory("t1", commands=("cat x", "make", "pytest -x")),
        trajectory("t2", commands=("ls", "pytest")),
    ]
    kept = list(drop_near_duplicates(runs, threshold=0.9))
    assert [(t.task_id, len(t.steps)) for t in kept] == [("t1", 5), ("t1", 6), ("t2", 5)]


def test_export_filters_and_last_record_of_an_episode_wins(tmp_path):
    source = tmp_path / "t.jsonl"
    writer = TrajectoryWriter(source)
    writer.write(trajectory("t1", index=0, termination="infra_error", resolved=False))
    writer.write(trajectory("t1", index=0))  # the resumed re-run of the same episode
    writer.write(trajectory("t2", index=0, resolved=False))
    writer.write(Trajectory(task_id="t3", episode_id="x", episode_index=0, termination="infra_error"))
    assert finished_keys(source) == {("oracle", None, "t1", 0), ("oracle", None, "t2", 0)}
    out = tmp_path / "chat.jsonl"
    assert export([source], out, "chat") == (3, 2)
    assert export([source], out, "chat", resolved_only=True) == (3, 1)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["metadata"]["task_id"] for r in records] == ["t1"]
    check_openai_chat(records[0])
    assert export([source], out, "cwm", min_reward=0.5) == (3, 1)
    assert export([source], out, "cwm", min_reward=0.5, reasoning=True) == (3, 1)
    record = json.loads(out.read_text())
    assert record["metadata"]["reasoning"] and record["messages"][0]["content"].startswith(CWM_REASONING_PROMPT)
    with pytest.raises(ValueError, match="cwm export option"):
        export([source], out, "chat", reasoning=True)


def test_export_cli_and_its_one_line_errors(tmp_path):
    source = tmp_path / "t.jsonl"
    TrajectoryWriter(source).write(trajectory())
    out = tmp_path / "out" / "chat.jsonl"
    result = swe_env("export", "--format", "chat", "--out", str(out), str(source))
    assert result.returncode == 0, result.stderr
    assert "1 of 1 episode(s) written" in result.stdout
    check_openai_chat(json.loads(out.read_text()))
    for args, needle in ((["--format", "xml"], "chat or cwm"), ([], "no such trajectory file")):
        result = swe_env("export", *args, "--out", str(out), str(source if args else tmp_path / "missing.jsonl"))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
        assert "Traceback" not in result.stderr


def test_tool_schemas_match_the_exported_tools():
    assert to_chat(trajectory())["tools"] == tools.schemas(["bash", "edit", "view", "submit"])


@pytest.mark.docker
def test_exports_say_where_the_repository_was(task, docker_client, tmp_path):
    """A task whose repository lives at another workdir: the trajectory records it, and both exports'
    prompts say it (the chat user turn is exactly what the agent was shown), never /testbed."""
    from swe_env import SWEEnv
    from swe_env.agents import OracleAgent

    elsewhere = task.model_copy(
        update={"id": f"{task.id}-elsewhere", "environment": task.environment.model_copy(update={"workdir": "/work/project"})}
    )
    elsewhere._source = task.source
    out = tmp_path / "t.jsonl"
    env = SWEEnv(tasks=[elsewhere], agent_name="oracle", trajectory_path=str(out))
    try:
        observation, info = env.reset(options={"task_id": elsewhere.id, "action_format": "openai"})
        assert "/work/project" in observation and "/testbed" not in observation
        agent = OracleAgent([elsewhere])
        agent.reset(observation, info)
        while True:
            _, reward, terminated, truncated, _ = env.step(agent.act(observation))
            if terminated or truncated:
                break
        assert terminated and reward == 1.0
        assert env.get_trajectory().workdir == "/work/project"
    finally:
        env.close()
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["workdir"] == "/work/project"
    chat, cwm = tmp_path / "chat.jsonl", tmp_path / "cwm.jsonl"
    assert export([out], chat, "chat") == (1, 1) and export([out], cwm, "cwm") == (1, 1)
    chat_record, cwm_record = json.loads(chat.read_text()), json.loads(cwm.read_text())
    assert chat_record["messages"][1]["content"] == observation
    assert cwm_record["messages"][1]["content"].endswith("The repository is checked out at /work/project.")
    assert "/testbed" not in chat.read_text() and "/testbed" not in cwm.read_text()


def test_records_without_a_workdir_still_export():
    old = GOLDEN_TRAJECTORY.model_copy(update={"config": {"tools": ["bash", "edit"]}})
    assert old.workdir is None and "checked out at /testbed." in to_cwm(old)["messages"][1]["content"]
    assert "checked out at /repo." in to_cwm(GOLDEN_TRAJECTORY)["messages"][1]["content"]  # config's, as before
    moved = old.model_copy(update={"workdir": "/src/app"})
    assert "/src/app" in to_chat(moved)["messages"][1]["content"] and "/testbed" not in json.dumps(to_chat(moved))
    assert Trajectory.model_validate_json(moved.model_dump_json()).workdir == "/src/app"
