"""How the payments function reaches the ledger in this region's database: decisions, no resources.

The function records each payment in the relational database (``lambdas/api/ledger.py``) by one of
two paths, decided here from the parsed configuration:

- :attr:`LedgerPath.DATA_API`: the RDS Data API, for an Aurora PostgreSQL global database whose
  engine version and instance class AWS documents it for. No driver and no VPC attachment: the
  function keeps reaching AWS through Lambda's own network.
- :attr:`LedgerPath.DRIVER`: ``pg8000`` over TCP from the function attached to the VPC's private
  subnets in the app tier's security group (the one the database admits), for RDS PostgreSQL, and
  for Aurora where the Data API does not apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

DATA_API_PAGE = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
    "Concepts.Aurora_Fea_Regions_DB-eng.Feature.Data_API.html"
)
"""AWS's table "Data API with Aurora PostgreSQL (serverless and provisioned)": Regions x major versions."""

DATA_API_MINIMUM_VERSIONS: dict[int, tuple[int, int]] = {
    13: (13, 11),
    14: (14, 8),
    15: (15, 3),
    16: (16, 1),
    17: (17, 4),
    18: (18, 3),
}
"""The first version of each major version the table lists, the same in every Region that has the
Data API: "Version 13.11 and higher" ... "Version 17.4 and higher", and in the page's current
version "Version 18.3 and higher" (an older version of the page stops at 17). A major version not
listed here gets the driver path."""

DATA_API_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1",
        "ap-east-1", "ap-south-1", "ap-southeast-3", "ap-southeast-5", "ap-northeast-3",
    }
)  # fmt: skip
"""Regions whose row of the table gives versions (not "Not available") for Aurora PostgreSQL, as read
here: US East (N. Virginia, Ohio), US West (N. California, Oregon), Africa (Cape Town), Asia Pacific
(Hong Kong, Mumbai, Jakarta, Malaysia, Osaka).

A Region not listed gets the driver path: those the table marks "Not available" (Asia Pacific
(Hyderabad) ap-south-2, (Melbourne) ap-southeast-4, (New Zealand) ap-southeast-6), and those whose
row was not read when this list was made. The driver works in every Region, so the cost of a wrong
"no" is a VPC attachment; a wrong "yes" is a cluster whose ledger never answers. Add a Region here
once its row in the table is read."""

DATA_API_UNAVAILABLE = frozenset({"ap-south-2", "ap-southeast-4", "ap-southeast-6"})
"""Regions the table marks "Not available" for every Aurora PostgreSQL version (named in the reason)."""

CA_BUNDLE_PAGE = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html"
"""Where AWS publishes the CA bundle that signs every RDS and Aurora server certificate
(``https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem``): ``database.caBundle``."""

CA_BUNDLE_ARCHIVE_NAME = "rds-ca-bundle.pem"
"""The CA bundle's name in the payments and ledger marker functions' code archive (its root)."""

CA_BUNDLE_FUNCTION_PATH = f"/var/task/{CA_BUNDLE_ARCHIVE_NAME}"
"""``DB_SSLROOTCERT``: where the archive's bundle is in the function. Lambda unpacks the code archive
into ``LAMBDA_TASK_ROOT``, ``/var/task`` (runtime-defined variables,
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html); an environment variable's
value is a literal string, never expanded, so the path is written out."""


def pem_problem(data: bytes) -> str | None:
    """Why ``data`` is not a PEM file of CA certificates the function can verify with; None if it is.

    Loaded as the function loads it (``ssl.create_default_context(cafile=...)`` in
    lambdas/api/ledger.py), so what passes here verifies there. A private key is refused: it has
    no place in a trust store, and the archive is readable by whoever may read the function's code.
    """
    import ssl

    text = data.decode("ascii", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        return "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    if "PRIVATE KEY-----" in text:
        return "it holds a private key"
    try:
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError) as exc:
        return f"its certificates do not parse ({exc})"
    return None


FUNCTION_ENDPOINTS = ("secretsmanager", "ssm", "rds")
"""Interface endpoints a VPC-attached payments function needs where there is no NAT gateway: the
credentials secret, the latch (``GET /health``, region B's own) and the writer check
(``rds:DescribeDBInstances``). DynamoDB and S3 go through the VPC's gateway endpoints."""


class LedgerPath(StrEnum):
    """How the payments function reaches the database."""

    DATA_API = "data-api"
    """The RDS Data API: Aurora only, where AWS documents it; no driver, no VPC attachment."""

    DRIVER = "driver"
    """``pg8000`` from the function attached to the VPC: RDS, and Aurora where the Data API does not apply."""


_VERSION = re.compile(r"^(\d+)\.(\d+)")


def ledger_path(
    mode: str, engine: str, engine_version: str, instance_class: str, regions: Iterable[str]
) -> tuple[LedgerPath, str]:
    """The path for a database configuration, and why (for the plan and the logs).

    ``regions`` are both regions of the deployment: the Data API is chosen only where AWS documents
    it in each of them, since region B's function uses the same path once its cluster is promoted.
    """
    if mode != "aurora-global" or engine != "aurora-postgresql":
        return LedgerPath.DRIVER, f"{engine} in mode {mode}: the Data API serves Aurora only"
    # "Data API isn't supported on T DB instance classes" (data-api.limitations.html).
    if instance_class.startswith("db.t"):
        return LedgerPath.DRIVER, f"{instance_class}: the Data API does not support T instance classes"
    for region in regions:
        if region not in DATA_API_REGIONS:
            why = "lists it as Not available" if region in DATA_API_UNAVAILABLE else "does not list it"
            return LedgerPath.DRIVER, (
                f"{region}: AWS's Data API table for Aurora PostgreSQL {why} ({DATA_API_PAGE})"
            )
    match = _VERSION.match(engine_version)
    if match is None:
        return LedgerPath.DRIVER, f"engine version {engine_version!r} names no minor version"
    version = (int(match.group(1)), int(match.group(2)))
    minimum = DATA_API_MINIMUM_VERSIONS.get(version[0])
    if minimum is None or version < minimum:
        return LedgerPath.DRIVER, f"Aurora PostgreSQL {engine_version}: the Data API " + (
            f"starts at {minimum[0]}.{minimum[1]}"
            if minimum
            else f"is not documented for major version {version[0]} ({DATA_API_PAGE})"
        )
    return LedgerPath.DATA_API, f"Aurora PostgreSQL {engine_version} provisioned: the Data API applies"


def ledger_statements(
    path: LedgerPath,
    *,
    region: str,
    account: str,
    secret_arn: str,
    secret_key_arn: str,
    cluster_arn: str | None = None,
    subnet_ids: list[str] | None = None,
    security_group_ids: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The payments function's permissions for its path, each naming its resources.

    Both paths read the credentials secret: the Data API "transparently calls Secrets Manager" with
    the caller's permissions (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.access.html),
    and the secret is encrypted with a customer-managed key, so the caller needs ``kms:Decrypt`` on it.
    The Data API path runs single autocommit statements, so ``rds-data:ExecuteStatement`` is its only
    action. The driver path lets Lambda manage the function's network interfaces: the actions of
    AWSLambdaVPCAccessExecutionRole without its logs:* on "*"
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html); the Describe actions
    work only on "*", the others are scoped to this region's interfaces, the function's subnets and
    its security group.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "LedgerCredentials",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn,
        },
        {
            "Sid": "LedgerCredentialsKey",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": secret_key_arn,
        },
    ]
    if path is LedgerPath.DATA_API:
        if cluster_arn is None:
            raise ValueError("the Data API path needs the cluster ARN")
        statements.append(
            {
                "Sid": "LedgerDataApi",
                "Effect": "Allow",
                "Action": "rds-data:ExecuteStatement",
                "Resource": cluster_arn,
            }
        )
        return statements
    if not subnet_ids or not security_group_ids:
        raise ValueError("the driver path needs the function's subnets and security groups")
    ec2 = f"arn:aws:ec2:{region}:{account}"
    statements += [
        {
            "Sid": "VpcInterfacesDescribe",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "Resource": "*",
        },
        {
            "Sid": "VpcInterfacesCreate",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [
                f"{ec2}:network-interface/*",
                *(f"{ec2}:subnet/{s}" for s in subnet_ids),
                *(f"{ec2}:security-group/{g}" for g in security_group_ids),
            ],
        },
        {
            "Sid": "VpcInterfacesManage",
            "Effect": "Allow",
            "Action": [
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": f"{ec2}:network-interface/*",
        },
    ]
    return statements
