"""`swe-env build` and `swe-env images ...` (ls, prune, push): swe-env's images and their disk budget."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape as _e

from ..build import budget  # pure: sizes, ages and kinds (the images commands' help names them)
from .common import ImagesOption, MaxDiskOption, RegistryOption, TasksOption, build_all, console, err, friendly_errors, images_choice, load

_KINDS = ", ".join(budget.KINDS)


def build(
    tasks: Path = TasksOption, image_mode: str = ImagesOption, registry: str | None = RegistryOption, max_disk: str | None = MaxDiskOption
) -> None:
    """Build (or find cached, or pull) images for every task."""
    with friendly_errors():
        tags = build_all(load(tasks), images_choice(image_mode), registry=registry, max_disk=max_disk)
    for task_id, tag in tags.items():
        console.print(f"{task_id}: {tag}", markup=False, highlight=False)


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


def images_ls(labels: list[str] | None = LabelOption) -> None:
    """swe-env's images, least recently used first: kind, task or repositories, version, unique and total size, last use."""
    from rich.table import Table

    from ..build import store

    with friendly_errors():
        found = store.inventory()
        unique = budget.unique_sizes(found)
        last = budget.effective_last_use(found)
        mine = sorted(store.ours(found, _labels(labels)), key=lambda image: (last[image.id], image.id))
    now = time.time()
    table = Table(title=_e(f"{len(mine)} swe-env images, {budget.human_size(budget.disk_used(mine))} on disk"))
    for column in ("kind", "task / repository", "version", "unique", "size", "last used", "in use", "image"):
        table.add_column(column, justify="right" if column in ("unique", "size", "in use") else "left", overflow="fold")
    for image in mine:
        table.add_row(
            image.kind or "",
            _e(image.task or "-"),
            _e(image.version or "-"),
            budget.human_size(unique[image.id]),
            budget.human_size(image.size),
            _ago(now - last[image.id]),
            str(image.in_use or ""),
            _e(image.tags[0] if image.tags else image.id[7:19]),
        )
    console.print(table)


def images_prune(
    max_disk: str | None = typer.Option(None, "--max-disk", help="Remove least recently used images until swe-env's take at most SIZE (e.g. 50G)."),
    older_than: str | None = typer.Option(None, "--older-than", help="Remove images unused for AGE (e.g. 7d, 12h)."),
    keep: list[str] | None = typer.Option(None, "--keep", help=f"Never remove this kind (repeatable): {_KINDS}."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would go; remove nothing."),
    labels: list[str] | None = LabelOption,
) -> None:
    """Remove swe-env's images, least recently used first; never one a container uses, nor one a kept image is built on."""
    from ..build import store

    with friendly_errors():
        if max_disk is None and older_than is None:
            raise ValueError("images prune: give --max-disk SIZE and/or --older-than AGE")
        plan, failed = store.prune(max_disk=max_disk, older_than=older_than, keep=tuple(keep or ()), dry_run=dry_run, labels=_labels(labels))
    verb = "would remove" if dry_run else "removed"
    for image in plan.remove:
        console.print(
            f"{verb} {image.kind} {image.tags[0] if image.tags else image.id[7:19]} ({budget.human_size(image.size)})", markup=False, highlight=False
        )
    for image, why in failed:
        err.print(f"kept {image.tags[0] if image.tags else image.id[7:19]}: the engine refused: {why}", markup=False, highlight=False)
    console.print(
        f"{len(plan.remove) - len(failed)} image(s) {'would be removed' if dry_run else 'removed'}; "
        f"swe-env's images {'would take' if dry_run else 'take'} "
        f"{budget.human_size(plan.disk_after)} (were {budget.human_size(plan.disk_before)})",
        markup=False,
        highlight=False,
    )
    if max_disk is not None and plan.disk_after > budget.parse_size(max_disk):
        held = "; ".join(f"{image.tags[0] if image.tags else image.id[7:19]}: {why}" for image, why in plan.held[:5])
        err.print(f"still over --max-disk {max_disk}: the rest is held ({held})", markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


def images_push(
    registry: str = typer.Option(..., "--registry", help="HOST, HOST:PORT or HOST:PORT/NAMESPACE to push to (plain http only on loopback)."),
    kinds: list[str] | None = typer.Option(None, "--kind", help="Kinds to push (repeatable; default base, env, instance, published)."),
    labels: list[str] | None = LabelOption,
) -> None:
    """Push swe-env's built images to a registry, for other machines' `--registry` to pull instead of building."""
    from ..build import registry as registries
    from ..build import store

    with friendly_errors():
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
