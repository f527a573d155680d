"""The API tier: API Gateway REST API + Lambda (the payments API), deployed in both regions.

In the DR region the function is deployed but dormant: reserved concurrency 0 (every invocation
is throttled, so nothing runs and nothing is billed) and its event source mapping disabled. The
failover module flips both; nothing else about the function changes, so the code that runs after a
failover is byte-for-byte the code that was tested in region A.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.iam import function_identity, iam_path
from components.ledger_access import (
    CA_BUNDLE_ARCHIVE_NAME,
    CA_BUNDLE_FUNCTION_PATH,
    LedgerPath,
    ledger_statements,
)
from components.naming import limit_of, physical_name
from components.runbook_iam import DYNAMODB_KEY_ACTIONS, account_of, parameter_arn, rds_arn
from lambdas.failover.names import ledger_marker_function_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"
HANDLER = "lambdas.api.handler.handler"
MARKER_HANDLER = "lambdas.api.marker.handler"
STAGE = "prod"
ROUTES = (("payments", None, "POST"), ("payments", "{id}", "GET"), ("health", None, "GET"))


LEDGER_DRIVER_DISTRIBUTIONS = ("pg8000", "scramp", "asn1crypto", "python-dateutil", "six")
"""The pure-Python driver the payments function's ledger uses (lambdas/api/ledger.py) and what it
imports: pg8000 needs scramp (SCRAM authentication) and python-dateutil; scramp needs asn1crypto;
python-dateutil needs six. All pure Python, so one bundle serves arm64 and x86_64 alike. The Lambda
runtime ships none of them except the two botocore happens to use, which are bundled anyway rather
than borrowed from an SDK the runtime may change."""


def _bundled(parts: tuple[str, ...], suffix: str) -> bool:
    """Whether a distribution's file goes into the bundle: its Python source, its metadata, its licence.

    ``METADATA`` is needed at run time: pg8000 and scramp read their own version with
    ``importlib.metadata.version`` when imported. Bytecode, RECORD (hashes of the installed tree)
    and installer markers are left out: they differ between machines and would change the code hash.
    """
    if parts[0] == ".." or "__pycache__" in parts:
        return False
    if parts[0].endswith(".dist-info"):
        return parts[-1] == "METADATA" or parts[1].startswith(("LICENSE", "licenses", "COPYING"))
    return suffix == ".py"


def vendored_files(distributions: tuple[str, ...]) -> dict[str, Path]:
    """The files of installed distributions the bundle needs (:func:`_bundled`), by their path in it.

    Taken from the environment ``pulumi up`` runs in (requirements.txt pins the versions), so the
    bundle is the code the tests ran. Raises PackageNotFoundError naming a missing distribution.
    """
    files: dict[str, Path] = {}
    for name in distributions:
        dist = importlib.metadata.distribution(name)
        for relative in dist.files or ():
            if _bundled(tuple(relative.parts), relative.suffix):
                files[relative.as_posix()] = Path(str(dist.locate_file(relative)))
    return files


def lambda_code(
    vendored: tuple[str, ...] = (), extra: Mapping[str, Path] | None = None
) -> pulumi.AssetArchive:
    """The ``lambdas`` package's source: handlers import ``lambdas.<fn>.<module>`` in AWS as in tests.

    Only ``.py`` files: bytecode caches differ between machines and would change the code hash,
    redeploying every function on every ``pulumi up`` and making the two regions' code look different.
    ``vendored``: distributions bundled beside the package (:func:`vendored_files`). ``extra``: other
    files by their name in the archive (the RDS CA bundle, ``database.caBundle``).
    """
    package = ROOT / "lambdas"
    files = {p.relative_to(ROOT).as_posix(): p for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    files.update(vendored_files(vendored))
    for key, path in (extra or {}).items():
        if key in files:
            raise ValueError(f"{key}: already in the function's code archive")
        files[key] = path
    return pulumi.AssetArchive({key: pulumi.FileAsset(str(files[key])) for key in sorted(files)})


@dataclass
class ApiTierArgs:
    """Inputs of :class:`ApiTier`.

    Attributes:
        prefix: ``<app>-<env>``: the function's and the API's names start with it, so two
            deployments in one account never share a function, log group or CloudWatch dimension.
        role: ``primary`` or ``dr``: reported by ``GET /health``.
        enabled: the function takes traffic (primary: always; DR: from the failover module).
        reserved_concurrency: 0 keeps it dormant; None removes the reservation.
        keep_fence: region A is fenced by a failover (reserved concurrency 0, event source disabled,
            set out of band by the runbook): those two properties keep the state's value, so an update
            never sends them (https://www.pulumi.com/docs/iac/concepts/options/ignorechanges/).
        table_name, table_arn: the DynamoDB global table (its replica in this region).
        bucket_name, bucket_arn: the receipts bucket in this region; kms_key_arn: its key.
        table_kms_key_arn: the customer-managed key of the table's replica in this region (region A: the
            primary stack's key; region B: the primary stack's replica key, not the dr stack's own).
        environment: extra environment variables (database identifiers, latch parameter...).
        regional_domain_name: with a custom domain, this region's own name (``api-<region>.<domain>``):
            health checks, the canary and the runbook reach this region's API by it, because the
            default ``execute-api`` endpoint is then turned off (see :class:`ApiTier`).
        domain_name, certificate_arn: a regional custom domain (``api.<domain>``) with this region's
            ACM certificate: Route 53 can fail the API over only to names API Gateway answers for.
        log_retention_days: CloudWatch Logs retention of the function's log group.
        ledger_path: how the function reaches the ledger (components/ledger_access.py); None when
            the environment names no database secret.
        ledger_secret_key_arn: the KMS key of this region's copy of the credentials secret.
        vpc_subnet_ids, vpc_security_group_ids: where the function runs on the driver path (the
            private subnets, the app tier's security group, which the database admits).
        ca_bundle: ``database.caBundle``, the RDS CA bundle: on the driver path it is added to the
            payments and ledger marker functions' archives, at the path ``DB_SSLROOTCERT`` names.
    """

    prefix: str
    region: str
    role: str
    enabled: bool
    reserved_concurrency: int | None
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    table_kms_key_arn: pulumi.Input[str] | None = None
    domain_name: str | None = None
    certificate_arn: str | None = None
    regional_domain_name: str | None = None
    log_retention_days: int = 30
    extra_policy_statements: list[dict] = field(default_factory=list)
    ledger_path: LedgerPath | None = None
    ledger_secret_key_arn: pulumi.Input[str] | None = None
    vpc_subnet_ids: list[pulumi.Output[str]] = field(default_factory=list)
    vpc_security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)
    ca_bundle: Path | None = None
    keep_fence: bool = False


def _ca_bundle_files(args: ApiTierArgs, driver: bool) -> dict[str, Path]:
    """The CA bundle's entry in the archive, on the driver path with ``database.caBundle``.

    The environment and the archive must agree: a ``DB_SSLROOTCERT`` naming a file the archive lacks
    would stop every ledger call (lambdas/api/config.py refuses it), and a bundle the environment
    does not name would leave the connection unverified while the config says otherwise.
    """
    named = args.environment.get("DB_SSLROOTCERT")
    ships = driver and args.ca_bundle is not None
    if ships != (named == CA_BUNDLE_FUNCTION_PATH):
        raise ValueError(
            f"{args.prefix} payments: DB_SSLROOTCERT is {named!r} but the CA bundle is "
            f"{'' if ships else 'not '}in the code archive"
        )
    return {CA_BUNDLE_ARCHIVE_NAME: args.ca_bundle} if ships and args.ca_bundle is not None else {}


def _ledger_statements(args: ApiTierArgs) -> pulumi.Output[list[dict]] | None:
    """The ledger's permissions for the function's path, or None without a ledger."""
    env = args.environment
    if args.ledger_path is None or "DB_SECRET_ARN" not in env:
        return None
    if args.ledger_secret_key_arn is None:
        raise ValueError(f"{args.prefix} payments: a ledger secret without its KMS key")
    path = args.ledger_path
    driver = path is LedgerPath.DRIVER
    return pulumi.Output.all(
        pulumi.Output.from_input(args.table_arn).apply(account_of),
        env["DB_SECRET_ARN"],
        args.ledger_secret_key_arn,
        env.get("DB_CLUSTER_ARN", ""),
        pulumi.Output.all(*args.vpc_subnet_ids) if driver else [],
        pulumi.Output.all(*args.vpc_security_group_ids) if driver else [],
    ).apply(
        lambda v: ledger_statements(
            path,
            region=args.region,
            account=v[0],
            secret_arn=v[1],
            secret_key_arn=v[2],
            cluster_arn=v[3] or None,
            subnet_ids=list(v[4]),
            security_group_ids=list(v[5]),
        )
    )


def _data_statements(args: ApiTierArgs) -> list[dict]:
    """Least privilege: the item calls and receipt writes it makes, and what ``GET /health`` reads.

    Health reads the table's status, which database is the writer, and the latch: without these a
    health check answers 503 and Route 53 would fail the region over for a missing permission. Each
    names its resource: this function faces the internet, so it may read the latch and no other
    parameter, and describe its own database and no other.
    """
    env = args.environment
    account = pulumi.Output.from_input(args.table_arn).apply(account_of)
    database: list[pulumi.Output[str]] = []
    if "DB_INSTANCE_ID" in env:
        database.append(
            pulumi.Output.all(account, env["DB_INSTANCE_ID"]).apply(
                lambda v: rds_arn(args.region, v[0], "db", v[1])
            )
        )
    if "GLOBAL_CLUSTER_ID" in env:
        database.append(
            pulumi.Output.all(account, env["GLOBAL_CLUSTER_ID"]).apply(
                lambda v: rds_arn(args.region, v[0], "global-cluster", v[1])
            )
        )
    statements: list[dict] = []
    if database:
        statements.append(
            {
                "Sid": "WhoIsTheWriter",
                "Effect": "Allow",
                "Action": [
                    "rds:DescribeDBInstances" if "DB_INSTANCE_ID" in env else "rds:DescribeGlobalClusters"
                ],
                "Resource": database,
            }
        )
    if "LATCH_PARAMETER" in env and "LATCH_REGION" in env:
        statements.append(
            {
                "Sid": "ReadTheLatch",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": pulumi.Output.all(account, env["LATCH_REGION"], env["LATCH_PARAMETER"]).apply(
                    lambda v: parameter_arn(v[1], v[0], v[2])
                ),
            }
        )
    if args.table_kms_key_arn is not None:
        statements.append(
            {
                # The table's replica here is encrypted with a customer-managed key, which DynamoDB uses
                # on behalf of the caller of each item call: the caller must be allowed to use it through
                # DynamoDB (https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html#dynamodb-authz;
                # the runbook's RunbookLockKey, components/runbook_iam.py, is the same rule). In region B
                # it is the primary stack's replica key, not the dr stack's own key: without this every
                # payment there fails with a KMS AccessDenied once region B serves.
                "Sid": "PaymentsTableKey",
                "Effect": "Allow",
                "Action": list(DYNAMODB_KEY_ACTIONS),
                "Resource": args.table_kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"dynamodb.{args.region}.amazonaws.com"}},
            }
        )
    return [
        *statements,
        {
            "Sid": "Payments",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DescribeTable"],
            "Resource": args.table_arn,
        },
        {
            "Sid": "Receipts",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": pulumi.Output.concat(args.bucket_arn, "/receipts/*"),
        },
        {
            "Sid": "ReceiptsKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": args.kms_key_arn,
        },
    ]


def payments_function_name(prefix: str) -> str:
    """The payments function's name (fixed, not auto-named: the runbook and the program's live reads
    name it before the stack's outputs are read)."""
    return physical_name(prefix, "payments", limit=limit_of("aws:lambda/function:Function", "name"))


class ApiTier(pulumi.ComponentResource):
    """API Gateway REST API with the payments function behind it, and its queue event source."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    api_id: pulumi.Output[str]
    api_name: pulumi.Output[str]
    stage_name: pulumi.Output[str]
    invoke_url: pulumi.Output[str]
    health_url: pulumi.Output[str]
    api_host: pulumi.Output[str]
    event_source_mapping_id: pulumi.Output[str]
    queue_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ApiTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pilotlight:index:ApiTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        function_name = payments_function_name(args.prefix)

        dlq = aws.sqs.Queue(
            f"{name}-inbox-dlq", message_retention_seconds=1209600, sqs_managed_sse_enabled=True, opts=child
        )
        # Partner payment submissions arrive on a queue: the event source that standby disables.
        queue = aws.sqs.Queue(
            f"{name}-inbox",
            visibility_timeout_seconds=60,
            sqs_managed_sse_enabled=True,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": 5}),
            opts=child,
        )

        statements: pulumi.Input[list[dict]] = [
            *_data_statements(args),
            {
                "Sid": "Inbox",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": queue.arn,
            },
            *args.extra_policy_statements,
        ]
        ledger = _ledger_statements(args)
        if ledger is not None:
            statements = pulumi.Output.all(statements, ledger).apply(lambda v: [*v[0], *v[1]])
        driver = args.ledger_path is LedgerPath.DRIVER and "DB_HOST" in args.environment
        code = lambda_code(LEDGER_DRIVER_DISTRIBUTIONS, _ca_bundle_files(args, driver))
        # Traced (Active): the role needs X-Ray's write actions, and the function its role policy.
        identity = function_identity(
            f"{name}-fn",
            function_name,
            statements,
            child,
            path=iam_path(args.prefix),
            tracing=True,
            retention_days=args.log_retention_days,
        )

        function = aws.lambda_.Function(
            f"{name}-payments",
            name=function_name,
            runtime=RUNTIME,
            handler=HANDLER,
            code=code,
            role=identity.role.arn,
            timeout=15,
            memory_size=256,
            architectures=["arm64"],
            # -1 removes the reservation; 0 throttles every invocation (the dormant pilot light).
            reserved_concurrent_executions=-1
            if args.reserved_concurrency is None
            else args.reserved_concurrency,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "STACK_ROLE": args.role,
                    "TABLE_NAME": args.table_name,
                    "RECEIPTS_BUCKET": args.bucket_name,
                    **args.environment,
                }
            ),
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active"),
            # The driver path: the private subnets, in the security group the database admits.
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=args.vpc_subnet_ids, security_group_ids=args.vpc_security_group_ids
            )
            if driver
            else None,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=identity.depends(),
                ignore_changes=["reservedConcurrentExecutions"] if args.keep_fence else None,
            ),
        )
        self.marker_function_name: pulumi.Output[str] | None = None
        if driver and ledger is not None:
            # The ledger marker function (lambdas/api/marker.py): one committed row on this region's
            # database when the runbook asks, the commit after a drain that the RDS for PostgreSQL
            # zero-lag proof needs. No route, no queue, no reservation: no client request reaches it
            # and the fence leaves it alone. Its role may reach the database and nothing else.
            marker_name = ledger_marker_function_name(args.prefix)
            marker_identity = function_identity(
                f"{name}-marker",
                marker_name,
                ledger,
                child,
                path=iam_path(args.prefix),
                retention_days=args.log_retention_days,
            )
            marker = aws.lambda_.Function(
                f"{name}-ledger-marker",
                name=marker_name,
                runtime=RUNTIME,
                handler=MARKER_HANDLER,
                code=code,
                role=marker_identity.role.arn,
                # Under the runbook's read timeout for region A's clients (10 s,
                # lambdas/failover/clients.py): the synchronous Invoke answers before it gives up.
                timeout=8,
                memory_size=128,
                architectures=["arm64"],
                environment=aws.lambda_.FunctionEnvironmentArgs(
                    variables={k: v for k, v in args.environment.items() if k.startswith("DB_")}
                ),
                vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                    subnet_ids=args.vpc_subnet_ids, security_group_ids=args.vpc_security_group_ids
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=marker_identity.depends()),
            )
            self.marker_function_name = marker.name
        mapping = aws.lambda_.EventSourceMapping(
            f"{name}-inbox-source",
            event_source_arn=queue.arn,
            function_name=function.arn,
            enabled=args.enabled,
            batch_size=10,
            function_response_types=["ReportBatchItemFailures"],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["enabled"] if args.keep_fence else None),
        )

        custom_domain = (
            args.domain_name is not None
            and args.certificate_arn is not None
            and args.regional_domain_name is not None
        )
        # An explicit name: CloudWatch's ApiName dimension (alarms, dashboard) is this name.
        api = aws.apigateway.RestApi(
            f"{name}-api",
            name=f"{args.prefix}-payments-api",
            description=f"pilotlight payments API ({args.role})",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            # With custom domains, the default endpoint would be a second way in that skips what the
            # domains enforce (TLS policy, the names clients and certificates know): turned off.
            # https://docs.aws.amazon.com/apigateway/latest/developerguide/rest-api-disable-default-endpoint.html
            disable_execute_api_endpoint=custom_domain,
            opts=child,
        )
        methods: list[pulumi.Resource] = []
        parents: dict[str, aws.apigateway.Resource] = {}
        for path, sub, verb in ROUTES:
            if path not in parents:
                parents[path] = aws.apigateway.Resource(
                    f"{name}-route-{path}",
                    rest_api=api.id,
                    parent_id=api.root_resource_id,
                    path_part=path,
                    opts=child,
                )
            resource = parents[path]
            if sub is not None:
                resource = aws.apigateway.Resource(
                    f"{name}-route-{path}-item",
                    rest_api=api.id,
                    parent_id=resource.id,
                    path_part=sub,
                    opts=child,
                )
            key = f"{name}-route-{path}{'-item' if sub else ''}-{verb.lower()}"
            method = aws.apigateway.Method(
                key,
                rest_api=api.id,
                resource_id=resource.id,
                http_method=verb,
                authorization="NONE",
                opts=child,
            )
            integration = aws.apigateway.Integration(
                f"{key}-integration",
                rest_api=api.id,
                resource_id=resource.id,
                http_method=method.http_method,
                type="AWS_PROXY",
                integration_http_method="POST",
                uri=function.invoke_arn,
                opts=child,
            )
            methods += [method, integration]
        aws.lambda_.Permission(
            f"{name}-api-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(api.execution_arn, "/*/*"),
            opts=child,
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=api.id,
            triggers={"routes": ",".join(f"{p}/{s}:{v}" for p, s, v in ROUTES)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=methods),
        )
        stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=api.id,
            deployment=deployment.id,
            stage_name=STAGE,
            xray_tracing_enabled=True,
            opts=child,
        )
        aws.apigateway.MethodSettings(
            f"{name}-throttle",
            rest_api=api.id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_burst_limit=500, throttling_rate_limit=1000, metrics_enabled=True
            ),
            opts=child,
        )

        self.domain_target: pulumi.Output[str] | None = None
        self.regional_domain: tuple[str, pulumi.Output[str], pulumi.Output[str]] | None = None
        self.health_host: pulumi.Output[str] = pulumi.Output.concat(
            api.id, f".execute-api.{args.region}.amazonaws.com"
        )
        self.health_path = f"/{STAGE}/health"
        if custom_domain:
            assert args.domain_name is not None and args.regional_domain_name is not None
            targets = {}
            for suffix, domain_name in (
                ("domain", args.domain_name),
                ("regional-domain", args.regional_domain_name),
            ):
                domain = aws.apigateway.DomainName(
                    f"{name}-{suffix}",
                    domain_name=domain_name,
                    regional_certificate_arn=args.certificate_arn,
                    endpoint_configuration=aws.apigateway.DomainNameEndpointConfigurationArgs(
                        types="REGIONAL"
                    ),
                    security_policy="TLS_1_2",
                    opts=child,
                )
                aws.apigateway.BasePathMapping(
                    f"{name}-{suffix}-mapping",
                    rest_api=api.id,
                    stage_name=stage.stage_name,
                    domain_name=domain.domain_name,
                    opts=child,
                )
                targets[suffix] = domain
            self.domain_target = targets["domain"].regional_domain_name
            regional = targets["regional-domain"]
            self.regional_domain = (
                args.regional_domain_name,
                regional.regional_domain_name,
                regional.regional_zone_id,
            )
            self.health_host = pulumi.Output.from_input(args.regional_domain_name)
            self.health_path = "/health"

        self.function_name = function.name
        self.function_arn = function.arn
        self.api_id = api.id
        self.api_name = api.name
        self.stage_name = stage.stage_name
        self.invoke_url = stage.invoke_url
        self.health_url = pulumi.Output.concat("https://", self.health_host, self.health_path)
        self.api_host = pulumi.Output.concat(api.id, f".execute-api.{args.region}.amazonaws.com")
        self.event_source_mapping_id = mapping.uuid
        self.queue_arn = queue.arn
        self.register_outputs({"function_name": self.function_name, "invoke_url": self.invoke_url})
