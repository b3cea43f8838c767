"""What a patch's binary hunks make git write, read from their headers before the patch is applied (pure; host git
checks that git writes exactly what the headers say). Red team rt4, g4."""

from __future__ import annotations

import os
import subprocess
import tracemalloc

from swe_env.grading import inflation
from swe_env.grading.grader import MAX_PATCH_BYTES

from ..helpers import added_file, git_binary_patch, git_delta

MiB = 1024 * 1024
_GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def _git(repo, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], env=_GIT_ENV, capture_output=True, check=True, **kwargs)


def _repo(tmp_path, files: dict[str, bytes]):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for name, data in files.items():
        (repo / name).write_bytes(data)
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    return repo


def test_gits_own_binary_patches_are_sized_by_what_they_write(tmp_path):
    # A delta from git itself: a 1 MiB file with a few bytes changed; a literal: a new file of zeros.
    old = os.urandom(MiB)
    repo = _repo(tmp_path, {"data.bin": old})
    new = old[:1000] + b"changed" + old[1007:] + b"tail"
    (repo / "data.bin").write_bytes(new)
    (repo / "zeros.bin").write_bytes(bytes(3 * MiB))
    _git(repo, "add", "-N", "zeros.bin")
    patch = _git(repo, "diff", "--binary").stdout.decode()
    assert "\ndelta " in patch and "\nliteral 3145728\n" in patch  # git chose a delta for the small change
    found = inflation.measure(patch)
    assert found.unreadable == [] and found.hunks == 2
    assert found.written == len(new) + 3 * MiB
    assert found.largest == (3 * MiB, "zeros.bin")


def test_a_crafted_delta_is_sized_by_its_own_header_as_git_writes_it(tmp_path):
    # Each byte 0x80 copies 64 KiB of the source: 16 bytes of delta make a 1 MiB file from a 64 KiB one.
    source = os.urandom(64 * 1024)
    repo = _repo(tmp_path, {"seed.bin": source})
    result = source * 16
    patch = git_binary_patch("seed.bin", result, old=source, delta=git_delta(len(source), len(result), b"\x80" * 16))
    assert "\ndelta 22\n" in patch  # the hunk's own header gives the delta's size, not the file's
    assert inflation.measure(patch).written == len(result)
    (tmp_path / "p.patch").write_text(patch)
    _git(repo, "apply", str(tmp_path / "p.patch"))
    assert (repo / "seed.bin").stat().st_size == len(result)  # what git wrote is what the header says


def test_a_literal_is_sized_by_its_header_and_git_takes_it(tmp_path):
    repo = _repo(tmp_path, {"README": b"x\n"})
    patch = git_binary_patch("blob.dat", bytes(2 * MiB))
    assert inflation.measure(patch).written == 2 * MiB
    (tmp_path / "p.patch").write_text(patch)
    _git(repo, "apply", str(tmp_path / "p.patch"))
    assert (repo / "blob.dat").stat().st_size == 2 * MiB


def test_a_patch_inflating_past_the_disk_limit_or_the_cap_is_refused_and_a_small_one_is_not():
    # 64 MiB of zeros in a patch of ~90 KB: over a 16 MiB disk limit, under the default 4g.
    zeros = git_binary_patch("ledger/blob.dat", bytes(64 * MiB))
    assert len(zeros) < 200_000
    why = inflation.refusal(zeros, "16m")
    assert why is not None and "67108864 bytes" in why and "ledger/blob.dat" in why and str(16 * MiB) in why
    assert inflation.refusal(zeros, "4g") is None
    assert inflation.refusal(git_binary_patch("icon.png", os.urandom(4096)), "16m") is None
    # A delta whose header promises 2 GiB, in a patch of a few hundred bytes: over the cap whatever the disk limit.
    bomb = git_binary_patch("seed.bin", b"", old=b"s" * 64, delta=git_delta(64, 2 * 1024 * MiB, b"\x80"))
    assert len(bomb) < 1000
    why = inflation.refusal(bomb, "100g")
    assert why is not None and str(2 * 1024 * MiB) in why and str(inflation.MAX_INFLATED_BYTES) in why
    # Several hunks add up; text patches are never looked at.
    many = "".join(git_binary_patch(f"b{i}.dat", bytes(6 * MiB)) for i in range(3))
    assert inflation.refusal(many, "16m") is not None and inflation.refusal(many, "32m") is None
    assert inflation.refusal(added_file("x.py", ["literal 99999999999"] * 3), "1m") is None


def test_only_the_forward_hunk_counts():
    # Deleting a large binary file: its reverse hunk is the old file, which git does not write.
    deletion = git_binary_patch("big.bin", b"", old=bytes(64 * MiB)).replace("index ", "deleted file mode 100644\nindex ", 1)
    assert inflation.measure(deletion).written == 0
    assert inflation.refusal(deletion, "16m") is None


def test_a_size_that_cannot_be_read_is_refused():
    delta = git_delta(64, 128, b"\x80")
    good, header = git_binary_patch("seed.bin", b"", old=b"s" * 64, delta=delta), f"delta {len(delta)}"
    assert inflation.refusal(good, "4g") is None
    for broken in (
        good.replace(f"\n{header}\n", f"\n{header}abc\n"),  # not how git writes a header
        good.replace(f"\n{header}\n", "\ndelta -1\n"),
        good.replace(f"\n{header}\n", "\nliteral\n"),
    ):
        assert "cannot be read" in inflation.refusal(broken, "4g")
    # A delta whose data is not base85, or does not inflate, or ends before its sizes.
    lines = good.split("\n")
    data_line = lines.index(header) + 1
    assert "cannot be read" in inflation.refusal("\n".join([*lines[:data_line], "Z~~~~~", *lines[data_line + 1 :]]), "4g")
    short = git_binary_patch("seed.bin", b"", old=b"s" * 64, delta=b"\x80")
    assert "too short" in inflation.refusal(short, "4g")


def test_the_work_is_bounded_for_a_delta_as_large_as_a_patch_may_be():
    # A delta hunk filling the patch cap: only its first bytes are inflated, whatever the rest holds.
    commands = os.urandom(MAX_PATCH_BYTES // 2)
    patch = git_binary_patch("seed.bin", b"", old=b"s" * 64, delta=git_delta(64, 5 * MiB, commands))
    assert len(patch) <= MAX_PATCH_BYTES
    tracemalloc.start()
    try:
        found = inflation.measure(patch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found.written == 5 * MiB and found.unreadable == []
    assert peak < MiB


def _copies(source: str, count: int) -> str:
    return "".join(f"diff --git a/{source} b/copy{i}.txt\nsimilarity index 100%\ncopy from {source}\ncopy to copy{i}.txt\n" for i in range(count))


def test_copies_and_data_less_binaries_are_counted_and_bounded_by_the_largest_source(tmp_path):
    # GNU patch copies a file the patch itself created: 1 MiB of text, then 20 copies of ~90 bytes each.
    grown = added_file("grown.txt", ["x" * 1023] * 1024)
    chained = grown + _copies("grown.txt", 20)
    repo = _repo(tmp_path, {"README": b"x\n"})
    subprocess.run(["patch", "-p1", "--batch", "--quiet"], input=chained.encode(), cwd=repo, check=True)
    assert (repo / "copy19.txt").stat().st_size == MiB  # what it really writes: 21 MiB from a 1 MiB patch
    found = inflation.measure(chained)
    assert (found.copies, found.dataless, found.written) == (20, 0, 0)
    # Each copy is taken as large as the repository's largest file and everything the patch adds.
    why = inflation.copies_refusal(found, 4096, "16m")
    assert why is not None and "20 file(s) as copies" in why and f"up to {4096 + len(chained)} bytes" in why
    assert inflation.copies_refusal(found, 4096, "4g") is None
    # A data-less binary entry (`Binary files ... differ`, git's `Files ...` too) makes a blob already there.
    dataless = (
        "diff --git a/d.bin b/d.bin\nnew file mode 100644\nindex " + "0" * 40 + ".." + "1" * 40 + "\nBinary files /dev/null and b/d.bin differ\n"
    )
    found = inflation.measure(dataless * 3 + dataless.replace("Binary files", "Files"))
    assert (found.copies, found.dataless) == (0, 4)
    assert inflation.copies_refusal(found, 8 * MiB, "16m") is not None
    assert inflation.copies_refusal(found, 1024, "16m") is None
    # One copy of a small file, as a refactoring's patch holds, is never refused; a patch with none never asks.
    assert inflation.copies_refusal(inflation.measure(_copies("README", 1)), 4096, "16m") is None
    assert inflation.copies_refusal(inflation.measure(grown), 10**12, "16m") is None
