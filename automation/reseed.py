"""Re-protection after an rds-replica failback: region B rebuilt as a replica of the current writer.

An RDS read replica that was promoted never replicates again
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html: "A promoted
read replica ... can't be made a read replica again"), so a failback leaves region B's instance
standalone. The product's documented re-protection (README "Failing back") is the operator's next
``pulumi up -s dr``: the program (``components/dr_data.py``, ``DrDatabase._rds_replica``) sees region B's
instance standalone and the tier back to standby, and creates the next generation
``<dr db>-g<n+1>`` (``lambdas.failover.names.generation_identifier``), a cross-region read replica of
region A's writer encrypted with region B's key, and waits until it is available (the provider's
create waits). The runbook outputs name it from then on, restamped with their generation (the
live generation parameter in region B is what ``pulumi up`` writes: components/pilot_light_region.py).
The released instance stays in AWS.

:func:`reseed` is that update against an AWS API (the emulator in the safety model, ``op_reseed``,
and in the local drill): it takes explicitly-regioned clients and the outputs, and returns the new
outputs. Nothing happens in aurora-global (a global database re-protects itself), while region B's
instance still replicates, while a failover is latched (the latch is ``active``) or while region A's
instance is itself a replica (a failback not finished: nothing to follow).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.failover.context import GENERATION_KEY, generation_of
from lambdas.failover.names import generation_identifier, generation_parameter_name
from lambdas.failover.names import generation_of as generation_number

CREATE_POLL_SECONDS = 30.0
"""Between two reads of the new replica's status while waiting for it (the provider polls so)."""
CREATE_ATTEMPTS = 120
"""Reads before giving up: 120 x 30 s = 1 h, more than a cross-region replica's creation takes."""


@dataclass(frozen=True)
class Reseed:
    """What a re-seed did: the new replica and the outputs naming it, or why nothing was done."""

    done: bool
    detail: str
    instance_id: str | None = None
    instance_arn: str | None = None
    source_arn: str | None = None
    context: dict[str, Any] | None = None
    """The runbook outputs after the update (None when nothing changed)."""


def stamp(context: dict[str, Any], ssm_b: Any) -> str:
    """Stamp ``context`` with its generation and deploy that generation in region B, as ``pulumi up``
    does (components/pilot_light_region.py). Returns the generation."""
    context[GENERATION_KEY] = generation_of(context)
    ssm_b.put_parameter(
        Name=generation_parameter_name(context["latchParameterName"]),
        Value=context[GENERATION_KEY],
        Type="String",
        Overwrite=True,
    )
    return str(context[GENERATION_KEY])


def reseed(
    context: Mapping[str, Any],
    *,
    rds_a: Any,
    rds_b: Any,
    ssm_b: Any,
    base: str,
    sleep: Callable[[float], None],
) -> Reseed:
    """Rebuild region B's database as a replica of region A's writer when the program would.

    ``rds_a``/``rds_b``/``ssm_b``: clients in region A and region B; ``base``: region B's first
    instance identifier (the generations are ``<base>-g<n>``); ``sleep``: how the wait for the new
    replica passes time.
    """
    if context.get("databaseMode") != "rds-replica":
        return Reseed(False, f"{context.get('databaseMode')}: the global database re-protects itself")
    ident = str(context["drDbInstanceId"])
    current = rds_b.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    source = current.get("ReadReplicaSourceDBInstanceIdentifier")
    if source:
        return Reseed(False, f"{ident} still replicates from {source}")
    latch = ssm_b.get_parameter(Name=context["latchParameterName"])["Parameter"]["Value"]
    try:
        state = json.loads(latch).get("state")
    except (ValueError, AttributeError):
        state = None
    if state == "active":
        return Reseed(False, "a failover is latched (the latch says active)")
    writer = rds_a.describe_db_instances(DBInstanceIdentifier=str(context["primaryDbInstanceId"]))[
        "DBInstances"
    ][0]
    if writer.get("ReadReplicaSourceDBInstanceIdentifier"):
        return Reseed(
            False, f"{writer['DBInstanceIdentifier']} is a replica: region A has no writer of its own yet"
        )
    generation = (generation_number(base, ident) or 0) + 1
    new_id = generation_identifier(base, generation)
    encrypted = bool(current.get("StorageEncrypted"))
    # The program's default tags (components/config.py ``Tags.as_dict``: the required keys and the user's
    # ``pilotlight:tags``): the released generation carries them because the program made it; RDS gives a
    # new instance only the tags of its request
    # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html, Tags).
    # The ``aws:`` prefix is AWS's own, which no request may set.
    tags = [
        {"Key": str(t["Key"]), "Value": str(t["Value"])}
        for t in current.get("TagList") or []
        if not str(t.get("Key", "")).startswith("aws:")
    ]
    created = rds_b.create_db_instance_read_replica(
        DBInstanceIdentifier=new_id,
        SourceDBInstanceIdentifier=writer["DBInstanceArn"],
        DBInstanceClass=current["DBInstanceClass"],
        **({"Tags": tags} if tags else {}),
        **(
            {"KmsKeyId": context["drKmsKeyArn"], "SourceRegion": context["primaryRegion"]}
            if encrypted
            else {}
        ),
    )["DBInstance"]
    for _ in range(CREATE_ATTEMPTS):  # the provider waits for the instance to be available
        got = rds_b.describe_db_instances(DBInstanceIdentifier=new_id)["DBInstances"][0]
        if got.get("DBInstanceStatus") == "available":
            break
        sleep(CREATE_POLL_SECONDS)
    else:
        raise TimeoutError(f"{new_id} not available after {CREATE_ATTEMPTS} x {CREATE_POLL_SECONDS:g} s")
    updated = dict(context) | {"drDbInstanceId": new_id}
    stamp(updated, ssm_b)
    return Reseed(
        True,
        f"{new_id}: a replica of {writer['DBInstanceIdentifier']} ({context['primaryRegion']}), "
        f"{'encrypted with ' + str(context['drKmsKeyArn']).split('/')[-1][:8] + '...' if encrypted else 'unencrypted'}; "
        f"{ident} released (it stays in AWS)",
        new_id,
        str(created["DBInstanceArn"]),
        str(writer["DBInstanceArn"]),
        updated,
    )
