"""Gold-patch calibration of the sealed recorder: tamper flags, advice and grading overhead on real SWE-bench gold patches.

A gold patch is the upstream fix, so every `report.tampering` flag it gets is a false positive of
the tamper rules (under `reward_policy="strict"` it scores a correct fix 0), and every
`report.suspicious` line a false positive of the text rules (advice). For each instance of the
dataset files (deduplicated: Lite's and Verified's overlap), over the repositories that have a
mirror in `--repo-mirror` (`owner__name` entries), the script builds the instance's image with
the built-in recipes, grades the gold patch once with `Grader(reward_policy="strict")`, and
writes one JSON line per instance to `--out`: resolved, reward, status, every tamper flag split
into its rule and the file:line it was charged to, the advice, the grading's seconds and the
raw test run's inside it (the overhead is the difference: the same baseline as
`swebench_validate.py`), the image build time, and, when the gold patch does not resolve or
the instance cannot run, the cause in one line. A re-run skips the instances already in
`--out` (`--retry` grades those that did not run again), so a long run can be stopped and resumed.

Instances are taken by (repository, version) group, cheapest first, so one env image serves
many: groups whose instance images exist, then those whose env image exists, then by the
repository's build cost and the group's size. At most `--workers` gradings (and builds) run
at a time. The closing summary (also `--summary-only` on an existing file) gives the figure:
gold patches measured, resolved, flagged (by rule, each flag with its file), advice, the
overhead's median and p90, and every instance that did not count, with its cause.

    python bench/calibrate_gold.py --dataset SWE-bench_Verified-test.parquet --dataset SWE-bench_Lite-test.parquet \\
        --repo-mirror DIR [--workers 2] [--repo django/django] [--limit N] [--remove-built] [--summary-only]
"""

from __future__ import annotations

import argparse
import calendar
import itertools
import json
import os
import re
import shutil
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from _timing import check_no_leftovers, machine_line, percentile, sigterm_as_exit

from swe_env.build import repos
from swe_env.build.images import ImageBuilder, ImageBuildError, image_exists
from swe_env.build.repos import RepoError
from swe_env.data.task import Task
from swe_env.grading.grader import Grader, GradingReport
from swe_env.importers import swebench
from swe_env.run import validation
from swe_env.runtime import engine

REPO_COST = {
    "pallets/flask": 0,
    "psf/requests": 1,
    "marshmallow-code/marshmallow": 1,
    "pytest-dev/pytest": 2,
    "pylint-dev/pylint": 3,
    "django/django": 3,
    "sphinx-doc/sphinx": 4,
    "sympy/sympy": 4,
    "mwaskom/seaborn": 5,
    "pydata/xarray": 6,
    "astropy/astropy": 8,
    "scikit-learn/scikit-learn": 8,
    "matplotlib/matplotlib": 9,
}
"""Rough build-and-run cost by repository (C extensions and large suites last); unknown ones get 5."""

_FLAG_WHERE = re.compile(r"^(?P<rule>.*) \((?P<file>[^()]*):(?P<line>\d+|\?)\)$", re.DOTALL)
_NETWORK = validation._NETWORK_SIGNS  # noqa: SLF001 - the one list of network signs


def split_flag(flag: str) -> dict[str, Any]:
    """A sealed hook's flag `why (file:line)` as rule, file and line (the whole text as the rule otherwise)."""
    found = _FLAG_WHERE.match(flag.strip())
    if not found:
        return {"rule": flag.strip(), "file": None, "line": None}
    line = found.group("line")
    return {"rule": found.group("rule"), "file": found.group("file"), "line": int(line) if line.isdigit() else None}


def rule_of(flag_rule: str) -> str:
    """The rule's name without the run's specifics (a path in `opens ... (/proc/12/fd)`, a count)."""
    return re.sub(r"/proc/[^) ]*", "/proc/...", re.sub(r"\d+", "N", flag_rule))


# ---------------------------------------------------------------- choosing and ordering instances


def load_tasks(datasets: list[str], mirror: Path, recipes: str | None = None) -> tuple[list[Task], dict[str, list[str]], dict[str, str]]:
    """(tasks with a mirror, dataset names per instance id, not-runnable instance id -> cause)."""
    records: dict[str, dict] = {}
    names: dict[str, list[str]] = defaultdict(list)
    for path in datasets:
        label = Path(path).stem.replace("SWE-bench_", "").replace("-test", "")
        for record in swebench.read_records(path):
            records.setdefault(record["instance_id"], record)
            names[record["instance_id"]].append(label)
    table = swebench.load_recipes(recipes)
    tasks, skipped = [], {}
    for record in records.values():
        if not (mirror / record["repo"].replace("/", "__")).exists():
            skipped[record["instance_id"]] = f"no mirror of {record['repo']} here (fetch refused or not tried)"
            continue
        try:
            tasks.append(swebench.instance_to_task(record, table, repo_mirror=mirror))
        except swebench.DatasetError as exc:
            skipped[record["instance_id"]] = f"cannot import: {exc}"
    return tasks, dict(names), skipped


def reachable_requirements(tasks: list[Task]) -> tuple[list[Task], dict[str, str]]:
    """Tasks whose `environment_setup_commit` (where requirements are read) the mirror lacks read them at one
    base_commit of their (repository, version) group instead, so the group still shares one env layer."""
    out, notes = [], {}
    chosen: dict[tuple[str, str], str] = {}
    for task in sorted(tasks, key=lambda t: t.id):
        commit = task.environment.requirements_commit
        if commit is None or _has_commit(task.repo, commit):
            out.append(task)
            continue
        key = (validation.repo_of(task), str(task.meta.get("version")))
        instead = chosen.setdefault(key, task.base_commit)
        notes[task.id] = f"requirements read at {instead[:10]} (environment_setup_commit {commit[:10]} is not in the mirror)"
        out.append(task.model_copy(update={"environment": task.environment.model_copy(update={"requirements_commit": instead})}))
    return out, notes


_commits: dict[tuple[str, str], bool] = {}


def _has_commit(location: str, commit: str) -> bool:
    if (location, commit) not in _commits:
        try:
            repos.mirror(location).commit(commit)
            _commits[(location, commit)] = True
        except Exception:  # noqa: BLE001 - absent or unreadable: the same answer here
            _commits[(location, commit)] = False
    return _commits[(location, commit)]


def order(tasks: list[Task], builder: ImageBuilder, notes: dict[str, str]) -> list[Task]:
    """Cheapest (repository, version) groups first: built instance images, then built env images, then cost, the
    benchmark's own requirements before a substitute's (`reachable_requirements`), and size."""
    groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for task in tasks:
        groups[(validation.repo_of(task), str(task.meta.get("version")))].append(task)
    ranked = []
    for (repo, version), members in groups.items():
        built = 0
        env_built = False
        try:
            env_built = image_exists(builder.env_tag(members[0].environment, builder.requirements_for(members[0])))
            built = sum(image_exists(builder.instance_tag(t)) for t in members)
        except Exception:  # noqa: BLE001 - a group whose tags cannot be computed is tried last; it will say why
            pass
        stage = 0 if built else 1 if env_built else 2
        substitute = any(t.id in notes for t in members)
        ranked.append(((stage, REPO_COST.get(repo, 5), substitute, -len(members), repo, version), members))
    ordered = []
    for _, members in sorted(ranked, key=lambda item: item[0]):
        ordered.extend(sorted(members, key=lambda t: t.id))
    return ordered


# ---------------------------------------------------------------- one instance


def build(task: Task, builder: ImageBuilder) -> dict[str, Any]:
    """Build (or find) the instance's image: {image, build_seconds, env_cached, instance_cached} or {cause}; never raises."""
    started = time.monotonic()
    built: dict[str, Any] = {}
    try:
        built["env_image"] = builder.env_tag(task.environment, builder.requirements_for(task))
        built["env_cached"] = image_exists(built["env_image"])
        built["instance_cached"] = image_exists(builder.instance_tag(task))
        built["image"] = builder.ensure(task)
    except (ImageBuildError, RepoError) as exc:
        built["cause"] = f"build failure: {_one_line(str(exc))}"
    except Exception as exc:  # noqa: BLE001 - an engine fault on one instance must not end a long run
        built["cause"] = f"infrastructure failure: {_one_line(f'{type(exc).__name__}: {exc}')}"
    built["build_seconds"] = round(time.monotonic() - started, 1)
    return built


def calibrate(task: Task, built: dict[str, Any], grader: Grader, note: str | None) -> dict[str, Any]:
    """Grade the gold patch on the built image under the strict policy; one JSON-able record, never raises."""
    line: dict[str, Any] = {
        "instance_id": task.id,
        "repo": validation.repo_of(task),
        "version": task.meta.get("version"),
        "python": task.meta.get("python_used"),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load": round(os.getloadavg()[0], 1),
        **built,
    }
    if note:
        line["note"] = note
    if "image" not in built:
        return {**line, "outcome": "not_run"}
    report = grader.grade(task, task.gold_patch, image=built["image"])
    line.update(_from_report(report))
    return line


def _from_report(report: GradingReport) -> dict[str, Any]:
    ran = report.test_run_seconds
    fields: dict[str, Any] = {
        "status": report.status,
        "resolved": report.resolved,
        "reward": report.reward,
        "report_source": report.report_source,
        "test_exit_code": report.test_exit_code,
        "tampering": [{**split_flag(flag), "text": flag} for flag in report.tampering],
        "suspicious": list(report.suspicious),
        "restored": list(report.restored),
        "grading_seconds": report.seconds,
        "test_run_seconds": ran,
        "overhead_seconds": None if ran is None else round(report.seconds - ran, 3),
        "probe_seconds": probe_seconds(report.log),
        "log": report.log,
    }
    if report.status != "graded" or report.infrastructure_failure:
        fields["outcome"], fields["cause"] = "not_run", validation.gold_failure_cause(report)
    elif not report.resolved:
        fields["outcome"], fields["cause"] = "gold_unresolved", validation.gold_failure_cause(report)
        fields["network"] = bool(_NETWORK.search(report.output))
    else:
        fields["outcome"] = "measured"
    if fields["outcome"] != "measured" or report.tampering:
        fields["output_tail"] = report.output[-3000:]
    return fields


_LOGGED = re.compile(r"^\[\s*(?P<at>[\d.]+) s\] (?P<what>.*)$")


def probe_seconds(log: list[str]) -> float | None:
    """How long asking the installed runner what it reads took (`Grader.runner_facts`: once per image, so the
    first grading of each instance image pays it); None when this grading did not ask."""
    times = [(float(m.group("at")), m.group("what")) for m in map(_LOGGED.match, log) if m]
    for (before, what_before), (after, what) in itertools.pairwise(times):
        if what.startswith("asked the installed runner") and what_before.startswith("image "):
            return round(after - before, 3)
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]


# ---------------------------------------------------------------- explaining a flag


# The diagnostic copy of the sealed hook: before the line of `flag()` that emits, the stack from the charged
# frame outwards and the audit event being judged are appended to `where` (found by pattern, not by the exact
# text, so that a change elsewhere in those functions does not break --explain). Flags the C hook raises on
# its own (the native seal's checks) carry no stack.
_FLAG_EMIT = re.compile(r"(?m)^(?P<indent>[ ]+)def flag\(why, frame\):\n(?:(?P=indent)[ ]+.*\n)*?(?=(?P=indent)[ ]+emit\(b\"flag\")")
_STACK = """        outer, depth = frame, 0
        while outer is not None and depth < 40:
            where += " <- " + _str(outer.f_code.co_filename) + ":" + _str(outer.f_lineno) + " " + _str(outer.f_code.co_name)
            outer, depth = outer.f_back, depth + 1
        where += " || event " + _str(state.get("event"))
"""
_HOOK_ENTRY = re.compile(r"(?m)^    def on_event\(event, args\):\n        if _type\(event\) is not _str:\n            return\n")
_REMEMBER = """        state["event"] = event + _str(args)[:120]
"""


def explaining_hook(source: str) -> str:
    """The sealed hook's source with each flag carrying its stack and event; SystemExit when its shape changed."""
    flag_body, entry = _FLAG_EMIT.search(source), _HOOK_ENTRY.search(source)
    if flag_body is None or entry is None:
        raise SystemExit("--explain: the sealed hook's flag() or on_event() changed shape; update _FLAG_EMIT/_HOOK_ENTRY")
    for at, text in sorted([(flag_body.end(), _STACK), (entry.end(), _REMEMBER)], reverse=True):
        source = source[:at] + text + source[at:]
    return source


def explain(task: Task, builder: ImageBuilder) -> None:
    """Grade `task`'s gold patch with a copy of the sealed hook whose flags also carry the event and the stack
    (the charged frame first, then its callers), and print each distinct flag once with them."""
    import tempfile  # noqa: PLC0415 - explain only

    from swe_env.grading import runners, seal  # noqa: PLC0415

    reporter = runners._REPORTER  # noqa: SLF001 - a diagnostic copy of the hook
    folder = Path(tempfile.mkdtemp(prefix="calibrate-explain-"))
    for name in {*runners._SEALED_FILES, *runners._RECORDER_FILES}:  # noqa: SLF001
        (folder / name).write_bytes((reporter / name).read_bytes())
    (folder / "sitecustomize.py").write_text(explaining_hook((reporter / "sitecustomize.py").read_text()))
    runners._REPORTER, seal._FLAG_CHARS = folder, 20_000  # noqa: SLF001
    report = Grader(builder=builder, reward_policy="strict").grade(task, task.gold_patch, image=builder.ensure(task))
    print(f"{task.id}: {report.status}, resolved {report.resolved}, {len(report.tampering)} flag(s) (at most {seal.MAX_FLAGS})")
    seen = set()
    for text in report.tampering:
        head, _, event = text.partition(" || event ")
        why, _, stack = head.partition(" <- ")
        key = (why, re.sub(r" at 0x[0-9a-f]+", "", event.split(" <- ")[0])[:100])
        if key in seen:
            continue
        seen.add(key)
        print(
            f"\n{why})\n  event: {event.split(' <- ')[0].rstrip(')')[:300] or '(none: a flag of the C hook)'}\n"
            "  stack, from the frame it was charged to outwards:"
        )
        for frame in stack.split(" <- ")[:14]:
            print(f"    {frame}")


# ---------------------------------------------------------------- the run


def read_done(out: Path) -> dict[str, dict[str, Any]]:
    """The last line per instance already in `out` (a cut last line is ignored)."""
    done: dict[str, dict[str, Any]] = {}
    if out.exists():
        for raw in out.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue
            done[line["instance_id"]] = line
    return done


class Progress:
    """One line per finished instance on stderr (a bar, counts and the time left at the pace so far)."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.counts: Counter[str] = Counter()

    def step(self, line: dict[str, Any]) -> None:
        self.done += 1
        self.counts[line["outcome"]] += 1
        if line.get("tampering"):
            self.counts["flagged"] += 1
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        width = 30
        filled = width * self.done // max(self.total, 1)
        what = line["outcome"] + (f" ({len(line['tampering'])} flag(s))" if line.get("tampering") else "")
        print(
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"measured {self.counts['measured']} flagged {self.counts['flagged']} "
            f"unresolved {self.counts['gold_unresolved']} not run {self.counts['not_run']} | "
            f"{elapsed / 60:.0f} min, ~{left / 60:.0f} min left | {line['instance_id']}: {what}",
            file=sys.stderr,
            flush=True,
        )


def free_gb() -> float:
    """Free space on the Docker engine's disk (its root folder when it is on this machine, else `/`), in GiB."""
    try:
        root = engine.client().info().get("DockerRootDir") or "/"
        return shutil.disk_usage(root if os.path.isdir(root) else "/").free / 2**30
    except Exception:  # noqa: BLE001 - unknown: do not hold the run back for it
        return float("inf")


def run(
    tasks: list[Task],
    notes: dict[str, str],
    out: Path,
    workers: int,
    remove_built: bool,
    ahead: int = 1,
    deadline: float | None = None,
    min_free: float = 0.0,
) -> None:
    """Grade `tasks` in order; after `deadline` (epoch seconds) no new build or grading starts, running ones finish;
    no build starts while the engine's disk has less than `min_free` GiB free (that instance is left for a re-run)."""
    builder = ImageBuilder()
    grader = Grader(builder=builder, reward_policy="strict")
    progress = Progress(len(tasks))
    lock = threading.Lock()
    # Images this run built are removed once no queued instance needs them (--remove-built): a Django
    # instance image holds the repository's history, ~0.3 GB each, and a new env layer 0.4-1.3 GB; on a
    # shared disk a long run must not keep them. Images that were there before the run stay.
    pending_tags: Counter[str] = Counter()
    pending_envs: Counter[str] = Counter()
    envs_built: set[str] = set()
    if remove_built:
        for task in tasks:
            try:
                pending_tags[builder.instance_tag(task)] += 1
                pending_envs[builder.env_tag(task.environment, builder.requirements_for(task))] += 1
            except Exception:  # noqa: BLE001 - reported when the instance runs
                pass

    def remove(image: str) -> None:
        try:
            engine.client().images.remove(image, noprune=False)
        except Exception as exc:  # noqa: BLE001 - an image in use elsewhere (or a kept instance's env) stays
            print(f"  kept {image}: {type(exc).__name__}", file=sys.stderr)

    # Images are built one at a time on their own thread, up to `ahead` instances before the gradings reach
    # them, so a grading does not wait for its build (the builds are not gradings: they do not count in `workers`).
    builds: dict[str, Future] = {}

    def past_deadline() -> bool:
        return deadline is not None and time.time() >= deadline

    build_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="build")

    def cached(task: Task) -> bool:
        try:
            return image_exists(builder.instance_tag(task))
        except Exception:  # noqa: BLE001 - built (and explained) on the build thread
            return False

    def build_ahead(upcoming: list[Task]) -> None:
        # Instances whose image is already there are not builds: they neither wait in the build queue (behind
        # a new env layer's minutes) nor count toward `ahead`.
        if past_deadline():
            return
        counted = 0
        for task in upcoming:
            if counted >= ahead:
                break
            if task.id in builds:
                counted += 1
            elif not cached(task) and free_gb() >= min_free:
                builds[task.id] = build_pool.submit(build, task, builder)
                counted += 1

    def one(task: Task) -> dict[str, Any]:
        future = builds.get(task.id)
        if future is None and not cached(task) and free_gb() < min_free:
            # A shared disk nearly full: no build; nothing is written, so a re-run grades it.
            print(f"  {task.id}: not built ({free_gb():.1f} GiB free, --min-free-gb {min_free:g}); left for a re-run", file=sys.stderr, flush=True)
            with lock:
                for counter, tag in (
                    (pending_tags, _tag(builder.instance_tag, task)),
                    (pending_envs, _tag(lambda t: builder.env_tag(t.environment, builder.requirements_for(t)), task)),
                ):
                    if tag:
                        counter[tag] -= 1
            return {"instance_id": task.id, "outcome": "left"}
        if future is None and cached(task):
            built = build(task, builder)
        else:
            built = (future or build_pool.submit(build, task, builder)).result()
        line = calibrate(task, built, grader, notes.get(task.id))
        with lock:
            with out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
            progress.step(line)
            image, env = line.get("image"), line.get("env_image")
            # A flagged or unresolved instance's image (and so its env layer) stays, for finding the cause.
            keep = line.get("tampering") or line["outcome"] != "measured"
            if remove_built and image:
                pending_tags[image] -= 1
                if pending_tags[image] <= 0 and not line.get("instance_cached") and not keep:
                    remove(image)
            if remove_built and env:
                pending_envs[env] -= 1
                if line.get("env_cached") is False:
                    envs_built.add(env)
                if pending_envs[env] <= 0 and env in envs_built and not keep:
                    remove(env)
        return line

    queue = list(tasks)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="calibrate") as pool:
        running: set[Future] = set()
        try:
            while queue or running:
                if queue and past_deadline():
                    print(f"# deadline passed: {len(queue)} queued instance(s) not started", file=sys.stderr, flush=True)
                    queue.clear()
                while queue and len(running) < workers:
                    task = queue.pop(0)
                    build_ahead([task])
                    running.add(pool.submit(one, task))
                build_ahead(queue)
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
        except BaseException:
            queue.clear()
            for future in [*running, *builds.values()]:
                future.cancel()
            raise
        finally:
            build_pool.shutdown(wait=True, cancel_futures=True)


def _tag(of: Any, task: Task) -> str | None:
    try:
        return str(of(task))
    except Exception:  # noqa: BLE001 - a tag that cannot be computed was never counted
        return None


# ---------------------------------------------------------------- the summary


def summarize(lines: list[dict[str, Any]], skipped: dict[str, str], names: dict[str, list[str]]) -> None:
    measured = [x for x in lines if x["outcome"] == "measured"]
    unresolved = [x for x in lines if x["outcome"] == "gold_unresolved"]
    not_run = [x for x in lines if x["outcome"] == "not_run"]
    flagged = [x for x in measured if x["tampering"]]
    advised = [x for x in measured if x["suspicious"]]
    in_sets = Counter(label for x in measured for label in names.get(x["instance_id"], []))
    total = len(names)
    print(
        f"\n# calibrate_gold: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine_line()}; "
        f"load average now {' '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    loads = [x["load"] for x in lines if "load" in x]
    if loads:
        print(f"load average (1 min) while measured: median {statistics.median(loads):.1f}, range {min(loads):.1f}-{max(loads):.1f}")
    sizes = Counter(label for labels in names.values() for label in labels)
    print(
        f"\ngold patches of the {total} instances (deduplicated; "
        + ", ".join(f"{k} {v}" for k, v in sorted(sizes.items()))
        + f"): {len(lines)} attempted, {len(measured)} measured (graded, resolved; "
        + ", ".join(f"{k} {v}" for k, v in sorted(in_sets.items()))
        + f"), {len(unresolved)} gold not resolving, {len(not_run)} not run, {len(skipped)} not attempted (no mirror)"
    )
    print(
        f"tamper flags: {len(flagged)} of {len(measured)} resolved gold patches flagged "
        f"({sum(len(x['tampering']) for x in flagged)} flags); reward withheld: "
        f"{sum(1 for x in measured if x['reward'] <= 0)}"
    )
    rules = Counter(rule_of(f["rule"]) for x in measured for f in x["tampering"])
    for rule, count in rules.most_common():
        print(f"  {count:4d}  {rule}")
    for x in flagged:
        for (where, rule), count in Counter((f"{f['file']}:{f['line']}", f["rule"]) for f in x["tampering"]).items():
            print(f"    {x['instance_id']} ({x['python']}): {where}: {rule}" + (f" (x{count})" if count > 1 else ""))
    flagged_unresolved = [x for x in unresolved if x.get("tampering")]
    if flagged_unresolved:
        print(f"  (also flagged, gold not resolving: {', '.join(x['instance_id'] for x in flagged_unresolved)})")
    print(f"advice (report.suspicious): {len(advised)} of {len(measured)} resolved gold patches, {sum(len(x['suspicious']) for x in advised)} lines")
    for x in advised:
        for text in x["suspicious"]:
            print(f"    {x['instance_id']}: {text}")

    print("\n| repository | measured | flagged | gold unresolved | not run | overhead s p50 | p90 | without the probe p50 | p90 | test run s p50 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    by_repo: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for x in lines:
        by_repo[x["repo"]].append(x)
    for repo in sorted(by_repo):
        rows = by_repo[repo]
        good = [x for x in rows if x["outcome"] == "measured"]
        over = [x["overhead_seconds"] for x in good if x.get("overhead_seconds") is not None]
        ran = [x["test_run_seconds"] for x in good if x.get("test_run_seconds") is not None]
        bare = [b for b in map(_without_probe, good) if b is not None]
        print(
            f"| {repo} | {len(good)} | {sum(1 for x in good if x['tampering'])} | "
            f"{sum(1 for x in rows if x['outcome'] == 'gold_unresolved')} | {sum(1 for x in rows if x['outcome'] == 'not_run')} | "
            f"{_p(over, 50)} | {_p(over, 90)} | {_p(bare, 50)} | {_p(bare, 90)} | {_p(ran, 50)} |"
        )
    over = [x["overhead_seconds"] for x in measured if x.get("overhead_seconds") is not None]
    ran = [x["test_run_seconds"] for x in measured if x.get("test_run_seconds") is not None]
    bare = [b for b in map(_without_probe, measured) if b is not None]
    probes = [x["probe_seconds"] for x in measured if x.get("probe_seconds") is not None]
    if over:
        print(
            f"\ngrading overhead over the raw test run (same gradings, {len(over)} gold patches, up to 2 at a time): "
            f"median {_p(over, 50)} s, p90 {_p(over, 90)} s, max {max(over):.2f} s; the test runs themselves: "
            f"median {_p(ran, 50)} s, p90 {_p(ran, 90)} s"
        )
    if bare:
        print(
            f"of which asking the installed runner what it reads (once per image, `Grader.runner_facts`): median "
            f"{_p(probes, 50)} s, p90 {_p(probes, 90)} s over {len(probes)}; the overhead without it: median "
            f"{_p(bare, 50)} s, p90 {_p(bare, 90)} s over {len(bare)}"
        )
    if unresolved or not_run:
        print("\ndid not count (cause):")
        for x in sorted(unresolved + not_run, key=lambda x: x["instance_id"]):
            net = " [network]" if x.get("network") else ""
            print(f"- {x['instance_id']} ({x['repo']} {x['version']}): {x['outcome']}{net}: {x.get('cause')}")
    if skipped:
        print("\nnot attempted: " + ", ".join(f"{count} {repo}" for repo, count in Counter(cause for cause in skipped.values()).most_common()))


def _without_probe(line: dict[str, Any]) -> float | None:
    """The overhead of a grading less its runner probe (0 when it asked none); None when either is unknown."""
    if line.get("overhead_seconds") is None or "log" not in line:
        return None
    return round(line["overhead_seconds"] - (line.get("probe_seconds") or 0.0), 3)


def _p(values: list[float], q: float) -> str:
    return f"{percentile(values, q):.2f}" if values else "-"


def deadline_of(text: str | None) -> float | None:
    """`HH:MM` (UTC, today) as epoch seconds; None for no deadline."""
    if not text:
        return None
    found = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if not found or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        raise SystemExit(f"--deadline: {text!r} is not a UTC time HH:MM")
    day = time.gmtime()
    return calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, int(found.group(1)), int(found.group(2)), 0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", required=True, help="a SWE-bench file (repeatable)")
    parser.add_argument("--repo-mirror", required=True, help="folder of owner__name mirrors")
    parser.add_argument("--recipes", help="a recipe file laid over the built-in ones (bench/environments/swebench-django.yaml)")
    parser.add_argument("--out", default="runs/bench/calibrate_gold.jsonl", help="results, one JSON line per instance")
    parser.add_argument("--workers", type=int, default=2, help="gradings (and builds) at a time")
    parser.add_argument(
        "--build-ahead", type=int, default=1, help="build the images of up to N queued instances while gradings run (one build at a time; 0: none)"
    )
    parser.add_argument("--repo", action="append", default=[], help="only these repositories (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="leave these repositories out (repeatable)")
    parser.add_argument("--instances", nargs="*", help="only these instance ids")
    parser.add_argument("--limit", type=int, default=0, help="at most N instances this run (0: all)")
    parser.add_argument("--in-order", action="store_true", help="grade --instances in the order given (suspects first), not cheapest group first")
    parser.add_argument("--retry", action="store_true", help="grade again the instances in --out that did not run")
    parser.add_argument(
        "--remove-built", action="store_true", help="remove each image (instance or env layer) this run built once no queued instance needs it"
    )
    parser.add_argument(
        "--explain", nargs="+", metavar="ID", help="grade these instances' gold patches again with a hook that prints each flag's event and stack"
    )
    parser.add_argument(
        "--deadline", metavar="HH:MM", help="start no build or grading after this UTC time today (running ones finish; the rest stays for a re-run)"
    )
    parser.add_argument(
        "--min-free-gb", type=float, default=3.0, help="start no image build while the Docker engine's disk has less free (GiB); left for a re-run"
    )
    parser.add_argument("--summary-only", action="store_true", help="print the summary of --out and stop")
    parser.add_argument(
        "--include", action="append", default=[], help="another results file (a concurrent run's) counted as done and in the summary (repeatable)"
    )
    args = parser.parse_args()
    sigterm_as_exit()

    mirror = Path(args.repo_mirror)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks, names, skipped = load_tasks(args.dataset, mirror, args.recipes)

    def everything() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for path in [*map(Path, args.include), out]:
            found.update(read_done(path))
        return found

    done = everything()
    if args.explain:
        try:
            for task in reachable_requirements([t for t in tasks if t.id in args.explain])[0]:
                explain(task, ImageBuilder())
        finally:
            check_no_leftovers()
        return 0
    if args.summary_only:
        summarize(list(done.values()), skipped, names)
        return 0
    again = {i for i, x in done.items() if x["outcome"] == "not_run"} if args.retry else set()
    chosen = [
        t
        for t in tasks
        if (t.id not in done or t.id in again)
        and (not args.repo or validation.repo_of(t) in args.repo)
        and validation.repo_of(t) not in args.exclude
        and (not args.instances or t.id in args.instances)
    ]
    chosen, notes = reachable_requirements(chosen)
    builder = ImageBuilder()
    if args.in_order and args.instances:
        rank = {name: at for at, name in enumerate(args.instances)}
        chosen.sort(key=lambda t: rank[t.id])
    else:
        chosen = order(chosen, builder, notes)
    if args.limit:
        chosen = chosen[: args.limit]
    print(
        f"# calibrate_gold: {len(chosen)} to grade now, {len(done)} already in {out}, {len(tasks)} with a mirror, "
        f"{len(skipped)} without; {machine_line()}",
        flush=True,
    )
    try:
        run(chosen, notes, out, args.workers, args.remove_built, args.build_ahead, deadline_of(args.deadline), args.min_free_gb)
    finally:
        check_no_leftovers()
        summarize(list(everything().values()), skipped, names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
