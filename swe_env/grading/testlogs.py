"""Reading test results: JUnit XML reports first, pytest's text summary only as a fallback.

Statuses are one of: passed, failed, error, skipped (and "missing" is decided for listed
tests that appear nowhere, "ignored" for listed ids no JUnit report can produce).

Listed ids come in two shapes. Our own tasks list full pytest node ids. SWE-bench's datasets
list what its log parsers scraped from pytest's `-rA` short summary: the text after the
status word cut at the first whitespace, so `tests/t.py::test_x[a b]` is listed as
`tests/t.py::test_x[a`; and for some repositories (its `parse_log_pytest_options`: requests,
pylint, pydicom) a parameter that is an absolute path is shortened to its last component
(`test_x[/tmp/abc/f.txt]` is listed as `test_x[/f.txt]`). `parse_junit` indexes every
testcase of the report under all three forms, and `statuses_for` is the one place where a
listed id is matched to them, so both kinds of task get SWE-bench's verdicts from a report
the grader wrote itself.

Why one module of this size: a listed test id is matched to what a run reported in one place
(`statuses_for`), and that matching needs every form of id the readers index (JUnit's, the summary's,
SWE-bench's cut and path forms); split, each reader would carry a copy of the forms.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat as expat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

PASSED, FAILED, ERROR, SKIPPED, MISSING = "passed", "failed", "error", "skipped", "missing"
IGNORED = "ignored"
"""A listed id no JUnit report can produce (see `unproducible`); the grader drops it from the verdict."""
_RANK = {ERROR: 4, FAILED: 3, SKIPPED: 1, PASSED: 0}

_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(\S+)")

Key = tuple[str, str]


class ReportError(ValueError):
    """The JUnit report is not readable XML."""


# ---------------------------------------------------------------- SWE-bench's id forms


def cut_id(node_id: str) -> str:
    """The id SWE-bench's pytest parsers record for a node id: everything up to the first whitespace.

    Its parsers split the summary line `PASSED <node id>` (for FAILED lines after turning
    " - " into " ") on whitespace and keep the second word, so `t.py::test_x[a b]` becomes
    `t.py::test_x[a`. Whitespace is Python's `str.split()` whitespace, as theirs.
    """
    words = node_id.split(maxsplit=1)
    return words[0] if words else ""


def path_alias(test_id: str) -> str:
    """`test_id` as SWE-bench's `parse_log_pytest_options` records it (requests, pylint, pydicom).

    Its regex `(.*?)\\[(.*)\\]` takes the text before the first `[` and the text up to the last
    `]` (what follows the last `]` is dropped); a parameter starting with "/" (not "//",
    without "*") is shortened to "/" and its last path component:
    `test_x[/tmp/abc/file.txt]` -> `test_x[/file.txt]`. Written without the regex, which
    backtracks quadratically on ids with many `[`.
    """
    start, end = test_id.find("["), test_id.rfind("]")
    if start < 0 or end < start:
        return test_id
    option = test_id[start + 1 : end]
    if option.startswith("/") and not option.startswith("//") and "*" not in option:
        option = "/" + option.split("/")[-1]
    return f"{test_id[:start]}[{option}]"


def known_paths(files: Iterable[str]) -> frozenset[str]:
    """Every file of a tree and every trailing part of its path (`a/b/t.py` gives `b/t.py`, `t.py`).

    An id's file is checked against these, so an id relative to a sub-folder rootdir still counts
    as one of the repository's files."""
    found: set[str] = set()
    for path in files:
        parts = path.split("/")
        found.update("/".join(parts[i:]) for i in range(len(parts)))
    return frozenset(found)


def unproducible(test_id: str, known_files: frozenset[str] | None = None) -> bool:
    """Whether no pytest JUnit report can have a testcase with this id, in any of the three forms.

    Every testcase id has a `::` except a file's own collection entry (`tests/test_a.py`,
    only ever an error or a skip). So an id without `::` that does not end in `.py` is
    a fragment, not a test: SWE-bench's parsers take the word after any line starting with
    a status word, and progress lines, wrapped output or logging (`PASSED [100%]`,
    `ERROR    root:conf.py:12 ...`, `SKIPPED [2] t.py:5: why`) leave ids like `[100%]`,
    `root:conf.py:12` or `[2]` in some datasets. The grader drops such ids (when they match
    nothing in the report) instead of failing the task on them; anything else that is
    absent, however odd, is missing, i.e. failed.
    """
    if "::" not in test_id:
        return not test_id.endswith(".py")
    # An id whose file the repository never had (with the test patch) comes from the output of
    # a test that runs pytest itself (`test_capsysbinary.py::test_hello` in pytest's own suite,
    # printed by an inner run). `known_files` must come from base_commit, never from the tree
    # the agent left, or deleting a file would turn its tests from failed into dropped.
    return known_files is not None and test_id.split("::", 1)[0] not in known_files


# ---------------------------------------------------------------- pytest's JUnit writer, both ways


def _dotted_module(path: str) -> str:
    return re.sub(r"\.py$", "", path.replace("/", "."))


def _written(path: str, names: list[str], suffix: str) -> Key:
    parts = [_dotted_module(path), *names]
    parts[-1] += suffix
    return ".".join(parts[:-1]), parts[-1]


def junit_key(test_id: str) -> Key:
    """The (classname, name) pytest's JUnit writer (every release up to 8.x) gives a node id.

    `tests/test_a.py::TestX::test_y[p]` -> ("tests.test_a.TestX", "test_y[p]"). The id is cut
    at its first `[` before the `::` split, so parameters stay whole in the name.
    """
    before, bracket, params = test_id.partition("[")
    parts = before.split("::")
    return _written(parts[0], parts[1:], bracket + params)


def _junit_keys(test_id: str) -> set[Key]:
    """Every (classname, name) a JUnit writer we know of gives `test_id`.

    pytest <= 8.x (`junit_key`); pytest 9 (split at the first `::`, then at the first `[` of
    the rest, the closing `]` re-added); and a writer that splits the whole id on `::`,
    parameters included (none we know of; kept so such a report still matches).
    """
    keys = {junit_key(test_id)}
    path, sep, tail = test_id.partition("::")
    if sep:
        name_part, bracket, params = tail.partition("[")
        # The parameter part as the id has it: a cut id (`t[a`) never gains a `]` it did not have.
        keys.add(_written(path, name_part.split("::"), f"[{params}" if bracket else ""))
    else:
        keys.add(_written(path, [], ""))
    parts = test_id.split("::")
    keys.add(_written(parts[0], parts[1:], ""))
    return keys


def node_id_of(classname: str, name: str, file: str | None) -> str | None:
    """The node id a testcase was written for, from its `classname`, `name` and `file`; None if unsure.

    The writer turned the id's path into a dotted module (`/` -> `.`, `.py` dropped) and
    joined it and the class parts with "."; `file` (xunit1 only) is the test's file relative
    to the rootdir, so the classname minus that module is the class parts, and the id is
    `file::Class::Nested::name`. A file's collection error (`classname=""`, name = the
    module) is the file itself. A candidate is kept only if writing it again gives the same
    (classname, name) under one of the known writers (`_junit_keys`), so a `file` that is
    not the module's (a test inherited from a base class in another file, a file outside
    the rootdir) gives None and that testcase is matched by (classname, name) instead.

    What stays ambiguous: "." in the class parts is read as nesting, so a collector named
    with a dot between the file and the test (no Python class is) comes out as
    `A::B`; and for a writer that splits parameters on `::` too, a parameter holding `::`
    more than once with a "." between them (`t[a::b.c::d]`, written as classname
    `m.t[a.b.c`, name `d]`) comes out as `t[a.b.c::d]`: everything from the first piece
    holding `[` is kept as one piece. pytest's own writers never split parameters, so with
    pytest the reconstruction is exact but for the first case.
    """
    if file is None:
        return None
    module = _dotted_module(file)
    if classname == module:
        candidate = f"{file}::{name}"
    elif classname.startswith(module + "."):
        pieces = classname[len(module) + 1 :].split(".")
        params_from = next((i for i, piece in enumerate(pieces) if "[" in piece), len(pieces))
        parts = [*pieces[:params_from]] + ([".".join(pieces[params_from:])] if params_from < len(pieces) else [])
        candidate = "::".join([file, *parts, name])
    elif classname == "" and name == module:
        candidate = file
    else:
        return None
    return candidate if (classname, name) in _junit_keys(candidate) else None


# ---------------------------------------------------------------- reading a report


@dataclass
class JUnitResults:
    """Every testcase of a JUnit report, indexed for `statuses_for`; each value is the worst status seen.

    Built in one pass, a constant number of dictionary entries per testcase.
    """

    by_id: dict[str, str] = field(default_factory=dict)
    """Full node id (from `node_id_of`)."""
    by_cut: dict[str, str] = field(default_factory=dict)
    """`cut_id` of the node id."""
    by_alias: dict[str, str] = field(default_factory=dict)
    """`path_alias` of the cut id."""
    by_key: dict[Key, str] = field(default_factory=dict)
    """(classname, name) of every testcase: the old matching, and the only one without `file`."""
    by_key_cut: dict[Key, str] = field(default_factory=dict)
    """(classname, cut name), for testcases without a node id only."""
    by_key_alias: dict[Key, str] = field(default_factory=dict)
    """(classname, path alias of the cut name), for testcases without a node id only."""
    cases: int = 0
    expected_failures: set[str] = field(default_factory=set)
    """Node ids pytest reported as expected failures (xfailed): passes, as SWE-bench counts them, that
    `verdict.expected_failures_among` tells apart for the FAIL_TO_PASS tests."""


def keep_worst(table: dict, key, status: str) -> None:
    """Put `status` under `key` unless the table already holds a worse one."""
    if key not in table or _RANK[status] > _RANK[table[key]]:
        table[key] = status


def add_node_status(results: JUnitResults, node_id: str, status: str) -> None:
    """Index one test's status under its node id, cut id and path alias (pytest's sealed records name node ids)."""
    results.cases += 1
    cut = cut_id(node_id)
    keep_worst(results.by_id, node_id, status)
    keep_worst(results.by_cut, cut, status)
    keep_worst(results.by_alias, path_alias(cut), status)


@dataclass
class RecordedResults:
    """Outcomes a grader-owned recorder wrote (`swe_env.grading.runners`): id -> the worst status recorded under it.

    Ids are matched exactly: the recorder writes every form of an id SWE-bench's datasets use."""

    by_id: dict[str, str] = field(default_factory=dict)
    records: int = 0


def case_status(case: ET.Element) -> str:
    """One testcase's status: failure -> failed, error -> error, a skip -> skipped, xfail -> passed.

    pytest writes an expected failure as `<skipped type="pytest.xfail">`, which SWE-bench
    counts as a pass (its XFAIL); a real skip (`type="pytest.skip"`, a collection skip, a
    strict XPASS) is skipped, which fails a listed test. A non-strict XPASS is written as
    a plain pass, so it passes here (SWE-bench's parsers skip XPASS lines: failed there).
    """
    status = PASSED
    for child in case:
        status = _with_child(status, child.tag, child.get("type"))
    return status


def _with_child(status: str, tag: str, kind: str | None) -> str:
    """A testcase's status after one more child element (`case_status`'s rule, one child at a time)."""
    if tag == "failure":
        child_status = FAILED
    elif tag == "error":
        child_status = ERROR
    elif tag == "skipped":
        child_status = PASSED if kind == "pytest.xfail" else SKIPPED
    else:
        return status
    return child_status if _RANK[child_status] > _RANK[status] else status


MAX_TESTCASES = 200_000
"""Testcases one results stream may hold (more than any real suite runs at once); past it nothing is believed.
The tables grow with the testcases, so this bounds what a report can make the grader hold, whatever its size."""
FEED_CHARS = 1 << 20
"""Characters handed to the XML parser at a time: a report is parsed as it is decoded, never whole."""


def _index(results: JUnitResults, classname: str, name: str, file: str | None, status: str) -> None:
    results.cases += 1
    # A test can be reported twice (a failure in the call, an error in teardown), and
    # several can cut to one id: every table keeps the worst.
    node_id = node_id_of(classname, name, file)
    if node_id is not None:
        cut = cut_id(node_id)
        keep_worst(results.by_id, node_id, status)
        keep_worst(results.by_cut, cut, status)
        keep_worst(results.by_alias, path_alias(cut), status)
    else:
        # Only a testcase whose node id is unknown is matched by (classname, name): another
        # file's test can share those (`a/b.py::T::t` and `a/b/T.py::t` both give a.b.T, t).
        keep_worst(results.by_key, (classname, name), status)
        cut = cut_id(name)
        keep_worst(results.by_key_cut, (classname, cut), status)
        keep_worst(results.by_key_alias, (classname, path_alias(cut)), status)


class JUnitStream:
    """A streaming reader of JUnit XML: `feed` text as it comes, `close` for the results.

    Built on expat's start/end events with no tree and no text kept: memory is the index
    (`JUnitResults`, at most `max_cases` testcases) plus expat's buffer of one piece, whatever
    the size of the report or of its captured output. Any XML error, or too many testcases, is
    a ReportError. With `wrap`, the text is one or more whole reports one after another (their
    XML declarations must have been taken out: `parse_junit_reports` does)."""

    def __init__(self, wrap: bool = False, max_cases: int | None = None):
        self.results = JUnitResults()
        self.max_cases = max_cases or MAX_TESTCASES
        self._expat = expat.ParserCreate()
        self._expat.StartElementHandler = self._start
        self._expat.EndElementHandler = self._end
        self._depth = 0
        self._case: tuple[int, str, str, str | None] | None = None
        """The open testcase: its depth, classname, name and file."""
        self._status = PASSED
        self._wrap = wrap
        if wrap:
            self.feed("<swe-env-reports>")

    def _start(self, tag: str, attributes: dict[str, str]) -> None:
        self._depth += 1
        if self._case is None and tag == "testcase":
            self._case = (self._depth, attributes.get("classname", ""), attributes.get("name", ""), attributes.get("file"))
            self._status = PASSED
        elif self._case is not None and self._depth == self._case[0] + 1:
            self._status = _with_child(self._status, tag, attributes.get("type"))

    def _end(self, _tag: str) -> None:
        if self._case is not None and self._depth == self._case[0]:
            _, classname, name, file = self._case
            self._case = None
            if self.results.cases >= self.max_cases:
                raise ReportError(f"the report holds more than {self.max_cases} testcases")
            _index(self.results, classname, name, file, self._status)
        self._depth -= 1

    def feed(self, text: str, final: bool = False) -> None:
        try:
            for start in range(0, len(text), FEED_CHARS):
                self._expat.Parse(text[start : start + FEED_CHARS], False)
            if final:
                self._expat.Parse("", True)
        except expat.ExpatError as exc:
            raise ReportError(f"JUnit report is not valid XML: {exc}") from None

    def close(self) -> JUnitResults:
        self.feed("</swe-env-reports>" if self._wrap else "", final=True)
        return self.results


def parse_junit(xml_text: str) -> JUnitResults:
    """Index every testcase of a JUnit XML report under its node id, cut id, path alias and key."""
    stream = JUnitStream()
    stream.feed(xml_text)
    return stream.close()


_XML_DECLARATION = re.compile(r"<\?xml\b[^<>]{0,512}\?>")
"""Bounded, and stopped at the next tag, so a stream of `<?xml` openings that never close costs linear time."""


def parse_junit_reports(data: str | bytes) -> JUnitResults:
    """Every testcase of one or more JUnit XML reports written one after another (a command that
    runs pytest twice writes two): indexed as `parse_junit` does, each table keeping the worst.

    Bytes are decoded (UTF-8, bad bytes replaced) and parsed a FEED_CHARS piece at a time, so the
    grader holds one piece of text at a time beside the bytes it read. A piece's unclosed last
    tag waits for the next piece, so a declaration split between two is still taken out whole."""
    stream = JUnitStream(wrap=True)
    carry = ""
    for piece in decoded_pieces(data):
        text = carry + piece
        last = text.rfind("<", max(0, len(text) - 600))
        if last >= 0 and ">" not in text[last:]:
            text, carry = text[:last], text[last:]
        else:
            carry = ""
        stream.feed(_XML_DECLARATION.sub("", text))
    stream.feed(_XML_DECLARATION.sub("", carry))
    return stream.close()


def iter_lines(data: bytes, max_line: int) -> Iterator[tuple[int, bytes | None]]:
    """(number, line) for each line of `data`, without its break, found in place (no list of lines is
    made); a line longer than `max_line` bytes comes as (number, None), never copied."""
    start, number, size = 0, 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        end = size if end < 0 else end
        number += 1
        yield number, (data[start:end] if end - start <= max_line else None)
        start = end + 1


def decoded_pieces(data: str | bytes, size: int | None = None) -> Iterator[str]:
    """`data` as text, `size` characters or bytes at a time (UTF-8, bad bytes replaced, a character
    split between two pieces decoded whole; FEED_CHARS by default): a large stream is never decoded at once."""
    size = size or FEED_CHARS
    if isinstance(data, str):
        yield from (data[i : i + size] for i in range(0, len(data), size))
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    view = memoryview(data)
    for i in range(0, len(data), size):
        yield decoder.decode(view[i : i + size], final=i + size >= len(data))


def parse_pytest_summary(log: str) -> dict[str, str]:
    """Node id -> status from pytest's `-rA` short summary lines (fallback only)."""
    results: dict[str, str] = {}
    for line in log.splitlines():
        match = _SUMMARY.match(line.strip())
        if not match:
            continue
        word, test_id = match.groups()
        status = {"PASSED": PASSED, "XPASS": PASSED, "FAILED": FAILED, "ERROR": ERROR}.get(word, SKIPPED)
        results[test_id] = status
    return results


def _worst(statuses: Iterable[str | None]) -> str | None:
    found = [s for s in statuses if s is not None]
    return max(found, key=_RANK.__getitem__) if found else None


def junit_status(test_id: str, junit: JUnitResults) -> str | None:
    """The status of a listed id in a report, or None when no testcase has it in any form.

    Forms in order, the first that matches decides: the exact node id, then SWE-bench's cut
    id, then its path alias; each time the worst over every testcase with that id, and over
    the testcases whose (classname, name) in that form is the id's (at the exact step every
    testcase, the old matching; at the others only those whose node id is unknown).
    """
    keys = _junit_keys(test_id)
    for by_id, by_key in ((junit.by_id, junit.by_key), (junit.by_cut, junit.by_key_cut), (junit.by_alias, junit.by_key_alias)):
        status = _worst([by_id.get(test_id), *(by_key.get(key) for key in keys)])
        if status is not None:
            return status
    return None


def statuses_for(
    test_ids: list[str],
    junit: JUnitResults | RecordedResults | None,
    log: str,
    *,
    allow_all_ignored: bool = True,
    known_files: frozenset[str] | None = None,
) -> dict[str, str]:
    """The status of each listed test id: from the JUnit report when there is one, else the log.

    With a report, an id found in no form is `ignored` when `unproducible`, else `missing`;
    with `allow_all_ignored=False` a list whose every id would be ignored keeps them all as
    missing (the grader's FAIL_TO_PASS: dropping them all would resolve the task on nothing).
    A recorder's results are matched exactly and an id they lack is missing. Without a report
    the log's `-rA` summary is read as it is (no forms, nothing ignored).
    """
    if isinstance(junit, RecordedResults):
        return {test_id: junit.by_id.get(test_id, MISSING) for test_id in test_ids}
    if junit is not None:
        statuses = {}
        for test_id in test_ids:
            status = junit_status(test_id, junit)
            statuses[test_id] = status if status is not None else (IGNORED if unproducible(test_id, known_files) else MISSING)
        if not allow_all_ignored and statuses and all(s == IGNORED for s in statuses.values()):
            statuses = dict.fromkeys(statuses, MISSING)
        return statuses
    summary = parse_pytest_summary(log)
    return {test_id: summary.get(test_id, MISSING) for test_id in test_ids}
