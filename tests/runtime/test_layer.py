"""The writable layer measured on this host (runtime/layer.py): the walk on plain folders (no Docker),
then on the real engine, the container frozen while a process in it races the walk."""

from __future__ import annotations

import errno
import os

import pytest

from swe_env.data.task import Limits
from swe_env.runtime import layer
from swe_env.runtime.sandbox import Sandbox


def test_walk_counts_every_entry_and_apparent_bytes(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x" * 1000)
    (tmp_path / "empty").touch()
    with open(tmp_path / "sparse", "wb") as handle:
        handle.truncate(10 * 2**30)  # no blocks, counted at its length as the engine's SizeRw does
    os.link(tmp_path / "a" / "b" / "f", tmp_path / "hard")  # one inode: its bytes count once
    os.symlink("/usr", tmp_path / "link")  # never followed: one entry of len("/usr") bytes
    entries, size = layer.walk(str(tmp_path))
    assert entries == 7  # a, a/b, a/b/f, empty, sparse, hard, link
    assert size == 1000 + 10 * 2**30 + len("/usr")


def test_walk_stops_past_the_limit_and_bounds_what_it_holds(tmp_path):
    for index in range(50):
        (tmp_path / f"folder-{index:02d}-{'n' * 150}").mkdir()
    entries, _size = layer.walk(str(tmp_path), stop_after=10)
    assert entries == 11  # cut once past the limit, not the 50 that are there
    with pytest.raises(layer.HeldTooMuch):
        layer.walk(str(tmp_path), max_held=20 * 200)  # 50 names of 160 characters held at once


def test_walk_refuses_a_path_longer_than_the_host_can_name(tmp_path):
    handle = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(25):  # 25 levels of 200 characters: past PATH_MAX (4,096)
            os.mkdir("d" * 200, dir_fd=handle)
            inner = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=handle)
            os.close(handle)
            handle = inner
    finally:
        os.close(handle)
    with pytest.raises(OSError) as raised:
        layer.walk(str(tmp_path))
    assert raised.value.errno == errno.ENAMETOOLONG


def test_no_host_layer_for_a_remote_engine_or_missing_parts(tmp_path):
    attrs = {"Id": "f" * 64, "State": {"Pid": os.getpid()}, "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": str(tmp_path)}}}
    assert layer.find(attrs, local_engine=False) is None
    assert layer.find({**attrs, "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": str(tmp_path / "gone")}}}, local_engine=True) is None
    # This process's cgroup does not name the id: no freezer, so no host layer.
    assert layer.find(attrs, local_engine=True) is None


@pytest.mark.docker
def test_a_racing_process_cannot_hide_files_from_the_frozen_walk(task, image):
    """A process keeps moving a folder of 3,000 files between two places while the host walks the
    layer over and over: frozen, the container holds still, so every walk counts every file once."""
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        host = box.disk.host_layer()
        assert host is not None, "the engine is this machine's: its layer must be measurable here"
        setup = "mkdir -p /tmp/race/a/x /tmp/race/b && cd /tmp/race/a/x && seq 3000 | xargs touch"
        assert box.exec(["/bin/bash", "-c", setup]).exit_code == 0
        baseline = host.measure().entries
        racer = "nohup /bin/bash -c 'while :; do mv /tmp/race/a/x /tmp/race/b/x; mv /tmp/race/b/x /tmp/race/a/x; done' >/dev/null 2>&1 &"
        assert box.exec(["/bin/bash", "-c", racer]).exit_code == 0
        counts = {host.measure().entries for _ in range(30)}
        # Where the racer happened to be frozen moves at most /tmp/race/a or b's copy-up by one entry.
        assert min(counts) >= baseline - 1 and max(counts) <= baseline + 1, (baseline, counts)
        assert min(counts) > 3000
        # Thawed after every walk: the racer still runs and the container answers.
        assert box.exec(["/bin/bash", "-c", "pgrep -c -f 'mv /tmp/race' || ps -e | wc -l"]).exit_code == 0
        with open(os.path.join(host.freezer.folder, "freezer.state" if not host.freezer.v2 else "cgroup.freeze")) as f:
            assert f.read().strip() in ("THAWED", "0")


@pytest.mark.docker
def test_the_host_figures_agree_with_the_engines(task, image):
    with Sandbox(image, Limits(), task.environment.workdir) as box:
        host = box.disk.host_layer()
        assert host is not None
        write = (
            "mkdir -p /tmp/w/sub && head -c 123456 /dev/zero > /tmp/w/sub/f && touch /tmp/w/e{1..40} "
            "&& ln -s /usr /tmp/w/l && rm -f /etc/issue && truncate -s 3G /tmp/w/sparse"
        )
        assert box.exec(["/bin/bash", "-c", write], user="root").exit_code == 0
        usage = host.measure()
        assert usage.entries == box.disk.files_created()
        assert usage.bytes == box.disk.used()


def test_the_grader_watch_paces_its_walks_by_their_cost_within_the_bound():
    """`DiskWatch` waits `DISK_CHECK_SECONDS` between checks, and after a walk of the layer `WALK_PACING` times as
    long as the walk took, never more than `MAX_WALK_WAIT` (15 s): red team rt3, d4. The clock and the wait are the
    test's own (no wall clock): each walk moves the clock by its cost, each wait by what it waited."""
    import concurrent.futures
    from types import SimpleNamespace

    from swe_env.runtime import disk

    now = [1000.0]
    costs = [0.1, 2.0, 10.0, 100.0, 0.0]  # the walks' seconds, in order
    walked, waits = [], []

    class Layer:
        def measure(self, stop_after=None):
            cost = costs[len(walked)]
            walked.append(cost)
            now[0] += cost
            return layer.Usage(entries=10, bytes=100)

    life = SimpleNamespace(name="paced", spec=SimpleNamespace(limits=Limits(disk="1g")))
    meter = disk.DiskMeter(life, SimpleNamespace(starting=False), clock=lambda: now[0])  # type: ignore[arg-type]
    found: concurrent.futures.Future = concurrent.futures.Future()
    found.set_result(Layer())
    meter._layer_lookup = found

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        now[0] += seconds
        return len(waits) > len(costs)  # the run ends after the last walk

    disk.DiskWatch(meter, disk.DISK_CHECK_SECONDS, wait=wait)._watch()
    assert walked == costs
    pacing = disk.WALK_PACING
    assert waits == [disk.DISK_CHECK_SECONDS, disk.DISK_CHECK_SECONDS, pacing * 2.0, disk.MAX_WALK_WAIT, disk.MAX_WALK_WAIT, disk.DISK_CHECK_SECONDS]
    assert max(waits) <= disk.MAX_WALK_WAIT == 15.0


def test_a_paced_meter_walks_between_steps_only_once_the_pause_is_over():
    from types import SimpleNamespace

    from swe_env.runtime import disk

    assert disk.walk_pause(0.5) == disk.WALK_PACING * 0.5 and disk.walk_pause(1e6) == disk.MAX_WALK_WAIT
    assert disk.walk_pause(-1.0) == 0.0  # a clock that went back never paces by a negative
    assert disk.next_check_in(3.0, next_walk=10.0, now=2.0) == 8.0 and disk.next_check_in(3.0, 0.0, 2.0) == 3.0
    now = [50.0]
    meter = disk.DiskMeter(SimpleNamespace(), SimpleNamespace(starting=False), clock=lambda: now[0])  # type: ignore[arg-type]
    checks = []
    meter.check = lambda wait=True: checks.append(now[0])  # type: ignore[method-assign]
    meter.next_walk = 60.0
    meter.after_step(5.0)  # a long command is due a check, but the pause of the last walk is not over
    assert checks == []
    now[0] = 60.0
    meter.after_step(5.0)
    assert checks == [60.0]
