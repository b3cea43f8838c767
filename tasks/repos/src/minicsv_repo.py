"""Sources and history of the ``minicsv`` sample repository.

``minicsv`` is a small CSV reader/writer.  The history below is replayed by
``build_samples.py``: plain steps are commits, ``{"task": id}`` steps mark the
current commit as the task's base commit and then commit the task's fix
(source edits plus the tests that came with it).
"""

NAME = "minicsv"


def _s(text):
    return text.lstrip("\n")


def _t(text):
    """Tests appended to an existing test file, after two blank lines."""
    return "\n\n" + text.lstrip("\n")


PYPROJECT = _s(r"""
[project]
name = "minicsv"
version = "0.1.0"
description = "A small, dependency-free CSV reader and writer"
requires-python = ">=3.9"

[tool.pytest.ini_options]
testpaths = ["tests"]
""")

README = _s(r"""
# minicsv

A small, dependency-free CSV reader and writer.

```python
import minicsv

rows = minicsv.parse('name,age\n"Smith, Jo",42\n')
# [['name', 'age'], ['Smith, Jo', '42']]

for record in minicsv.DictReader(open("people.csv")):
    print(record["name"])

print(minicsv.to_string([["a", "b,c"]]), end="")
# a,"b,c"
```

Dialects control the delimiter, quoting and escaping rules; see
`minicsv.dialect.Dialect`.  Run the tests with `python -m pytest`.
""")

INIT_V1 = _s(r'''
"""minicsv - a small, dependency-free CSV reader and writer."""

from .dialect import (
    QUOTE_ALL,
    QUOTE_MINIMAL,
    QUOTE_NONE,
    QUOTE_NONNUMERIC,
    Dialect,
    get_dialect,
    list_dialects,
    register_dialect,
)
from .errors import CsvError, DialectError, HeaderError, ParseError

__version__ = "0.1.0"
''')

ERRORS = _s(r'''
"""Exception hierarchy used by minicsv."""


class CsvError(ValueError):
    """Base class for every error raised by minicsv."""


class DialectError(CsvError):
    """Raised when a dialect is configured with inconsistent options."""


class ParseError(CsvError):
    """Raised when input cannot be parsed under a strict dialect."""

    def __init__(self, message, line=None):
        if line is not None:
            message = f"line {line}: {message}"
        super().__init__(message)
        self.line = line


class HeaderError(CsvError):
    """Raised for problems with the header row of a DictReader."""
''')

DIALECT = _s(r'''
"""Dialects describe the formatting rules of a CSV file."""

from dataclasses import dataclass, replace
from typing import Optional

from .errors import DialectError

QUOTE_MINIMAL = "minimal"
QUOTE_ALL = "all"
QUOTE_NONNUMERIC = "nonnumeric"
QUOTE_NONE = "none"
_QUOTING_MODES = (QUOTE_MINIMAL, QUOTE_ALL, QUOTE_NONNUMERIC, QUOTE_NONE)


@dataclass(frozen=True)
class Dialect:
    """Formatting options shared by the reader and the writer.

    delimiter        separates fields (one character)
    quotechar        encloses fields containing special characters
    escapechar       escapes the next character (None disables escaping)
    doublequote      a doubled quotechar inside a quoted field is a literal quote
    skipinitialspace ignore spaces directly after a delimiter
    lineterminator   written after each row by the writer
    quoting          one of the QUOTE_* modes
    strict           raise ParseError on malformed input instead of guessing
    """

    delimiter: str = ","
    quotechar: str = '"'
    escapechar: Optional[str] = None
    doublequote: bool = True
    skipinitialspace: bool = False
    lineterminator: str = "\r\n"
    quoting: str = QUOTE_MINIMAL
    strict: bool = False

    def __post_init__(self):
        self.validate()

    def validate(self):
        _check_char("delimiter", self.delimiter)
        _check_char("quotechar", self.quotechar)
        if self.escapechar is not None:
            _check_char("escapechar", self.escapechar)
        if self.delimiter == self.quotechar:
            raise DialectError("delimiter and quotechar must be different")
        if self.escapechar in (self.delimiter, self.quotechar):
            raise DialectError("escapechar must differ from delimiter and quotechar")
        if self.quoting not in _QUOTING_MODES:
            raise DialectError(f"unknown quoting mode {self.quoting!r}")
        if not self.doublequote and self.escapechar is None and self.quoting != QUOTE_NONE:
            raise DialectError("an escapechar is required when doublequote is disabled")
        if not self.lineterminator:
            raise DialectError("lineterminator must not be empty")

    def with_options(self, **changes):
        """Return a copy of this dialect with some options changed."""
        return replace(self, **changes)


def _check_char(name, value):
    if not isinstance(value, str) or len(value) != 1:
        raise DialectError(f"{name} must be a single character, got {value!r}")
    if value in "\r\n":
        raise DialectError(f"{name} cannot be a line break")


EXCEL = Dialect()
EXCEL_TAB = Dialect(delimiter="\t")
UNIX = Dialect(lineterminator="\n", quoting=QUOTE_ALL)

_REGISTRY = {"excel": EXCEL, "excel-tab": EXCEL_TAB, "unix": UNIX}


def register_dialect(name, dialect=None, **options):
    """Register *dialect* (or a Dialect built from *options*) under *name*."""
    if dialect is None:
        dialect = Dialect(**options)
    elif options:
        dialect = dialect.with_options(**options)
    if not isinstance(dialect, Dialect):
        raise DialectError(f"expected a Dialect, got {type(dialect).__name__}")
    _REGISTRY[name] = dialect
    return dialect


def get_dialect(dialect):
    """Resolve a dialect name (or pass a Dialect instance through)."""
    if isinstance(dialect, Dialect):
        return dialect
    try:
        return _REGISTRY[dialect]
    except KeyError:
        raise DialectError(f"unknown dialect {dialect!r}") from None


def list_dialects():
    return sorted(_REGISTRY)
''')

TEST_DIALECT = _s(r"""
import pytest

import minicsv
from minicsv.dialect import Dialect


def test_default_dialect_is_excel():
    d = minicsv.get_dialect("excel")
    assert d.delimiter == ","
    assert d.quotechar == '"'
    assert d.lineterminator == "\r\n"


def test_dialect_instances_pass_through():
    d = Dialect(delimiter=";")
    assert minicsv.get_dialect(d) is d


def test_unknown_dialect_name():
    with pytest.raises(minicsv.DialectError):
        minicsv.get_dialect("no-such-dialect")


def test_delimiter_must_be_single_character():
    with pytest.raises(minicsv.DialectError):
        Dialect(delimiter=";;")


def test_delimiter_and_quotechar_differ():
    with pytest.raises(minicsv.DialectError):
        Dialect(delimiter='"')


def test_doublequote_off_needs_escapechar():
    with pytest.raises(minicsv.DialectError):
        Dialect(doublequote=False)
    assert Dialect(doublequote=False, escapechar="\\").escapechar == "\\"


def test_with_options_revalidates():
    with pytest.raises(minicsv.DialectError):
        minicsv.get_dialect("excel").with_options(quotechar="ab")


def test_register_dialect():
    minicsv.register_dialect("pipes", delimiter="|")
    assert "pipes" in minicsv.list_dialects()
    assert minicsv.get_dialect("pipes").delimiter == "|"


def test_dialect_error_is_value_error():
    assert issubclass(minicsv.DialectError, ValueError)
""")

READER = _s(r'''
"""Parsing of delimited text into rows of fields."""

import re

from .dialect import QUOTE_NONE, QUOTE_NONNUMERIC, get_dialect
from .errors import ParseError

_START_FIELD = "start-field"
_IN_FIELD = "in-field"
_ESCAPE = "escape"
_IN_QUOTED = "in-quoted"
_ESCAPE_IN_QUOTED = "escape-in-quoted"
_QUOTE_IN_QUOTED = "quote-in-quoted"

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


def _split_lines(text):
    """Split *text* into physical lines, keeping the line endings."""
    return _LINE_RE.findall(text)


def _split_ending(line):
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith(("\n", "\r")):
        return line[:-1], line[-1]
    return line, ""


class Reader:
    """Iterate over the rows of delimited text.

    *source* is a string or any iterable of lines (such as an open file).
    Rows are returned as lists of strings (with ``QUOTE_NONNUMERIC`` unquoted
    fields are converted to float).  Blank lines are skipped.  A quoted field
    may span several physical lines; ``line_num`` counts the physical lines
    consumed so far.
    """

    def __init__(self, source, dialect="excel", **options):
        dialect = get_dialect(dialect)
        if options:
            dialect = dialect.with_options(**options)
        self.dialect = dialect
        if isinstance(source, str):
            source = _split_lines(source)
        self._lines = iter(source)
        self.line_num = 0

    def __iter__(self):
        return self

    def __next__(self):
        row = self._read_record()
        if row is None:
            raise StopIteration
        return row

    def _convert(self, value, quoted):
        if self.dialect.quoting != QUOTE_NONNUMERIC or quoted or value == "":
            return value
        try:
            return float(value)
        except ValueError:
            raise ParseError(f"could not convert {value!r} to float", self.line_num) from None

    def _read_record(self):
        d = self.dialect
        quoting_enabled = d.quoting != QUOTE_NONE
        fields = []
        field = []
        quoted = False
        state = _START_FIELD

        while True:
            line = next(self._lines, None)
            if line is None:
                # End of input.
                if state == _START_FIELD and not fields and not field:
                    return None
                if state in (_IN_QUOTED, _ESCAPE_IN_QUOTED) and d.strict:
                    raise ParseError("unexpected end of data inside quoted field", self.line_num)
                fields.append(self._convert("".join(field), quoted))
                return fields

            self.line_num += 1
            body, ending = _split_ending(line)

            for ch in body:
                if state == _START_FIELD:
                    if ch == d.quotechar and quoting_enabled:
                        quoted = True
                        state = _IN_QUOTED
                    elif ch == d.delimiter:
                        fields.append(self._convert("", False))
                    elif ch == d.escapechar:
                        state = _ESCAPE
                    elif ch == " " and d.skipinitialspace:
                        pass
                    else:
                        field.append(ch)
                        state = _IN_FIELD
                elif state == _IN_FIELD:
                    if ch == d.delimiter:
                        fields.append(self._convert("".join(field), quoted))
                        field = []
                        quoted = False
                        state = _START_FIELD
                    elif ch == d.escapechar:
                        state = _ESCAPE
                    elif ch == d.quotechar and quoting_enabled and d.strict:
                        raise ParseError(f"unexpected {ch!r} inside unquoted field", self.line_num)
                    else:
                        field.append(ch)
                elif state == _ESCAPE:
                    field.append(ch)
                    state = _IN_FIELD
                elif state == _IN_QUOTED:
                    if ch == d.escapechar:
                        state = _ESCAPE_IN_QUOTED
                    elif ch == d.quotechar:
                        state = _QUOTE_IN_QUOTED
                    else:
                        field.append(ch)
                elif state == _ESCAPE_IN_QUOTED:
                    field.append(ch)
                    state = _IN_QUOTED
                elif state == _QUOTE_IN_QUOTED:
                    if ch == d.quotechar and d.doublequote:
                        field.append(ch)
                        state = _IN_QUOTED
                    elif ch == d.delimiter:
                        fields.append(self._convert("".join(field), quoted))
                        field = []
                        quoted = False
                        state = _START_FIELD
                    elif d.strict:
                        raise ParseError(f"expected delimiter after closing quote, got {ch!r}", self.line_num)
                    else:
                        field.append(ch)
                        state = _IN_FIELD

            # End of the physical line.
            if state == _IN_QUOTED:
                # The quoted field continues on the next line.
                continue
            if state in (_ESCAPE, _ESCAPE_IN_QUOTED):
                # An escaped line break belongs to the field value.
                field.append(ending)
                state = _IN_FIELD if state == _ESCAPE else _IN_QUOTED
                continue
            if field or state != _START_FIELD:
                fields.append(self._convert("".join(field), quoted))
            if fields:
                return fields
            # Blank line: keep reading.


def reader(source, dialect="excel", **options):
    """Return a Reader over *source*."""
    return Reader(source, dialect, **options)


def parse(text, dialect="excel", **options):
    """Parse a whole string and return the list of rows."""
    return list(Reader(text, dialect, **options))
''')

WRITER = _s(r'''
"""Formatting rows of values as delimited text."""

import io

from .dialect import QUOTE_ALL, QUOTE_MINIMAL, QUOTE_NONE, QUOTE_NONNUMERIC, get_dialect
from .errors import CsvError


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _needs_quotes(text, d):
    specials = (d.delimiter, d.quotechar, "\r", "\n")
    if any(s in text for s in specials):
        return True
    if d.escapechar is not None and d.escapechar in text:
        return True
    return text[:1] == " " and d.skipinitialspace


def format_field(value, dialect="excel"):
    """Format a single value according to *dialect*."""
    d = get_dialect(dialect)
    text = "" if value is None else str(value)

    if d.quoting == QUOTE_ALL:
        quote = True
    elif d.quoting == QUOTE_NONNUMERIC:
        quote = not _is_number(value)
    elif d.quoting == QUOTE_MINIMAL:
        quote = _needs_quotes(text, d)
    else:
        quote = False

    if d.quoting == QUOTE_NONE:
        specials = [d.delimiter, d.quotechar, "\r", "\n"]
        if d.escapechar is None:
            if any(s in text for s in specials):
                raise CsvError(f"need an escapechar to write {text!r} without quoting")
            return text
        text = text.replace(d.escapechar, d.escapechar * 2)
        for s in specials:
            text = text.replace(s, d.escapechar + s)
        return text

    if quote:
        if d.escapechar is not None:
            text = text.replace(d.escapechar, d.escapechar * 2)
        if d.doublequote:
            text = text.replace(d.quotechar, d.quotechar * 2)
        else:
            text = text.replace(d.quotechar, d.escapechar + d.quotechar)
        return d.quotechar + text + d.quotechar
    return text


def format_row(row, dialect="excel", **options):
    """Return one formatted row, including the line terminator."""
    d = get_dialect(dialect)
    if options:
        d = d.with_options(**options)
    values = list(row)
    if values == [""] and d.quoting != QUOTE_NONE:
        # A lone empty field would otherwise look like a blank line.
        return d.quotechar * 2 + d.lineterminator
    return d.delimiter.join(format_field(v, d) for v in values) + d.lineterminator


class Writer:
    """Write rows to a text stream."""

    def __init__(self, stream, dialect="excel", **options):
        d = get_dialect(dialect)
        if options:
            d = d.with_options(**options)
        self.dialect = d
        self._stream = stream

    def writerow(self, row):
        text = format_row(row, self.dialect)
        self._stream.write(text)
        return len(text)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def writer(stream, dialect="excel", **options):
    return Writer(stream, dialect, **options)


def to_string(rows, dialect="excel", **options):
    """Format all *rows* and return them as one string."""
    buffer = io.StringIO()
    Writer(buffer, dialect, **options).writerows(rows)
    return buffer.getvalue()


__all__ = ["QUOTE_MINIMAL", "Writer", "format_field", "format_row", "to_string", "writer"]
''')

INIT_V2 = INIT_V1.replace(
    "from .errors import CsvError, DialectError, HeaderError, ParseError\n",
    "from .errors import CsvError, DialectError, HeaderError, ParseError\n"
    "from .reader import Reader, parse, reader\n"
    "from .writer import Writer, format_field, format_row, to_string, writer\n",
)

TEST_READER = _s(r'''
import io

import pytest

import minicsv


def test_simple_rows():
    assert minicsv.parse("a,b,c\n1,2,3\n") == [["a", "b", "c"], ["1", "2", "3"]]


def test_last_line_without_newline():
    assert minicsv.parse("a,b\nc,d") == [["a", "b"], ["c", "d"]]


def test_crlf_line_endings():
    assert minicsv.parse("a,b\r\nc,d\r\n") == [["a", "b"], ["c", "d"]]


def test_quoted_field_with_delimiter():
    assert minicsv.parse('name,"Smith, Jo"\n') == [["name", "Smith, Jo"]]


def test_doubled_quotes_inside_quoted_field():
    assert minicsv.parse('"say ""hi""",x\n') == [['say "hi"', "x"]]


def test_empty_fields_in_the_middle():
    assert minicsv.parse("a,,c\n") == [["a", "", "c"]]


def test_blank_lines_are_skipped():
    assert minicsv.parse("a\n\n\nb\n") == [["a"], ["b"]]


def test_escapechar_outside_quotes():
    rows = minicsv.parse("a\\,b,c\n", escapechar="\\")
    assert rows == [["a,b", "c"]]


def test_custom_delimiter_and_skipinitialspace():
    rows = minicsv.parse("a; b;  c\n", delimiter=";", skipinitialspace=True)
    assert rows == [["a", "b", "c"]]


def test_strict_rejects_garbage_after_quote():
    with pytest.raises(minicsv.ParseError) as info:
        minicsv.parse('ok\n"ab"c,d\n', strict=True)
    assert info.value.line == 2


def test_lenient_keeps_garbage_after_quote():
    assert minicsv.parse('"ab"c,d\n') == [["abc", "d"]]


def test_nonnumeric_converts_unquoted_fields():
    rows = minicsv.parse('"x",1.5,2\n', quoting=minicsv.QUOTE_NONNUMERIC)
    assert rows == [["x", 1.5, 2.0]]


def test_reader_accepts_file_objects():
    stream = io.StringIO("a,b\nc,d\n")
    reader = minicsv.reader(stream)
    assert next(reader) == ["a", "b"]
    assert reader.line_num == 1
    assert list(reader) == [["c", "d"]]


def test_strict_unterminated_quote():
    with pytest.raises(minicsv.ParseError):
        minicsv.parse('a,"never closed\n', strict=True)
''')

TEST_WRITER = _s(r'''
import io

import minicsv


def test_minimal_quoting():
    assert minicsv.format_row(["a", "b,c", 'say "hi"']) == 'a,"b,c","say ""hi"""\r\n'


def test_quote_all_with_unix_dialect():
    assert minicsv.format_row(["a", 1], "unix") == '"a","1"\n'


def test_nonnumeric_quoting():
    row = minicsv.format_row(["a", 1, 2.5, None], quoting=minicsv.QUOTE_NONNUMERIC)
    assert row == '"a",1,2.5,""\r\n'


def test_quote_none_with_escapechar():
    row = minicsv.format_row(["a,b", "c"], quoting=minicsv.QUOTE_NONE, escapechar="\\")
    assert row == "a\\,b,c\r\n"


def test_quote_none_without_escapechar_fails():
    try:
        minicsv.format_row(["a,b"], quoting=minicsv.QUOTE_NONE)
    except minicsv.CsvError:
        pass
    else:
        raise AssertionError("expected CsvError")


def test_single_empty_field_is_quoted():
    assert minicsv.format_row([""]) == '""\r\n'


def test_writer_round_trip():
    rows = [["name", "note"], ["Jo", "likes, commas"], ["Al", 'a "quote"']]
    buffer = io.StringIO()
    minicsv.writer(buffer).writerows(rows)
    assert minicsv.parse(buffer.getvalue()) == rows
''')

DICTREADER = _s(r'''
"""Reading rows as dictionaries keyed by the header row."""

from .errors import HeaderError
from .reader import Reader


class DictReader:
    """Iterate over rows as dictionaries.

    The first row is used as the header unless *fieldnames* is given.  Header
    names are stripped of surrounding whitespace when *strip_header* is true;
    duplicate or empty names raise HeaderError.

    Rows with more fields than the header store the extra values as a list
    under *restkey*.  Rows with fewer fields than the header are padded: the
    missing names map to *restval* (default ``None``).
    """

    def __init__(self, source, fieldnames=None, restkey=None, restval=None,
                 dialect="excel", strip_header=True, **options):
        self.reader = Reader(source, dialect, **options)
        self.restkey = restkey
        self.restval = restval
        self.strip_header = strip_header
        self._fieldnames = None
        if fieldnames is not None:
            self._fieldnames = self._check_header(list(fieldnames))

    def _check_header(self, names):
        if self.strip_header:
            names = [n.strip() if isinstance(n, str) else n for n in names]
        seen = set()
        for index, name in enumerate(names):
            if name == "":
                raise HeaderError(f"header column {index + 1} has no name")
            if name in seen:
                raise HeaderError(f"duplicate header name {name!r}")
            seen.add(name)
        return names

    @property
    def fieldnames(self):
        if self._fieldnames is None:
            header = next(self.reader, None)
            self._fieldnames = [] if header is None else self._check_header(header)
        return self._fieldnames

    @property
    def line_num(self):
        return self.reader.line_num

    def __iter__(self):
        return self

    def __next__(self):
        names = self.fieldnames
        row = next(self.reader)
        record = dict(zip(names, row))
        extra = len(row) - len(names)
        if extra > 0:
            record[self.restkey] = row[len(names):]
        elif extra < 0 and self.restval is not None:
            for name in names[len(row):]:
                record[name] = self.restval
        return record


def read_dicts(text, **kwargs):
    """Parse *text* and return a list of dictionaries."""
    return list(DictReader(text, **kwargs))
''')

INIT_V3 = INIT_V2.replace(
    "from .writer import Writer, format_field, format_row, to_string, writer\n",
    "from .writer import Writer, format_field, format_row, to_string, writer\nfrom .dictreader import DictReader, read_dicts\n",
)

TEST_DICTREADER = _s(r"""
import pytest

import minicsv


def test_header_row_becomes_keys():
    rows = minicsv.read_dicts("name,age\nJo,42\nAl,7\n")
    assert rows == [{"name": "Jo", "age": "42"}, {"name": "Al", "age": "7"}]


def test_header_names_are_stripped():
    reader = minicsv.DictReader(" name , age \nJo,42\n")
    assert reader.fieldnames == ["name", "age"]
    assert next(reader) == {"name": "Jo", "age": "42"}


def test_explicit_fieldnames():
    rows = minicsv.read_dicts("Jo,42\n", fieldnames=["name", "age"])
    assert rows == [{"name": "Jo", "age": "42"}]


def test_duplicate_header_names():
    with pytest.raises(minicsv.HeaderError):
        minicsv.read_dicts("a,b,a\n1,2,3\n")


def test_extra_fields_go_to_restkey():
    rows = minicsv.read_dicts("a,b\n1,2,3,4\n", restkey="more")
    assert rows == [{"a": "1", "b": "2", "more": ["3", "4"]}]


def test_short_row_uses_restval():
    rows = minicsv.read_dicts("a,b,c\n1\n", restval="n/a")
    assert rows == [{"a": "1", "b": "n/a", "c": "n/a"}]


def test_empty_input_has_no_fieldnames():
    reader = minicsv.DictReader("")
    assert reader.fieldnames == []
    assert list(reader) == []
""")

SNIFFER = _s(r'''
"""Guessing the delimiter of a sample of CSV text."""

from .errors import CsvError
from .reader import _split_lines

CANDIDATES = (",", ";", "\t", "|", ":")


def sniff_delimiter(sample, candidates=CANDIDATES, max_lines=20):
    """Guess the delimiter used in *sample*.

    The candidate that appears the same, non-zero number of times on the most
    lines wins; ties are broken by the order of *candidates*.  Characters
    inside double quotes are ignored.  Raises CsvError when no candidate
    appears at all.
    """
    lines = [line for line in _split_lines(sample) if line.strip()][:max_lines]
    best, best_score = None, 0
    for candidate in candidates:
        counts = {}
        for line in lines:
            n = _count_unquoted(line, candidate)
            if n:
                counts[n] = counts.get(n, 0) + 1
        score = max(counts.values(), default=0)
        if score > best_score:
            best, best_score = candidate, score
    if best is None:
        raise CsvError("could not determine the delimiter")
    return best


def _count_unquoted(line, char):
    count = 0
    in_quotes = False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == char and not in_quotes:
            count += 1
    return count
''')

TEST_SNIFFER = _s(r"""
import pytest

import minicsv


def test_sniff_comma():
    assert minicsv.sniff_delimiter("a,b,c\n1,2,3\n") == ","


def test_sniff_semicolon_with_commas_in_quotes():
    sample = 'name;note\n"Jo";"a, b, c"\n"Al";"x, y"\n'
    assert minicsv.sniff_delimiter(sample) == ";"


def test_sniff_tab():
    assert minicsv.sniff_delimiter("a\tb\n1\t2\n") == "\t"


def test_sniff_failure():
    with pytest.raises(minicsv.CsvError):
        minicsv.sniff_delimiter("just one column\nand another\n")
""")

HISTORY = [
    {
        "message": "Add dialect definitions and error types",
        "write": {
            "pyproject.toml": PYPROJECT,
            "README.md": README,
            "minicsv/__init__.py": INIT_V1,
            "minicsv/errors.py": ERRORS,
            "minicsv/dialect.py": DIALECT,
            "tests/test_dialect.py": TEST_DIALECT,
        },
    },
    {
        "message": "Add reader and writer",
        "write": {
            "minicsv/__init__.py": INIT_V2,
            "minicsv/reader.py": READER,
            "minicsv/writer.py": WRITER,
            "tests/test_reader.py": TEST_READER,
            "tests/test_writer.py": TEST_WRITER,
        },
    },
    {
        "message": "Add DictReader",
        "write": {
            "minicsv/__init__.py": INIT_V3,
            "minicsv/dictreader.py": DICTREADER,
            "tests/test_dictreader.py": TEST_DICTREADER,
        },
    },
    {"task": "minicsv-quoted-newline"},
    {
        "message": "Add sniff_delimiter",
        "edit": [
            (
                "minicsv/__init__.py",
                "from .reader import Reader, parse, reader\n",
                "from .reader import Reader, parse, reader\nfrom .sniffer import sniff_delimiter\n",
            ),
        ],
        "write": {
            "minicsv/sniffer.py": SNIFFER,
            "tests/test_sniffer.py": TEST_SNIFFER,
        },
    },
    {"task": "minicsv-trailing-delimiter"},
    {"task": "minicsv-dictreader-short-row"},
    {
        "message": "Release 0.2.0",
        "edit": [
            ("minicsv/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.2.0"'),
            ("pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"'),
        ],
        "write": {
            "CHANGELOG.md": _s(r"""
# Changelog

## 0.2.0

- Line breaks inside quoted fields are kept.
- A trailing delimiter produces a trailing empty field.
- DictReader pads short rows with `restval`.
- New `sniff_delimiter()` helper.

## 0.1.0

- First release: dialects, reader, writer, DictReader.
"""),
        },
    },
]

TASKS = {
    "minicsv-quoted-newline": {
        "fix_message": "Keep line breaks inside quoted fields",
        "edit": [
            (
                "minicsv/reader.py",
                "                # The quoted field continues on the next line.\n                continue\n",
                "                # The quoted field continues on the next line; the line\n"
                "                # break is part of the value.\n"
                "                field.append(ending)\n"
                "                continue\n",
            ),
        ],
        "append": {
            "tests/test_reader.py": _t(r"""
def test_quoted_field_spanning_lines():
    rows = minicsv.parse('id,note\n1,"first line\nsecond line",x\n2,plain,y\n')
    assert rows == [
        ["id", "note"],
        ["1", "first line\nsecond line", "x"],
        ["2", "plain", "y"],
    ]


def test_quoted_field_with_blank_line_inside():
    rows = minicsv.parse('"a\n\nb",c\n')
    assert rows == [["a\n\nb", "c"]]


def test_line_num_counts_physical_lines_of_multiline_record():
    reader = minicsv.reader('"one\ntwo\nthree",4\nlast,5\n')
    assert next(reader) == ["one\ntwo\nthree", "4"]
    assert reader.line_num == 3
"""),
        },
        "problem_statement": _s(r"""
Line breaks inside quoted fields are lost

I'm reading a CSV export from our ticketing system where the "note" column
can contain several lines. The field is properly quoted, but after parsing
with minicsv the line break inside the value disappears and the two lines are
glued together:

```python
import minicsv

text = 'id,note\n1,"first line\nsecond line",x\n'
print(minicsv.parse(text))
```

Actual output:

```
[['id', 'note'], ['1', 'first linesecond line', 'x']]
```

Expected output (this is what Python's `csv` module gives too):

```
[['id', 'note'], ['1', 'first line\nsecond line', 'x']]
```

The record itself is correctly recognised as one row spanning two physical
lines, only the newline character in the value goes missing. Blank lines
inside a quoted value vanish as well.
"""),
    },
    "minicsv-trailing-delimiter": {
        "fix_message": "Keep the trailing empty field after a final delimiter",
        "edit": [
            ("minicsv/reader.py", "            if field or state != _START_FIELD:\n", "            if field or fields or state != _START_FIELD:\n"),
        ],
        "append": {
            "tests/test_reader.py": _t(r"""
def test_trailing_delimiter_gives_empty_last_field():
    assert minicsv.parse("a,b,\n1,2,\n") == [["a", "b", ""], ["1", "2", ""]]


def test_row_made_only_of_delimiters():
    assert minicsv.parse(",,\nx,y,z\n") == [["", "", ""], ["x", "y", "z"]]


def test_single_delimiter_line_is_not_blank():
    assert minicsv.parse("a\n,\nb\n") == [["a"], ["", ""], ["b"]]
"""),
        },
        "problem_statement": _s(r"""
Last column is dropped when it is empty

When the last field of a row is empty (the line ends with the delimiter),
minicsv drops it, so the row comes back one column short:

```python
>>> import minicsv
>>> minicsv.parse("a,b,\n1,2,\n")
[['a', 'b'], ['1', '2']]
```

I expected `[['a', 'b', ''], ['1', '2', '']]`, which is also what the
standard library `csv` module returns. Empty fields in the middle of a row
(`a,,c`) work fine, only the last one is affected.

It gets worse for rows consisting only of delimiters: `",,"` gives two
fields instead of three, and a line containing just `","` is returned as a
single-field row instead of two empty fields. This breaks our column count
validation for exports where optional trailing columns are often empty.
"""),
    },
    "minicsv-dictreader-short-row": {
        "fix_message": "DictReader: pad short rows with restval even when it is None",
        "edit": [
            ("minicsv/dictreader.py", "        elif extra < 0 and self.restval is not None:\n", "        elif extra < 0:\n"),
        ],
        "append": {
            "tests/test_dictreader.py": _t(r"""
def test_short_row_gets_none_by_default():
    rows = minicsv.read_dicts("name,email,phone\nJo\n")
    assert rows == [{"name": "Jo", "email": None, "phone": None}]


def test_short_row_keeps_header_order():
    reader = minicsv.DictReader("a,b,c\n1,2\n")
    record = next(reader)
    assert list(record) == ["a", "b", "c"]
    assert record["c"] is None
"""),
        },
        "problem_statement": _s(r"""
DictReader: KeyError for missing trailing columns

The DictReader docstring says rows with fewer fields than the header are
padded and that the missing names map to `restval` (default `None`). That
only seems to happen when I pass a non-None `restval` explicitly. With the
default, the missing keys are simply absent from the dict:

```python
import minicsv

text = "name,email,phone\nJo\n"
for record in minicsv.DictReader(text):
    print(record)
    print(record["email"])
```

Output:

```
{'name': 'Jo'}
Traceback (most recent call last):
  ...
KeyError: 'email'
```

Expected: `{'name': 'Jo', 'email': None, 'phone': None}` - every record
should have all the header names as keys, in header order, like
`csv.DictReader` does.
"""),
    },
}
