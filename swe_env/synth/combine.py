"""The `combine` method: two validated bugs of one file (or, failing that, one folder) in one harder task.

Bugs are paired as they validate (`Pairing`): a new bug takes a waiting one of the same file,
else one of the same folder, else it waits; each bug joins at most one pair, so a run's
combined tasks stay a fraction of its single ones. Two bugs of one file are merged with
`git merge-file` from the clean text (edits that touch the same lines do not combine); bugs of
two files are their two diffs. The combined candidate is validated again by the same rule, on
the union of the tests that reach either bug, and kept only when its FAIL_TO_PASS holds every
test each bug broke alone (one bug must not hide the other; `combine_masked` otherwise). The gold patch undoes both: it is the undo
of the combined change, as for every task.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Generic, TypeVar

METHOD = "combine"
T = TypeVar("T")


class Pairing(Generic[T]):
    """Validated bugs waiting for a partner, by file and by folder."""

    def __init__(self) -> None:
        self._waiting: list[tuple[str, T]] = []

    def offer(self, path: str, item: T) -> T | None:
        """The partner for `item` (a bug of `path`), taken from the waiting ones; None: `item` waits."""
        folder = str(PurePosixPath(path).parent)
        for chooser in (lambda p: p == path, lambda p: str(PurePosixPath(p).parent) == folder):
            for index, (other_path, other) in enumerate(self._waiting):
                if chooser(other_path):
                    del self._waiting[index]
                    return other
        self._waiting.append((path, item))
        return None


def merged_text(clean: str, first: str, second: str) -> str | None:
    """Both changes of one file's `clean` text in one text (`git merge-file`); None when they touch the same lines."""
    with tempfile.TemporaryDirectory(prefix="swe-env-combine-") as tmp:
        paths = []
        for name, text in (("first", first), ("clean", clean), ("second", second)):
            path = Path(tmp) / name
            path.write_text(text)
            paths.append(str(path))
        merged = subprocess.run(["git", "merge-file", "-p", "-q", *paths], capture_output=True)
    if merged.returncode != 0:  # >0: conflicts; <0: an error
        return None
    text = merged.stdout.decode("utf-8", errors="surrogateescape")
    return None if text in (clean, first, second) else text
