"""Fidelity fixes for the local AWS emulator (moto), used by the local drill and by the tests.

These make moto behave like AWS where the runbook depends on it; they change the emulator,
never the product's code paths (the runbook runs unmodified against the patched emulator):

* ``PromoteReadReplica`` leaves ``ReadReplicaSourceDBInstanceIdentifier`` on the promoted
  instance (real RDS clears it when the promotion completes, which is how the runbook knows the
  promotion finished). The patch clears it and removes the instance from its source's replica list.
* ``DescribeGlobalClusters`` ignores ``GlobalClusterIdentifier`` and returns every global cluster
  of the account. The patch filters, and answers ``GlobalClusterNotFoundFault`` for an unknown one.
* ``DeleteDBInstance`` of a cross-region read replica fails: moto lists a cross-region replica on its
  source by ARN but removes it by identifier (``ValueError``). The patch removes whichever is listed.
* ``FailoverGlobalCluster`` and ``SwitchoverGlobalCluster`` are not implemented (moto answers
  "not implemented"). The patch adds both to the RDS response class: the target member becomes the
  writer and every other member a secondary; like RDS, a target cluster without any instance
  (a headless secondary) is refused with ``InvalidDBClusterStateFault``.

* ``CreateDBInstanceReadReplica`` across regions looks the new replica's ``DBSubnetGroupName`` up in the
  *source's* region (moto copies the source and only then moves the copy to its own region), so a
  replica created in its own region's VPC fails with ``DBSubnetGroupNotFoundFault``. The patch moves
  the copy to its region first. ("DBSubnetGroupName: A DB subnet group for the DB instance. The new DB
  instance is created in the VPC associated with the DB subnet group", API reference.)
* ``ModifyDBInstance`` with ``NewDBInstanceIdentifier`` renames the instance but accepts a name that is
  taken, and leaves its read replicas (and its own source's replica list) naming the old identifier.
  RDS refuses an existing name ("You cannot use an existing DB instance name when renaming an
  instance") and keeps the replicas associated ("All read replicas associated with a DB instance
  remain associated with that instance after it is renamed"), both from
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html. The patch refuses
  with ``DBInstanceAlreadyExists`` and re-points the associations. (What takes time, the instance not
  being available until the new name is effective, is the emulator's: ``aws.Timings.rename_seconds``.)

* ``Invoke`` with ``InvocationType=DryRun`` runs the function (moto only sets status 204 on what it
  returned). Lambda runs nothing then: "DryRun - Validate parameter values and verify that the user
  or role has permission to invoke the function" (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html).
  The patch answers an unknown function ``ResourceNotFoundException``, as Lambda does, and a known one
  an empty payload, without running it.

* ``DescribeScalingActivities`` answers no activity at all. Auto Scaling records one for every instance it
  launches ("Launching a new EC2 instance: i-...", started when the launch starts, kept six weeks, newest
  first: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html). The patch records
  a successful launch activity per instance moto launches into a group, stamped with the wall clock, and
  answers them for the group asked, newest first. Terminations are not recorded (nothing reads them).

* ``DescribeDBParameterGroups`` naming a group that does not exist answers an empty list. RDS answers
  ``DBParameterGroupNotFound`` ("DBParameterGroupName doesn't refer to an existing DB parameter group",
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBParameterGroups.html). The
  patch raises it.

* DynamoDB global tables (version 2019.11.21) are not modelled: ``UpdateTable`` ignores ``ReplicaUpdates``
  and ``DescribeTable`` answers no ``Replicas``. In AWS a ``Create`` replica update "invokes the
  CreateTableReplica action in the destination Region" and a ``Delete`` "invokes the DeleteTableReplica
  action in the destination Region, deleting the replica and all of its items"
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicationGroupUpdate.html), and
  each replica's ``TableDescription.Replicas`` lists the group's replicas with their ``ReplicaStatus``
  (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TableDescription.html,
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicaDescription.html). The patch
  creates the replica table (same keys, attributes, indexes, billing and streams; its own
  ``KMSMasterKeyId`` if the update names one) in the destination region at once, ``ACTIVE`` (no clock
  here: CREATING is not modelled), and answers ``Replicas`` (the other members, ``GlobalTableVersion``
  ``2019.11.21``) in every member's describe; a ``Delete`` deletes the replica table, and a member deleted
  with ``DeleteTable`` leaves its group. A group of one is a regional table again and answers no
  ``Replicas``, as a plain table does. (AWS does not say whether a replica lists itself; the model lists
  the others, and the preflight reads only the other region's entry.) Items do not replicate (moto keeps
  each replica's own); the emulator replicates a table registered with it
  (``Emulator.register_global_table``), whose describe it answers itself (``aws.py``).

``patch_moto()`` applies the patches and returns a function that undoes them; the ``moto_gaps``
fixture wraps it. The benchmark uses it too.
"""

from __future__ import annotations

import copy
import functools
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.awslambda.models import LambdaBackend
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.rds.exceptions import (
    DBClusterNotFoundError,
    DBInstanceAlreadyExists,
    DBParameterGroupNotFoundError,
    InvalidDBClusterStateFault,
    InvalidParameterValue,
    RDSClientError,
)
from moto.rds.models import DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

_MISSING = object()


def finish_promotion(backend: RDSBackend, database: Any) -> None:
    """What RDS shows once a promotion completes: no replication source, gone from its source's list."""
    source_id = database.source_db_instance_identifier
    database.is_replica = False
    if source_id:
        try:
            source = backend.find_db_from_id(source_id)
        except Exception:  # the source may be gone (region A deleted it): nothing to unlink
            source = None
        if source is not None:
            for ref in (database.db_instance_arn, database.db_instance_identifier):
                if ref in source.replicas:
                    source.replicas.remove(ref)
    database.source_db_instance_identifier = None


_ORIGINAL_PROMOTE = RDSBackend.promote_read_replica


def promote_now(backend: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
    """An instant promotion (used when no Emulator with a clock is installed)."""
    database = backend.databases[db_kwargs["db_instance_identifier"]]
    was_replica = database.is_replica or bool(database.source_db_instance_identifier)
    result = _ORIGINAL_PROMOTE(backend, db_kwargs)
    if was_replica:
        finish_promotion(backend, database)
    return result


def _remove_replica(self: DBInstance, replica: DBInstance) -> None:
    """moto's ``DBInstance.remove_replica``, for a replica listed by ARN (cross-region) or identifier."""
    for ref in (replica.db_instance_arn, replica.db_instance_identifier):
        if ref in self.replicas:
            self.replicas.remove(ref)


def _promote_read_replica(original: Callable[..., Any]) -> Callable[..., Any]:
    def promote(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        return promote_now(self, db_kwargs)

    return promote


def _replica_in_its_region(original: Callable[..., Any]) -> Callable[..., Any]:
    def create(self: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
        if str(db_kwargs.get("source_db_instance_identifier", "")).startswith("arn:"):
            # moto assigns ``backend`` last; every later attribute (the subnet group) resolves there.
            db_kwargs = {"backend": self, **db_kwargs}
        replica = original(self, db_kwargs)
        # moto makes the replica a copy of its source (copy.copy), InstanceCreateTime included. On AWS
        # it is a new DB instance created now: "Creates a new DB instance that acts as a read replica
        # for an existing source DB instance"
        # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html).
        # The emulator sets its virtual time over this (aws.py); the runbook reads creation order
        # (lambdas/failover/fencing.py ``_writer_moved_back``).
        replica.created = datetime.now(UTC).replace(tzinfo=None)
        replica.instance_create_time = replica.created
        return replica

    return create


def _instances_everywhere(account: str) -> list[Any]:
    return [db for backend in rds_backends[account].values() for db in backend.databases.values()]


def renamed(database: Any, old_id: str, old_arn: str) -> None:
    """Re-point the replication associations of ``database``, just renamed from ``old_id``."""
    new_id, new_arn = database.db_instance_identifier, database.db_instance_arn
    for other in _instances_everywhere(database.account_id):
        if other is database:
            continue
        if other.source_db_instance_identifier in (old_id, old_arn):
            # A replica keeps naming its source the way it did (identifier in-region, ARN across).
            ref = other.source_db_instance_identifier
            other.source_db_instance_identifier = new_arn if ref == old_arn else new_id
        replicas = getattr(other, "replicas", None) or []
        for i, ref in enumerate(replicas):
            if ref in (old_id, old_arn):
                replicas[i] = new_arn if ref == old_arn else new_id


def _modify_db_instance(original: Callable[..., Any]) -> Callable[..., Any]:
    def modify(self: RDSBackend, db_instance_identifier: str, db_kwargs: dict[str, Any]) -> Any:
        new = db_kwargs.get("new_db_instance_identifier")
        if not new:
            return original(self, db_instance_identifier, db_kwargs)
        database = self.describe_db_instances(db_instance_identifier)[0]
        if str(new).lower() in self.databases:
            raise DBInstanceAlreadyExists()
        old_id, old_arn = database.db_instance_identifier, database.db_instance_arn
        result = original(self, db_instance_identifier, db_kwargs)
        renamed(database, old_id, old_arn)
        return result

    return modify


def _set_writer(response: RDSResponse) -> ActionResult:
    gid = response.params["GlobalClusterIdentifier"]
    target = response.params["TargetDbClusterIdentifier"]
    clusters = response.global_backend.global_clusters
    if gid not in clusters:
        raise InvalidParameterValue(f"global cluster {gid} not found")
    group = clusters[gid]
    member = next((m for m in group.members if target in (m.db_cluster_arn, m.db_cluster_identifier)), None)
    if member is None:
        raise DBClusterNotFoundError(target, f"{target} is not a member of global cluster {gid}")
    if not member._members:
        raise InvalidDBClusterStateFault(f"cluster {target} has no DB instance to become the writer")
    for m in group.members:
        m.is_writer = m is member
    return ActionResult({"GlobalCluster": group})


class GlobalClusterNotFound(RDSClientError):
    """RDS's answer for an unknown global cluster."""

    def __init__(self, identifier: str) -> None:
        super().__init__("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found")


def describe_global_clusters(self: RDSResponse) -> ActionResult:
    """moto's DescribeGlobalClusters, honouring GlobalClusterIdentifier."""
    wanted = self.params.get("GlobalClusterIdentifier")
    clusters = self.global_backend.describe_global_clusters()
    if wanted:
        clusters = [c for c in clusters if c.global_cluster_identifier == wanted.lower()]
        if not clusters:
            raise GlobalClusterNotFound(wanted)
    return ActionResult({"GlobalClusters": clusters})


def failover_global_cluster(self: RDSResponse) -> ActionResult:
    """moto stand-in for RDS FailoverGlobalCluster (AllowDataLoss or not, the effect is the same)."""
    return _set_writer(self)


def switchover_global_cluster(self: RDSResponse) -> ActionResult:
    """moto stand-in for RDS SwitchoverGlobalCluster."""
    return _set_writer(self)


_DYNAMODB_WRITES = threading.Lock()


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    """A DynamoDB write whose condition check and write happen as one step.

    AWS: a conditional write succeeds only if the condition holds when it is applied, atomically
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html;
    the runbook lock relies on it, lambdas/failover/lock.py). moto checks and writes without a lock,
    so two threads writing at once may both pass the check: serialized here.
    """

    @functools.wraps(write)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return write(*args, **kwargs)

    return wrapper


def is_dry_run(headers: Any) -> bool:
    """Whether a Lambda Invoke request's headers ask for ``InvocationType=DryRun``."""
    return bool(headers) and headers.get("X-Amz-Invocation-Type") == "DryRun"


def _lambda_dry_run(invoke: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(invoke)
    def wrapper(
        self: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: Any,
    ) -> Any:
        if not is_dry_run(headers):
            return invoke(self, function_name, qualifier, body, headers, response_headers)
        self.get_function(function_name, qualifier)  # ResourceNotFoundException, as Lambda answers it
        response_headers["Content-Length"] = "0"
        return b""

    return wrapper


_ACTIVITIES = "_pilotlight_activities"


def _record_launches(replace: Callable[..., None]) -> Callable[..., None]:
    """FakeAutoScalingGroup.replace_autoscaling_group_instances, recording a launch activity per instance."""

    @functools.wraps(replace)
    def wrapper(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
        before = {state.instance.id for state in self.instance_states}
        desired_from = len(before)
        replace(self, count_needed, propagated_tags)
        now = datetime.now(UTC)
        log: list[dict[str, Any]] = getattr(self, _ACTIVITIES, None) or []
        setattr(self, _ACTIVITIES, log)
        for state in self.instance_states:
            if state.instance.id in before:
                continue
            log.append(
                {
                    "ActivityId": str(uuid.uuid4()),
                    "AutoScalingGroupName": self.name,
                    "Description": f"Launching a new EC2 instance: {state.instance.id}",
                    "Cause": (
                        f"At {now:%Y-%m-%dT%H:%M:%SZ} an instance was started in response to a difference "
                        f"between desired and actual capacity, increasing the capacity from {desired_from} "
                        f"to {self.desired_capacity}."
                    ),
                    "StartTime": now,
                    "EndTime": now,
                    "StatusCode": "Successful",
                    "Progress": 100,
                }
            )

    return wrapper


def describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
    """DescribeScalingActivities: the recorded launches of the group asked (or of every group), newest first."""
    name = self._get_param("AutoScalingGroupName")
    groups = self.autoscaling_backend.autoscaling_groups
    chosen = [groups[name]] if name in groups else [] if name else list(groups.values())
    activities = [a for g in chosen for a in getattr(g, _ACTIVITIES, [])]
    activities.sort(key=lambda a: a["StartTime"], reverse=True)
    return ActionResult({"Activities": activities})


def _parameter_group_not_found(real: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(real)
    def describe(self: RDSBackend, db_parameter_group_kwargs: dict[str, Any]) -> Any:
        found = real(self, db_parameter_group_kwargs)
        name = db_parameter_group_kwargs.get("db_parameter_group_name")
        if name and not found:
            raise DBParameterGroupNotFoundError(name)
        return found

    return describe


GLOBAL_TABLE_VERSION = "2019.11.21"
"""The global tables version the program deploys (components/storage.py ``application_table``)."""

_REPLICA_GROUP = "_pilotlight_replica_group"
"""Attribute of a moto ``Table`` in a replication group: region -> ReplicaStatus, one dict shared by every
member (so a change of one member's status or membership is every member's answer)."""


def replica_group(table: Table) -> dict[str, str]:
    """The replication group ``table`` is a member of (region -> ReplicaStatus), or {} for a regional table."""
    return getattr(table, _REPLICA_GROUP, None) or {}


def answer_replicas(description: dict[str, Any], region: str, group: dict[str, str]) -> None:
    """Put ``group``'s members other than ``region`` into a TableDescription as ``Replicas``, as a replica of
    a global table (version 2019.11.21) answers; a group of one (or none) answers no ``Replicas``."""
    others = [{"RegionName": r, "ReplicaStatus": s} for r, s in sorted(group.items()) if r != region]
    if not others:
        description.pop("Replicas", None)
        description.pop("GlobalTableVersion", None)
        return
    description["Replicas"] = others
    description["GlobalTableVersion"] = GLOBAL_TABLE_VERSION


def _describe_with_replicas(describe: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    @functools.wraps(describe)
    def wrapper(self: Table, base_key: str = "TableDescription") -> dict[str, Any]:
        answer = describe(self, base_key)
        answer_replicas(answer[base_key], self.region_name, replica_group(self))
        return answer

    return wrapper


def _create_replica(table: Table, region: str, kms_key: str | None) -> None:
    """CreateTableReplica in ``region``: a table of the same shape, then one group with ``table``'s."""
    backend = dynamodb_backends[table.account_id][region]
    backend.create_table(  # a table of that name there already: moto's ResourceInUseException
        name=table.name,
        schema=copy.deepcopy(table.schema),
        throughput=copy.deepcopy(table.throughput),
        attr=copy.deepcopy(table.attr),
        global_indexes=[index.describe() for index in table.global_indexes],
        indexes=[index.describe() for index in table.indexes],
        streams=dict(table.stream_specification or {}) or None,
        billing_mode=table.billing_mode or "PROVISIONED",
        sse_specification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key} if kms_key else None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    group = replica_group(table) or {table.region_name: "ACTIVE"}
    group[region] = "ACTIVE"
    for member in _members(table.account_id, table.name, group):
        setattr(member, _REPLICA_GROUP, group)


def _members(account: str, name: str, group: dict[str, str]) -> list[Table]:
    found = (dynamodb_backends[account][r].tables.get(name) for r in group)
    return [t for t in found if isinstance(t, Table)]


def _leave_group(table: Table) -> None:
    """``table`` is no longer a replica: the rest of its group stays one (a group of one is regional)."""
    group = replica_group(table)
    if not group:
        return
    group.pop(table.region_name, None)
    setattr(table, _REPLICA_GROUP, None)
    if len(group) == 1:
        for member in _members(table.account_id, table.name, group):
            setattr(member, _REPLICA_GROUP, None)


def _replica_updates(original: Callable[..., Any]) -> Callable[..., Any]:
    """DynamoHandler.update_table, applying ``ReplicaUpdates`` (``Create``, ``Delete``) first."""

    @functools.wraps(original)
    def wrapper(self: DynamoHandler) -> Any:
        updates = self.body.get("ReplicaUpdates") or []
        if updates:
            table = self.dynamodb_backend.get_table(self.body["TableName"])
            for update in updates:
                if "Create" in update:
                    create = update["Create"]
                    _create_replica(table, create["RegionName"], create.get("KMSMasterKeyId"))
                elif "Delete" in update:  # the replica table and its items: DeleteTable (it leaves the group)
                    dynamodb_backends[table.account_id][update["Delete"]["RegionName"]].delete_table(
                        table.name
                    )
        return original(self)

    return wrapper


def _delete_table(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(self: DynamoDBBackend, name: str) -> Any:
        table = original(self, name)
        if isinstance(table, Table):
            _leave_group(table)
        return table

    return wrapper


def patch_moto() -> Callable[[], None]:
    """Apply the patches; returns the undo function."""
    saved: list[tuple[Any, str, Any]] = []

    def put(obj: Any, name: str, value: Any) -> None:
        saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
        setattr(obj, name, value)

    put(RDSBackend, "promote_read_replica", _promote_read_replica(RDSBackend.promote_read_replica))
    put(DBInstance, "remove_replica", _remove_replica)
    put(
        RDSBackend,
        "create_db_instance_read_replica",
        _replica_in_its_region(RDSBackend.create_db_instance_read_replica),
    )
    put(RDSBackend, "modify_db_instance", _modify_db_instance(RDSBackend.modify_db_instance))
    put(RDSResponse, "describe_global_clusters", describe_global_clusters)
    put(RDSResponse, "failover_global_cluster", failover_global_cluster)
    put(RDSResponse, "switchover_global_cluster", switchover_global_cluster)
    put(LambdaBackend, "invoke", _lambda_dry_run(LambdaBackend.invoke))
    put(
        RDSBackend,
        "describe_db_parameter_groups",
        _parameter_group_not_found(RDSBackend.describe_db_parameter_groups),
    )
    put(
        FakeAutoScalingGroup,
        "replace_autoscaling_group_instances",
        _record_launches(FakeAutoScalingGroup.replace_autoscaling_group_instances),
    )
    put(AutoScalingResponse, "describe_scaling_activities", describe_scaling_activities)
    for name in ("put_item", "update_item", "delete_item"):
        put(DynamoDBBackend, name, _atomic(getattr(DynamoDBBackend, name)))
    put(Table, "describe", _describe_with_replicas(Table.describe))
    put(DynamoHandler, "update_table", _replica_updates(DynamoHandler.update_table))
    put(DynamoDBBackend, "delete_table", _delete_table(DynamoDBBackend.delete_table))

    def undo() -> None:
        for obj, name, value in reversed(saved):
            if value is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, value)

    return undo


__all__ = ["patch_moto", "rds_backends"]
