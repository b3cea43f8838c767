"""The engine's list of a container's changes, read as it streams (pure; the engine's side is in test_trust_after_run)."""

from __future__ import annotations

import json

import pytest

from swe_env.runtime import changes


def _listing(entries: list[tuple[str, int]]) -> bytes:
    """The engine's JSON for `GET /containers/{id}/changes`, as Docker writes it."""
    return json.dumps([{"Path": path, "Kind": kind} for path, kind in entries], separators=(",", ":")).encode()


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 5, 7, 64, 10_000])
def test_every_entry_is_counted_whatever_the_chunking(size):
    listing = _listing([(f"/tmp/f{i}", 1) for i in range(300)] + [("/etc/passwd", 0), ("/bin/ls", 2)])
    assert changes.count_entries(_chunks(listing, size)) == 302


def test_counting_stops_once_past_the_limit():
    read = []

    def stream():
        for chunk in _chunks(_listing([(f"/tmp/f{i}", 1) for i in range(10_000)]), 64):
            read.append(chunk)
            yield chunk

    counted = changes.count_entries(stream(), stop_after=10)
    assert 10 < counted < 20  # the chunk that went past the limit is counted whole
    assert len(read) < 20  # and the rest of the stream was never read


def test_an_empty_layer_has_no_entries():
    assert changes.count_entries([b"[]"]) == 0
    assert changes.count_entries([b"null"]) == 0


@pytest.mark.parametrize("size", [1, 3, 16, 10_000])
def test_changed_or_deleted_host_programs_are_found_across_chunks(size):
    listing = _listing(
        [
            ("/usr/bin/wc", 0),  # not a program the host runs
            ("/usr/bin/find", 0),  # modified
            ("/bin/bash", 2),  # deleted
            ("/usr/bin/git", 1),  # added (an overlay whiteout would be Kind 2): not altered
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", 0),
            ("/usr/lib/x86_64-linux-gnu", 0),  # the folder itself changed when a file in it did
            ('/tmp/"quoted"\\name', 0),
        ]
    )
    assert changes.altered_host_programs(_chunks(listing, size), limit=20) == ["/usr/bin/find", "/bin/bash", "/usr/lib/x86_64-linux-gnu/libc.so.6"]


def test_the_altered_list_is_bounded():
    listing = _listing([("/bin/bash", 0), ("/bin/sh", 0), ("/usr/bin/env", 0), ("/usr/bin/cat", 0)])
    assert changes.altered_host_programs([listing], limit=2) == ["/bin/bash", "/bin/sh"]


def test_a_library_folder_alone_is_not_a_program():
    assert not changes.is_host_program("/lib/")
    assert changes.is_host_program("/lib/x86_64-linux-gnu/libc.so.6")
    assert changes.is_host_program("/usr/bin/timeout")
    assert not changes.is_host_program("/usr/local/bin/timeout")


def test_a_needed_path_counts_only_when_deleted():
    listing = _listing([("/testbed", 0), ("/testbed/x.py", 1), ("/tmp", 0)])
    assert changes.altered_host_programs([listing], 5, frozenset({"/testbed"})) == []
    moved = _listing([("/testbed", 2), ("/testbed.gone", 1)])
    assert changes.altered_host_programs([moved], 5, frozenset({"/testbed"})) == ["/testbed"]
    assert changes.altered_host_programs([moved], 5) == []


def test_the_engines_stat_tells_a_folder_by_gos_mode_bits():
    from swe_env.runtime.streams import stat_is_folder

    assert stat_is_folder({"name": "testbed", "mode": (1 << 31) | 0o755})
    assert not stat_is_folder({"name": "testbed", "mode": 0o644})  # a regular file where the folder was
    assert not stat_is_folder({"name": "testbed", "mode": (1 << 27) | 0o777, "linkTarget": "/etc/passwd"})  # a link
    assert not stat_is_folder({"name": "testbed"}) and not stat_is_folder({"mode": "2147484141"})


def test_the_loaders_files_and_the_folders_on_the_way_count_as_altered():
    """Red team rt4, e1: every program the host runs broken without one of them changed: a library preloaded through
    `/etc/ld.so.preload` (added, so any change counts), or the folder on the way deleted (`rm /bin`, merged /usr)."""
    listing = _listing(
        [
            ("/etc", 0),
            ("/etc/ld.so.preload", 1),
            ("/usr/local/lib/quiet.so", 1),
            ("/bin", 2),
            ("/usr/lib/x86_64-linux-gnu", 2),
            ("/usr/bin", 0),
            ("/usr/local", 2),
            ("/etc/ld.so.cache", 0),
        ]
    )
    assert changes.altered_host_programs([listing], limit=20) == ["/etc/ld.so.preload", "/bin", "/usr/lib/x86_64-linux-gnu", "/etc/ld.so.cache"]
    # A folder on the way merely changed (a file added under it) is not evidence; nor is a folder off the way.
    assert changes.altered_host_programs([_listing([("/usr/bin", 0), ("/usr/bin/tool", 1), ("/opt", 2)])], 20) == []
