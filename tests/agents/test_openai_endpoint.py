"""The openai agent's endpoint as a newcomer meets it: no default endpoint, one check before any container,
the cause of a failure in the rollout table, and a non-zero exit when no episode said anything about the agent.

The endpoints are small OpenAI-compatible servers on 127.0.0.1 started here (a dead port, a wrong model
name, a working one); the env, its containers and the grading are real.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from swe_env.agents import checked_agent, make_agent
from swe_env.agents.openai import EndpointCheckError

from ..helpers import ROOT, ctrl_c_reaches_it, free_port, run_cli


class Endpoint:
    """An OpenAI-compatible server on loopback serving `models`; chat completions answer with `reply`
    (a submit call by default), or an HTTP error status when `reply` is an int; `hang` holds every request."""

    def __init__(self, models: list[str], reply: dict | int | None = None, hang: bool = False):
        self.requests: list[str] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - the http.server API
                endpoint.requests.append(f"GET {self.path}")
                if hang:
                    endpoint.release.wait(120)
                if self.path.endswith("/models"):
                    self._answer(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append(f"POST {self.path}")
                if isinstance(reply, int):
                    self._answer(reply, {"error": {"message": "the model crashed"}})
                    return
                call = {"id": "c1", "type": "function", "function": {"name": "submit", "arguments": "{}"}}
                message = reply or {"role": "assistant", "content": None, "tool_calls": [call]}
                self._answer(200, {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def dead_url() -> str:
    """A loopback port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}/v1"


def swe_env(*args: str, run_id: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI with no endpoint from the caller's environment: each test names its own."""
    return run_cli(*args, run_id=run_id, extra_env=extra_env, drop_env=("OPENAI_BASE_URL",))


def lines_of(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_no_default_endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match=r"needs an endpoint: --base-url URL .* or \$OPENAI_BASE_URL; there is no default"):
        make_agent("openai", [], model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        make_agent("openai", [], model="m")


def test_the_check_names_the_url_and_the_cause():
    url = dead_url()
    with pytest.raises(EndpointCheckError, match=rf"model endpoint {url}/models: cannot connect \(Connection refused\)"):
        checked_agent("openai", [], base_url=url, model="m")
    with Endpoint(["qwen-coder-7b", "other"]) as server:
        with pytest.raises(
            EndpointCheckError,
            match=r"no model 'qwen-coder-7' \(did you mean 'qwen-coder-7b'\?\); "
            r"it serves: qwen-coder-7b, other",
        ):
            checked_agent("openai", [], base_url=server.url, model="qwen-coder-7")
        checked_agent("openai", [], base_url=server.url, model="qwen-coder-7b")
        assert server.requests == ["GET /v1/models"] * 2  # one short request each, no chat completion


@pytest.mark.docker
def test_rollout_refuses_a_dead_endpoint_or_a_wrong_model_before_any_container(tasks, docker_client, tmp_path):
    task_file = str(tasks[0].source)
    run_id = f"endpoint-{uuid.uuid4().hex[:8]}"
    result = swe_env("rollout", "--agent", "openai", "--model", "m", "--tasks", task_file, "--out", str(tmp_path / "t.jsonl"), run_id=run_id)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert lines_of(result.stderr) == [
        "error: the openai agent needs an endpoint: --base-url URL (e.g. http://localhost:8000/v1) or $OPENAI_BASE_URL; there is no default"
    ]
    url = dead_url()
    result = swe_env(
        "rollout", "--agent", "openai", "--base-url", url, "--model", "m", "--tasks", task_file, "--out", str(tmp_path / "t.jsonl"), run_id=run_id
    )
    assert result.returncode == 2 and len(lines_of(result.stderr)) == 1, result.stderr
    assert f"{url}/models: cannot connect (Connection refused)" in result.stderr
    with Endpoint(["served-model"]) as server:
        result = swe_env(
            "rollout",
            "--agent",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "served-modle",
            "--tasks",
            task_file,
            "--out",
            str(tmp_path / "t.jsonl"),
            run_id=run_id,
        )
    assert result.returncode == 2 and len(lines_of(result.stderr)) == 1, result.stderr
    assert "no model 'served-modle' (did you mean 'served-model'?)" in result.stderr
    assert not (tmp_path / "t.jsonl").exists()  # no episode was run, none written
    events = docker_client.api.events(
        since=int(time.time()) - 600, until=int(time.time()), decode=True, filters={"type": "container", "label": f"swe_env.run={run_id}"}
    )
    assert not list(events)  # no container was ever created for this run


@pytest.mark.docker
def test_rollout_against_a_working_endpoint_and_a_failing_one(tasks, docker_client, tmp_path):
    task_file = str(tasks[0].source)
    run_id = f"endpoint-{uuid.uuid4().hex[:8]}"
    with Endpoint(["local-model"]) as server:
        result = swe_env(
            "rollout",
            "--agent",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "local-model",
            "--tasks",
            task_file,
            "--out",
            str(tmp_path / "ok.jsonl"),
            "--json",
            run_id=run_id,
        )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["task"], r["model"], r["termination"], r["resolved"]) for r in rows] == [(tasks[0].id, "local-model", "submitted", False)]
    assert server.requests == ["GET /v1/models", "GET /v1/models", "POST /v1/chat/completions"]

    # The endpoint passes the check, then every completion fails: bounded retries, each a warning line;
    # the cause is in the table and the run exits 1 (nothing was learnt about the agent).
    with Endpoint(["local-model"], reply=503) as server:
        result = swe_env(
            "rollout",
            "--agent",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "local-model",
            "--tasks",
            task_file,
            "--out",
            str(tmp_path / "bad.jsonl"),
            run_id=run_id,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("retry ") == 3 and "retry 3 of 3" in result.stderr
    assert "infra_error" in result.stdout and "HTTP 503" in result.stdout  # the cause, in the table
    assert "every episode ended by a failure of ours or of the model's endpoint" in result.stderr
    assert server.requests.count("POST /v1/chat/completions") == 4
    assert "errors 1" in result.stderr  # the progress column says what it counts
    assert not docker_client.containers.list(all=True, filters={"label": f"swe_env.run={run_id}"})


@pytest.mark.docker
def test_ctrl_c_during_start_up_is_one_line(tasks, tmp_path):
    with Endpoint(["m"], hang=True) as server:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swe_env.cli",
                "rollout",
                "--agent",
                "openai",
                "--base-url",
                server.url,
                "--model",
                "m",
                "--tasks",
                str(tasks[0].source),
                "--out",
                str(tmp_path / "t.jsonl"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ctrl_c_reaches_it,
        )
        deadline = time.monotonic() + 120
        while not server.requests:  # the endpoint check is under way: start-up, no container yet
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and len(lines_of(err)) == 1 and "interrupted" in err
