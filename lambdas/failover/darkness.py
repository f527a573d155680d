"""Whether region A, or its database, is dark: a verdict over time, never one look (B21b-1, B33-3, B33-2).

Two verdicts, each confirmed for ``DARK_CONFIRM_SECONDS`` of looks that all agree, measured on the
runbook's clock (``clients.clock``) and kept in the run journal (region B) so that it spans the polls
of the Step Functions executor and a resumed run, and reset by any look that disagrees:

* ``fence_primary``'s "region A unreachable" (``FENCE_DARK_MARK``): the fence failed to connect and
  none of region A's endpoints answers (``stepkit.region_a_answering``). Only then is the fence left
  pending and the change unplanned; a blip on every endpoint is not an outage (break33 B33-3).
* The lossless wait's "the source database is dark" (``DARK_MARK``, :func:`source_database_dark`):
  its RDS API refuses connections or describes it in a status that takes no connection, and a look
  at the data plane agrees (region A's ledger marker function cannot reach it, or region A's Lambda
  API does not answer either). Only the source database counts: an RDS control-plane incident with
  the database alive is not a dark database (break32 B32-7), and a dead database behind an Auto
  Scaling API that answers is (break33 B33-2).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.db_status import UNAVAILABLE_INSTANCE_STATUSES
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.journal import DARK_MARK, FENCE_DARK_MARK, _journal, read_journal
from lambdas.failover.names import ledger_marker_function_name
from lambdas.failover.stepkit import (
    CONNECTION_ERRORS,
    _http_get,
    _now,
    _parse_time,
    log_event,
    region_a_answering,
)

DARK_CONFIRM_SECONDS = 120.0
"""How long a darkness verdict's looks must all agree before a failover acts on it (the fence left
pending, a forced failover's unplanned promotion). Assumed (two canary periods): a connection error or
two is not an outage (botocore retries connection errors as transient,
https://docs.aws.amazon.com/boto3/latest/guide/retries.html), and taking a blip for darkness would
promote with a replication tail region A still holds (B21b-1, B33-3)."""

DARK_LOOK_GAP_SECONDS = DARK_CONFIRM_SECONDS
"""The longest two looks of one confirmation may be apart: what was not looked at was not seen dark.
A resumed run (or the next poll) within it continues the window the journal holds; one after it
starts a new window (an earlier run's looks say nothing about region A since)."""

UNREACHABLE = "database_unreachable"
"""The marker function's ``error`` when nothing answered for the database (``lambdas/api/ledger.py``
``DatabaseUnreachable.reason``); ``not_writer`` (a replica refused the marker) is an answer."""


def fence_confirm_seconds(params: Mapping[str, Any]) -> float:
    """How long the fence confirms region A unreachable: ``DARK_CONFIRM_SECONDS``, or ``fenceDarkSeconds``
    in params (tests whose region A answers or is dark for a whole run, as ``drainSeconds`` for the drain)."""
    return max(0.0, float(params.get("fenceDarkSeconds", DARK_CONFIRM_SECONDS)))


@dataclass(frozen=True)
class Window:
    """Where a confirmation stands after one look: ``dark`` this look, for ``seconds`` so far, of the
    ``needed`` seconds of looks that confirm it."""

    dark: bool
    seconds: float
    since: datetime | None
    needed: float = DARK_CONFIRM_SECONDS

    @property
    def confirmed(self) -> bool:
        """Dark at every look for ``needed`` seconds."""
        return self.dark and self.seconds >= self.needed

    def remaining(self) -> float:
        """Seconds of looks still needed before :attr:`confirmed`."""
        return max(0.0, self.needed - self.seconds)


def _mark(value: Any) -> tuple[datetime | None, datetime | None]:
    """(first seen dark, last seen dark) of a journal mark; an old plain timestamp is both."""
    if isinstance(value, dict):
        return _parse_time(value.get("since")), _parse_time(value.get("last"))
    since = _parse_time(value) if value else None
    return since, since


def look(
    clients: Clients, ctx: RunbookContext, key: str, dark: bool, needed: float = DARK_CONFIRM_SECONDS
) -> Window:
    """Record one look of verdict ``key`` in the run journal and say where its window stands.

    A look that is not dark clears the mark: the window restarts at the next dark look. A dark look
    continues the journal's window when the previous look was at most ``DARK_LOOK_GAP_SECONDS`` ago,
    else starts one now."""
    since, last = _mark(read_journal(clients, ctx).get(key))
    if not dark:
        if since is not None:
            _journal(clients, ctx, **{key: None})
        return Window(False, 0.0, None, needed)
    now = clients.clock.now()
    if since is None or last is None or (now - last).total_seconds() > DARK_LOOK_GAP_SECONDS:
        since = now
    _journal(clients, ctx, **{key: {"since": since.isoformat(timespec="seconds"), "last": _now(clients)}})
    return Window(True, max(0.0, (now - since).total_seconds()), since, needed)


def forget(clients: Clients, ctx: RunbookContext, key: str) -> None:
    """Clear verdict ``key``'s window (something answered that its looks do not read)."""
    if read_journal(clients, ctx).get(key):
        _journal(clients, ctx, **{key: None})


def _rds_look(ctx: RunbookContext, clients: Clients) -> str | None:
    """What region A's RDS API says of the source database: why it is dark (refused, or a status that
    takes no connection), or None when it answers it is there."""
    rds = clients.rds("primary")
    try:
        if ctx.database_mode == "rds-replica":
            if not ctx.primary_db_instance_id:
                return None
            found = rds.describe_db_instances(DBInstanceIdentifier=ctx.primary_db_instance_id)["DBInstances"]
            status = str((found[0] if found else {}).get("DBInstanceStatus") or "")
        else:
            if not ctx.primary_cluster_id:
                return None
            found = rds.describe_db_clusters(DBClusterIdentifier=ctx.primary_cluster_id)["DBClusters"]
            status = str((found[0] if found else {}).get("Status") or "")
    except CONNECTION_ERRORS as exc:
        return f"RDS API unreachable ({type(exc).__name__})"
    except (ClientError, BotoCoreError):
        return None  # an answer (a refusal, a missing instance): not a dark database
    if status in UNAVAILABLE_INSTANCE_STATUSES:
        return f"RDS describes it {status}"
    return None


def _data_plane_look(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """Whether the data plane agrees that the source database is dark: why, or None.

    rds-replica: region A's ledger marker function (the one ``lossless._commit_marker`` invokes) is
    asked to commit a marker row, which no client is told of; it answers ``committed``, or why not
    (``lambdas/api/marker.py``). Only ``database_unreachable`` agrees; a committed marker or a
    replica's refusal is a database that answers. Region A's Lambda API failing to connect agrees too
    when region A's Auto Scaling API does not answer either (nothing of region A answers the runbook
    there); with it answering, the look says nothing (break37 B37-2). Aurora deploys no marker function (its ledger
    uses the Data API): region A's Lambda API failing to connect is the only agreement."""
    lam = clients.lambda_("primary")
    try:
        if ctx.database_mode == "rds-replica":
            name = ledger_marker_function_name(f"{ctx.app_name}-{ctx.environment}")
            payload = json.dumps({"marker": f"probe-{_now(clients)}", "step": step}).encode()
            answer = lam.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=payload)
            body = json.loads(answer["Payload"].read() or b"{}")
            if not isinstance(body, dict) or answer.get("FunctionError"):
                return None
            if body.get("committed"):
                return None
            if body.get("error") == UNREACHABLE:
                return f"marker function: {body.get('reason') or UNREACHABLE}"
            return None
        if not ctx.primary_function_names:
            return None
        lam.get_function_concurrency(FunctionName=ctx.primary_function_names[0])
        return None
    except CONNECTION_ERRORS as exc:
        if _web_tier_api_answers(ctx, clients):
            # Region A's Lambda API down with its Auto Scaling API up is a service's control plane down,
            # not "nothing of region A answers": the database behind it may be alive and still hold its
            # replication tail (break37 B37-2; break32 B32-7).
            log_event(
                logging.INFO, "source database: Lambda API unreachable, Auto Scaling API answers", step=step
            )
            return None
        return f"region A's Lambda API unreachable ({type(exc).__name__})"
    except (ClientError, BotoCoreError, ValueError):
        return None


def _web_tier_api_answers(ctx: RunbookContext, clients: Clients) -> bool:
    """Whether region A's Auto Scaling API answers (any answer, an AWS error included)."""
    if not ctx.primary_asg_name:
        return False
    try:
        clients.autoscaling("primary").describe_auto_scaling_groups(
            AutoScalingGroupNames=[ctx.primary_asg_name]
        )
    except CONNECTION_ERRORS:
        return False
    except (ClientError, BotoCoreError):
        return True
    return True


def source_database_dark(ctx: RunbookContext, clients: Clients, step: str) -> str | None:
    """One look at the source database: why it is dark (both planes agree), or None."""
    control = _rds_look(ctx, clients)
    if control is None:
        return None
    data = _data_plane_look(ctx, clients, step)
    if data is None:
        log_event(
            logging.INFO, "source database: control plane dark, data plane answers", step=step, rds=control
        )
        return None
    return f"{control}; {data}"


def source_dark_window(
    ctx: RunbookContext,
    clients: Clients,
    step: str,
    needed: float = DARK_CONFIRM_SECONDS,
    *,
    whole_region: bool = False,
) -> Window:
    """One look at the source database, recorded in its ``DARK_MARK`` window: where that window stands.

    ``whole_region``: dark only when, besides the database, none of region A's endpoints answers
    (``stepkit.region_a_answering``). A look taken while region A's fence is pending needs it: its
    data-plane half counts region A's Lambda API failing to connect as agreement, which says nothing of a
    web tier that may still serve region A's writer (break37 B37-2). Nor does it count region A dark while
    its web tier's health endpoint answers 200 (``primaryHealthUrl``, one GET, what ``confirm_primary_down``
    probes): a region A whose API endpoints all fail to connect while its web tier serves its writer
    (break38 B38-1) is serving, and such looks between late fences that miss would otherwise keep region A
    serving unfenced under a switch on region B for minutes."""
    why = source_database_dark(ctx, clients, step)
    if why is not None and whole_region:
        answering = region_a_answering(ctx, clients) or _web_tier_serves(ctx, step)
        if answering is not None:
            log_event(
                logging.INFO,
                "source database dark, region A answers",
                step=step,
                why=why,
                answering=answering,
            )
            why = None
    window = look(clients, ctx, DARK_MARK, why is not None, needed)
    if why is not None:
        log_event(
            logging.WARNING, "source database dark", step=step, why=why, seconds=round(window.seconds),
            confirmed=window.confirmed,
        )  # fmt: skip
    return window


WEB_LOOK_TIMEOUT_SECONDS = 3.0
"""The web tier look's one GET: ``confirm_primary_down``'s default probe timeout."""


def _web_tier_serves(ctx: RunbookContext, step: str) -> str | None:
    """ "web tier" when region A's health endpoint answers 200 to one GET, else None (or no URL)."""
    if not ctx.primary_health_url:
        return None
    answer = _http_get(step, ctx.primary_health_url, WEB_LOOK_TIMEOUT_SECONDS)
    return f"web tier ({ctx.primary_health_url} answers 200)" if answer.status == 200 else None


def source_dark_long_enough(ctx: RunbookContext, clients: Clients, step: str) -> bool:
    """Whether the source database has been dark at every look for ``DARK_CONFIRM_SECONDS`` (``DARK_MARK``)."""
    return source_dark_window(ctx, clients, step).confirmed


__all__ = [
    "DARK_CONFIRM_SECONDS",
    "DARK_LOOK_GAP_SECONDS",
    "DARK_MARK",
    "FENCE_DARK_MARK",
    "UNAVAILABLE_INSTANCE_STATUSES",
    "Window",
    "fence_confirm_seconds",
    "forget",
    "look",
    "source_dark_long_enough",
    "source_dark_window",
    "source_database_dark",
]
