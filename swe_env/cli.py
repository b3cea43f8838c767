"""The `swe-env` command: parses arguments, calls the rooms, prints tables. No logic of its own.

Why one module of this size: one Typer command per verb, each a few lines of argument
parsing and a table; no logic to move out.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape as _e

from . import __version__
from .build import budget  # pure: sizes, ages and kinds (the images commands' help names them)
from .errors import InfrastructureError

# Each command imports what it needs when it runs: `--help`, `--version` and a mistyped option
# load no engine SDK, no image builder, no grader.
if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table

    from .build import images
    from .data.task import Task
    from .data.trajectory import Trajectory

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A Dockerized gym environment for software-engineering agents.")
tasks_app = typer.Typer(no_args_is_help=True, help="Inspect task specs.")
app.add_typer(tasks_app, name="tasks")
images_app = typer.Typer(no_args_is_help=True, help="swe-env's images: list, prune to a disk budget, push to a registry.")
app.add_typer(images_app, name="images")
# Piped output (CI logs, `| tee`) gets room for full task ids instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

TasksOption = typer.Option(Path("tasks"), "--tasks", "-t", help="A task file, a task folder, or a folder of task folders.")
_USER_ERRORS = (ValueError, KeyError, InfrastructureError)  # TaskSpecError and the endpoint check are ValueErrors
JsonOption = typer.Option(False, "--json", help="Print the result as one JSON document on stdout (no table, no progress).")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print nothing but errors; the exit code tells the outcome.")


def _version(value: bool) -> None:
    if value:
        print(f"swe-env {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """A Dockerized gym environment for software-engineering agents."""


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def _load(tasks: Path) -> list[Task]:
    """The tasks of `tasks`, each task's local repository path checked (a wrong one is the task file's error)."""
    from .data.task import load_tasks

    found = load_tasks(tasks)
    for task in found:
        task.check_repo()
    return found


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Known failures become one red line and exit code 2, never a traceback."""
    try:
        yield
    except _USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[bold red]error:[/] {_e(str(message))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted; containers were removed[/]")
        raise typer.Exit(130) from None


def _progress(quiet: bool = False) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False, disable=quiet,
    )


ImagesOption = typer.Option("auto", "--images", help="Tasks with a published image (SWE-bench's `image`): auto (use it when the "
                            "engine has it or can pull it, else build), published (that image or an error), build (always build).")


RegistryOption = typer.Option(None, "--registry", help="HOST, HOST:PORT or HOST:PORT/NAMESPACE: pull swe-env's layers from this registry "
                              "before building them (`swe-env images push` fills it); a failed pull is a note, then a build.")
BackendOption = typer.Option("thread", "--backend", help="thread (this machine) or ray (a Ray cluster).")
RayAddressOption = typer.Option(None, "--ray-address", help="Ray cluster address (auto, ray://host:10001); default: a local Ray.")
MaxDiskOption = typer.Option(None, "--max-disk", help="Disk budget of swe-env's images (e.g. 50G): the least recently "
                             "used ones no container uses are removed before building (`swe-env images prune`).")


def _build_all(tasks: list[Task], mode: images.ImagesMode = "auto", quiet: bool = False, registry: str | None = None,
               max_disk: str | None = None) -> dict[str, str]:
    from .build import images, store

    store.prune_before_building(max_disk)
    with _progress(quiet) as progress:
        bar = progress.add_task("building images", total=len(tasks))
        builder = images.ImageBuilder(progress=lambda message: progress.update(bar, description=_e(message)), images=mode,
                                      registry=registry)
        tags = {}
        for task in tasks:
            tags[task.id] = builder.ensure(task)
            progress.advance(bar)
        progress.update(bar, description="images ready")
    return tags


@app.command()
def setup(tasks: Path = TasksOption) -> None:
    """Check the Docker engine and prepare base images for the tasks (offline bootstrap if needed)."""
    with _friendly_errors():
        from .build import images
        from .data.task import DEFAULT_BASE_IMAGE, load_tasks
        from .runtime import engine

        engine.client()
        found = load_tasks(tasks) if tasks.exists() else []
        for name in sorted({task.environment.os_image for task in found} or {DEFAULT_BASE_IMAGE}):
            images.ensure_os_image(name, progress=lambda message: err.print(f"[cyan]setup:[/] {_e(message)}"))
            console.print(f"base image [bold]{_e(name)}[/] is ready")
        from .grading import native

        built = native.build()  # here, so parallel gradings (and tests) find it built
        if built.data is None:
            err.print(f"[yellow]setup:[/] the native seal is not built ({_e(built.reason)}): gradings use the weaker "
                      "pure-Python seal")
        else:
            console.print(f"native seal [bold]{_e(str(native.target()))}[/] is ready")


@tasks_app.command("list")
def tasks_list(tasks: Path = TasksOption, as_json: bool = JsonOption, quiet: bool = QuietOption) -> None:
    """List the tasks with their repository, commit and test counts; a repository path that does not exist is an error."""
    from rich.table import Table

    from .data.task import TaskSpecError, load_tasks

    with _friendly_errors():
        found = load_tasks(tasks)
    problems: dict[str, str] = {}
    for task in found:
        try:
            task.check_repo()
        except TaskSpecError as exc:
            problems[task.id] = str(exc)
    if as_json:
        _emit_json([{"id": task.id, "repo": task.repo, "base_commit": task.base_commit, "source": str(task.source),
                     "fail_to_pass": len(task.tests.fail_to_pass), "pass_to_pass": len(task.tests.pass_to_pass),
                     "gold_patch": bool(task.gold_patch), "error": problems.get(task.id)} for task in found])
    elif not quiet:
        table = Table(title=_e(f"{len(found)} tasks in {tasks}"))
        for column in ("task", "repo", "commit", "fail→pass", "pass→pass", "gold"):
            table.add_column(column)
        for task in found:
            repo = f"[red]{_e(task.repo)}[/]" if task.id in problems else _e(task.repo)
            table.add_row(_e(task.id), repo, _e(task.base_commit[:12]), str(len(task.tests.fail_to_pass)),
                          str(len(task.tests.pass_to_pass)), "yes" if task.gold_patch else "no")
        console.print(table)
    for problem in problems.values():
        err.print(f"[bold red]error:[/] {_e(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)


EnvironmentOption = typer.Option(None, "--environment", help="YAML file of environment fields (a task's `environment:`); "
                                  "default pytest, plus `pip install -e .` when the tree is a package.")


@tasks_app.command("new")
def tasks_new(
    repo: Path = typer.Option(..., "--repo", help="The git repository (a folder, a bare repository or a bundle)."),
    base: str = typer.Option(..., "--base", help="The ref the agent starts from (before the fix)."),
    fix: str = typer.Option(..., "--fix", help="The ref with the fix and its tests."),
    tests: Optional[list[str]] = typer.Option(None, "--tests", help="Paths (folders or files) that are tests "
                                              "(repeatable; default test folders and test_*.py files)."),
    out: Path = typer.Option(Path("tasks"), "--out", "-o", help="Folder the task folder is written into."),
    task_id: Optional[str] = typer.Option(None, "--id", help="The task's id (default <repo>-<fix sha>)."),
    environment: Optional[Path] = EnvironmentOption,
) -> None:
    """Write a task from two refs: gold patch = the non-test diff, test patch = the test diff, FAIL_TO_PASS /
    PASS_TO_PASS from running both sides (twice each) in the container."""
    from .synth import refs
    from .data.task import load_environment, load_tasks

    with _friendly_errors():
        env_spec = load_environment(environment) if environment else None
        err.print(f"[cyan]tasks new:[/] building the image and running both sides of {_e(base)}..{_e(fix)}")
        path = refs.task_from_refs(repo, base, fix, out, task_id=task_id, tests=tests, environment=env_spec)
        task = load_tasks(path)[0]
    console.print(f"wrote {_e(str(path))}: {len(task.tests.fail_to_pass)} FAIL_TO_PASS, "
                  f"{len(task.tests.pass_to_pass)} PASS_TO_PASS; check it with `swe-env validate --tasks {_e(str(path.parent))}`")


@app.command()
def synthesize(
    repo: str = typer.Option(..., "--repo", help="The git repository (a folder, a bare repository or a bundle)."),
    commit: str = typer.Option("HEAD", "--commit", help="The tree the bugs go into."),
    name: Optional[str] = typer.Option(None, "--name", help="The repository's name in task ids (default: its folder's)."),
    environment: Optional[Path] = EnvironmentOption,
    out: Path = typer.Option(..., "--out", "-o", help="Folder the task folders go to (a re-run resumes)."),
    max_tasks: int = typer.Option(100, "--max-tasks", min=1, help="Stop when the folder holds this many tasks."),
    max_candidates: Optional[int] = typer.Option(None, "--max-candidates", min=1, help="Candidates tried at most "
                                                 "(default five per task wanted)."),
    methods: Optional[list[str]] = typer.Option(None, "--methods", help="procedural, history, model, combine (repeatable; "
                                                "default all but model, and model too with --model)."),
    kinds: Optional[list[str]] = typer.Option(None, "--kinds", help="Procedural or model kinds (repeatable; default all)."),
    functions: Optional[list[str]] = typer.Option(None, "--functions", help="Only these functions (qualified name or "
                                                  "path::name; repeatable)."),
    model: Optional[str] = typer.Option(None, "--model", help="OpenAI-compatible endpoint (…/v1) for the model method; it "
                                        "also writes the problem statements. Key: $OPENAI_API_KEY."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="The model asked (default: the first the endpoint "
                                             "lists)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Containers validating candidates at once."),
    hide_tests: bool = typer.Option(False, "--hide-tests", help="Take the failing tests out of the task's tree; they come "
                                    "back through the test patch."),
    seed: int = typer.Option(0, "--seed", help="Seed of the candidates' order."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", min=0.1, help="Start no candidate after this "
                                                "many minutes (the whole run's time)."),
) -> None:
    """Synthesize validated tasks from a repository: bugs that break tests which passed, kept by the validation rule."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .synth import pipeline
    from .data.task import load_environment

    with _friendly_errors():
        config = pipeline.SynthConfig(
            repo=repo, commit=commit, name=name, environment=load_environment(environment) if environment else None, out=out,
            max_tasks=max_tasks, max_candidates=max_candidates, methods=methods or None,
            kinds=kinds or None, functions=functions or None, model=model, model_name=model_name, workers=workers,
            hide_tests=hide_tests, seed=seed, max_minutes=max_minutes)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("validated {task.fields[validated]}, rejected {task.fields[rejected]}"),
                      TimeElapsedColumn(), console=err) as progress:
            bar = progress.add_task("building the image and learning the suite", total=None, validated=0, rejected=0)

            def show(summary: pipeline.Summary) -> None:
                progress.update(bar, total=summary.planned, completed=summary.candidates, validated=summary.validated,
                                rejected=sum(summary.rejected.values()),
                                description=_e(f"candidates; last {summary.last}" if summary.last else "candidates"))

            summary = pipeline.synthesize(config, on_progress=show)
    table = Table(title=_e(f"synthesis into {out} ({summary.seconds:g} s)"))
    for column in ("method", "candidates", "validated", "acceptance"):
        table.add_column(column)
    for method, counts in sorted(summary.per_method.items()):
        rate = counts["validated"] / counts["candidates"] if counts["candidates"] else 0.0
        table.add_row(_e(method), str(counts["candidates"]), str(counts["validated"]), f"{rate:.0%}")
    console.print(table)
    if summary.flaky_tests:
        err.print(f"{len(summary.flaky_tests)} flaky test(s) left out of every task: {', '.join(summary.flaky_tests[:5])}",
                  markup=False, highlight=False, soft_wrap=True)
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary.rejected.most_common()) or "none"
    console.print(f"{summary.candidates} candidate(s), {summary.validated} validated, rejected: {reasons}; "
                  f"{summary.skipped} decided by an earlier run; {summary.total_tasks} task(s) in {out}",
                  markup=False, highlight=False)


@app.command()
def build(tasks: Path = TasksOption, image_mode: str = ImagesOption, registry: Optional[str] = RegistryOption,
          max_disk: Optional[str] = MaxDiskOption) -> None:
    """Build (or find cached, or pull) images for every task."""
    with _friendly_errors():
        tags = _build_all(_load(tasks), _images_mode(image_mode), registry=registry, max_disk=max_disk)
    for task_id, tag in tags.items():
        console.print(f"{task_id}: {tag}", markup=False, highlight=False)


DatasetOption = typer.Option(None, "--dataset", "-d", help="A SWE-bench instances file (JSON, JSONL, parquet) or a folder of task files; instead of --tasks.")
RepoMirrorOption = typer.Option(None, "--repo-mirror", help="Folder with owner__name clones or bundles, for machines without GitHub.")
RecipesOption = typer.Option(None, "--recipes", help="YAML/JSON file of environment recipes: repo -> version (or *) -> recipe.")


def _dataset_tasks(tasks: Path, dataset: Optional[Path], repo_mirror: Optional[Path], recipes: Optional[Path]) -> list[Task]:
    if dataset is None:
        return _load(tasks)
    from .data import swebench

    return swebench.load_dataset(dataset, repo_mirror, swebench.load_recipes(recipes))


def _only(found: list[Task], ids: list[str] | None, option: str) -> list[Task]:
    """The tasks named by a repeatable id option (all of them when it is not given); an unknown id is refused."""
    if not ids:
        return found
    known = {task.id for task in found}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"{option}: not in the tasks: {', '.join(unknown)}; see `swe-env tasks list`")
    return [task for task in found if task.id in set(ids)]


@app.command()
def validate(
    tasks: Path = TasksOption,
    dataset: Optional[Path] = DatasetOption,
    repo_mirror: Optional[Path] = RepoMirrorOption,
    recipes: Optional[Path] = RecipesOption,
    instances: Optional[list[str]] = typer.Option(None, "--instances", help="Only these task / instance ids (repeatable)."),
    sample: Optional[int] = typer.Option(None, "--sample", min=1, help="A sample of N tasks, stratified by repository."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Tasks validated at once."),
    image_mode: str = ImagesOption,
    backend: str = BackendOption,
    ray_address: Optional[str] = RayAddressOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Prove each task by the validation rule: FAIL_TO_PASS fails without the fix and passes with it, PASS_TO_PASS
    passes on both sides, no id in both lists, the gold patch applies cleanly, no flaky test."""
    from rich.table import Table

    with _friendly_errors():
        from .build import images
        from .grading.grader import Grader
        from .run import validation

        builder = images.ImageBuilder(images=_images_mode(image_mode))
        found = _dataset_tasks(tasks, dataset, repo_mirror, recipes)
        found = _only(found, instances, "--instances")
        if sample:
            found = validation.sample_tasks(found, sample, seed)
        with _progress(quiet or as_json) as progress:
            bar = progress.add_task("validating", total=len(found))
            counts = {"ok": 0, "bad": 0}

            def advance(result: validation.InstanceValidation) -> None:
                counts["ok" if result.verdict == "valid" else "bad"] += 1
                progress.update(bar, advance=1, description=f"valid {counts['ok']}, not {counts['bad']}; last {_e(result.task_id)}")

            results = validation.validate_tasks(found, workers=workers, builder=builder,
                                                grader=Grader(builder=builder), on_result=advance,
                                                backend=_backend(backend), ray_address=ray_address)
    failures = [result for result in results if result.verdict != "valid"]
    if as_json:
        _emit_json([{"task": r.task_id, "verdict": r.verdict, "cause": r.cause, "violations": r.violations,
                     "warnings": r.warnings, "python": r.python_used,
                     "gold": r.gold.model_dump(include={"status", "resolved", "reward", "error"}) if r.gold else None,
                     "empty": r.empty.model_dump(include={"status", "resolved", "reward", "error"}) if r.empty else None}
                    for r in results])
    if as_json or quiet:
        for result in failures:
            err.print(f"{result.task_id}: {result.verdict}: {result.cause}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1 if failures else 0)
    table = Table(title="task validation")
    for column in ("task", "python", "gold", "empty", "ignored ids", "verdict"):
        table.add_column(column)
    for result in results:
        python = _e(f"{result.python_used} (asked {result.python_requested})" if result.python_differs
                    else result.python_used or "")
        verdict = "[green]ok[/]" if result.verdict == "valid" else f"[red]{_e(result.verdict)}[/]"
        # Listed ids the verdict dropped (fragments no report can produce): worth a look when many.
        ignored = str(len(result.gold.ignored_ids)) if result.gold else "-"
        table.add_row(_e(result.task_id), python, _verdict(result.gold), _verdict(result.empty), ignored, verdict)
    console.print(table)
    summary = Table(title="per repository")
    for column in ("repository", "instances", "gold resolved", "empty unresolved", "env errors", "other python"):
        summary.add_column(column)
    for row in validation.summarize(results):
        summary.add_row(_e(row.repo), *(str(n) for n in (row.instances, row.gold_resolved, row.empty_unresolved,
                                                      row.env_errors, row.other_python)))
    console.print(summary)
    for result in failures:
        # A gold patch that fails is the environment's fault (recipe, Python, network, flakiness), never a model's.
        err.print(f"{result.task_id}: {result.verdict}: {result.cause}", highlight=False, markup=False, soft_wrap=True)
        # Every breach of the rule (and what it only warns about), one line each, under its task.
        for line in [*(f"violation: {v}" for v in result.violations), *(f"warning: {w}" for w in result.warnings)]:
            err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    for result in results:
        if result.verdict == "valid":
            for warning in result.warnings:
                err.print(f"{result.task_id}: warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    if failures:
        err.print(f"[bold red]{len(failures)} task(s) invalid[/] (a failing gold patch is an environment fault, not a model failure)")
        raise typer.Exit(1)
    console.print(f"[green]all {len(found)} tasks valid[/]")


_Choice = TypeVar("_Choice", bound=str)


def _one_of(value: str, choices: tuple[_Choice, ...], error: str) -> _Choice:
    """`value` as the one of `choices` (a Literal's values) it is; ValueError(`error`) otherwise."""
    for choice in choices:
        if value == choice:
            return choice
    raise ValueError(error)


def _images_mode(value: str) -> images.ImagesMode:
    from .config import IMAGES_MODES

    return _one_of(value, IMAGES_MODES, f"--images: must be one of {', '.join(IMAGES_MODES)}, not {value!r}")


def _backend(value: str) -> Literal["thread", "ray"]:
    return _one_of(value, ("thread", "ray"), f"--backend must be thread or ray, not {value!r}")


def _verdict(report) -> str:
    if report is None:
        return "-"
    if report.status != "graded":
        return f"[yellow]{_e(report.status)}[/]"
    return "[green]resolved[/]" if report.resolved else "unresolved"


def _run_agents(found: list[Task], agents: list[str], out: Path, episodes: int, workers: int, quiet: bool = False,
                **options) -> list[Trajectory]:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from .run.rollout import rollout as run_rollout

    results: list[Trajectory] = []
    # "errors": episodes ended by the agent's crash, or by a failure of ours or of the model's endpoint.
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("resolved {task.fields[resolved]}, errors {task.fields[failed]}"), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=quiet) as progress:
        planned = len(found) * episodes * len(agents)
        bar = progress.add_task("episodes", total=planned, resolved=0, failed=0)
        counts = {"skipped": 0, "done": 0, "resolved": 0, "failed": 0}
        for agent in agents:
            progress.update(bar, description=f"agent {_e(agent)}")
            before = dict(counts)

            def show(p, before=before) -> None:
                counts.update(skipped=before["skipped"] + p.skipped, done=before["done"] + p.done,
                              resolved=before["resolved"] + p.resolved, failed=before["failed"] + p.failed)
                # Episodes skipped on resume leave the bar, so the ETA is that of the work left.
                progress.update(bar, total=planned - counts["skipped"], completed=counts["done"],
                                resolved=counts["resolved"], failed=counts["failed"])

            results += run_rollout(found, agent, episodes_per_task=episodes, workers=workers, out=out,
                                   on_progress=show, **options)
        if counts["skipped"] and not quiet:
            err.print(f"{counts['skipped']} episode(s) already in {out} were skipped (--restart runs them again)",
                      markup=False, highlight=False)
    return results


def _results_table(results: list[Trajectory], title: str) -> Table:
    from rich.table import Table

    table = Table(title=_e(title))
    for column in ("task", "agent", "steps", "reward", "resolved", "seconds", "end"):
        table.add_column(column, justify="right" if column in ("steps", "reward", "seconds") else "left")
    for t in sorted(results, key=lambda t: (t.task_id, t.agent)):
        resolved = "[green]yes[/]" if t.resolved else "no"
        end = _e(t.termination or "-")
        if t.error:
            # The cause, not only the label: "infra_error: ModelError: http://...: cannot connect (Connection refused)".
            end = f"[red]{end}[/]: {_e(_short(t.error))}"
        table.add_row(_e(t.task_id), _e(t.agent), str(len(t.steps)), f"{t.reward:g}", resolved, f"{t.seconds:.1f}", end)
    return table


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _trajectory_row(t: Trajectory) -> dict[str, Any]:
    return {"task": t.task_id, "agent": t.agent, "model": t.model, "episode_index": t.episode_index, "steps": len(t.steps),
            "reward": t.reward, "resolved": t.resolved, "seconds": t.seconds, "termination": t.termination, "error": t.error}


def _all_ended_on_our_side(results: list[Trajectory]) -> bool:
    """Every episode ended by our machinery or the model's endpoint: nothing was learnt about the agent."""
    from .errors import INFRASTRUCTURE_ENDINGS

    return bool(results) and all(t.termination in INFRASTRUCTURE_ENDINGS for t in results)


@app.command()
def rollout(
    agent: str = typer.Option(..., "--agent", "-a", help="Agent: oracle, null, openai, or package.module:Class."),
    tasks: Path = TasksOption,
    episodes_per_task: int = typer.Option(1, "--episodes-per-task", "-k", min=1),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Episodes at a time."),
    out: Path = typer.Option(Path("runs/rollout/trajectories.jsonl"), "--out", "-o", help="JSONL file trajectories are appended to."),
    restart: bool = typer.Option(False, "--restart", help="Run every episode, even those --out already holds (default: resume)."),
    backend: str = BackendOption,
    ray_address: Optional[str] = RayAddressOption,
    warm_pool: int = typer.Option(0, "--warm-pool", min=0, help="Containers kept started ahead per task image."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="openai agent: API root, e.g. http://host:8000/v1 ($OPENAI_BASE_URL)."),
    model: Optional[str] = typer.Option(None, "--model", help="openai agent: model name ($OPENAI_MODEL); key from $OPENAI_API_KEY."),
    tool_format: Optional[str] = typer.Option(None, "--tool-format", help="openai agent: native (function calling) or cwm (<tool: NAME> text)."),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", min=1, help="openai agent: model calls per episode."),
    registry: Optional[str] = RegistryOption,
    max_disk: Optional[str] = MaxDiskOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Run an agent on every task and append trajectories to a JSONL file (finished episodes are skipped).

    Exits 1 when every episode ended by a failure of ours or of the model's endpoint."""
    with _friendly_errors():
        from .agents import checked_agent

        found = _load(tasks)
        _backend(backend)
        agent_options = {key: value for key, value in (("base_url", base_url), ("model", model),
                         ("tool_format", tool_format), ("max_turns", max_turns)) if value is not None}
        # A bad agent, option, endpoint or model name fails in one line before any build or container.
        checked_agent(agent, found, **agent_options)
        if backend == "thread":
            _build_all(found, quiet=quiet or as_json, registry=registry, max_disk=max_disk)  # on Ray, each node builds (or pulls, or finds) its own
        shared = {key: value for key, value in (("warm_pool", warm_pool), ("registry", registry), ("max_disk", max_disk)) if value}
        results = _run_agents(found, [agent], out, episodes_per_task, workers, quiet=quiet or as_json,
                              resume=not restart, backend=backend, ray_address=ray_address, agent_options=agent_options,
                              **shared)
    if as_json:
        _emit_json([_trajectory_row(t) for t in results])
    elif not quiet:
        console.print(_results_table(results, f"{agent} on {len(found)} tasks"))
        console.print(f"trajectories appended to {out}", markup=False, highlight=False)
    if _all_ended_on_our_side(results):
        causes = sorted({_short(t.error or t.termination or "", 200) for t in results})
        err.print(f"[bold red]error:[/] every episode ended by a failure of ours or of the model's endpoint, not the agent's: "
                  f"{_e('; '.join(causes[:3]))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def export(
    trajectories: list[Path] = typer.Argument(..., help="Trajectory JSONL files (from rollout or demo)."),
    fmt: str = typer.Option("chat", "--format", "-f", help="chat (OpenAI messages with tool calls) or cwm (CWM tool-call text)."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (replaced)."),
    min_reward: Optional[float] = typer.Option(None, "--min-reward", help="Keep episodes with at least this reward."),
    resolved_only: bool = typer.Option(False, "--resolved", help="Keep resolved episodes only."),
    dedupe: Optional[float] = typer.Option(None, "--dedupe", min=0.0, max=1.0, help="Drop near-duplicates: action-sequence similarity at or above this (0-1) to a kept episode of the same task."),
) -> None:
    """Turn trajectories into training data: chat-message JSONL for fine-tuning, or CWM's format."""
    with _friendly_errors():
        from .data.trajectory import EXPORT_FORMATS
        from .data.trajectory import export as export_trajectories

        # The message trajectory.export gives for another format.
        export_format = _one_of(fmt, EXPORT_FORMATS, f"export format must be chat or cwm, not {fmt!r}")
        read, written = export_trajectories(trajectories, out, export_format, min_reward, resolved_only, dedupe)
    console.print(f"{written} of {read} episode(s) written to {out} ({fmt})", markup=False, highlight=False)


@app.command()
def demo(
    tasks: Path = TasksOption,
    out: Path = typer.Option(Path("runs/demo/trajectories.jsonl"), "--out", "-o"),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
) -> None:
    """The main job: oracle and null agents on every bundled task, graded by the hidden tests."""
    started = time.monotonic()
    with _friendly_errors():
        found = _load(tasks)
        _build_all(found)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        results = _run_agents(found, ["oracle", "null"], out, 1, workers)
    console.print(_results_table(results, f"swe-env demo: {len(found)} tasks × oracle, null"))
    oracle_ok = all(t.resolved and t.reward == 1 for t in results if t.agent == "oracle")
    null_ok = all(not t.resolved and t.reward == 0 for t in results if t.agent == "null")
    console.print(f"trajectories: {out}   total {time.monotonic() - started:.1f} s", markup=False, highlight=False)
    if oracle_ok and null_ok:
        console.print("[bold green]as expected: every oracle row resolved (reward 1), every null row reward 0[/]")
    else:
        err.print("[bold red]unexpected: an oracle row is unresolved or a null row got a reward[/]")
        raise typer.Exit(1)


@tasks_app.command("import-swebench")
def tasks_import_swebench(
    file: Path = typer.Argument(..., help="SWE-bench instances: JSON, JSONL or parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <instance_id>/task.yaml."),
    repo_mirror: Optional[Path] = RepoMirrorOption,
    recipes: Optional[Path] = RecipesOption,
) -> None:
    """Turn SWE-bench instances into task files."""
    with _friendly_errors():
        from .data import swebench

        written = swebench.import_instances(file, out, repo_mirror, swebench.load_recipes(recipes))
    console.print(f"wrote {len(written)} task file(s) under {out}", markup=False, highlight=False)


@tasks_app.command("import-harbor")
def tasks_import_harbor(
    folder: Path = typer.Argument(..., help="A Harbor task folder (task.toml, instruction.md, environment/, tests/, solution/), or a folder of them."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <id>/task.yaml and <id>/<id>.bundle."),
) -> None:
    """Turn Harbor tasks into task files: builds each environment, snapshots its working folder, runs solve.sh for the gold patch."""
    from .data import harbor
    from .data.task import load_tasks

    with _friendly_errors():
        harbor.check_tasks(folder)  # a bad task file is one line, before any progress bar
        with _progress() as progress:
            bar = progress.add_task("importing Harbor tasks", total=None)
            written = harbor.import_tasks(folder, out, progress=lambda message: progress.update(bar, description=_e(message)))
    for target in written:
        task = load_tasks(target)[0]
        gold = "gold patch from solve.sh" if task.gold_patch else f"no gold patch: {task.meta.get('harbor_gold', '?')}"
        console.print(f"{task.id}: {target} ({gold})", markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {len(written)} task file(s) under {out}", markup=False, highlight=False)


@app.command()
def evaluate(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="A SWE-bench instances file, or a folder of task files."),
    predictions: str = typer.Option(..., "--predictions", "-p", help="Predictions file (JSON list/object, JSONL), or gold, or empty."),
    run_id: str = typer.Option(..., "--run-id", help="Names the run; a re-run with the same id skips finished instances."),
    max_workers: int = typer.Option(4, "--max-workers", "-w", min=1),
    report_dir: Path = typer.Option(Path("."), "--report-dir", help="Where logs/run_evaluation/ and the run report go."),
    repo_mirror: Optional[Path] = RepoMirrorOption,
    recipes: Optional[Path] = RecipesOption,
    instance_ids: Optional[str] = typer.Option(None, "--instance-ids", help="Comma-separated ids to evaluate (default: all)."),
    image_mode: str = ImagesOption,
    registry: Optional[str] = RegistryOption,
    max_disk: Optional[str] = MaxDiskOption,
    backend: str = BackendOption,
    ray_address: Optional[str] = RayAddressOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Grade a model's predictions like SWE-bench's harness: per-instance logs and a run report."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    with _friendly_errors():
        from .build import images, store
        from .data import swebench
        from .grading.grader import Grader
        from .run.evaluate import evaluate as run_evaluation

        store.prune_before_building(max_disk)
        grader = Grader(labels={"evaluation": run_id},
                        builder=images.ImageBuilder(images=_images_mode(image_mode), registry=registry))
        found = swebench.load_dataset(dataset, repo_mirror, swebench.load_recipes(recipes))
        chosen = [i.strip() for i in (instance_ids or "").split(",") if i.strip()] or None
        preds = swebench.load_predictions(predictions, found)
        resolved = 0
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("resolved {task.fields[resolved]}"), TimeElapsedColumn(), TextColumn("ETA"),
                      TimeRemainingColumn(), console=err, disable=quiet or as_json) as progress:
            total = sum(1 for p in preds if chosen is None or p.instance_id in chosen)
            bar = progress.add_task(f"evaluating {run_id}", total=total, resolved=0)

            def advance(result) -> None:
                nonlocal resolved
                resolved += result.outcome == "resolved"
                progress.update(bar, advance=1, resolved=resolved)

            outcome = run_evaluation(found, preds, run_id, max_workers=max_workers, report_dir=report_dir,
                                     instance_ids=chosen, on_result=advance, grader=grader,
                                     backend=_backend(backend), ray_address=ray_address)
    if as_json:
        _emit_json({model: {**report, "report_path": str(outcome.report_paths[model])}
                    for model, report in outcome.reports.items()})
        return
    for model, report in outcome.reports.items():
        if quiet:
            continue
        console.print(f"[bold]{_e(model)}[/]: {report['resolved_instances']} resolved, {report['unresolved_instances']} unresolved, "
                      f"{report['empty_patch_instances']} empty, {report['error_instances']} error(s) "
                      f"of {report['total_instances']}; report: {_e(str(outcome.report_paths[model]))}")
        for instance_id, detail in report["error_details"].items():
            err.print(f"  {instance_id}: {detail}", highlight=False, markup=False)


@app.command()
def gc(everything: bool = typer.Option(False, "--all", help="Remove every swe-env container, not only orphans.")) -> None:
    """Remove swe-env containers whose owner is gone or whose time-to-live has passed."""
    with _friendly_errors():
        from .runtime import engine

        removed = engine.collect_garbage(everything=everything)
    console.print(f"removed {len(removed)} container(s)" + (f": {', '.join(removed)}" if removed else ""),
                  markup=False, highlight=False)


@app.command()
def trace(
    command: Optional[list[str]] = typer.Argument(None, help="After `--`: pytest ..., python script.py, python -m mod ..."),
    task_id: str = typer.Option(..., "--task", help="The task whose container runs the program."),
    tasks: Path = TasksOption,
    patch: Optional[Path] = typer.Option(None, "--patch", help="A diff applied with `git apply` before running."),
    function: Optional[str] = typer.Option(None, "--function", help="Call module:qualname instead of running a command."),
    args: str = typer.Option("[]", "--args", help="JSON arguments for --function: a list, an object, or {args, kwargs}."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output file (default runs/traces/<task>.jsonl)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (the trace schema) or cwm (CWM prompt format, one JSON line per trace)."),
    include: list[str] = typer.Option([], "--include", help="More path prefixes in scope (repeatable)."),
    depth: int = typer.Option(0, "--depth", min=0, help="Follow calls out of scope this many levels."),
    max_events: int = typer.Option(10_000, "--max-events", min=1),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", min=1),
    repr_cap: int = typer.Option(200, "--repr-cap", min=8),
    full_locals: bool = typer.Option(False, "--full-locals", help="Every local at every event, no \"..\" for unchanged ones."),
    trace_modules: bool = typer.Option(False, "--trace-modules", help="Also trace module and class bodies."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds before the program is killed (default: the task's limit)."),
) -> None:
    """Run a Python command (or function) in a task's container under the tracer and write its traces."""
    with _friendly_errors():
        from .data.task import load_tasks
        from .traces import host as tracing

        trace_format: Literal["jsonl", "cwm"] = _one_of(fmt, ("jsonl", "cwm"), f"--format must be jsonl or cwm, not {fmt!r}")
        found = {task.id: task for task in load_tasks(tasks)}
        if task_id not in found:
            raise KeyError(f"unknown task {task_id!r}; known: {', '.join(sorted(found))}")
        options = tracing.TraceOptions(include=include, follow_depth=depth, max_events=max_events, max_bytes=max_bytes,
                                       repr_cap=repr_cap, full_locals=full_locals, trace_modules=trace_modules)
        run = tracing.trace_task(found[task_id], argv=command or None, function=function,
                                 args=json.loads(args) if function else None,
                                 patch=patch.read_text() if patch else None, options=options, timeout=timeout)
        path = tracing.write_jsonl(run.traces, out or tracing.default_out(task_id, trace_format), trace_format)
    sys.stdout.write(run.output)
    cut = sum(1 for t in run.traces if t.cut)
    console.print(f"program exit code {run.exit_code}; {len(run.traces)} trace(s), {run.event_count} events"
                  f"{f', {cut} cut at a cap' if cut else ''}; written to {path}", highlight=False, markup=False)


@app.command("trace-corpus")
def trace_corpus(
    out: Path = typer.Option(..., "--out", "-o", help="Corpus folder: manifest.json, traces/<task>.jsonl, cwm/<task>.jsonl."),
    tasks: Path = TasksOption,
    task_ids: Optional[list[str]] = typer.Option(None, "--task", help="Only these task ids (repeatable; default all)."),
    dataset: Optional[Path] = DatasetOption,
    repo_mirror: Optional[Path] = RepoMirrorOption,
    recipes: Optional[Path] = RecipesOption,
    select: Optional[list[str]] = typer.Option(None, "--select", help="pytest selection instead of the task's test command "
                                               "(repeatable; each is split like a shell word list): tests/, a node id, -k EXPR."),
    suite: str = typer.Option("whole", "--suite", help="whole: the task's runner over the repository's whole suite; "
                              "task: the task's test command as written (only the tests it names)."),
    shards: int = typer.Option(1, "--shards", min=1, help="Split each suite into this many shards, one container each "
                               "(pytest: by test file; sympy: --split); shards spread over the workers."),
    tokenizer: str = typer.Option("bytes", "--tokenizer", help="What `tokens` counts over each record's CWM text: bytes "
                                  "(byte-level) or a tokenizer.json file (needs the tokenizers package)."),
    with_test_patch: bool = typer.Option(False, "--with-test-patch", help="Apply the task's hidden test patch first (default: "
                                         "the repository's own tests at base_commit)."),
    function_traces: bool = typer.Option(True, "--function-traces/--no-function-traces",
                                         help="Also a function-level trace per repository function a test calls."),
    max_function_traces: int = typer.Option(100, "--max-function-traces", min=0, help="Function-level traces kept per test."),
    levels: str = typer.Option("function", "--levels", help="function: test and function-level records; repository: each "
                               "test's whole trace with the source of every repository function it reached as context "
                               "(CWM's repository-level traces); both."),
    context_bytes: int = typer.Option(64_000, "--context-bytes", min=1_000, help="Bytes of source context per "
                                      "repository-level record (functions past it are left out and counted)."),
    max_repository_traces: Optional[int] = typer.Option(None, "--max-repository-traces", min=1,
                                                        help="Repository-level records in the whole corpus."),
    before_after: bool = typer.Option(False, "--before-after", help="Instead of suites: trace each task's FAIL_TO_PASS "
                                      "tests on the buggy tree and with its gold patch applied (a synthesized task's bug "
                                      "and fix); pairs.json and pairs/<task>.jsonl: both traces, the first divergence, "
                                      "the functions whose traces differ."),
    dedupe: bool = typer.Option(True, "--dedupe/--no-dedupe", help="Drop traces whose content the corpus already holds."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run each suite untraced first and compare every test's outcome."),
    max_events: int = typer.Option(10_000, "--max-events", min=1, help="Events per test trace (cut and marked past it)."),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes", min=1, help="Bytes of events per test trace (cut and marked past it)."),
    repr_cap: int = typer.Option(200, "--repr-cap", min=8),
    max_traces: Optional[int] = typer.Option(None, "--max-traces", min=1, help="Records in the whole corpus."),
    max_total_bytes: Optional[int] = typer.Option(None, "--max-total-bytes", min=1, help="Bytes of JSONL records in the whole corpus."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", min=1, help="Wall time of this run (tasks not reached are left for a re-run)."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=1, help="Seconds per suite run (default: the task's grading_timeout)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (records only) or cwm (records and their CWM rendering)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Tasks traced at once, each in its own container."),
    restart: bool = typer.Option(False, "--restart", help="Start the corpus afresh (default: resume, skipping finished tasks)."),
    image_mode: str = ImagesOption,
) -> None:
    """Trace every test of each task's suite (one trace per test function, plus function-level traces) into a corpus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    with _friendly_errors():
        from .build import images
        from .traces import corpus as corpora
        from .traces import host as tracing

        if fmt not in ("jsonl", "cwm"):
            raise ValueError(f"--format must be jsonl or cwm, not {fmt!r}")
        if suite not in ("whole", "task"):
            raise ValueError(f"--suite must be whole or task, not {suite!r}")
        if levels not in ("function", "repository", "both"):
            raise ValueError(f"--levels must be function, repository or both, not {levels!r}")
        found = _dataset_tasks(tasks, dataset, repo_mirror, recipes)
        found = _only(found, task_ids, "--task")
        selection = [word for item in (select or []) for word in shlex.split(item)]
        options = corpora.CorpusOptions(
            trace=tracing.TraceOptions(max_events=max_events, max_bytes=max_bytes, repr_cap=repr_cap),
            select=selection, suite="task" if suite == "task" else "whole", shards=shards, tokenizer=tokenizer, with_test_patch=with_test_patch, function_traces=function_traces,
            max_function_traces_per_test=max_function_traces, levels=cast(Any, levels), repository_context_bytes=context_bytes,
            max_repository_traces=max_repository_traces, dedupe=dedupe, check_outcomes=check,
            max_traces=max_traces, max_bytes=max_total_bytes, max_seconds=max_seconds, timeout=timeout, cwm=fmt == "cwm")
        builder = images.ImageBuilder(images=_images_mode(image_mode))
        if before_after:
            _before_after(found, out, options, workers, builder)
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("traces {task.fields[traces]}, failed {task.fields[failed]}"), TimeElapsedColumn(),
                      console=err) as progress:
            bar = progress.add_task("tracing suites", total=len(found) * shards, traces=0, failed=0)
            counts = {"traces": 0, "failed": 0}

            def finished(row) -> None:
                counts["traces"] += row.test_traces + row.function_traces + row.repository_traces
                counts["failed"] += row.status == "failed"
                progress.update(bar, advance=1, traces=counts["traces"], failed=counts["failed"],
                                description=f"last {_e(row.task_id)}")

            manifest = corpora.trace_corpus(found, out, options, workers=workers, builder=builder, restart=restart,
                                            on_task=finished)
    table = Table(title=_e(f"trace corpus in {out}"))
    for column in ("task", "status", "tests", "failed tests", "test traces", "function traces", "repository traces",
                   "duplicates", "cut",
                   "MB", "tokens", "outcomes"):
        table.add_column(column)
    for row in manifest.tasks.values():
        status = "[green]done[/]" if row.status == "done" else (
            f"[yellow]stopped: {_e(row.stopped_by or '')}[/]" if row.status == "stopped" else "[red]failed[/]")
        same = "-" if not row.outcomes_checked or row.status == "failed" else ("[green]unchanged[/]" if row.outcomes_unchanged
                                                    else f"[red]{len(row.outcome_changes)} changed[/]")
        table.add_row(_e(row.key), status, str(row.tests), str(len(row.failed_tests)), str(row.test_traces),
                      str(row.function_traces), str(row.repository_traces), str(row.duplicates), str(sum(row.cut.values())),
                      f"{row.bytes / 1e6:.1f}", str(row.tokens), same)
    console.print(table)
    for row in manifest.tasks.values():
        if row.error:
            err.print(f"{row.key}: {row.error}", highlight=False, markup=False, soft_wrap=True)
        for change in row.outcome_changes:
            err.print(f"{row.task_id}: {change.test_id}: {change.untraced} untraced, {change.traced} traced",
                      highlight=False, markup=False, soft_wrap=True)
    if manifest.not_reached:
        err.print(f"{len(manifest.not_reached)} task(s) not reached in --max-seconds; run again to continue",
                  highlight=False, markup=False)
    totals = manifest.totals
    console.print(f"{totals['test_traces']} test and {totals['function_traces']} function trace(s), "
                  f"{totals['repository_traces']} repository-level trace(s), "
                  f"{totals['duplicates']} duplicate(s) dropped, {totals['bytes']} bytes, {totals['tokens']} tokens; manifest: {out / 'manifest.json'}",
                  highlight=False, markup=False)
    if totals["failed_tasks"] or totals["outcome_changes"]:
        raise typer.Exit(1)


def _before_after(found: list, out: Path, options: Any, workers: int, builder: Any) -> None:
    """`trace-corpus --before-after`: the deciding tests traced on the buggy and the fixed tree."""
    from rich.table import Table

    from .traces import pairs

    manifest = pairs.trace_before_after(found, out, options, workers=workers, builder=builder)
    table = Table(title=_e(f"before/after traces in {out}"))
    for column in ("task", "status", "method", "kind", "function", "tests", "pairs", "diverged", "tokens"):
        table.add_column(column)
    for row in manifest.tasks.values():
        meta: dict[str, str] = next((task.meta for task in found if task.id == row.task_id), {})
        table.add_row(_e(row.task_id), "[green]done[/]" if row.status == "done" else "[red]failed[/]",
                      _e(meta.get("method", "-")), _e(meta.get("kind", "-")), _e(meta.get("function", "-")),
                      str(len(row.tests)), str(row.pairs), str(row.diverged), str(row.tokens))
    console.print(table)
    for row in manifest.tasks.values():
        if row.error:
            err.print(f"{row.task_id}: {row.error}", highlight=False, markup=False, soft_wrap=True)
    totals = manifest.totals
    console.print(f"{totals['pairs']} pair(s) of {totals['tests']} test(s), {totals['diverged']} diverged, "
                  f"{totals['tokens']} tokens; manifest: {out / 'pairs.json'}", highlight=False, markup=False)
    if totals["failed_tasks"]:
        raise typer.Exit(1)


@app.command()
def serve(
    tasks: Path = TasksOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs a token."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535),
    token: Optional[str] = typer.Option(None, "--token", envvar="SWE_ENV_TOKEN", show_envvar=True,
                                        help="Bearer token clients must send (prefer the environment variable)."),
    operator_token: Optional[str] = typer.Option(
        None, "--operator-token", envvar="SWE_ENV_OPERATOR_TOKEN", show_envvar=True,
        help="Bearer token that lists and reaches every session (clients see only their own)."),
    max_sessions: int = typer.Option(64, "--max-sessions", min=1, help="Sessions (containers) open at once."),
    idle_timeout: float = typer.Option(600.0, "--idle-timeout", min=0.1, help="Seconds before an idle session is closed."),
    trajectory_path: Optional[Path] = typer.Option(None, "--trajectory-path", help="Append every episode to this JSONL file."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: warning, info, debug, ..."),
) -> None:
    """Serve the env over HTTP and WebSocket (sessions, OpenEnv routes); needs the `server` extra."""
    try:
        from . import server
    except ImportError as exc:
        err.print(f"[bold red]error:[/] {_e(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    with _friendly_errors():
        options = {"trajectory_path": str(trajectory_path)} if trajectory_path else {}
        server.serve(server.ServerConfig(tasks=str(tasks), host=host, port=port, token=token or None,
                                         operator_token=operator_token or None, max_sessions=max_sessions, idle_timeout=idle_timeout,
                                         env_options=options, log_level=log_level))

LabelOption = typer.Option(None, "--label", help="Only images carrying this label, KEY=VALUE (repeatable).")


def _labels(pairs: list[str] | None) -> dict[str, str]:
    labels = {}
    for pair in pairs or []:
        key, sign, value = pair.partition("=")
        if not sign or not key:
            raise ValueError(f"--label {pair!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return "just now"


@images_app.command("ls")
def images_ls(labels: Optional[list[str]] = LabelOption) -> None:
    """swe-env's images, least recently used first: kind, task or repositories, version, unique and total size, last use."""
    from rich.table import Table

    from .build import store

    with _friendly_errors():
        found = store.inventory()
        unique = budget.unique_sizes(found)
        last = budget.effective_last_use(found)
        mine = sorted(store.ours(found, _labels(labels)), key=lambda image: (last[image.id], image.id))
    now = time.time()
    table = Table(title=_e(f"{len(mine)} swe-env images, {budget.human_size(budget.disk_used(mine))} on disk"))
    for column in ("kind", "task / repository", "version", "unique", "size", "last used", "in use", "image"):
        table.add_column(column, justify="right" if column in ("unique", "size", "in use") else "left", overflow="fold")
    for image in mine:
        table.add_row(image.kind or "", _e(image.task or "-"), _e(image.version or "-"), budget.human_size(unique[image.id]),
                      budget.human_size(image.size), _ago(now - last[image.id]), str(image.in_use or ""),
                      _e(image.tags[0] if image.tags else image.id[7:19]))
    console.print(table)


@images_app.command("prune")
def images_prune(
    max_disk: Optional[str] = typer.Option(None, "--max-disk", help="Remove least recently used images until swe-env's take at most SIZE (e.g. 50G)."),
    older_than: Optional[str] = typer.Option(None, "--older-than", help="Remove images unused for AGE (e.g. 7d, 12h)."),
    keep: Optional[list[str]] = typer.Option(None, "--keep", help=f"Never remove this kind (repeatable): {', '.join(budget.KINDS)}."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would go; remove nothing."),
    labels: Optional[list[str]] = LabelOption,
) -> None:
    """Remove swe-env's images, least recently used first; never one a container uses, nor one a kept image is built on."""
    from .build import store

    with _friendly_errors():
        if max_disk is None and older_than is None:
            raise ValueError("images prune: give --max-disk SIZE and/or --older-than AGE")
        plan, failed = store.prune(max_disk=max_disk, older_than=older_than, keep=tuple(keep or ()), dry_run=dry_run,
                                   labels=_labels(labels))
    verb = "would remove" if dry_run else "removed"
    for image in plan.remove:
        console.print(f"{verb} {image.kind} {image.tags[0] if image.tags else image.id[7:19]} "
                      f"({budget.human_size(image.size)})", markup=False, highlight=False)
    for image, why in failed:
        err.print(f"kept {image.tags[0] if image.tags else image.id[7:19]}: the engine refused: {why}", markup=False, highlight=False)
    console.print(f"{len(plan.remove) - len(failed)} image(s) {'would be removed' if dry_run else 'removed'}; "
                  f"swe-env's images {'would take' if dry_run else 'take'} "
                  f"{budget.human_size(plan.disk_after)} (were {budget.human_size(plan.disk_before)})", markup=False, highlight=False)
    if max_disk is not None and plan.disk_after > budget.parse_size(max_disk):
        held = "; ".join(f"{image.tags[0] if image.tags else image.id[7:19]}: {why}" for image, why in plan.held[:5])
        err.print(f"still over --max-disk {max_disk}: the rest is held ({held})", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


@images_app.command("push")
def images_push(
    registry: str = typer.Option(..., "--registry", help="HOST, HOST:PORT or HOST:PORT/NAMESPACE to push to (plain http only on loopback)."),
    kinds: Optional[list[str]] = typer.Option(None, "--kind", help="Kinds to push (repeatable; default base, env, instance, published)."),
    labels: Optional[list[str]] = LabelOption,
) -> None:
    """Push swe-env's built images to a registry, for other machines' `--registry` to pull instead of building."""
    from .build import registry as registries
    from .build import store

    with _friendly_errors():
        registries.check_registry(registry)
        wanted = tuple(kinds or ("base", "env", "instance", "published"))
        unknown = [kind for kind in wanted if kind not in budget.KINDS or kind == "partial"]
        if unknown:
            raise ValueError(f"--kind {', '.join(unknown)}: not a kind of image to push; kinds: {', '.join(budget.KINDS[:-1])}")
        chosen = [image for image in store.ours(store.inventory(), _labels(labels)) if image.kind in wanted and image.tags]
        for image in chosen:
            for tag in image.tags:
                console.print(registries.push(tag, registry), markup=False, highlight=False)
    console.print(f"pushed {len(chosen)} image(s) to {registry}", markup=False, highlight=False)


def main(argv: Optional[list[str]] = None) -> None:
    # SIGTERM unwinds the main thread through every `finally` (containers closed); the atexit
    # hook in sandbox.py then closes what worker threads still hold.
    try:
        from .runtime import handle_termination_signals

        handle_termination_signals()
        app(args=argv if argv is not None else sys.argv[1:], prog_name="swe-env")
    except KeyboardInterrupt:
        # Ctrl-C before a command's own handling (while modules load or options are read): one line, no traceback.
        err.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
