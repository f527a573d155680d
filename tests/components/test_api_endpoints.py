"""With custom domains, the API answers only on them: the default execute-api endpoint is off.

Each region's API then has its own name, ``api-<region>.<domain>``, which Route 53's health check,
the canary and the runbook probe (they must reach one region's API, not whichever region
``api.<domain>`` points at). Without certificates there is no custom domain, and the execute-api
endpoint is the API's only address.
"""

from __future__ import annotations

from automation import synth
from tests.components.conftest import synthesize

CERTS = {
    "pilotlight:routing": {
        "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a",
        "drCertificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/b",
    }
}
A, B = "api-us-east-1.app.example.com", "api-us-west-2.app.example.com"


def test_with_custom_domains_the_execute_api_endpoint_is_off() -> None:
    for stack in ("primary", "dr"):
        (api,) = synthesize(stack, CERTS).by_type("aws:apigateway/restApi:RestApi")
        assert api.inputs.get("disableExecuteApiEndpoint") is True, (
            f"{stack}: {api.name} keeps execute-api open"
        )


def test_each_region_is_probed_by_its_own_name_not_execute_api() -> None:
    primary, dr = synthesize("primary", CERTS), synthesize("dr", CERTS)
    names = {
        d.inputs["domainName"]
        for s in (primary, dr)
        for d in s.by_type("aws:apigateway/domainName:DomainName")
    }
    assert {A, B, "api.app.example.com"} <= names
    (check,) = [c for c in dr.by_type("aws:route53/healthCheck:HealthCheck") if c.name == "global-api-check"]
    assert (check.inputs["fqdn"], check.inputs["resourcePath"], check.inputs["type"]) == (
        A,
        "/health",
        "HTTPS",
    )
    records = {r.inputs["name"]: r for r in dr.by_type("aws:route53/record:Record")}
    assert A in records and B in records and records[A].inputs["type"] == "A"
    runbook = dr.outputs["runbook"]
    assert (runbook["primaryHealthUrl"], runbook["drHealthUrl"]) == (
        f"https://{A}/health",
        f"https://{B}/health",
    )
    (canary,) = [f for f in dr.by_type("aws:lambda/function:Function") if f.name == "dr-orchestrator-canary"]
    assert f"https://{A}/health" in canary.inputs["environment"]["variables"]["TARGETS"]
    for url in (runbook["primaryHealthUrl"], runbook["drHealthUrl"]):
        assert "execute-api" not in url and synth.COMPUTED not in url


def test_without_custom_domains_execute_api_is_the_address() -> None:
    (api,) = synthesize("dr").by_type("aws:apigateway/restApi:RestApi")
    assert not api.inputs.get("disableExecuteApiEndpoint")
