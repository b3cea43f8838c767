"""What the `swe-env` commands share: the consoles, the options several commands take, one-line errors, the
progress bar, loading and choosing tasks, building their images, checking a choice among fixed values.

Each command imports the rooms it needs when it runs: `--help`, `--version` and a mistyped option load no engine
SDK, no image builder, no grader (only the pure `build.budget`, whose kinds the images commands' help names).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape as _e

from ..errors import InfrastructureError

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..build import images
    from ..data.task import Task

# Piped output (CI logs, `| tee`) gets room for full task ids instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

TasksOption = typer.Option(Path("tasks"), "--tasks", "-t", help="A task file, a task folder, or a folder of task folders.")
_USER_ERRORS = (ValueError, KeyError, InfrastructureError)  # TaskSpecError and the endpoint check are ValueErrors
JsonOption = typer.Option(False, "--json", help="Print the result as one JSON document on stdout (no table, no progress).")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print nothing but errors; the exit code tells the outcome.")
ImagesOption = typer.Option(
    "auto",
    "--images",
    help="Tasks with a published image (SWE-bench's `image`): auto (use it when the "
    "engine has it or can pull it, else build), published (that image or an error), build (always build).",
)
RegistryOption = typer.Option(
    None,
    "--registry",
    help="HOST, HOST:PORT or HOST:PORT/NAMESPACE: pull swe-env's layers from this registry "
    "before building them (`swe-env images push` fills it); a failed pull is a note, then a build.",
)
BackendOption = typer.Option("thread", "--backend", help="thread (this machine) or ray (a Ray cluster).")
RayAddressOption = typer.Option(None, "--ray-address", help="Ray cluster address (auto, ray://host:10001); default: a local Ray.")
MaxDiskOption = typer.Option(
    None,
    "--max-disk",
    help="Disk budget of swe-env's images (e.g. 50G): the least recently "
    "used ones no container uses are removed before building (`swe-env images prune`).",
)
EnvironmentOption = typer.Option(
    None,
    "--environment",
    help="YAML file of environment fields (a task's `environment:`); default pytest, plus `pip install -e .` when the tree is a package.",
)
DatasetOption = typer.Option(
    None, "--dataset", "-d", help="A SWE-bench instances file (JSON, JSONL, parquet) or a folder of task files; instead of --tasks."
)
RepoMirrorOption = typer.Option(None, "--repo-mirror", help="Folder with owner__name clones or bundles, for machines without GitHub.")
RecipesOption = typer.Option(None, "--recipes", help="YAML/JSON file of environment recipes: repo -> version (or *) -> recipe.")


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def load(tasks: Path) -> list[Task]:
    """The tasks of `tasks`, each task's local repository path checked (a wrong one is the task file's error)."""
    from ..data.task import load_tasks

    found = load_tasks(tasks)
    for task in found:
        task.check_repo()
    return found


@contextmanager
def friendly_errors() -> Iterator[None]:
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


def progress_bar(quiet: bool = False) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=quiet,
    )


def build_all(
    tasks: list[Task], mode: images.ImagesMode = "auto", quiet: bool = False, registry: str | None = None, max_disk: str | None = None
) -> dict[str, str]:
    from ..build import images, store

    store.prune_before_building(max_disk)
    with progress_bar(quiet) as progress:
        bar = progress.add_task("building images", total=len(tasks))
        builder = images.ImageBuilder(progress=lambda message: progress.update(bar, description=_e(message)), images=mode, registry=registry)
        tags = {}
        for task in tasks:
            tags[task.id] = builder.ensure(task)
            progress.advance(bar)
        progress.update(bar, description="images ready")
    return tags


def dataset_tasks(tasks: Path, dataset: Path | None, repo_mirror: Path | None, recipes: Path | None) -> list[Task]:
    if dataset is None:
        return load(tasks)
    from ..importers import swebench

    return swebench.load_dataset(dataset, repo_mirror, swebench.load_recipes(recipes))


def only(found: list[Task], ids: list[str] | None, option: str) -> list[Task]:
    """The tasks named by a repeatable id option (all of them when it is not given); an unknown id is refused."""
    if not ids:
        return found
    known = {task.id for task in found}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"{option}: not in the tasks: {', '.join(unknown)}; see `swe-env tasks list`")
    return [task for task in found if task.id in set(ids)]


_Choice = TypeVar("_Choice", bound=str)


def one_of(value: str, choices: tuple[_Choice, ...], error: str) -> _Choice:
    """`value` as the one of `choices` (a Literal's values) it is; ValueError(`error`) otherwise."""
    for choice in choices:
        if value == choice:
            return choice
    raise ValueError(error)


def images_choice(value: str) -> images.ImagesMode:
    from ..build.registry import IMAGES_MODES

    return one_of(value, IMAGES_MODES, f"--images: must be one of {', '.join(IMAGES_MODES)}, not {value!r}")


def backend_choice(value: str) -> Literal["thread", "ray"]:
    return one_of(value, ("thread", "ray"), f"--backend must be thread or ray, not {value!r}")
