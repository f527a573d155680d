"""Recovery time (RTO) budget and recovery point (RPO) table of a failover, from configuration.

Pure functions: no AWS, no Pulumi. The budget is a sequence of steps, each with an expected and a
worst-case duration in seconds and the AWS documentation (or the stated assumption) it relies on.
The database promotion and the web tier scale-out run in parallel in the runbook, so only the
slower branch is on the critical path.

Figures are deliberately conservative. Where AWS publishes a number ("typically under a minute",
"a few minutes") it is used as the expected case; where it publishes none, the figure is an
assumption and the source string says so. Measured drills should replace them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lambdas.failover.budget import SFN_POLL_SECONDS
from lambdas.failover.darkness import DARK_CONFIRM_SECONDS

DATABASE_MODES = ("aurora-global", "rds-replica")
HEALTH_CHECK_INTERVALS = (10, 30)

# Where the figures come from. Kept together so format_budget can footnote them.
SRC_R53_HEALTH = (
    "Route 53 Developer Guide, 'How Amazon Route 53 determines whether a health check is healthy' "
    "(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html): "
    "each checker needs FailureThreshold consecutive failures at RequestInterval (10 or 30 s); the endpoint is "
    "unhealthy when 18% or fewer checkers report healthy. Checkers are not synchronised: worst case adds one interval."
)
SRC_R53_PROPAGATION = (
    "Route 53 API Reference, GetChange "
    "(https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html): changes reach all authoritative "
    "servers (INSYNC) 'generally within 60 seconds'. Health-status aggregation time is not published: assumed 30 s "
    "expected, 60 s worst."
)
SRC_CONFIRMATION = (
    "Configuration (pilotlight:routing.confirmationMinutes): the automated trigger waits this long on a failed "
    "primary before starting the runbook, so a blip does not fail the application over."
)
SRC_SFN = (
    "AWS Step Functions Developer Guide, 'Handling errors in Step Functions workflows' "
    "(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): state transitions add "
    "little; the overhead is the input figure, doubled in the worst case for one retry with backoff (assumption)."
)
SWITCH_EXPECTED_SECONDS = 90.0
"""Expected seconds for the thrown switch to flip the failover record (SRC_SWITCH)."""
SRC_FENCE_DARK = (
    "Runbook fence_primary (lambdas/failover/darkness.py): a region A that does not answer is taken for dark only "
    "after every look for DARK_CONFIRM_SECONDS (120 s, an assumption: two canary periods) found it so, before its "
    "fence is left pending and the latch, switch and promotion follow; under Step Functions the looks are the "
    "state machine's polls, 30 s apart: worst case one poll more."
)
SRC_LATE_LOOK = (
    "Runbook promote_database (lambdas/failover/promotion.py, break36 B36-2): a forced failover whose fence was "
    "left pending looks at region A's database again before an unplanned writer move, and moves it only after "
    "every look for DARK_CONFIRM_SECONDS (120 s, an assumption) found it dark. The looks begin with the wait for the "
    "thrown switch to take effect (the switch row's 90 s expected), so only the rest of the window adds; under Step "
    "Functions the looks are its polls, 30 s apart: worst case one poll more (assumption)."
)
SRC_AURORA_FAILOVER = (
    "Aurora User Guide, 'Using switchover or failover in an Amazon Aurora global database' "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-disaster-recovery.html) "
    "and the Aurora global database page (https://aws.amazon.com/rds/aurora/global-database/): detach-and-promote "
    "of a secondary cluster 'typically under a minute' (expected); managed failover (failover-global-cluster "
    "--allow-data-loss) takes 'minutes' (worst case, assumed 5 min)."
)
SRC_AURORA_HEADLESS = (
    "Aurora User Guide, 'Adding Aurora Replicas to a DB cluster' "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-replicas-adding.html) and "
    "'Using a headless Aurora DB cluster in a secondary Region' "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-getting-started.html): "
    "a headless secondary has no instance to promote; creating one takes ~10 min (AWS publishes no figure: "
    "observed, assumed 10 min expected, 20 min worst)."
)
SRC_RDS_PROMOTE = (
    "RDS User Guide, 'Promoting a read replica to be a standalone DB instance' "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html): the replica reboots and "
    "promotion 'takes a few minutes', depending on its size (assumed 5 min expected, 15 min worst, including the "
    "wait for 'available')."
)
SRC_WARM_POOL = (
    "EC2 Auto Scaling User Guide, 'Warm pools for Amazon EC2 Auto Scaling' "
    "(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html): Stopped instances were "
    "initialised in advance and only start on scale-out (assumed 60 s expected, 150 s worst to start and serve)."
)
SRC_COLD_LAUNCH = (
    "EC2 Auto Scaling User Guide, 'Amazon EC2 Auto Scaling instance lifecycle' "
    "(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html): Pending -> InService "
    "covers launch, boot and user data. AWS publishes no duration: assumed 60 s launch + 120 s boot expected, "
    "120 s + 300 s worst."
)
SRC_ALB_HEALTH = (
    "Elastic Load Balancing, 'Health checks for Application Load Balancer target groups' "
    "(https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html): a new "
    "target takes HealthyThresholdCount consecutive passes at HealthCheckIntervalSeconds (defaults 5 and 30 s) to "
    "become healthy; worst case adds one interval."
)
SRC_LAMBDA = (
    "Lambda Developer Guide, 'Configuring reserved concurrency' and 'Event source mappings' "
    "(https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html, "
    "https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html): removing reserved "
    "concurrency 0 is immediate; an event source mapping goes Enabling -> Enabled (no figure published: assumed "
    "10 s expected, 60 s worst)."
)
SRC_SWITCH = (
    "CloudWatch User Guide, 'Using Amazon CloudWatch alarms' "
    "(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html) and Route 53 "
    "'Monitoring a CloudWatch alarm' health checks "
    "(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-types.html): the switch alarm evaluates "
    "a 60 s period (worst: one more period for late data); Route 53 then reads the alarm's data stream (assumed 30 s "
    "expected, 60 s worst)."
)
SRC_TTL = (
    "Route 53 Developer Guide, 'Values specific for failover records' / TTL "
    "(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-values-failover.html): resolvers "
    "cache the old answer for up to the TTL. Budgeted at the full TTL (the average client waits half); resolvers "
    "that ignore TTLs are outside the budget."
)
SRC_VERIFY = (
    "Runbook verify step (lambdas/failover): smoke test through the public name until it answers from region B "
    "(assumption: 30 s expected, 120 s worst)."
)


@dataclass(frozen=True)
class RtoInputs:
    """What the recovery time depends on. Defaults mirror ``components/config.py``'s defaults.

    ``warm_pool_size`` None means the pool holds at least ``dr_web_capacity`` stopped instances; a
    smaller pool leaves the rest to a cold launch, which then sets the web tier's time.
    """

    health_check_interval_seconds: int = 10
    failure_threshold: int = 3
    dns_ttl_seconds: int = 60
    database_mode: str = "aurora-global"
    aurora_dr_instances: int = 0
    warm_pool: bool = False
    dr_web_capacity: int = 2
    confirmation_window_seconds: int = 180
    orchestration_overhead_seconds: int = 30
    warm_pool_size: int | None = None
    target_health_check_interval_seconds: int = 30
    target_healthy_threshold: int = 5

    def __post_init__(self) -> None:
        def integer(name: str, low: int, high: int | None) -> None:
            value = getattr(self, name)
            allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < low
                or (high and value > high)
            ):
                raise ValueError(f"RtoInputs.{name} must be {allowed}, got {value!r}")

        interval = self.health_check_interval_seconds
        if isinstance(interval, bool) or interval not in HEALTH_CHECK_INTERVALS:
            raise ValueError(
                f"RtoInputs.health_check_interval_seconds must be one of 10, 30 "
                f"(Route 53 request intervals), got {interval!r}"
            )
        integer("failure_threshold", 1, 10)
        integer("dns_ttl_seconds", 0, 2_147_483_647)
        if self.database_mode not in DATABASE_MODES:
            raise ValueError(
                f"RtoInputs.database_mode must be one of {', '.join(DATABASE_MODES)}, got {self.database_mode!r}"
            )
        integer("aurora_dr_instances", 0, 16)
        if not isinstance(self.warm_pool, bool):
            raise ValueError(f"RtoInputs.warm_pool must be true or false, got {self.warm_pool!r}")
        integer("dr_web_capacity", 0, None)
        integer("confirmation_window_seconds", 0, None)
        integer("orchestration_overhead_seconds", 0, None)
        if self.warm_pool_size is not None:
            integer("warm_pool_size", 0, None)
        integer("target_health_check_interval_seconds", 5, 300)
        integer("target_healthy_threshold", 2, 10)


@dataclass(frozen=True)
class RtoComponent:
    """One step of the failover with its expected and worst-case duration."""

    name: str
    expected_seconds: float
    worst_seconds: float
    source: str
    branch: str | None = None
    """None: on the serial path. Otherwise the parallel branch ("database", "web tier")."""


@dataclass(frozen=True)
class RtoBudget:
    """The ordered steps, the critical path through them, and the totals."""

    inputs: RtoInputs
    components: tuple[RtoComponent, ...]
    critical_path: tuple[str, ...]
    critical_path_worst: tuple[str, ...]
    total_expected_seconds: float
    total_worst_seconds: float
    assumptions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "inputs": asdict(self.inputs),
            "components": [asdict(c) for c in self.components],
            "critical_path": list(self.critical_path),
            "critical_path_worst": list(self.critical_path_worst),
            "total_expected_seconds": self.total_expected_seconds,
            "total_worst_seconds": self.total_worst_seconds,
            "assumptions": list(self.assumptions),
        }


def _database_steps(i: RtoInputs) -> list[RtoComponent]:
    if i.database_mode == "rds-replica":
        return [RtoComponent("database: promote RDS read replica", 300, 900, SRC_RDS_PROMOTE, "database")]
    steps = []
    if i.aurora_dr_instances == 0:
        steps.append(
            RtoComponent(
                "database: add writer instance to headless secondary",
                600,
                1200,
                SRC_AURORA_HEADLESS,
                "database",
            )
        )
    steps.append(
        RtoComponent("database: promote Aurora secondary cluster", 60, 300, SRC_AURORA_FAILOVER, "database")
    )
    return steps


def _web_steps(i: RtoInputs) -> list[RtoComponent]:
    if i.dr_web_capacity == 0:
        return [
            RtoComponent(
                "web tier: nothing to scale (capacity 0)", 0, 0, "Configuration: no web tier.", "web tier"
            )
        ]
    pool = i.dr_web_capacity if i.warm_pool_size is None else i.warm_pool_size
    if i.warm_pool and pool >= i.dr_web_capacity:
        start = RtoComponent(
            f"web tier: start {i.dr_web_capacity} warm-pool instance(s)", 60, 150, SRC_WARM_POOL, "web tier"
        )
    else:
        label = f"web tier: launch and boot {i.dr_web_capacity} instance(s)"
        if i.warm_pool:
            label += f" (warm pool of {pool} < capacity)"
        start = RtoComponent(label, 180, 420, SRC_COLD_LAUNCH, "web tier")
    interval, threshold = i.target_health_check_interval_seconds, i.target_healthy_threshold
    register = RtoComponent(
        f"web tier: ALB target health ({threshold} x {interval} s)",
        threshold * interval,
        (threshold + 1) * interval,
        SRC_ALB_HEALTH,
        "web tier",
    )
    return [start, register]


def rto_budget(inputs: RtoInputs) -> RtoBudget:
    """The failover's time budget: ordered steps, the critical path and the totals (seconds)."""
    i = inputs
    interval, threshold = i.health_check_interval_seconds, i.failure_threshold
    components: list[RtoComponent] = [
        RtoComponent(
            f"detection: Route 53 health checks ({threshold} x {interval} s)",
            interval * threshold,
            interval * (threshold + 1),
            SRC_R53_HEALTH,
        ),
        RtoComponent("detection: Route 53 status aggregation and propagation", 30, 60, SRC_R53_PROPAGATION),
        RtoComponent(
            "confirmation window",
            i.confirmation_window_seconds,
            i.confirmation_window_seconds,
            SRC_CONFIRMATION,
        ),
        RtoComponent(
            "orchestration: Step Functions overhead",
            i.orchestration_overhead_seconds,
            2 * i.orchestration_overhead_seconds,
            SRC_SFN,
        ),
        RtoComponent(
            "fence: region A confirmed unreachable",
            DARK_CONFIRM_SECONDS,
            DARK_CONFIRM_SECONDS + SFN_POLL_SECONDS,
            SRC_FENCE_DARK,
        ),
        RtoComponent(
            "promotion: region A's database confirmed dark again",
            max(0.0, DARK_CONFIRM_SECONDS - SWITCH_EXPECTED_SECONDS),
            max(0.0, DARK_CONFIRM_SECONDS - SWITCH_EXPECTED_SECONDS) + SFN_POLL_SECONDS,
            SRC_LATE_LOOK,
        ),
        *_database_steps(i),
        *_web_steps(i),
        RtoComponent("functions: enable DR Lambdas and event sources", 10, 60, SRC_LAMBDA),
        RtoComponent(
            "switch: CloudWatch-alarm health check flips the failover record",
            SWITCH_EXPECTED_SECONDS,
            180,
            SRC_SWITCH,
        ),
        RtoComponent(f"DNS TTL ({i.dns_ttl_seconds} s)", i.dns_ttl_seconds, i.dns_ttl_seconds, SRC_TTL),
        RtoComponent("verify: smoke test from region B", 30, 120, SRC_VERIFY),
    ]
    expected, path = _critical(components, worst=False)
    worst, path_worst = _critical(components, worst=True)
    assumptions = (
        "Database promotion and web tier scale-out run in parallel; only the slower branch counts.",
        "Functions are enabled after the database is writable; the switch flips after both branches finish.",
        "The confirmation window starts when Route 53 reports the primary unhealthy.",
        "Aurora: the runbook detaches and promotes the secondary (expected); managed failover bounds the worst case.",
        "Web tier: capacity is reached when every instance is healthy behind the ALB.",
        "DNS: the full TTL is budgeted; clients that cache longer than the TTL are not.",
    )
    return RtoBudget(i, tuple(components), path, path_worst, expected, worst, assumptions)


def _critical(components: list[RtoComponent], *, worst: bool) -> tuple[float, tuple[str, ...]]:
    """Total time and critical path: serial steps plus the slowest parallel branch."""

    def secs(c: RtoComponent) -> float:
        return c.worst_seconds if worst else c.expected_seconds

    branches: dict[str, float] = {}
    for c in components:
        if c.branch is not None:
            branches[c.branch] = branches.get(c.branch, 0.0) + secs(c)
    slowest = max(branches, key=lambda b: branches[b]) if branches else None
    on_path = [c for c in components if c.branch is None or c.branch == slowest]
    return float(sum(secs(c) for c in on_path)), tuple(c.name for c in on_path)


def _mmss(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60:d}:{s % 60:02d}"


def format_budget(budget: RtoBudget) -> str:
    """The budget as a table for people, with numbered sources as footnotes."""
    sources: list[str] = []
    rows = []
    on_path = set(budget.critical_path)
    for c in budget.components:
        if c.source not in sources:
            sources.append(c.source)
        ref = sources.index(c.source) + 1
        mark = "*" if c.name in on_path else " "
        branch = c.branch or "-"
        rows.append(
            f"{mark} {c.name:<64} {branch:<9} {c.expected_seconds:>6.0f} {c.worst_seconds:>6.0f}  [{ref}]"
        )
    header = f"  {'step':<64} {'parallel':<9} {'expect':>6} {'worst':>6}  src"
    lines = [
        f"RTO budget ({budget.inputs.database_mode}, health checks every {budget.inputs.health_check_interval_seconds} s"
        f" x {budget.inputs.failure_threshold}, warm pool {'on' if budget.inputs.warm_pool else 'off'})",
        header,
        "  " + "-" * (len(header) - 2),
        *rows,
        "",
        f"total expected: {budget.total_expected_seconds:.0f} s ({_mmss(budget.total_expected_seconds)})"
        f"   worst case: {budget.total_worst_seconds:.0f} s ({_mmss(budget.total_worst_seconds)})",
        "* = on the expected critical path",
        "",
        "assumptions:",
        *(f"  - {a}" for a in budget.assumptions),
        "",
        "sources:",
        *(f"  [{n}] {s}" for n, s in enumerate(sources, start=1)),
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# RPO
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RpoRow:
    """How much recent data a failover can lose, per data store."""

    data_store: str
    mechanism: str
    typical_rpo: str
    typical_rpo_seconds: float | None
    """None where AWS publishes no figure (it depends on load)."""
    worst_case: str
    source: str


def rpo_table(database_mode: str, *, backup_interval_hours: float = 24.0) -> list[RpoRow]:
    """The RPO of every replicated data store for the given database mode."""
    if database_mode not in DATABASE_MODES:
        raise ValueError(f"database_mode must be one of {', '.join(DATABASE_MODES)}, got {database_mode!r}")
    if not backup_interval_hours > 0:
        raise ValueError(f"backup_interval_hours must be > 0, got {backup_interval_hours!r}")
    if database_mode == "aurora-global":
        db = RpoRow(
            "relational database (Aurora PostgreSQL global database)",
            "storage-level asynchronous replication to the secondary region",
            "< 1 s (typical replication lag)",
            1.0,
            "lag grows under heavy writes or network impairment; failover with AllowDataLoss loses writes not yet "
            "replicated. Watch AuroraGlobalDBReplicationLag; rds.global_db_rpo can bound it (Aurora PostgreSQL).",
            "Aurora User Guide, 'Using Amazon Aurora global databases' "
            "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database.html): "
            "'typically under a second' of replication latency; 'Managing RPOs for Aurora PostgreSQL-based global "
            "databases' for rds.global_db_rpo.",
        )
    else:
        db = RpoRow(
            "relational database (RDS cross-region read replica)",
            "asynchronous engine-native replication (PostgreSQL WAL)",
            "seconds, depending on write load (ReplicaLag)",
            None,
            "minutes or more under sustained heavy writes or long transactions: compare ReplicaLag with "
            "database.maxReplicationLagSeconds before promoting.",
            "RDS User Guide, 'Working with DB instance read replicas' and 'Monitoring read replication' "
            "(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.html, "
            "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Monitoring.html): replication is "
            "asynchronous; lag is reported by the ReplicaLag metric.",
        )
    return [
        db,
        RpoRow(
            "objects (S3 cross-region replication)",
            "asynchronous S3 Replication (optionally with Replication Time Control)",
            "most objects within 15 min; with RTC 99.99% within 15 min (SLA)",
            900.0,
            "without RTC, some objects can take hours; ReplicationLatency and OperationsPendingReplication show it.",
            "S3 User Guide, 'Replicating objects' and 'Meeting compliance requirements with S3 Replication Time "
            "Control' (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html, "
            "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html).",
        ),
        RpoRow(
            "key-value data (DynamoDB global table)",
            "asynchronous multi-active replication between replicas",
            "~1 s (typical propagation)",
            1.0,
            "longer under regional impairment; ReplicationLatency shows it. Last writer wins on conflicts.",
            "DynamoDB Developer Guide, 'Global tables: how it works' "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables_HowItWorks.html): "
            "changes are typically propagated to replicas within a second.",
        ),
        RpoRow(
            "credentials (Secrets Manager replica secrets)",
            "Secrets Manager replicates the secret to region B on every change",
            "seconds (no published figure)",
            None,
            "a rotation just before the outage may not have reached region B: the readiness check verifies replicas.",
            "Secrets Manager User Guide, 'Replicate secrets across Regions' "
            "(https://docs.aws.amazon.com/secretsmanager/latest/userguide/create-manage-multi-region-secrets.html).",
        ),
        RpoRow(
            "backups (AWS Backup cross-region copies)",
            "scheduled backup, then copy job to the vault in region B",
            f"up to the backup interval ({backup_interval_hours:g} h) plus the copy time",
            backup_interval_hours * 3600.0,
            "a failed or running copy job extends it by one more interval; these are for corruption, not failover.",
            "AWS Backup Developer Guide, 'Creating backup copies across AWS Regions' "
            "(https://docs.aws.amazon.com/aws-backup/latest/devguide/cross-region-backup.html).",
        ),
    ]


def format_rpo(rows: list[RpoRow]) -> str:
    """The RPO table for people."""
    width = max(len(r.data_store) for r in rows)
    lines = [f"{'data store':<{width}}  typical RPO", f"{'-' * width}  {'-' * 11}"]
    for r in rows:
        lines.append(f"{r.data_store:<{width}}  {r.typical_rpo}")
        lines.append(f"{'':<{width}}    mechanism: {r.mechanism}")
        lines.append(f"{'':<{width}}    worst case: {r.worst_case}")
        lines.append(f"{'':<{width}}    source: {r.source}")
    return "\n".join(lines)
