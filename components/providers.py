"""One explicit AWS provider per region, carrying the stack's default tags.

Nothing in this program uses the default provider: every component gets its region through
``providers={"aws": ...}`` and every custom resource through ``provider=``. The dr stack builds a
provider for region A too (it owns a few resources there, such as the S3 replication rule), and
that provider must not need region A to answer while nothing in A changes: credential, region
and account checks are skipped on it, so the dr stack deploys while region A is down. The metadata
API is not skipped: it is the runner's own instance metadata service (169.254.169.254), not region
A's, and skipping it stops the provider from authenticating with an EC2 instance role ("Setting to
true prevents Pulumi from authenticating via the Metadata API":
https://www.pulumi.com/registry/packages/aws/installation-configuration/; pulumi/pulumi-aws#3960 made
``false`` the default so the provider "can authenticate against IMDS(v2) endpoints"), which region B's
provider and the program's boto3 reads use (break13b B13b-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

from components.config import StackConfig


@dataclass(frozen=True)
class Providers:
    """The two regional providers of a stack."""

    primary: aws.Provider
    dr: aws.Provider

    def for_region(self, region_role: str) -> aws.Provider:
        """The provider for ``"primary"`` (region A) or ``"dr"`` (region B)."""
        return self.primary if region_role == "primary" else self.dr


def regional_provider(name: str, region: str, tags: dict[str, str], *, tolerate_outage: bool) -> aws.Provider:
    """An AWS provider pinned to ``region`` with default tags.

    ``tolerate_outage`` skips the start-up calls to the region (STS credential check, account id
    look-up) that would fail when the region is unreachable; the credential chain (metadata API
    included) stays the same as the other provider's.
    """
    skip = tolerate_outage or None
    return aws.Provider(
        name,
        region=region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
        skip_credentials_validation=skip,
        skip_requesting_account_id=skip,
    )


def build(cfg: StackConfig) -> Providers:
    """The providers for this stack: region A's tolerates an outage when this is the dr stack."""
    tags = cfg.tag_map()
    return Providers(
        primary=regional_provider(
            f"{cfg.prefix}-{cfg.primary_region}", cfg.primary_region, tags, tolerate_outage=cfg.role == "dr"
        ),
        dr=regional_provider(f"{cfg.prefix}-{cfg.dr_region}", cfg.dr_region, tags, tolerate_outage=False),
    )
