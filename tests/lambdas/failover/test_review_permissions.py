"""The adversarial review of issue 12 ("deployable for real"), its findings as tests (branch break12).

Probes: the runbook role against what the runbook really does, and what the permission
test can see. Each probe passes once its finding is fixed; a finding still open is a strict expected failure
naming it.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdas.failover import failback
from tests.lambdas.failover.test_permissions import (
    TARGETS,
    Call,
    allowing,
    record_both_runbooks,
    topic_keys,
    world_policy,
)
from tests.lambdas.failover.world import ACCOUNT, World, all_db_instances


def test_a_failback_replica_named_by_the_operator_is_allowed(make_world: Callable[..., World]) -> None:
    """The failback creates its replica under the id the step computes (failback._failback_writer_id: region
    A's primary's own name, rename to replace) and takes none from its parameters; the role allows it."""
    world = make_world("rds-replica")
    statements = world_policy(world)
    region = world.context["primaryRegion"]
    own = failback._failback_writer_id(  # the id the runbook creates and promotes
        type("Ctx", (), {"primary_db_instance_id": world.context["primaryDbInstanceId"]})(),  # type: ignore[arg-type]
        "reestablish_replication",
    )
    assert own == world.context["primaryDbInstanceId"]
    call = Call("rds:CreateDBInstanceReadReplica", region, f"arn:aws:rds:{region}:{ACCOUNT}:db:{own}")
    assert allowing(statements, call), f"the runbook creates {own!r}; its role refuses it"


def test_the_permission_test_checks_the_source_of_a_cross_region_replica() -> None:
    """CreateDBInstanceReadReplica is authorized on the source instance too (the runbook role names the
    region-B source for that reason), but TARGETS records only the new instance: removing the source, the
    default option/parameter groups and the subnet group from the statement leaves the test green
    (mutation run during break12)."""
    params = {
        "DBInstanceIdentifier": "app-failback",
        "SourceDBInstanceIdentifier": f"arn:aws:rds:us-west-2:{ACCOUNT}:db:app-dr",
    }
    targets = TARGETS["rds:CreateDBInstanceReadReplica"](params, "us-east-1")
    assert params["SourceDBInstanceIdentifier"] in targets


def test_the_permission_test_checks_the_key_of_the_encrypted_topic(make_world: Callable[..., World]) -> None:
    """sns:Publish to a KMS-encrypted topic needs kms:GenerateDataKey/Decrypt on the topic's key for the
    caller (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). The recorder records them
    on the key SNS reports for the topic, so the break12 mutation (NotifyEncryptedTopic naming another
    key) is denied."""
    world = make_world("rds-replica", encrypted=True)
    recorder = record_both_runbooks(world)
    key = topic_keys(world)[world.context["notifyTopicArn"]]
    kms = {
        c for c in recorder.calls if c.target == key and c.action in ("kms:GenerateDataKey", "kms:Decrypt")
    }
    assert {c.action for c in kms} == {"kms:GenerateDataKey", "kms:Decrypt"}, (
        "the publish's KMS calls are recorded"
    )
    statements = world_policy(world)
    assert all(allowing(statements, c) for c in kms)
    mutated = [
        {**s, "Resource": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/another"}
        if s.get("Sid") == "NotifyEncryptedTopic"
        else s
        for s in statements
    ]
    assert [c for c in kms if not allowing(mutated, c)], "a policy naming another key still passes"


def test_the_failback_replica_is_created_in_region_as_vpc(make_world: Callable[..., World]) -> None:
    """CreateDBInstanceReadReplica: "If no DB subnet group is specified, then the new DB instance isn't
    created in a VPC" (DBSubnetGroupName,
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html).
    The failback replica becomes region A's writer (switch_writer), so it must be in the app's VPC with
    the database security group: the ones of region A's old primary, which it replaces."""
    from lambdas.failover import executor
    from lambdas.failover.context import RunbookContext
    from tests.lambdas.failover.harness import FAST, FORCED, clients_for

    seen: list[dict] = []

    def hook(params: dict, model: object, **_: object) -> None:
        if getattr(model, "name", "") == "CreateDBInstanceReadReplica":
            seen.append(dict(params))

    class Recorder:
        def install(self, session: object) -> None:
            session.events.register("before-parameter-build", hook)  # type: ignore[attr-defined]

    world = make_world("rds-replica")
    clients = clients_for(world, Recorder())  # type: ignore[arg-type]
    ctx = RunbookContext.from_dict(world.context)
    assert executor.run("failover", ctx, clients, params=FORCED).outcome == "done"
    world.age_metrics(minutes=5)
    executor.run("failback", ctx, clients, params=FAST)
    assert seen, "the failback created no replica"
    old = all_db_instances(world.client("rds", world.context["primaryRegion"]))
    mine = f"{world.context['primaryDbInstanceId']}-pre-failback-"
    (retained,) = [d for d in old if d["DBInstanceIdentifier"].startswith(mine)]
    assert all(
        p.get("DBSubnetGroupName") == retained["DBSubnetGroup"]["DBSubnetGroupName"]
        and p.get("VpcSecurityGroupIds") == [g["VpcSecurityGroupId"] for g in retained["VpcSecurityGroups"]]
        for p in seen
    ), (
        f"failback replica request {seen} is not in region A's VPC ({retained['DBSubnetGroup']['DBSubnetGroupName']})"
    )
