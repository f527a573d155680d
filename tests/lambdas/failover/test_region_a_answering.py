"""Region A is dark only when none of its endpoints answers (break32 B32-1, B32-7).

``stepkit.region_a_answering`` decides whether a fence that failed to connect is best effort (region A
dark at every look for ``darkness.DARK_CONFIRM_SECONDS``: fence pending) or a fence that failed against a
live region A (the run stops before promotion). One service's endpoint failing to connect (a blip, a
control-plane incident) is not a dark region: the others answer. (The lossless wait asks about the source
database instead: ``darkness.source_database_dark``, break33 B33-2.)
"""

from __future__ import annotations

import pytest

from lambdas.failover.context import RunbookContext
from lambdas.failover.stepkit import region_a_answering
from tests.lambdas.failover.faults import Fault, unreachable
from tests.lambdas.failover.harness import clients_for
from tests.lambdas.failover.world import REGION_A, World

SERVICES = {"rds": "rds", "autoscaling": "auto-scaling", "lambda": "lambda"}
"""What ``region_a_answering`` names an endpoint -> the service id a Fault matches."""


def test_a_dark_region_a_answers_on_no_endpoint(world: World) -> None:
    outage = unreachable(REGION_A)
    clients = clients_for(world, outage)
    assert region_a_answering(RunbookContext.from_dict(world.context), clients) is None
    looked = {call.split(":", 1)[1].split(".")[0] for call in outage.seen}
    assert looked == set(SERVICES.values()), "each endpoint the runbook acts through was looked at"


@pytest.mark.parametrize("down", [("rds",), ("autoscaling",), ("lambda",), ("rds", "autoscaling")])
def test_one_service_down_is_not_a_dark_region_a(world: World, down: tuple[str, ...]) -> None:
    faults = [Fault(service=SERVICES[s], region=REGION_A, unreachable=True) for s in down]
    clients = clients_for(world, *faults)
    answering = region_a_answering(RunbookContext.from_dict(world.context), clients)
    assert answering is not None and answering not in down


def test_an_aws_error_is_an_answer(world: World) -> None:
    """AccessDenied (an SCP, a missing permission) comes from a live endpoint: region A answers."""
    denied = Fault(service="rds", region=REGION_A)
    rest = [Fault(service=SERVICES[s], region=REGION_A, unreachable=True) for s in ("autoscaling", "lambda")]
    clients = clients_for(world, denied, *rest)
    assert region_a_answering(RunbookContext.from_dict(world.context), clients) == "rds"


def test_the_first_endpoint_that_answers_ends_the_look(world: World) -> None:
    """One call when region A answers: the fail-fast look costs a dark region A at most one call per
    endpoint, and a live one a single call."""
    watch = Fault(region=REGION_A, times=0)
    clients = clients_for(world, watch)
    assert region_a_answering(RunbookContext.from_dict(world.context), clients) == "rds"
    assert len(watch.seen) == 1
