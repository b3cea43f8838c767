"""The text space of SWEEnv's observations and actions, its shared-memory layout, and the render
both `SWEEnv` and `RemoteSWEEnv` use (`render_text`).

Gymnasium's `AsyncVectorEnv` uses shared memory by default (`shared_memory=True`). Its
layout for `spaces.Text` cannot carry our observations: it stores one int32 index into the
space's character set per character (so any character outside the set, `é` for one, fails
in the worker), and the batch it reads is a tuple of strings decoded once, when the vector
env is built, so every later observation reads back as that first (empty, all-"0") text.

`CodeText` registers its own layout with Gymnasium's `create_shared_memory`,
`read_from_shared_memory` and `write_to_shared_memory` (single-dispatch functions, so the
most specific class wins and other `Text` spaces keep Gymnasium's): per sub-env a slot of
`4 * max_length` bytes (UTF-8 needs at most 4 bytes per code point) holding the text's
UTF-8 encoding, `surrogatepass` so that any Python string round-trips, lone surrogates
included, and its byte length in a separate array. What `read_from_shared_memory` returns
is a live view (`SharedTextBatch`) that decodes the slots when read; Gymnasium hands out
`deepcopy(view)` by default (`copy=True`), which is a plain tuple of strings, the same
type `shared_memory=False` returns.
"""

from __future__ import annotations

import multiprocessing as mp
import string
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

from .tools import escape_control

OBSERVATION_MAX_LENGTH = 1_000_000
BYTES_PER_CHARACTER = 4  # the longest UTF-8 encoding of one code point (surrogates take 3)
_ENCODING, _ERRORS = "utf-8", "surrogatepass"


class CodeText(spaces.Text):
    """A text space that holds any Python string up to `max_length` (code is not ASCII-only).

    Samples are drawn from printable ASCII, which is all a random agent needs.
    """

    def __init__(self, max_length: int = OBSERVATION_MAX_LENGTH):
        super().__init__(max_length=max_length, min_length=0, charset=string.printable)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length


class SharedTextBatch(Sequence):
    """The texts of n sub-envs as they are in shared memory now (decoded at each read).

    `deepcopy` (what `AsyncVectorEnv(copy=True)` returns) and `snapshot()` give a tuple of str.
    """

    def __init__(self, lengths: Any, data: Any, n: int, capacity: int):
        self._lengths = np.frombuffer(lengths, dtype=np.int64)
        self._data = np.frombuffer(data, dtype=np.uint8)
        self._n = n
        self._capacity = capacity

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("SharedTextBatch index out of range")
        start = index * self._capacity
        length = int(self._lengths[index])
        return self._data[start : start + length].tobytes().decode(_ENCODING, _ERRORS)

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(self._n))

    def snapshot(self) -> tuple[str, ...]:
        return tuple(self)

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return self.snapshot()

    def __copy__(self) -> tuple[str, ...]:
        return self.snapshot()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (SharedTextBatch, tuple, list)):
            return self.snapshot() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # its contents change

    def __repr__(self) -> str:
        return f"SharedTextBatch({self.snapshot()!r})"


def _capacity(space: CodeText) -> int:
    return BYTES_PER_CHARACTER * space.max_length


@create_shared_memory.register(CodeText)
def _create_code_text_shared_memory(space: CodeText, n: int = 1, ctx: ModuleType = mp) -> tuple[Any, Any]:
    # Raw (lock-free) arrays: Gymnasium orders the writes and reads through its pipes.
    return ctx.Array("q", n, lock=False), ctx.Array("B", n * _capacity(space), lock=False)


@read_from_shared_memory.register(CodeText)
def _read_code_text_from_shared_memory(space: CodeText, shared_memory: tuple[Any, Any], n: int = 1) -> SharedTextBatch:
    lengths, data = shared_memory
    return SharedTextBatch(lengths, data, n, _capacity(space))


@write_to_shared_memory.register(CodeText)
def _write_code_text_to_shared_memory(space: CodeText, index: int, value: str, shared_memory: tuple[Any, Any]) -> None:
    if not isinstance(value, str):
        raise TypeError(f"a CodeText observation must be a str, not {type(value).__name__}")
    if len(value) > space.max_length:
        raise ValueError(f"observation of {len(value)} characters is longer than the space's max_length {space.max_length}")
    encoded = value.encode(_ENCODING, _ERRORS)
    capacity = _capacity(space)
    lengths, data = shared_memory
    start = index * capacity
    np.frombuffer(data, dtype=np.uint8)[start : start + len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    np.frombuffer(lengths, dtype=np.int64)[index] = len(encoded)


def render_text(render_mode: str | None, task_id: str | None, steps: int, last_text: str) -> str | None:
    """gymnasium's render for SWEEnv and RemoteSWEEnv: the last observation under a header;
    "human" prints it, "ansi" returns it, None does nothing."""
    if render_mode is None:
        return None
    text = f"[{task_id or '-'} step {steps}]\n{escape_control(last_text)}"
    if render_mode == "human":
        print(text)
        return None
    return text
