"""Sources and history of the ``slugkit`` sample repository.

``slugkit`` is a bag of string utilities: slugs, case conversion,
pluralisation, text wrapping and a tiny template language.  See
``minicsv_repo.py`` for the format of HISTORY and TASKS.
"""

NAME = "slugkit"


def _s(text):
    return text.lstrip("\n")


def _t(text):
    """Tests appended to an existing test file, after two blank lines."""
    return "\n\n" + text.lstrip("\n")


PYPROJECT = _s(r"""
[project]
name = "slugkit"
version = "1.3.0"
description = "Slugs, case conversion, plurals, wrapping and tiny templates"
requires-python = ">=3.9"

[tool.pytest.ini_options]
testpaths = ["tests"]
""")

README = _s(r"""
# slugkit

Small string utilities without dependencies.

```python
>>> from slugkit import slugify, snake_case, pluralize, fill, render
>>> slugify("Crème Brûlée & Co.")
'creme-brulee-and-co'
>>> snake_case("HTTPServerError")
'http_server_error'
>>> pluralize("city")
'cities'
>>> render("{{ n }} {{ 'file'|plural:n }}", n=3)
'3 files'
```

Run the tests with `python -m pytest`.
""")

INIT_V1 = _s(r'''
"""slugkit - slugs, case conversion, plurals, wrapping and tiny templates."""

from .case import camel_case, kebab_case, pascal_case, snake_case, split_words
from .slugify import slugify, transliterate, unique_slug

__version__ = "1.3.0"
''')

SLUGIFY = _s(r'''
"""URL slugs."""

import re
import unicodedata

_SPECIAL = {
    "\u00df": "ss",
    "\u00e6": "ae",
    "\u00c6": "AE",
    "\u00f8": "o",
    "\u00d8": "O",
    "\u0111": "d",
    "\u0110": "D",
    "\u0142": "l",
    "\u0141": "L",
    "\u0153": "oe",
    "\u0152": "OE",
    "\u00fe": "th",
    "\u00de": "TH",
    "&": " and ",
}
_WORD_RE = re.compile(r"[A-Za-z0-9]+")


def transliterate(text):
    """Replace accented and special Latin letters by ASCII approximations.

    Characters without an ASCII approximation are dropped.
    """
    text = "".join(_SPECIAL.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.encode("ascii", "ignore").decode("ascii")


def slugify(text, separator="-", max_length=None, lowercase=True, stopwords=()):
    """Turn *text* into a URL slug.

    Words are the runs of ASCII letters and digits left after
    transliteration, joined by *separator*.  *stopwords* are removed
    (case-insensitively) unless that would leave no word at all.

    With *max_length* the slug is shortened to at most that many
    characters.  It is only cut between words, so whole words are kept; a
    first word that is longer than *max_length* on its own is cut.
    """
    words = _WORD_RE.findall(transliterate(text))
    if lowercase:
        words = [word.lower() for word in words]
    if stopwords:
        stop = {word.lower() for word in stopwords}
        words = [word for word in words if word.lower() not in stop] or words
    slug = separator.join(words)
    if max_length is not None:
        slug = _truncate(slug, separator, max_length)
    return slug


def _truncate(slug, separator, max_length):
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    if len(slug) <= max_length:
        return slug
    cut = slug[:max_length]
    if separator and separator in cut:
        cut = cut[:cut.rindex(separator)]
    return cut


def unique_slug(text, existing, **options):
    """Slugify *text*, appending -2, -3, ... until it is not in *existing*."""
    base = slugify(text, **options)
    separator = options.get("separator", "-")
    slug = base
    counter = 2
    while slug in existing:
        slug = f"{base}{separator}{counter}"
        counter += 1
    return slug
''')

CASE = _s(r'''
"""Conversions between identifier styles."""

import re

from .slugify import transliterate

_WORD_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def split_words(text):
    """Split identifiers and phrases into words.

    >>> split_words("HTTPServerError")
    ['HTTP', 'Server', 'Error']
    """
    return _WORD_RE.findall(transliterate(text))


def snake_case(text):
    return "_".join(word.lower() for word in split_words(text))


def kebab_case(text):
    return "-".join(word.lower() for word in split_words(text))


def pascal_case(text):
    return "".join(word.capitalize() for word in split_words(text))


def camel_case(text):
    words = split_words(text)
    if not words:
        return ""
    return words[0].lower() + "".join(word.capitalize() for word in words[1:])
''')

TEST_SLUGIFY = _s(r"""
import pytest

from slugkit import slugify, transliterate, unique_slug


def test_basic_slug():
    assert slugify("Hello, World!") == "hello-world"


def test_accents_and_special_letters():
    assert slugify("Cr\u00e8me Br\u00fbl\u00e9e & Co.") == "creme-brulee-and-co"
    assert transliterate("Stra\u00dfe \u00d8re \u0141\u00f3d\u017a") == "Strasse Ore Lodz"


def test_custom_separator_and_case():
    assert slugify("Hello World", separator="_", lowercase=False) == "Hello_World"
    assert slugify("a b c", separator="") == "abc"


def test_stopwords():
    assert slugify("The Lord of the Rings", stopwords=["the", "of"]) == "lord-rings"
    assert slugify("The The", stopwords=["the"]) == "the-the"


def test_max_length_cuts_between_words():
    assert slugify("hello world again", max_length=8) == "hello"
    assert slugify("hello world again", max_length=14) == "hello-world"


def test_max_length_long_first_word_is_cut():
    assert slugify("Supercalifragilistic", max_length=5) == "super"


def test_max_length_not_reached():
    assert slugify("hello world", max_length=20) == "hello-world"
    assert slugify("hello world", max_length=11) == "hello-world"


def test_max_length_must_be_positive():
    with pytest.raises(ValueError):
        slugify("x", max_length=0)


def test_unique_slug():
    taken = {"report", "report-2"}
    assert unique_slug("Report", taken) == "report-3"
    assert unique_slug("Other", taken) == "other"
""")

TEST_CASE = _s(r"""
from slugkit import camel_case, kebab_case, pascal_case, snake_case, split_words


def test_split_words():
    assert split_words("HTTPServerError") == ["HTTP", "Server", "Error"]
    assert split_words("version2Update") == ["version", "2", "Update"]
    assert split_words("snake_case_name") == ["snake", "case", "name"]


def test_conversions():
    assert snake_case("getHTTPResponse") == "get_http_response"
    assert kebab_case("Some Title Here") == "some-title-here"
    assert pascal_case("user_id") == "UserId"
    assert camel_case("user-account-id") == "userAccountId"
    assert camel_case("") == ""
""")

PLURAL = _s(r'''
"""English plurals."""

_IRREGULAR = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "mouse": "mice",
    "goose": "geese",
    "tooth": "teeth",
    "foot": "feet",
    "ox": "oxen",
}
_UNCOUNTABLE = {
    "sheep", "fish", "deer", "series", "species", "news",
    "information", "equipment", "rice", "money",
}
_F_EXCEPTIONS = {"roof", "chief", "belief", "chef", "cliff", "proof"}
_O_TAKES_ES = {"hero", "potato", "tomato", "echo", "veto", "torpedo"}


def _match_case(original, plural):
    if len(original) > 1 and original.isupper():
        return plural.upper()
    if original[:1].isupper():
        return plural[:1].upper() + plural[1:]
    return plural


def pluralize(word, count=2, plural=None):
    """Return the plural of *word*, or *word* itself when *count* is 1.

    *plural* overrides the computed form.  The case of the word is kept
    ("Box" -> "Boxes", "CITY" -> "CITIES").
    """
    if count == 1 or not word:
        return word
    if plural is not None:
        return plural
    lower = word.lower()
    if lower in _UNCOUNTABLE:
        return word
    if lower in _IRREGULAR:
        return _match_case(word, _IRREGULAR[lower])

    stem = word
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        suffix = "es"
    elif lower.endswith("y"):
        stem, suffix = word[:-1], "ies"
    elif lower.endswith("fe"):
        stem, suffix = word[:-2], "ves"
    elif lower.endswith("f") and lower not in _F_EXCEPTIONS:
        stem, suffix = word[:-1], "ves"
    elif lower in _O_TAKES_ES:
        suffix = "es"
    else:
        suffix = "s"
    if len(word) > 1 and word.isupper():
        suffix = suffix.upper()
    return stem + suffix


def quantify(count, word, plural=None):
    """'1 file', '3 files', '0 files'."""
    return f"{count} {pluralize(word, count, plural)}"
''')

WRAP = _s(r'''
"""Word wrapping and shortening."""


def wrap(text, width=70, break_long_words=True):
    """Greedily wrap *text* into lines of at most *width* characters.

    Whitespace runs are collapsed.  Words longer than *width* are split over
    several lines unless *break_long_words* is false.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    lines = []
    current = ""
    for word in text.split():
        if break_long_words and len(word) > width:
            if current:
                lines.append(current)
                current = ""
            while len(word) > width:
                lines.append(word[:width])
                word = word[width:]
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current = f"{current} {word}"
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fill(text, width=70, **options):
    return "\n".join(wrap(text, width, **options))


def shorten(text, width, placeholder=" ..."):
    """Collapse whitespace and cut *text* at a word boundary to fit *width*."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    if len(placeholder.strip()) > width:
        raise ValueError("placeholder is longer than width")
    room = width - len(placeholder)
    kept = ""
    for word in text.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if len(candidate) > room:
            break
        kept = candidate
    return kept + placeholder if kept else placeholder.strip()


def indent(text, prefix):
    """Add *prefix* to every line that is not blank."""
    return "".join(
        prefix + line if line.strip() else line
        for line in text.splitlines(keepends=True)
    )
''')

INIT_V2 = INIT_V1.replace(
    "from .slugify import slugify, transliterate, unique_slug\n",
    "from .plural import pluralize, quantify\n"
    "from .slugify import slugify, transliterate, unique_slug\n"
    "from .wrap import fill, indent, shorten, wrap\n",
)

TEST_PLURAL = _s(r"""
from slugkit import pluralize, quantify


def test_regular_plurals():
    assert pluralize("file") == "files"
    assert pluralize("photo") == "photos"
    assert pluralize("hero") == "heroes"


def test_sibilant_endings():
    assert pluralize("box") == "boxes"
    assert pluralize("church") == "churches"
    assert pluralize("bus") == "buses"


def test_consonant_y():
    assert pluralize("city") == "cities"
    assert pluralize("Party") == "Parties"


def test_f_and_fe():
    assert pluralize("knife") == "knives"
    assert pluralize("wolf") == "wolves"
    assert pluralize("roof") == "roofs"


def test_irregular_and_uncountable():
    assert pluralize("Person") == "People"
    assert pluralize("child") == "children"
    assert pluralize("sheep") == "sheep"


def test_case_is_kept():
    assert pluralize("BOX") == "BOXES"
    assert pluralize("BABY") == "BABIES"


def test_count_and_override():
    assert pluralize("file", 1) == "file"
    assert pluralize("file", 0) == "files"
    assert pluralize("cactus", plural="cacti") == "cacti"


def test_quantify():
    assert quantify(1, "file") == "1 file"
    assert quantify(3, "mouse") == "3 mice"
""")

TEST_WRAP = _s(r"""
import pytest

from slugkit import fill, indent, shorten, wrap


def test_wrap_greedy():
    assert wrap("the quick brown fox jumps", 10) == ["the quick", "brown fox", "jumps"]


def test_wrap_exact_width():
    assert wrap("aaaa bbbb", 9) == ["aaaa bbbb"]
    assert wrap("aaaa bbbb", 8) == ["aaaa", "bbbb"]


def test_wrap_long_words():
    assert wrap("x abcdefghij y", 4) == ["x", "abcd", "efgh", "ij y"]
    assert wrap("abcdefghij", 4, break_long_words=False) == ["abcdefghij"]


def test_wrap_invalid_width():
    with pytest.raises(ValueError):
        wrap("text", 0)


def test_fill_and_indent():
    assert fill("one two three", 7) == "one two\nthree"
    assert indent("a\n\nb\n", "> ") == "> a\n\n> b\n"


def test_shorten():
    assert shorten("Hello   world, how are you?", 100) == "Hello world, how are you?"
    assert shorten("Hello world, how are you?", 16) == "Hello world, ..."
    assert shorten("Supercalifragilistic", 8) == "..."
""")

TEMPLATE = _s(r'''
r"""A tiny template language.

    Hello {{ user.name|title }}, you have {{ count }} {{ "message"|plural:count }}.

* ``{{ expr }}`` inserts a value.  An expression is a variable path
  (``user.name``: dictionary keys, attributes and list indexes), a quoted
  string or an integer, followed by any number of filters ``|name`` or
  ``|name:argument``; the argument is again a path or a literal.
* ``{# ... #}`` is a comment.
* ``\{{`` produces a literal ``{{``.

Malformed templates raise TemplateSyntaxError when the Template is created.
Problems found while rendering raise TemplateError: undefined variables
(unless ``strict=False``, which renders them as empty strings), unknown
filters and filters that fail.
"""

import re

from .plural import pluralize
from .slugify import slugify
from .wrap import shorten


class TemplateError(Exception):
    """Base class of template errors."""


class TemplateSyntaxError(TemplateError):
    def __init__(self, message, position):
        super().__init__(f"{message} (at position {position})")
        self.position = position


class _Undefined:
    def __repr__(self):
        return "<undefined>"


UNDEFINED = _Undefined()


def _default(value, fallback=""):
    return fallback if value is UNDEFINED or value is None or value == "" else value


def _join(value, separator=", "):
    return separator.join(str(item) for item in value)


DEFAULT_FILTERS = {
    "upper": lambda value: str(value).upper(),
    "lower": lambda value: str(value).lower(),
    "title": lambda value: str(value).title(),
    "strip": lambda value: str(value).strip(),
    "length": len,
    "slug": lambda value: slugify(str(value)),
    "plural": lambda value, count=2: pluralize(str(value), count),
    "truncate": lambda value, width: shorten(str(value), int(width)),
    "join": _join,
    "default": _default,
}

_TOKEN_RE = re.compile(r"\\\{\{|\{\{(.*?)\}\}|\{#.*?#\}", re.S)
_PATH_RE = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*")
_INT_RE = re.compile(r"-?\d+")
_NAME_RE = re.compile(r"[A-Za-z_]\w*")


class _Expression:
    __slots__ = ("operand", "filters", "position", "source")

    def __init__(self, operand, filters, position, source):
        self.operand = operand
        self.filters = filters
        self.position = position
        self.source = source


def _split_pipes(text, position):
    parts, buf, quote = [], [], None
    for ch in text:
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            buf.append(ch)
        elif ch == "|":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if quote:
        raise TemplateSyntaxError("unterminated string", position)
    parts.append("".join(buf))
    return parts


def _parse_operand(text, position):
    text = text.strip()
    if not text:
        raise TemplateSyntaxError("empty expression", position)
    if text[0] in "\"'":
        if len(text) < 2 or text[-1] != text[0]:
            raise TemplateSyntaxError(f"bad string literal {text}", position)
        return ("literal", text[1:-1])
    if _INT_RE.fullmatch(text):
        return ("literal", int(text))
    if _PATH_RE.fullmatch(text):
        return ("path", text.split("."))
    raise TemplateSyntaxError(f"invalid expression {text!r}", position)


class Template:
    """A compiled template.  Render it with :meth:`render`."""

    def __init__(self, source, filters=None, strict=True):
        self.source = source
        self.strict = strict
        self.filters = dict(DEFAULT_FILTERS)
        if filters:
            self.filters.update(filters)
        self._nodes = self._compile(source)

    def _compile(self, source):
        nodes = []
        pos = 0
        for match in _TOKEN_RE.finditer(source):
            nodes.append(source[pos:match.start()])
            token = match.group(0)
            if token == "\\{{":
                nodes.append("{{")
            elif token.startswith("{{"):
                nodes.append(self._parse_expression(match.group(1), match.start()))
            pos = match.end()
        rest = source[pos:]
        if "{{" in rest:
            raise TemplateSyntaxError("unclosed '{{'", pos + rest.index("{{"))
        nodes.append(rest)
        return [node for node in nodes if node != ""]

    def _parse_expression(self, text, position):
        parts = _split_pipes(text, position)
        operand = _parse_operand(parts[0], position)
        filters = []
        for part in parts[1:]:
            name, colon, argument = part.partition(":")
            name = name.strip()
            if not _NAME_RE.fullmatch(name):
                raise TemplateSyntaxError(f"invalid filter name {name!r}", position)
            filters.append((name, _parse_operand(argument, position) if colon else None))
        return _Expression(operand, filters, position, text.strip())

    def render(self, context=None, **values):
        """Render with the variables of *context* and/or keyword arguments."""
        scope = dict(context or {})
        scope.update(values)
        out = []
        for node in self._nodes:
            out.append(node if isinstance(node, str) else self._evaluate(node, scope))
        return "".join(out)

    def _evaluate(self, expr, scope):
        value = self._resolve(expr.operand, scope)
        for name, argument in expr.filters:
            func = self.filters[name]
            if value is UNDEFINED and name != "default":
                value = self._undefined(expr)
            args = () if argument is None else (self._resolve(argument, scope),)
            if any(arg is UNDEFINED for arg in args):
                args = (self._undefined(expr),)
            try:
                value = func(value, *args)
            except (TypeError, ValueError) as exc:
                raise TemplateError(f"filter {name!r} failed in {{{{ {expr.source} }}}}: {exc}") from exc
        if value is UNDEFINED:
            value = self._undefined(expr)
        return "" if value is None else str(value)

    def _undefined(self, expr):
        if self.strict:
            raise TemplateError(f"undefined variable in {{{{ {expr.source} }}}}")
        return ""

    @staticmethod
    def _resolve(operand, scope):
        kind, value = operand
        if kind == "literal":
            return value
        current = scope
        for part in value:
            if isinstance(current, dict):
                if part not in current:
                    return UNDEFINED
                current = current[part]
            elif isinstance(current, (list, tuple)) and part.isdigit():
                index = int(part)
                if index >= len(current):
                    return UNDEFINED
                current = current[index]
            elif part.startswith("_"):
                return UNDEFINED
            else:
                try:
                    current = getattr(current, part)
                except AttributeError:
                    return UNDEFINED
        return current


def render(template, context=None, **values):
    """Compile and render *template* in one go."""
    return Template(template).render(context, **values)
''')

INIT_V3 = INIT_V2.replace(
    "from .slugify import slugify, transliterate, unique_slug\n",
    "from .slugify import slugify, transliterate, unique_slug\nfrom .template import Template, TemplateError, TemplateSyntaxError, render\n",
)

TEST_TEMPLATE = _s(r"""
from types import SimpleNamespace

import pytest

from slugkit import Template, TemplateError, TemplateSyntaxError, render


def test_plain_text_and_variables():
    assert render("Hello {{ name }}!", name="Jo") == "Hello Jo!"
    assert render("{{a}}{{ b }}", {"a": 1}, b=2) == "12"


def test_paths():
    user = SimpleNamespace(name="ada", tags=["x", "y"])
    assert render("{{ user.name }} {{ user.tags.1 }}", user=user) == "ada y"
    assert render("{{ d.k.v }}", d={"k": {"v": 3}}) == "3"


def test_filters_and_arguments():
    assert render("{{ name|upper }}", name="jo") == "JO"
    assert render("{{ ' x '|strip|title }}") == "X"
    assert render("{{ n }} {{ 'file'|plural:n }}", n=3) == "3 files"
    assert render("{{ items|join:' / ' }}", items=["a", "b"]) == "a / b"
    assert render("{{ text|truncate:12 }}", text="one two three four") == "one two ..."


def test_custom_filters():
    template = Template("{{ word|shout }}", filters={"shout": lambda v: v.upper() + "!"})
    assert template.render(word="hey") == "HEY!"


def test_undefined_variable_strict_and_lenient():
    with pytest.raises(TemplateError):
        render("{{ missing }}")
    assert Template("[{{ missing }}]", strict=False).render() == "[]"
    assert render("{{ missing|default:'n/a' }}") == "n/a"


def test_failing_filter_is_reported():
    with pytest.raises(TemplateError):
        render("{{ text|truncate:'wide' }}", text="abc def")


def test_comments_and_escapes():
    assert render("a{# hidden #}b") == "ab"
    assert render("\\{{ literal }}") == "{{ literal }}"


def test_syntax_errors():
    with pytest.raises(TemplateSyntaxError):
        Template("{{ }}")
    with pytest.raises(TemplateSyntaxError):
        Template("{{ a b }}")
    with pytest.raises(TemplateSyntaxError) as info:
        Template("ok {{ name")
    assert info.value.position == 3
""")

HISTORY = [
    {
        "message": "Add slugify and case conversion helpers",
        "write": {
            "pyproject.toml": PYPROJECT,
            "README.md": README,
            "slugkit/__init__.py": INIT_V1,
            "slugkit/slugify.py": SLUGIFY,
            "slugkit/case.py": CASE,
            "tests/test_slugify.py": TEST_SLUGIFY,
            "tests/test_case.py": TEST_CASE,
        },
    },
    {
        "message": "Add pluralize and text wrapping",
        "write": {
            "slugkit/__init__.py": INIT_V2,
            "slugkit/plural.py": PLURAL,
            "slugkit/wrap.py": WRAP,
            "tests/test_plural.py": TEST_PLURAL,
            "tests/test_wrap.py": TEST_WRAP,
        },
    },
    {"task": "slugkit-truncate-word-boundary"},
    {
        "message": "Add a tiny template language",
        "write": {
            "slugkit/__init__.py": INIT_V3,
            "slugkit/template.py": TEMPLATE,
            "tests/test_template.py": TEST_TEMPLATE,
        },
    },
    {"task": "slugkit-pluralize-vowel-y"},
    {"task": "slugkit-template-unknown-filter"},
    {
        "message": "Release 1.4.0",
        "edit": [
            ("slugkit/__init__.py", '__version__ = "1.3.0"', '__version__ = "1.4.0"'),
            ("pyproject.toml", 'version = "1.3.0"', 'version = "1.4.0"'),
        ],
        "write": {
            "CHANGELOG.md": _s(r"""
# Changelog

## 1.4.0

- New tiny template language (`Template`, `render`).
- `slugify(max_length=...)` keeps the last word when it ends exactly at the limit.
- `pluralize()` handles words ending in a vowel followed by "y".
- Unknown template filters raise `TemplateError`.

## 1.3.0

- `pluralize()`, `quantify()` and text wrapping helpers.
"""),
        },
    },
]

TASKS = {
    "slugkit-truncate-word-boundary": {
        "fix_message": "slugify: keep the last word when it ends exactly at max_length",
        "edit": [
            (
                "slugkit/slugify.py",
                "    cut = slug[:max_length]\n    if separator and separator in cut:\n",
                "    cut = slug[:max_length]\n"
                "    if separator and slug.startswith(separator, max_length):\n"
                "        # The cut falls exactly between two words.\n"
                "        return cut\n"
                "    if separator and separator in cut:\n",
            ),
        ],
        "append": {
            "tests/test_slugify.py": _t(r"""
def test_max_length_ending_exactly_at_word_end():
    assert slugify("Hello World Again", max_length=11) == "hello-world"
    assert slugify("one two three", separator="_", max_length=7) == "one_two"


def test_unique_slug_respects_max_length_boundary():
    taken = {"annual"}
    assert unique_slug("Annual Report 2024", taken, max_length=13) == "annual-report"
"""),
        },
        "problem_statement": _s(r"""
slugify(max_length=...) drops a word that fits exactly

`slugify()` with `max_length` is supposed to shorten the slug without
cutting words. When the limit falls exactly at the end of a word, that word
is dropped even though it fits:

```python
>>> from slugkit import slugify
>>> slugify("Hello World Again", max_length=11)
'hello'
```

`"hello-world"` is exactly 11 characters, so I expected `'hello-world'`.
With `max_length=12` I do get `'hello-world'`. Same thing with other
separators: `slugify("one two three", separator="_", max_length=7)` returns
`'one'` instead of `'one_two'`.

We generate URL slugs with a fixed limit and this produces needlessly short
(and then clashing) slugs: with `taken = {"annual"}`,
`unique_slug("Annual Report 2024", taken, max_length=13)` yields `'annual-2'`
although `'annual-report'` fits in 13 characters.
"""),
    },
    "slugkit-pluralize-vowel-y": {
        "fix_message": "pluralize: vowel + y just takes an s",
        "edit": [
            (
                "slugkit/plural.py",
                '    elif lower.endswith("y"):\n',
                '    elif lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):\n',
            ),
        ],
        "append": {
            "tests/test_plural.py": _t(r"""
def test_vowel_before_y_just_adds_s():
    assert pluralize("day") == "days"
    assert pluralize("key") == "keys"
    assert pluralize("toy") == "toys"
    assert pluralize("guy") == "guys"


def test_vowel_y_keeps_case():
    assert pluralize("Monkey") == "Monkeys"
    assert pluralize("DAY") == "DAYS"


def test_quantify_vowel_y():
    assert quantify(3, "essay") == "3 essays"
"""),
            "tests/test_template.py": _t(r"""
def test_plural_filter_with_vowel_y():
    assert render("{{ n }} {{ 'day'|plural:n }} left", n=2) == "2 days left"
"""),
        },
        "problem_statement": _s(r"""
pluralize() turns "day" into "daies"

Our reminder e-mails are rendered with the `plural` filter and currently say
"2 daies left":

```python
>>> from slugkit import pluralize, render
>>> pluralize("day")
'daies'
>>> pluralize("key"), pluralize("Monkey")
('keies', 'Monkeies')
>>> render("{{ n }} {{ 'day'|plural:n }} left", n=2)
'2 daies left'
```

Words ending in a consonant followed by "y" are fine (`city` -> `cities`,
`party` -> `parties`), but when the "y" follows a vowel the plural should
simply add an "s": `days`, `keys`, `toys`, `guys`, `Monkeys`, `DAYS`.
"""),
    },
    "slugkit-template-unknown-filter": {
        "fix_message": "Template: report unknown filters as TemplateError",
        "edit": [
            (
                "slugkit/template.py",
                "            func = self.filters[name]\n",
                "            func = self.filters.get(name)\n"
                "            if func is None:\n"
                '                raise TemplateError(f"unknown filter {name!r} in {{{{ {expr.source} }}}}")\n',
            ),
        ],
        "append": {
            "tests/test_template.py": _t(r"""
def test_unknown_filter_raises_template_error():
    with pytest.raises(TemplateError) as info:
        Template("Hi {{ name|shout }}").render(name="Jo")
    assert "shout" in str(info.value)


def test_unknown_filter_on_undefined_value_when_lenient():
    with pytest.raises(TemplateError):
        Template("{{ missing|shout }}", strict=False).render()
"""),
        },
        "problem_statement": _s(r"""
Unknown filter raises a bare KeyError instead of TemplateError

The module docs say that problems found while rendering (undefined
variables, unknown filters, failing filters) raise `TemplateError`. We wrap
rendering of user-provided templates in `except TemplateError` to show a
friendly message, but a typo in a filter name escapes that handler and
crashes the request:

```python
from slugkit import Template, TemplateError

try:
    Template("Hi {{ name|shout }}").render(name="Jo")
except TemplateError as exc:
    print("template problem:", exc)
```

```
Traceback (most recent call last):
  ...
KeyError: 'shout'
```

Expected: a `TemplateError` whose message names the unknown filter
(`shout`). This should also be the case for lenient templates
(`strict=False`) and when the filtered variable is undefined.
"""),
    },
}
