"""Physical names the runbook generates, fitted to AWS's limits (pure: no AWS, no Pulumi).

The runbook creates or renames a few resources of its own: a writer instance for a headless Aurora
secondary at failover, and (rds-replica failback) the name region A's old primary is kept under
once it is renamed out of the way of its replacement (:func:`retained_instance_id`). Their
identifiers derive from identifiers the program generated, which may already be close to the
limit. :func:`fit` keeps a name that fits as it is, and otherwise cuts it and appends a short hash
of the whole name, so two long names that differ only at the end stay different, and a step run
again computes the same name (the runbook's idempotence depends on it). The failover's writer is
the exception: its name carries a random token so that no one can take it first
(:func:`failover_instance_id`); the runbook records the name in its journal before creating it, so a
resumed step uses the same one.

The program's naming helper (``components/naming.py``) uses the same :func:`fit`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

HASH_LENGTH = 7
"""Hex characters of the SHA-256 of the full name kept when a name is cut (28 bits)."""

RDS_IDENTIFIER_MAX = 63
"""DB instance identifiers: 1-63 letters, digits or hyphens; first a letter; no trailing hyphen or
``--`` (Amazon RDS API Reference, CreateDBInstance, ``DBInstanceIdentifier``:
https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html)."""

REPLICATION_RULE_ID = "all-objects"
"""The ID of the receipts buckets' replication rule (components/storage.py): S3 Replication metrics
carry it as their ``RuleId`` dimension, which the runbook's drain wait names."""

FAILOVER_INSTANCE_MARKER = "failover"
"""What the name of the writer the failover adds to a headless Aurora secondary says (:func:`failover_instance_id`)."""

LEGACY_FAILOVER_INSTANCE_SUFFIX = "failover-1"
"""The fixed suffix earlier runbooks gave that writer (:func:`legacy_failover_instance_id`)."""

FAILOVER_TOKEN_LENGTH = 8
"""Lower-case hex characters of the failover writer's random token (32 bits from :mod:`secrets`)."""

FAILOVER_WRITER_MARK = "failoverWriter"
"""Journal key: the name the failover drew for a headless secondary's writer, written before it asks
RDS to create it (write-ahead, ``promotion._promote_aurora``) and kept: a resumed step asks for the same
name, never for a second instance (a member of the cluster already there is the writer, and a later
failover of a headless cluster may reuse the name or, if it is taken, draw another)."""

FAILOVER_NAME_ATTEMPTS = 3
"""How many names the failover draws for the writer before it stops: a drawn name is taken only by
chance (2^-32) or by someone who read the journal, so a third taken name means someone is at work."""

FAILBACK_INSTANCE_SUFFIX = "failback"


def cut_head(identifier: str) -> str | None:
    """The head of ``identifier`` if it may be a name :func:`fit` cut (``<head>-<7 hex>``), else None."""
    match = re.fullmatch(rf"(.+)-[0-9a-f]{{{HASH_LENGTH}}}", identifier)
    return match.group(1) if match else None


def _may_extend(head: str, prefix: str) -> bool:
    """Whether a name starting with ``prefix`` may have been cut to ``head`` (one is a prefix of the other)."""
    return prefix.startswith(head) or head.startswith(prefix)


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


_FAILOVER_SUFFIX_LENGTH = len(f"-{FAILOVER_INSTANCE_MARKER}-") + FAILOVER_TOKEN_LENGTH


def failover_instance_prefix(cluster_id: str) -> str:
    """What every writer :func:`failover_instance_id` names for ``cluster_id`` starts with:
    ``<cluster>-failover-``, the cluster's part cut (with a hash, :func:`fit`) only when the whole
    name would pass RDS's 63 characters. The cut depends on the cluster alone, never on the token,
    so the prefix is a literal the runbook role's resource pattern names (``<prefix>*``) and the
    program's adoption looks for."""
    head = fit(cluster_id, RDS_IDENTIFIER_MAX - _FAILOVER_SUFFIX_LENGTH)
    return f"{head}-{FAILOVER_INSTANCE_MARKER}-"


def new_failover_token() -> str:
    """A fresh token for the failover writer's name: :data:`FAILOVER_TOKEN_LENGTH` lower-case hex
    characters from :mod:`secrets`, which no one can predict."""
    return secrets.token_hex(FAILOVER_TOKEN_LENGTH // 2)


def failover_instance_id(cluster_id: str, token: str) -> str:
    """The writer instance the failover adds to a headless Aurora secondary: ``<cluster>-failover-<token>``.

    DB instance identifiers are unique per account and region (CreateDBInstance answers
    ``DBInstanceAlreadyExists``, "The user already has a DB instance with the given identifier":
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html), and another
    deployment's deployer may create instances in the same account and region. A fixed name
    (``<cluster>-failover-1``, :func:`legacy_failover_instance_id`) can be taken ahead of time and
    the failover denied its writer (review breakiam22b BI22b-9); a name with a token drawn when the
    failover needs it (:func:`new_failover_token`) cannot be. The token is never cut: the name always
    fits (:func:`failover_instance_prefix` cuts the cluster's part instead).
    """
    if not re.fullmatch(rf"[0-9a-f]{{{FAILOVER_TOKEN_LENGTH}}}", token):
        raise ValueError(
            f"a failover writer token is {FAILOVER_TOKEN_LENGTH} lower-case hex characters, got {token!r}"
        )
    return f"{failover_instance_prefix(cluster_id)}{token}"


def failover_instance_pattern(cluster_id: str) -> str:
    """Every name :func:`failover_instance_id` gives ``cluster_id``'s writer (an IAM resource pattern:
    ``*`` stands for the token)."""
    return f"{failover_instance_prefix(cluster_id)}*"


def legacy_failover_instance_id(cluster_id: str) -> str:
    """The name earlier runbooks gave the writer: ``<cluster>-failover-1``, cut with a hash past 63.

    Deployments whose runbook created it keep it (it is their region B's instance, adopted by the dr
    stack), so the program still recognises it (:func:`is_failover_instance`); the runbook no longer
    creates it."""
    return fit(f"{cluster_id}-{LEGACY_FAILOVER_INSTANCE_SUFFIX}", RDS_IDENTIFIER_MAX)


def failover_token(cluster_id: str, identifier: str) -> str | None:
    """The token of ``identifier`` if it is a name :func:`failover_instance_id` gives ``cluster_id``'s
    writer, else None."""
    match = re.fullmatch(
        re.escape(failover_instance_prefix(cluster_id)) + rf"([0-9a-f]{{{FAILOVER_TOKEN_LENGTH}}})",
        identifier,
    )
    return match.group(1) if match else None


def is_failover_instance(cluster_id: str, identifier: str) -> bool:
    """Whether ``identifier`` is a writer a runbook added to ``cluster_id``: this runbook's
    ``<cluster>-failover-<token>`` or an earlier one's ``<cluster>-failover-1``."""
    return (
        identifier == legacy_failover_instance_id(cluster_id)
        or failover_token(cluster_id, identifier) is not None
    )


def failback_instance_id(primary_instance_id: str) -> str:
    """The replica in region A the *IaC* failback phases create (``dr:failback replicate``):
    ``<primary instance>-failback``.

    Only the Pulumi program's phases use it: the runbook's failback no longer creates a second
    instance beside region A's old primary, it renames the old primary out of the way and creates
    the replica under the old primary's own name (:func:`retained_instance_id`), so that region A's
    application, configured with that name's endpoint, reaches the new writer. The program names
    region A's instance so that this never needs cutting (``components/naming.py``,
    :data:`FAILBACK_RESERVE`).
    """
    return f"{primary_instance_id}-{FAILBACK_INSTANCE_SUFFIX}"


GENERATION_MARK = "g"
"""Region B's rds-replica database of generation ``n >= 1`` is ``<base>-g<n>`` (issue 13, E4)."""

MAX_GENERATION = 1000
"""The most generations a reader looks for under a name cut with a hash (each is one failback cycle).

A cut name keeps no readable generation (``<head>-<hash of the whole name>``), so a reader finds it
the way the writer made it: it computes the names of generations 1 to this one and compares."""


def generation_identifier(base: str, generation: int) -> str:
    """The identifier of generation ``generation`` of an RDS instance whose first generation is ``base``.

    rds-replica re-protection: a promoted instance cannot be re-pointed at a source, so each failback
    gives region B a *new* replica, and the instance of the cycle before keeps its name (it is
    released, never deleted). Generation 0 is ``base`` itself, so deployed stacks keep their
    identifier; generation ``n`` appends ``-g<n>``, cut with a hash (:func:`fit`) only past RDS's 63
    characters, so two generations never share a name.
    """
    if generation < 0:
        raise ValueError(f"a database generation is 0 or more, got {generation}")
    if generation == 0:
        return base
    return fit(f"{base}-{GENERATION_MARK}{generation}", RDS_IDENTIFIER_MAX)


def generation_of(base: str, identifier: str) -> int | None:
    """The generation :func:`generation_identifier` gave ``identifier`` for ``base``, None if none did.

    A name that fits is read (``<base>-g<n>``); one cut with a hash is recomputed: every generation up
    to :data:`MAX_GENERATION` whose name could have that head is generated again and compared.
    """
    if identifier == base:
        return 0
    match = re.fullmatch(re.escape(base) + rf"-{GENERATION_MARK}(\d+)", identifier)
    if match is not None and int(match.group(1)) > 0:
        generation = int(match.group(1))
        return generation if generation_identifier(base, generation) == identifier else None
    head = cut_head(identifier)
    if head is None or not _may_extend(head, f"{base}-{GENERATION_MARK}"):
        return None
    return next(
        (g for g in range(1, MAX_GENERATION + 1) if generation_identifier(base, g) == identifier), None
    )


def failback_generation_id(primary_base: str, generation: int) -> str:
    """The IaC failback instance in region A for region B's generation ``generation``: ``<primary>-failback``
    for generation 0 (the historical name), ``<primary>-failback-g<n>`` after it, so a failback never
    collides with the instance an earlier one left as region A's writer."""
    return generation_identifier(failback_instance_id(primary_base), generation)


def writer_lineage_id(primary_base: str, index: int) -> str:
    """Region A's writers in the order the IaC failbacks make them: index 0 is the primary stack's own
    instance ``primary_base``; index ``k >= 1`` is the failback instance of region B's generation ``k - 1``."""
    return primary_base if index == 0 else failback_generation_id(primary_base, index - 1)


def writer_lineage_index(primary_base: str, identifier: str) -> int | None:
    """The index :func:`writer_lineage_id` gives ``identifier`` for ``primary_base``; None if none does."""
    if identifier == primary_base:
        return 0
    generation = generation_of(failback_instance_id(primary_base), identifier)
    return None if generation is None else generation + 1


def lineage_base(primary_id: str) -> str:
    """Region A's primary identifier (lineage index 0) of the writer-lineage member ``primary_id``.

    A member that fits is read (``<base>-failback[-g<n>]``). One cut with a hash (generation ``n >= 1``
    of a region-A base longer than 51 characters) is recomputed: each base its head could start with
    is tried with every generation up to :data:`MAX_GENERATION` (:func:`failback_generation_id`).
    ``primary_id`` itself when it is no member (index 0, the primary stack's own instance).
    """
    suffix = f"-{FAILBACK_INSTANCE_SUFFIX}"
    lineage = re.fullmatch(rf"(.+){suffix}(?:-{GENERATION_MARK}[1-9][0-9]*)?", primary_id)
    if lineage is not None and writer_lineage_index(lineage.group(1), primary_id) is not None:
        return lineage.group(1)
    head = cut_head(primary_id)
    if head is not None:
        for end in range(len(head), 0, -1):
            base = head[:end]
            if _may_extend(head, f"{base}{suffix}-{GENERATION_MARK}") and (
                generation_of(f"{base}{suffix}", primary_id) is not None
            ):
                return base
    return primary_id


def current_failback_id(primary_id: str, dr_id: str) -> str:
    """The IaC failback instance of region B's *current* generation, from the runbook context's names.

    ``primary_id`` is region A's writer as the primary stack declares it (a lineage member,
    :func:`writer_lineage_id`, cut with a hash past 63 characters: :func:`lineage_base` reads it
    back), ``dr_id`` region B's current generation (:func:`generation_identifier`; never cut: region
    B's base leaves 9 characters free, read with :func:`generation_of` all the same).
    """
    base = lineage_base(primary_id)
    match = re.search(rf"-{GENERATION_MARK}([1-9][0-9]*)$", dr_id)
    generation = int(match.group(1)) if match else 0
    return failback_generation_id(base, generation)


FAILBACK_RESERVE = len(FAILBACK_INSTANCE_SUFFIX) + 1
"""Characters a region-A DB instance identifier leaves free for the IaC failback replica's suffix.

Kept at its value although the runbook no longer appends ``-failback``: the program cuts region A's
identifier to ``63 - FAILBACK_RESERVE`` characters, and changing the reserve would change the
identifier of every deployed database whose name is cut (a rename of the production database,
which convention 6 forbids). The retained name fits without it (:func:`retained_instance_id`)."""

RETAINED_MARKER = "pre-failback"
"""What the retained name says: this instance was region A's primary before a failback replaced it."""

RETAINED_STAMP_FORMAT = "%Y%m%d%H%M"
"""When the rename was decided (UTC, to the minute): two failbacks never retain under one name."""

_RETAINED_SUFFIX_LENGTH = len(f"-{RETAINED_MARKER}-") + len("YYYYMMDDHHMM")


def retained_head(primary_instance_id: str) -> str:
    """The part of a retained name before ``-pre-failback-<stamp>``: the primary's identifier,
    cut (with a hash, :func:`fit`) only when the whole would pass the 63-character limit."""
    return fit(primary_instance_id, RDS_IDENTIFIER_MAX - _RETAINED_SUFFIX_LENGTH)


def retained_instance_id(primary_instance_id: str, at: datetime) -> str:
    """The name region A's old primary is renamed to at failback: ``<primary>-pre-failback-<stamp>``.

    The rds-replica failback follows AWS's "Renaming to replace an existing DB instance"
    (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html): rename the
    old primary to a name saying it is no longer the primary, then create its replacement under the
    old name, so applications need no change. The old primary is retained, never deleted: it holds
    whatever region A took that never reached region B. The stamp is the instant the rename was
    decided, so the name is unique per failback and says when; the primary's part is cut (never
    the marker or the stamp) so that the runbook role's pattern
    (:func:`retained_instance_pattern`) and the operator can always find it.
    """
    stamp = at.astimezone(UTC).strftime(RETAINED_STAMP_FORMAT)
    return f"{retained_head(primary_instance_id)}-{RETAINED_MARKER}-{stamp}"


PHASE_RECORD_SUFFIX = "-failback-phase"
"""The dr stack's failback phase record is ``<latch>-failback-phase`` in region B (components/failover.py
``phase_record_parameter_name``): ``{"phase": ..., "latchSince": ...}``, the phase its last update applied
under the latch's ``since``."""

WRITER_BACK_PHASES = ("switch-writer", "route-back", "complete")
"""The IaC failback phases from which region A holds the writer (components/failover.py
``WRITER_MOVED_PHASES``, equal by test): in rds-replica, region B's instance is then a standalone copy
that no longer receives writes."""


def phase_record_name(latch_parameter_name: str) -> str:
    """The SSM parameter of the dr stack's failback phase record (:data:`PHASE_RECORD_SUFFIX`)."""
    return f"{latch_parameter_name}{PHASE_RECORD_SUFFIX}"


REQUIRED_TAG_KEYS = ("Application", "Environment", "CostCenter", "Criticality", "StackRole", "ManagedBy")
"""The tags every resource of the program carries (components/config.py ``Tags.as_dict``: the providers'
default tags). A database the runbook creates (Aurora's failover writer, the failback's replica) carries
them as the one it is modelled on does: the tag Deny that keeps one deployment's deployer and roles off
another's resources leaves an untagged resource to the Allow statements (automation/iam.py
``other_deployments_denied``; review breakiam22 BI22-8: staging's deployer could delete production's
writer after a failover). RDS puts on a new instance the tags of its request
(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html, ``Tags``)."""

FAILBACK_STAMP_TAG = "pilotlight:failback-stamp"
"""The tag the rds-replica failback puts on the replica it creates under ``<primary>`` (Tags on
CreateDBInstanceReadReplica): the stamp of the retained name it renamed the old primary to. Tags
follow an instance through a rename, so every instance a failback made says which one it replaced;
the primary stack reads it live and adopts the instance (components/primary_data.py)."""


def retained_stamp(primary_instance_id: str, identifier: str) -> str | None:
    """The stamp of ``identifier`` if it is a name :func:`retained_instance_id` gives
    ``primary_instance_id``'s old primaries, else None."""
    head = re.escape(f"{retained_head(primary_instance_id)}-{RETAINED_MARKER}-")
    match = re.fullmatch(head + r"(\d{12})", identifier)
    return match.group(1) if match else None


def failback_stamp(described: Mapping[str, Any]) -> str | None:
    """The :data:`FAILBACK_STAMP_TAG` of a described RDS instance (its ``TagList``), when it is a stamp."""
    for tag in described.get("TagList") or []:
        value = str(tag.get("Value", ""))
        if tag.get("Key") == FAILBACK_STAMP_TAG and len(value) == len("YYYYMMDDHHMM") and value.isdigit():
            return value
    return None


def stamped_after(stamp: str | None, created: Any) -> bool:
    """Whether a failback stamped ``stamp`` ran no earlier than an instance created at ``created`` (a
    described ``InstanceCreateTime``), to the stamp's minute. No stamp or no creation time proves nothing.

    The runbook's failback creates its replica of region B's instance under ``<primary>`` and stamps it
    (:data:`FAILBACK_STAMP_TAG`, tags survive the promotion); a read replica's source exists before it and
    is never re-pointed (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.html), so a
    standalone ``<primary>`` stamped no earlier than region B's standalone instance is that instance's
    replica, promoted after it: region A holds the writer. An earlier cycle's stamp predates the re-seeded
    instance region B has now; a restored or re-created writer carries no stamp."""
    if stamp is None or not isinstance(created, datetime):
        return False
    return stamp >= created.astimezone(UTC).strftime(RETAINED_STAMP_FORMAT)


def retained_instance_pattern(primary_instance_id: str) -> str:
    """Every name :func:`retained_instance_id` gives ``primary_instance_id``'s old primaries
    (an IAM resource pattern: ``*`` stands for the stamp)."""
    return f"{retained_head(primary_instance_id)}-{RETAINED_MARKER}-*"


UNPLANNED_SNAPSHOT_PREFIX = "rds:unplanned-global-failover-"
"""What Aurora names the snapshot it attempts of an old primary before rebuilding it after a managed
failover (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html)."""


def kept_snapshot_id(source: str) -> str:
    """The manual copy the runbook keeps of Aurora's ``rds:unplanned-global-failover-*`` snapshot: the
    source's name without ``rds:`` (a manual snapshot may not use that prefix), fitted to 63 characters
    (DBClusterSnapshotIdentifier: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html)."""
    return fit(source.removeprefix("rds:"), RDS_IDENTIFIER_MAX)


def kept_snapshot_pattern(cluster_id: str) -> str:
    """An IAM resource pattern (``<prefix>*``) that every :func:`kept_snapshot_id` of ``cluster_id``'s
    unplanned-failover snapshots matches, and no other cluster's but those whose id starts with the same
    characters: the copy keeps the source's name up to the cut :func:`fit` makes (review breakiam22b
    BI22b-7: ``unplanned-global-failover-*`` was every deployment's copies)."""
    head = f"{UNPLANNED_SNAPSHOT_PREFIX.removeprefix('rds:')}{cluster_id}-"
    return f"{head[: RDS_IDENTIFIER_MAX - HASH_LENGTH - 1].rstrip('-')}*"


GENERATION_PARAMETER_SUFFIX = "-generation"


def generation_parameter_name(latch_parameter_name: str) -> str:
    """The SSM parameter (region B, next to the latch) holding the live generation of the outputs.

    The program writes it on every ``pulumi up`` with the stamp it puts on the ``runbook`` output;
    the runbook only reads it (``lambdas/failover/preflight.py``), so the two never fight.
    """
    return f"{latch_parameter_name}{GENERATION_PARAMETER_SUFFIX}"


LAMBDA_FUNCTION_NAME_MAX = 64
"""Function names: 1-64 characters (Lambda API Reference, CreateFunction, ``FunctionName``:
https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html)."""

LEDGER_MARKER_SUFFIX = "ledger-marker"


def ledger_marker_function_name(prefix: str) -> str:
    """The ledger marker function of the deployment whose names start with ``prefix``
    (``<app>-<environment>``), the same name in each region: ``<prefix>-ledger-marker``, lower case,
    no doubled hyphen, fitted to Lambda's 64 characters. The program names the function with it
    (``components/serverless.py``) and the runbook invokes it by it.

    The function commits one marker row on its region's database when the runbook invokes it: the
    commit after a drain that the RDS for PostgreSQL zero-lag proof needs (``steps.replay_evidence``).
    """
    name = re.sub(r"-{2,}", "-", f"{prefix.strip('-')}-{LEDGER_MARKER_SUFFIX}".lower())
    return fit(name, LAMBDA_FUNCTION_NAME_MAX)


NAMESPACE_MAX = 255
"""A CloudWatch namespace: 1-255 characters, not starting with a colon (CloudWatch API Reference,
``Metric``, ``Namespace``: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_Metric.html),
ASCII without control characters, and not ``AWS/...``, reserved for AWS's own services (PutMetricData,
``Namespace``: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html)."""

SWITCH_NAMESPACE_ROOT = "Pilotlight/Failover"
HEALTH_NAMESPACE_ROOT = "Pilotlight/Health"


def _deployment_namespace(root: str, prefix: str) -> str:
    namespace = f"{root}/{prefix}"
    if (
        not prefix
        or len(namespace) > NAMESPACE_MAX
        or not all(32 <= ord(c) < 127 for c in namespace)
        or namespace.startswith(("AWS/", ":"))
    ):
        raise ValueError(f"{namespace!r} is not a CloudWatch namespace (1-{NAMESPACE_MAX} printable ASCII)")
    return namespace


def switch_namespace(prefix: str) -> str:
    """The failover switch metric's namespace of the deployment ``prefix`` (``<app>-<env>``):
    ``Pilotlight/Failover/<app>-<env>``.

    One namespace per deployment because IAM can fence PutMetricData by namespace only: the action
    has no resource type and its one condition key is ``cloudwatch:namespace``, none on dimensions
    (Service Authorization Reference, CloudWatch:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html;
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
    With one namespace shared by every environment, a role allowed to throw staging's switch could
    throw production's (its ``App`` dimension is only data) and move production's traffic.
    """
    return _deployment_namespace(SWITCH_NAMESPACE_ROOT, prefix)


def health_namespace(prefix: str) -> str:
    """The canary's health metrics' namespace of the deployment ``prefix``:
    ``Pilotlight/Health/<app>-<env>``. ``PrimaryHealthy`` in it drives the automated failover (the
    "primary unhealthy" alarm), so it is fenced like the switch (:func:`switch_namespace`)."""
    return _deployment_namespace(HEALTH_NAMESPACE_ROOT, prefix)
