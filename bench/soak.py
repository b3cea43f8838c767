"""Soak: many episodes of a mixed, misbehaving scripted agent on worker threads.

    python3 bench/soak.py [--episodes 200] [--workers 8] [--tasks tasks]

Each episode plays one of six scripts, in turn: normal work then submit (graded), a
command past its timeout, a command printing 20 MB, an agent that crashes mid-episode
(the env is reset under it), garbage actions, and a fork bomb (steps go on until the
container's processes are stopped, then the shell must answer again). Every episode also steps `echo hi`
once, whose latency is compared between the first and the last tenth of the run (the
baseline is the start of the same run: drift beyond 2x would mean something
accumulates). Printed: episodes completed, failures by kind, host RSS growth of this
driver, and containers left (must be 0). It never asserts on times.
"""

from __future__ import annotations

import argparse
import collections
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import _timing as T

from swe_env import SWEEnv
from swe_env.task import load_tasks

KINDS = ["normal", "timeout", "huge_output", "agent_crash", "garbage", "fork_bomb"]


class AgentCrash(Exception):
    """The scripted agent gives up mid-episode, as a buggy agent would."""


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def play(env: SWEEnv, task_id: str, kind: str) -> float:
    """One episode; returns the latency of its `echo hi` step in seconds."""
    env.reset(options={"task_id": task_id})
    started = time.perf_counter()
    observation = env.step({"tool": "bash", "command": "echo hi"})[0]
    echo_seconds = time.perf_counter() - started
    if not observation.startswith("hi\n"):
        raise RuntimeError(f"echo hi said {observation[:100]!r}")
    if kind == "normal":
        env.step({"tool": "bash", "command": "git status --short | head -5; python -m pytest -q -x 2>&1 | tail -2"})
        env.step({"tool": "view", "path": "."})
        *_, terminated, _truncated, info = env.step({"tool": "submit"})
        if not terminated or info["report"]["status"] != "graded":
            raise RuntimeError(f"grading said {info.get('report', {}).get('status')}")
    elif kind == "timeout":
        observation = env.step({"tool": "bash", "command": "sleep 30", "timeout": 1})[0]
        if "timed out" not in observation:
            raise RuntimeError("a timeout was not reported")
    elif kind == "huge_output":
        observation = env.step({"tool": "bash", "command": "yes | head -c 20000000"})[0]
        if "cut from the middle" not in observation:
            raise RuntimeError("20 MB of output was not cut")
    elif kind == "agent_crash":
        env.step({"tool": "bash", "command": "sleep 0.2 &"})
        raise AgentCrash()
    elif kind == "fork_bomb":
        env.step({"tool": "bash", "command": "bomb() { bomb | bomb & }; while :; do bomb; done &", "timeout": 5})
        for _ in range(40):  # the bomb fills the pid limit in the background, sooner or later
            observation = env.step({"tool": "bash", "command": "sleep 0.2; echo alive", "timeout": 5})[0]
            if "every process" in observation:
                break
        else:
            raise RuntimeError("the fork bomb was never stopped")
        observation = env.step({"tool": "bash", "command": "echo alive"})[0]
        if not observation.startswith("alive\n"):
            raise RuntimeError(f"after the fork bomb the shell said {observation[:100]!r}")
    else:
        for junk in ("{not json", b"\xff\xfe", {"tool": "edit"}, "<tool: nope>\nx\n</tool>", 42):
            observation = env.step(junk)[0]
            if not observation.startswith("Error:"):
                raise RuntimeError(f"garbage was accepted: {observation[:100]!r}")
    return echo_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="soak: many misbehaving episodes on worker threads")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--tasks", default="tasks")
    args = parser.parse_args(argv)
    T.sigterm_as_exit()
    tasks = load_tasks(T.resolve_tasks(args.tasks))
    print("bench/soak.py")
    print(T.machine_line())
    print(f"episodes={args.episodes} workers={args.workers} tasks={len(tasks)}")
    print()

    local = threading.local()
    envs: list[SWEEnv] = []
    lock = threading.Lock()
    failures: collections.Counter[str] = collections.Counter()
    completed: collections.Counter[str] = collections.Counter()
    echo: list[tuple[int, float]] = []

    def worker_env() -> SWEEnv:
        if not hasattr(local, "env"):
            local.env = SWEEnv(tasks=tasks, max_steps=50, grade_on_truncation=False, output_limit=10_000)
            with lock:
                envs.append(local.env)
        return local.env

    def one(index: int) -> None:
        kind = KINDS[index % len(KINDS)]
        task = tasks[index % len(tasks)]
        try:
            seconds = play(worker_env(), task.id, kind)
        except AgentCrash:
            with lock:
                completed[kind] += 1  # the crash is the script; the env must survive it
            return
        except Exception as exc:  # noqa: BLE001 - counted by kind, the run goes on
            with lock:
                failures[f"{kind}: {type(exc).__name__}: {str(exc)[:80]}"] += 1
            return
        with lock:
            completed[kind] += 1
            echo.append((index, seconds))

    rss_before = rss_mb()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(one, range(args.episodes)))
    finally:
        for env in envs:
            env.close()
    elapsed = time.monotonic() - started
    rss_after = rss_mb()

    print(f"episodes completed: {sum(completed.values())} of {args.episodes} in {elapsed:.0f} s "
          f"({sum(completed.values()) / elapsed * 60:.0f} per minute)")
    print("  by kind: " + ", ".join(f"{kind} {completed[kind]}" for kind in KINDS))
    print(f"failures: {sum(failures.values())}")
    for what, count in failures.most_common():
        print(f"  {count} x {what}")
    echo.sort()
    tenth = max(1, len(echo) // 10)
    if echo:
        first, last = [s for _, s in echo[:tenth]], [s for _, s in echo[-tenth:]]
        print(f"echo hi step, first tenth: p50 {T.ms(T.median(first))} p99 {T.ms(T.percentile(first, 99))}; "
              f"last tenth: p50 {T.ms(T.median(last))} p99 {T.ms(T.percentile(last, 99))}; "
              f"drift {T.median(last) / T.median(first):.2f}x")
    print(f"driver RSS: {rss_before:.0f} MB -> {rss_after:.0f} MB (growth {rss_after - rss_before:+.0f} MB)")
    left = T.check_no_leftovers()
    return 1 if left or failures else 0


if __name__ == "__main__":
    sys.exit(main())
