"""The calibration script's pure parts (`bench/calibrate_gold.py`): its diagnostic copy of the sealed hook
still fits the hook as it is now (`--explain`), and `--deadline` reads a UTC time. No Docker."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

import pytest

from .helpers import bench_module

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def calibrate_gold():
    with bench_module("calibrate_gold") as module:
        yield module


def test_the_explaining_copy_of_the_hook_fits_the_hook_and_compiles(calibrate_gold):
    source = (ROOT / "swe_env" / "grading" / "reporter" / "sitecustomize.py").read_text()
    explained = calibrate_gold.explaining_hook(source)
    compile(explained, "sitecustomize.py", "exec")
    flag = explained[explained.index("    def flag(why, frame):") :]
    # the stack is added to `where` before the flag is emitted, and the hook remembers each event
    assert flag.index('where += " || event "') < flag.index('emit(b"flag"')
    assert 'state["event"] = event' in explained
    assert len(explained.splitlines()) == len(source.splitlines()) + 6


def test_a_hook_of_another_shape_is_refused_with_what_to_update(calibrate_gold):
    with pytest.raises(SystemExit, match="_FLAG_EMIT"):
        calibrate_gold.explaining_hook("def on_event(event, args):\n    pass\n")


def test_the_deadline_is_a_utc_time_of_today(calibrate_gold):
    day = time.gmtime()
    assert calibrate_gold.deadline_of("10:35") == calendar.timegm((day.tm_year, day.tm_mon, day.tm_mday, 10, 35, 0))
    assert calibrate_gold.deadline_of(None) is None
    for wrong in ("25:00", "10:61", "1035", "ten"):
        with pytest.raises(SystemExit, match="--deadline"):
            calibrate_gold.deadline_of(wrong)
