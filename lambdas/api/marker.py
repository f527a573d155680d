"""The ledger marker function: one committed row on this region's database, when the runbook asks.

RDS for PostgreSQL publishes ``ReplicaLag`` as ``now() - pg_last_xact_replay_timestamp()``
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PostgreSQL.Replication.ReadReplicas.Monitor.html),
so after a planned change's drain a caught-up replica never reads 0. The runbook proves the replica
holds every write of the drain by its replaying a commit made after the drain ended
(``lambdas/failover/lossless.py``, ``replay_evidence``); this function makes that commit. It serves no
client request (no API route, no queue), so the drain's promise holds, and it is never fenced. It
reaches the database as the payments function does (the same VPC attachment, secret and variables),
and answers ``{"committed": true, ...}`` or ``{"committed": false, "reason": ..., "error": ...}``: a
replica refuses the write (NotWriter, ``not_writer``), which is an answer, not an error; a database that
does not answer is ``database_unreachable``, which the runbook reads as its data plane's word that the
source database is dark (``lambdas/failover/darkness.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from lambdas.api.clients import ClientCache
from lambdas.api.config import ConfigError, DriverLedger, ledger_from_env
from lambdas.api.ledger import LedgerUnavailable, open_ledger
from lambdas.api.responses import log_json

MARKER_MAX = 200
"""Characters of the caller's marker label kept (it names the drain; nothing reads it back)."""

# Kept across invocations of a warm container; made on the first request, never at import.
_CLIENTS: ClientCache | None = None


def commit_marker(event: Mapping[str, Any], env: Mapping[str, str], clients: ClientCache) -> dict[str, Any]:
    """Commit one marker row on the database ``env`` names; what the runbook reads back."""
    region = env.get("AWS_REGION", "")
    try:
        target = ledger_from_env(env, region)
    except ConfigError as exc:
        return {"committed": False, "reason": f"configuration: {exc}"}
    if target is None:
        return {"committed": False, "reason": "no database configured (DB_SECRET_ARN unset)"}
    name = f"{target.host}:{target.port}" if isinstance(target, DriverLedger) else target.cluster_arn
    ledger = open_ledger(target, lambda service: clients.client(service, region), clients.memo)
    marker = str(event.get("marker") or "marker")[:MARKER_MAX]
    try:
        committed_at = ledger.mark(marker)
    except LedgerUnavailable as exc:
        log_json(logging.WARNING, "marker not committed", database=name, reason=str(exc), marker=marker)
        # ``error`` is the failure's stable word (``LedgerUnavailable.reason``): the runbook tells a database
        # that does not answer (``database_unreachable``, a dark source) from one that refuses the write
        # (``not_writer``: a replica answers) (lambdas/failover/darkness.py).
        return {"committed": False, "reason": str(exc), "error": exc.reason, "database": name}
    log_json(logging.INFO, "marker committed", database=name, marker=marker, committedAt=committed_at)
    return {"committed": True, "database": name, "committedAt": committed_at}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: ``{"marker": label}`` from the runbook's Invoke."""
    global _CLIENTS
    if _CLIENTS is None:
        _CLIENTS = ClientCache()
    return commit_marker(event, os.environ, _CLIENTS)
