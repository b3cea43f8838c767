"""Many episodes and predictions: `swe-env rollout`, `export`, `demo`, `evaluate`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape as _e

from .common import (
    BackendOption,
    ImagesOption,
    JsonOption,
    MaxDiskOption,
    QuietOption,
    RayAddressOption,
    RecipesOption,
    RegistryOption,
    RepoMirrorOption,
    TasksOption,
    backend_choice,
    build_all,
    console,
    emit_json,
    err,
    friendly_errors,
    images_choice,
    load,
    one_of,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..data.task import Task
    from ..data.trajectory import Trajectory


def _run_agents(found: list[Task], agents: list[str], out: Path, episodes: int, workers: int, quiet: bool = False, **options) -> list[Trajectory]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..run.rollout import rollout as run_rollout

    results: list[Trajectory] = []
    # "errors": episodes ended by the agent's crash, or by a failure of ours or of the model's endpoint.
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("resolved {task.fields[resolved]}, errors {task.fields[failed]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    ) as progress:
        planned = len(found) * episodes * len(agents)
        bar = progress.add_task("episodes", total=planned, resolved=0, failed=0)
        counts = {"skipped": 0, "done": 0, "resolved": 0, "failed": 0}
        for agent in agents:
            progress.update(bar, description=f"agent {_e(agent)}")
            before = dict(counts)

            def show(p, before=before) -> None:
                counts.update(
                    skipped=before["skipped"] + p.skipped,
                    done=before["done"] + p.done,
                    resolved=before["resolved"] + p.resolved,
                    failed=before["failed"] + p.failed,
                )
                # Episodes skipped on resume leave the bar, so the ETA is that of the work left.
                progress.update(
                    bar, total=planned - counts["skipped"], completed=counts["done"], resolved=counts["resolved"], failed=counts["failed"]
                )

            results += run_rollout(found, agent, episodes_per_task=episodes, workers=workers, out=out, on_progress=show, **options)
        if counts["skipped"] and not quiet:
            err.print(f"{counts['skipped']} episode(s) already in {out} were skipped (--restart runs them again)", markup=False, highlight=False)
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
    return {
        "task": t.task_id,
        "agent": t.agent,
        "model": t.model,
        "episode_index": t.episode_index,
        "steps": len(t.steps),
        "reward": t.reward,
        "resolved": t.resolved,
        "seconds": t.seconds,
        "termination": t.termination,
        "error": t.error,
    }


def _all_ended_on_our_side(results: list[Trajectory]) -> bool:
    """Every episode ended by our machinery or the model's endpoint: nothing was learnt about the agent."""
    from ..errors import INFRASTRUCTURE_ENDINGS

    return bool(results) and all(t.termination in INFRASTRUCTURE_ENDINGS for t in results)


def rollout(
    agent: str = typer.Option(..., "--agent", "-a", help="Agent: oracle, null, openai, or package.module:Class."),
    tasks: Path = TasksOption,
    episodes_per_task: int = typer.Option(1, "--episodes-per-task", "-k", min=1),
    workers: int = typer.Option(2, "--workers", "-w", min=1, help="Episodes at a time."),
    out: Path = typer.Option(Path("runs/rollout/trajectories.jsonl"), "--out", "-o", help="JSONL file trajectories are appended to."),
    restart: bool = typer.Option(False, "--restart", help="Run every episode, even those --out already holds (default: resume)."),
    backend: str = BackendOption,
    ray_address: str | None = RayAddressOption,
    warm_pool: int = typer.Option(0, "--warm-pool", min=0, help="Containers kept started ahead per task image."),
    base_url: str | None = typer.Option(None, "--base-url", help="openai agent: API root, e.g. http://host:8000/v1 ($OPENAI_BASE_URL)."),
    model: str | None = typer.Option(None, "--model", help="openai agent: model name ($OPENAI_MODEL); key from $OPENAI_API_KEY."),
    tool_format: str | None = typer.Option(None, "--tool-format", help="openai agent: native (function calling) or cwm (<tool: NAME> text)."),
    max_turns: int | None = typer.Option(None, "--max-turns", min=1, help="openai agent: model calls per episode."),
    registry: str | None = RegistryOption,
    max_disk: str | None = MaxDiskOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Run an agent on every task and append trajectories to a JSONL file (finished episodes are skipped).

    Exits 1 when every episode ended by a failure of ours or of the model's endpoint."""
    with friendly_errors():
        from ..agents import checked_agent

        found = load(tasks)
        backend_choice(backend)
        agent_options = {
            key: value
            for key, value in (("base_url", base_url), ("model", model), ("tool_format", tool_format), ("max_turns", max_turns))
            if value is not None
        }
        # A bad agent, option, endpoint or model name fails in one line before any build or container.
        checked_agent(agent, found, **agent_options)
        if backend == "thread":
            build_all(found, quiet=quiet or as_json, registry=registry, max_disk=max_disk)  # on Ray, each node builds (or pulls, or finds) its own
        shared = {key: value for key, value in (("warm_pool", warm_pool), ("registry", registry), ("max_disk", max_disk)) if value}
        results = _run_agents(
            found,
            [agent],
            out,
            episodes_per_task,
            workers,
            quiet=quiet or as_json,
            resume=not restart,
            backend=backend,
            ray_address=ray_address,
            agent_options=agent_options,
            **shared,
        )
    if as_json:
        emit_json([_trajectory_row(t) for t in results])
    elif not quiet:
        console.print(_results_table(results, f"{agent} on {len(found)} tasks"))
        console.print(f"trajectories appended to {out}", markup=False, highlight=False)
    if _all_ended_on_our_side(results):
        causes = sorted({_short(t.error or t.termination or "", 200) for t in results})
        err.print(
            f"[bold red]error:[/] every episode ended by a failure of ours or of the model's endpoint, not the agent's: {_e('; '.join(causes[:3]))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def export(
    trajectories: list[Path] = typer.Argument(..., help="Trajectory JSONL files (from rollout or demo)."),
    fmt: str = typer.Option("chat", "--format", "-f", help="chat (OpenAI messages with tool calls) or cwm (CWM tool-call text)."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file to write (replaced)."),
    min_reward: float | None = typer.Option(None, "--min-reward", help="Keep episodes with at least this reward."),
    resolved_only: bool = typer.Option(False, "--resolved", help="Keep resolved episodes only."),
    dedupe: float | None = typer.Option(
        None,
        "--dedupe",
        min=0.0,
        max=1.0,
        help="Drop near-duplicates: action-sequence similarity at or above this (0-1) to a kept episode of the same task.",
    ),
) -> None:
    """Turn trajectories into training data: chat-message JSONL for fine-tuning, or CWM's format."""
    with friendly_errors():
        from ..exports import EXPORT_FORMATS
        from ..exports import export as export_trajectories

        # The message exports.export gives for another format.
        export_format = one_of(fmt, EXPORT_FORMATS, f"export format must be chat or cwm, not {fmt!r}")
        read, written = export_trajectories(trajectories, out, export_format, min_reward, resolved_only, dedupe)
    console.print(f"{written} of {read} episode(s) written to {out} ({fmt})", markup=False, highlight=False)


def demo(
    tasks: Path = TasksOption,
    out: Path = typer.Option(Path("runs/demo/trajectories.jsonl"), "--out", "-o"),
    workers: int = typer.Option(2, "--workers", "-w", min=1),
) -> None:
    """The main job: oracle and null agents on every bundled task, graded by the hidden tests."""
    started = time.monotonic()
    with friendly_errors():
        found = load(tasks)
        build_all(found)
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


def evaluate(
    dataset: Path = typer.Option(..., "--dataset", "-d", help="A SWE-bench instances file, or a folder of task files."),
    predictions: str = typer.Option(..., "--predictions", "-p", help="Predictions file (JSON list/object, JSONL), or gold, or empty."),
    run_id: str = typer.Option(..., "--run-id", help="Names the run; a re-run with the same id skips finished instances."),
    max_workers: int = typer.Option(4, "--max-workers", "-w", min=1),
    report_dir: Path = typer.Option(Path("."), "--report-dir", help="Where logs/run_evaluation/ and the run report go."),
    repo_mirror: Path | None = RepoMirrorOption,
    recipes: Path | None = RecipesOption,
    instance_ids: str | None = typer.Option(None, "--instance-ids", help="Comma-separated ids to evaluate (default: all)."),
    image_mode: str = ImagesOption,
    registry: str | None = RegistryOption,
    max_disk: str | None = MaxDiskOption,
    backend: str = BackendOption,
    ray_address: str | None = RayAddressOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Grade a model's predictions like SWE-bench's harness: per-instance logs and a run report."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with friendly_errors():
        from ..build import images, store
        from ..grading.grader import Grader
        from ..importers import swebench
        from ..run.evaluate import evaluate as run_evaluation

        store.prune_before_building(max_disk)
        grader = Grader(labels={"evaluation": run_id}, builder=images.ImageBuilder(images=images_choice(image_mode), registry=registry))
        found = swebench.load_dataset(dataset, repo_mirror, swebench.load_recipes(recipes))
        chosen = [i.strip() for i in (instance_ids or "").split(",") if i.strip()] or None
        preds = swebench.load_predictions(predictions, found)
        resolved = 0
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("resolved {task.fields[resolved]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet or as_json,
        ) as progress:
            total = sum(1 for p in preds if chosen is None or p.instance_id in chosen)
            bar = progress.add_task(f"evaluating {run_id}", total=total, resolved=0)

            def advance(result) -> None:
                nonlocal resolved
                resolved += result.outcome == "resolved"
                progress.update(bar, advance=1, resolved=resolved)

            outcome = run_evaluation(
                found,
                preds,
                run_id,
                max_workers=max_workers,
                report_dir=report_dir,
                instance_ids=chosen,
                on_result=advance,
                grader=grader,
                backend=backend_choice(backend),
                ray_address=ray_address,
            )
    if as_json:
        emit_json({model: {**report, "report_path": str(outcome.report_paths[model])} for model, report in outcome.reports.items()})
        return
    for model, report in outcome.reports.items():
        if quiet:
            continue
        console.print(
            f"[bold]{_e(model)}[/]: {report['resolved_instances']} resolved, {report['unresolved_instances']} unresolved, "
            f"{report['empty_patch_instances']} empty, {report['error_instances']} error(s) "
            f"of {report['total_instances']}; report: {_e(str(outcome.report_paths[model]))}"
        )
        for instance_id, detail in report["error_details"].items():
            err.print(f"  {instance_id}: {detail}", highlight=False, markup=False)
