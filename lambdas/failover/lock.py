"""The runbook lock: single flight for both executors (docs/safety.md, "Single flight").

One item in a DynamoDB table in region B (``lockTableName`` in the runbook context) says which run
may change the deployment: its run id, who started it (owner), which runbook, when it was taken and
when it expires. Every run takes it before its first change and gives it back at the end (done or
stopped); the Step Functions execution through its first and last states, the in-process executor
(break-glass CLI, drill) around its layers. An EventBridge target cannot name an execution, so two
alarm-started executions, or an execution and an operator's CLI run, are kept apart by this lock
alone.

Why DynamoDB and not the SSM latch's neighbour: taking the lock must be one compare-and-set
("free, or expired, or already mine -> mine"). DynamoDB's conditional ``PutItem`` is atomic
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html);
SSM ``PutParameter`` can only create-if-absent (``Overwrite=False``), so taking over an expired
lock would be a delete then a create, and two runs doing that at once could both win.

Expiry: ``expiresAt`` (epoch seconds) is ``LOCK_TTL_SECONDS`` after the last refresh
(``lambdas.failover.budget`` derives it); runs refresh it (heartbeat): every Step Functions
invocation first, the in-process executor every ``HEARTBEAT_SECONDS`` and at every step. Expiry is
judged on the caller's clock: clock skew between an operator's laptop and AWS is small beside a
23-minute lease. A lock past its expiry may be taken over, and the run says so. The same run id
re-enters (a resumed CLI run given ``--run-id``); release and refresh are conditional on the run
id, so a run whose lock was taken over can neither extend nor free the new holder's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.failover import regressions
from lambdas.failover.budget import LOCK_TTL_SECONDS
from lambdas.failover.clients import Clients
from lambdas.failover.context import RunbookContext
from lambdas.failover.exceptions import LockHeld, LockLost
from lambdas.failover.regressions import Regression

LOGGER = logging.getLogger("pilotlight.failover")

KEY_ATTRIBUTE = "pk"
"""The lock table's partition key, a string (``S``): the one schema the program declares
(``components/pilot_light_region.py``), the preflight checks and the test worlds create."""
LOCK_KEY = "runbook"
"""The partition key of the one lock item (``pk``): one lock per deployment, whichever runbook."""


def table_schema() -> dict[str, Any]:
    """``CreateTable``'s key arguments for the lock table (the test worlds and the drill use it)."""
    return {
        "KeySchema": [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
    }


def schema_problem(table: dict[str, Any]) -> str | None:
    """What is wrong with a ``DescribeTable`` answer's ``Table`` for the lock, or None.

    The lock's conditional writes need the key schema exactly: a table keyed otherwise refuses
    every ``PutItem`` with a ValidationException, which would stop every run at ``take_lock``.
    """
    keys = [(k.get("AttributeName"), k.get("KeyType")) for k in table.get("KeySchema", [])]
    types = {a.get("AttributeName"): a.get("AttributeType") for a in table.get("AttributeDefinitions", [])}
    if keys != [(KEY_ATTRIBUTE, "HASH")] or types.get(KEY_ATTRIBUTE) != "S":
        return (
            f"table {table.get('TableName')!r} is keyed {keys} ({types}); the runbook lock needs a string "
            f"partition key {KEY_ATTRIBUTE!r} and no sort key"
        )
    status = table.get("TableStatus")
    if status not in (None, "ACTIVE", "UPDATING"):
        return f"table {table.get('TableName')!r} is {status}: the runbook lock cannot be taken"
    return None


TAKE = "take_lock"
"""The name a lock failure is reported under (a step name for the run's report and Step Functions)."""


@dataclass(frozen=True)
class Lease:
    """The lock item: who holds the lock, for which run, until when."""

    run_id: str
    owner: str
    runbook: str
    acquired_at: datetime
    expires_at: datetime
    refreshed_at: datetime

    def describe(self, now: datetime | None = None) -> str:
        """One line for people: who, which runbook, since and until when."""
        left = ""
        if now is not None:
            seconds = int((self.expires_at - now).total_seconds())
            left = f" (in {seconds} s)" if seconds >= 0 else f" ({-seconds} s ago)"
        return (
            f"{self.runbook} run {self.run_id} by {self.owner}, taken {self.acquired_at:%Y-%m-%d %H:%M:%S}Z, "
            f"expires {self.expires_at:%Y-%m-%d %H:%M:%S}Z{left}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a step's ``data``, an exception's ``holder``)."""
        return {
            "runId": self.run_id,
            "owner": self.owner,
            "runbook": self.runbook,
            "acquiredAt": self.acquired_at.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "refreshedAt": self.refreshed_at.isoformat(),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Lease:
        """From a DynamoDB item (low-level attribute values)."""

        def s(key: str) -> str:
            return str(item.get(key, {}).get("S", ""))

        def t(key: str) -> datetime:
            return datetime.fromtimestamp(int(item.get(key, {}).get("N", "0")), UTC)

        return cls(
            run_id=s("runId"),
            owner=s("owner"),
            runbook=s("runbook"),
            acquired_at=t("acquiredAt"),
            expires_at=t("expiresAt"),
            refreshed_at=t("refreshedAt"),
        )


@dataclass(frozen=True)
class Acquired:
    """What taking the lock found: the lease now held, and any lease it replaced."""

    lease: Lease
    reentered: bool = False
    """The same run id held it already (a resumed run)."""
    taken_over: Lease | None = None
    """Another run's lease, past its expiry, that this run took over."""
    broken: Lease | None = None
    """Another run's live lease that the operator broke (``break_lock``)."""

    def describe(self) -> str:
        """One line for the run's output."""
        if self.broken is not None:
            return f"lock BROKEN by the operator: it was held by {self.broken.describe()}"
        if self.taken_over is not None:
            return f"lock taken over from an expired holder: {self.taken_over.describe()}"
        if self.reentered:
            return f"lock re-entered by the same run {self.lease.run_id}"
        return (
            f"lock taken by {self.lease.run_id} ({self.lease.owner}) until {self.lease.expires_at:%H:%M:%S}Z"
        )


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _key() -> dict[str, Any]:
    return {KEY_ATTRIBUTE: {"S": LOCK_KEY}}


def read(clients: Clients, ctx: RunbookContext) -> Lease | None:
    """The lease as stored (strongly consistent), or None when the lock is free."""
    item = clients.dynamodb("dr").get_item(TableName=ctx.lock_table_name, Key=_key(), ConsistentRead=True)
    found = item.get("Item")
    return Lease.from_item(found) if found else None


def acquire(
    clients: Clients,
    ctx: RunbookContext,
    *,
    run_id: str,
    owner: str,
    runbook: str,
    ttl_seconds: int = LOCK_TTL_SECONDS,
    break_lock: bool = False,
) -> Acquired:
    """Take the lock for ``run_id``: atomically, when it is free, expired, or already this run's.

    Raises ``LockHeld`` (nothing changed) naming the holder, its runbook and its expiry when another
    live run holds it, unless ``break_lock``: then the operator's explicit choice replaces it.
    """
    now = clients.clock.now()
    expires = _epoch(now) + int(ttl_seconds)
    if regressions.on(Regression.NO_LOCK):  # test only: the run goes on as if it held the lock
        stamp = datetime.fromtimestamp(_epoch(now), UTC)
        return Acquired(Lease(run_id, owner, runbook, stamp, datetime.fromtimestamp(expires, UTC), stamp))
    item = {
        KEY_ATTRIBUTE: {"S": LOCK_KEY},
        "runId": {"S": run_id},
        "owner": {"S": owner},
        "runbook": {"S": runbook},
        "acquiredAt": {"N": str(_epoch(now))},
        "refreshedAt": {"N": str(_epoch(now))},
        "expiresAt": {"N": str(expires)},
    }
    kwargs: dict[str, Any] = {"TableName": ctx.lock_table_name, "Item": item, "ReturnValues": "ALL_OLD"}
    if not break_lock:
        kwargs["ConditionExpression"] = (
            f"attribute_not_exists({KEY_ATTRIBUTE}) OR expiresAt < :now OR runId = :run"
        )
        kwargs["ExpressionAttributeValues"] = {":now": {"N": str(_epoch(now))}, ":run": {"S": run_id}}
    try:
        old_item = clients.dynamodb("dr").put_item(**kwargs).get("Attributes")
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        holder = read(clients, ctx)
        if holder is None:  # released between the put and the read: the caller may try again
            raise LockHeld(TAKE, "the runbook lock was busy and has just been released; run again") from exc
        raise LockHeld(
            TAKE,
            f"another run holds the runbook lock: {holder.describe(now)}. Nothing was changed. Wait for it "
            "to finish (or to expire), or, if you know that run is dead, break the lock explicitly "
            "(CLI: --break-lock)",
            holder.to_dict(),
        ) from exc
    old = Lease.from_item(old_item) if old_item else None
    lease = Lease.from_item(item)
    if old is not None and old.run_id == run_id:
        # Re-entered: keep the original acquisition time for people reading the item.
        lease = Lease(run_id, owner, runbook, old.acquired_at, lease.expires_at, lease.refreshed_at)
        return Acquired(lease, reentered=True)
    if old is not None and old.expires_at.timestamp() >= now.timestamp():
        return Acquired(lease, broken=old)
    return Acquired(lease, taken_over=old)


def refresh(
    clients: Clients, ctx: RunbookContext, *, run_id: str, ttl_seconds: int = LOCK_TTL_SECONDS
) -> Lease:
    """Extend this run's lease (heartbeat). Raises ``LockLost`` when the lock is no longer this run's."""
    now = clients.clock.now()
    if regressions.on(Regression.NO_LOCK):
        stamp = datetime.fromtimestamp(_epoch(now), UTC)
        return Lease(
            run_id, "", "", stamp, datetime.fromtimestamp(_epoch(now) + int(ttl_seconds), UTC), stamp
        )
    try:
        got = clients.dynamodb("dr").update_item(
            TableName=ctx.lock_table_name,
            Key=_key(),
            UpdateExpression="SET expiresAt = :exp, refreshedAt = :now",
            ConditionExpression="runId = :run",
            ExpressionAttributeValues={
                ":exp": {"N": str(_epoch(now) + int(ttl_seconds))},
                ":now": {"N": str(_epoch(now))},
                ":run": {"S": run_id},
            },
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        holder = read(clients, ctx)
        now_held = f"it is now held by {holder.describe(now)}" if holder else "it is free"
        raise LockLost(
            TAKE,
            f"run {run_id} no longer holds the runbook lock ({now_held}): it stops before its next change",
        ) from exc
    return Lease.from_item(got["Attributes"])


def release(clients: Clients, ctx: RunbookContext, *, run_id: str) -> bool:
    """Give the lock back if this run holds it; False when it did not (expired and taken, or broken).

    A pending fence that joined this run (:func:`join_fence`) and may still be acting keeps the
    item: the release then only ends this run's hold (``runId`` becomes ``released:<run>``) and the
    item expires when the fence's window ends (or when the fence leaves), so no next run, a failback
    above all, starts while the fence may still act.
    """
    if regressions.on(Regression.NO_LOCK):
        return True
    now = str(_epoch(clients.clock.now()))
    table = clients.dynamodb("dr")
    try:
        table.delete_item(
            TableName=ctx.lock_table_name,
            Key=_key(),
            ConditionExpression="runId = :run AND (attribute_not_exists(fencerUntil) OR fencerUntil < :now)",
            ExpressionAttributeValues={":run": {"S": run_id}, ":now": {"N": now}},
        )
        return True
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
    try:  # still ours, with a joined fence inside its window: the item lives until the window ends
        table.update_item(
            TableName=ctx.lock_table_name,
            Key=_key(),
            UpdateExpression="SET runId = :gone, expiresAt = fencerUntil",
            ConditionExpression="runId = :run AND fencerUntil >= :now",
            ExpressionAttributeValues={
                ":run": {"S": run_id},
                ":gone": {"S": RELEASED + run_id},
                ":now": {"N": now},
            },
        )
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        return False
    return True


RELEASED = "released:"
"""``runId`` prefix of an item its run released while a joined fence may still act."""
JOINABLE = "failover"
"""The only runbook a pending fence may join: a failover never un-fences region A, so fencing it at
any point of a failover is a step of that run's own plan. A failback gives region A its writes back:
a fence never joins it (and a failback clears the pending mark first)."""


def join_fence(clients: Clients, ctx: RunbookContext, *, fencer_id: str, window_seconds: int) -> Lease:
    """Join the live failover run holding the lock, to finish a pending fence of region A inside it.

    One conditional write records ``fencer`` and ``fencerUntil`` (now + ``window_seconds``) in the
    holder's item, only when the holder is a live failover run that has not released it; a lease that
    would end inside the window (a dead run's, near its expiry) is extended to the window's end
    (``expiresAt >= fencerUntil`` always; refreshes only extend it). So the item cannot expire, nor
    be released for another run, while the fence may act. Raises ``LockHeld`` otherwise (free, a
    failback, released, expired): the caller takes the lock itself, or defers.
    """
    now = _epoch(clients.clock.now())
    until = now + int(window_seconds)
    base = f"attribute_exists({KEY_ATTRIBUTE}) AND runbook = :joinable AND NOT begins_with(runId, :released)"
    values = {
        ":f": {"S": fencer_id},
        ":u": {"N": str(until)},
        ":joinable": {"S": JOINABLE},
        ":released": {"S": RELEASED},
    }
    attempts = (
        # the holder's lease already outlasts the window
        ("SET fencer = :f, fencerUntil = :u", f"{base} AND expiresAt >= :u", values),
        # a live lease that would end inside it (a dead run's, near its expiry) is extended to its end
        (
            "SET fencer = :f, fencerUntil = :u, expiresAt = :u",
            f"{base} AND expiresAt >= :now AND expiresAt < :u",
            {**values, ":now": {"N": str(now)}},
        ),
    )
    got: dict[str, Any] | None = None
    for update, condition, attrs in attempts:
        try:
            got = clients.dynamodb("dr").update_item(
                TableName=ctx.lock_table_name,
                Key=_key(),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=attrs,
                ReturnValues="ALL_NEW",
            )
            break
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
    if got is None:
        holder = read(clients, ctx)
        raise LockHeld(
            TAKE,
            "a pending fence joins only a live failover run; "
            + (
                f"the lock is held by {holder.describe(clients.clock.now())}"
                if holder
                else "the lock is free"
            ),
            holder.to_dict() if holder else None,
        )
    return Lease.from_item(got["Attributes"])


def fencer_of(item: dict[str, Any]) -> tuple[str, str] | None:
    """(fencer id, the run it joined) from a raw lock item, or None (the checker reads it)."""
    fencer = item.get("fencer", {}).get("S")
    run = str(item.get("runId", {}).get("S", ""))
    return (str(fencer), run.removeprefix(RELEASED)) if fencer else None


def leave_fence(clients: Clients, ctx: RunbookContext, *, fencer_id: str) -> None:
    """The joined fence is over: free the item its holder already released, or clear the mark."""
    table = clients.dynamodb("dr")
    try:
        table.delete_item(
            TableName=ctx.lock_table_name,
            Key=_key(),
            ConditionExpression="fencer = :f AND begins_with(runId, :released)",
            ExpressionAttributeValues={":f": {"S": fencer_id}, ":released": {"S": RELEASED}},
        )
        return
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
    try:
        table.update_item(
            TableName=ctx.lock_table_name,
            Key=_key(),
            UpdateExpression="REMOVE fencer, fencerUntil",
            ConditionExpression="fencer = :f",
            ExpressionAttributeValues={":f": {"S": fencer_id}},
        )
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
