"""The local drill's API functions: the real handler ``lambdas.api.handler.handler``, one instance per region.

The drill's client does not write the ledger itself: each payment is an API Gateway proxy event
(REST API, payload format 1.0) for ``POST /payments`` handed to the region's function, and the
function's answer is what the client was told. Reads are ``GET /payments/{id}`` events.

**The environment** is the one the Pulumi components give the function: the variables of the
synthesized ``aws:lambda/function:Function`` whose handler is ``lambdas.api.handler.handler`` in
that region's stack (``TABLE_NAME``, ``RECEIPTS_BUCKET``, ``RECEIPTS_KMS_KEY_ID``, ``DB_MODE``,
``DB_INSTANCE_ID`` or ``GLOBAL_CLUSTER_ID``/``DB_CLUSTER_ARN``, ``DB_SECRET_ARN``, ``DB_NAME``,
``DB_HOST``/``DB_PORT``/``DB_SSLMODE`` on the driver path, ``STACK_ROLE``, ``LATCH_*``), with the
values AWS only knows after deploy taken from the emulated world: the secret the world holds in
that region, the KMS key, the bucket, the instance's endpoint name
(:func:`automation.emulator.network.instance_endpoint`). Lambda adds its reserved variables
(``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``AWS_LAMBDA_FUNCTION_NAME``, the execution role's
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``;
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime);
the drill adds ``AWS_ENDPOINT_URL`` (the SDKs' documented endpoint override,
https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html) so its SDK calls reach
the emulator.

**Two function instances in one process.** In AWS each region's function runs in execution
environments of its own, and what the handler keeps at module level (``handler._CLIENTS``: its
boto3 session and clients, the secret it read, the ledger-ready mark, the last latch read) lives
as long as one environment (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html).
Here both run in the drill's process, so an :class:`ApiFunction` is one warm execution environment:
during its invocation ``os.environ`` holds exactly the process's non-AWS variables plus the
function's environment (no variable of the other region's function, no ``AWS_*`` of the drill's),
and ``handler._CLIENTS`` is the instance's own (None until its first invocation: a cold start makes
it). Both are put back after each invocation. Invocations are serialized by one lock
(``os.environ`` and module globals are the process's), as one environment serves one request at a time.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from automation import synth

if TYPE_CHECKING:
    from automation.drill_world import Deployment, Synthesized

API_HANDLER = "lambdas.api.handler.handler"
"""The handler the program configures for the payments function (components/serverless.py)."""

_INVOKE = threading.Lock()
"""One invocation at a time in this process: ``os.environ`` and the handler's globals are shared."""

_RESERVED_PREFIXES = ("AWS_", "_X_AMZN", "LAMBDA_")


@dataclass(frozen=True)
class Answer:
    """What API Gateway returned for one request to a region's function."""

    region: str
    method: str
    path: str
    status: int
    body: dict[str, Any]
    reached: tuple[str, ...] = ()
    """The database copies (ARNs) the function's connections or Data API calls reached."""

    @property
    def acknowledged(self) -> bool:
        """2xx: the client was told the payment is recorded."""
        return 200 <= self.status < 300

    @property
    def reason(self) -> str:
        """Why a request was refused: the API's ``reason`` (``not_writer``...), else its status."""
        if self.acknowledged:
            return "ok"
        return str(self.body.get("reason") or self.body.get("error") or self.status)


def synthesized_environment(names: Synthesized, region: str) -> dict[str, str]:
    """The API function's environment as the stack of ``region`` declares it (values may be computed)."""
    stack = names.primary if region == names.context["primaryRegion"] else names.dr
    functions = [
        f for f in stack.by_type("aws:lambda/function:Function") if f.inputs.get("handler") == API_HANDLER
    ]
    if len(functions) != 1:
        raise ValueError(f"{stack.stack} stack: {len(functions)} functions with handler {API_HANDLER}")
    variables = (functions[0].inputs.get("environment") or {}).get("variables") or {}
    return {str(k): str(v) for k, v in variables.items()}


def resolve_environment(env: Mapping[str, str], dep: Deployment, region: str) -> dict[str, str]:
    """The synthesized environment with what AWS assigns at deploy taken from the emulated world.

    Only computed values are replaced, each by the emulated resource it names; a computed value the
    drill does not know is an error (a new variable the drill would otherwise pass on garbled).
    """
    from automation.emulator.network import instance_endpoint
    from components.ledger_access import CA_BUNDLE_FUNCTION_PATH

    ctx = dep.context
    primary = region == dep.region_a
    known = {
        "DB_SECRET_ARN": dep.secrets[region],
        "RECEIPTS_BUCKET": ctx["primaryBucketName" if primary else "drBucketName"],
        "RECEIPTS_KMS_KEY_ID": dep.kms_keys[region],
        "DB_CLUSTER_ARN": dep.databases[region],
    }
    out: dict[str, str] = {}
    for name, value in env.items():
        if name == "DB_SSLROOTCERT" and value == CA_BUNDLE_FUNCTION_PATH:
            # database.caBundle: the function verifies the server against AWS's RDS bundle in its
            # archive. The emulated servers' certificates are signed by the emulator's CA, its stand-in
            # for AWS's (automation/emulator/network.py), so the drill's function trusts that one.
            if dep.network is None:
                raise ValueError("DB_SSLROOTCERT: the drill has no emulated RDS network to verify against")
            out[name] = dep.network.ca_file
        elif synth.COMPUTED not in value:
            out[name] = value
        elif name == "DB_HOST":
            out[name] = instance_endpoint(env["DB_INSTANCE_ID"], region)
        elif name in known:
            out[name] = known[name]
        else:
            raise ValueError(f"{name}: computed value {synth.show(value)} has no emulated counterpart")
    if "DB_CLUSTER_ARN" in out and out["DB_CLUSTER_ARN"] != dep.databases[region]:
        raise ValueError(
            f"DB_CLUSTER_ARN {out['DB_CLUSTER_ARN']} is not the emulated {dep.databases[region]}"
        )
    return out


class ApiFunction:
    """One region's payments function: one warm execution environment of the real handler."""

    def __init__(self, region: str, name: str, environment: Mapping[str, str], endpoint: str) -> None:
        self.region = region
        self.name = name
        self.environment = {
            **environment,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            # The execution role's credentials (the emulator accepts any).
            "AWS_ACCESS_KEY_ID": f"drill-{region}",
            "AWS_SECRET_ACCESS_KEY": "drill",
            "AWS_SESSION_TOKEN": "drill",
            "AWS_ENDPOINT_URL": endpoint,
        }
        self.clients: Any = None
        """The handler's module state in this environment (``handler._CLIENTS``)."""
        self.invocations = 0

    @contextmanager
    def _environment(self) -> Iterator[None]:
        from lambdas.api import handler as module

        saved_env = dict(os.environ)
        saved_clients = module._CLIENTS
        os.environ.clear()
        os.environ.update({k: v for k, v in saved_env.items() if not k.startswith(_RESERVED_PREFIXES)})
        os.environ.update(self.environment)
        module._CLIENTS = self.clients
        try:
            yield
        finally:
            self.clients = module._CLIENTS
            module._CLIENTS = saved_clients
            os.environ.clear()
            os.environ.update(saved_env)

    def invoke(self, event: dict[str, Any], reached: list[str] | None = None) -> dict[str, Any]:
        """Run the handler on ``event`` as Lambda would in this environment; its raw response."""
        from lambdas.api.handler import handler

        context = SimpleNamespace(
            aws_request_id=str(uuid.uuid4()),
            function_name=self.name,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{synth.ACCOUNT_ID}:function:{self.name}",
            get_remaining_time_in_millis=lambda: 29_000,
        )
        with _INVOKE, self._environment():
            self.invocations += 1
            if reached is not None:
                reached.clear()
            return handler(event, context)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, reached: list[str] | None = None) -> Answer:  # fmt: skip
        """One API Gateway request; ``reached`` is the network's log of connections (cleared first)."""
        response = self.invoke(api_event(method, path, body), reached)
        try:
            payload = json.loads(response.get("body") or "{}")
        except ValueError:
            payload = {"raw": response.get("body")}
        return Answer(
            self.region,
            method,
            path,
            int(response.get("statusCode", 0)),
            payload if isinstance(payload, dict) else {"body": payload},
            tuple(reached or ()),
        )


def api_event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0) for ``/payments`` or ``/payments/{id}``.

    https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format
    """
    parts = path.strip("/").split("/")
    resource, params = ("/payments/{id}", {"id": parts[1]}) if len(parts) == 2 else ("/payments", None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"} if body is not None else {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": params,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "prod",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def payment_body(payment_id: str, amount: float = 12.5) -> dict[str, Any]:
    """The drill's ``POST /payments`` body (``amount`` a JSON number, as a client sends it)."""
    return {"payment_id": payment_id, "amount": amount, "currency": "EUR", "customer_id": "drill"}
