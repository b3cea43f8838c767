"""The task file's field reference, generated from the models in `data/task.py` (their field docstrings).

`python -m swe_env.data.reference > docs/task-reference.md` writes the page; a test checks that the
checked-in page is what this prints, so the reference cannot drift from the code.
"""

from __future__ import annotations

import enum
import types
import typing

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .task import Environment, Limits, Service, Task, TestSpec

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("Task (the top level of `task.yaml`)", Task),
    ("`environment:`", Environment),
    ("`environment.services[]`", Service),
    ("`tests:`", TestSpec),
    ("`limits:`", Limits),
]


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True) if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        return "see its section"
    text = repr(value)
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def render() -> str:
    """The reference page as Markdown: one table per section, a row per field (name, type, default, meaning)."""
    lines = [
        "# Task file reference",
        "",
        "Generated from `swe_env/data/task.py` by `python -m swe_env.data.reference` (do not edit by hand;",
        "`tests/data/test_task.py` checks this page is current). A task file is `tasks/<id>/task.yaml`.",
        "",
    ]
    for title, model in SECTIONS:
        lines += [f"## {title}", "", _cell(model.__doc__), "", "| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            lines.append(f"| `{name}` | {_cell(_type_name(field.annotation))} | {_cell(_default(field))} | {_cell(field.description)} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
