"""The local AWS emulator: moto, made faithful to the AWS behaviours that decide a failover's safety.

moto answers the runbook's API calls; this package adds what moto does not model and what the
runbook's safety depends on (each module cites the AWS pages it models):

* ``gaps``: RDS operations moto lacks or answers wrongly (global failover/switchover, filters).
* ``clock``: a virtual clock that every runbook wait, waiter, poll and metric timestamp reads.
* ``data``: the write log, copies per region and replication links (lag from the unapplied tail).
* ``aws``: the ``Emulator``: RDS and Aurora that take time, capacity timelines, dark regions, metrics.
* ``stores``: the DynamoDB global table and S3 receipts buckets, both ways, and their lag metrics.
* ``traffic``: CloudWatch alarm evaluation and Route 53 health checks and failover answers.

Tests and the local drill share it; the product's code paths run against it unmodified.
"""

from automation.emulator.gaps import patch_moto

__all__ = ["patch_moto"]
