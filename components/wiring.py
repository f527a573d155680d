"""Stack wiring: the dr stack reads region A's outputs through a StackReference, validated up front.

Outputs are read once, as plain values, before any DR resource is registered: a missing output stops
the update with one message naming every missing output and the stack, instead of failing half way
through. Nothing here reads from region A itself: the outputs come from the state backend, which is
why that backend must survive region A (Pulumi Cloud, or an S3 backend in region B).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.failover import Capacity

# Every output of the primary stack that the dr stack reads. The primary stack exports all of them.
REQUIRED_PRIMARY_OUTPUTS: tuple[str, ...] = (
    "primaryRegion",
    "vpcId",
    "vpcCidr",
    "webCapacity",
    "webAlbDns",
    "webHealthUrl",
    "asgName",
    "apiHost",
    "apiStage",
    "apiHealthUrl",
    "functionNames",
)


class StackWiringError(ValueError):
    """The primary stack's outputs cannot be used by the dr stack."""


@dataclass(frozen=True)
class PrimaryOutputs:
    """Region A's outputs as the dr stack sees them."""

    stack: str
    values: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def web_capacity(self) -> Capacity:
        raw = self.values["webCapacity"]
        return Capacity(int(raw["min"]), int(raw["desired"]), int(raw["max"]))

    @classmethod
    def validate(cls, stack: str, values: Mapping[str, Any], expected_region: str) -> PrimaryOutputs:
        """Check every required output is present and usable; one error lists all problems."""
        missing = [k for k in REQUIRED_PRIMARY_OUTPUTS if values.get(k) in (None, "")]
        if missing:
            raise StackWiringError(
                f"primary stack {stack!r} (pilotlight:primaryStack) is missing output(s) {', '.join(missing)}. "
                f"Deploy it first (`pulumi up -s {stack.rsplit('/', 1)[-1]}`) with this version of pilotlight."
            )
        out = cls(stack, dict(values))
        if values["primaryRegion"] != expected_region:
            raise StackWiringError(
                f"primary stack {stack!r} runs in {values['primaryRegion']!r} but pilotlight:primaryRegion is "
                f"{expected_region!r}; point pilotlight:primaryStack at the right stack"
            )
        try:
            out.web_capacity  # noqa: B018 - parse now, fail with a clear message
        except (KeyError, TypeError, ValueError) as exc:
            raise StackWiringError(
                f"primary stack {stack!r}: output 'webCapacity' is {values['webCapacity']!r}; expected "
                f"{{min, desired, max}} ({exc})"
            ) from exc
        return out


def read_primary_outputs(stack: str, expected_region: str) -> PrimaryOutputs:
    """Read and validate the primary stack's outputs (plain values) through a StackReference."""
    ref = pulumi.StackReference(f"{stack}-ref", stack_name=stack)
    values: dict[str, Any] = {}
    for key in REQUIRED_PRIMARY_OUTPUTS + OPTIONAL_PRIMARY_OUTPUTS:
        details = _sync_await(ref.get_output_details(key))
        values[key] = details.value if details.value is not None else details.secret_value
    return PrimaryOutputs.validate(stack, values, expected_region)


# Outputs added by later tiers are read when present; the tiers that need them require them.
OPTIONAL_PRIMARY_OUTPUTS: tuple[str, ...] = ()
