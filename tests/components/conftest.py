"""Fixtures for the Pulumi program tests: offline syntheses of both stacks, cached per session."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from automation import synth


@functools.cache
def _synth(stack: str, overrides_json: str, latch: str | None) -> synth.Synthesis:
    overrides: dict[str, Any] = json.loads(overrides_json)
    shared = {k: v for k, v in overrides.items() if not k.startswith("dr:")}
    return synth.synthesize(stack, overrides, latch=latch, primary_overrides=shared)


def synthesize(
    stack: str, overrides: dict[str, Any] | None = None, latch: str | None = None
) -> synth.Synthesis:
    """Synthesize (cached: syntheses are pure functions of stack, overrides and latch).

    Without ``latch``: the one the documented procedure leaves for the flags (synth.procedure_latch).
    """
    if latch is None:
        latch = synth.procedure_latch(overrides or {})
    return _synth(stack, json.dumps(overrides or {}, sort_keys=True), latch)


@pytest.fixture(scope="session")
def primary() -> synth.Synthesis:
    return synthesize("primary")


@pytest.fixture(scope="session")
def dr() -> synth.Synthesis:
    return synthesize("dr")
