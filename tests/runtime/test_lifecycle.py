"""How `stop_all_processes` tells the container's own processes from the rest in the engine's process list (pure:
lists shaped as the engine's `top` answers with `ps -ef`). The real engine's side is guarded by the fork-bomb tests
(tests/runtime/test_open_path.py, tests/runtime/test_containment.py)."""

from __future__ import annotations

import pytest

from swe_env.runtime.lifecycle import _others_left

_TITLES = ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
_MAIN = 'bash -c trap "kill -9 -1" USR1; ... swe-env-main 3600'


def _top(*rows: tuple[str, str, str]) -> dict:
    return {"Titles": _TITLES, "Processes": [["root", pid, ppid, "0", "12:00", "?", "00:00:00", cmd] for pid, ppid, cmd in rows]}


_OWN = (("100", "90", f"/sbin/docker-init -- {_MAIN}"), ("120", "100", _MAIN), ("130", "120", "sleep 3599"))


def test_only_init_the_main_bash_and_its_sleep_are_the_containers_own():
    assert not _others_left(_top(*_OWN), "100")
    assert not _others_left(_top(*_OWN[:2]), "100")  # between the trap's kill and the next sleep


def test_any_other_process_is_left_whatever_its_name():
    assert _others_left(_top(*_OWN, ("140", "120", "bash")), "100")
    assert _others_left(_top(*_OWN, ("150", "100", "sleep 3599")), "100")  # a sleep, but not the main bash's
    assert _others_left(_top(*_OWN, ("160", "100", f"{_MAIN}")), "100")  # a later process taking the main's name
    assert _others_left(_top(_OWN[0], _OWN[1], ("140", "120", "bash")), "100")  # no count lets it pass for the sleep


def test_a_list_that_cannot_be_told_apart_is_refused_not_counted():
    with pytest.raises(ValueError, match="no PID, PPID or CMD column"):
        _others_left({"Titles": ["PID", "CMD"], "Processes": [["100", "x"]]}, "100")
    with pytest.raises(ValueError, match="not in the engine's process list"):
        _others_left(_top(*_OWN), "999")
    with pytest.raises(ValueError, match="pid unknown"):
        _others_left(_top(*_OWN), "")
