"""The grader's disk check on the real engine: code under test that writes past `limits.disk`
(one big file, or many empty ones) is stopped and scores as unresolved, the model's failure."""

from __future__ import annotations

import threading
import uuid

import pytest

from swe_env.grading.grader import Grader
from swe_env.runtime.disk import DiskWatch
from swe_env.runtime.sandbox import Sandbox, SandboxError

from ..helpers import with_code as _with_code

pytestmark = pytest.mark.docker

SMALL_DISK = "64m"
"""The tasks' grader containers write a few hundred KB and files of their own; this leaves room for that."""

# Appended to the package the tests import: the code runs inside pytest's process, during collection.
# Each writes far past SMALL_DISK (but a bounded amount, should the check fail) and then hangs, so a run
# that no one stopped would end only at the grading timeout.
BIG_FILE = """
import time as _time
with open("/tmp/swe-env-filler.bin", "wb") as _f:
    for _ in range(768):  # 768 MB at most
        _f.write(b"x" * (1 << 20))
        _f.flush()
_time.sleep(3600)
"""
MANY_FILES = """
import os as _os, time as _time
_os.makedirs("/tmp/swe-env-filler", exist_ok=True)
for _i in range(60000):  # empty: no bytes in the writable layer, but each one an inode of the host's
    open("/tmp/swe-env-filler/%d" % _i, "w").close()
_time.sleep(3600)
"""
# The same without the hang: the run ends by itself, perhaps before any check during it.
QUICK_BIG_FILE = """
with open("/tmp/swe-env-filler.bin", "wb") as _f:
    for _ in range(200):
        _f.write(b"x" * (1 << 20))
"""


def _small(task, grading_timeout: float = 300):
    limits = task.limits.model_copy(update={"disk": SMALL_DISK, "grading_timeout": grading_timeout})
    return task.model_copy(update={"limits": limits})


def _graders_left(docker_client, probe: str) -> list[str]:
    found = docker_client.containers.list(all=True, filters={"label": f"swe_env.probe={probe}"})
    return [c.name for c in found if c.status != "removing"]


def test_gold_patch_still_resolves_under_a_small_disk_limit(task, image):
    report = Grader().grade(_small(task), task.gold_patch, image=image)
    assert report.status == "graded" and report.resolved and report.reward == 1.0, (report.status, report.error)
    assert report.error is None and not any("disk" in line for line in report.log)


@pytest.mark.parametrize("filler", ["big_file", "many_empty_files"])
def test_code_that_fills_the_disk_is_stopped_and_scores_unresolved(task, image, docker_client, filler):
    """With the real fix too: the tests would pass, but the run went over the limit, so nothing it wrote
    counts. The filler hangs afterwards: only the watcher's stop ends the run before the grading timeout
    (a timeout would be its own status, not this one)."""
    _alone, with_fix = _with_code(image, task, BIG_FILE if filler == "big_file" else MANY_FILES)
    probe = uuid.uuid4().hex[:12]
    report = Grader(reward_mode="signed", labels={"probe": probe}).grade(_small(task), with_fix, image=image)
    assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
    assert not report.resolved and report.reward == -1.0  # the unresolved reward, not an excluded one
    assert "the code under test went over the disk limit" in report.error and SMALL_DISK in report.error
    assert "the run was stopped" in report.error and "nothing it wrote is believed" in report.error
    if filler == "many_empty_files":
        assert "files and folders" in report.error  # the inode count caught it: the layer's bytes are ~0
    assert report.report_source == "none" and report.test_exit_code is None
    assert set(report.test_results.values()) == {"missing"}
    assert report.tests_status["FAIL_TO_PASS"].failure == list(task.tests.fail_to_pass)
    assert _graders_left(docker_client, probe) == []
    assert not [t for t in threading.enumerate() if t.name.endswith("-disk")]


def test_a_filler_that_ends_by_itself_is_caught_after_the_run(task, image):
    """No hang: the run may finish before any check during it; the check after the run decides the same."""
    alone, with_fix = _with_code(image, task, QUICK_BIG_FILE)
    for patch in (alone, with_fix):
        report = Grader().grade(_small(task), patch, image=image)
        assert report.status == "graded" and not report.infrastructure_failure, (report.status, report.error)
        assert not report.resolved and report.reward == 0.0
        assert "over the disk limit" in report.error and "nothing it wrote is believed" in report.error
        assert set(report.test_results.values()) == {"missing"}
    # The same patch under the default limit (4g) resolves: the verdict above is the limit's.
    assert Grader().grade(task, with_fix, image=image).resolved


def test_a_check_the_engine_could_not_make_is_ours(task, image):
    """An engine failure of the disk check is an infrastructure failure (SandboxError), never the model's."""
    with Sandbox.for_task(_small(task), image, "grader", user=None) as box:
        watch = DiskWatch(box.disk)
        watch.failure = SandboxError("container x cannot be inspected: 500 Server Error")
        with pytest.raises(SandboxError, match="disk check of the grader's container failed"):
            watch.reckon()
        watch.over = "the container wrote 1.00 GB, over the task's disk limit of 64m"
        assert watch.reckon() == watch.over  # the engine's finding of an overrun decides
        # No finding during the run: the check after it is made now (this container wrote nothing).
        assert DiskWatch(box.disk).reckon() is None


def test_a_sparse_file_counts_at_its_length(task, image):
    """The size is the engine's (`SizeRw`: apparent sizes), as in an episode: a file the code under test
    stretches to 100 GB (no blocks written) is over the default 4g."""
    stretch = "import atexit, os\natexit.register(lambda: os.truncate(open('/tmp/sparse', 'w').name, 100 * 2**30))\n"
    _alone, with_fix = _with_code(image, task, stretch)
    report = Grader().grade(task, with_fix, image=image)
    assert report.status == "graded" and not report.resolved and report.reward == 0.0, (report.status, report.error)
    assert "over the disk limit" in report.error and "107.37 GB" in report.error


@pytest.mark.parametrize("path", ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"])
def test_the_files_the_engine_mounts_from_its_host_count(task, image, path):
    """/etc/hosts, /etc/hostname and /etc/resolv.conf are the host's files, mounted read-write, outside the
    writable layer: what the code under test writes into them counts against the limit all the same."""
    stretch = f"import atexit, os\natexit.register(lambda: os.truncate({path!r}, 100 * 2**30))\n"
    _alone, with_fix = _with_code(image, task, stretch)
    report = Grader().grade(task, with_fix, image=image)
    assert report.status == "graded" and not report.resolved, (report.status, report.error)
    assert "over the disk limit" in report.error and "107.37 GB" in report.error


def test_walks_of_a_large_layer_are_paced(task, image):
    """A layer of many files takes the host's walk long, with the container frozen: after a walk, the checks
    between steps wait `WALK_PACING` times as long before walking again (red team rt3, d4), and a check asked
    for outright (a submission's, the grader's last) still walks."""
    from swe_env.runtime import disk

    with Sandbox.for_task(task, image, "episode") as box:
        box.exec("mkdir -p /tmp/many && cd /tmp/many && seq 1 30000 | xargs touch", timeout=300)
        host = box.disk.host_layer()
        if host is None:
            pytest.skip("the engine's layer is not on this host: its figures are the engine's, not walked here")
        walks = []
        measure = host.measure

        def counted(*args, **kwargs):
            walks.append(1)
            return measure(*args, **kwargs)

        host.measure = counted  # type: ignore[method-assign]
        box.disk.check()
        assert len(walks) == 1 and box.disk.next_walk > 0
        box.disk.next_walk += 60  # as after a walk of 15 s (a layer of millions of files): the pacing holds
        for _ in range(3 * disk._DISK_CHECK_EVERY):
            box.disk.after_step(0.01)
        assert len(walks) == 1
        box.disk.after_step(5.0)  # a long command is due a check too, but not before the pacing allows
        assert len(walks) == 1
        box.disk.check()  # asked for outright: walks
        assert len(walks) == 2
