"""Execution traces: the in-container tracer (`tracer/`), its host side (`host`), trace corpora."""
