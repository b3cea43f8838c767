"""Live episodes: N envs opened and held open at once, each stepping, then closed.

    python3 bench/live.py [--episodes 64] [--openers 16] [--steps 5] [--task ID] [--compare [--rounds 1]]

Opens `--episodes` `SWEEnv`s (one `reset` each, `--openers` at a time, as a trainer's workers
would), holds them all open while every one steps `echo hi` `--steps` times (the steps of
all episodes run together, `--openers` at a time), then closes them all. Printed:

- the open rate (episodes per second over the whole opening) and each open's latency;
- the step latency under that load (mean, p50, p90, p99, max) and failures of any kind;
- memory per episode: the container's own (its cgroup's usage), the driver's (RSS growth over
  the episodes held open), and the machine's (MemAvailable's fall, which also counts the engine,
  containerd's per-container shim and the kernel);
- the engine calls per open (each HTTP request swe-env makes to the engine, by kind, each timed: mean and
  p90 of its answer) and where an open's time goes (the env's construction, the image look-up, the
  container's start, the first shell's start);
- the baseline, measured in the same run at the same concurrency: as many bare containers started
  with the sandbox's own options (`engine.run_container`, the same image, limits and labels, no
  shell, nothing else), which is the engine's ceiling for opens on this machine;
- where the CPU of the opening went (this driver, dockerd, containerd and its shims, the rest)
  and so the limiting resource.

With `--compare`, the whole open/step/close is run twice in the same process, first with the episode's
first shell started by exec (`lifecycle.ATTACHED_SHELL` off, as before) and then through the container's
attached stdio (the default), `--rounds` times in turn, and the two are printed side by side.

Every container it starts is removed (also on Ctrl-C and SIGTERM); the last line says so.
"""

from __future__ import annotations

import collections
import os
import re
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _timing as T

from swe_env import SWEEnv
from swe_env.build.images import ImageBuilder
from swe_env.runtime import engine, lifecycle
from swe_env.runtime import pool as sandbox_pool
from swe_env.runtime.agent_shell import AgentShell
from swe_env.runtime.lifecycle import Lifecycle

_ID = re.compile(r"/(?:[0-9a-f]{64}|[0-9a-f]{12})(?=/|$)")


class EngineCalls:
    """Counts and times the HTTP requests this process makes to the engine, by method and path (ids folded);
    a hijacked stream (an attach, an exec's start) is timed to the engine's answer, not the stream's end."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        api = engine.client().api
        original = api.send

        def send(request, **kwargs):
            path = request.path_url.split("?")[0]
            path = re.sub(r"^/images/.+/json$", "/images/NAME/json", re.sub(r"^/v[0-9.]+", "", _ID.sub("/ID", path)))
            started = time.perf_counter()
            try:
                return original(request, **kwargs)
            finally:
                with self._lock:
                    self.counts[f"{request.method} {path}"] += 1
                    self.seconds[f"{request.method} {path}"].append(time.perf_counter() - started)

        api.send = send

    def take(self) -> tuple[collections.Counter[str], dict[str, list[float]]]:
        with self._lock:
            counts, self.counts = self.counts, collections.Counter()
            seconds, self.seconds = self.seconds, collections.defaultdict(list)
        return counts, seconds


class Stopwatch:
    """Times calls of a few methods on the open's path (bench only: the class attributes are wrapped while
    it runs): the env's construction, the image look-up, the container's start, the first shell's start."""

    PARTS = {
        "SWEEnv(...)": (SWEEnv, "__init__"),
        "image look-up (ensure)": (ImageBuilder, "ensure"),
        "container start": (Lifecycle, "start"),
        "first shell start": (AgentShell, "start"),
    }

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self._lock = threading.Lock()
        self._saved = []
        for name, (owner, attribute) in self.PARTS.items():
            original = getattr(owner, attribute)
            self._saved.append((owner, attribute, original))
            setattr(owner, attribute, self._timed(name, original))

    def _timed(self, name, original):
        def timed(*args, **kwargs):
            first = name != "first shell start" or args[0].session is None
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if first:
                    with self._lock:
                        self.seconds[name].append(time.perf_counter() - started)

        return timed

    def take(self) -> dict[str, list[float]]:
        with self._lock:
            seconds, self.seconds = self.seconds, collections.defaultdict(list)
        return seconds


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def process_cpu() -> dict[int, tuple[str, float, str | None]]:
    """CPU seconds (user + system, with waited-for children such as runc) so far of the engine's processes,
    by pid: dockerd, containerd and the containerd shims."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if name in ("dockerd", "containerd") or name.startswith("containerd-shim"):
            key = "containerd-shim" if name.startswith("containerd-shim") else name
            container = _shim_container(int(entry.name)) if key == "containerd-shim" else None
            found[int(entry.name)] = (key, sum(int(value) for value in fields[11:15]) / tick, container)  # utime stime cutime cstime
    return found


def cpu_spent(
    before: dict[int, tuple[str, float, str | None]], after: dict[int, tuple[str, float, str | None]], containers: set[str]
) -> dict[str, float]:
    """CPU seconds each kind of engine process spent between two looks: dockerd and containerd whole (the
    engine is shared: other users' work is in it), the shims only of `containers` (ours)."""
    spent: dict[str, float] = collections.defaultdict(float)
    for pid, (name, seconds, container) in after.items():
        if name == "containerd-shim" and container not in containers:
            continue
        spent[name] += seconds - before.get(pid, (name, 0.0, None))[1]
    return dict(spent)


def _shim_container(pid: int) -> str | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return argv[argv.index(b"-id") + 1].decode() if b"-id" in argv[:-1] else None


def machine_tasks() -> int:
    """Processes and threads on the machine: each counts against the kernel's pid_max."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                total += len(os.listdir(entry / "task"))
            except OSError:
                pass
    return total


def pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 1 << 22


PID_HEADROOM = 6000
"""Opening stops while fewer than this many pids are left on the machine (a shared machine's other users
must still be able to fork); the episodes not opened are reported."""


def container_memory(container_id: str) -> int | None:
    """The container's cgroup memory usage (v1 or v2), without its page cache where the kernel says."""
    for base in (f"/sys/fs/cgroup/memory/docker/{container_id}", f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope"):
        folder = Path(base)
        try:
            if (folder / "memory.stat").exists():
                stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
                if "total_rss" in stat:  # v1: resident anonymous memory and shared memory, no page cache
                    return int(stat["total_rss"]) + int(stat.get("total_shmem", 0))
                if "anon" in stat:
                    return int(stat["anon"]) + int(stat.get("shmem", 0))
        except (OSError, ValueError):
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    def extra(parser):
        parser.add_argument("--episodes", type=int, default=64, help="episodes held open at once (default 64)")
        parser.add_argument("--openers", type=int, default=16, help="threads opening (and stepping) at once (default 16)")
        parser.add_argument("--steps", type=int, default=5, help="`echo hi` steps per episode while all are open (default 5)")
        parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the bare-container baseline")
        parser.add_argument("--compare", action="store_true", help="the first shell by exec (as before) and through the attached stdio, in turn")
        parser.add_argument("--rounds", type=int, default=1, help="with --compare: rounds of the two (default 1)")
        parser.add_argument("--task", action="append", help="only this task id (repeatable; default: all bundled tasks)")

    args = T.parse_args("live: N episodes held open at once, each stepping", default_repeat=1, default_warmup=0, argv=argv, extra=extra)
    T.sigterm_as_exit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket or two per open episode
    tasks = T.load_selected_tasks(args)
    T.header("bench/live.py", args)
    builder = ImageBuilder()
    for task in tasks:
        builder.ensure(task)  # builds missing images, untimed
    print(f"episodes={args.episodes} openers={args.openers} steps={args.steps} tasks={len(tasks)}; load average at start {os.getloadavg()[0]:.1f}")
    calls = EngineCalls()
    stopwatch = Stopwatch()
    pool = ThreadPoolExecutor(max_workers=max(1, args.openers), thread_name_prefix="live")
    bare: list[str] = []
    failures: collections.Counter[str] = collections.Counter()
    failure_examples: dict[str, str] = {}
    lock = threading.Lock()

    def failed(stage: str, exc: BaseException) -> None:
        with lock:
            key = f"{stage}: {type(exc).__name__}"
            failures[key] += 1
            failure_examples.setdefault(key, str(exc)[:200])

    def bare_one(n: int, started: list) -> None:
        task = tasks[n % len(tasks)]
        try:
            started.append(
                engine.run_container(
                    builder.ensure(task),
                    ["sleep", "600"],
                    engine.managed_labels("live-baseline"),
                    auto_remove=True,
                    init=True,
                    network_mode="none",
                    mem_limit=task.limits.memory,
                    memswap_limit=task.limits.memory,
                    nano_cpus=int(task.limits.cpus * 1e9),
                    pids_limit=task.limits.pids,
                    cap_drop=["NET_RAW", "MKNOD", "AUDIT_WRITE", "SYS_CHROOT", "SETFCAP"],
                    security_opt=["no-new-privileges"],
                    working_dir=task.environment.workdir,
                    log_config={"type": "none"},
                ).id
            )
        except Exception as exc:  # noqa: BLE001 - counted
            failed("baseline start", exc)

    results: list[dict] = []
    exit_code = 0
    try:
        if args.baseline:
            started = time.perf_counter()
            list(pool.map(lambda n: bare_one(n, bare), range(args.episodes)))
            bare_seconds = time.perf_counter() - started
            list(pool.map(engine.remove_container, bare))
            print(
                f"baseline: {len(bare)} bare containers (the sandbox's options, no shell) started in "
                f"{bare_seconds:.1f} s: {len(bare) / bare_seconds:.2f}/s ({args.openers} at a time)"
            )
            bare.clear()
            calls.take()
        phases = (
            [("exec", False), ("attached", True)] * max(1, args.rounds)
            if args.compare
            else [("attached" if lifecycle.ATTACHED_SHELL else "exec", lifecycle.ATTACHED_SHELL)]
        )
        for label, attached in phases:
            lifecycle.ATTACHED_SHELL = attached
            print(f"\n== first shell: {label} ==")
            results.append(run_phase(label, args, tasks, pool, calls, stopwatch, failed))
        lifecycle.ATTACHED_SHELL = True
        if len(results) > 1:
            print("\n== side by side ==")
            print("  first shell  opened   open/s  open p50 s  open p99 s  engine calls/open  engine CPU ms/open  load avg  retried")
            for result in results:
                print(
                    f"  {result['label']:<11}  {result['opened']:>6}  {result['rate']:>7.2f}  {result['p50']:>10.2f}  "
                    f"{result['p99']:>10.2f}  {result['calls']:>17.1f}  {result['engine_ms']:>18.0f}  "
                    f"{result['load']:>8.1f}  {result['retried']:>7}"
                )
        if failures:
            exit_code = 1
            for key, count in failures.most_common():
                print(f"failure: {key} x{count}: {failure_examples[key]}")
        print(f"failures: {sum(failures.values())}")
    finally:
        list(pool.map(engine.remove_container, bare))
        pool.shutdown(wait=True)
    return 1 if T.check_no_leftovers(wait=60) else exit_code


def run_phase(label: str, args, tasks: list, pool: ThreadPoolExecutor, calls: EngineCalls, stopwatch: Stopwatch, failed) -> dict:
    """Open `--episodes` envs, step each while all are open, close them all; print what was measured."""
    envs: list[SWEEnv | None] = [None] * args.episodes
    lock = threading.Lock()
    opens: list[float] = []
    steps: list[float] = []
    limit = pid_max()
    headroom = {"ok": True, "seen": 0}
    stop_watching = threading.Event()

    def watch_pids() -> None:
        while not stop_watching.is_set():
            used = machine_tasks()
            headroom["seen"] = max(headroom["seen"], used)
            headroom["ok"] = limit - used > PID_HEADROOM
            stop_watching.wait(1.0)

    def open_one(n: int) -> None:
        if not headroom["ok"]:
            failed("not opened: the machine's pids ran low", RuntimeError(f"pid_max {limit}"))
            return
        started = time.perf_counter()
        try:
            env = SWEEnv(tasks)
            envs[n] = env
            env.reset(options={"task_id": tasks[n % len(tasks)].id})
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            failed(f"open ({label})", exc)
            return
        with lock:
            opens.append(time.perf_counter() - started)

    def step_one(n: int) -> None:
        env = envs[n]
        if env is None or env.sandbox is None:
            return
        for _ in range(args.steps):
            started = time.perf_counter()
            try:
                observation, _r, terminated, truncated, _info = env.step({"tool": "bash", "command": "echo hi"})
            except Exception as exc:  # noqa: BLE001 - counted
                failed(f"step ({label})", exc)
                return
            elapsed = time.perf_counter() - started
            if "hi" not in observation or terminated or truncated:
                failed(f"step ({label})", RuntimeError(f"unexpected observation: {observation[:100]!r}"))
                return
            with lock:
                steps.append(elapsed)

    def close_one(n: int) -> None:
        env, envs[n] = envs[n], None
        if env is not None:
            try:
                env.close()
            except Exception as exc:  # noqa: BLE001 - counted
                failed(f"close ({label})", exc)

    try:
        retried0 = sandbox_pool.retried()
        tasks0 = machine_tasks()
        threading.Thread(target=watch_pids, daemon=True).start()
        calls.take()
        stopwatch.take()
        rss0, available0 = rss_bytes(), mem_available()
        cpu0, engine0, self0 = T.cpu_busy_seconds() or 0.0, process_cpu(), time.process_time()
        load0 = os.getloadavg()[0]
        started = time.perf_counter()
        list(pool.map(open_one, range(args.episodes)))
        open_seconds = time.perf_counter() - started
        cpu1, engine1, self1 = T.cpu_busy_seconds() or 0.0, process_cpu(), time.process_time()
        load1 = os.getloadavg()[0]
        open_calls, call_seconds = calls.take()
        parts = stopwatch.take()
        rss1, available1 = rss_bytes(), mem_available()
        tasks1 = machine_tasks()
        stop_watching.set()
        retried = sandbox_pool.retried() - retried0
        live = [env for env in envs if env is not None and env.sandbox is not None]
        ids = {env.sandbox.id for env in live}
        held = [container_memory(container) for container in ids]
        started = time.perf_counter()
        list(pool.map(step_one, range(args.episodes)))
        step_seconds = time.perf_counter() - started
        step_calls, _ = calls.take()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        list(pool.map(close_one, range(args.episodes)))
        close_seconds = time.perf_counter() - started
        rss2 = rss_bytes()

        opened = len(opens)
        print(
            f"opened {opened} of {args.episodes} in {open_seconds:.1f} s: {opened / open_seconds:.2f} opens/s "
            f"({args.openers} at a time); held {len(live)} live at once; load average {load0:.1f} -> {load1:.1f} "
            f"while opening; {retried} opens tried a second time"
        )
        T.table(
            [("open (SWEEnv + reset)", opens), ("step echo hi, all open", steps)]
            if opens and steps
            else [("open (SWEEnv + reset)", opens)]
            if opens
            else [],
            "latency under load",
        )
        if parts:
            T.table(sorted(parts.items(), key=lambda item: -sum(item[1])), "where an open's time goes")
        print(f"steps: {len(steps)} in {step_seconds:.1f} s ({len(steps) / max(step_seconds, 1e-9):.0f}/s); load average while stepping {load:.1f}")
        known = [value for value in held if value is not None]
        if known:
            print(
                f"memory per live episode: container {T.median(known) / 2**20:.2f} MB (median of its cgroup's "
                f"rss + shmem), driver {(rss1 - rss0) / max(1, opened) / 2**20:.2f} MB (RSS {rss0 / 2**20:.0f} -> "
                f"{rss1 / 2**20:.0f} MB), machine {(available0 - available1) / max(1, opened) / 2**20:.2f} MB "
                "(MemAvailable's fall: containers, shims, engine, kernel)"
            )
        print(
            f"machine processes and threads per live episode: {(tasks1 - tasks0) / max(1, opened):.1f} "
            f"({tasks0} -> {tasks1}, peak {headroom['seen']}, pid_max {limit}: the shim's threads, init, main "
            "process and shell count against it)"
        )
        print(f"driver RSS after closing: {rss2 / 2**20:.0f} MB; closed in {close_seconds:.1f} s ({opened / close_seconds:.1f}/s)")
        per_open = sum(open_calls.values()) / max(1, opened)
        print(
            f"engine calls per open: {per_open:.1f} ("
            + ", ".join(f"{name} {count / max(1, opened):.1f}" for name, count in open_calls.most_common())
            + ")"
        )
        if call_seconds:
            T.table(sorted(call_seconds.items(), key=lambda item: -sum(item[1])), "engine calls while opening, each timed to the engine's answer")
        print(f"engine calls per step: {sum(step_calls.values()) / max(1, len(steps)):.2f}")
        busy = cpu1 - cpu0
        spent = cpu_spent(engine0, engine1, ids)
        driver = self1 - self0
        rest = busy - driver - sum(spent.values())
        shares = {"driver (this process)": driver, **spent, "rest (containers, kernel, others' work)": rest}
        print(
            f"CPU while opening: {busy:.1f} core-s over {open_seconds:.1f} s ({busy / open_seconds:.2f} of "
            f"{os.cpu_count()} cores busy); per open: "
            + ", ".join(f"{name} {value / max(1, opened) * 1000:.0f} ms" for name, value in shares.items())
        )
        cores = os.cpu_count() or 1
        engine_cpu = sum(spent.values()) / max(1, opened)
        if busy / open_seconds > 0.85 * cores:
            print(
                f"limiting resource: the CPU (all {cores} cores busy while opening); the engine's share "
                f"(dockerd and containerd whole, so other users' engine work is in it; the shims and runc of our "
                f"containers) is {engine_cpu * 1000:.0f} ms per open: at that cost the engine alone caps opens near "
                f"{cores / max(engine_cpu, 1e-9):.1f}/s on {cores} cores; this driver's share is "
                f"{driver / max(1, opened) * 1000:.0f} ms"
            )
        else:
            print(
                f"limiting resource: not the CPU (cores idle part of the time): waits in the engine "
                f"({engine_cpu * 1000:.0f} ms of engine CPU per open) or in this driver"
            )
        return {
            "label": label,
            "opened": opened,
            "rate": opened / open_seconds,
            "p50": T.median(opens) if opens else 0.0,
            "p99": T.percentile(opens, 99) if opens else 0.0,
            "calls": per_open,
            "engine_ms": engine_cpu * 1000,
            "load": (load0 + load1) / 2,
            "retried": retried,
        }
    finally:
        stop_watching.set()
        list(pool.map(close_one, range(args.episodes)))


if __name__ == "__main__":
    sys.exit(main())
