"""The openai agent against a local chat-completions server that replays scripted replies.

The model is the only stand-in: the env, its containers and the grading are real.
"""

from __future__ import annotations

import json

import pytest

from swe_env import SWEEnv
from swe_env.agents import make_agent
from swe_env.agents.openai import ModelError
from swe_env.agents.oracle import actions_for_patch
from swe_env.run.rollout import run_episode

from ..helpers import ScriptedModel


def reply(content=None, tool_calls=None) -> tuple[int, dict]:
    message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return 200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def call(n: int, action: dict) -> dict:
    arguments = {key: value for key, value in action.items() if key != "tool"}
    return {"id": f"c{n}", "type": "function", "function": {"name": action["tool"], "arguments": json.dumps(arguments)}}


@pytest.mark.docker
def test_native_tool_calls_resolve_a_task_with_retries(task, image, monkeypatch):
    monkeypatch.setenv("TEST_MODEL_KEY", "secret-key")
    gold = actions_for_patch(task.gold_patch)
    script = [
        (503, {"error": "warming up"}),
        (429, {"error": "slow down"}),
        reply("Let me look.", [call(0, {"tool": "bash", "command": "seq 1 5000"})]),
    ]
    script += [reply(None, [call(n + 1, action)]) for n, action in enumerate(gold)]
    script += [reply("Done.", [call(99, {"tool": "submit"})])]
    with ScriptedModel(script) as server:
        agent = make_agent(
            "openai", [task], base_url=server.url, model="scripted", api_key_env="TEST_MODEL_KEY", max_observation_tokens=64, backoff_seconds=0.01
        )
        env = SWEEnv(tasks=[task], agent_name="openai")
        try:
            trajectory = run_episode(env, agent, task.id)
        finally:
            env.close()
    assert trajectory.resolved and trajectory.reward == 1.0 and trajectory.model == "scripted"
    assert agent.usage["retries"] == 2 and len(trajectory.steps) == len(gold) + 2
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer secret-key" and first["model"] == "scripted"
    assert {t["function"]["name"] for t in first["tools"]} >= {"bash", "edit", "submit"}
    assert "Call exactly one of these functions" in first["messages"][1]["content"]
    # The observation of `seq 1 5000` went back as a tool message, cut to the per-observation cap.
    answer = server.requests[3]["messages"][-1]
    assert answer["role"] == "tool" and answer["tool_call_id"] == "c0" and "characters cut" in answer["content"]
    assert len(answer["content"]) < 400 and "5000" in answer["content"]
    # The raw model message is in the trajectory; the full observation stays in it too.
    assert trajectory.steps[0].raw["content"] == "Let me look." and trajectory.steps[0].raw["tool_calls"][0]["id"] == "c0"
    assert len(trajectory.steps[0].observation) > 5000 > len(answer["content"]) * 10


@pytest.mark.docker
def test_cwm_text_format_and_turn_budget(task, image):
    script = [reply("First, the tree.\n<tool: bash>\nls\n</tool>"), reply("no tool call here"), reply("<tool: bash>\necho never\n</tool>")]
    with ScriptedModel(script) as server:
        agent = make_agent("openai", [task], base_url=server.url, model="cwm", tool_format="cwm", max_turns=2)
        env = SWEEnv(tasks=[task])
        try:
            trajectory = run_episode(env, agent, task.id)
        finally:
            env.close()
    assert len(server.requests) == 2 and "tools" not in server.requests[0]
    assert "<tool: bash>" in server.requests[0]["messages"][1]["content"]  # the env asked for CWM's format
    assert [s.raw for s in trajectory.steps[:2]] == ["First, the tree.\n<tool: bash>\nls\n</tool>", "no tool call here"]
    assert trajectory.steps[1].error and trajectory.steps[2].action == {"tool": "submit"}  # turns ran out
    assert server.requests[1]["messages"][-1]["role"] == "user"  # the observation of the text turn
    assert trajectory.termination == "submitted" and not trajectory.resolved


def test_client_errors_are_not_retried_and_options_are_checked():
    with ScriptedModel([(400, {"error": "bad request"}), reply("never")]) as server:
        agent = make_agent("openai", [], base_url=server.url, model="m", backoff_seconds=0)
        agent.reset("task", {"tools": ["bash", "submit"]})
        with pytest.raises(ModelError, match="HTTP 400"):
            agent.act("task")
        assert len(server.requests) == 1
    with pytest.raises(ValueError, match="tool_format"):
        make_agent("openai", [], model="m", tool_format="xml")
    with pytest.raises(ValueError, match="no attribute"):
        make_agent("swe_env.agents:Nope", [])
