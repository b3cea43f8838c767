"""`swe-env tasks ...` (list, new, import-swebench, import-harbor) and `swe-env validate`, the proof of each task."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape as _e

from .common import (
    BackendOption,
    DatasetOption,
    EnvironmentOption,
    ImagesOption,
    JsonOption,
    QuietOption,
    RayAddressOption,
    RecipesOption,
    RepoMirrorOption,
    TasksOption,
    backend_choice,
    console,
    dataset_tasks,
    emit_json,
    err,
    friendly_errors,
    images_choice,
    only,
    progress_bar,
)


def tasks_list(tasks: Path = TasksOption, as_json: bool = JsonOption, quiet: bool = QuietOption) -> None:
    """List the tasks with their repository, commit and test counts; a repository path that does not exist is an error."""
    from rich.table import Table

    from ..data.task import TaskSpecError, load_tasks

    with friendly_errors():
        found = load_tasks(tasks)
    problems: dict[str, str] = {}
    for task in found:
        try:
            task.check_repo()
        except TaskSpecError as exc:
            problems[task.id] = str(exc)
    if as_json:
        emit_json(
            [
                {
                    "id": task.id,
                    "repo": task.repo,
                    "base_commit": task.base_commit,
                    "source": str(task.source),
                    "fail_to_pass": len(task.tests.fail_to_pass),
                    "pass_to_pass": len(task.tests.pass_to_pass),
                    "gold_patch": bool(task.gold_patch),
                    "error": problems.get(task.id),
                }
                for task in found
            ]
        )
    elif not quiet:
        table = Table(title=_e(f"{len(found)} tasks in {tasks}"))
        for column in ("task", "repo", "commit", "fail→pass", "pass→pass", "gold"):
            table.add_column(column)
        for task in found:
            repo = f"[red]{_e(task.repo)}[/]" if task.id in problems else _e(task.repo)
            table.add_row(
                _e(task.id),
                repo,
                _e(task.base_commit[:12]),
                str(len(task.tests.fail_to_pass)),
                str(len(task.tests.pass_to_pass)),
                "yes" if task.gold_patch else "no",
            )
        console.print(table)
    for problem in problems.values():
        err.print(f"[bold red]error:[/] {_e(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)


def tasks_new(
    repo: Path = typer.Option(..., "--repo", help="The git repository (a folder, a bare repository or a bundle)."),
    base: str = typer.Option(..., "--base", help="The ref the agent starts from (before the fix)."),
    fix: str = typer.Option(..., "--fix", help="The ref with the fix and its tests."),
    tests: list[str] | None = typer.Option(
        None, "--tests", help="Paths (folders or files) that are tests (repeatable; default test folders and test_*.py files)."
    ),
    out: Path = typer.Option(Path("tasks"), "--out", "-o", help="Folder the task folder is written into."),
    task_id: str | None = typer.Option(None, "--id", help="The task's id (default <repo>-<fix sha>)."),
    environment: Path | None = EnvironmentOption,
) -> None:
    """Write a task from two refs: gold patch = the non-test diff, test patch = the test diff, FAIL_TO_PASS /
    PASS_TO_PASS from running both sides (twice each) in the container."""
    from ..data.task import load_environment, load_tasks
    from ..synth import refs

    with friendly_errors():
        env_spec = load_environment(environment) if environment else None
        err.print(f"[cyan]tasks new:[/] building the image and running both sides of {_e(base)}..{_e(fix)}")
        path = refs.task_from_refs(repo, base, fix, out, task_id=task_id, tests=tests, environment=env_spec)
        task = load_tasks(path)[0]
    console.print(
        f"wrote {_e(str(path))}: {len(task.tests.fail_to_pass)} FAIL_TO_PASS, "
        f"{len(task.tests.pass_to_pass)} PASS_TO_PASS; check it with `swe-env validate --tasks {_e(str(path.parent))}`"
    )


def tasks_import_swebench(
    file: Path = typer.Argument(..., help="SWE-bench instances: JSON, JSONL or parquet."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <instance_id>/task.yaml."),
    repo_mirror: Path | None = RepoMirrorOption,
    recipes: Path | None = RecipesOption,
) -> None:
    """Turn SWE-bench instances into task files."""
    with friendly_errors():
        from ..importers import swebench

        written = swebench.import_instances(file, out, repo_mirror, swebench.load_recipes(recipes))
    console.print(f"wrote {len(written)} task file(s) under {out}", markup=False, highlight=False)


def tasks_import_harbor(
    folder: Path = typer.Argument(
        ..., help="A Harbor task folder (task.toml, instruction.md, environment/, tests/, solution/), or a folder of them."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for <id>/task.yaml and <id>/<id>.bundle."),
) -> None:
    """Turn Harbor tasks into task files: builds each environment, snapshots its working folder, runs solve.sh for the gold patch."""
    from ..data.task import load_tasks
    from ..importers import harbor

    with friendly_errors():
        harbor.check_tasks(folder)  # a bad task file is one line, before any progress bar
        with progress_bar() as progress:
            bar = progress.add_task("importing Harbor tasks", total=None)
            written = harbor.import_tasks(folder, out, progress=lambda message: progress.update(bar, description=_e(message)))
    for target in written:
        task = load_tasks(target)[0]
        gold = "gold patch from solve.sh" if task.gold_patch else f"no gold patch: {task.meta.get('harbor_gold', '?')}"
        console.print(f"{task.id}: {target} ({gold})", markup=False, highlight=False, soft_wrap=True)
    console.print(f"wrote {len(written)} task file(s) under {out}", markup=False, highlight=False)


def validate(
    tasks: Path = TasksOption,
    dataset: Path | None = DatasetOption,
    repo_mirror: Path | None = RepoMirrorOption,
    recipes: Path | None = RecipesOption,
    instances: list[str] | None = typer.Option(None, "--instances", help="Only these task / instance ids (repeatable)."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="A sample of N tasks, stratified by repository."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Tasks validated at once."),
    image_mode: str = ImagesOption,
    backend: str = BackendOption,
    ray_address: str | None = RayAddressOption,
    as_json: bool = JsonOption,
    quiet: bool = QuietOption,
) -> None:
    """Prove each task by the validation rule: FAIL_TO_PASS fails without the fix and passes with it, PASS_TO_PASS
    passes on both sides, no id in both lists, the gold patch applies cleanly, no flaky test."""
    from rich.table import Table

    with friendly_errors():
        from ..build import images
        from ..grading.grader import Grader
        from ..run import validation

        builder = images.ImageBuilder(images=images_choice(image_mode))
        found = dataset_tasks(tasks, dataset, repo_mirror, recipes)
        found = only(found, instances, "--instances")
        if sample:
            found = validation.sample_tasks(found, sample, seed)
        with progress_bar(quiet or as_json) as progress:
            bar = progress.add_task("validating", total=len(found))
            counts = {"ok": 0, "bad": 0}

            def advance(result: validation.InstanceValidation) -> None:
                counts["ok" if result.verdict == "valid" else "bad"] += 1
                progress.update(bar, advance=1, description=f"valid {counts['ok']}, not {counts['bad']}; last {_e(result.task_id)}")

            results = validation.validate_tasks(
                found,
                workers=workers,
                builder=builder,
                grader=Grader(builder=builder),
                on_result=advance,
                backend=backend_choice(backend),
                ray_address=ray_address,
            )
    failures = [result for result in results if result.verdict != "valid"]
    if as_json:
        emit_json(
            [
                {
                    "task": r.task_id,
                    "verdict": r.verdict,
                    "cause": r.cause,
                    "violations": r.violations,
                    "warnings": r.warnings,
                    "python": r.python_used,
                    "gold": r.gold.model_dump(include={"status", "resolved", "reward", "error"}) if r.gold else None,
                    "empty": r.empty.model_dump(include={"status", "resolved", "reward", "error"}) if r.empty else None,
                }
                for r in results
            ]
        )
    if as_json or quiet:
        for result in failures:
            err.print(f"{result.task_id}: {result.verdict}: {result.cause}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1 if failures else 0)
    table = Table(title="task validation")
    for column in ("task", "python", "gold", "empty", "ignored ids", "verdict"):
        table.add_column(column)
    for result in results:
        python = _e(f"{result.python_used} (asked {result.python_requested})" if result.python_differs else result.python_used or "")
        verdict = "[green]ok[/]" if result.verdict == "valid" else f"[red]{_e(result.verdict)}[/]"
        # Listed ids the verdict dropped (fragments no report can produce): worth a look when many.
        ignored = str(len(result.gold.ignored_ids)) if result.gold else "-"
        table.add_row(_e(result.task_id), python, _verdict(result.gold), _verdict(result.empty), ignored, verdict)
    console.print(table)
    summary = Table(title="per repository")
    for column in ("repository", "instances", "gold resolved", "empty unresolved", "env errors", "other python"):
        summary.add_column(column)
    for row in validation.summarize(results):
        summary.add_row(_e(row.repo), *(str(n) for n in (row.instances, row.gold_resolved, row.empty_unresolved, row.env_errors, row.other_python)))
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


def _verdict(report) -> str:
    if report is None:
        return "-"
    if report.status != "graded":
        return f"[yellow]{_e(report.status)}[/]"
    return "[green]resolved[/]" if report.resolved else "unresolved"
