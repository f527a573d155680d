"""What RDS describes a database in when it takes no write: shared by the runbook's darkness verdict
(``lambdas/failover/darkness.py``) and the web tier's health endpoint (``lambdas/api/health.py``)."""

from __future__ import annotations

UNAVAILABLE_INSTANCE_STATUSES = frozenset(
    {
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "insufficient-capacity",
        "restore-error",
        "stopped",
        "stopping",
        "storage-full",
    }
)
"""DB instance (and cluster) statuses in which the database takes no write from the application:
failed ("can't recover"), its KMS key out of reach, incompatible settings, stopped or stopping, out
of storage (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html;
clusters: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html).
The control plane's half of the verdict only: the data plane must agree."""
