"""The disk budget's pure logic: sizes and ages as users write them, and which images a prune removes.

No engine here: `store.py` reads the engine into `StoredImage`s and removes what `plan_prune`
chose, so the choice is unit-tested on plain records.

Layers are compared by a key per layer that names the layer together with everything under it
(the engine's history of an image, read bottom up), so an instance image's first keys are its env
image's keys: the env is the instance's ancestor, and what an image alone holds (its unique size)
is the size of the keys no other image on the engine has.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("os", "base", "env", "instance", "published", "harbor", "partial")
"""Kinds of swe-env's own images: the OS image it bootstrapped, the three build layers, the layer derived
from a published instance image, a Harbor task's environment, and what a failed build left untagged."""

PARTIAL_MIN_AGE = 3600.0
"""Seconds an untagged leftover must be old before a prune takes it: a build under way has untagged steps too."""

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str | int) -> int:
    """Bytes from `20G`, `500MB`, `1.5GiB` or a plain number (K, M, G, T are powers of 1000; Ki, Mi, Gi, Ti of 1024)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"size {text}: must not be negative")
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", text.lower())
    if not match:
        raise ValueError(f"size {text!r}: expected a number with an optional unit (K, M, G, T; KiB, MiB, GiB, TiB), e.g. 50G")
    return int(float(match.group(1)) * _UNITS[match.group(2) or ""])


def parse_age(text: str | float) -> float:
    """Seconds from `7d`, `12h`, `30m`, `2w`, `90s` or a plain number of seconds."""
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"age {text}: must not be negative")
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not match:
        raise ValueError(f"age {text!r}: expected a number with an optional unit (s, m, h, d, w), e.g. 7d")
    return float(match.group(1)) * _AGE_UNITS[match.group(2) or "s"]


def human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return f"{size:.1f} TB"


@dataclass
class StoredImage:
    """One image on the engine, as the budget sees it."""

    id: str
    tags: list[str]
    kind: str | None
    """One of `KINDS` for swe-env's own images; None for anyone else's (never removed, but their layers count)."""
    layers: list[tuple[str, int]]
    """(key, bytes) per layer, bottom up; a key names the layer with all below it."""
    created: float
    last_used: float
    """When a build or a lookup last returned it (the usage index), else when it was created."""
    in_use: int = 0
    """Containers (in any state) made from it."""
    task: str = ""
    """The task (or for shared layers, repositories) it serves, for listings."""
    version: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(size for _key, size in self.layers)

    def extends(self, other: StoredImage) -> bool:
        """Whether `other`'s layers are a proper beginning of this image's (`other` is an ancestor)."""
        return len(other.layers) < len(self.layers) and self.layers[: len(other.layers)] == other.layers


def disk_used(images: list[StoredImage]) -> int:
    """Bytes the layers of `images` take, each shared layer once."""
    return sum(dict(layer for image in images for layer in image.layers).values())


def unique_sizes(images: list[StoredImage]) -> dict[str, int]:
    """Per image id, the bytes of the layers no other image holds (what removing it alone frees)."""
    holders = Counter(key for image in images for key in {k for k, _ in image.layers})
    return {image.id: sum(size for key, size in dict(image.layers).items() if holders[key] == 1) for image in images}


def descendants(images: list[StoredImage]) -> dict[str, list[StoredImage]]:
    """Per image id, the images that extend it (built over it, directly or not)."""
    # A key names a layer with all below it, so an image extends X exactly when it holds X's top key
    # below its own top: one pass over the layers instead of comparing every pair.
    below_top: dict[str, list[StoredImage]] = {}
    for image in images:
        for key, _size in image.layers[:-1]:
            below_top.setdefault(key, []).append(image)
    return {image.id: below_top.get(image.layers[-1][0], []) if image.layers else [] for image in images}


def effective_last_use(images: list[StoredImage], children: dict[str, list[StoredImage]] | None = None) -> dict[str, float]:
    """Per image id, its last use or that of any image built over it (using an instance uses its env)."""
    children = descendants(images) if children is None else children
    return {image.id: max([image.last_used, *(other.last_used for other in children[image.id])]) for image in images}


@dataclass
class PrunePlan:
    remove: list[StoredImage]
    disk_before: int
    """Bytes swe-env's images take now."""
    disk_after: int
    """Bytes they take once `remove` is gone."""
    held: list[tuple[StoredImage, str]]
    """swe-env's images kept although the criteria named them, and why (in use, an ancestor of a kept image, ...)."""


def plan_prune(
    images: list[StoredImage],
    now: float,
    max_disk: int | None = None,
    older_than: float | None = None,
    keep: tuple[str, ...] = (),
    grace: float = 0.0,
) -> PrunePlan:
    """Which of swe-env's images to remove, least recently used first: those unused for `older_than` seconds,
    then more until swe-env's images take at most `max_disk` bytes.

    Never removed: anyone else's image, a kind in `keep`, an image a container uses, an image that an
    image kept extends (an env while an instance of it stays; a snapshot keeps its instance), one used
    in the last `grace` seconds (another process may be about to start it), and an untagged leftover
    younger than `PARTIAL_MIN_AGE` (a build under way)."""
    ours = [image for image in images if image.kind is not None]
    children = descendants(images)
    last = effective_last_use(images, children)
    kept = {image.id for image in images}
    # How many kept images of ours hold each layer: the disk they take is the size of the layers held.
    holders: Counter[str] = Counter()
    sizes: dict[str, int] = {}
    for image in ours:
        for key, size in dict(image.layers).items():
            holders[key] += 1
            sizes[key] = size
    disk = sum(sizes.values())
    before = disk
    removed: list[StoredImage] = []
    held: dict[str, str] = {}

    def why_held(image: StoredImage) -> str | None:
        if image.kind in keep:
            return f"kind {image.kind} kept"
        if image.in_use:
            return f"used by {image.in_use} container(s)"
        if now - last[image.id] < grace:
            return "used moments ago"
        if image.kind == "partial" and now - image.created < PARTIAL_MIN_AGE:
            return "a build may be under way"
        child = next((other for other in children[image.id] if other.id in kept), None)
        if child is not None:
            return f"{(child.tags or [child.id[7:19]])[0]} is built on it"
        return None

    # Leftovers of failed builds first (nothing can use them), then least recently used. An image's
    # ancestors were last used no earlier than it (see effective_last_use), and on a tie the longer
    # image comes first, so one pass reaches an ancestor after whatever was built over it.
    order = sorted(ours, key=lambda image: (image.kind != "partial", last[image.id], -len(image.layers), image.id))
    for image in order:
        old = older_than is not None and now - last[image.id] >= older_than
        if not (old or (max_disk is not None and disk > max_disk)):
            continue
        reason = why_held(image)
        if reason is not None:
            held[image.id] = reason
            continue
        kept.discard(image.id)
        removed.append(image)
        for key in dict(image.layers):
            holders[key] -= 1
            if holders[key] == 0:
                disk -= sizes[key]
    return PrunePlan(removed, before, disk, [(image, held[image.id]) for image in ours if image.id in held])
