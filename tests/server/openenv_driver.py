"""Drive a swe-env server with OpenEnv's own stock client (GenericEnvClient), as a user would.

Run by tests/server/test_openenv.py with the Python of a venv holding one OpenEnv release
(`openenv-core` 0.3.x or `openenv` 0.10.x: both install the `openenv` package, so they
cannot share a venv). Standard library + openenv only; prints one JSON object.

    python openenv_driver.py SPEC.json

SPEC: {"url", "token", "task_id", "actions": [oracle tool calls], "message_timeout_s",
"reply_within_s", "slow_seconds"}.
"""

from __future__ import annotations

import inspect
import json
import sys
import urllib.parse
from importlib import metadata


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    from openenv.core import GenericEnvClient

    version = next((f"{name} {metadata.version(name)}" for name in ("openenv", "openenv-core") if _installed(name)), "unknown")
    kwargs = {"message_timeout_s": spec["message_timeout_s"]}
    url = spec["url"]
    if "headers" in inspect.signature(GenericEnvClient.__init__).parameters:
        kwargs["headers"] = {"Authorization": f"Bearer {spec['token']}"}
        auth = "bearer header"
    else:  # 0.3 has no way to send headers: the token goes in the URL, which websockets sends as Basic auth
        parts = urllib.parse.urlsplit(url)
        url = urllib.parse.urlunsplit(parts._replace(netloc=f"swe:{spec['token']}@{parts.netloc}"))
        auth = "token in the URL"
    out: dict = {"version": version, "auth": auth, "pending_replies": 0, "steps": []}

    def until_done(result):
        """OpenEnv's client gives up after message_timeout_s; the server answers `pending` before that."""
        while result.observation.get("pending"):
            out["pending_replies"] += 1
            result = client.step({"tool": "wait"})
        return result

    client = GenericEnvClient(base_url=url, **kwargs).sync()
    with client:
        first = client.reset(task_id=spec["task_id"], reply_within_s=spec["reply_within_s"], made_up_field=1)
        first = until_done(first)
        out["reset"] = {
            "text": first.observation["text"][:200],
            "done": first.done,
            "reward": first.reward,
            "warnings": first.observation["warnings"],
            "session_id": first.observation["session_id"],
            "container_id": first.observation["info"].get("container_id"),
        }
        slow = client.step({"tool": "bash", "command": f"sleep {spec['slow_seconds']}; echo slow-done café"})
        out["slow_first_reply_pending"] = bool(slow.observation.get("pending"))
        slow = until_done(slow)
        out["slow"] = slow.observation["text"].splitlines()[0]
        quick = client.step({"tool": "bash", "command": "echo right-after"})
        out["quick"] = quick.observation["text"].splitlines()[0]
        for action in spec["actions"]:
            result = until_done(client.step(action))
            out["steps"].append(result.observation["text"][:120])
        done = until_done(client.step({"tool": "submit"}))
        out["submit"] = {
            "text": done.observation["text"],
            "reward": done.reward,
            "done": done.done,
            "resolved": (done.observation["info"].get("report") or {}).get("resolved"),
        }
        state = client.state()
        out["state"] = {key: state.get(key) for key in ("session_id", "episode_id", "step_count", "done")}
    out["http_models"] = _http_replies_fit_openenv_models(spec)
    if spec.get("validate_url"):
        from openenv.cli._validation import validate_running_environment

        report = validate_running_environment(spec["validate_url"])
        out["validate"] = {"passed": report["passed"], "failed": [c["id"] for c in report["criteria"] if not c["passed"]]}
    print(json.dumps(out))


def _http_replies_fit_openenv_models(spec: dict) -> list[str]:
    """POST /reset, /step (no session id: the caller's default session), GET /state, read with this
    OpenEnv release's own response models (0.3's forbid unknown fields); then close the session."""
    import urllib.request

    from openenv.core.env_server.types import ResetResponse, State, StepResponse

    def call(method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            spec["url"] + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())

    checked = []
    reset = ResetResponse(**call("POST", "/reset", {"task_id": spec["task_id"]}))
    checked.append(f"ResetResponse done={reset.done}")
    step = StepResponse(**call("POST", "/step", {"action": {"tool": "bash", "command": "echo http"}}))
    checked.append(f"StepResponse {step.observation['text'].splitlines()[0]} reward={step.reward}")
    state = State(**call("GET", "/state"))
    checked.append(f"State step_count={state.step_count}")
    call("DELETE", f"/sessions/{reset.observation['session_id']}")
    return checked


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


if __name__ == "__main__":
    main()
