"""OpenEnv's own clients, models and validator against a real `swe-env serve` and real containers.

Both OpenEnv releases install the `openenv` package, so they cannot share a venv:
`openenv-core` 0.3.0 is in the `openenv` extra (which `dev` includes) and runs from this
venv; `openenv` 0.10.0 is installed into a throw-away venv under $SWE_ENV_CACHE/venvs (made
once, with pip, then reused). Each drives a whole episode with its stock GenericEnvClient
(tests/server/openenv_driver.py), including a step longer than its message timeout, to a graded
reward of 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect as ws_connect

from swe_env.agents.oracle import actions_for_patch
from swe_env.build.repos import cache_dir

from ..helpers import TOKEN, container_exists, start_server, wait_until

pytestmark = pytest.mark.docker

DRIVER = Path(__file__).with_name("openenv_driver.py")
OPENENV_010 = "openenv==0.10.0"


@pytest.fixture(scope="module")
def server(docker_client, image):
    running = start_server("--max-sessions", "8")
    yield running
    running.stop(docker_client)


@pytest.fixture(scope="module")
def open_server(docker_client, image):
    """No token: `openenv validate` sends none."""
    running = start_server("--max-sessions", "4", token=None)
    yield running
    running.stop(docker_client)


def _drive(python: str, server, open_server, task, tmp_path) -> dict:
    spec = {
        "url": server.url,
        "token": server.token,
        "task_id": task.id,
        "actions": actions_for_patch(task.gold_patch),
        # The step sleeps well past the client's message timeout; the server answers within 1 s.
        "message_timeout_s": 3,
        "reply_within_s": 1,
        "slow_seconds": 8,
        "validate_url": open_server.url,
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run([python, str(DRIVER), str(path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_episode(out: dict, task, docker_client) -> None:
    assert out["reset"]["done"] is False and out["reset"]["reward"] is None
    assert task.problem_statement.strip()[:30] in out["reset"]["text"]
    assert out["reset"]["warnings"] == ["unknown reset field ignored: made_up_field"]
    # Longer than the client's message timeout: a pending reply came first, then the result, in step.
    assert out["slow_first_reply_pending"] is True and out["pending_replies"] >= 1
    assert out["slow"] == "slow-done café"
    assert out["quick"] == "right-after"  # the next reply answers the next request
    assert out["submit"]["done"] is True and out["submit"]["reward"] == 1.0 and out["submit"]["resolved"] is True
    # slow, quick, the oracle's edits and submit; `wait` steps are not steps of the episode
    assert out["state"]["step_count"] == 3 + len(out["steps"])
    assert out["state"]["session_id"] == out["reset"]["session_id"] and out["state"]["done"] is True
    assert out["http_models"][0] == "ResetResponse done=False"
    assert out["http_models"][1] == "StepResponse http reward=0.0" and out["http_models"][2] == "State step_count=1"
    assert out["validate"] == {"passed": True, "failed": []}
    # The client closed: the session's container is gone.
    assert wait_until(lambda: not container_exists(docker_client, out["reset"]["container_id"]), 60)


def test_openenv_core_030_stock_client(server, open_server, task, docker_client, tmp_path):
    out = _drive(sys.executable, server, open_server, task, tmp_path)
    assert out["version"] == "openenv-core 0.3.0" and out["auth"] == "token in the URL"
    _check_episode(out, task, docker_client)


@pytest.fixture(scope="session")
def openenv_010_python() -> str:
    """A venv with openenv 0.10.0 (made with pip on first use, then reused)."""
    venv = cache_dir() / "venvs" / "openenv-0.10.0"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    usable = marker.exists() and subprocess.run([str(python), "-c", "import openenv.core"], capture_output=True, timeout=120).returncode == 0
    if not usable:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", OPENENV_010], capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"pip install {OPENENV_010} failed: {done.stderr[-2000:]}"
        marker.write_text(OPENENV_010 + "\n")
    return str(python)


def test_openenv_010_stock_client_in_its_own_venv(server, open_server, task, docker_client, tmp_path, openenv_010_python):
    out = _drive(openenv_010_python, server, open_server, task, tmp_path)
    assert out["version"] == "openenv 0.10.0" and out["auth"] == "bearer header"
    _check_episode(out, task, docker_client)


def test_stateless_http_routes_as_openenv_scripts_call_them(server, task, docker_client):
    from openenv.core.env_server.types import ResetResponse, State, StepResponse

    bare = {"Authorization": f"Bearer {TOKEN}"}
    # Bare requests (no cookie jar, no session id), the way OpenEnv's own examples call its HTTP routes.
    first = requests.post(f"{server.url}/reset", json={"task_id": task.id, "episode_id": "e-1", "extra": 1}, headers=bare, timeout=300).json()
    ResetResponse(**first)  # OpenEnv 0.3's models forbid unknown fields
    assert first["observation"]["warnings"] == ["unknown reset field ignored: extra"]
    session_id = first["observation"]["session_id"]
    step = requests.post(f"{server.url}/step", json={"action": {"tool": "bash", "command": "echo één"}}, headers=bare, timeout=300).json()
    StepResponse(**step)
    assert step["observation"]["text"].startswith("één") and step["observation"]["session_id"] == session_id
    state = requests.get(f"{server.url}/state", headers=bare, timeout=60).json()
    State(**state)
    assert state["session_id"] == session_id and state["step_count"] == 1
    # A second bare reset is a new episode in the same default session (no pile of sessions).
    again = requests.post(f"{server.url}/reset", json={"task_id": task.id}, headers=bare, timeout=300).json()
    assert again["observation"]["session_id"] == session_id
    assert requests.get(f"{server.url}/state", headers=bare, timeout=60).json()["step_count"] == 0
    old_container = first["observation"]["info"]["container_id"]
    assert wait_until(lambda: not container_exists(docker_client, old_container), 60)

    # A client with a cookie jar keeps its own session, once it has addressed it by cookie.
    with requests.Session() as jar:
        jar.headers.update(bare)
        mine = jar.post(f"{server.url}/reset", json={"task_id": task.id}, timeout=300).json()["observation"]
        jar.post(f"{server.url}/step", json={"action": {"tool": "bash", "command": "echo mine > /tmp/who"}}, timeout=300)
        other = requests.post(f"{server.url}/reset", json={"task_id": task.id}, headers=bare, timeout=300).json()
        assert other["observation"]["session_id"] != mine["session_id"]
        who = jar.post(f"{server.url}/step", json={"action": {"tool": "bash", "command": "cat /tmp/who"}}, timeout=300).json()
        assert who["observation"]["session_id"] == mine["session_id"] and who["observation"]["text"].startswith("mine")
        for opened in (mine, other["observation"]):
            requests.delete(f"{server.url}/sessions/{opened['session_id']}", headers=bare, timeout=120)
    assert wait_until(lambda: not container_exists(docker_client, other["observation"]["info"]["container_id"]), 60)
    # No session left for this caller: /state answers as OpenEnv does for a fresh env, /step says what to do.
    empty = requests.get(f"{server.url}/state", headers=bare, timeout=60).json()
    assert empty["session_id"] is None and empty["episode_id"] is None and empty["step_count"] == 0
    refused = requests.post(f"{server.url}/step", json={"action": "ls"}, headers=bare, timeout=60)
    assert refused.status_code == 409 and "POST /reset first" in refused.json()["detail"]


def test_stock_client_errors_carry_openenv_codes(server, task):
    from openenv.core import GenericEnvClient

    url = server.url.replace("http://", f"http://swe:{TOKEN}@")
    with GenericEnvClient(base_url=url).sync() as client:
        with pytest.raises(RuntimeError, match=r"code: SESSION_ERROR"):
            client.step({"tool": "bash", "command": "ls"})  # before any reset
        with pytest.raises(RuntimeError, match=r"code: VALIDATION_ERROR"):
            client.reset(task_id="no-such-task")
        with pytest.raises(RuntimeError, match=r"code: VALIDATION_ERROR"):
            client.reset(seed=-1)
    wrong = server.url.replace("http://", "http://swe:wrong-token@")
    assert requests.get(f"{wrong}/tasks", timeout=30).status_code == 403  # Basic auth, wrong password
    assert requests.get(f"{url}/tasks", timeout=30).status_code == 200


def test_mcp_answers_json_rpc(open_server):
    def rpc(body):
        response = requests.post(f"{open_server.url}/mcp", json=body, timeout=30)
        assert response.status_code == 200
        return response.json()

    assert rpc({})["error"]["code"] == -32600 and rpc({})["jsonrpc"] == "2.0"
    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})["result"]["serverInfo"]["name"] == "swe_env"
    listed = rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})["result"]["tools"]
    assert {"bash", "edit", "view", "create", "submit"} <= {tool["name"] for tool in listed}
    assert all(tool["inputSchema"]["type"] == "object" for tool in listed)
    refused = rpc({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "bash"}})
    assert refused["id"] == 3 and "session" in refused["error"]["message"]
    assert rpc({"jsonrpc": "2.0", "id": 4, "method": "nope"})["error"]["code"] == -32601


def test_pending_calls_on_the_websocket(server, task, docker_client):
    url = server.url.replace("http://", "ws://") + "/ws"
    with ws_connect(url, additional_headers=server.headers(), max_size=None) as ws:

        def send(kind, data=None):
            ws.send(json.dumps({"type": kind, **({} if data is None else {"data": data})}))
            return json.loads(ws.recv(timeout=300))

        reset = send("reset", {"task_id": task.id, "reply_within_s": 0.5})
        while reset["data"]["observation"]["pending"]:
            reset = send("step", {"tool": "wait"})
        container_id = reset["data"]["observation"]["info"]["container_id"]
        assert send("step", {"tool": "wait"})["data"]["observation"]["text"].startswith("Nothing to wait for")

        slow = send("step", {"tool": "bash", "command": "sleep 6; echo slow"})
        assert slow["type"] == "observation" and slow["data"]["observation"]["pending"] is True
        assert slow["data"]["done"] is False and "wait" in slow["data"]["observation"]["text"]
        assert send("state")["data"]["busy"] is True
        # An action sent meanwhile is not run; the reply (pending or the result) says so.
        meanwhile = send("step", {"tool": "bash", "command": "touch /tmp/meanwhile-ran"})
        assert any("not run" in w for w in meanwhile["data"]["observation"]["warnings"])
        while meanwhile["data"]["observation"]["pending"]:
            meanwhile = send("step", {"tool": "wait"})
        assert meanwhile["data"]["observation"]["text"].startswith("slow")
        check = send("step", {"tool": "bash", "command": "ls /tmp/meanwhile-ran 2>&1; echo next"})
        assert "No such file" in check["data"]["observation"]["text"]
        assert send("state")["data"]["step_count"] == 2 and send("state")["data"]["busy"] is False

        # The client goes away while a call runs: the container goes once the call has ended.
        assert send("step", {"tool": "bash", "command": "sleep 3"})["data"]["observation"]["pending"] is True
    assert wait_until(lambda: not container_exists(docker_client, container_id), 60)
