"""A corpus's records, pure: the function-level traces cut out of a test's trace, a repository-level record's
source context and its CWM rendering, the content hash deduplication compares, token counts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import TypeAdapter

from .corpus_schema import ContextBlock, CorpusTrace
from .host import Trace, TraceEntry, TraceEvent, cwm_context, cwm_record

_EVENTS = TypeAdapter(list[TraceEvent])
_HASH_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode


def content_hash(entry: TraceEntry, events: list, context: list[ContextBlock] | None = None) -> str:
    """sha256 of `json.dumps({"entry": [file, function, line, source], "events": [each event's model_dump()]},
    sort_keys=True, ensure_ascii=False)`; a repository-level record's `context` (a list of its blocks' dumps) is
    a key of it too, so it never counts as a duplicate of its test-level twin."""
    payload: dict = {"entry": [entry.file, entry.function, entry.line, entry.source], "events": _EVENTS.dump_python(events)}
    if context is not None:
        payload["context"] = [block.model_dump() for block in context]
    return hashlib.sha256(_HASH_JSON(payload).encode()).hexdigest()


def function_traces(trace: Trace, sources: dict[str, dict], limit: int | None = None) -> list[Trace]:
    """The function-level traces inside a trace: one per frame below the entry, in call order (see `iter_function_traces`)."""
    return list(itertools.islice(iter_function_traces(trace, sources), limit))


def iter_function_traces(trace: Trace, sources: dict[str, dict]) -> Iterator[Trace]:
    """The function-level traces inside a trace, one at a time: one per frame below the entry, in call order.

    A frame's events are contiguous in its trace (from its `call` to its last event, the
    frames it called in between); they are taken with depths and frame numbers rebased.
    When the trace ends inside the frame (a cap, or the program ended), the function-level
    trace keeps the trace's `cut` or `complete: false` unless the frame's `return` is in.
    The entry's source comes from `sources` ("file:line:function" of the call event).
    """
    events, found = trace.events, 0
    for start, first in enumerate(events):
        if first.event != "call" or first.depth == 0:
            continue
        end = start + 1
        while end < len(events) and (events[end].depth > first.depth or events[end].frame == first.frame):
            end += 1
        segment = events[start:end]
        numbers: dict[int, int] = {}
        rebased = [
            event.model_copy(update={"depth": event.depth - first.depth, "frame": numbers.setdefault(event.frame, len(numbers))}) for event in segment
        ]
        last = segment[-1]
        returned = last.frame == first.frame and last.event == "return"
        left = last.frame == first.frame and last.event in ("return", "exception")
        runs_to_end = end == len(events)
        whole = returned or (left and not runs_to_end) or (left and trace.cut is None and trace.complete)
        source = sources.get(f"{first.file}:{first.line}:{first.function}") or {}
        entry = TraceEntry(file=first.file, function=first.function, line=first.line, **source)
        found += 1
        yield Trace(
            trace_id=f"{trace.trace_id}.{found}",
            task_id=trace.task_id,
            thread=trace.thread,
            entry=entry,
            repr_cap=trace.repr_cap,
            full_locals=trace.full_locals,
            cut=None if whole else trace.cut,
            complete=whole or trace.complete,
            event_count=len(rebased),
            tracer_errors=[],
            events=rebased,
        )


def context_blocks(trace: Trace, sources: dict[str, dict], max_bytes: int) -> tuple[list[ContextBlock], int]:
    """A repository-level record's context: the entry's source, then the source of each function the trace entered
    (in the order first entered; one block per function, whatever line it was entered at), while the rendered
    context stays within `max_bytes` (the entry's block always). Returns (blocks, functions left out)."""
    entry = trace.entry
    blocks = [ContextBlock(file=entry.file, first_line=entry.first_line, source=entry.source or "", source_cut=entry.source_cut)]
    seen = {(entry.file, entry.first_line)}
    size, dropped = _size(repository_context(trace, blocks)), 0
    for event in trace.events:
        if event.event != "call" or event.depth == 0:
            continue
        found = sources.get(f"{event.file}:{event.line}:{event.function}")
        if not found or not found.get("source"):
            continue
        block = ContextBlock(file=event.file, first_line=found.get("first_line"), source=found["source"], source_cut=bool(found.get("source_cut")))
        if (block.file, block.first_line) in seen:
            continue
        seen.add((block.file, block.first_line))
        # A block adds its source, and a file's header line when it opens a new file.
        extra = _size(block.source) + 1 + (0 if any(b.file == block.file for b in blocks) else _size(f"# {block.file}\n") + 1)
        if size + extra > max_bytes:
            dropped += 1
            continue
        blocks.append(block)
        size += extra
    return blocks, dropped


def repository_context(trace: Trace, blocks: list[ContextBlock]) -> str:
    """The CONTEXT of a repository-level record in CWM's layout: per file (the entry's first, then in the order first
    entered) a `# <path>` line and its blocks in line order, a blank line between blocks; START_MARKER on the
    entry line (`host.cwm_context` of the entry's own block)."""
    by_file: dict[str, list[ContextBlock]] = {}
    for block in blocks:
        by_file.setdefault(block.file, []).append(block)
    parts = []
    for file, found in by_file.items():
        texts = []
        for block in sorted(found, key=lambda b: b.first_line or 0):
            if block is blocks[0]:
                texts.append(cwm_context(trace))
            else:
                texts.append(block.source if block.source.endswith("\n") else block.source + "\n")
        parts.append(f"# {file}\n" + "\n".join(texts))
    return "\n".join(parts)


def _size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def render_record(record: CorpusTrace) -> dict:
    """A record's `cwm_record` (a repository-level record with its `repository_context`)."""
    context = repository_context(record, record.context) if record.context is not None else None
    return cwm_record(record, context=context)


def cut_reason(trace: Trace) -> str | None:
    """Why a record's trace is not whole: its cap (`max_events`, `max_bytes`), `incomplete`, or None."""
    if trace.cut:
        return trace.cut
    return None if trace.complete else "incomplete"


def token_counter(tokenizer: str) -> Callable[[str], int]:
    """Count tokens of a text: `bytes` (UTF-8 bytes: a byte-level count) or a `tokenizer.json` file."""
    if tokenizer == "bytes":
        return lambda text: len(text.encode("utf-8"))
    if not Path(tokenizer).is_file():
        raise ValueError(f"--tokenizer: {tokenizer}: not `bytes` and not a tokenizer.json file")
    try:
        from tokenizers import Tokenizer  # optional: only for a named tokenizer
    except ImportError:
        raise ValueError(
            f"--tokenizer: {tokenizer}: counting with a tokenizer file needs the `tokenizers` package (pip install tokenizers)"
        ) from None
    try:
        loaded = Tokenizer.from_file(tokenizer)
    except Exception as exc:  # noqa: BLE001 - the library's own errors, as one line
        raise ValueError(f"--tokenizer: {tokenizer}: {str(exc).splitlines()[0]}") from None
    return lambda text: len(loaded.encode(text, add_special_tokens=False).ids)
