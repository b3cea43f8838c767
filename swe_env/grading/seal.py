"""Sealed results: the key the grader gives one test run, and reading the records its sealed hook wrote.

The grader's start-up module (`reporter/sitecustomize.py`) installs an audit hook in the test
process that alone holds a fresh key and writes every record as one line `SEQ PAYLOAD MAC`
(MAC: HMAC-SHA256 of `SEQ PAYLOAD`, hex) on the run's results stream. Payloads:

- `begin RUNNER PID [native]` (SEQ 0; `native`: written by the native hook, `reporter/_seal.c`,
  which holds the key in C memory only; without it, by the weaker pure-Python hook),
  `end EXIT_STATUS` (the last one);
- `test STATUS HEXID[,HEXID...]` (ids hex-encoded UTF-8; pytest: the node id);
- `flag HEXTEXT`: tamper evidence, written the moment the code under test did something
  (also with SEQ `cPID` from a forked child, outside the chain).

The results are believed only when the chain is whole: SEQ 0, 1, 2 ... with no gap, every MAC
valid, and an end record present (a run that ended abnormally, by a signal or an abort, has
none). An interrupted pytest session (collection errors, `pytest.exit`) still writes its end:
what it recorded is believed, and the tests it did not run are missing, so they fail. Any other bytes
on the stream are someone else's writing: they are not believed, and are themselves tamper
evidence, except the unsealed notes `- note HEXTEXT -` (why the native hook did not load), which
are only shown. A flag written twice (by the native hook and the Python one, which check some
events alike) is kept once. `unsealed python X.Y` says the interpreter has no audit hooks (before 3.8): nothing
can be sealed there, so nothing is believed.

Pure logic: no I/O. Parsing is one pass over the bounded bytes; flags are capped.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from . import testlogs

KEY_BYTES = 32
MAX_FLAGS = 50
"""Tamper flags kept in a report (the rest are counted in the last one)."""
_FLAG_CHARS = 400

PYTEST_STATUS = {
    "passed": testlogs.PASSED,
    "failed": testlogs.FAILED,
    "error": testlogs.ERROR,
    "skipped": testlogs.SKIPPED,
    # As SWE-bench's pytest parser (and pytest's JUnit report): an expected failure passes,
    # and a non-strict unexpected pass is a pass (a strict one is reported as failed).
    "xfailed": testlogs.PASSED,
    "xpassed": testlogs.PASSED,
}
RECORDER_STATUS = {
    **PYTEST_STATUS,
    # SWE-bench's Django and sympy parsers record no expected failure or unexpected
    # success, so a listed test that ends so is missing, i.e. failed, there; here too.
    "xfailed": testlogs.FAILED,
    "xpassed": testlogs.FAILED,
}


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


MAX_WATCHED_FILES = 8192
"""Patched files the native hook keeps from the key file (`MAX_PATCHED` in `reporter/_seal.c`); a patch that changes
more is flagged by the grader, since code in the files past it would run unjudged (red team, 7 December)."""


def key_file(
    key: bytes,
    patched: list[str],
    runner_is_repo: bool,
    changed_lines: dict[str, list[tuple[int, int]]] | None = None,
    runner_places: Sequence[str] = (),
) -> bytes:
    """What the grader writes for the sealed hook: the key, whether the repository is the runner, the patched files
    (absolute), and for a patched file whose change is known by hunks its changed lines (`@lines PATH<TAB>FIRST-LAST,...`,
    the new side of each hunk with its context: the hook charges a frame read in that file to the patch only from code
    whose lines meet them; a file without an entry is the patch's as a whole). The native hook takes an `@lines` entry
    for a path no code has, so it stays a per-file judge. With `runner_is_repo`, `runner_places` (absolute) are the
    runner's own files and folders as the runner probe found them in the image (`@runner PATH`): the only code of the
    patch's the hooks exempt from their stack checks (`RunnerFacts.runner_code`; never a module's `__file__`)."""
    places = [f"@runner {place}" for place in runner_places if place.startswith("/") and "\n" not in place]
    if not runner_is_repo:
        places = []
    lines = [key.hex(), "runner_is_repo" if runner_is_repo else "-", *patched, *places]
    for path, ranges in (changed_lines or {}).items():
        if ranges and "\n" not in path and "\t" not in path:
            lines.append("@lines " + path + "\t" + ",".join(f"{first}-{last}" for first, last in ranges))
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")


@dataclass
class Sealed:
    """What a sealed results stream says."""

    results: testlogs.JUnitResults | testlogs.RecordedResults | None = None
    """The statuses, or None when they are not believed (`error` says why)."""
    error: str | None = None
    flags: list[str] = field(default_factory=list)
    """Tamper evidence: the hook's flags, and bytes on the stream that are not valid records."""
    exit_status: int | None = None
    seal: Literal["native", "python"] | None = None
    """Which hook wrote the begin record: `native` (the key never in Python-reachable memory) or `python`."""
    notes: list[str] = field(default_factory=list)
    """Unsealed notes from the start-up module (why the native hook did not load); at most `MAX_FLAGS`."""


def read(data: bytes, key: bytes, runner: str) -> Sealed:
    """Verify and read a results stream (see the module's doc). Never raises."""
    sealed = Sealed()
    statuses = PYTEST_STATUS if runner == "pytest" else RECORDER_STATUS
    results: testlogs.JUnitResults | testlogs.RecordedResults = testlogs.JUnitResults() if runner == "pytest" else testlogs.RecordedResults()
    expected, ended, broken, foreign, unsealed = 0, False, None, 0, None
    extra_flags, recorded = 0, 0

    seen: set[str] = set()

    def add_flag(text: str) -> None:
        nonlocal extra_flags
        text = text[:_FLAG_CHARS]
        if text in seen:
            return
        seen.add(text)
        if len(sealed.flags) < MAX_FLAGS:
            sealed.flags.append(text)
        else:
            extra_flags += 1

    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        line = data[start:end]
        start = end + 1
        if not line.strip():
            continue
        if line.startswith(b"unsealed python "):
            unsealed = line[16:40].decode("ascii", errors="replace")
            continue
        if line.startswith(b"- note "):
            if len(sealed.notes) < MAX_FLAGS:
                sealed.notes.append(_unhex(line[7:].split(b" ", 1)[0])[:_FLAG_CHARS])
            continue
        if line.startswith(b"- flag "):  # the hook saw tampering before it had the key
            add_flag("(unsealed) " + _unhex(line[7:].split(b" ", 1)[0]))
            continue
        seq, payload, mac = _split(line)
        if seq is None or not hmac.compare_digest(_mac(key, seq + b" " + payload), mac):
            foreign += 1
            continue
        kind, _, rest = payload.partition(b" ")
        if kind == b"flag":
            add_flag(_unhex(rest))
        if seq.startswith(b"c"):  # a forked child's flag, outside the chain
            foreign += kind != b"flag"
            continue
        if ended or seq != b"%d" % expected:
            broken = broken or f"record {seq.decode('ascii', 'replace')} came where record {expected} was due"
            continue
        expected += 1
        if expected == 1 and kind != b"begin":
            broken = "the first record is not the run's beginning"
        elif expected == 1:
            sealed.seal = "native" if rest.split(b" ")[2:3] == [b"native"] else "python"
        elif kind == b"test":
            word, _, ids = rest.partition(b" ")
            status = statuses.get(word.decode("ascii", errors="replace"))
            if status is None:
                broken = broken or "a test record with an unknown status"
                continue
            for test_id in (_unhex(part) for part in ids.split(b",") if part):
                recorded += 1
                if recorded > testlogs.MAX_TESTCASES:
                    # The tables grow with the results: a stream holding more than any suite runs is not believed.
                    broken = broken or f"more than {testlogs.MAX_TESTCASES} test results"
                    break
                if isinstance(results, testlogs.JUnitResults):
                    testlogs.add_node_status(results, test_id, status)
                    if word == b"xfailed":
                        results.expected_failures.add(test_id)
                else:
                    testlogs.keep_worst(results.by_id, test_id, status)
                    results.records += 1
        elif kind == b"end":
            ended = True
            try:
                sealed.exit_status = int(rest)
            except ValueError:
                broken = broken or "the end record has no exit status"
    if extra_flags:
        sealed.flags.append(f"... and {extra_flags} more")
    if foreign:
        sealed.flags.append(f"{foreign} line(s) on the results stream were not written by the grader's sealed hook")
    if unsealed is not None:
        sealed.error = f"the task's Python ({unsealed}) has no audit hooks (3.8+): its results cannot be sealed, so none is believed"
    elif expected == 0:
        sealed.error = "no sealed record was written"
    elif broken:
        sealed.error = f"the sealed records are not whole ({broken})"
    elif not ended:
        sealed.error = "the run ended without its end record (killed, aborted or cut short)"
    else:
        sealed.results = results
    return sealed


def test_records(data: bytes, key: bytes) -> Iterator[tuple[str, list[str]]]:
    """(status, ids) of each test record on a stream whose MAC is valid, in order; for readers that need a
    record's ids together (the trace corpus) and no verdict: the chain, the end record and flags are `read`'s."""
    for line in data.splitlines():
        seq, payload, mac = _split(line)
        if seq is None or not hmac.compare_digest(_mac(key, seq + b" " + payload), mac):
            continue
        kind, _, rest = payload.partition(b" ")
        if kind == b"test":
            word, _, ids = rest.partition(b" ")
            yield word.decode("ascii", errors="replace"), [_unhex(part) for part in ids.split(b",") if part]


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def _split(line: bytes) -> tuple[bytes | None, bytes, bytes]:
    seq, _, rest = line.partition(b" ")
    payload, _, mac = rest.rpartition(b" ")
    if not seq or not payload or len(mac) != 64:
        return None, b"", b""
    return seq, payload, mac


def _unhex(text: bytes) -> str:
    try:
        return bytes.fromhex(text.decode("ascii")).decode("utf-8", errors="replace")
    except ValueError:
        return "?"
