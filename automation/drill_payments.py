"""The local drill's payments: one function with the API handler's shape, writing the ledger for real.

``post_payment`` takes what ``POST /payments`` takes and answers what API Gateway returns
(``statusCode`` 201 with the payment, or 503 when the region's database does not take writes),
and writes the ledger row the way the API writes it (the ``ledger`` branch's environment contract):

* **aurora-global**: the RDS Data API, ``rds-data`` ExecuteStatement on ``DB_CLUSTER_ARN`` with
  ``DB_SECRET_ARN`` and ``DB_NAME``; in the emulator the statement runs on the cluster's real
  server, and a secondary answers ``DatabaseUnavailableException`` (:mod:`automation.emulator.data_api`);
* **rds-replica**: ``pg8000`` to ``DB_HOST``:``DB_PORT`` as the user and password of the secret
  ``DB_SECRET_ARN`` names. The host is the instance's DNS name, which belongs to the name: it is
  resolved on each request (``Emulator.resolve_instance``, the emulator's DNS) to the real server's
  address and port, which DescribeDBInstances also gives as ``Endpoint``; a rename moves it as DNS
  would.

The secret is read once per region and kept, as a function keeps it across the invocations of one
execution environment.

This is the one seam between the drill and the application: until ``lambdas/api`` writes the
ledger, the drill posts through this function; the handler replaces its body, not its callers.
Nothing here decides whether a write is allowed: the real server refuses it (a standby, a fenced
or renamed writer, a dark region), exactly as it would refuse the application.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pg8000.exceptions
import pg8000.native
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.api.ledger import INSERT_SQL

if TYPE_CHECKING:
    from automation.drill_world import Deployment

INSERT = INSERT_SQL
"""The API handler's own statement (lambdas/api/ledger.py): idempotent on the payment id
(https://www.postgresql.org/docs/18/sql-insert.html#SQL-ON-CONFLICT)."""


@dataclass(frozen=True)
class Posted:
    """What ``POST /payments`` answered, and which database copy committed the row (if one did)."""

    status: int
    body: dict[str, Any]
    key: str | None = None
    """The ARN of the database copy that committed the payment (201 only)."""

    def response(self) -> dict[str, Any]:
        """The API Gateway proxy response."""
        return {"statusCode": self.status, "body": json.dumps(self.body)}


def env_for(dep: Deployment, region: str) -> dict[str, str]:
    """The API function's database environment in ``region``, as the program configures it."""
    ctx = dep.context
    env = {"AWS_REGION": region, "DB_NAME": "pilotlight", "DB_SECRET_ARN": dep.secrets[region]}
    if dep.mode == "aurora-global":
        env["DB_CLUSTER_ARN"] = dep.databases[region]
    else:
        env["DB_INSTANCE_ID"] = ctx["primaryDbInstanceId" if region == dep.region_a else "drDbInstanceId"]
    return env


def _insert(
    dep: Deployment,
    region: str,
    endpoint: tuple[str, int],
    secret: dict[str, Any],
    database: str,
    params: dict[str, Any],
) -> None:
    """The INSERT over the region's kept connection to ``endpoint`` (opened on first use).

    A function keeps its connection across invocations; one to another endpoint (the name now
    resolves elsewhere) is closed and a new one opened. A kept connection that broke (the server
    restarted, a fence terminated it) is replaced once and the INSERT sent again: it is idempotent
    on the payment id, so a first attempt whose outcome is unknown cannot be written twice.
    """
    for attempt in range(2):
        kept = dep.connections.get(region)
        if kept is not None and kept[0] != endpoint:
            _drop(dep, region)
            kept = None
        fresh = kept is None
        if kept is None:
            con = pg8000.native.Connection(
                secret["username"],
                password=secret.get("password"),
                host=endpoint[0],
                port=endpoint[1],
                database=database,
                timeout=10,
                ssl_context=False,
            )
            kept = dep.connections[region] = (endpoint, con)
        try:
            kept[1].run(INSERT, **params)
            return
        except (pg8000.exceptions.InterfaceError, OSError):
            _drop(dep, region)
            if fresh or attempt:
                raise
        except pg8000.exceptions.DatabaseError as exc:
            _drop(dep, region)
            # 57P01 admin shutdown / 08xxx: the session was terminated; anything else is an answer.
            if fresh or attempt or not str(_sqlstate(exc)).startswith(("57", "08")):
                raise


def _sqlstate(exc: pg8000.exceptions.DatabaseError) -> str | None:
    fields = exc.args[0] if exc.args else None
    return fields.get("C") if isinstance(fields, dict) else None


def _drop(dep: Deployment, region: str) -> None:
    kept = dep.connections.pop(region, None)
    if kept is not None:
        with contextlib.suppress(pg8000.exceptions.InterfaceError, OSError):
            kept[1].close()


def close_connections(dep: Deployment) -> None:
    """Close every kept connection (the end of a drill)."""
    for region in list(dep.connections):
        _drop(dep, region)


def post_payment(dep: Deployment, region: str, payment_id: str, amount_cents: int = 1250) -> Posted:
    """``POST /payments`` in ``region``: the ledger row written on the region's database, or a 503."""
    env = env_for(dep, region)
    params = {
        "payment_id": payment_id,
        "amount": f"{amount_cents / 100:.2f}",
        "currency": "EUR",
        "customer_id": "drill",
        "region": region,
        "created_at": dep.emulator.clock.now().isoformat(),
    }
    try:
        secret = dep.secret_values.get(region)
        if secret is None:
            value = dep.client("secretsmanager", region).get_secret_value(SecretId=env["DB_SECRET_ARN"])
            secret = dep.secret_values[region] = json.loads(value["SecretString"])
        if "DB_CLUSTER_ARN" in env:
            dep.client("rds-data", region).execute_statement(
                resourceArn=env["DB_CLUSTER_ARN"],
                secretArn=env["DB_SECRET_ARN"],
                database=env["DB_NAME"],
                sql=INSERT,
                parameters=[{"name": k, "value": {"stringValue": v}} for k, v in params.items()],
            )
            key = env["DB_CLUSTER_ARN"]
        else:
            resolved = dep.emulator.resolve_instance(region, env["DB_INSTANCE_ID"])
            if resolved is None:
                raise OSError(f"{env['DB_INSTANCE_ID']}: the instance's DNS name does not resolve")
            host, port, key = resolved
            _insert(dep, region, (host, port), secret, env["DB_NAME"], params)
    except (ClientError, BotoCoreError, pg8000.exceptions.Error, OSError) as exc:
        # Not written, or not known to be written: never acknowledged (a retry with the same id is safe).
        return Posted(
            503,
            {"error": "the database does not take writes here", "region": region, "reason": str(exc)[:200]},
        )
    return Posted(
        201, {"paymentId": payment_id, "amountCents": amount_cents, "currency": "EUR", "region": region}, key
    )
