"""The emulator's speed patches (``automation/emulator/speed.py``) give the answers moto and botocore
give without them, and do save the work they say they save.

Each test compares a patched answer with the unpatched code's answer on the same input (the
unpatched functions are kept by ``patch_moto_speed`` and restored by its undo), so a patch that
changed behaviour fails here, not only as a changed soak figure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import moto.core.errors
import moto.core.responses
import pytest
from moto import mock_aws
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.utils import method_names_from_class
from moto.rds.responses import RDSResponse
from moto.ssm.responses import SimpleSystemManagerResponse

from automation.emulator import gaps, speed
from automation.emulator.clock import VirtualClock
from automation.emulator.data import DataPlane, Store

ACCOUNT, REGION = "123456789012", "us-east-1"


WRITTEN_FOR_BOTH = pytest.mark.skipif(
    not (speed.applies("moto") and speed.applies("botocore")),
    reason=f"the installed moto/botocore are not {speed.WRITTEN_FOR}: the patches are not applied (speed.WRITTEN_FOR)",
)


@pytest.fixture
def patched() -> Iterator[None]:
    undo = speed.patch_moto_speed()
    try:
        yield
    finally:
        undo()


@WRITTEN_FOR_BOTH
def test_undo_restores_every_patched_name() -> None:
    """The patches are the emulator's while it is installed, and only then."""
    before = (
        moto.core.errors.ErrorLookupFactory,
        moto.core.responses.method_names_from_class,
        CloudWatchBackend.get_metric_data,
    )
    speed.patch_moto_speed()()
    after = (
        moto.core.errors.ErrorLookupFactory,
        moto.core.responses.method_names_from_class,
        CloudWatchBackend.get_metric_data,
    )
    assert after == before, "patch_moto_speed's undo left a moto function patched"


@WRITTEN_FOR_BOTH
def test_error_table_built_once_per_service(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers each error with the error shape of its code; the table of a service's error
    codes is built once, not on every error answer (moto's factory cache never hit)."""
    from moto.core.utils import get_service_model
    from moto.ssm.exceptions import ParameterNotFound

    built: list[str] = []
    factory = type(speed._FACTORY)  # moto's ErrorLookupFactory (the module's name is patched)
    create = factory._create_error_lut

    def counting(service_model: Any) -> Any:
        built.append(service_model.metadata["serviceId"])
        return create(service_model)

    monkeypatch.setattr(factory, "_create_error_lut", staticmethod(counting))
    speed._FACTORY._error_lut_cache.clear()
    model = get_service_model("ssm")
    first = moto.core.errors.get_error_model(ParameterNotFound("no such parameter"), model)
    second = moto.core.errors.get_error_model(ParameterNotFound("no such parameter"), model)
    assert first.error_code == "ParameterNotFound", "the error shape of ParameterNotFound was not found"
    assert second.error_code == first.error_code
    assert built.count("SSM") == 1, f"SSM's error table was built {built.count('SSM')} times for two errors"


@WRITTEN_FOR_BOTH
@pytest.mark.parametrize("response_class", [RDSResponse, SimpleSystemManagerResponse, CloudWatchResponse])
def test_action_lookup_answers_as_getmembers(response_class: type) -> None:
    """``action in method_names_from_class(cls)`` answers the same patched, for every attribute of the
    response class (gaps' added RDS actions included) and for names it does not have."""
    undo = gaps.patch_moto()
    try:
        names = [*dir(response_class), "failover_global_cluster", "no_such_action", "__init__", "uri"]
        listed = set(method_names_from_class(response_class))
        looked_up = speed._FunctionNames(response_class)
        differ = [n for n in names if (n in listed) != (n in looked_up)]
        assert not differ, f"{response_class.__name__}: action lookup differs from getmembers for {differ}"
    finally:
        undo()


def _metric(name: str, at: datetime, value: float, unit: str | None = None, **dims: str) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "MetricName": name,
        "Timestamp": at.replace(tzinfo=None),  # naive UTC, as moto keeps them
        "Value": value,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
    }
    return datum | ({"Unit": unit} if unit else {})


@WRITTEN_FOR_BOTH
def test_get_metric_data_narrowed_answers_as_moto() -> None:
    """GetMetricData (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html)
    answers the same with the backend's datapoints narrowed to the queried metric names: with and
    without dimensions, a name in two namespaces (moto's dimension filter ignores the namespace:
    kept as moto has it), a unit filter, descending order, and a metric-math query (not narrowed)."""
    unpatched = CloudWatchBackend.get_metric_data
    with mock_aws():
        backend: CloudWatchBackend = cloudwatch_backends[ACCOUNT][REGION]
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        puts = [
            (
                "App/A",
                _metric(
                    "Lag", t0 + timedelta(seconds=20 * i), float(i), "Seconds" if i % 2 else None, App="a"
                ),
            )
            for i in range(30)
        ]
        puts += [
            ("App/B", _metric("Lag", t0 + timedelta(seconds=30 * i), 100.0 + i, App="a")) for i in range(20)
        ]
        puts += [
            ("App/A", _metric("Switch", t0 + timedelta(seconds=60 * i), 1.0, App="b")) for i in range(10)
        ]
        puts += [("App/A", _metric("Other", t0 + timedelta(seconds=7 * i), 5.0)) for i in range(80)]
        for namespace, datum in puts:
            backend.put_metric_data(namespace, [datum])

        def stat(qid: str, name: str, namespace: str, dims: dict[str, str], **more: Any) -> dict[str, Any]:
            metric = {
                "Namespace": namespace,
                "MetricName": name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            }
            return {"Id": qid, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Maximum", **more}}

        lag_a = stat("a", "Lag", "App/A", {"App": "a"})
        cases: list[tuple[list[dict[str, Any]], str]] = [
            ([lag_a], "TimestampAscending"),
            ([stat("a", "Lag", "App/B", {})], "TimestampAscending"),
            ([lag_a, stat("b", "Switch", "App/A", {"App": "b"})], "TimestampDescending"),
            ([stat("a", "Lag", "App/A", {"App": "a"}, Unit="Seconds")], "TimestampAscending"),
            ([stat("a", "Nothing", "App/A", {})], "TimestampAscending"),
            ([lag_a, {"Id": "m", "Expression": "a * 2"}], "TimestampAscending"),
        ]
        start, end = t0.replace(tzinfo=None), t0.replace(tzinfo=None) + timedelta(minutes=12)
        expected = [unpatched(backend, queries, start, end, scan_by) for queries, scan_by in cases]
        assert any(e and e[0]["values"] for e in expected), (
            "the cases found no datapoint: they compare nothing"
        )
        undo = speed.patch_moto_speed()
        try:
            got = [backend.get_metric_data(queries, start, end, scan_by) for queries, scan_by in cases]
        finally:
            undo()
        for (queries, scan_by), e, g in zip(cases, expected, got, strict=True):
            assert g == e, f"GetMetricData differs patched for {queries} ({scan_by})"


@WRITTEN_FOR_BOTH
def test_kms_private_key_made_when_first_used(patched: None) -> None:
    """A KMS key's private key is generated when Sign or Verify first needs it
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html), and then signs and verifies."""
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
        from moto.kms.models import kms_backends

        key = kms_backends[ACCOUNT][REGION].keys[symmetric]
        assert isinstance(key.private_key, speed._LazyPrivateKey) and key.private_key._key is None, (
            "a symmetric KMS key generated an RSA private key it never uses"
        )
        signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        signature = kms.sign(KeyId=signing, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
        verified = kms.verify(
            KeyId=signing, Message=b"m", Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256"
        )
        assert verified["SignatureValid"], "a lazily generated KMS key did not verify its own signature"


@WRITTEN_FOR_BOTH
def test_url_patterns_remembered_in_moto_order() -> None:
    """The services whose URL pattern matches a URL are the ones moto's scan finds, in its order."""
    import moto.backend_index

    for url in (
        "https://ssm.us-west-2.amazonaws.com/",
        "https://rds.us-east-1.amazonaws.com/",
        "https://monitoring.us-west-2.amazonaws.com/",
        "https://s3.amazonaws.com/bucket/key",
        "https://example.com/",
    ):
        expected = [(s, p) for s, p in moto.backend_index.backend_url_patterns if p.match(url)]
        assert speed._matching(url) == expected, f"{url}: remembered matches differ from moto's scan"
        assert speed._matching(url) == expected, f"{url}: the second lookup differs from the first"


@WRITTEN_FOR_BOTH
def test_invocation_ids_are_version_4_and_distinct() -> None:
    """botocore's invocation id header stays a random version-4 UUID, one per invocation."""
    ids = speed._InvocationIds()
    made = [ids.uuid4() for _ in range(1000)]
    assert all(isinstance(u, uuid.UUID) and u.version == 4 for u in made), "an invocation id is no UUID4"
    assert len(set(made)) == len(made), "two invocations were given the same id"


@WRITTEN_FOR_BOTH
def test_clients_share_service_model_and_rule_set() -> None:
    """Two clients of one service share one ServiceModel and one endpoint RuleSet, and resolve the
    endpoint a client built unpatched resolves."""
    from tests.lambdas.failover.harness import new_session

    plain = new_session().client("ssm", region_name="us-west-2")
    undo = speed.patch_moto_speed()
    try:
        one = new_session().client("ssm", region_name="us-west-2")
        two = new_session().client("ssm", region_name="us-west-2")
    finally:
        undo()
    assert one.meta.service_model is two.meta.service_model, "clients of one model data got two ServiceModels"
    assert one._ruleset_resolver._provider.ruleset is two._ruleset_resolver._provider.ruleset, (
        "clients of one rule set data built two RuleSets"
    )
    assert one.meta.endpoint_url == plain.meta.endpoint_url, "a shared rule set resolved another endpoint"
    resolved = [
        c._ruleset_resolver.construct_endpoint(c.meta.service_model.operation_model("GetParameter"), {}, {})
        for c in (one, plain)
    ]
    assert resolved[0].url == resolved[1].url, "a shared rule set resolved another endpoint for an operation"


def test_acknowledged_index_answers_as_the_scan() -> None:
    """``DataPlane.acknowledged`` answers every acknowledged client write of the store, in the order
    they were recorded (reserved ids recorded out of order, and markers no client was told of, left out)."""
    clock = VirtualClock()
    data = DataPlane(clock.now, lambda region: True)
    data.copy("db:a", Store.DATABASE, "us-east-1")
    data.copy("t:a", Store.TABLE, "us-east-1")
    reserved = data.next_id()
    data.write("db:a")
    data.write("t:a")
    data.write("db:a", client=False)
    clock.advance(5)
    data.write("db:a", write_id=reserved)
    data.write("t:a")
    for store in Store:
        scan = [w for w in data.writes.values() if w.store is store and w.client]
        assert data.acknowledged(store) == scan, f"acknowledged({store}) differs from a scan of every write"
    copy = data.acknowledged(Store.DATABASE)
    copy.clear()
    assert len(data.acknowledged(Store.DATABASE)) == 2, "a caller's list is the plane's own index"


@WRITTEN_FOR_BOTH
def test_sns_messages_signed_with_one_key_for_every_subscription() -> None:
    """SNS still signs what it delivers (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
    a message delivered to an SQS subscription carries a Signature, and two subscriptions share
    one generated key instead of one each."""
    from moto.sns.models import Subscription

    undo = speed.patch_moto_speed()
    try:
        with mock_aws():
            sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
            topic = sns.create_topic(Name="speed")["TopicArn"]
            urls = [sqs.create_queue(QueueName=f"speed-{i}")["QueueUrl"] for i in range(2)]
            for url in urls:
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
            sns.publish(TopicArn=topic, Message="hello")
            import json

            bodies = [json.loads(sqs.receive_message(QueueUrl=u)["Messages"][0]["Body"]) for u in urls]
            assert all(b["Signature"] and b["Message"] == "hello" for b in bodies), (
                "a delivery lost its signature"
            )
            from moto.sns.models import sns_backends

            subscriptions = list(sns_backends[ACCOUNT][REGION].subscriptions.values())
            keys = {id(Subscription.private_key(s)) for s in subscriptions}
            assert len(subscriptions) == 2 and len(keys) == 1, "each subscription generated its own RSA key"
    finally:
        undo()


def test_another_version_gets_no_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine may resolve moto or botocore to a newer version than the patches were read from:
    then none of that package's patches is applied, and the emulator answers as moto and botocore do."""
    names = [
        (moto.core.errors, "ErrorLookupFactory"),
        (moto.core.responses, "method_names_from_class"),
        (CloudWatchBackend, "get_metric_data"),
    ]
    before = [getattr(obj, name) for obj, name in names]
    monkeypatch.setattr(speed, "applies", lambda package: False)
    undo = speed.patch_moto_speed()
    try:
        assert [getattr(obj, name) for obj, name in names] == before
    finally:
        undo()
