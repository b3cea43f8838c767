"""Step latency through the server (HTTP and WebSocket) against the in-process env, and many
sessions held open on one server.

    python3 bench/remote_step.py [--repeat 200] [--tasks tasks] [--task ID] [--sessions 64]

Candidates: `RemoteSWEEnv(transport="http").step(echo hi)` and `RemoteSWEEnv(transport="ws")`,
each with its own session on a `swe-env serve` subprocess on 127.0.0.1.
Baseline: `SWEEnv.step(echo hi)` in this process, measured alternately with them.
Then `--sessions` RemoteSWEEnv (WebSocket) sessions are opened on the same server and held
open together while each steps once; errors are counted, never asserted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import _timing as T

from swe_env import SWEEnv
from swe_env.client import RemoteSWEEnv
from swe_env.runtime import engine

ACTION = {"tool": "bash", "command": "echo hi"}


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--task", default=None, help="task id (default: the first task)")
        parser.add_argument("--sessions", type=int, default=64, help="sessions held open at once (default 64)")

    args = T.parse_args("remote step latency: HTTP and WebSocket vs in-process", default_repeat=200, argv=argv, default_warmup=10, extra=extra)
    T.sigterm_as_exit()
    tasks_path = T.resolve_tasks(args.tasks)
    T.header("bench/remote_step.py", args)
    run_id = f"bench-remote-{uuid.uuid4().hex[:8]}"
    server, url = start_server(tasks_path, run_id, args.sessions)
    local = SWEEnv(tasks=tasks_path, max_steps=1_000_000, grade_on_truncation=False)
    remotes = {transport: RemoteSWEEnv(url, transport=transport, max_steps=1_000_000, grade_on_truncation=False) for transport in ("http", "ws")}
    held: list[RemoteSWEEnv] = []
    try:
        task_id = args.task or local.tasks[0].id
        print(f"task: {task_id}  server: {url} (subprocess, run id {run_id})")
        for env in (local, *remotes.values()):
            env.reset(options={"task_id": task_id})
            observation = env.step(ACTION)[0]
            if not observation.startswith("hi\n"):
                raise RuntimeError(f"{type(env).__name__} said {observation!r}")
        samples = T.measure_interleaved(
            {"local": lambda: local.step(ACTION), "http": lambda: remotes["http"].step(ACTION), "ws": lambda: remotes["ws"].step(ACTION)},
            args.repeat,
            args.warmup,
        )
        for env in (local, *remotes.values()):
            env.close()

        # Many sessions at once: open them all (a few at a time), then every one steps while all are open.
        held = [RemoteSWEEnv(url, transport="ws", max_steps=1_000_000, grade_on_truncation=False) for _ in range(args.sessions)]
        errors: list[str] = []

        def open_one(env: RemoteSWEEnv) -> None:
            try:
                env.reset(options={"task_id": task_id})
            except Exception as exc:  # noqa: BLE001 - counted and printed, not raised
                errors.append(f"reset: {exc}")

        def step_one(env: RemoteSWEEnv) -> float:
            started = time.perf_counter()
            try:
                observation = env.step(ACTION)[0]
                if not observation.startswith("hi\n"):
                    errors.append(f"step said {observation[:100]!r}")
            except Exception as exc:  # noqa: BLE001
                errors.append(f"step: {exc}")
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(open_one, held))
        opened = time.perf_counter() - started
        open_now = len(engine.client().containers.list(filters={"label": f"swe_env.run={run_id}"}))
        with ThreadPoolExecutor(max_workers=args.sessions) as pool:
            concurrent_steps = list(pool.map(step_one, held))
    finally:
        for env in (local, *remotes.values(), *held):
            try:
                env.close()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)

    T.table(
        [
            ("SWEEnv.step 'echo hi' (in process, baseline)", samples["local"]),
            ("RemoteSWEEnv.step over HTTP", samples["http"]),
            ("RemoteSWEEnv.step over WebSocket", samples["ws"]),
            (f"{args.sessions} WebSocket sessions stepping at once", concurrent_steps),
        ]
    )
    base = T.median(samples["local"])
    for name in ("http", "ws"):
        candidate = T.median(samples[name])
        print(
            f"{name:>4} p50: {T.ms(candidate)} vs {T.ms(base)} in process: overhead {T.ms(candidate - base)} "
            f"({T.ratio(candidate, base)}); {T.summary(samples[name])}"
        )
    print(f"in process: {T.summary(samples['local'])}")
    print(f"sessions: {args.sessions} opened in {opened:.1f} s, {open_now} containers running at once, {len(errors)} error(s)")
    for error in errors[:10]:
        print(f"  error: {error}")
    left = wait_for_no_containers(run_id)
    print("cleanup: no container of the server's run is left" if not left else f"cleanup: {left} container(s) of the server's run are still present")
    return 1 if (left or T.check_no_leftovers()) else 0


def start_server(tasks_path: str, run_id: str, sessions: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SWE_ENV_RUN_ID": run_id, "SWE_ENV_TOKEN": ""}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swe_env.cli",
            "serve",
            "--tasks",
            tasks_path,
            "--port",
            str(port),
            "--max-sessions",
            str(sessions),
            "--log-level",
            "warning",
        ],
        cwd=T.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, url
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}") from None
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start within 60 s")


def wait_for_no_containers(run_id: str, wait: float = 30.0) -> int:
    deadline = time.monotonic() + wait
    while True:
        left = [c for c in engine.client().containers.list(all=True, filters={"label": f"swe_env.run={run_id}"}) if c.status != "removing"]
        if not left or time.monotonic() > deadline:
            return len(left)
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
