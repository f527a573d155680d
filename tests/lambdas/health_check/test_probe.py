"""The region-B canary against real HTTP endpoints on 127.0.0.1 and CloudWatch/SSM in moto."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID

from lambdas.health_check import handler as handler_module
from lambdas.health_check import probe

REGION = "us-west-2"  # the canary runs in region B; the fake credentials default to us-east-1
APP = "shop"
HEALTH_NS = f"Pilotlight/Health/{APP}-test"  # each deployment's own (lambdas/failover/names.py)
SWITCH_NS = f"Pilotlight/Failover/{APP}-test"
SWITCH_NAME = "FailoverSwitch"
LATCH = f"/{APP}/test/failover-latch"


# ---------------------------------------------------------------------------------------------
# A scriptable health server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, body (a dict is sent as JSON), headers, and a delay before answering."""

    status: int = 200
    # As lambdas/api/health.py answers in region A: ok, and its database is the writer.
    body: dict[str, Any] | str = field(
        default_factory=lambda: {"status": "ok", "region": "us-east-1", "writer": True}
    )
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Endpoint:
    """What one ``/<name>/health`` path answers: ``script`` first, then ``default`` forever."""

    default: Answer = field(default_factory=Answer)
    script: list[Answer] = field(default_factory=list)
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> Answer:
        with self.lock:
            self.hits += 1
            return self.script.pop(0) if self.script else self.default


class HealthServer:
    """A ThreadingHTTPServer on 127.0.0.1 (port 0) serving ``/web/health`` and ``/api/health``."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {"web": Endpoint(), "api": Endpoint()}
        endpoints = self.endpoints

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.strip("/").split("/")[0]
                endpoint = endpoints.get(name)
                answer = endpoint.next() if endpoint else Answer(404, "no such endpoint")
                time.sleep(answer.delay)
                body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                payload = body.encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in answer.headers:
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the probe gave up on a slow answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a sleeping "slow" answer must not hold up teardown
        # A short poll interval: shutdown() waits up to one interval, at every test's teardown.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}/health"

    def answer(self, name: str, *script: Answer, then: Answer | None = None) -> None:
        """Answer ``script`` in order, then ``then`` (default: 200 ok) for every later request."""
        endpoint = self.endpoints[name]
        endpoint.script = list(script)
        if then is not None:
            endpoint.default = then

    def hits(self, name: str) -> int:
        return self.endpoints[name].hits

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A URL on a port nothing listens on: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/health"


@pytest.fixture
def server() -> Iterator[HealthServer]:
    srv = HealthServer()
    yield srv
    srv.close()


# ---------------------------------------------------------------------------------------------
# AWS and configuration helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(scope="module")
def session() -> boto3.Session:
    """One session for the module: it caches the service models, so each test's clients are cheap."""
    return boto3.Session()


@pytest.fixture
def cloudwatch(aws: None, session: boto3.Session) -> BaseClient:
    return session.client("cloudwatch", region_name=REGION, config=probe.CLIENT_CONFIG)


@pytest.fixture
def ssm(aws: None, session: boto3.Session) -> BaseClient:
    client = session.client("ssm", region_name=REGION, config=probe.CLIENT_CONFIG)
    # The program creates the latch with the stack, in standby.
    client.put_parameter(Name=LATCH, Value=json.dumps({"state": "standby"}), Type="String")
    return client


def base_env(server: HealthServer, **overrides: str | None) -> dict[str, str]:
    env: dict[str, str | None] = {
        "AWS_REGION": REGION,
        "TARGETS": json.dumps(
            [{"name": "web", "url": server.url("web")}, {"name": "api", "url": server.url("api")}]
        ),
        "TIMEOUT_SECONDS": "2",
        "APP": APP,
        "METRIC_NAMESPACE": HEALTH_NS,
        "SWITCH_NAMESPACE": SWITCH_NS,
        "SWITCH_METRIC": SWITCH_NAME,
        "SWITCH_DIMENSIONS": json.dumps({"App": APP}),
        "LATCH_PARAMETER": LATCH,
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def settings(server: HealthServer, **overrides: str | None) -> probe.Settings:
    return probe.Settings.from_env(base_env(server, **overrides))


def put_latch(ssm: BaseClient, state: str) -> None:
    ssm.put_parameter(Name=LATCH, Value=json.dumps({"state": state}), Type="String", Overwrite=True)


def published(name: str | None = None, region: str = REGION) -> list[tuple[str, str, float, dict[str, str]]]:
    """(namespace, metric, value, dimensions) of every datapoint moto stored in ``region``."""
    backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
    return [
        (d.namespace, d.name, float(d.value), {dim.name: dim.value for dim in d.dimensions})
        for d in backend.metric_data
        if name is None or d.name == name
    ]


def value_of(name: str, **dims: str) -> float:
    values = [v for _, n, v, d in published(name) if d == dims]
    assert len(values) == 1, f"{name} {dims}: {published()}"
    return values[0]


def count_calls(client: BaseClient, event: str) -> list[dict[str, Any]]:
    """Record the params of every call matching ``event`` (the call itself goes ahead)."""
    calls: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    client.meta.events.register(event, hook)
    return calls


@dataclass
class _StubHttp:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    content: bytes = b""


def fail_with(client: BaseClient, event: str, code: str, status: int = 400) -> None:
    """Answer every call matching ``event`` with an AWS error, without reaching moto."""

    def hook(**_: Any) -> tuple[_StubHttp, dict[str, Any]]:
        return _StubHttp(status), {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client.meta.events.register(event, hook)


def target(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in result["targets"] if t["name"] == name)


# ---------------------------------------------------------------------------------------------
# Health metrics
# ---------------------------------------------------------------------------------------------


def test_all_healthy_publishes_aggregate_and_per_target_metrics(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    puts = count_calls(cloudwatch, "provide-client-params.cloudwatch.PutMetricData")

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["healthy"] is True
    assert result["errors"] == []
    assert [t["name"] for t in result["targets"]] == ["web", "api"]
    for t in result["targets"]:
        assert t["healthy"] is True
        assert t["status"] == 200
        assert t["error"] is None
        assert t["region"] == "us-east-1"
        assert t["url"] == server.url(t["name"])
        assert t["latency_ms"] > 0
    json.dumps(result)  # the Lambda's answer must serialise

    assert value_of("PrimaryHealthy", App=APP) == 1
    for name in ("web", "api"):
        assert value_of("PrimaryEndpointHealthy", App=APP, Target=name) == 1
        assert value_of("PrimaryEndpointLatency", App=APP, Target=name) == target(result, name)["latency_ms"]
    assert {ns for ns, metric, _, _ in published() if metric.startswith("Primary")} == {HEALTH_NS}
    # The switch has its own namespace here, so it is a second call.
    assert [c["Namespace"] for c in puts] == [HEALTH_NS, SWITCH_NS]

    # Read back through the API too, as the failover alarm will.
    stats = cloudwatch.get_metric_statistics(
        Namespace=HEALTH_NS,
        MetricName="PrimaryHealthy",
        Dimensions=[{"Name": "App", "Value": APP}],
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Minimum"],
    )
    assert [p["Minimum"] for p in stats["Datapoints"]] == [1.0]


def test_one_target_down_makes_the_aggregate_zero(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    server.answer("api", then=Answer(503, {"status": "failed"}))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["healthy"] is False
    api = target(result, "api")
    assert (api["healthy"], api["status"]) == (False, 503)
    assert "HTTP 503" in api["error"]
    assert server.hits("api") == 2  # a 5xx is retried once
    assert value_of("PrimaryHealthy", App=APP) == 0
    assert value_of("PrimaryEndpointHealthy", App=APP, Target="web") == 1
    assert value_of("PrimaryEndpointHealthy", App=APP, Target="api") == 0
    # The endpoint answered, so its latency is still a measurement.
    assert value_of("PrimaryEndpointLatency", App=APP, Target="api") >= 0


def test_a_timeout_is_unhealthy_with_the_error_and_no_latency_datapoint(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    server.answer("api", then=Answer(delay=5.0))

    started = time.monotonic()
    result = probe.run(settings(server, TIMEOUT_SECONDS="0.3"), cloudwatch, ssm)

    # Two attempts of 0.3 s, not the server's 2 x 5 s (a wide margin: a loaded machine is slow).
    assert time.monotonic() - started < 4.0
    api = target(result, "api")
    assert api["healthy"] is False
    assert api["status"] is None
    assert "timed out after 0.3 s" in api["error"]
    assert api["latency_ms"] >= 300
    assert server.hits("api") == 2
    assert result["healthy"] is False
    assert value_of("PrimaryHealthy", App=APP) == 0
    assert value_of("PrimaryEndpointHealthy", App=APP, Target="api") == 0
    assert [d for _, _, _, d in published("PrimaryEndpointLatency")] == [{"App": APP, "Target": "web"}]


def test_a_5xx_then_200_is_healthy_thanks_to_the_retry(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    server.answer("web", Answer(502, "bad gateway"))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert server.hits("web") == 2
    assert target(result, "web")["healthy"] is True
    assert result["healthy"] is True
    assert value_of("PrimaryHealthy", App=APP) == 1


def test_a_single_attempt_does_not_retry(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    server.answer("web", Answer(503))

    result = probe.run(settings(server, ATTEMPTS="1"), cloudwatch, ssm)

    assert server.hits("web") == 1
    assert result["healthy"] is False


def test_a_refused_connection_is_unhealthy(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    targets = json.dumps(
        [{"name": "web", "url": server.url("web")}, {"name": "api", "url": closed_port_url()}]
    )

    result = probe.run(settings(server, TARGETS=targets), cloudwatch, ssm)

    api = target(result, "api")
    assert (api["healthy"], api["status"]) == (False, None)
    assert "connection failed" in api["error"]
    assert "Refused" in api["error"]
    assert value_of("PrimaryHealthy", App=APP) == 0
    assert value_of("PrimaryEndpointHealthy", App=APP, Target="api") == 0


@pytest.mark.parametrize(
    ("answer", "healthy", "region", "error"),
    [
        (Answer(200, {"status": "ok", "region": "eu-west-1"}), True, "eu-west-1", None),
        (Answer(200, {"region": "us-east-1", "role": "primary"}), True, "us-east-1", None),
        (Answer(200, "OK"), True, None, None),
        (Answer(200, {"status": "degraded", "region": "us-east-1"}), False, "us-east-1", "body status"),
        (Answer(404, "not found"), False, None, "HTTP 404"),
        (Answer(204, ""), False, None, "HTTP 204"),
        (Answer(302, "", headers=(("Location", "/api/health"),)), False, None, "HTTP 302"),
    ],
    ids=[
        "ok-with-region",
        "no-status-key",
        "plain-text",
        "status-not-ok",
        "404",
        "204",
        "redirect-not-followed",
    ],
)
def test_answers_other_than_5xx_are_judged_once(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    answer: Answer,
    healthy: bool,
    region: str | None,
    error: str | None,
) -> None:
    server.answer("web", then=answer)

    web = target(probe.run(settings(server), cloudwatch, ssm), "web")

    assert server.hits("web") == 1
    assert (web["healthy"], web["status"], web["region"]) == (healthy, answer.status, region)
    if error is None:
        assert web["error"] is None
    else:
        assert error in web["error"]
    assert value_of("PrimaryEndpointHealthy", App=APP, Target="web") == (1 if healthy else 0)


# ---------------------------------------------------------------------------------------------
# The failover switch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latch", "switch"),
    [("active", 1), ("standby", 0), ("failing-back", None)],
    ids=["active", "standby", "other-state"],
)
def test_the_switch_follows_the_latch(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, latch: str, switch: int | None
) -> None:
    put_latch(ssm, latch)

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] == switch
    assert result["errors"] == []
    expected = [] if switch is None else [(SWITCH_NS, SWITCH_NAME, float(switch), {"App": APP})]
    assert published(SWITCH_NAME) == expected


def test_an_absent_latch_keeps_the_switch_while_the_journal_holds_region_a(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    """A deleted latch says nothing about where the writer is: after a failover (the journal's mark)
    region A's old writer may say it is the writer; fail safe, the switch stays."""
    ssm.delete_parameter(Name=LATCH)
    put_journal(ssm, {"primaryStoppedAt": SINCE})

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] is None
    assert [e["code"] for e in result["errors"]] == ["LatchMissing"]
    assert published(SWITCH_NAME) == []


@pytest.mark.parametrize(
    "body",
    [
        {"status": "ok", "region": "us-east-1", "writer": False},
        {"status": "ok", "region": "us-east-1"},
    ],
    ids=["not-the-writer", "writer-unknown"],
)
def test_standby_releases_the_switch_only_when_region_a_holds_the_writer(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, body: dict[str, Any]
) -> None:
    """Standby alone is not enough: region A must answer that its database is the writer."""
    server.answer("web", then=Answer(200, body))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] is None
    assert published(SWITCH_NAME) == []


def test_standby_keeps_the_switch_while_region_a_is_down(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    server.answer("api", then=Answer(503, {"status": "down"}))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] is None
    assert published(SWITCH_NAME) == []


def test_the_switch_shares_the_call_when_the_namespaces_match(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    put_latch(ssm, "active")
    puts = count_calls(cloudwatch, "provide-client-params.cloudwatch.PutMetricData")

    result = probe.run(settings(server, SWITCH_NAMESPACE=HEALTH_NS), cloudwatch, ssm)

    assert result["switch"] == 1
    assert len(puts) == 1
    assert {m["MetricName"] for m in puts[0]["MetricData"]} == {
        "PrimaryEndpointHealthy",
        "PrimaryEndpointLatency",
        "PrimaryHealthy",
        SWITCH_NAME,
    }
    assert published(SWITCH_NAME) == [(HEALTH_NS, SWITCH_NAME, 1.0, {"App": APP})]


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "InternalServerError"])
def test_an_unreadable_latch_never_moves_the_switch(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    put_latch(ssm, "active")
    fail_with(ssm, "before-call.ssm.GetParameter", code)
    caplog.set_level(logging.INFO, logger=probe.LOGGER.name)

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] is None
    assert [(e["stage"], e["code"]) for e in result["errors"]] == [("latch", code)]
    assert published(SWITCH_NAME) == []
    # The health metrics are still published.
    assert value_of("PrimaryHealthy", App=APP) == 1
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.levelno == logging.ERROR]
    assert [(line["message"], line["error_code"], line["parameter"]) for line in logged] == [
        ("latch unreadable; switch metric not published", code, LATCH)
    ]


@pytest.mark.parametrize("value", ["active", '["active"]', '{"state": 1}', '{"since": "yesterday"}'])
def test_a_malformed_latch_never_moves_the_switch(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, value: str
) -> None:
    ssm.put_parameter(Name=LATCH, Value=value, Type="String", Overwrite=True)
    put_journal(ssm, {"primaryStoppedAt": SINCE})  # a failover holds region A

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] is None
    assert [e["code"] for e in result["errors"]] == ["MalformedLatch"]
    assert published(SWITCH_NAME) == []


def test_a_refused_put_metric_data_fails_the_run(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    fail_with(cloudwatch, "before-call.cloudwatch.PutMetricData", "AccessDenied", status=403)

    with pytest.raises(probe.PublishError, match="AccessDenied") as raised:
        probe.run(settings(server), cloudwatch, ssm)

    errors = raised.value.result["errors"]
    assert [(e["stage"], e["namespace"], e["code"]) for e in errors] == [
        ("publish", HEALTH_NS, "AccessDenied"),
        ("publish", SWITCH_NS, "AccessDenied"),
    ]
    assert raised.value.result["healthy"] is True


# ---------------------------------------------------------------------------------------------
# The handler and its configuration
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fresh_handler(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, str]], dict[str, Any]]:
    """Call the Lambda handler with exactly ``env`` (and no clients left over from another test)."""
    monkeypatch.setattr(handler_module, "_CLIENTS", {})

    def call(env: dict[str, str]) -> dict[str, Any]:
        for key in (
            "TARGETS",
            "TIMEOUT_SECONDS",
            "ATTEMPTS",
            "METRIC_NAMESPACE",
            "APP",
            "SWITCH_NAMESPACE",
            "SWITCH_METRIC",
            "SWITCH_DIMENSIONS",
            "LATCH_PARAMETER",
            "LOG_LEVEL",
            "AWS_REGION",
        ):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return handler_module.handler({"source": "aws.events"}, None)

    return call


def test_the_handler_publishes_in_its_own_region(
    server: HealthServer, aws: None, fresh_handler: Callable[[dict[str, str]], dict[str, Any]]
) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=LATCH, Value=json.dumps({"state": "active"}), Type="String"
    )

    result = fresh_handler(base_env(server))

    assert (result["healthy"], result["switch"], result["errors"]) == (True, 1, [])
    assert value_of("PrimaryHealthy", App=APP) == 1
    assert published(region="us-east-1") == []  # not AWS_DEFAULT_REGION


def test_defaults() -> None:
    s = probe.Settings.from_env(
        {
            "AWS_REGION": REGION,
            "TARGETS": '[{"name": "web", "url": "https://web.example.com/health"}]',
            "APP": APP,
            "METRIC_NAMESPACE": HEALTH_NS,
            "SWITCH_NAMESPACE": SWITCH_NS,
            "SWITCH_METRIC": SWITCH_NAME,
            "SWITCH_DIMENSIONS": "{}",
            "LATCH_PARAMETER": LATCH,
        }
    )
    assert (s.timeout_seconds, s.attempts, s.metric_namespace, s.log_level) == (5.0, 2, HEALTH_NS, "INFO")
    assert s.targets == (probe.Target("web", "https://web.example.com/health"),)
    assert s.switch == probe.SwitchMetric(SWITCH_NS, SWITCH_NAME, {})


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"TARGETS": None}, "TARGETS"),
        ({"TARGETS": "web=https://x/health"}, "TARGETS"),
        ({"TARGETS": '{"name": "web", "url": "https://x/health"}'}, "TARGETS"),
        ({"TARGETS": "[]"}, "TARGETS"),
        ({"TARGETS": '["https://x/health"]'}, "TARGETS[0]"),
        ({"TARGETS": '[{"name": "web"}]'}, "TARGETS[0]"),
        ({"TARGETS": '[{"url": "https://x/health"}]'}, "TARGETS[0]"),
        ({"TARGETS": '[{"name": "web", "url": "file:///etc/passwd"}]'}, "TARGETS[0].url"),
        (
            {
                "TARGETS": '[{"name": "web", "url": "https://a/health"}, {"name": "web", "url": "https://b/health"}]'
            },
            "TARGETS",
        ),
        ({"TIMEOUT_SECONDS": "five"}, "TIMEOUT_SECONDS"),
        ({"TIMEOUT_SECONDS": "0"}, "TIMEOUT_SECONDS"),
        ({"TIMEOUT_SECONDS": "-1"}, "TIMEOUT_SECONDS"),
        ({"TIMEOUT_SECONDS": "nan"}, "TIMEOUT_SECONDS"),
        ({"TIMEOUT_SECONDS": "31"}, "TIMEOUT_SECONDS"),
        ({"ATTEMPTS": "0"}, "ATTEMPTS"),
        ({"ATTEMPTS": "1.5"}, "ATTEMPTS"),
        ({"ATTEMPTS": "twice"}, "ATTEMPTS"),
        ({"ATTEMPTS": "5", "TIMEOUT_SECONDS": "10"}, "ATTEMPTS x TIMEOUT_SECONDS"),
        ({"METRIC_NAMESPACE": "AWS/Route53"}, "METRIC_NAMESPACE"),
        # No shared default: PrimaryHealthy starts the automated failover, and the deployment's own
        # namespace is the only one its role may write (issue 12, ns21).
        ({"METRIC_NAMESPACE": None}, "METRIC_NAMESPACE"),
        ({"APP": None}, "APP"),
        ({"AWS_REGION": None}, "AWS_REGION"),
        ({"SWITCH_NAMESPACE": None}, "SWITCH_NAMESPACE"),
        ({"SWITCH_METRIC": ""}, "SWITCH_METRIC"),
        ({"SWITCH_DIMENSIONS": None}, "SWITCH_DIMENSIONS"),
        ({"SWITCH_DIMENSIONS": "App=shop"}, "SWITCH_DIMENSIONS"),
        ({"SWITCH_DIMENSIONS": '[{"Name": "App", "Value": "shop"}]'}, "SWITCH_DIMENSIONS"),
        ({"SWITCH_DIMENSIONS": '{"App": 1}'}, "SWITCH_DIMENSIONS"),
        ({"LATCH_PARAMETER": None}, "LATCH_PARAMETER"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ],
)
def test_bad_configuration_fails_before_any_probe_or_aws_call(
    server: HealthServer,
    aws: None,
    fresh_handler: Callable[[dict[str, str]], dict[str, Any]],
    overrides: dict[str, str | None],
    variable: str,
) -> None:
    with pytest.raises(probe.ConfigurationError) as raised:
        fresh_handler(base_env(server, **overrides))

    message = str(raised.value)
    assert message.startswith(variable), message
    assert "must" in message
    assert server.hits("web") == server.hits("api") == 0
    assert published(region=REGION) == []
    assert handler_module._CLIENTS == {}  # no client was even made


# ---------------------------------------------------------------------------------------------
# A fence the failover left pending (region A unreachable then) is completed when region A answers
# ---------------------------------------------------------------------------------------------


class RecordingLambda:
    """Stands in for the canary's Lambda client: records ``invoke`` calls, or refuses them."""

    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refuse = refuse

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        if self.refuse:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": self.refuse, "Message": "no"}}, "Invoke")
        self.calls.append(kwargs)
        return {"StatusCode": 202}


@pytest.mark.parametrize(
    ("latch", "web", "asks"),
    [
        ("active", Answer(), True),  # region A serves again under an active latch: fence it
        # region A answers 503 (its web tier at zero) while its functions may still write: ask too;
        # the runbook acts only on a pending fence
        ("active", Answer(status=503, body={"error": "no healthy targets"}), True),
        ("standby", Answer(), False),  # no failover: region A is meant to serve
    ],
    ids=["active-and-region-a-serves", "active-and-region-a-answers-503", "standby"],
)
def test_one_writer_the_canary_asks_the_runbook_to_fence_a_region_a_that_serves_again(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, latch: str, web: Answer, asks: bool
) -> None:
    """One writer: a region A that was unreachable during the failover and serves again is fenced
    within the canary's minute (the runbook's fence_primary, only if the journal says it is pending)."""
    put_latch(ssm, latch)
    server.answer("web", then=web)
    server.answer("api", then=web)
    fn = RecordingLambda()

    result = probe.run(settings(server, RUNBOOK_FUNCTION="app-runbook"), cloudwatch, ssm, lambda_client=fn)

    assert result["errors"] == []
    if not asks:
        assert fn.calls == []
        return
    assert len(fn.calls) == 1
    call = fn.calls[0]
    assert (call["FunctionName"], call["InvocationType"]) == ("app-runbook", "Event")
    event = json.loads(call["Payload"])
    assert (event["runbook"], event["step"]) == ("failover", "fence_primary")
    assert event["params"]["onlyIfPending"] is True


def test_a_refused_fence_request_is_reported_and_the_switch_still_published(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    put_latch(ssm, "active")

    result = probe.run(
        settings(server, RUNBOOK_FUNCTION="app-runbook"),
        cloudwatch,
        ssm,
        lambda_client=RecordingLambda("AccessDenied"),
    )

    assert [(e["stage"], e["code"]) for e in result["errors"]] == [("fence", "AccessDenied")]
    assert result["switch"] == 1
    assert published(SWITCH_NAME) == [(SWITCH_NS, SWITCH_NAME, 1.0, {"App": APP})]


@pytest.mark.parametrize("latch", ["garbled", "absent"])
def test_one_writer_an_unreadable_latch_still_asks_for_the_pending_fence(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, latch: str
) -> None:
    """One writer (soak seed 504): the pending fence is recorded in the run journal, not the latch.
    A garbled or deleted latch keeps the switch where it is, and must not also leave a region A that
    answers again unfenced (the runbook fences only if its journal says a fence is pending)."""
    if latch == "garbled":
        ssm.put_parameter(Name=LATCH, Value="{not json", Type="String", Overwrite=True)
    else:
        ssm.delete_parameter(Name=LATCH)
    server.answer("web", then=Answer())
    server.answer("api", then=Answer())
    put_journal(ssm, {"fencePending": SINCE})
    fn = RecordingLambda()

    result = probe.run(settings(server, RUNBOOK_FUNCTION="app-runbook"), cloudwatch, ssm, lambda_client=fn)

    assert result["switch"] is None
    assert published(SWITCH_NAME) == []
    assert len(fn.calls) == 1
    event = json.loads(fn.calls[0]["Payload"])
    assert (event["step"], event["params"]["onlyIfPending"]) == ("fence_primary", True)


# ---------------------------------------------------------------------------------------------
# Whatever the latch says, the run journal says whether a failover holds region A
# ---------------------------------------------------------------------------------------------

JOURNAL = f"{LATCH}-journal"
SINCE = "2026-11-30T12:00:00+00:00"


def put_journal(ssm: BaseClient, value: dict[str, Any] | str) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    ssm.put_parameter(Name=JOURNAL, Value=text, Type="String", Overwrite=True)


def refuse_journal_reads(ssm: BaseClient, code: str) -> None:
    """Answer GetParameter of the journal (only) with an AWS error; the latch still reads."""

    def hook(params: dict[str, Any], **_: Any) -> tuple[_StubHttp, dict[str, Any]] | None:
        body = params.get("body") or b""
        if json.loads(body.decode() if isinstance(body, bytes) else body).get("Name") != JOURNAL:
            return None
        error = {"Code": code, "Message": f"injected {code}"}
        return _StubHttp(400), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    ssm.meta.events.register("before-call.ssm.GetParameter", hook)


@pytest.mark.parametrize(
    ("journal", "asks", "error"),
    [
        ({"fencePending": SINCE}, True, None),  # region A was dark at the failover: fence it now
        ({"primaryStoppedAt": SINCE}, False, None),  # fenced by the failover; nothing pending
        ({"fencePending": SINCE, "primaryStoppedAt": SINCE}, True, None),
        ("{not json", True, "MalformedJournal"),  # cannot tell: fail safe
        (None, True, "AccessDeniedException"),
    ],
    ids=["fence-pending", "fenced", "both", "journal-garbled", "journal-unreadable"],
)
def test_traffic_follows_the_writer_a_standby_latch_never_releases_to_a_region_a_the_journal_holds(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    journal: dict[str, Any] | str | None,
    asks: bool,
    error: str | None,
) -> None:
    """Traffic follows the writer and one writer (seeds 20, 48): after a failover region A's old RDS
    primary comes back a standalone writer and says so. A latch set to standby by hand must not hand
    it traffic beside region B's writer: while the run journal says a failover took region A out
    (or cannot be read), the switch stays where it is, and a pending fence is asked for whatever the
    latch says (the runbook acts only on a pending fence)."""
    if journal is None:
        refuse_journal_reads(ssm, "AccessDeniedException")
    else:
        put_journal(ssm, journal)
    fn = RecordingLambda()

    result = probe.run(settings(server, RUNBOOK_FUNCTION="app-runbook"), cloudwatch, ssm, lambda_client=fn)

    assert result["healthy"] and all(t["writer"] is True for t in result["targets"]), "region A says writer"
    assert result["switch"] is None, "a standby latch released the switch to region A the journal holds"
    assert published(SWITCH_NAME) == []
    assert [json.loads(c["Payload"])["step"] for c in fn.calls] == (["fence_primary"] if asks else [])
    assert [(e["stage"], e["code"]) for e in result["errors"]] == ([("journal", error)] if error else [])


@pytest.mark.parametrize("latch", ["standby", "failing-back", "garbled", "absent"])
def test_one_writer_a_pending_fence_is_asked_for_whatever_the_latch_says(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, latch: str
) -> None:
    """One writer (seed 48, aurora-global: the fence also keeps the unplanned-failover snapshot): the
    pending fence is recorded in the run journal; a latch set to standby, another state, garbled or
    deleted does not keep a region A that answers again from being fenced. The switch stays."""
    if latch == "garbled":
        ssm.put_parameter(Name=LATCH, Value="{not json", Type="String", Overwrite=True)
    elif latch == "absent":
        ssm.delete_parameter(Name=LATCH)
    else:
        put_latch(ssm, latch)
    put_journal(ssm, {"fencePending": SINCE})
    server.answer("web", then=Answer(status=503, body={"error": "no healthy targets"}))
    fn = RecordingLambda()

    result = probe.run(settings(server, RUNBOOK_FUNCTION="app-runbook"), cloudwatch, ssm, lambda_client=fn)

    assert result["switch"] is None
    assert len(fn.calls) == 1
    event = json.loads(fn.calls[0]["Payload"])
    assert (event["step"], event["params"]["onlyIfPending"]) == ("fence_primary", True)


def test_standby_releases_once_the_journal_holds_region_a_no_more(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient
) -> None:
    """Control: a journal a failback (or `latch release`) left without the failover's marks does not
    hold the switch: standby over region A's writer releases it, and nothing is fenced."""
    put_journal(ssm, {"retainedPrimaries": []})
    fn = RecordingLambda()

    result = probe.run(settings(server, RUNBOOK_FUNCTION="app-runbook"), cloudwatch, ssm, lambda_client=fn)

    assert result["switch"] == 0 and result["errors"] == [] and fn.calls == []
    assert published(SWITCH_NAME) == [(SWITCH_NS, SWITCH_NAME, 0.0, {"App": APP})]


def test_the_canary_reads_the_runbook_s_journal_and_marks() -> None:
    """The canary and the runbook name the journal and the failover's marks alike (the canary does not
    import the runbook's steps)."""
    from types import SimpleNamespace
    from typing import cast

    from lambdas.failover import journal, steps
    from lambdas.failover.context import RunbookContext

    assert probe.FAILOVER_MARKS == steps.FAILOVER_MARKS
    assert probe.WRITER_MOVE_MARK == steps.WRITER_MOVE_MARK
    ctx = cast(RunbookContext, SimpleNamespace(latch_parameter_name=LATCH))
    assert (
        journal._journal_name(ctx)
        == settings_for_latch().journal_parameter
        == f"{LATCH}{probe.JOURNAL_SUFFIX}"
    )


def settings_for_latch() -> probe.Settings:
    switch = probe.SwitchMetric(SWITCH_NS, SWITCH_NAME, {"App": APP})
    return probe.Settings(REGION, (probe.Target("web", "http://127.0.0.1/health"),), APP, switch, LATCH)


@pytest.mark.parametrize(
    ("journal", "switch", "error"),
    [
        ({}, 0, None),  # no run ever, or a completed failback: the writer is region A's
        ({"retainedPrimaries": []}, 0, None),
        ({"fencePending": SINCE}, None, None),  # a failover took region A out
        ({"primaryStoppedAt": SINCE}, None, None),
        ("{not json", None, "MalformedJournal"),  # cannot tell: fail safe
    ],
    ids=["no-journal", "failback-done", "fence-pending", "fenced", "journal-garbled"],
)
def test_traffic_follows_the_writer_standby_keeps_the_switch_released_while_region_a_is_dark(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    journal: dict[str, Any] | str,
    switch: int | None,
    error: str | None,
) -> None:
    """Traffic follows the writer (soak seed 2): a failback releases the switch and completes; region A
    goes dark within the minute, before the switch alarm (Maximum over 60 s) sees the release, so the
    alarm stays in ALARM, then INSUFFICIENT_DATA, and Route 53's ``LastKnownStatus`` keeps the switch
    thrown. A canary that publishes nothing while region A is dark left it thrown for good: region A
    came back holding the writer and Route 53 kept answering region B, scaled to zero. Under standby
    with no failover in the journal the writer is region A's, and Route 53's endpoint checks already
    keep traffic off a dark region A, so the canary holds the switch released. A journal that holds
    region A (or cannot be read) still keeps the switch where it is."""
    if journal:
        put_journal(ssm, journal)
    dark = json.dumps([{"name": "web", "url": closed_port_url()}, {"name": "api", "url": closed_port_url()}])

    result = probe.run(settings(server, TARGETS=dark), cloudwatch, ssm)

    assert all(t["status"] is None for t in result["targets"]), "region A answers nothing"
    assert result["switch"] == switch
    assert published(SWITCH_NAME) == ([] if switch is None else [(SWITCH_NS, SWITCH_NAME, 0.0, {"App": APP})])
    assert [(e["stage"], e["code"]) for e in result["errors"]] == ([("journal", error)] if error else [])


@pytest.mark.parametrize("latch", ["garbled", "absent"])
@pytest.mark.parametrize(
    ("body", "journal", "switch"),
    [
        ({"status": "ok", "region": "us-east-1", "writer": True}, {}, 0),
        ({"status": "ok", "region": "us-east-1", "writer": True}, {"retainedPrimaries": []}, 0),
        ({"status": "ok", "region": "us-east-1", "writer": False}, {}, None),
        ({"status": "ok", "region": "us-east-1", "writer": True}, {"primaryStoppedAt": SINCE}, None),
        ({"status": "ok", "region": "us-east-1", "writer": True}, "{not json", None),
    ],
    ids=["writer-no-journal", "writer-failback-done", "not-the-writer", "journal-holds-a", "journal-garbled"],
)
def test_traffic_follows_the_writer_a_tampered_latch_releases_on_the_journal_and_region_a_s_word(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    latch: str,
    body: dict[str, Any],
    journal: dict[str, Any] | str,
    switch: int | None,
) -> None:
    """Traffic follows the writer (soak seed 39): a failback released the switch at 13:49:10 and set the
    latch to standby, in the minute the canary had put 1 under the active latch (the alarm's Maximum
    saw 1); the latch was then deleted. A canary that publishes nothing without a latch left the
    switch thrown for good (INSUFFICIENT_DATA, then Route 53's ``LastKnownStatus``): region A held
    the writer and Route 53 answered region B, scaled to zero. A deleted or garbled latch says
    nothing; the journal (no failover holds region A) and region A's answer (its database is the
    writer) do, as under standby. Anything less keeps the switch where it is."""
    if latch == "garbled":
        ssm.put_parameter(Name=LATCH, Value="{not json", Type="String", Overwrite=True)
    else:
        ssm.delete_parameter(Name=LATCH)
    if journal:
        put_journal(ssm, journal)
    server.answer("web", then=Answer(200, body))
    server.answer("api", then=Answer(200, body))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] == switch
    assert published(SWITCH_NAME) == ([] if switch is None else [(SWITCH_NS, SWITCH_NAME, 0.0, {"App": APP})])
    assert result["errors"][0]["stage"] == "latch"


WRITER = {"status": "ok", "region": "us-east-1", "writer": True}
MOVED = {probe.WRITER_MOVE_MARK: SINCE}


@pytest.mark.parametrize(
    ("journal", "web", "api", "switch"),
    [
        # The failback's mark, region A answering healthy as the writer: traffic goes back to it.
        (MOVED, Answer(200, WRITER), Answer(200, WRITER), 0),
        # Marks of the failover it undid are still there (unfence_primary did not run): the mark decides.
        ({**MOVED, "primaryStoppedAt": SINCE}, Answer(200, WRITER), Answer(200, WRITER), 0),
        # No mark: region A's word is not enough (an old RDS primary back from an outage says writer).
        ({"primaryStoppedAt": SINCE}, Answer(200, WRITER), Answer(200, WRITER), 1),
        ({}, Answer(200, WRITER), Answer(200, WRITER), 1),
        # The mark, but the move has not happened (region A is not the writer yet) or one target fails:
        # the switch stays where it is (region B is drained, or never held the writer: seed 2036).
        (MOVED, Answer(200, {**WRITER, "writer": False}), Answer(200, WRITER), None),
        (MOVED, Answer(200, WRITER), Answer(503, {"error": "no healthy targets"}), None),
        (MOVED, Answer(200, {"status": "ok", "region": "us-east-1"}), Answer(200, WRITER), None),
        ("{not json", Answer(200, WRITER), Answer(200, WRITER), 1),
    ],
    ids=[
        "moved-writer",
        "moved-fence-marks-left",
        "no-mark-failover",
        "no-mark",
        "moved-not-writer-yet",
        "moved-one-target-down",
        "moved-writer-unknown",
        "journal-garbled",
    ],
)
def test_traffic_follows_the_writer_an_active_latch_gives_way_to_a_failback_s_writer_move(
    server: HealthServer,
    cloudwatch: BaseClient,
    ssm: BaseClient,
    journal: dict[str, Any] | str,
    web: Answer,
    api: Answer,
    switch: int | None,
) -> None:
    """Traffic follows the writer (soak seeds 98 aurora-global, 615 rds-replica): a CLI failback killed
    after ``switch_writer`` moved the writer back to region A, before ``clear_latch``, left the latch
    active; the canary republished 1 every minute and Route 53 answered region B, drained by the
    failback, while region A held the writer. The failback writes ``WRITER_MOVE_MARK`` before it asks
    AWS to move the writer (region B drained at zero lag); with it set, and only then, every region-A
    target answering healthy that its database is the writer puts the switch to 0. With the mark and
    less than that, the switch stays where it is (nothing published): region B is drained (or, the
    writer never having left region A, its database refuses writes), so re-throwing it only takes
    traffic from a region A coming up with the writer behind a switch the failback released (soak seed
    2036). Without the mark, the active latch's 1."""
    put_latch(ssm, "active")
    put_journal(ssm, journal)
    server.answer("web", then=web)
    server.answer("api", then=api)

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] == switch
    expected = [] if switch is None else [(SWITCH_NS, SWITCH_NAME, float(switch), {"App": APP})]
    assert published(SWITCH_NAME) == expected


@pytest.mark.parametrize("latch", ["garbled", "absent"])
def test_traffic_follows_the_writer_a_tampered_latch_releases_to_a_failback_s_moved_writer(
    server: HealthServer, cloudwatch: BaseClient, ssm: BaseClient, latch: str
) -> None:
    """As above with the latch deleted or garbled after the move: the journal still holds the
    failover's marks (``unfence_primary`` had not run), which alone keep the switch; the failback's
    mark says region A's writer is the one the failback moved back, so its word releases it."""
    if latch == "garbled":
        ssm.put_parameter(Name=LATCH, Value="{not json", Type="String", Overwrite=True)
    else:
        ssm.delete_parameter(Name=LATCH)
    put_journal(ssm, {**MOVED, "primaryStoppedAt": SINCE})
    server.answer("web", then=Answer(200, WRITER))
    server.answer("api", then=Answer(200, WRITER))

    result = probe.run(settings(server), cloudwatch, ssm)

    assert result["switch"] == 0
    assert published(SWITCH_NAME) == [(SWITCH_NS, SWITCH_NAME, 0.0, {"App": APP})]
