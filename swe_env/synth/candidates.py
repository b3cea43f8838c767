"""The candidates of a run: `Candidate` (one bug to try), `plan` (every candidate of the chosen methods, interleaved
by method and kind in a seeded order) and `pair` (a combined candidate of two validated bugs)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

from . import combine, history, procedural
from . import model as model_method
from .learning import Suite
from .options import SynthConfig, chosen_methods
from .writer import WriterError, git


@dataclass
class Candidate:
    id: str
    method: str
    kind: str
    path: str
    function: str
    description: str
    patch: str
    tests: list[str] | None
    """The tests that reach the change (None: the whole suite)."""
    reverted_commit: str | None = None
    clean_text: str | None = None
    """The file's clean text (single-file candidates: procedural, model), for `combine`."""
    new_text: str | None = None
    """The file's text with the bug (known once the patch is)."""
    request: model_method.Request | None = None
    """A model candidate's question: its patch is asked for when its turn comes."""
    parts: tuple[Candidate, ...] = ()
    """A combined candidate's bugs."""
    parts_fail: tuple[tuple[str, ...], ...] = ()
    """The FAIL_TO_PASS of each part, as validated alone."""

    @property
    def methods_used(self) -> list[str]:
        return [self.method] if not self.parts else sorted({part.method for part in self.parts})


def _kinds_of(config: SynthConfig, known: Iterable[str]) -> list[str] | None:
    """The chosen kinds among `known` (None: all of them; [] none)."""
    return None if config.kinds is None else [k for k in config.kinds if k in known]


def _wanted(config: SynthConfig, file: str, function: str) -> bool:
    return not config.functions or function in config.functions or f"{file}::{function}" in config.functions


def plan(config: SynthConfig, git_dir: str, sha: str, suite: Suite, model_name: str = "") -> list[Candidate]:
    """Every candidate of the chosen methods, interleaved by method and kind, in a seeded order."""
    rng = random.Random(config.seed)
    methods = chosen_methods(config)
    streams: list[list[Candidate]] = []
    by_file: dict[str, set[str]] = {}
    for file, function in suite.reaching:
        if _wanted(config, file, function):
            by_file.setdefault(file, set()).add(function)
    sources: dict[str, str] = {}
    for file in sorted(by_file):
        try:
            sources[file] = git(git_dir, "show", f"{sha}:{file}")
        except WriterError:
            continue
    procedural_kinds = _kinds_of(config, procedural.KINDS)
    if procedural.METHOD in methods and procedural_kinds != []:
        by_kind: dict[str, list[Candidate]] = {}
        for file, source in sources.items():
            for mutation in procedural.mutations(file, source, by_file[file], procedural_kinds):
                tests = sorted(suite.reaching[(file, mutation.function)])
                by_kind.setdefault(mutation.kind, []).append(
                    Candidate(
                        candidate_id(procedural.METHOD, mutation.patch),
                        procedural.METHOD,
                        mutation.kind,
                        file,
                        mutation.function,
                        mutation.description,
                        mutation.patch,
                        tests,
                        clean_text=source,
                        new_text=mutation.source,
                    )
                )
        for kind in sorted(by_kind):
            rng.shuffle(by_kind[kind])
        streams.append(_interleave([by_kind[k] for k in sorted(by_kind)]))
    if history.METHOD in methods:
        found = [
            Candidate(
                candidate_id(history.METHOD, r.patch),
                history.METHOD,
                "revert_commit",
                ",".join(r.paths),
                "",
                f"undoes {r.commit[:12]}: {r.subject}",
                r.patch,
                None,
                reverted_commit=r.commit,
            )
            for r in history.reversals(git_dir, sha)
        ]
        streams.append(found)
    model_kinds = _kinds_of(config, model_method.KINDS)
    if model_method.METHOD in methods and model_kinds != []:
        asked: dict[str, list[Candidate]] = {}
        for file, source in sources.items():
            for function in sorted(by_file[file]):
                for kind in model_kinds or model_method.KINDS:
                    key = f"{kind}\0{file}\0{function}\0{config.model}\0{model_name}\0{config.seed}"
                    asked.setdefault(kind, []).append(
                        Candidate(
                            candidate_id(model_method.METHOD, key),
                            model_method.METHOD,
                            kind,
                            file,
                            function,
                            f"{model_name or 'the model'}: {kind.replace('_', ' ')} of {function}",
                            "",
                            sorted(suite.reaching[(file, function)]),
                            clean_text=source,
                            request=model_method.Request(kind, file, function, source),
                        )
                    )
        for kind in sorted(asked):
            rng.shuffle(asked[kind])
        streams.append(_interleave([asked[k] for k in sorted(asked)]))
    return _interleave(streams)


def _interleave(streams: list[list[Candidate]]) -> list[Candidate]:
    merged: list[Candidate] = []
    for index in range(max((len(s) for s in streams), default=0)):
        merged += [stream[index] for stream in streams if index < len(stream)]
    return merged


def candidate_id(method: str, patch: str) -> str:
    return hashlib.sha256(f"{method}\0{patch}".encode()).hexdigest()[:16]


def pair(pairing: combine.Pairing[tuple[Candidate, list[str]]] | None, candidate: Candidate, fail_to_pass: list[str]) -> Candidate | None:
    """A combined candidate of `candidate` (just validated, breaking `fail_to_pass`) and a waiting bug of its file or
    folder in `pairing`, or None."""
    if pairing is None or candidate.parts or candidate.clean_text is None or candidate.new_text is None:
        return None
    other = pairing.offer(candidate.path, (candidate, fail_to_pass))
    if other is None:
        return None
    first, first_fail = other
    if first.path == candidate.path:
        text = combine.merged_text(candidate.clean_text, first.new_text or "", candidate.new_text)
        if text is None:
            return None
        patch = procedural.file_diff(candidate.path, candidate.clean_text, text)
        path = candidate.path
    else:
        patch, path, text = first.patch + candidate.patch, f"{first.path},{candidate.path}", None
    tests = None if first.tests is None or candidate.tests is None else sorted({*first.tests, *candidate.tests})
    return Candidate(
        candidate_id(combine.METHOD, first.id + candidate.id),
        combine.METHOD,
        f"{first.kind}+{candidate.kind}",
        path,
        f"{first.function},{candidate.function}",
        f"{first.description}; {candidate.description}",
        patch,
        tests,
        parts=(first, candidate),
        parts_fail=(tuple(first_fail), tuple(fail_to_pass)),
        clean_text=None,
        new_text=text,
    )
