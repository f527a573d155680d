"""The emulator's errors: one class per failure meaning, so callers catch by meaning.

Both are ``ValueError``s: each is a bad value given to the emulator's models.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A spec value AWS would refuse (or the model does not cover); the message names the field."""


class TimeWentBackwards(ValueError):
    """A model was asked about an instant before one it has already moved past."""
