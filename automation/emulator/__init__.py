"""The local AWS emulator: moto, made faithful to the AWS behaviours that decide a failover's safety.

moto answers the runbook's API calls; this package adds what moto does not model and what the
runbook's safety depends on (each module cites the AWS pages it models):

* ``gaps``: RDS operations moto lacks or answers wrongly (global failover/switchover, filters).
* ``speed``: moto's and botocore's per-call work cut, every answer unchanged (the soak's speed).
* ``clock``: a virtual clock that every runbook wait, waiter, poll and metric timestamp reads.
* ``data``: the write log, copies per region and replication links (lag from the unapplied tail).
* ``aws``: the ``Emulator``: RDS and Aurora that take time, capacity timelines, dark regions, metrics.
* ``stores``: the DynamoDB global table and S3 receipts buckets, both ways, and their lag metrics.
* ``traffic``: CloudWatch alarm evaluation and Route 53 health checks and failover answers.
* ``pg`` and ``data_api`` (opt-in, ``Emulator(postgres=...)``): real PostgreSQL servers behind the
  databases, and the RDS Data API running statements on them.

Tests and the local drill share it; the product's code paths run against it unmodified.
"""

from typing import Any

__all__: list[str] = []  # patch_moto is served lazily by __getattr__


def __getattr__(name: str) -> Any:
    # moto is a development dependency: the pure modules (clock, data, alarms, health, traffic)
    # import without it; ``patch_moto`` loads it only when asked for.
    if name == "patch_moto":
        from automation.emulator.gaps import patch_moto

        return patch_moto
    raise AttributeError(f"module 'automation.emulator' has no attribute {name!r}")
