"""What ``pulumi up`` shows when the program refuses: one message, no traceback.

The Python language host (pulumi-language-python-exec, pulumi/pulumi sdk/python/cmd/pulumi-language-python)
runs ``__main__.py`` and catches ``pulumi.RunError`` to log its message alone; any other exception is
logged as "Program failed with an unhandled exception" with its traceback (pulumi.RunError: "Can be used
for terminating a program abruptly, but resulting in a clean exit rather than the usual verbose unhandled
error logic which emits the source program text and complete stack trace"). So every refusal the program
makes (a configuration error, a refused failover or failback phase, primary outputs the dr stack cannot
use) must reach the host as a RunError naming the key, before any resource is registered.
"""

from __future__ import annotations

import pulumi
import pytest

from automation import synth

NO_RECORD = {"failbackPhase": None}
"""The dr stack's failback record not written: no phase applied under this failover."""

REFUSALS = [
    # (stack, overrides, live world, what the message must name)
    ("primary", {"pilotlight:environment": "BAD!"}, None, "pilotlight:environment"),
    ("dr", {"dr:failback": "drain"}, None, "dr:failback"),  # a phase needs dr:active true (ConfigError)
    # route-back with no phase applied before it (components/failover.py refuse_phase_skip: FailoverRefused)
    ("dr", {"dr:active": True, "dr:failback": "route-back"}, NO_RECORD, "dr:failback"),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "live", "key"), REFUSALS, ids=["config", "phase-needs-active", "phase-skip"]
)
def test_a_refusal_reaches_pulumi_as_one_message_without_a_traceback(
    stack: str, overrides: dict[str, object], live: dict[str, object] | None, key: str
) -> None:
    with pytest.raises(pulumi.RunError) as raised:
        synth.synthesize(stack, overrides, live=live, main=True)
    assert key in str(raised.value), str(raised.value)
    assert raised.value.__suppress_context__, "the host prints the message only: no chained traceback either"


def test_primary_outputs_the_dr_stack_cannot_use_are_one_message() -> None:
    with pytest.raises(pulumi.RunError) as raised:
        synth.synthesize("dr", primary_outputs={"appName": "other"}, main=True)
    assert "primary" in str(raised.value), str(raised.value)


def test_a_valid_configuration_runs_main_to_the_end() -> None:
    """The control: ``__main__.py`` registers the program's resources when nothing is refused."""
    result = synth.synthesize("primary", main=True)
    assert any(
        r.type == "aws:rds/instance:Instance" or r.type.startswith("aws:rds/") for r in result.resources
    )
