"""Latency of one tool step through SWEEnv, against mini-swe-agent's DockerEnvironment and a fresh
`docker exec` per command, all in the same run.

    python3 bench/step_latency.py [--repeat 300] [--tasks tasks] [--task TASK_ID]

Candidate: `env.step({"tool": "bash", "command": "echo hi"})` (the persistent shell over
the exec socket, plus action parsing, trajectory bookkeeping and the periodic disk check).
Baselines, measured alternately with the candidate: mini-swe-agent's `DockerEnvironment.execute`
(a `docker exec` subprocess per command, on a container of its own from the same image) and
`container.exec_run(["bash", "-c", "echo hi"])` through the Docker SDK on the env's container.
Every row reports mean, p50, p90, p99 and max: the mean is what a training run's throughput is
made of, and a slow step every tenth shows only in it and the tail. The engine calls the env made
per step are counted too (every HTTP request of the Docker client during the timed steps).
Also shown: the shell alone (`sandbox.run`, no env bookkeeping), the `view` and `edit`
tools on a 5,000-line file, and a command printing 10 MB (time, and the peak of Python
allocations while its output is read, which the head+tail cap keeps small).
"""

from __future__ import annotations

import sys
import tracemalloc

import _timing as T

from swe_env import SWEEnv
from swe_env.runtime import engine

SMALL_FILE = "bench_5000_lines.py"
SMALL_TEXT = "".join(f"line_{n} = {n}  # alpha\n" if n == 2500 else f"line_{n} = {n}\n" for n in range(1, 5001))
BIG_OUTPUT = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 10000000"


def main(argv: list[str] | None = None) -> int:
    args = T.parse_args(
        "step latency: persistent shell vs docker exec per command",
        default_repeat=300,
        argv=argv,
        extra=lambda p: p.add_argument("--task", default=None, help="task id (default: the first task)"),
    )
    T.sigterm_as_exit()
    tasks_path = T.resolve_tasks(args.tasks)
    T.header("bench/step_latency.py", args)
    # Enough steps for the whole run, and never grade here: only the tools are measured.
    env = SWEEnv(tasks=tasks_path, max_steps=1_000_000, grade_on_truncation=False)
    minis: list = []
    try:
        task_id = args.task or env.tasks[0].id
        env.reset(options={"task_id": task_id})
        container = env.sandbox.container
        print(f"task: {task_id}  container: {container.name}")

        bash_action = {"tool": "bash", "command": "echo hi"}

        def step_bash():
            observation, _r, _term, _trunc, _info = env.step(bash_action)
            return observation

        def shell_only():
            return env.sandbox.run("echo hi")

        def docker_exec():
            return container.exec_run(["bash", "-c", "echo hi"])

        mini = start_mini(env.sandbox.image, env.sandbox.workdir)
        minis.append(mini)

        def mini_execute():
            return mini.execute({"command": "echo hi"})

        calls = {"on": False, "n": 0}

        def count_call(response, *_args, **_kwargs):
            calls["n"] += calls["on"]
            return response

        engine.client().api.hooks["response"].append(count_call)

        def step_counted():
            calls["on"] = True
            try:
                return step_bash()
            finally:
                calls["on"] = False

        # Sanity: all three do the same work.
        observation = step_bash()
        check(observation.startswith("hi\n"), f"env.step said {observation!r}")
        shell_result = shell_only()
        check(shell_result.exit_code == 0 and shell_result.output.strip() == "hi", f"shell said {shell_result!r}")
        exec_result = docker_exec()
        check(exec_result.exit_code == 0 and exec_result.output == b"hi\n", f"docker exec said {exec_result!r}")
        mini_result = mini_execute()
        check(mini_result["returncode"] == 0 and mini_result["output"].strip() == "hi", f"mini said {mini_result!r}")

        bash = T.measure_interleaved(
            {"step": step_counted, "shell": shell_only, "exec": docker_exec, "mini": mini_execute},
            args.repeat,
            args.warmup,
        )
        calls_per_step = calls["n"] / max(len(bash["step"]) + args.warmup, 1)

        # What one disk check costs: the host's walk of the frozen layer (what a step pays every tenth
        # step), against the engine's figures it replaced (SizeRw and the change list: a walk each).
        sandbox = env.sandbox
        checks = T.measure_interleaved({"host": sandbox.check_disk}, args.repeat, args.warmup)
        engine_checks = T.measure_interleaved(
            {"engine": lambda: (sandbox.disk.used(), sandbox.disk.files_created())}, max(3, min(args.repeat, 300) // 30), 1
        )

        # File tools on a small file (40 lines); the edit flips one word back and forth.
        env.step({"tool": "create", "path": SMALL_FILE, "content": SMALL_TEXT})
        view_action = {"tool": "view", "path": SMALL_FILE, "range": [2490, 2510]}
        observation = env.step(view_action)[0]
        check("line_2500 = 2500  # alpha" in observation, f"view said {observation[:200]!r}")
        state = {"word": "alpha"}

        def step_edit():
            old = state["word"]
            new = "beta" if old == "alpha" else "alpha"
            observation = env.step({"tool": "edit", "path": SMALL_FILE, "old": f"2500  # {old}", "new": f"2500  # {new}"})[0]
            if not observation.startswith("edited"):
                raise RuntimeError(f"edit failed: {observation[:200]}")
            state["word"] = new

        def step_view():
            return env.step(view_action)

        files = T.measure_interleaved({"view": step_view, "edit": step_edit}, max(30, args.repeat // 10), args.warmup)

        big_action = {"tool": "bash", "command": BIG_OUTPUT}
        peaks = []

        def step_big():
            tracemalloc.start()
            try:
                observation = env.step(big_action)[0]
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
            check("cut from the middle" in observation, f"10 MB output was not cut: {observation[-200:]!r}")

        big = T.measure_interleaved({"big": step_big}, max(3, min(args.repeat, 30) // 6), 1)
    finally:
        env.close()
        for mini in minis:  # removed here, not by its own background `docker stop`
            engine.remove_quietly(mini.container_id)
            mini.container_id = None

    T.table(
        [
            ("env.step bash 'echo hi' (persistent shell)", bash["step"]),
            ("sandbox.run 'echo hi' (shell only, no env)", bash["shell"]),
            ("container.exec_run 'echo hi' (docker exec)", bash["exec"]),
            ("mini-swe-agent DockerEnvironment.execute 'echo hi'", bash["mini"]),
            ("disk check: the host's walk of the frozen layer", checks["host"]),
            ("disk check: the engine's SizeRw + change list", engine_checks["engine"]),
            (f"env.step view ({SMALL_FILE}, 21 of 5,000 lines)", files["view"]),
            (f"env.step edit ({SMALL_FILE}, one word)", files["edit"]),
            ("env.step bash printing 10 MB", big["big"]),
        ]
    )
    step_mean, mini_mean = T.mean(bash["step"]), T.mean(bash["mini"])
    print(
        f"step mean: {T.ms(step_mean)} vs mini-swe-agent {T.ms(mini_mean)}: {T.ratio(step_mean, mini_mean)} "
        f"(goal: 20x); vs docker exec {T.ms(T.mean(bash['exec']))}: {T.ratio(step_mean, T.mean(bash['exec']))}"
    )
    print(
        f"step p99: {T.ms(T.percentile(bash['step'], 99))} (goal: 20 ms), max {T.ms(max(bash['step']))}; "
        f"mini-swe-agent p99 {T.ms(T.percentile(bash['mini'], 99))}; engine calls per step: {calls_per_step:.3f}"
    )
    step, execd = T.median(bash["step"]), T.median(bash["exec"])
    print(f"step p50: {T.ms(step)} (persistent shell) vs {T.ms(execd)} (docker exec per command): {T.ratio(step, execd)}")
    print(f"step p90: {T.ms(T.percentile(bash['step'], 90))} (persistent shell) vs {T.ms(T.percentile(bash['exec'], 90))} (docker exec per command)")
    view, edit = T.median(files["view"]), T.median(files["edit"])
    print(f"view p50: {T.ms(view)} ({T.times(view, execd)} a docker exec), edit p50: {T.ms(edit)} ({T.times(edit, execd)} a docker exec)")
    print(
        f"10 MB output p50: {T.ms(T.median(big['big']))}, peak Python allocations while reading it: "
        f"{max(peaks) / 1e6:.1f} MB (tracemalloc; the observation keeps 10,000 characters)"
    )
    return 1 if T.check_no_leftovers() else 0


def start_mini(image: str, workdir: str):
    """mini-swe-agent's DockerEnvironment on the same image, its container labelled as ours (so the
    leftover check sees it) and without network, as the env's."""
    import logging

    from minisweagent.environments.docker import DockerEnvironment

    logging.getLogger("minisweagent").setLevel(logging.WARNING)  # its start logs the whole docker command

    labels = [arg for key, value in engine.managed_labels("bench").items() for arg in ("--label", f"{key}={value}")]
    return DockerEnvironment(image=image, cwd=workdir, run_args=["--rm", "--network", "none", *labels])


def check(ok: bool, message: str) -> None:
    """Make sure the candidate and the baseline do the same work (never used on times)."""
    if not ok:
        raise RuntimeError(message)


def step_bash_cmd(env: SWEEnv, command: str) -> str:
    observation = env.step({"tool": "bash", "command": command})[0]
    if not observation.rstrip().endswith("[exit code 0]"):
        raise RuntimeError(f"setup command failed: {observation[:300]}")
    return observation


if __name__ == "__main__":
    sys.exit(main())
