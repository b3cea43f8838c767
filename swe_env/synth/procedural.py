"""The `procedural` method: small AST mutations of functions the passing tests reach.

Each kind is a function in `KINDS` (the registry): given a function's node and the file's text,
it yields `Edit`s, each one minimal, syntactically valid change written back into the
original text (only the mutated span is rewritten, so the diff shows one changed line as a
rule). `mutations` runs every kind over the functions of a file that the suite reaches.

Kinds: flip_comparison, comparison_boundary, swap_bool_operator, swap_arithmetic,
off_by_one, swap_arguments, remove_branch, remove_guard, remove_early_return,
change_constant, change_default, invert_condition, wrong_exception, drop_call_result,
remove_call, remove_loop_control.

Why one module of this size: the kinds are small functions in one registry (`KINDS`), sharing the
splicing of an edit into the original text; a module per kind would be a dozen files of ten lines.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

METHOD = "procedural"


@dataclass(frozen=True)
class Edit:
    """Replace the text between two (line, column) positions (1-based lines, UTF-8 byte columns, as `ast` gives)."""

    start: tuple[int, int]
    end: tuple[int, int]
    text: str
    description: str


@dataclass(frozen=True)
class Mutation:
    """One candidate bug: the kind, where, and the file's new text."""

    kind: str
    path: str
    function: str
    line: int
    description: str
    source: str
    patch: str
    """The change as a unified diff (git's `a/` `b/` form) against the clean file."""


Kind = Callable[[ast.AST, "_Text"], Iterator[Edit]]
KINDS: dict[str, Kind] = {}
"""The registry: kind name -> the function that finds its edits in one function."""


def kind(name: str) -> Callable[[Kind], Kind]:
    def register(function: Kind) -> Kind:
        KINDS[name] = function
        return function

    return register


class _Text:
    """A file's text with byte offsets per line, for reading and splicing by `ast` positions."""

    def __init__(self, source: str):
        self.source = source
        self.data = source.encode("utf-8")
        self.starts = [0]
        for index, byte in enumerate(self.data):
            if byte == 0x0A:
                self.starts.append(index + 1)

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column

    def segment(self, node: ast.AST) -> str:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return self.data[start:end].decode("utf-8")

    def line_start(self, line: int) -> int:
        return self.starts[line - 1]

    def splice(self, edit: Edit) -> str:
        start, end = self.offset(*edit.start), self.offset(*edit.end)
        return (self.data[:start] + edit.text.encode("utf-8") + self.data[end:]).decode("utf-8")

    def indentation(self, line: int) -> str:
        text = self.data[self.starts[line - 1] :].split(b"\n", 1)[0].decode("utf-8")
        return text[: len(text) - len(text.lstrip())]


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    return (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _replace(node: ast.AST, text: str, description: str) -> Edit:
    start, end = _span(node)
    return Edit(start, end, text, description)


_ATOMIC = (ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.Subscript, ast.List, ast.Tuple, ast.Dict, ast.Set)


def _operand(text: _Text, node: ast.AST) -> str:
    """A node's text, in parentheses unless it is atomic (so an operator next to it binds as before)."""
    segment = text.segment(node)
    return segment if isinstance(node, _ATOMIC) else f"({segment})"


def _nodes(function: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function's own code: nested functions, classes and lambdas are theirs, not its."""
    stack = list(ast.iter_child_nodes(function))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def _blocks(function: ast.AST) -> Iterator[tuple[ast.AST, list[ast.stmt]]]:
    """(owner, statement list) for every block of the function's own code, the body included."""
    for node in [function, *_nodes(function)]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and node is not function:
            continue
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield node, block
        for handler in getattr(node, "handlers", []) or []:
            yield handler, handler.body


def _remove_statement(text: _Text, owner: ast.AST, block: list[ast.stmt], index: int, description: str) -> Edit | None:
    """Delete a statement's whole lines (`pass` in its place when it is the block's only one); None when it
    shares a line with other code."""
    statement = block[index]
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    decorators = getattr(statement, "decorator_list", [])
    if decorators:
        first = min(d.lineno for d in decorators)
    if (index and (block[index - 1].end_lineno or 0) >= first) or (index + 1 < len(block) and block[index + 1].lineno <= last):
        return None
    if getattr(owner, "lineno", 0) == first:  # `if x: return` on one line
        return None
    before = text.data[text.line_start(first) : text.offset(statement.lineno, statement.col_offset)]
    if before.strip():
        return None
    end_line = last + 1
    end = (end_line, 0) if end_line <= len(text.starts) else (last, statement.end_col_offset or 0)
    replacement = f"{text.indentation(statement.lineno)}pass\n" if len(block) == 1 else ""
    return Edit((first, 0), end, replacement, description)


# ---------------------------------------------------------------- the kinds

_FLIPPED = {
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BOUNDARY = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def _compare_edits(function: ast.AST, text: _Text, table: dict, what: str) -> Iterator[Edit]:
    for node in _nodes(function):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in table:
            old = type(node.ops[0])
            new = table[old]
            rewritten = f"{_operand(text, node.left)} {_SYMBOL[new]} {_operand(text, node.comparators[0])}"
            yield _replace(node, rewritten, f"{what}: `{_SYMBOL[old]}` became `{_SYMBOL[new]}`")


@kind("flip_comparison")
def flip_comparison(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """`a < b` -> `a >= b`, `==` <-> `!=`, `in` <-> `not in`, `is` <-> `is not`."""
    yield from _compare_edits(function, text, _FLIPPED, "flipped comparison")


@kind("comparison_boundary")
def comparison_boundary(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """`<` <-> `<=`, `>` <-> `>=`: an off-by-one at a boundary."""
    yield from _compare_edits(function, text, _BOUNDARY, "comparison boundary")


@kind("swap_bool_operator")
def swap_bool_operator(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """`a and b` <-> `a or b`."""
    for node in _nodes(function):
        if isinstance(node, ast.BoolOp):
            new = " or " if isinstance(node.op, ast.And) else " and "
            # Only what binds more loosely than `and`/`or` needs parentheses to keep its meaning.
            rewritten = new.join(
                f"({text.segment(value)})" if isinstance(value, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr)) else text.segment(value)
                for value in node.values
            )
            yield _replace(node, rewritten, f"boolean operator became `{new.strip()}`")


_ARITHMETIC = {
    ast.Add: (ast.Sub, "-"),
    ast.Sub: (ast.Add, "+"),
    ast.Mult: (ast.FloorDiv, "//"),
    ast.FloorDiv: (ast.Mult, "*"),
    ast.Div: (ast.Mult, "*"),
    ast.Mod: (ast.FloorDiv, "//"),
}


@kind("swap_arithmetic")
def swap_arithmetic(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """`+` <-> `-`, `*` <-> `//`, `/` -> `*`, `%` -> `//`."""
    for node in _nodes(function):
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                continue  # string formatting and concatenation: a type error, not a plausible bug
            symbol = _ARITHMETIC[type(node.op)][1]
            rewritten = f"{_operand(text, node.left)} {symbol} {_operand(text, node.right)}"
            yield _replace(node, rewritten, f"arithmetic operator became `{symbol}`")


def _is_int(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _bounds(function: ast.AST) -> Iterator[ast.AST]:
    """Expressions that bound a range, a slice or an index."""
    for node in _nodes(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            yield from (arg for arg in node.args if not isinstance(arg, ast.Starred))
        elif isinstance(node, ast.Slice):
            yield from (part for part in (node.lower, node.upper) if part is not None)
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, (ast.Slice, ast.Tuple)):
            if _is_int(node.slice) or isinstance(node.slice, (ast.Name, ast.BinOp, ast.UnaryOp)):
                yield node.slice


@kind("off_by_one")
def off_by_one(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A range argument, slice bound or index one off: `n` -> `n + 1` / `n - 1`, `len(x)` -> `len(x) - 1`."""
    for bound in _bounds(function):
        if _is_int(bound):
            value = bound.value  # type: ignore[attr-defined]
            for new in (value + 1, value - 1):
                yield _replace(bound, str(new), f"off by one: {value} became {new}")
        elif isinstance(bound, ast.UnaryOp) and isinstance(bound.op, ast.USub) and _is_int(bound.operand):
            value = -bound.operand.value  # type: ignore[attr-defined]
            yield _replace(bound, str(value + 1) if value + 1 else "None", f"off by one: {value} became {value + 1}")
        else:
            yield _replace(bound, f"{_operand(text, bound)} - 1", f"off by one: `{text.segment(bound)}` became one less")


@kind("swap_arguments")
def swap_arguments(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """The first two positional arguments of a call swapped."""
    for node in _nodes(function):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            first, second = node.args[0], node.args[1]
            if text.segment(first) == text.segment(second):
                continue
            # Two edits in one: the text from the first argument to the end of the second, rewritten.
            between = text.data[
                text.offset(first.end_lineno, first.end_col_offset) :   # type: ignore[arg-type]
                text.offset(second.lineno, second.col_offset)
            ].decode("utf-8")
            rewritten = text.segment(second) + between + text.segment(first)
            yield Edit(
                (first.lineno, first.col_offset),
                (second.end_lineno, second.end_col_offset),  # type: ignore[arg-type]
                rewritten,
                f"arguments `{text.segment(first)}` and `{text.segment(second)}` swapped",
            )


@kind("remove_branch")
def remove_branch(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """The `else` / `elif` branch of an `if` removed."""
    for node in _nodes(function):
        if isinstance(node, ast.If) and node.orelse:
            body_end = node.body[-1].end_lineno or node.body[-1].lineno
            first_else = node.orelse[0].lineno
            if first_else <= body_end or node.end_lineno is None:
                continue
            end = (node.end_lineno + 1, 0) if node.end_lineno + 1 <= len(text.starts) else (node.end_lineno, node.end_col_offset or 0)
            yield Edit((body_end + 1, 0), end, "", "the else/elif branch of an if removed")


@kind("remove_guard")
def remove_guard(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """An `if ...: raise ...` guard removed."""
    for owner, block in _blocks(function):
        for index, statement in enumerate(block):
            if isinstance(statement, ast.If) and not statement.orelse and isinstance(statement.body[-1], ast.Raise):
                edit = _remove_statement(text, owner, block, index, "a guard that raises removed")
                if edit:
                    yield edit


@kind("remove_early_return")
def remove_early_return(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """An `if ...: return ...` before the end of its block removed."""
    for owner, block in _blocks(function):
        for index, statement in enumerate(block[:-1]):
            if isinstance(statement, ast.If) and not statement.orelse and isinstance(statement.body[-1], ast.Return):
                edit = _remove_statement(text, owner, block, index, "an early return removed")
                if edit:
                    yield edit


def _changed_constant(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if isinstance(value, bool):
        return repr(not value)
    if isinstance(value, int):
        return str(value + 1)
    if isinstance(value, float):
        return repr(value * 2 if value else 1.0)
    return None


@kind("change_constant")
def change_constant(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A number in the code changed (`n` -> `n + 1`, `x.y` -> twice it), `True` <-> `False`."""
    bounds = {id(node) for node in _bounds(function)}
    defaults = {id(d) for d in [*function.args.defaults, *function.args.kw_defaults] if d is not None}  # type: ignore[attr-defined]
    for node in _nodes(function):
        new = _changed_constant(node)
        if new is not None and id(node) not in bounds and id(node) not in defaults:
            yield _replace(node, new, f"constant {text.segment(node)} became {new}")


@kind("change_default")
def change_default(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A parameter's default changed (a number, a flag, or None given a value of an empty string)."""
    for node in [*function.args.defaults, *function.args.kw_defaults]:  # type: ignore[attr-defined]
        if node is None:
            continue
        new = _changed_constant(node)
        if new is None and isinstance(node, ast.Constant) and node.value is None:
            new = '""'
        if new is not None:
            yield _replace(node, new, f"default {text.segment(node)} became {new}")


@kind("invert_condition")
def invert_condition(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """The condition of an `if`, `while` or conditional expression negated."""
    for node in _nodes(function):
        if isinstance(node, (ast.If, ast.While, ast.IfExp)):
            test = node.test
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                yield _replace(test, text.segment(test.operand), "a negation dropped from a condition")
                continue
            loose = isinstance(test, (ast.BoolOp, ast.IfExp, ast.Lambda, ast.NamedExpr))
            yield _replace(test, f"not ({text.segment(test)})" if loose else f"not {text.segment(test)}", "a condition inverted")


_EXCEPTIONS = {
    "ValueError": "TypeError",
    "TypeError": "ValueError",
    "KeyError": "IndexError",
    "IndexError": "KeyError",
    "RuntimeError": "ValueError",
    "LookupError": "ValueError",
}


@kind("wrong_exception")
def wrong_exception(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A raised exception's type replaced by another (`ValueError` -> `TypeError`, others -> `RuntimeError`)."""
    for node in _nodes(function):
        if isinstance(node, ast.Raise) and node.exc is not None:
            name = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(name, ast.Name):
                new = _EXCEPTIONS.get(name.id, "RuntimeError")
                yield _replace(name, new, f"raises {new} instead of {name.id}")


@kind("drop_call_result")
def drop_call_result(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """`x = obj.method(...)` -> `x = obj` (and the same in a return): the call's result is lost."""
    for node in _nodes(function):
        if isinstance(node, (ast.Assign, ast.Return, ast.AnnAssign)) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, (ast.Name, ast.Attribute, ast.Subscript)):
                receiver = text.segment(call.func.value)
                yield _replace(call, receiver, f"the result of `.{call.func.attr}(...)` dropped (`{receiver}` kept)")


@kind("remove_call")
def remove_call(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A call made for its effect (a statement of its own, e.g. `items.append(x)`) removed."""
    for owner, block in _blocks(function):
        for index, statement in enumerate(block):
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                edit = _remove_statement(text, owner, block, index, f"the call `{text.segment(statement.value)[:60]}` removed")
                if edit:
                    yield edit


@kind("remove_loop_control")
def remove_loop_control(function: ast.AST, text: _Text) -> Iterator[Edit]:
    """A loop's `break` or `continue` removed."""
    for owner, block in _blocks(function):
        for index, statement in enumerate(block):
            if isinstance(statement, (ast.Break, ast.Continue)):
                word = "break" if isinstance(statement, ast.Break) else "continue"
                edit = _remove_statement(text, owner, block, index, f"a `{word}` removed")
                if edit:
                    yield edit


# ---------------------------------------------------------------- over a file


def functions_of(tree: ast.Module) -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, node) of every function in a module, as CPython writes `__qualname__`."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                yield name, child
                yield from walk(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, prefix + child.name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def file_diff(path: str, old: str, new: str) -> str:
    """A unified diff of one file in git's form (`a/` and `b/` prefixes), 3 lines of context."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def mutations(path: str, source: str, functions: set[str], kinds: list[str] | None = None) -> list[Mutation]:
    """Every mutation of the kinds (default all) in the functions of `source` named in `functions` (qualified names)."""
    if not source.endswith("\n"):
        return []  # a diff would need "\\ No newline at end of file"; rare enough to leave out
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    text = _Text(source)
    found: list[Mutation] = []
    for name, node in functions_of(tree):
        if name not in functions:
            continue
        for kind_name in kinds or list(KINDS):
            for edit in KINDS[kind_name](node, text):
                new = text.splice(edit)
                if new == source:
                    continue
                try:
                    ast.parse(new)
                except SyntaxError:
                    continue
                found.append(Mutation(kind_name, path, name, edit.start[0], edit.description, new, file_diff(path, source, new)))
    return found
