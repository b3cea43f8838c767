"""The env as a service: one episode suite run against SWEEnv and RemoteSWEEnv (HTTP and WebSocket),
then the server's own contract: bad requests, tokens, capacity, idle reaping, vanished clients.

Servers run as `swe-env serve` subprocesses on 127.0.0.1 with their own run id, and every
test that ends a server checks that no container of that run id is left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import httpx
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker
from websockets.sync.client import connect as ws_connect

from swe_env import SWEEnv
from swe_env.agents import OracleAgent
from swe_env.client import RemoteEnvError, RemoteSWEEnv, SessionLost
from swe_env.run.rollout import play, run_episode
from swe_env.server import ServerConfig, ServerConfigError, is_loopback

from ..helpers import ROOT, TASKS_DIR, container_exists, containers_of, start_server, wait_until

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def server(docker_client, image):
    running = start_server("--max-sessions", "8")
    yield running
    running.stop(docker_client)


@pytest.fixture
def short_server(docker_client, image):
    """A server that reaps sessions after 1.5 s idle and holds one session at most."""
    running = start_server("--max-sessions", "1", "--idle-timeout", "1.5")
    yield running
    running.stop(docker_client)


# ---------------------------------------------------------------- one suite, three ways to reach the env


@pytest.fixture(params=["local", "http", "ws"])
def make_env(request, server, tasks):
    made = []

    def make(**options):
        if request.param == "local":
            env = SWEEnv(tasks=tasks, **options)
        else:
            env = RemoteSWEEnv(server.url, token=server.token, transport=request.param, **options)
        made.append(env)
        return env

    make.kind = request.param
    yield make
    for env in made:
        env.close()


def test_episode_tools_bad_actions_submit_and_close(make_env, task, docker_client):
    env = make_env()
    observation, info = env.reset(options={"task_id": task.id})
    assert task.problem_statement.strip()[:40] in observation and "submit" in observation
    assert {"task_id", "image", "container_id", "episode_id", "max_steps", "tools"} <= set(info)
    assert info["task_id"] == task.id and container_exists(docker_client, info["container_id"])
    observation, reward, terminated, truncated, _ = env.step({"tool": "bash", "command": "cd /tmp && export A=1"})
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert "/tmp\n1" in env.step({"tool": "bash", "command": "pwd; echo $A"})[0]
    assert "created" in env.step('{"tool": "create", "path": "notes.txt", "content": "one\\ntwo\\n"}')[0]
    assert "three" in env.step({"tool": "edit", "path": "notes.txt", "old": "two", "new": "three"})[0]
    assert "2\tthree" in env.step({"tool": "view", "path": "notes.txt"})[0]
    observation, _, terminated, truncated, _ = env.step({"tool": "teleport"})
    assert "unknown tool 'teleport'" in observation and not terminated and not truncated
    assert env.step("```bash\necho fenced\n```")[0].startswith("fenced")
    observation, reward, terminated, truncated, info = env.step({"tool": "submit"})
    assert terminated and not truncated and reward == 0.0
    assert info["report"]["task_id"] == task.id and info["report"]["resolved"] is False
    observation, _, terminated, *_ = env.step({"tool": "bash", "command": "ls"})
    assert terminated and "episode is over" in observation
    container_id = env.reset(options={"task_id": task.id})[1]["container_id"]
    env.close()
    assert wait_until(lambda: not container_exists(docker_client, container_id), 30)


def test_oracle_resolves_the_task(make_env, task):
    env = make_env(agent_name="oracle")
    agent = OracleAgent([task])
    observation, info = env.reset(options={"task_id": task.id})
    agent.reset(observation, info)
    for _ in range(50):
        observation, reward, terminated, truncated, info = env.step(agent.act(observation))
        if terminated or truncated:
            break
    assert terminated and reward == 1.0 and info["report"]["resolved"] is True


def test_max_steps_truncates_and_grades(make_env, task):
    env = make_env(max_steps=2)
    env.reset(options={"task_id": task.id})
    assert env.step({"tool": "bash", "command": "true"})[3] is False
    _, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "true"})
    assert truncated and not terminated and reward == 0.0 and info["report"]["status"] == "graded"


def test_seeded_reset_picks_the_same_task_everywhere(make_env, tasks):
    env = make_env()
    expected = tasks[int(seeding.np_random(7)[0].integers(len(tasks)))].id
    assert [env.reset(seed=7)[1]["task_id"] for _ in range(2)] == [expected, expected]


def test_check_env_and_render(make_env, task):
    check_env(make_env(max_steps=5), skip_render_check=True)
    env = make_env(render_mode="ansi")
    env.reset(options={"task_id": task.id})
    env.step({"tool": "bash", "command": "echo rendered"})
    assert env.render().startswith(f"[{task.id} step 1]\nrendered")


def test_callers_mistakes_raise_like_sweenv(make_env, task):
    with pytest.raises(ValueError):
        make_env(max_steps=0)
    env = make_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"tool": "bash", "command": "ls"})
    with pytest.raises(KeyError, match="unknown task_id"):
        env.reset(options={"task_id": "no-such-task"})
    with pytest.raises(ValueError, match="action_format"):
        env.reset(options={"task_id": task.id, "action_format": "xml"})
    assert env.reset(options={"task_id": task.id})[1]["task_id"] == task.id


def test_dead_container_truncates_with_error(make_env, task, docker_client):
    env = make_env()
    _, info = env.reset(options={"task_id": task.id})
    docker_client.containers.get(info["container_id"]).remove(force=True)
    observation, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "ls"})
    assert truncated and not terminated and reward == 0.0 and info["error"]
    env.reset(options={"task_id": task.id})
    assert env.step({"tool": "bash", "command": "echo back"})[0].startswith("back")


def test_a_reset_naming_an_unknown_task_keeps_the_running_episode(make_env, task, docker_client):
    env = make_env()
    _, info = env.reset(options={"task_id": task.id})
    env.step({"tool": "bash", "command": "echo kept > kept.txt"})
    with pytest.raises(KeyError, match="unknown task_id 'no-such-task'"):
        env.reset(options={"task_id": "no-such-task"})
    # the episode goes on in the same container, files and all
    assert container_exists(docker_client, info["container_id"])
    observation, reward, terminated, truncated, _ = env.step({"tool": "bash", "command": "cat kept.txt"})
    assert observation.startswith("kept\n") and (reward, terminated, truncated) == (0.0, False, False)
    record = env.get_trajectory()
    assert record.episode_id == info["episode_id"] and len(record.steps) == 2 and record.termination is None
    if make_env.kind != "local":
        state = env.state()
        assert state["done"] is False and state["container_id"] == info["container_id"] and state["step_count"] == 2
    _, reward, terminated, _, _ = env.step({"tool": "submit"})
    assert terminated and env.get_trajectory().termination == "submitted"


class ModelOracle(OracleAgent):
    model = "oracle-model-1"


def test_run_episode_through_gymnasium_wrappers(make_env, task, docker_client):
    env = make_env(agent_name="oracle")
    wrapped = OrderEnforcing(PassiveEnvChecker(env))  # what gymnasium.make puts around an env
    trajectory = run_episode(wrapped, ModelOracle([task]), task.id, episode_index=3)
    assert (trajectory.task_id, trajectory.agent, trajectory.model, trajectory.episode_index) == (task.id, "oracle", "oracle-model-1", 3)
    assert trajectory.resolved and trajectory.reward == 1.0 and trajectory.termination == "submitted"
    assert trajectory.steps[-1].action == {"tool": "submit"} and "+++ b/" in trajectory.diff
    assert trajectory.workdir == task.environment.workdir
    assert all(step.agent_seconds is not None for step in trajectory.steps)  # note_agent_seconds reached the env
    # the env's own record has the index and model too (they went in with the reset)
    assert wrapped.get_wrapper_attr("get_trajectory")().episode_index == 3
    assert wrapped.unwrapped.get_trajectory().model == "oracle-model-1"


# ---------------------------------------------------------------- the server's own contract


def test_settings_that_would_expose_the_engine_are_refused():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    with pytest.raises(ServerConfigError, match="needs a bearer token"):
        ServerConfig(host="0.0.0.0").check()
    ServerConfig(host="0.0.0.0", token="long-enough-token").check()
    with pytest.raises(ServerConfigError, match="output_limit 2000000 is over max_output_limit 1000000"):
        ServerConfig(env_options={"output_limit": 2_000_000}).check()
    ServerConfig(env_options={"output_limit": 2_000_000}, max_output_limit=2_000_000).check()
    # Every option that sizes the server's waits or memory has its most (CLIENT_BOUNDS), at start-up too.
    for option, value, words in (
        ("command_timeout", 86_400, "command_timeout 86400 is over max_command_timeout 3600 (--max-command-timeout)"),
        ("episode_timeout", 1e9, "episode_timeout 1000000000 is over max_episode_timeout 14400"),
        ("max_steps", 10**6, "max_steps 1000000 is over max_episode_steps 1000"),
    ):
        with pytest.raises(ServerConfigError, match=re.escape(words)):
            ServerConfig(env_options={option: value}).check()
    ServerConfig(env_options={"command_timeout": 86_400}, max_command_timeout=86_400).check()
    result = subprocess.run(
        [sys.executable, "-m", "swe_env.cli", "serve", "--host", "0.0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SWE_ENV_TOKEN": ""},
    )
    assert result.returncode == 2 and "needs a bearer token" in result.stderr and "Traceback" not in result.stderr


def test_bad_requests_are_4xx_with_a_message_and_leave_nothing(server, task, docker_client):
    before = len(containers_of(docker_client, server.run_id))
    h = {**server.headers(), "Content-Type": "application/json"}
    cases = [
        ("POST", "/sessions", "not json", 422, "JSON"),
        ("POST", "/sessions", "[1, 2]", 422, "JSON object"),
        ("POST", "/sessions", json.dumps({"task_id": "no-such-task"}), 404, "unknown task_id"),
        ("POST", "/sessions", json.dumps({"bogus": 1}), 422, "bogus"),
        ("POST", "/sessions", json.dumps({"seed": -1}), 422, "seed"),
        ("POST", "/sessions", json.dumps({"config": {"max_steps": 0}}), 422, "max_steps"),
        ("POST", "/sessions", json.dumps({"config": {"tools": ["rm-rf"]}}), 422, "unknown tool"),
        ("POST", "/sessions", json.dumps({"config": {"trajectory_path": "/etc/passwd"}}), 422, "server setting"),
        ("POST", "/sessions", json.dumps({"config": {"registry": "10.0.0.1:5000"}}), 422, "config.registry is a server setting"),
        ("POST", "/sessions", json.dumps({"config": {"max_disk": "1G"}}), 422, "config.max_disk is a server setting"),
        (
            "POST",
            "/sessions",
            json.dumps({"config": {"output_limit": 400_000_000}}),
            422,
            "config.output_limit 400000000 is over this server's most, 1000000",
        ),
        (
            "POST",
            "/sessions",
            json.dumps({"config": {"command_timeout": 1e12}}),
            422,
            "config.command_timeout 1000000000000 is over this server's most, 3600 (swe-env serve --max-command-timeout)",
        ),
        (
            "POST",
            "/reset",
            json.dumps({"task_id": task.id, "config": {"episode_timeout": 86_400.5}}),
            422,
            "config.episode_timeout 86400.5 is over this server's most, 14400 (swe-env serve --max-episode-timeout)",
        ),
        (
            "POST",
            "/sessions",
            json.dumps({"config": {"max_steps": 10**9}}),
            422,
            "config.max_steps 1000000000 is over this server's most, 1000 (swe-env serve --max-episode-steps)",
        ),
        ("POST", "/sessions", json.dumps({"task_id": task.id, "config": {"warm_pool": 4}}), 422, "not offered"),
        ("POST", "/reset", json.dumps({"task_id": task.id, "config": {"warm_pool": 1}}), 422, "not offered"),
        ("POST", "/sessions", json.dumps({"task_id": task.id, "episode_index": -1}), 422, "episode_index"),
        ("GET", "/sessions/nope/trajectory", None, 404, "unknown session"),
        ("POST", "/sessions", json.dumps({"task_id": task.id, "action_format": "xml"}), 422, "action_format"),
        ("POST", "/sessions/nope/step", json.dumps({"action": "ls"}), 404, "unknown session"),
        ("POST", "/sessions/nope/reset", "{}", 404, "unknown session"),
        ("DELETE", "/sessions/nope", None, 404, "unknown session"),
        ("POST", "/step", json.dumps({"action": {"tool": "bash", "command": "ls"}}), 409, "POST /reset first"),
        ("POST", "/step", json.dumps({"session_id": "nope", "action": "ls"}), 404, "unknown session"),
    ]
    with httpx.Client(base_url=server.url, headers=h, timeout=120) as client:
        for method, path, body, status, words in cases:
            response = client.request(method, path, content=body)
            assert response.status_code == status, (method, path, body, response.text)
            assert words in response.json()["detail"], (path, body, response.text)
        # a step without an action, on a live session, is refused; the session goes on
        created = client.post("/sessions", json={"task_id": task.id}).json()
        response = client.post(f"/sessions/{created['session_id']}/step", json={"command": "ls"})
        assert response.status_code == 422 and "action" in response.json()["detail"]
        assert client.post(f"/sessions/{created['session_id']}/step", json={"action": "echo ok"}).status_code == 200
        assert client.delete(f"/sessions/{created['session_id']}").json()["closed"] is True
    assert wait_until(lambda: len(containers_of(docker_client, server.run_id)) == before, 30)


def test_missing_or_wrong_token_is_refused(server, task, docker_client):
    before = len(containers_of(docker_client, server.run_id))
    assert httpx.get(f"{server.url}/health").json() == {"status": "healthy"}  # open, says nothing else
    missing = httpx.post(f"{server.url}/sessions", json={"task_id": task.id})
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["detail"]
    wrong = httpx.get(f"{server.url}/tasks", headers=server.headers("wrong-token"))
    assert wrong.status_code == 403 and "wrong bearer token" in wrong.json()["detail"]
    for transport in ("http", "ws"):
        for token in (None, "wrong-token"):
            env = RemoteSWEEnv(server.url, token=token, transport=transport)
            with pytest.raises(PermissionError, match="bearer token"):
                env.reset(options={"task_id": task.id})
            env.close()
    assert len(containers_of(docker_client, server.run_id)) == before


def test_openenv_http_routes(server, task, docker_client):
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=300) as client:
        schema = client.get("/schema").json()
        assert set(schema) == {"action", "observation", "state"}
        assert "bash" in json.dumps(schema["action"]) and "text" in schema["observation"]["properties"]
        assert client.get("/metadata").json()["name"] == "swe_env"
        assert task.id in [t["id"] for t in client.get("/tasks").json()]
        first = client.post("/reset", json={"seed": 3, "task_id": task.id, "episode_id": "ignored"}).json()
        assert first["reward"] is None and first["done"] is False and "submit" in first["observation"]["text"]
        session_id = first["observation"]["session_id"]
        container_id = first["observation"]["info"]["container_id"]
        step = client.post("/step", json={"session_id": session_id, "timeout_s": 30, "action": {"tool": "bash", "command": "echo openenv"}}).json()
        assert step["observation"]["text"].startswith("openenv") and step["done"] is False and step["reward"] == 0.0
        state = client.get("/state", params={"session_id": session_id}).json()
        assert state["step_count"] == 1 and state["episode_id"] == first["observation"]["info"]["episode_id"]
        done = client.post("/step", json={"session_id": session_id, "action": {"tool": "submit"}}).json()
        assert done["done"] is True and done["observation"]["terminated"] is True
        again = client.post("/reset", json={"session_id": session_id, "task_id": task.id}).json()
        assert again["observation"]["session_id"] == session_id and client.get("/state", params={"session_id": session_id}).json()["step_count"] == 0
        assert client.delete(f"/sessions/{session_id}").status_code == 200
    assert wait_until(lambda: not container_exists(docker_client, container_id), 30)


def test_openenv_websocket_messages(server, task, docker_client):
    url = server.url.replace("http://", "ws://") + "/ws"
    with ws_connect(url, additional_headers=server.headers(), max_size=None) as ws:

        def send(message):
            ws.send(message if isinstance(message, str) else json.dumps(message))
            return json.loads(ws.recv(timeout=300))

        assert send("{not json")["data"]["code"] == "INVALID_JSON"
        assert send({"type": "step", "data": {"tool": "bash", "command": "ls"}})["data"]["code"] == "SESSION_ERROR"
        assert send({"type": "teleport"})["data"]["code"] == "UNKNOWN_TYPE"
        bad = send({"type": "reset", "data": {"task_id": task.id, "config": {"max_steps": "many"}}})
        assert bad["type"] == "error" and bad["data"]["code"] == "VALIDATION_ERROR" and "max_steps" in bad["data"]["message"]
        reset = send({"type": "reset", "data": {"task_id": task.id}})
        assert reset["type"] == "observation" and reset["data"]["done"] is False
        container_id = reset["data"]["observation"]["info"]["container_id"]
        # OpenEnv's Action models carry `metadata`; it is not a tool argument
        step = send({"type": "step", "data": {"tool": "bash", "command": "echo ws", "metadata": {}}})
        assert step["data"]["observation"]["text"].startswith("ws")
        state = send({"type": "state"})
        assert state["type"] == "state" and state["data"]["step_count"] == 1 and state["data"]["transport"] == "ws"
        ws.send(json.dumps({"type": "close"}))
    assert wait_until(lambda: not container_exists(docker_client, container_id), 30)


def test_capacity_is_limited(short_server, task):
    first = RemoteSWEEnv(short_server.url, token=short_server.token, transport="http")
    second = RemoteSWEEnv(short_server.url, token=short_server.token, transport="ws")
    try:
        first.reset(options={"task_id": task.id})
        with pytest.raises(RemoteEnvError, match="server is full") as caught:
            second.reset(options={"task_id": task.id})
        assert caught.value.status == 429
    finally:
        first.close()
        second.close()


def test_idle_sessions_are_reaped_and_the_client_recovers(short_server, task, docker_client):
    env = RemoteSWEEnv(short_server.url, token=short_server.token, transport="http")
    try:
        _, info = env.reset(options={"task_id": task.id})
        with httpx.Client(base_url=short_server.url, headers=short_server.headers()) as client:
            assert wait_until(lambda: client.get("/sessions").json()["open"] == 0, 60)
            response = client.get(f"/sessions/{info['session_id']}")
            assert response.status_code == 404 and "without a request" in response.json()["detail"]
        assert wait_until(lambda: not container_exists(docker_client, info["container_id"]), 30)
        observation, reward, terminated, truncated, step_info = env.step({"tool": "bash", "command": "ls"})
        assert truncated and not terminated and "without a request" in step_info["error"]
        assert env.reset(options={"task_id": task.id})[1]["session_id"] != info["session_id"]
        assert env.step({"tool": "bash", "command": "echo again"})[0].startswith("again")
    finally:
        env.close()


CLIENT_SCRIPT = """
import sys
from swe_env.client import RemoteSWEEnv
env = RemoteSWEEnv(sys.argv[1], token=sys.argv[2], transport=sys.argv[3])
observation, info = env.reset(options={"task_id": sys.argv[4]})
env.step({"tool": "bash", "command": "echo mid-episode"})
print(info["container_id"], flush=True)
sys.stdin.read()  # hold the episode open until killed
"""


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_a_client_that_vanishes_mid_episode_loses_its_container(short_server, task, docker_client, transport):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, short_server.url, short_server.token, transport, task.id],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        container_id = client.stdout.readline().strip()
        assert container_id and container_exists(docker_client, container_id)
    finally:
        client.kill()  # no close(), no goodbye: the socket just drops
        client.wait()
    # ws: the server sees the connection drop at once; http: the idle reaper takes it
    assert wait_until(lambda: not container_exists(docker_client, container_id), 60)
    with httpx.Client(base_url=short_server.url, headers=short_server.headers()) as http:
        assert wait_until(lambda: http.get("/sessions").json()["open"] == 0, 30)


def test_shutdown_removes_open_sessions(docker_client, task):
    running = start_server()
    env = RemoteSWEEnv(running.url, token=running.token, transport="http")
    _, info = env.reset(options={"task_id": task.id})
    assert container_exists(docker_client, info["container_id"])
    running.stop(docker_client)  # SIGTERM with a session open; stop() asserts nothing is left
    assert not container_exists(docker_client, info["container_id"])
    env.close()  # the server is gone: close() does not raise


def test_refused_resets_leave_the_session_as_it_was_on_every_route(server, task, docker_client):
    """An unknown task (or a bad config) is refused before the running episode is touched: on
    /sessions, on OpenEnv's /reset (also where a config would replace the session), on /ws."""
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=300) as client:
        created = client.post("/sessions", json={"task_id": task.id}).json()
        session_id, container_id = created["session_id"], created["info"]["container_id"]
        refused = client.post(f"/sessions/{session_id}/reset", json={"task_id": "no-such-task"})
        assert refused.status_code == 404 and refused.json()["error"] == "unknown_task"
        assert "unknown task_id 'no-such-task'" in refused.json()["detail"] and "goes on" in refused.json()["detail"]
        state = client.get(f"/sessions/{session_id}").json()
        assert state["done"] is False and state["container_id"] == container_id
        assert state["episode_id"] == created["info"]["episode_id"] and container_exists(docker_client, container_id)
        still = {"action": {"tool": "bash", "command": "echo still-here"}}
        step = client.post(f"/sessions/{session_id}/step", json=still).json()
        assert step["observation"].startswith("still-here") and step["terminated"] is False
        assert client.delete(f"/sessions/{session_id}").status_code == 200

        first = client.post("/reset", json={"task_id": task.id}).json()["observation"]
        default_container = first["info"]["container_id"]
        refusals = (
            ({"task_id": "no-such-task"}, 404),
            ({"config": {"max_steps": 0}}, 422),
            ({"config": {"warm_pool": 2}}, 422),
            ({"task_id": "no-such-task", "config": {"max_steps": 3}}, 404),
        )
        for body, status in refusals:
            assert client.post("/reset", json=body).status_code == status, body
        state = client.get("/state").json()
        assert (state["session_id"], state["container_id"], state["done"]) == (first["session_id"], default_container, False)
        assert state["episode_id"] == first["info"]["episode_id"] and container_exists(docker_client, default_container)
        step = client.post("/step", json={"action": {"tool": "bash", "command": "echo default"}}).json()
        assert step["observation"]["text"].startswith("default")
        assert client.delete(f"/sessions/{first['session_id']}").status_code == 200

    url = server.url.replace("http://", "ws://") + "/ws"
    with ws_connect(url, additional_headers=server.headers(), max_size=None) as ws:

        def send(message):
            ws.send(json.dumps(message))
            return json.loads(ws.recv(timeout=300))

        reset = send({"type": "reset", "data": {"task_id": task.id, "episode_index": 5, "model": "m"}})
        ws_container = reset["data"]["observation"]["info"]["container_id"]
        refused = send({"type": "reset", "data": {"task_id": "no-such-task"}})
        assert refused["type"] == "error" and refused["data"]["error"] == "unknown_task"
        assert refused["data"]["code"] == "VALIDATION_ERROR" and refused["data"]["status"] == 404
        state = send({"type": "state"})["data"]
        assert state["done"] is False and state["container_id"] == ws_container
        assert send({"type": "step", "data": {"tool": "bash", "command": "echo ws-kept"}})["data"]["observation"]["text"].startswith("ws-kept")
        record = send({"type": "trajectory"})
        assert record["type"] == "trajectory" and record["data"]["episode_id"] == reset["data"]["observation"]["info"]["episode_id"]
        assert (record["data"]["episode_index"], record["data"]["model"], len(record["data"]["steps"])) == (5, "m", 1)
        ws.send(json.dumps({"type": "close"}))
    for gone in (container_id, default_container, ws_container):
        assert wait_until(lambda gone=gone: not container_exists(docker_client, gone), 30)


def test_warm_pool_is_refused_so_a_session_holds_one_container(server, task, docker_client):
    before = len(containers_of(docker_client, server.run_id))
    with pytest.raises(ValueError, match="warm_pool is not offered"):
        RemoteSWEEnv(server.url, token=server.token, warm_pool=1)
    with pytest.raises(ServerConfigError, match="warm_pool is not offered"):
        ServerConfig(env_options={"warm_pool": 2}).check()
    ServerConfig(env_options={"warm_pool": 0}).check()
    url = server.url.replace("http://", "ws://") + "/ws"
    with ws_connect(url, additional_headers=server.headers(), max_size=None) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"task_id": task.id, "config": {"warm_pool": 3}}}))
        refused = json.loads(ws.recv(timeout=300))
        assert refused["type"] == "error" and refused["data"]["code"] == "VALIDATION_ERROR"
        assert "warm_pool is not offered" in refused["data"]["message"]
    # (HTTP /sessions and /reset refuse it too: test_bad_requests_are_4xx_with_a_message_and_leave_nothing)
    assert len(containers_of(docker_client, server.run_id)) == before


class WaitsForTheReaper(OracleAgent):
    """Takes its second action only after the server has reaped its idle session."""

    url, headers = "", {}

    def act(self, observation):
        if getattr(self, "acted", False):
            with httpx.Client(base_url=self.url, headers=self.headers) as client:
                assert wait_until(lambda: client.get("/sessions").json()["open"] == 0, 60)
        self.acted = True
        return super().act(observation)


@pytest.mark.parametrize("transport", ["http", "ws"])
def test_a_session_lost_mid_episode_is_an_infrastructure_failure(short_server, task, transport):
    env = RemoteSWEEnv(short_server.url, token=short_server.token, transport=transport, agent_name="oracle")
    agent = WaitsForTheReaper([task])
    agent.url, agent.headers = short_server.url, short_server.headers()
    try:
        trajectory = play(env, agent, "oracle", task.id, 0)
        assert trajectory.termination == "infra_error" and "SessionLost" in trajectory.error
        assert "without a request" in trajectory.error and trajectory.episode_index == 0
        with pytest.raises(SessionLost):
            env.get_trajectory()
    finally:
        env.close()


def test_a_reset_that_fails_after_ending_the_episode_says_so(docker_client, task, image, tmp_path):
    """A reset whose task cannot be built ends the running episode (its container goes): the session's
    state says done, with no container, and the next good reset works."""
    tasks_dir = tmp_path / "tasks"
    tasks_dir.mkdir()
    (tasks_dir / "repos").symlink_to(TASKS_DIR / "repos")
    (tasks_dir / task.id).symlink_to(TASKS_DIR / task.id)
    broken = (TASKS_DIR / task.id / "task.yaml").read_text()
    # A file that is there but is no repository: the build fails on our side (a path that does not
    # exist is the task file's mistake, refused before the running episode is touched).
    # (Another commit too: an instance image is keyed by content, so the task's own commit would find
    # the bundled task's image and never read the repository.)
    broken = "\n".join(
        "id: broken-repo"
        if line.startswith("id:")
        else "repo: ./not-a.bundle"
        if line.startswith("repo:")
        else f"base_commit: '{'0' * 40}'"
        if line.startswith("base_commit:")
        else line
        for line in broken.splitlines()
    )
    (tasks_dir / "broken").mkdir()
    (tasks_dir / "broken" / "task.yaml").write_text(broken + "\n")
    (tasks_dir / "broken" / "not-a.bundle").write_text("not a git bundle\n")
    running = start_server("--tasks", str(tasks_dir), "--max-sessions", "2")
    try:
        for transport in ("http", "ws"):
            env = RemoteSWEEnv(running.url, token=running.token, transport=transport)
            try:
                _, info = env.reset(options={"task_id": task.id})
                with pytest.raises(RemoteEnvError, match="not-a.bundle") as caught:
                    env.reset(options={"task_id": "broken-repo"})
                assert caught.value.status == 503
                state = env.state()
                assert state["done"] is True and state["container_id"] is None
                assert wait_until(lambda info=info: not container_exists(docker_client, info["container_id"]), 30)
                assert env.reset(options={"task_id": task.id})[1]["task_id"] == task.id
                assert env.state()["done"] is False
            finally:
                env.close()
    finally:
        running.stop(docker_client)


def test_a_websocket_timeout_loses_the_session_cleanly(server, tasks):
    """A step that outlasts the client's timeout: the client closes the connection, and with it the
    server's session, so the step ends truncated as a lost session (not a bare error at the next call),
    the next step asks for a reset, and a reset starts a new session."""
    env = RemoteSWEEnv(server.url, token=server.token, transport="ws", timeout=2)
    try:
        env.reset(options={"task_id": tasks[0].id})
        first = env.session_id
        text, reward, terminated, truncated, info = env.step({"tool": "bash", "command": "sleep 6"})
        assert truncated and not terminated and reward == 0.0 and "within 2 s" in info["error"], text
        with pytest.raises(RuntimeError, match="reset"):
            env.step({"tool": "bash", "command": "echo hi"})
        env.reset(options={"task_id": tasks[0].id})
        assert env.session_id != first
        assert env.step({"tool": "bash", "command": "echo hi"})[0].startswith("hi")
    finally:
        env.close()


# ---------------------------------------------------------------- sessions belong to their client

OPERATOR_TOKEN = "operator-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def operated_server(docker_client, image):
    """A server with a client token and an operator token."""
    running = start_server("--max-sessions", "4", "--operator-token", OPERATOR_TOKEN)
    yield running
    running.stop(docker_client)


def test_a_client_cannot_list_or_reach_another_clients_session(operated_server, task, docker_client):
    url, operator = operated_server.url, {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    with (
        httpx.Client(base_url=url, headers=operated_server.headers(), timeout=300) as alice,
        httpx.Client(base_url=url, headers=operated_server.headers(), timeout=300) as mallory,
    ):
        opened = alice.post("/sessions", json={"task_id": task.id}).json()
        session_id, container_id = opened["session_id"], opened["info"]["container_id"]
        assert len(session_id) >= 40  # 256 random bits: the id is the key to the session
        # Alice's OpenEnv session, addressed by her cookie from then on.
        mine = alice.post("/reset", json={"task_id": task.id}).json()["observation"]
        alice.post("/step", json={"action": {"tool": "bash", "command": "echo alice > /tmp/who"}})
        # Mallory holds the same token: the listing shows him how many sessions are open, none of their ids.
        listing = mallory.get("/sessions").json()
        assert listing["open"] == 2 and listing["sessions"] == []
        assert session_id not in json.dumps(listing) and mine["session_id"] not in json.dumps(listing)
        # Without an id his bare OpenEnv calls reach nothing of Alice's, though he shares her address and token.
        assert mallory.get("/state").json()["session_id"] is None
        refused = mallory.post("/step", json={"action": {"tool": "bash", "command": "cat /tmp/who"}})
        assert refused.status_code == 409
        guessed = mallory.get(f"/sessions/{uuid.uuid4().hex}")
        assert guessed.status_code == 404
        # Alice sees her own sessions (the one her cookie names); the operator sees and reaches every one.
        assert [s["session_id"] for s in alice.get("/sessions").json()["sessions"]] == [mine["session_id"]]
        everything = httpx.get(f"{url}/sessions", headers=operator).json()
        assert {s["session_id"] for s in everything["sessions"]} == {session_id, mine["session_id"]}
        who = httpx.post(
            f"{url}/step",
            headers=operator,
            timeout=300,
            json={"session_id": mine["session_id"], "action": {"tool": "bash", "command": "cat /tmp/who"}},
        )
        assert who.json()["observation"]["text"].startswith("alice")
        # A session the operator opened is not a client's to reach, even by its id.
        ops = httpx.post(f"{url}/sessions", headers=operator, json={"task_id": task.id}, timeout=300).json()
        assert mallory.get(f"/sessions/{ops['session_id']}").status_code == 404
        assert mallory.delete(f"/sessions/{ops['session_id']}").status_code == 404
        assert httpx.delete(f"{url}/sessions/{ops['session_id']}", headers=operator).status_code == 200
        for opened_id in (session_id, mine["session_id"]):
            assert alice.delete(f"/sessions/{opened_id}").status_code == 200
    assert wait_until(lambda: not container_exists(docker_client, container_id), 60)


@pytest.fixture(scope="module")
def small_body_server(docker_client, image):
    running = start_server("--max-sessions", "1", "--max-request-bytes", str(1024 * 1024))
    yield running
    running.stop(docker_client)


def test_bodies_over_the_limit_are_refused_unread_and_deep_json_is_the_clients_error(small_body_server):
    """Red team rt3, e2: a body is parsed on the event loop, so it is bounded before it is read."""
    url, headers = small_body_server.url, small_body_server.headers()
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    refused = httpx.post(f"{url}/mcp", content=big, headers=headers, timeout=60)
    assert refused.status_code == 413 and refused.json()["error"] == "request_too_large"

    def chunks():  # no Content-Length: the count of what arrives decides
        yield big[:1000]
        for start in range(1000, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = httpx.post(f"{url}/mcp", content=chunks(), headers=headers, timeout=60)
    assert streamed.status_code == 413
    assert httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers=headers).json()["result"] == {}
    deep = httpx.post(f"{url}/mcp", content=b"[" * 200_000, headers=headers, timeout=60)
    assert deep.status_code == 200 and deep.json()["error"]["code"] == -32700
    deep_step = httpx.post(
        f"{url}/step", content=b'{"action": ' + b"[" * 200_000, timeout=60, headers={**headers, "content-type": "application/json"}
    )
    assert 400 <= deep_step.status_code < 500
    assert httpx.get(f"{url}/health").status_code == 200


def test_clients_with_their_own_tokens_on_one_address_never_see_each_others_default_session(docker_client, image, task, tmp_path):
    """Red team rt3, e1: clients sharing the token on one address are one client to the server (they share the
    default session of cookie-less OpenEnv calls); given tokens of their own, each is a client of its own."""
    alice_token, bob_token = "alice-" + uuid.uuid4().hex[:12], "bob-" + uuid.uuid4().hex[:12]
    tokens_file = tmp_path / "clients.txt"
    tokens_file.write_text(f"# one per client\n{alice_token}\n\n{bob_token}\n")
    running = start_server("--max-sessions", "3", "--max-sessions-per-client", "1", "--client-tokens-file", str(tokens_file))
    try:
        alice = {"Authorization": f"Bearer {alice_token}"}
        bob = {"Authorization": f"Bearer {bob_token}"}
        # Cookie-less OpenEnv calls (a bare client that keeps no cookie) from one address.
        opened = httpx.post(f"{running.url}/reset", headers=alice, json={"task_id": task.id}, timeout=300).json()
        session_id = opened["observation"]["session_id"]
        httpx.post(f"{running.url}/step", headers=alice, timeout=300, json={"action": {"tool": "bash", "command": "echo alice > /tmp/who"}})
        assert httpx.get(f"{running.url}/sessions", headers=bob).json()["sessions"] == []
        assert httpx.get(f"{running.url}/state", headers=bob).json()["session_id"] is None
        assert (
            httpx.post(f"{running.url}/step", headers=bob, timeout=60, json={"action": {"tool": "bash", "command": "cat /tmp/who"}}).status_code
            == 409
        )
        assert httpx.get(f"{running.url}/sessions/{session_id}", headers=bob).status_code == 404
        assert [s["session_id"] for s in httpx.get(f"{running.url}/sessions", headers=alice).json()["sessions"]] == [session_id]
        assert httpx.get(f"{running.url}/health").status_code == 200
        assert httpx.get(f"{running.url}/sessions", headers={"Authorization": "Bearer wrong-token-x"}).status_code == 403
        # One session each at most: Alice cannot take the slots the others need.
        refused = httpx.post(f"{running.url}/sessions", headers=alice, json={"task_id": task.id}, timeout=60)
        assert refused.status_code == 429 and refused.json()["error"] == "client_quota"
    finally:
        running.stop(docker_client)


def test_client_tokens_are_checked():
    with pytest.raises(ServerConfigError, match="need the server's token"):
        ServerConfig(client_tokens=["abcdefgh1"]).check()
    with pytest.raises(ServerConfigError, match="at least 8"):
        ServerConfig(token="t" * 8, client_tokens=["short"]).check()
    with pytest.raises(ServerConfigError, match="differ"):
        ServerConfig(token="t" * 8, client_tokens=["t" * 8]).check()
    with pytest.raises(ServerConfigError, match="differ"):
        ServerConfig(token="t" * 8, client_tokens=["c" * 8, "c" * 8]).check()


def test_the_docs_and_the_schema_need_the_token(operated_server, open_server_for_docs):
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert httpx.get(f"{operated_server.url}{path}").status_code in (401, 404)
    assert httpx.get(f"{operated_server.url}/openapi.json").status_code == 401
    schema = httpx.get(f"{operated_server.url}/openapi.json", headers=operated_server.headers()).json()
    assert "/sessions" in schema["paths"] and "/openapi.json" not in schema["paths"]
    assert "swagger" in httpx.get(f"{operated_server.url}/docs", headers=operated_server.headers()).text.lower()
    # Without a token (loopback only) they answer as before: `openenv validate` reads /openapi.json.
    assert "/reset" in httpx.get(f"{open_server_for_docs.url}/openapi.json").json()["paths"]


@pytest.fixture(scope="module")
def open_server_for_docs(docker_client, image):
    running = start_server("--max-sessions", "1", token=None)
    yield running
    running.stop(docker_client)


def test_operator_token_settings_are_checked():
    with pytest.raises(ServerConfigError, match="differ from the token"):
        ServerConfig(token="same-token-1", operator_token="same-token-1").check()
    with pytest.raises(ServerConfigError, match="needs a client token"):
        ServerConfig(operator_token="operator-only").check()
    ServerConfig(token="client-token", operator_token="operator-token").check()
