"""Shared helpers of the benchmarks: timing, percentiles, tables, arguments, cleanup checks.

Benchmarks print medians (and p90) with a baseline measured in the same run and the ratio
between them; they never assert on times. Every container they start is removed, and
`check_no_leftovers` confirms it at the end of a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from swe_env.runtime import engine  # noqa: E402  (after the sys.path fix so a checkout works uninstalled)

OWNER = f"{socket.gethostname()}:{os.getpid()}"
"""The owner label swe-env puts on this process's containers (see engine.managed_labels)."""


# ---------------------------------------------------------------- arguments and setup


def parse_args(
    description: str,
    default_repeat: int,
    argv: list[str] | None = None,
    default_warmup: int = 2,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=default_repeat, help=f"timed repetitions per measurement (default {default_repeat})")
    parser.add_argument("--tasks", default="tasks", help="task file or folder (default: tasks)")
    parser.add_argument("--warmup", type=int, default=default_warmup, help=f"untimed repetitions first (default {default_warmup})")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


def resolve_tasks(path: str) -> str:
    """The tasks path as given, or relative to the repository root when run from elsewhere."""
    candidate = Path(path)
    if not candidate.exists() and not candidate.is_absolute() and (ROOT / candidate).exists():
        return str(ROOT / candidate)
    return path


def load_selected_tasks(args: argparse.Namespace) -> list:
    """The tasks of `--tasks`, only those named by `--task` when it was given."""
    from swe_env.data.task import load_tasks

    found = load_tasks(resolve_tasks(args.tasks))
    return [task for task in found if task.id in args.task] if getattr(args, "task", None) else found


def sigterm_as_exit() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks remove containers on `kill` too."""

    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def machine_line() -> str:
    try:
        server = engine.client().version().get("Version", "?")
    except Exception:  # noqa: BLE001 - informational only
        server = "?"
    return f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}, Docker engine {server}, {platform.system()} {platform.release()}"


def other_managed_containers() -> int:
    """Managed containers of other processes running now (they make the figures noisy)."""
    # sparse: the list's own labels, no inspect per container (one stuck container would stall the header)
    containers = engine.client().containers.list(filters={"label": f"{engine.MANAGED_LABEL}=1"}, sparse=True)
    return sum(1 for c in containers if (c.attrs.get("Labels") or {}).get("swe_env.owner") != OWNER)


def header(title: str, args: argparse.Namespace) -> None:
    print(title)
    print(machine_line())
    busy = other_managed_containers()
    note = f"; NOTE: {busy} swe-env container(s) of other processes were running" if busy else ""
    print(f"repeat={args.repeat} warmup={args.warmup} tasks={args.tasks}{note}")
    print()


# ---------------------------------------------------------------- timing


def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of fn takes (perf_counter)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(fn: Callable[[], object], repeat: int, warmup: int = 0) -> list[float]:
    """`warmup` untimed calls, then `repeat` timed ones; returns the samples in seconds."""
    for _ in range(warmup):
        fn()
    return [time_call(fn) for _ in range(repeat)]


def measure_interleaved(fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 0) -> dict[str, list[float]]:
    """Like `measure` for several functions, alternating them each round.

    Alternating spreads drift (other load on the machine, a warming page cache) evenly
    over the candidate and its baseline instead of favouring whichever ran second.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            samples[name].append(time_call(fn))
    return samples


def cpu_busy_seconds() -> float | None:
    """Core-seconds the whole machine has spent not idle since boot (Linux /proc/stat), or None.

    Sampled around a run, it shows how much of the machine the run kept busy: the engine,
    the containers and this process together, which is what bounds any parallel speed-up.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    data = sorted(samples)
    if not data:
        raise ValueError("no samples")
    if len(data) == 1:
        return data[0]
    position = (len(data) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def median(samples: Iterable[float]) -> float:
    return statistics.median(list(samples))


# ---------------------------------------------------------------- printing


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mean(samples: Iterable[float]) -> float:
    return statistics.fmean(list(samples))


def summary(samples: list[float]) -> str:
    """'mean 1.2 ms, p50 1.0 ms, p90 1.5 ms, p99 3.0 ms, max 9.0 ms' (the tail shows, not only the median)."""
    return (
        f"mean {ms(mean(samples))}, p50 {ms(median(samples))}, p90 {ms(percentile(samples, 90))}, "
        f"p99 {ms(percentile(samples, 99))}, max {ms(max(samples))}"
    )


def table(rows: list[tuple[str, list[float]]], title: str = "") -> None:
    """One row per measurement: n, mean, p50, p90, p99, max (milliseconds). The mean and the tail are
    what throughput is made of; a median alone hides a slow step every tenth."""
    width = max([len(name) for name, _ in rows] + [len("measurement")])
    if title:
        print(title)
    heads = ("mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms")
    print(f"  {'measurement':<{width}}  {'n':>4}  " + "  ".join(f"{head:>9}" for head in heads))
    for name, samples in rows:
        figures = (mean(samples), median(samples), percentile(samples, 90), percentile(samples, 99), max(samples))
        print(f"  {name:<{width}}  {len(samples):>4}  " + "  ".join(f"{value * 1000:>9.1f}" for value in figures))
    print()


def ratio(candidate: float, baseline: float) -> str:
    """'14.6x faster' / '2.0x slower' for candidate against baseline (both seconds)."""
    if candidate <= 0 or baseline <= 0:
        return "ratio undefined"
    if candidate <= baseline:
        return f"{baseline / candidate:.1f}x faster"
    return f"{candidate / baseline:.1f}x slower"


def times(candidate: float, baseline: float) -> str:
    """candidate as a multiple of baseline, e.g. '0.02x'."""
    if baseline <= 0:
        return "ratio undefined"
    value = candidate / baseline
    return f"{value:.3f}x" if value < 0.1 else f"{value:.2f}x"


# ---------------------------------------------------------------- cleanup


def own_containers(extra_label: str | None = None) -> list:
    """Containers (any state) that this process started through swe-env or the benchmarks."""
    filters = {"label": [f"{engine.MANAGED_LABEL}=1", f"swe_env.owner={OWNER}"]}
    if extra_label:
        filters["label"].append(extra_label)
    return engine.client().containers.list(all=True, filters=filters, sparse=True)


def check_no_leftovers(wait: float = 10.0) -> int:
    """Wait until none of this process's containers remain; print and return how many are left.

    Removal of an auto-remove container can still be in flight for a moment after
    `remove` returns "already in progress", hence the short wait.
    """
    deadline = time.monotonic() + wait
    left = own_containers()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = own_containers()
    if left:
        names = ", ".join(",".join(c.attrs.get("Names") or [c.id[:12]]).lstrip("/") for c in left)
        print(f"cleanup: {len(left)} container(s) of this run are still present: {names}")
    else:
        print("cleanup: no container of this run is left")
    return len(left)
