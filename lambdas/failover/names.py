"""Physical names the runbook generates, fitted to AWS's limits (pure: no AWS, no Pulumi).

The runbook creates a few resources of its own: a writer instance for a headless Aurora secondary
at failover, and (rds-replica) a read replica of region B's database back in region A at failback.
Their identifiers derive from identifiers the program generated, which may already be close to the
limit. :func:`fit` keeps a name that fits as it is, and otherwise cuts it and appends a short hash
of the whole name, so two long names that differ only at the end stay different, and a step run
again computes the same name (the runbook's idempotence depends on it).

The program's naming helper (``components/naming.py``) uses the same :func:`fit`.
"""

from __future__ import annotations

import hashlib

HASH_LENGTH = 7
"""Hex characters of the SHA-256 of the full name kept when a name is cut (28 bits)."""

RDS_IDENTIFIER_MAX = 63
"""DB instance identifiers: 1-63 letters, digits or hyphens; first a letter; no trailing hyphen or
``--`` (Amazon RDS API Reference, CreateDBInstance, ``DBInstanceIdentifier``:
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html)."""

FAILOVER_INSTANCE_SUFFIX = "failover-1"
FAILBACK_INSTANCE_SUFFIX = "failback"


def fit(name: str, limit: int) -> str:
    """``name`` when it has at most ``limit`` characters, else a prefix of it and a hash of all of it.

    The cut name is ``<head>-<hash>``: the head loses any trailing hyphen (RDS and others refuse a
    trailing or doubled hyphen) and the hash is lower-case hex, so the result ends in a letter or
    digit whenever ``name`` starts with one.
    """
    if limit < HASH_LENGTH + 2:
        raise ValueError(f"limit {limit} leaves no room for a name and its {HASH_LENGTH}-character hash")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_LENGTH]
    head = name[: limit - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


def failover_instance_id(cluster_id: str) -> str:
    """The writer instance the failover adds to a headless Aurora secondary: ``<cluster>-failover-1``."""
    return fit(f"{cluster_id}-{FAILOVER_INSTANCE_SUFFIX}", RDS_IDENTIFIER_MAX)


def failback_instance_id(primary_instance_id: str) -> str:
    """The replica in region A the rds-replica failback creates: ``<primary instance>-failback``.

    The program names region A's instance so that this never needs cutting
    (``components/naming.py``, :data:`FAILBACK_RESERVE`); the runbook appends the suffix as is.
    """
    return f"{primary_instance_id}-{FAILBACK_INSTANCE_SUFFIX}"


FAILBACK_RESERVE = len(FAILBACK_INSTANCE_SUFFIX) + 1
"""Characters a region-A DB instance identifier leaves free for the failback replica's suffix."""


GENERATION_PARAMETER_SUFFIX = "-generation"


def generation_parameter_name(latch_parameter_name: str) -> str:
    """The SSM parameter (region B, next to the latch) holding the live generation of the outputs.

    The program writes it on every ``pulumi up`` with the stamp it puts on the ``runbook`` output;
    the runbook only reads it (``lambdas/failover/preflight.py``), so the two never fight.
    """
    return f"{latch_parameter_name}{GENERATION_PARAMETER_SUFFIX}"
