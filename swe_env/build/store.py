"""The engine's store of swe-env's images: what is there, when each was last used, and pruning it to a budget.

- `record_use(tag, task)`: called when `ImageBuilder.ensure` returns an image (found or built). Image
  labels cannot change after a build, so uses go to a small append-only index,
  `$SWE_ENV_CACHE/images/last-used.jsonl` (one short line per image and minute at most, from any
  number of processes; the last line of a tag wins; `prune` compacts it).
- `inventory()`: every image on the engine with its layers, which are swe-env's own (by repository
  name, or the OS image it bootstrapped) and of what kind, the containers using each, and the last use.
- `prune(...)`: removes what `budget.plan_prune` chooses, by tag, never forced, so an image a
  container took meanwhile stays (the engine refuses).

Only images named `swe-env/{base,env,instance,published,harbor}`, the single-layer OS image swe-env
bootstrapped, and untagged leftovers of our builds count as ours: the `swe_env.managed` label alone
does not, since every image built FROM one of ours inherits it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import requests

from ..runtime import engine
from . import budget, repos
from .budget import StoredImage

REPOSITORIES = {
    "swe-env/base": "base",
    "swe-env/env": "env",
    "swe-env/instance": "instance",
    "swe-env/published": "published",
    "swe-env/harbor": "harbor",
}
"""swe-env's image repositories and the kind of image each holds."""
RECORD_EVERY = 60.0
"""Seconds within which another use of the same image is not written again (a training loop resets often)."""
GRACE = 300.0
"""Seconds after its last use during which an image is not pruned: another process may be about to start it."""
_COMPACT_ABOVE = 1 << 20

_written: dict[str, float] = {}
_write_lock = threading.Lock()
_histories: dict[str, list[tuple[str, int]]] = {}
_pruned_at: dict[tuple, float] = {}
_prune_lock = threading.Lock()


def index_path() -> Path:
    return repos.cache_dir() / "images" / "last-used.jsonl"


def record_use(tag: str, task: str = "", repo: str = "", at: float | None = None) -> None:
    """Note that `tag` was used (found or built) for `task` of `repo`, now or `at`; cheap enough for every `ensure`."""
    now = time.time() if at is None else at
    with _write_lock:
        if at is None and now - _written.get(tag, 0.0) < RECORD_EVERY:
            return
        _written[tag] = now
    line = json.dumps({"tag": tag, "at": round(now, 1), "task": task, "repo": repo}) + "\n"
    path = index_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one short line to a file opened for appending: lines from many processes never interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # a read-only cache only loses the ordering of a later prune, never a build


@dataclass
class Use:
    at: float
    task: str
    repo: str


def read_uses() -> dict[str, Use]:
    """The last recorded use of each tag (a torn or foreign line is skipped)."""
    uses: dict[str, Use] = {}
    try:
        text = index_path().read_text(errors="replace")
    except OSError:
        return uses
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            tag, at = str(entry["tag"]), float(entry["at"])
        except (ValueError, KeyError, TypeError):
            continue
        if tag not in uses or at >= uses[tag].at:
            uses[tag] = Use(at, str(entry.get("task") or ""), str(entry.get("repo") or ""))
    return uses


def _compact(uses: dict[str, Use], present: set[str]) -> None:
    """Rewrite the index with one line per tag still on the engine (written aside, then renamed over it)."""
    path = index_path()
    try:
        if path.stat().st_size < _COMPACT_ABOVE:
            return
        aside = path.with_suffix(f".{os.getpid()}.tmp")
        aside.write_text(
            "".join(json.dumps({"tag": tag, "at": use.at, "task": use.task, "repo": use.repo}) + "\n" for tag, use in uses.items() if tag in present)
        )
        os.replace(aside, path)
    except OSError:
        pass


def _layers(image_id: str) -> list[tuple[str, int]]:
    """(key, bytes) per history entry, bottom up; the key hashes the entry with all below it, so it survives a
    push and pull (which drop the intermediate ids) and two images share a key exactly when built on the same past."""
    cached = _histories.get(image_id)
    if cached is None:
        chain = hashlib.sha256()
        cached = []
        for entry in reversed(engine.client().api.history(image_id)):
            chain.update(f"{entry.get('Created')}\0{entry.get('CreatedBy')}\0{entry.get('Size')}\n".encode())
            cached.append((chain.hexdigest()[:24], int(entry.get("Size") or 0)))
        _histories[image_id] = cached
    return cached


def _kind(tags: list[str], labels: dict[str, str], layers: int) -> str | None:
    for tag in tags:
        kind = REPOSITORIES.get(tag.rpartition(":")[0])
        if kind:
            return kind
    ours = labels.get(engine.MANAGED_LABEL) == "1"
    if ours and labels.get("swe_env.bootstrapped") and labels.get("swe_env.kind") == "os" and layers == 1:
        return "os"  # the imported root itself; images built FROM it inherit the labels but have more layers
    if ours and not tags and labels.get("swe_env.kind", "").startswith("image-"):
        return "partial"
    return None


def inventory() -> list[StoredImage]:
    """Every top-level image on the engine (anyone's: their layers share disk with ours), ours marked by kind."""
    api = engine.client().api
    using: dict[str, int] = {}
    for container in api.containers(all=True):
        using[container.get("ImageID", "")] = using.get(container.get("ImageID", ""), 0) + 1
    uses = read_uses()
    found = []
    for entry in api.images():
        tags = [tag for tag in entry.get("RepoTags") or [] if tag != "<none>:<none>"]
        labels = entry.get("Labels") or {}
        try:
            layers = _layers(entry["Id"])
        except docker.errors.NotFound:
            continue  # removed meanwhile
        kind = _kind(tags, labels, len(layers))
        recorded = [uses[tag] for tag in tags if tag in uses]
        # A pulled image keeps the time it was built elsewhere: its use here is what counts.
        last = max(use.at for use in recorded) if recorded else float(entry.get("Created") or 0)
        task = ""
        if kind in ("instance", "published", "harbor"):
            task = labels.get("swe_env.task") or next((use.task for use in recorded if use.task), "")
        version = labels.get("swe_env.commit", "")[:12] or (tags[0].rpartition(":")[2] if tags else "")
        if kind == "published":
            version = labels.get("swe_env.published", version)
        found.append(
            StoredImage(
                id=entry["Id"],
                tags=tags,
                kind=kind,
                layers=layers,
                created=float(entry.get("Created") or 0),
                last_used=last,
                in_use=using.get(entry["Id"], 0),
                task=task,
                version=version,
                labels=labels,
            )
        )
    # Shared layers serve the repositories of the instances built over them.
    children = budget.descendants(found)
    for image in found:
        if image.kind in ("os", "base", "env"):
            repos_over = sorted({use.repo for other in children[image.id] for tag in other.tags if (use := uses.get(tag)) and use.repo} - {""})
            served = [other for other in children[image.id] if other.kind in ("instance", "published")]
            image.task = (
                (", ".join(repos_over[:3]) + (" ..." if len(repos_over) > 3 else ""))
                if repos_over
                else (f"{len(served)} instance(s)" if served else "")
            )
    _compact(uses, {tag for image in found for tag in image.tags})
    return found


def ours(images: list[StoredImage], labels: dict[str, str] | None = None) -> list[StoredImage]:
    """swe-env's own images, optionally only those carrying every one of `labels`."""
    return [image for image in images if image.kind is not None and all(image.labels.get(key) == value for key, value in (labels or {}).items())]


def prune(
    max_disk: int | str | None = None,
    older_than: float | str | None = None,
    keep: tuple[str, ...] = (),
    dry_run: bool = False,
    grace: float = GRACE,
    labels: dict[str, str] | None = None,
) -> tuple[budget.PrunePlan, list[tuple[StoredImage, str]]]:
    """Remove swe-env's images least recently used first (see `budget.plan_prune`); with `labels`, only images
    carrying all of them are candidates. Returns the plan and the planned images the engine would not remove
    (a container took one meanwhile), with the engine's reason."""
    unknown = [kind for kind in keep if kind not in budget.KINDS]
    if unknown:
        raise ValueError(f"--keep {', '.join(unknown)}: unknown kind; kinds: {', '.join(budget.KINDS)}")
    limit = None if max_disk is None else budget.parse_size(max_disk)
    age = None if older_than is None else budget.parse_age(older_than)
    found = inventory()
    if labels:
        # Images outside the selection still hold their layers and keep their ancestors: they just are not ours to remove.
        selected = {image.id for image in ours(found, labels)}
        for image in found:
            if image.id not in selected:
                image.kind = None
    plan = budget.plan_prune(found, time.time(), limit, age, tuple(keep), grace)
    failed: list[tuple[StoredImage, str]] = []
    if dry_run:
        return plan, failed
    api = engine.client().api
    for image in plan.remove:
        try:
            for name in image.tags or [image.id]:
                api.remove_image(name)  # never forced: a container made from it meanwhile keeps it
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            failed.append((image, str(exc.explanation or exc).splitlines()[0][:200]))
        except requests.exceptions.RequestException as exc:
            failed.append((image, f"the engine did not answer ({type(exc).__name__})"))
    return plan, failed


def prune_before_building(max_disk: int | str | None) -> None:
    """`prune(max_disk)` for `EnvConfig.max_disk`, `evaluate` and `rollout`: at most once a minute per budget in
    a process (each env of a rollout asks), never raising (a budget that cannot be met is no reason not to run)."""
    if max_disk is None:
        return
    key = (budget.parse_size(max_disk),)
    with _prune_lock:
        if time.time() - _pruned_at.get(key, 0.0) < RECORD_EVERY:
            return
        _pruned_at[key] = time.time()
        try:
            prune(max_disk=key[0])
        except (docker.errors.DockerException, engine.EngineUnavailable, OSError):
            pass
