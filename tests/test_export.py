"""Trajectory exports: OpenAI chat messages, CWM text, filters, near-duplicates, the CLI."""

from __future__ import annotations

import json

import pytest

from swe_env import actions, tools
from swe_env.trajectory import (Step, Trajectory, TrajectoryWriter, cwm_call, drop_near_duplicates, export,
                                finished_keys, to_chat, to_cwm)

from .test_cli import swe_env

ROLES = {"system", "user", "assistant", "tool"}


def check_openai_chat(record: dict) -> None:
    """The OpenAI chat-completions message schema, as fine-tuning files use it."""
    assert set(record) >= {"messages"}
    messages = record["messages"]
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    open_calls: set[str] = set()
    for message in messages:
        assert message["role"] in ROLES, message
        if message["role"] == "tool":
            assert isinstance(message["content"], str) and message["tool_call_id"] in open_calls
            open_calls.discard(message["tool_call_id"])
            continue
        assert not open_calls, f"tool calls left unanswered before {message['role']}"
        if message["role"] == "assistant" and "tool_calls" in message:
            assert message["content"] is None or isinstance(message["content"], str)
            for call in message["tool_calls"]:
                assert call["type"] == "function" and isinstance(call["id"], str)
                assert isinstance(call["function"]["name"], str)
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                open_calls.add(call["id"])
        else:
            assert isinstance(message["content"], str) and message["content"]
    for tool in record.get("tools", []):
        assert tool["type"] == "function" and tool["function"]["parameters"]["type"] == "object"


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
    steps = [Step(index=1, raw="I will look.\n<tool: bash>\nls\n</tool>", action={"tool": "bash", "command": "ls"},
                  observation="a\nb\n[exit code 0]", exit_code=0),
             Step(index=2, raw="no idea", action=None, observation="Error: no action found", error=True)]
    steps += [Step(index=3 + n, raw={"role": "assistant", "content": "run", "tool_calls": []},
                   action={"tool": "bash", "command": c}, observation=f"out {c}") for n, c in enumerate(commands)]
    steps.append(Step(index=len(steps) + 1, raw={"tool": "submit"}, action={"tool": "submit"},
                      observation="Submitted. The task is resolved (reward 1)."))
    return Trajectory(task_id=task_id, episode_id=f"{task_id}-{index}-{len(commands)}", episode_index=index,
                      agent="oracle", problem_statement="Fix the bug.", steps=steps, resolved=resolved,
                      reward=1.0 if resolved else 0.0, termination=termination,
                      config={"tools": ["bash", "edit", "view"]})


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
    assert "<tool: bash>" in record["messages"][1]["content"]  # instructions in CWM's format
    assert record["text"].startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")
    assert record["text"].count("<|eot_id|>") == len(record["messages"])


def test_near_duplicates_are_dropped_per_task():
    runs = [trajectory("t1", commands=("ls", "pytest")), trajectory("t1", commands=("ls", "pytest")),
            trajectory("t1", commands=("cat x", "make", "pytest -x")), trajectory("t2", commands=("ls", "pytest"))]
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
