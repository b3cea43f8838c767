"""Latency of `env.reset` (container start + shell attach), against a bare `docker run -d`.

    python3 bench/reset_latency.py [--repeat 10] [--tasks tasks]

Candidate: `env.reset(options={"task_id": ...})`, cycling through the tasks. The previous
episode is closed (untimed) first, so the figure is the reset alone: image cache lookup,
container start with limits, persistent shell attach.
Also: `env.reset` with `warm_pool=1` (a started container taken from the pool).
Baseline: `client.containers.run(image, ["sleep", "60"], detach=True, auto_remove=True)`
with the same image, in the same rounds. Teardown (env.close / container.remove) and the
parts of a reset (Sandbox.start, start_shell) are shown too.
"""

from __future__ import annotations

import sys

import _timing as T
import docker.errors

from swe_env import SWEEnv
from swe_env.runtime import engine
from swe_env.runtime.sandbox import Sandbox


def main(argv: list[str] | None = None) -> int:
    # One warm-up round: each round starts three containers.
    args = T.parse_args("reset latency: env.reset vs docker run -d", default_repeat=10, argv=argv, default_warmup=1)
    T.sigterm_as_exit()
    tasks_path = T.resolve_tasks(args.tasks)
    T.header("bench/reset_latency.py", args)
    client = engine.client()
    samples: dict[str, list[float]] = {name: [] for name in ("reset", "close", "run", "remove", "start", "shell", "sandbox_close")}

    env = SWEEnv(tasks=tasks_path)
    try:
        tasks = env.tasks
        images = {task.id: env.builder.ensure(task) for task in tasks}  # builds missing images, untimed

        for round_index in range(args.warmup + args.repeat):
            task = tasks[round_index % len(tasks)]
            timed = round_index >= args.warmup
            image = images[task.id]

            # Candidate: a reset, then its teardown (timed separately).
            reset = T.time_call(lambda task=task: env.reset(options={"task_id": task.id}))
            close = T.time_call(env.close)

            # Baseline: a bare detached container of the same image, then its removal.
            holder = []
            try:
                run = T.time_call(
                    lambda holder=holder, image=image: holder.append(
                        client.containers.run(
                            image,
                            ["sleep", "60"],
                            detach=True,
                            auto_remove=True,
                            labels=engine.managed_labels("bench", bench="reset_latency"),
                        )
                    )
                )
            finally:
                remove = T.time_call(lambda holder=holder: remove_container(holder[0] if holder else None))

            # The parts of a reset: container start with swe-env's limits, then the shell.
            sandbox = Sandbox(
                image, env._limits(task), task.environment.workdir, task.environment.env, kind="bench", labels={"bench": "reset_latency"}
            )
            try:
                start = T.time_call(sandbox.start)
                shell = T.time_call(sandbox.start_shell)
            finally:
                sandbox_close = T.time_call(sandbox.close)

            if timed:
                for name, value in (
                    ("reset", reset),
                    ("close", close),
                    ("run", run),
                    ("remove", remove),
                    ("start", start),
                    ("shell", shell),
                    ("sandbox_close", sandbox_close),
                ):
                    samples[name].append(value)
    finally:
        env.close()

    # Warm pool: the same task each round; the pool refills between rounds (untimed), as it
    # does while an agent works. The timed reset includes handing the last episode's container
    # to the pool for removal.
    samples["warm"] = []
    warm_env = SWEEnv(tasks=tasks_path, warm_pool=1)
    try:
        task_id = warm_env.tasks[0].id
        for round_index in range(args.warmup + 1 + args.repeat):
            warm_env._pool.wait_until_full(120)
            seconds = T.time_call(lambda: warm_env.reset(options={"task_id": task_id}))
            if round_index > args.warmup:  # the first reset of a task is cold
                samples["warm"].append(seconds)
        hits, misses = warm_env._pool.hits, warm_env._pool.misses
    finally:
        warm_env.close()

    T.table(
        [
            ("env.reset(task_id), warm pool of 1", samples["warm"]),
            ("env.reset(task_id) (start + shell attach)", samples["reset"]),
            ("docker run -d sleep 60 (baseline)", samples["run"]),
            ("  part: Sandbox.start() (limits, init)", samples["start"]),
            ("  part: Sandbox.start_shell()", samples["shell"]),
            ("teardown: env.close()", samples["close"]),
            ("teardown: container.remove(force) (baseline)", samples["remove"]),
            ("teardown: Sandbox.close()", samples["sandbox_close"]),
        ]
    )
    reset, run = T.median(samples["reset"]), T.median(samples["run"])
    print(f"reset p50: {T.ms(reset)} (env.reset) vs {T.ms(run)} (docker run -d): {T.ratio(reset, run)} ({T.ms(reset - run)} of swe-env overhead)")
    print(f"reset p90: {T.ms(T.percentile(samples['reset'], 90))} (env.reset) vs {T.ms(T.percentile(samples['run'], 90))} (docker run -d)")
    warm = T.median(samples["warm"])
    print(
        f"warm-pool reset p50: {T.ms(warm)}, p90: {T.ms(T.percentile(samples['warm'], 90))} "
        f"vs cold p50 {T.ms(reset)}: {T.ratio(warm, reset)} (pool hits {hits}, misses {misses})"
    )
    return 1 if T.check_no_leftovers() else 0


def remove_container(container) -> None:
    if container is None:
        return
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise


if __name__ == "__main__":
    sys.exit(main())
