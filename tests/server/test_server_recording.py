"""The HTTP server's answers to one fixed session script, on the real engine, are the recorded ones: behaviour
unchanged (issue 27's "the recorded server responses are identical"). The script opens a session, steps it
with every tool and every action form, makes the caller's and the agent's mistakes, submits, reads the state and
the trajectory, closes it, and does the same through OpenEnv's routes; each answer's status, content type and body
are compared with `tests/server/golden/server_responses.json`.

Ids (sessions, episodes, containers), times and durations, the image's tag and the token are normalised first
(`normalised`), so the recording holds on any machine; everything else must match byte for byte.

When a change is meant to alter an answer, record again and review the golden file's diff as code:

    SWE_ENV_RECORD=1 .venv/bin/python -m pytest tests/server/test_server_recording.py
"""

from __future__ import annotations

import difflib
import json
import os
import re
from typing import Any

import httpx
import pytest

from swe_env.build.images import ImageBuilder
from swe_env.data.task import load_tasks

from ..helpers import ROOT, TASKS_DIR, TOKEN, start_server

pytestmark = pytest.mark.docker

GOLDEN = ROOT / "tests" / "server" / "golden" / "server_responses.json"
TASK = "ledger-month-end-clamp"
"""The one task the recorded server serves (its problem statement and files are in the answers)."""
RECORD = os.environ.get("SWE_ENV_RECORD") == "1"

# (name, method, path, body, headers): `{session}` in a path is the session the script opened; a body that is a
# string is sent as it is (the caller's mistakes), else as JSON; headers "none" sends no token, "wrong" a wrong one.
_S = "/sessions/{session}"
SCRIPT: list[tuple[str, str, str, Any, str]] = [
    ("health", "GET", "/health", None, "none"),
    ("no token", "GET", "/tasks", None, "none"),
    ("wrong token", "GET", "/tasks", None, "wrong"),
    ("metadata", "GET", "/metadata", None, "token"),
    ("tasks", "GET", "/tasks", None, "token"),
    ("schema", "GET", "/schema", None, "token"),
    ("mcp tools/list", "POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "token"),
    ("open", "POST", "/sessions", {"task_id": TASK, "episode_index": 0, "model": "scripted"}, "token"),
    ("bash", "POST", f"{_S}/step", {"action": {"tool": "bash", "command": "cd /tmp && export A=1"}}, "token"),
    ("bash keeps state", "POST", f"{_S}/step", {"action": {"tool": "bash", "command": "pwd; echo $A; cd /testbed"}}, "token"),
    ("bash exit code", "POST", f"{_S}/step", {"action": {"tool": "bash", "command": "echo out; echo err >&2; (exit 3)"}}, "token"),
    ("create", "POST", f"{_S}/step", {"action": '{"tool": "create", "path": "notes.txt", "content": "one\\ntwo\\n"}'}, "token"),
    ("view file", "POST", f"{_S}/step", {"action": {"tool": "view", "path": "notes.txt"}}, "token"),
    ("edit", "POST", f"{_S}/step", {"action": {"tool": "edit", "path": "notes.txt", "old": "two", "new": "three"}}, "token"),
    ("view range", "POST", f"{_S}/step", {"action": {"tool": "view", "path": "notes.txt", "range": [2, 2]}}, "token"),
    ("undo_edit", "POST", f"{_S}/step", {"action": {"tool": "undo_edit", "path": "notes.txt"}}, "token"),
    ("view folder", "POST", f"{_S}/step", {"action": {"tool": "view", "path": "."}}, "token"),
    (
        "openai call",
        "POST",
        f"{_S}/step",
        {"action": {"type": "function", "function": {"name": "bash", "arguments": '{"command": "echo openai"}'}}},
        "token",
    ),
    ("cwm block", "POST", f"{_S}/step", {"action": "<tool: bash>\necho cwm\n</tool>"}, "token"),
    ("fenced bash", "POST", f"{_S}/step", {"action": "```bash\necho fenced\n```"}, "token"),
    ("unknown tool", "POST", f"{_S}/step", {"action": {"tool": "teleport"}}, "token"),
    ("bad arguments", "POST", f"{_S}/step", {"action": {"tool": "edit", "path": "notes.txt"}}, "token"),
    ("view outside", "POST", f"{_S}/step", {"action": {"tool": "view", "path": "/etc/passwd"}}, "token"),
    ("no action", "POST", f"{_S}/step", {"command": "ls"}, "token"),
    ("state", "GET", _S, None, "token"),
    ("list", "GET", "/sessions", None, "token"),
    ("submit", "POST", f"{_S}/step", {"action": {"tool": "submit"}}, "token"),
    ("after the end", "POST", f"{_S}/step", {"action": {"tool": "bash", "command": "ls"}}, "token"),
    ("trajectory", "GET", f"{_S}/trajectory", None, "token"),
    ("close", "DELETE", _S, None, "token"),
    ("closed", "GET", _S, None, "token"),
    ("not json", "POST", "/sessions", "not json", "token"),
    ("unknown task", "POST", "/sessions", {"task_id": "no-such-task"}, "token"),
    ("unknown field", "POST", "/sessions", {"task_id": TASK, "bogus": 1}, "token"),
    ("bad action format", "POST", "/sessions", {"task_id": TASK, "action_format": "xml"}, "token"),
    ("bad config", "POST", "/sessions", {"task_id": TASK, "config": {"tools": ["rm-rf"]}}, "token"),
    ("unknown session", "POST", "/sessions/nope/step", {"action": "ls"}, "token"),
    ("openenv step first", "POST", "/step", {"action": {"tool": "bash", "command": "ls"}}, "token"),
    ("openenv reset", "POST", "/reset", {"task_id": TASK, "action_format": "cwm", "extra": 1}, "token"),
    ("openenv step", "POST", "/step", {"action": {"tool": "bash", "command": "echo openenv"}, "timeout_s": 30}, "token"),
    ("openenv state", "GET", "/state", None, "token"),
    ("openenv submit", "POST", "/step", {"action": {"tool": "submit"}}, "token"),
]


def _play(url: str) -> list[dict[str, Any]]:
    """Every answer of SCRIPT as it came: the name, the request, the status, the content type and the body."""
    answers = []
    session = None
    with httpx.Client(base_url=url, timeout=600) as client:
        for name, method, path, body, auth in SCRIPT:
            headers = {"Authorization": f"Bearer {TOKEN}"} if auth == "token" else {"Authorization": "Bearer wrong-token"} if auth == "wrong" else {}
            content = body if isinstance(body, str) else None if body is None else json.dumps(body)
            if content is not None:
                headers["Content-Type"] = "application/json"
            response = client.request(method, path.format(session=session), content=content, headers=headers)
            kind = response.headers.get("content-type", "")
            answer = response.json() if kind.startswith("application/json") else response.text
            if name == "open":
                session = answer["session_id"]
            answers.append({"name": name, "request": f"{method} {path}", "status": response.status_code, "content_type": kind, "body": answer})
        opened = [answer["body"]["observation"]["session_id"] for answer in answers if answer["name"] == "openenv reset"]
        for session_id in opened:  # the OpenEnv session's container goes now, not when the server stops
            client.delete(f"/sessions/{session_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    return answers


_TIME_KEYS = {"elapsed", "idle", "duration", "started", "finished", "started_at", "finished_at", "created_at", "timestamp", "time"}
"""Keys whose values are times or durations, with every key ending in `seconds`: `<time>` in the recording (any value
but null)."""
_HEX_ID = re.compile(r"\b[0-9a-f]{12,64}\b")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?s\b")
_RULE = re.compile(r"={3,}")
"""pytest's summary line pads its `=` rule to the width of the text, which holds the run's duration."""


def normalised(answers: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    """`answers` with what differs between runs and machines replaced: each id (hex of 12 to 64 digits) by `<id-N>`
    and each session id by `<session-N>`, in order of first appearance, so that two places naming one id still
    agree; time keys' values by `<time>`; durations in text (`0.12s`) by `<n>s` and pytest's rules by `===`; the image by
    `<image>`; the token."""
    ids: dict[str, str] = {}

    def placeholder(found: re.Match) -> str:
        return ids.setdefault(found.group(0), f"<id-{len(ids) + 1}>")

    sessions: list[str] = []  # secrets.token_urlsafe, not hex: found by their key

    def collect(value: Any, key: str | None = None) -> None:
        if key == "session_id" and isinstance(value, str) and value not in sessions:
            sessions.append(value)
        for k, v in value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ():
            collect(v, k if isinstance(k, str) else None)

    collect(answers)

    def text(value: str) -> str:
        value = value.replace(image, "<image>").replace(TOKEN, "<token>")
        for number, session in enumerate(sessions, 1):
            value = value.replace(session, f"<session-{number}>")
        return _RULE.sub("===", _DURATION.sub("<n>s", _HEX_ID.sub(placeholder, value)))

    def walk(value: Any, key: str | None = None) -> Any:
        if key is not None and (key in _TIME_KEYS or key.endswith("seconds")) and value is not None:
            return "<time>"
        if isinstance(value, dict):
            return {text(k): walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, str):
            return text(value)
        return value

    return walk(answers)


def test_the_servers_answers_to_the_session_script_are_the_recorded_ones(docker_client):
    task = next(task for task in load_tasks(TASKS_DIR) if task.id == TASK)
    image = ImageBuilder().ensure(task)
    server = start_server("--tasks", str(TASKS_DIR / TASK), "--max-sessions", "4")
    try:
        answers = normalised(_play(server.url), image)
    finally:
        server.stop(docker_client)
    shown = json.dumps(answers, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if RECORD:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(shown, encoding="utf-8")
    recorded = GOLDEN.read_text(encoding="utf-8")
    assert shown == recorded, "the server's answers differ from the recording (if meant, record again: see the module's docstring):\n" + "".join(
        difflib.unified_diff(recorded.splitlines(keepends=True), shown.splitlines(keepends=True), "recorded", "now", n=2)
    )
