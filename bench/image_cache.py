"""Cost of `ImageBuilder().ensure(task)` on a cache hit, against starting one container.

    python3 bench/image_cache.py [--repeat 10] [--tasks tasks]

Candidate: `ImageBuilder().ensure(task)` for every bundled task once its image exists
(tags are hashes of the inputs, so a hit should be one image lookup).
Baseline: `Sandbox(image, ...).start()` followed by `close()` (one container started and
removed), measured in the same rounds as the candidate.
Images that are missing are built once first (untimed); cold builds are not repeated.
"""

from __future__ import annotations

import sys

import _timing as T

from swe_env import load_tasks
from swe_env.build.images import ImageBuilder, image_exists
from swe_env.runtime.sandbox import Sandbox


def main(argv: list[str] | None = None) -> int:
    args = T.parse_args("image cache hit vs one container start", default_repeat=10, argv=argv)
    T.sigterm_as_exit()
    tasks = load_tasks(T.resolve_tasks(args.tasks))
    T.header("bench/image_cache.py", args)

    builder = ImageBuilder()
    images = {}
    for task in tasks:
        cached = image_exists(builder.instance_tag(task))
        if not cached:
            print(f"{task.id}: image missing, building it once (untimed)...", flush=True)
        images[task.id] = builder.ensure(task)
    first = tasks[0]

    def ensure(task):
        return lambda: ImageBuilder().ensure(task)

    def start_and_close():
        sandbox = Sandbox(
            images[first.id], first.limits, first.environment.workdir, first.environment.env, kind="bench", labels={"bench": "image_cache"}
        )
        try:
            sandbox.start()
        finally:
            sandbox.close()

    # start_and_close removes its container even when interrupted; checked at the end.
    samples = T.measure_interleaved({**{task.id: ensure(task) for task in tasks}, "sandbox": start_and_close}, args.repeat, args.warmup)

    every = [value for task in tasks for value in samples[task.id]]
    T.table(
        [(f"ensure {task.id}", samples[task.id]) for task in tasks]
        + [
            (f"ensure, all {len(tasks)} tasks", every),
            ("Sandbox.start() + close() (baseline)", samples["sandbox"]),
        ]
    )
    hit, start = T.median(every), T.median(samples["sandbox"])
    print(
        f"ensure p50 (cache hit, {len(tasks)} tasks): {T.ms(hit)} vs {T.ms(start)} (container start + close): "
        f"{T.times(hit, start)} of a container start ({T.ratio(hit, start)})"
    )
    return 1 if T.check_no_leftovers() else 0


if __name__ == "__main__":
    sys.exit(main())
