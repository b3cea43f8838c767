"""`swe-env synthesize`: validated tasks made from a repository."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape as _e

from .common import EnvironmentOption, RecipesOption, console, err, friendly_errors


def synthesize(
    repo: str = typer.Option(..., "--repo", help="The git repository (a folder, a bare repository or a bundle)."),
    commit: str = typer.Option("HEAD", "--commit", help="The tree the bugs go into."),
    name: str | None = typer.Option(None, "--name", help="The repository's name in task ids (default: its folder's)."),
    environment: Path | None = EnvironmentOption,
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="REPO@VERSION (psf/requests@2.27): build the image from the SWE-bench recipe of that repository and version (instead of --environment).",
    ),
    recipes: Path | None = RecipesOption,
    out: Path = typer.Option(..., "--out", "-o", help="Folder the task folders go to (a re-run resumes)."),
    max_tasks: int = typer.Option(100, "--max-tasks", min=1, help="Stop when the folder holds this many tasks."),
    max_candidates: int | None = typer.Option(None, "--max-candidates", min=1, help="Candidates tried at most (default five per task wanted)."),
    methods: list[str] | None = typer.Option(
        None, "--methods", help="procedural, history, model, combine (repeatable; default all but model, and model too with --model)."
    ),
    kinds: list[str] | None = typer.Option(None, "--kinds", help="Procedural or model kinds (repeatable; default all)."),
    functions: list[str] | None = typer.Option(None, "--functions", help="Only these functions (qualified name or path::name; repeatable)."),
    model: str | None = typer.Option(
        None, "--model", help="OpenAI-compatible endpoint (…/v1) for the model method; it also writes the problem statements. Key: $OPENAI_API_KEY."
    ),
    model_name: str | None = typer.Option(None, "--model-name", help="The model asked (default: the first the endpoint lists)."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Containers validating candidates at once."),
    hide_tests: bool = typer.Option(
        False, "--hide-tests", help="Take the failing tests out of the task's tree; they come back through the test patch."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the candidates' order."),
    max_minutes: float | None = typer.Option(
        None, "--max-minutes", min=0.1, help="Start no candidate after this many minutes (the whole run's time; learning the suite stops at it too)."
    ),
    learn_timeout: float | None = typer.Option(
        None,
        "--learn-timeout",
        min=1,
        help="Seconds each learning run of the "
        "suite may take (default: 600 for the untraced run, 20 times what "
        "it took, at least 600, for the traced run).",
    ),
) -> None:
    """Synthesize validated tasks from a repository: bugs that break tests which passed, kept by the validation rule."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..data.task import load_environment
    from ..synth import pipeline

    with friendly_errors():
        config = pipeline.SynthConfig(
            repo=repo,
            commit=commit,
            name=name,
            environment=load_environment(environment) if environment else None,
            recipe=recipe,
            recipes=recipes,
            out=out,
            max_tasks=max_tasks,
            max_candidates=max_candidates,
            methods=methods or None,
            kinds=kinds or None,
            functions=functions or None,
            model=model,
            model_name=model_name,
            workers=workers,
            hide_tests=hide_tests,
            seed=seed,
            max_minutes=max_minutes,
            learn_timeout=learn_timeout,
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("validated {task.fields[validated]}, rejected {task.fields[rejected]}"),
            TimeElapsedColumn(),
            console=err,
        ) as progress:
            bar = progress.add_task("building the image and learning the suite", total=None, validated=0, rejected=0)

            def show(summary: pipeline.Summary) -> None:
                progress.update(
                    bar,
                    total=summary.planned,
                    completed=summary.candidates,
                    validated=summary.validated,
                    rejected=sum(summary.rejected.values()),
                    description=_e(f"candidates; last {summary.last}" if summary.last else "candidates"),
                )

            summary = pipeline.synthesize(config, on_progress=show)
    table = Table(title=_e(f"synthesis into {out} ({summary.seconds:g} s)"))
    for column in ("method", "candidates", "validated", "acceptance"):
        table.add_column(column)
    for method, counts in sorted(summary.per_method.items()):
        rate = counts["validated"] / counts["candidates"] if counts["candidates"] else 0.0
        table.add_row(_e(method), str(counts["candidates"]), str(counts["validated"]), f"{rate:.0%}")
    console.print(table)
    if summary.flaky_tests:
        err.print(
            f"{len(summary.flaky_tests)} flaky test(s) left out of every task: {', '.join(summary.flaky_tests[:5])}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    reasons = ", ".join(f"{reason} {n}" for reason, n in summary.rejected.most_common()) or "none"
    console.print(
        f"{summary.candidates} candidate(s), {summary.validated} validated, rejected: {reasons}; "
        f"{summary.skipped} decided by an earlier run; {summary.total_tasks} task(s) in {out}",
        markup=False,
        highlight=False,
    )
