"""The re-seed (``automation/reseed.py``, the model of the operator's ``pulumi up -s dr`` after an
rds-replica failback) tags the next generation as the program does.

The program's resources all carry the provider's default tags (components/config.py ``Tags.as_dict``,
:data:`lambdas.failover.names.REQUIRED_TAG_KEYS`), and the tag Deny that keeps one deployment's deployer
and roles off another's resources reads them (automation/iam.py ``other_deployments_denied``). An
untagged generation in the model is a world the real program never makes: a later failover's IAM and
tag checks would be judged against the wrong instance.
"""

from __future__ import annotations

from collections.abc import Callable

from automation.reseed import reseed
from lambdas.failover.names import REQUIRED_TAG_KEYS
from tests.lambdas.failover.world import REGION_A, REGION_B, World


def _program_tags(described: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in described.get("TagList") or [] if t["Key"] in REQUIRED_TAG_KEYS}


def _reseeded(world: World, released: str) -> dict:
    """Re-seed region B (its instance ``released`` standalone) and describe the new generation."""
    rds_b = world.client("rds", REGION_B)
    done = reseed(
        world.context,
        rds_a=world.client("rds", REGION_A),
        rds_b=rds_b,
        ssm_b=world.client("ssm", REGION_B),
        base=released,
        sleep=lambda _s: None,
    )
    assert done.done and done.instance_id, done.detail
    return rds_b.describe_db_instances(DBInstanceIdentifier=done.instance_id)["DBInstances"][0]


def test_the_next_generation_carries_the_program_s_tags(make_world: Callable[..., World]) -> None:
    world = make_world("rds-replica")
    rds_b = world.client("rds", REGION_B)
    released = str(world.context["drDbInstanceId"])
    rds_b.promote_read_replica(DBInstanceIdentifier=released)  # region B standalone, as after a failback
    before = rds_b.describe_db_instances(DBInstanceIdentifier=released)["DBInstances"][0]
    expected = _program_tags(before)
    assert set(expected) == set(REQUIRED_TAG_KEYS), expected  # the world tags as the program does

    created = _reseeded(world, released)
    assert _program_tags(created) == expected


def test_br23_2_the_next_generation_carries_the_user_s_tags_too(make_world: Callable[..., World]) -> None:
    """The program's default tags are ``Tags.as_dict``: the user's ``extra`` tags plus the required ones
    (components/config.py), so ``pulumi up`` tags every instance with both (provider default tags:
    https://www.pulumi.com/registry/packages/aws/installation-configuration/, ``defaultTags``). RDS gives
    a new read replica only the tags of its request
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html,
    ``Tags``). The re-seed claims to tag the next generation "as pulumi up would tag it", but filters the
    released instance's tags to ``REQUIRED_TAG_KEYS``: a user tag (an owner, a backup selection) is lost."""
    world = make_world("rds-replica")
    rds_b = world.client("rds", REGION_B)
    released = str(world.context["drDbInstanceId"])
    rds_b.promote_read_replica(DBInstanceIdentifier=released)
    arn = rds_b.describe_db_instances(DBInstanceIdentifier=released)["DBInstances"][0]["DBInstanceArn"]
    # A user tag from pilotlight:tags, as the provider's default tags put it on the released generation.
    rds_b.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "Owner", "Value": "payments-team"}])

    created = _reseeded(world, released)
    tags = {t["Key"]: t["Value"] for t in created.get("TagList") or []}
    assert tags.get("Owner") == "payments-team", f"re-seeded {created['DBInstanceIdentifier']} tags: {tags}"
