"""The `swe-env` command: parses arguments, calls the rooms, prints tables. No logic of its own."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import engine, images
from .grading import Grader
from .repos import RepoError
from .rollout import rollout as run_rollout
from .sandbox import SandboxError
from .task import DEFAULT_BASE_IMAGE, Task, TaskSpecError, load_tasks
from .trajectory import Trajectory

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A Dockerized gym environment for software-engineering agents.")
tasks_app = typer.Typer(no_args_is_help=True, help="Inspect task specs.")
app.add_typer(tasks_app, name="tasks")
# Piped output (CI logs, `| tee`) gets room for full task ids instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

TasksOption = typer.Option(Path("tasks"), "--tasks", "-t", help="A task file, a task folder, or a folder of task folders.")
_USER_ERRORS = (TaskSpecError, engine.EngineUnavailable, images.ImageBuildError, RepoError, SandboxError, ValueError, KeyError)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """Known failures become one red line and exit code 2, never a traceback."""
    try:
        yield
    except _USER_ERRORS as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted; containers were removed[/]")
        raise typer.Exit(130) from None


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=False,
    )


def _build_all(tasks: list[Task]) -> dict[str, str]:
    with _progress() as progress:
        bar = progress.add_task("building images", total=len(tasks))
        builder = images.ImageBuilder(progress=lambda message: progress.update(bar, description=message))
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
        engine.client()
        found = load_tasks(tasks) if tasks.exists() else []
        for name in sorted({task.environment.base_image for task in found} or {DEFAULT_BASE_IMAGE}):
            images.ensure_os_image(name, progress=lambda message: err.print(f"[cyan]setup:[/] {message}"))
            console.print(f"base image [bold]{name}[/] is ready")


@tasks_app.command("list")
def tasks_list(tasks: Path = TasksOption) -> None:
    """List the tasks with their repository, commit and test counts."""
    with _friendly_errors():
        found = load_tasks(tasks)
    table = Table(title=f"{len(found)} tasks in {tasks}")
    for column in ("task", "repo", "commit", "fail→pass", "pass→pass", "gold"):
        table.add_column(column)
    for task in found:
        table.add_row(task.id, task.repo, task.base_commit[:12], str(len(task.tests.fail_to_pass)),
                      str(len(task.tests.pass_to_pass)), "yes" if task.gold_patch else "no")
    console.print(table)


@app.command()
def build(tasks: Path = TasksOption) -> None:
    """Build (or find cached) images for every task."""
    with _friendly_errors():
        tags = _build_all(load_tasks(tasks))
    for task_id, tag in tags.items():
        console.print(f"{task_id}: {tag}")


@app.command()
def validate(tasks: Path = TasksOption) -> None:
    """Prove each task: its gold patch resolves it and an empty patch does not."""
    with _friendly_errors():
        found = load_tasks(tasks)
        tags = _build_all(found)
        grader = Grader()
        table = Table(title="task validation")
        for column in ("task", "gold", "empty", "verdict"):
            table.add_column(column)
        failures = 0
        with _progress() as progress:
            bar = progress.add_task("grading", total=len(found))
            for task in found:
                progress.update(bar, description=f"grading {task.id}")
                gold = grader.grade(task, task.gold_patch or "", image=tags[task.id])
                empty = grader.grade(task, "", image=tags[task.id])
                ok = bool(task.gold_patch) and gold.resolved and not empty.resolved and empty.status == "graded"
                failures += not ok
                table.add_row(task.id, _verdict(gold), _verdict(empty), "[green]ok[/]" if ok else "[red]INVALID[/]")
                progress.advance(bar)
    console.print(table)
    if failures:
        err.print(f"[bold red]{failures} task(s) invalid[/]")
        raise typer.Exit(1)
    console.print(f"[green]all {len(found)} tasks valid[/]")


def _verdict(report) -> str:
    if report.status != "graded":
        return f"[yellow]{report.status}[/]"
    return "[green]resolved[/]" if report.resolved else "unresolved"


def _run_agents(found: list[Task], agents: list[str], out: Path, episodes: int, workers: int) -> list[Trajectory]:
    results: list[Trajectory] = []
    with _progress() as progress:
        bar = progress.add_task("episodes", total=len(found) * episodes * len(agents))
        for agent in agents:
            progress.update(bar, description=f"agent {agent}")
            results += run_rollout(found, agent, episodes_per_task=episodes, workers=workers, out=out,
                                   on_episode=lambda _t: progress.advance(bar))
    return results


def _results_table(results: list[Trajectory], title: str) -> Table:
    table = Table(title=title)
    for column in ("task", "agent", "steps", "reward", "resolved", "seconds", "end"):
        table.add_column(column, justify="right" if column in ("steps", "reward", "seconds") else "left")
    for t in sorted(results, key=lambda t: (t.task_id, t.agent)):
        resolved = "[green]yes[/]" if t.resolved else "no"
        end = t.termination or "-"
        if t.error:
            end = f"[red]{end}[/]"
        table.add_row(t.task_id, t.agent, str(len(t.steps)), f"{t.reward:g}", resolved, f"{t.seconds:.1f}", end)
    return table


@app.command()
def rollout(
    agent: str = typer.Option(..., "--agent", "-a", help="Agent name (oracle, null)."),
    tasks: Path = TasksOption,
    episodes_per_task: int = typer.Option(1, "--episodes-per-task", "-k", min=1),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
    out: Path = typer.Option(Path("runs/rollout/trajectories.jsonl"), "--out", "-o", help="JSONL file trajectories are appended to."),
) -> None:
    """Run an agent on every task and append trajectories to a JSONL file."""
    with _friendly_errors():
        found = load_tasks(tasks)
        _build_all(found)
        results = _run_agents(found, [agent], out, episodes_per_task, workers)
    console.print(_results_table(results, f"{agent} on {len(found)} tasks"))
    console.print(f"trajectories appended to {out}")


@app.command()
def demo(
    tasks: Path = TasksOption,
    out: Path = typer.Option(Path("runs/demo/trajectories.jsonl"), "--out", "-o"),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
) -> None:
    """The main job: oracle and null agents on every bundled task, graded by the hidden tests."""
    started = time.monotonic()
    with _friendly_errors():
        found = load_tasks(tasks)
        _build_all(found)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        results = _run_agents(found, ["oracle", "null"], out, 1, workers)
    console.print(_results_table(results, f"swe-env demo: {len(found)} tasks × oracle, null"))
    oracle_ok = all(t.resolved and t.reward == 1 for t in results if t.agent == "oracle")
    null_ok = all(not t.resolved and t.reward == 0 for t in results if t.agent == "null")
    console.print(f"trajectories: {out}   total {time.monotonic() - started:.1f} s")
    if oracle_ok and null_ok:
        console.print("[bold green]as expected: every oracle row resolved (reward 1), every null row reward 0[/]")
    else:
        err.print("[bold red]unexpected: an oracle row is unresolved or a null row got a reward[/]")
        raise typer.Exit(1)


@app.command()
def gc(everything: bool = typer.Option(False, "--all", help="Remove every swe-env container, not only orphans.")) -> None:
    """Remove swe-env containers whose owner is gone or whose time-to-live has passed."""
    with _friendly_errors():
        removed = engine.collect_garbage(everything=everything)
    console.print(f"removed {len(removed)} container(s)" + (f": {', '.join(removed)}" if removed else ""))


def main(argv: Optional[list[str]] = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="swe-env")


if __name__ == "__main__":
    main()
