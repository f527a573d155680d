"""The plan's report sections: monthly cost with the standby ratio, the RTO budget, and RPO per store.

Each section takes the plan's syntheses (by stack name) and returns text for people and data for
``--json``. The RTO budget is read from the dr stack's parsed config, so what it assumes (health
check interval and threshold, TTL, database mode, headless secondary, warm pool) is what deploys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automation import cost, rto
from automation.synth import Synthesis
from components.config import parse
from components.failover import Capacity, dr_capacity
from components.ledger_access import CA_BUNDLE_PAGE

Section = Callable[[dict[str, Synthesis]], tuple[str, dict[str, Any]]]

# The web tier's target group health check (components/compute.py): 2 checks 10 s apart.
TARGET_INTERVAL_SECONDS = 10
TARGET_HEALTHY_THRESHOLD = 2


def cost_section(results: dict[str, Synthesis]) -> tuple[str, dict[str, Any]]:
    """Monthly cost per stack and region, and the standby (dr) cost as a share of the primary's."""
    prices = cost.load_prices()
    reports = {name: cost.estimate(s.resources, prices) for name, s in results.items()}
    comparison = None
    if "primary" in reports and "dr" in reports and reports["primary"].total > 0:
        comparison = cost.compare(reports["primary"], reports["dr"])
    merged = cost.estimate([r for s in results.values() for r in s.resources], prices)
    text = "== monthly cost (on-demand list prices) ==\n" + cost.format_table(merged, comparison=comparison)
    data: dict[str, Any] = {name: rep.to_dict() for name, rep in reports.items()}
    if comparison is not None:
        data["comparison"] = comparison.to_dict()
    return text, data


def rto_inputs(dr: Synthesis) -> rto.RtoInputs:
    """The RTO inputs implied by the dr stack's configuration."""
    cfg = parse(dr.config, stack=dr.stack)
    primary = Capacity(cfg.compute.min_size, cfg.compute.desired_capacity, cfg.compute.max_size)
    active = dr_capacity(primary, cfg.dr.capacity_percent)
    return rto.RtoInputs(
        health_check_interval_seconds=cfg.routing.health_check_interval,
        failure_threshold=cfg.routing.failure_threshold,
        dns_ttl_seconds=cfg.routing.ttl,
        database_mode=cfg.database.mode,
        aurora_dr_instances=cfg.database.dr_instances,
        warm_pool=cfg.compute.dr_warm_pool > 0,
        warm_pool_size=cfg.compute.dr_warm_pool or None,
        dr_web_capacity=active.desired,
        confirmation_window_seconds=cfg.routing.confirmation_minutes * 60,
        target_health_check_interval_seconds=TARGET_INTERVAL_SECONDS,
        target_healthy_threshold=TARGET_HEALTHY_THRESHOLD,
    )


def rto_section(results: dict[str, Synthesis]) -> tuple[str, dict[str, Any]]:
    """The RTO budget of the dr stack's configuration and the RPO of each data store."""
    dr = results.get("dr")
    if dr is None:
        return "== RTO budget ==\n  (plan the dr stack to see the RTO budget)", {}
    inputs = rto_inputs(dr)
    budget = rto.rto_budget(inputs)
    rows = rto.rpo_table(inputs.database_mode)
    text = (
        "== RTO budget (dr stack's configuration) ==\n"
        + rto.format_budget(budget)
        + "\n\n== RPO per data store ==\n"
        + rto.format_rpo(rows)
    )
    return text, {"rto": budget.to_dict(), "rpo": [r.__dict__ for r in rows]}


def database_tls_section(results: dict[str, Synthesis]) -> tuple[str, dict[str, Any]]:
    """How each stack's functions reach the database over TLS, read from what deploys (their environment).

    The driver path without ``database.caBundle`` encrypts but does not verify the server
    (``DB_SSLMODE=require``): anyone who can answer on the endpoint's address inside the VPC would be
    trusted. That is printed as a warning, with the key that fixes it.
    """
    rows: dict[str, dict[str, Any]] = {}
    lines = ["== database TLS (payments ledger) =="]
    for name, s in results.items():
        for f in s.by_type("aws:lambda/function:Function"):
            env = (f.inputs.get("environment") or {}).get("variables") or {}
            if "DB_HOST" not in env:
                continue
            mode = env.get("DB_SSLMODE", "")
            verified = mode == "verify-full" and bool(env.get("DB_SSLROOTCERT"))
            rows[f"{name}/{f.name}"] = {
                "sslmode": mode,
                "verified": verified,
                "ca": env.get("DB_SSLROOTCERT"),
            }
            if verified:
                lines.append(
                    f"  {name} {f.name}: verify-full (the server's chain against {env['DB_SSLROOTCERT']}, "
                    "and its host name)"
                )
            else:
                lines.append(
                    f"  warning: {name} {f.name}: DB_SSLMODE {mode}: TLS is encrypted but the server is NOT "
                    f"verified; set pilotlight:database.caBundle to AWS's RDS CA bundle ({CA_BUNDLE_PAGE})"
                )
    if not rows:
        lines.append(
            "  no function connects with a driver (the RDS Data API: HTTPS, verified by the AWS SDK)"
        )
    return "\n".join(lines), {
        "functions": rows,
        "unverified": sorted(k for k, v in rows.items() if not v["verified"]),
    }


def sections() -> list[Section]:
    """The sections the plan prints after the resources and the failover diff."""
    return [cost_section, rto_section, database_tls_section]
