"""A state-carrying plan harness: the program across a sequence of ``pulumi up``s and runbook runs.

Each ``up`` step runs the real program under Pulumi's mocks (:mod:`automation.synth`) and plans it
against the stack's *state* — the inputs and outputs the engine recorded at the previous ``up`` — the
way ``pulumi up`` without ``--refresh`` does:

- ``ignore_changes`` takes the listed properties from the previous state's inputs (never on create);
- each changed input of a stateful type is classified with :data:`lifecycle_tables.REPLACEMENT`
  (force-new → replace, else in-place update); an input missing from the table is *unclassified*;
- ``protect`` stops the update when a protected resource would be replaced (new goal protected) or
  deleted (state protected); ``retain_on_delete`` (from state) turns a delete into a *release*;
- in-place updates the provider or AWS refuses (:data:`lifecycle_tables.REJECTED`) stop the update.

A step that would stop the engine applies nothing (the real engine may have applied part of it).

A *live world* holds what AWS has: each managed resource's live attributes (only the inputs an
update changes are written, so drift made out of band survives an update that does not touch it),
the database topology (who replicates from whom, which one holds the latest writes), the failover
switch metric, whether region A answers, and what the runbook created out of band. Runbook steps
change only the live world, as boto3 would. Invokes answer from the live world: the latch the program
reads is the live parameter's value, and the StackReference answers the primary stack's last outputs.

After every step the canary ticks (switch metric = 1 while the latch says active, as
``lambdas/health_check`` does) and the harness observes where traffic goes (Route 53: region A while
its endpoint is healthy and the switch alarm is OK), each region's web capacity, the writer and
the latch, and checks the invariants (:func:`invariants`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from automation import synth
from automation.lifecycle_tables import (
    ENGINE_RULES,
    EXISTS_ERRORS,
    IMPORT_ABSENT_DIFFERS,
    IMPORT_UNREAD,
    NO_DELETE_TYPES,
    REJECTED_DELETES,
    RENAMES,
    REPLACEMENT,
    STATEFUL_TYPES,
    SUBRESOURCE_LOSSES,
    WHOLE_WRITE_SOURCE,
    WHOLE_WRITE_UPDATES,
    Change,
    rejected,
)
from lambdas.failover.journal import DRAIN_PROOF_MARK as DRAIN_PROOF
from lambdas.failover.names import (
    FAILBACK_STAMP_TAG,
    WRITER_BACK_PHASES,
    current_failback_id,
    failover_instance_id,
    is_failover_instance,
    new_failover_token,
    retained_instance_id,
)

# Inputs that differ between two runs of the same program because they are build artefacts.
VOLATILE_INPUTS = frozenset({"code", "sourceCodeHash", "__defaults"})
LAG_METRICS = frozenset({"ReplicaLag", "AuroraGlobalDBReplicationLag"})
# Failback phases during which region B has stopped taking writes while traffic still goes there:
# the README's planned write outage ("a planned write outage starts here" until route-back).
DECLARED_FAILOVER_OUTAGE = "latch-activate"
"""A declared failover moves traffic first (``latch activate``), then lights region B (``dr:active
true``): from one to the other, a planned write outage (README, "Failing over")."""
PLANNED_OUTAGE_PHASES = frozenset({"drain", "switch-writer", DECLARED_FAILOVER_OUTAGE})
LAG_WATCH_PHASES = frozenset({"replicate", "drain"})  # the lag decides when the writer may move


class Action(StrEnum):
    """What the engine does with one resource in one update."""

    CREATE = "create"
    IMPORT = "import"  # the `import` option: an existing resource adopted into state, nothing created
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    RELEASE = "release"  # removed from the program with retainOnDelete: forgotten, kept in AWS
    SAME = "same"


# --------------------------------------------------------------------------------------------------
# stored state


@dataclass
class Stored:
    """One resource as the stack's state holds it."""

    urn: str
    type: str
    name: str
    stack: str
    region: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    import_id: str | None = None

    @property
    def label(self) -> str:
        return f"{self.type} {self.name} (stack {self.stack})"


def plain(value: Any) -> Any:
    """A recorded value with Pulumi's secret wrappers removed (the harness compares values)."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def stored_from(r: synth.Resource) -> Stored:
    return Stored(
        urn=r.urn,
        type=r.type,
        name=r.name,
        stack=r.stack,
        region=r.region,
        inputs=plain(r.inputs),
        outputs=plain(r.outputs),
        protect=r.protect,
        retain_on_delete=r.retain_on_delete,
        ignore_changes=list(r.ignore_changes),
        import_id=r.import_id,
    )


def managed(resources: Iterable[synth.Resource]) -> list[Stored]:
    """The custom resources the engine diffs (providers and Pulumi's own resources aside)."""
    return [
        stored_from(r)
        for r in resources
        if r.custom and not r.is_provider and not r.type.startswith("pulumi:")
    ]


# --------------------------------------------------------------------------------------------------
# the plan of one update (pure: old state + new goal + live facts)


@dataclass
class ResourcePlan:
    """One resource's plan in one update."""

    stack: str
    urn: str
    type: str
    name: str
    region: str | None
    action: Action
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    force_new: list[str] = field(default_factory=list)
    unclassified: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    options: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # protect, retain, ignore_changes
    # `import`: each input the program declares that differs from the live resource (key, program, live)
    import_mismatches: list[tuple[str, Any, Any]] = field(default_factory=list)
    # an in-place update that rewrote an input held out of band (ignore_changes) with the state's value:
    # (key, live before, written); see WHOLE_WRITE_UPDATES
    overwrites: list[tuple[str, Any, Any]] = field(default_factory=list)
    # a part of the resource holding data that this in-place update deletes or recreates (SUBRESOURCE_LOSSES)
    losses: list[str] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES

    @property
    def label(self) -> str:
        return f"{self.type} {self.name}"


def effective_inputs(old: Stored, new: Stored) -> dict[str, Any]:
    """The new goal's inputs after ``ignore_changes``: ignored properties keep the state's value."""
    eff = dict(new.inputs)
    for path in new.ignore_changes:
        top = path.split(".", 1)[0].split("[", 1)[0]
        if top in old.inputs:
            eff[top] = old.inputs[top]
        else:
            eff.pop(top, None)
    return eff


def changed_inputs(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    keys = (set(old) | set(new)) - VOLATILE_INPUTS
    return {k: (old.get(k), new.get(k)) for k in sorted(keys) if old.get(k) != new.get(k)}


Facts = Mapping[str, Any]


def plan_resource(old: Stored | None, new: Stored, facts: Facts | None = None) -> tuple[ResourcePlan, Stored]:
    """Plan one resource of the new goal against its state; returns the plan and the state to store."""
    facts = facts or {}
    if old is None and new.import_id:
        # https://www.pulumi.com/docs/iac/concepts/options/import/: adopt, or fail if it does not exist.
        plan = ResourcePlan(new.stack, new.urn, new.type, new.name, new.region, Action.IMPORT)
        if new.import_id not in facts.get("existing_identifiers", ()):
            plan.errors.append(f"{plan.label}: import of {new.import_id!r}, which does not exist in AWS")
            return plan, new
        live = facts.get("import_live")
        if live is not None:
            plan.import_mismatches = import_mismatches(new, live, facts.get("resolve") or (lambda v: v))
        if plan.import_mismatches:
            diff = "; ".join(
                f"{k}: program {_short(p)}, AWS {_short(a)}" for k, p, a in plan.import_mismatches
            )
            plan.errors.append(
                f"{plan.label}: import of {new.import_id!r}: {diff}: " + ENGINE_RULES["import-mismatch"]
            )
        return plan, new
    if old is None:
        plan = ResourcePlan(new.stack, new.urn, new.type, new.name, new.region, Action.CREATE)
        exists = EXISTS_ERRORS.get(new.type)
        if exists and new.inputs.get(exists[0]) in facts.get("existing_identifiers", ()):
            plan.errors.append(
                f"{plan.label}: {exists[0]} {new.inputs[exists[0]]!r} already exists in AWS (created out of "
                f"band); the create fails: {exists[1]}"
            )
        return plan, new
    eff = effective_inputs(old, new)
    changed = changed_inputs(old.inputs, eff)
    stored = Stored(**{**new.__dict__, "inputs": eff})
    plan = ResourcePlan(new.stack, new.urn, new.type, new.name, new.region, Action.SAME, changed)
    for opt in ("protect", "retain_on_delete", "ignore_changes"):
        if getattr(old, opt) != getattr(new, opt):
            plan.options[opt] = (getattr(old, opt), getattr(new, opt))
    if not changed:
        return plan, stored
    rules = REPLACEMENT.get(new.type)
    plan.action = Action.UPDATE
    if rules is not None:
        for key in changed:
            kind = rules.classify(key)
            if kind == "force-new":
                plan.force_new.append(key)
            elif kind is None:
                plan.unclassified.append(key)
        if plan.force_new:
            plan.action = Action.REPLACE
    if plan.action is Action.REPLACE and new.protect:
        plan.errors.append(
            f"{plan.label}: replacement ({', '.join(plan.force_new)}) of a protected resource: "
            + ENGINE_RULES["protect-replace"]
        )
    loss = SUBRESOURCE_LOSSES.get(new.type)
    if loss is not None and loss[0] in changed:
        for what in loss[1](*changed[loss[0]]):
            plan.losses.append(f"{plan.label}: {loss[0]}: {what} [{loss[2]}]")
        # A routine update never deletes data: the step stops here, reported as no-stateful-delete.
        plan.errors.extend(plan.losses)
    for key, (before, after) in changed.items():
        for rule in rejected(Change(new.type, key, before, after, facts)):
            plan.errors.append(
                f"{plan.label}: {key} {_short(before)} -> {_short(after)}: {rule.error} [{rule.source}]"
            )
    return plan, stored


def import_mismatches(new: Stored, live: Mapping[str, Any], resolve: Any) -> list[tuple[str, Any, Any]]:
    """The inputs of an ``import`` that differ from the live resource: (key, program's, AWS's).

    The engine diffs the program's inputs against the resource as the provider reads it
    (:data:`lifecycle_tables.ENGINE_RULES` ``import-mismatch``), honouring ``ignoreChanges``
    (pulumi/pulumi#5976, CLI 2.16: "ignoreChanges is respected during import"). Compared: every
    input the program declares, except those the provider never reads back
    (:data:`lifecycle_tables.IMPORT_UNREAD`); an input AWS has no value for (``live`` lacks it: the
    creator left it to AWS) differs from any value the program declares. An input the program
    leaves out differs only where the provider does not compute it
    (:data:`lifecycle_tables.IMPORT_ABSENT_DIFFERS`). References (ARNs, ids) compare by the
    database they name (``resolve``).
    """
    ignored = {p.split(".", 1)[0].split("[", 1)[0] for p in new.ignore_changes}
    skip = VOLATILE_INPUTS | IMPORT_UNREAD.get(new.type, frozenset()) | ignored
    out: list[tuple[str, Any, Any]] = []

    def norm(v: Any) -> Any:
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()} or None
        return None if v in ("", None) else resolve(v)

    for key in sorted(set(new.inputs) - skip):
        mine, theirs = new.inputs[key], live.get(key)
        if mine is not None and norm(mine) != norm(theirs):
            out.append((key, mine, theirs))
    for key in sorted(IMPORT_ABSENT_DIFFERS.get(new.type, frozenset()) - skip - set(new.inputs)):
        if norm(live.get(key)) is not None:
            out.append((key, None, live[key]))
    return out


def plan_removal(old: Stored) -> ResourcePlan:
    """A resource in state that the new goal no longer declares."""
    action = Action.RELEASE if old.retain_on_delete else Action.DELETE
    plan = ResourcePlan(old.stack, old.urn, old.type, old.name, old.region, action)
    if old.protect:
        plan.errors.append(
            f"{plan.label}: removed from the program while protected: " + ENGINE_RULES["protect-delete"]
        )
    return plan


def _short(value: Any, width: int = 60) -> str:
    text = synth.show(value) if value is not None else "(absent)"
    return text if len(text) <= width else text[: width - 1] + "…"


# --------------------------------------------------------------------------------------------------
# the live world


_RUNBOOK_FAILBACK_AT = datetime(2030, 1, 1, tzinfo=UTC)
"""The instant the modelled first runbook failback renames the old primary (its stamp; any fixed time).

Each later failback of the same world is one hour later (:meth:`LiveWorld.next_failback_at`): the
runbook stamps the retained name with the instant it decided the rename
(lambdas/failover/names.py ``retained_instance_id``), so two failbacks never share a retained name."""


RANDOM_BACKUP_WINDOW = "07:14-07:44"
"""The backup window AWS picks for the runbook's promoted failback replica (PromoteReadReplica without
``PreferredBackupWindow``: random within the region's 8-hour block): any window the program does not
declare (components/data.py ``BACKUP_WINDOW`` is 03:00-04:00), so an adoption that declares one fails."""


_RUNBOOK_CLOCK = datetime(2025, 1, 1, tzinfo=UTC)
"""When the modelled runbook's first write happens (any fixed time: syntheses stay cacheable)."""


@dataclass
class Db:
    """A database AWS has: an RDS instance or an Aurora cluster."""

    ident: str
    region: str
    kind: Literal["instance", "cluster"]
    source: str | None  # the database it replicates from; None: standalone / writer
    managed_by: str | None  # "stack:urn", or None: out of band or released
    engine_version: str | None = None
    global_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)  # RDS tags: they follow the instance through a rename


@dataclass
class LiveWorld:
    """What AWS has, as far as the invariants need it."""

    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)  # urn -> live attributes
    dbs: dict[str, Db] = field(default_factory=dict)
    cluster_instances: dict[str, str] = field(default_factory=dict)  # instance ident -> cluster ident
    refs: dict[str, str] = field(default_factory=dict)  # ARN / id output -> db ident
    writer: str | None = None  # the database holding every acknowledged write
    switch_metric: float | None = None
    region_a_up: bool = True
    out_of_band: list[str] = field(default_factory=list)  # things the runbook made that no state holds
    released: list[str] = field(default_factory=list)
    runbook_failbacks: int = 0  # how many runbook failbacks renamed a region-A primary (their stamps)
    # Each RDS instance's, cluster's and cluster instance's attributes as AWS has them, by identifier,
    # in the provider's input names: what an `import` of it is compared with (a stack's create
    # inputs, its in-place updates, and what the runbook's requests set out of band).
    rds_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The run journal beside the latch (SSM <latch>-journal, lambdas/failover/journal.py): what the
    # runbook records of a failback under way; the primary stack reads it (components/failover.py).
    journal: dict[str, Any] = field(default_factory=dict)
    clock: int = 0  # minutes since _RUNBOOK_CLOCK: each runbook write is stamped one minute later

    def now(self) -> str:
        """The instant of the runbook's next write (ISO 8601, as stepkit._now): later at every call."""
        self.clock += 1
        return (_RUNBOOK_CLOCK + timedelta(minutes=self.clock)).isoformat(timespec="seconds")

    def next_failback_at(self) -> datetime:
        """The stamp of the next runbook failback's rename: distinct per failback, deterministic."""
        at = _RUNBOOK_FAILBACK_AT + timedelta(hours=self.runbook_failbacks)
        self.runbook_failbacks += 1
        return at

    def promote(self, ident: str) -> None:
        """A replica becomes standalone; it becomes *the* writer only if it descends from the writer."""
        db = self.dbs[ident]
        if db.source is None:
            return
        if self.descends_from_writer(ident):
            self.writer = ident
        db.source = None
        if ident in self.rds_attrs:
            self.rds_attrs[ident]["replicateSourceDb"] = None  # PromoteReadReplica: standalone

    def descends_from_writer(self, ident: str) -> bool:
        seen: set[str] = set()
        cur: str | None = ident
        while cur is not None and cur not in seen:
            if cur == self.writer:
                return True
            seen.add(cur)
            cur = self.dbs[cur].source if cur in self.dbs else None
        return False

    def global_failover(self, target: str) -> None:
        """Aurora global failover/switchover: ``target`` writes; the other members replicate from it."""
        gid = self.dbs[target].global_id
        for db in self.dbs.values():
            if db.kind == "cluster" and db.global_id == gid:
                db.source = None if db.ident == target else target
        self.writer = target

    def instances_of(self, cluster: str) -> list[str]:
        return [i for i, c in self.cluster_instances.items() if c == cluster]


def _resolve(world: LiveWorld, ref: Any) -> str | None:
    return world.refs.get(ref) if isinstance(ref, str) else None


def apply_to_world(world: LiveWorld, plan: ResourcePlan, old: Stored | None, new: Stored | None) -> None:
    """What AWS does when the engine applies ``plan``."""
    if plan.action is Action.SAME:
        return
    if plan.action is Action.IMPORT:
        assert new is not None
        world.attrs[new.urn] = dict(new.inputs)
        ident = _ident(new)
        if ident in world.dbs:
            world.dbs[ident].managed_by = f"{new.stack}:{new.urn}"
        return
    if plan.action in (Action.DELETE, Action.RELEASE):
        assert old is not None
        _remove_db(world, old, release=plan.action is Action.RELEASE)
        if plan.action is Action.DELETE:
            world.attrs.pop(old.urn, None)
            world.rds_attrs.pop(_ident(old) or "", None)
        else:
            world.released.append(f"{old.type} {old.name} ({_ident(old) or old.urn})")
        return
    assert new is not None
    if plan.action is Action.REPLACE:
        assert old is not None
        _remove_db(world, old, release=False)
        world.attrs[new.urn] = dict(new.inputs)
        _create_db(world, new)
        return
    if plan.action is Action.CREATE:
        world.attrs[new.urn] = dict(new.inputs)
        _create_db(world, new)
        return
    live = world.attrs.setdefault(new.urn, {})
    for key, (_old, value) in plan.changed.items():
        live[key] = value
    whole = WHOLE_WRITE_UPDATES.get(new.type)
    if whole is not None and set(plan.changed) - whole[0]:
        # The provider's update sends these inputs whole, as the planned state has them (under
        # ignore_changes: the old state's), whatever changed: what was written out of band is overwritten.
        for key in whole[1]:
            if key in new.inputs and live.get(key) != new.inputs[key]:
                plan.overwrites.append((key, live.get(key), new.inputs[key]))
                live[key] = new.inputs[key]
    if RENAMES.get(new.type) in plan.changed:
        before, after = plan.changed[RENAMES[new.type]]
        _rename_db(world, before, after)
    ident = _ident(new)
    if ident in world.rds_attrs:
        world.rds_attrs[ident].update({k: v for k, (_o, v) in plan.changed.items()})
    source = plan.changed.get("replicateSourceDb")
    if new.type == "aws:rds/instance:Instance" and ident and source is not None and source[1] in (None, ""):
        world.promote(ident)
    if new.type == "aws:rds/globalCluster:GlobalCluster" and "engineVersion" in plan.changed:
        gid = new.inputs.get("globalClusterIdentifier")
        for db in world.dbs.values():
            if db.global_id == gid:
                db.engine_version = plan.changed["engineVersion"][1]
    if (
        new.type in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")
        and "engineVersion" in plan.changed
        and ident in world.dbs
    ):
        world.dbs[ident].engine_version = plan.changed["engineVersion"][1]


def _rename_db(world: LiveWorld, before: str, after: str) -> None:
    """ModifyDBInstance NewDBInstanceIdentifier: the instance the name ``before`` has now takes ``after``."""
    if before not in world.dbs or after in world.dbs:
        return  # RDS refuses a rename onto a name in use (DBInstanceAlreadyExists)
    db = world.dbs.pop(before)
    world.dbs[after] = dataclasses.replace(db, ident=after)
    if before in world.rds_attrs:
        world.rds_attrs[after] = {**world.rds_attrs.pop(before), "identifier": after}
    for other in world.dbs.values():
        if other.source == before:
            other.source = after
    world.refs = {k: (after if v == before else v) for k, v in world.refs.items()}
    if world.writer == before:
        world.writer = after


def _ident(r: Stored) -> str | None:
    key = {
        "aws:rds/instance:Instance": "identifier",
        "aws:rds/cluster:Cluster": "clusterIdentifier",
        "aws:rds/clusterInstance:ClusterInstance": "identifier",
    }.get(r.type)
    return r.inputs.get(key) if key else None


def _create_db(world: LiveWorld, r: Stored) -> None:
    ident = _ident(r)
    if ident is None:
        return
    world.rds_attrs[ident] = {k: v for k, v in r.inputs.items() if k not in VOLATILE_INPUTS}
    owner = f"{r.stack}:{r.urn}"
    for out in ("arn", "id"):
        if isinstance(r.outputs.get(out), str):
            world.refs[r.outputs[out]] = ident
    if r.type == "aws:rds/clusterInstance:ClusterInstance":
        cluster = _resolve(world, r.inputs.get("clusterIdentifier"))
        if cluster is not None:
            world.cluster_instances[ident] = cluster
        return
    region = r.region or ""
    if r.type == "aws:rds/instance:Instance":
        source = _resolve(world, r.inputs.get("replicateSourceDb"))
        version = r.inputs.get("engineVersion")
        if version is None and source in world.dbs:
            # A read replica is created on its source's engine version
            # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html).
            version = world.dbs[source].engine_version
        world.dbs[ident] = Db(ident, region, "instance", source, owner, version)
    else:
        gid = r.inputs.get("globalClusterIdentifier")
        writer_cluster = next(
            (d.ident for d in world.dbs.values() if d.global_id == gid and d.source is None), None
        )
        source = None if r.inputs.get("masterUsername") else writer_cluster
        world.dbs[ident] = Db(ident, region, "cluster", source, owner, r.inputs.get("engineVersion"), gid)
    if world.dbs[ident].source is None and world.writer is None:
        world.writer = ident


def _remove_db(world: LiveWorld, r: Stored, *, release: bool) -> None:
    ident = _ident(r)
    if ident is None:
        return
    if r.type == "aws:rds/clusterInstance:ClusterInstance":
        if not release:
            world.cluster_instances.pop(ident, None)
        return
    if ident not in world.dbs:
        return
    if release:
        if world.dbs[ident].managed_by == f"{r.stack}:{r.urn}":  # another stack may have adopted it
            world.dbs[ident].managed_by = None
        return
    del world.dbs[ident]
    if world.writer == ident:
        world.writer = None  # every acknowledged write is gone with it


# --------------------------------------------------------------------------------------------------
# observation and invariants


@dataclass(frozen=True)
class LagAlarm:
    """A replica-lag alarm and what CloudWatch would make of it."""

    stack: str
    name: str
    region: str | None
    watches: str | None  # database ident
    treat_missing: str
    state: str  # OK | ALARM | INSUFFICIENT_DATA | OK (no data)


@dataclass
class Observation:
    """Where the system stands after a step."""

    traffic: str  # "A" | "B"
    capacity: dict[str, int]
    writer: str | None
    writer_region: str | None  # "A" | "B"
    latch: str | None  # "active" | "standby" | None (not created)
    switch: str  # ALARM | OK
    protected: bool
    lag_alarms: list[LagAlarm]
    unmanaged_dbs: list[str]
    # rds-replica: the database instance each region's application writes to (DB_INSTANCE_ID of its
    # payments function, as the last update left it): what region A's endpoint actually reaches.
    app_dbs: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        cap = " ".join(f"{k} {v}" for k, v in sorted(self.capacity.items()))
        return (
            f"traffic {self.traffic}, writer {self.writer_region or '-'} ({self.writer or 'none'}), "
            f"latch {self.latch or '-'}, switch {self.switch}, capacity {cap}, "
            f"{'protected' if self.protected else 'NOT protected'}"
        )


@dataclass(frozen=True)
class Violation:
    """An invariant broken at a step; the text names the resource and the invariant."""

    invariant: str
    text: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.text}"


# --------------------------------------------------------------------------------------------------
# steps and scenarios


@dataclass(frozen=True)
class Up:
    """``pulumi config set/rm ...`` then ``pulumi up -s <stack>`` (no ``--refresh``)."""

    stack: str
    label: str
    set: Mapping[str, Any] = field(default_factory=dict)
    rm: tuple[str, ...] = ()


@dataclass(frozen=True)
class Runbook:
    """The runbook run with boto3 (break-glass CLI or Step Functions): live changes only.

    ``failover``: fence region A where it answers, scale B, promote, throw the switch, write the latch.
    ``failback``: replicate back, stop B's writes, move the writer, unfence A, release the switch,
    clear the latch. ``promote``: only the promote step (the README hands Aurora promotion to it).
    ``activate``: ``python -m automation latch activate`` (a declared failover's first step): the
    runbook's ``fence_primary``, ``write_latch``, ``throw_switch`` and ``promote_database`` (both modes).
    ``switch-writer``: ``python -m automation latch switch-writer`` (Aurora): a switchover to region A.
    ``release``: ``python -m automation latch release`` (automation/latch_cli.py): once region A holds
    the writer, the runbook's ``release_switch`` and ``clear_latch`` steps; refused otherwise.
    ``failback-started``: a failback under way (running, or stopped and not resumed yet): its steps up
    to ``scale_down_dr`` ran (rds-replica: old primary renamed, replica under ``<primary>`` created),
    the writer has not moved, the latch still says active; ``failback`` afterwards resumes it.
    """

    action: Literal[
        "failover", "failback", "failback-started", "promote", "activate", "switch-writer", "release"
    ]
    label: str
    planned: bool = True
    """``activate`` only: without ``--unplanned``, refused before any change over a region A that does not
    answer (automation/latch_cli.py ``_refuse_planned_without_region_a``: PlannedNeedsRegionA)."""


@dataclass(frozen=True)
class RegionA:
    """Region A goes down or comes back."""

    up: bool
    label: str


Step = Up | Runbook | RegionA


@dataclass
class StepResult:
    """One step of a scenario: its plan, whether it applied, and what was observed after it."""

    index: int
    step: Step
    plans: list[ResourcePlan]
    errors: list[str]
    refused: str | None
    applied: bool
    observation: Observation
    violations: list[Violation]
    phase: str | None

    @property
    def label(self) -> str:
        return self.step.label

    def count(self, *actions: Action, stateful: bool | None = None) -> int:
        return sum(
            1 for p in self.plans if p.action in actions and (stateful is None or p.stateful == stateful)
        )

    def unclassified(self) -> list[tuple[ResourcePlan, str]]:
        return [(p, k) for p in self.plans for k in p.unclassified]


@functools.lru_cache(maxsize=256)
def _synth(
    stack: str,
    overrides_json: str,
    latch: str | None,
    primary_json: str,
    live_json: str,
    journal: str | None = None,
) -> synth.Synthesis:
    primary = json.loads(primary_json) if primary_json else None
    return synth.synthesize(
        stack,
        json.loads(overrides_json),
        latch=latch,
        primary_outputs=primary,
        live=json.loads(live_json),
        journal=journal,
    )


@functools.cache
def _regions() -> tuple[str, str]:
    cfg = synth.load_stack_config("dr")
    return cfg["pilotlight:primaryRegion"], cfg["pilotlight:drRegion"]


_REPLICA_NOT_INHERITED = frozenset(
    {
        "identifier",
        "replicateSourceDb",
        "kmsKeyId",
        "tags",
        # Region B's key cannot encrypt in region A: AWS uses region A's default key for the metrics.
        "performanceInsightsKmsKeyId",
        # A cross-region replica gets the engine's default parameter group unless one is named.
        "parameterGroupName",
        # Provider-only (never read back) or names only valid in region B.
        "applyImmediately",
        "deleteAutomatedBackups",
        "finalSnapshotIdentifier",
        "skipFinalSnapshot",
    }
)


def _runbook_failback_replica(
    ident: str,
    old: Mapping[str, Any],
    source: Mapping[str, Any],
    ctx: Mapping[str, Any],
    tags: dict[str, str],
) -> dict[str, Any]:
    """The instance the runbook's failback creates under ``<primary>``, as AWS has it (provider input names).

    lambdas/failover/failback.py ``_failback_replica_request``: CreateDBInstanceReadReplica of region B's
    writer (``source``), modelled on the renamed old primary (``old``): its class, Multi-AZ, public
    access, subnet group, security groups, IAM authentication and deletion protection (when on); the
    parameter group only for MySQL; region A's key (``primaryKmsKeyArn``) since the source is
    encrypted; the failback-stamp tag. AWS: "All read replica DB instances are created with backups
    disabled. All other DB instance attributes ... are inherited from the source DB instance, except as
    specified"; copying tags to snapshots is off by default; a cross-Region replica gets the default
    DB parameter group unless one is named
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstanceReadReplica.html).
    """
    attrs = {k: v for k, v in source.items() if k not in _REPLICA_NOT_INHERITED}
    attrs.update(
        {
            "identifier": ident,
            "replicateSourceDb": source.get("identifier"),
            "instanceClass": old.get("instanceClass") or source.get("instanceClass"),
            "multiAz": bool(old.get("multiAz")),
            "publiclyAccessible": bool(old.get("publiclyAccessible")),
            "dbSubnetGroupName": old.get("dbSubnetGroupName"),
            "vpcSecurityGroupIds": old.get("vpcSecurityGroupIds"),
            "backupRetentionPeriod": 0,
            "copyTagsToSnapshot": False,
            "tags": dict(tags) or None,
        }
    )
    if str(source.get("engine")).startswith("mysql"):
        attrs["parameterGroupName"] = old.get("parameterGroupName")
    if old.get("iamDatabaseAuthenticationEnabled"):
        attrs["iamDatabaseAuthenticationEnabled"] = True
    if old.get("deletionProtection"):
        attrs["deletionProtection"] = True
    if source.get("storageEncrypted"):
        attrs["kmsKeyId"] = ctx.get("primaryKmsKeyArn")
    return {k: v for k, v in attrs.items() if v is not None}


def _runbook_latch(state: str, runbook: str, since: str) -> str:
    # The latch value the runbook writes (lambdas/failover/traffic.py write_latch, failback.py clear_latch).
    return json.dumps({"state": state, "since": since, "runbook": runbook})


class Lifecycle:
    """Runs steps against stored state and a live world. One instance per scenario run."""

    def __init__(self, base: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.config: dict[str, dict[str, Any]] = {s: dict((base or {}).get(s, {})) for s in ("primary", "dr")}
        self.state: dict[str, dict[str, Stored]] = {"primary": {}, "dr": {}}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.world = LiveWorld()
        self.results: list[StepResult] = []
        self.syntheses: list[synth.Synthesis] = []
        self.stopped = 0  # steps not run after a failed update
        self.runbook_draining = False  # a runbook failback under way stopped region B's writes
        # What AWS recorded of region B taking writes (web tier launches, function invocations): {"what",
        # "at"} entries a step adds by hand; the program reads those after the proof's drain
        # (components/program.py read_region_b_served_since).
        self.region_b_served: list[dict[str, str]] = []

    # ---- helpers over state and world

    def find(self, stack: str, type_: str, name: str) -> Stored | None:
        return next((r for r in self.state[stack].values() if r.type == type_ and r.name == name), None)

    def live(self, stack: str, type_: str, name: str) -> dict[str, Any] | None:
        r = self.find(stack, type_, name)
        return None if r is None else self.world.attrs.get(r.urn)

    def regions(self) -> tuple[str, str]:
        return _regions()

    def latch_value(self) -> str | None:
        live = self.live("dr", "aws:ssm/parameter:Parameter", "dr-failover-latch")
        return None if live is None else live.get("value")

    def live_reads(self) -> str:
        """What the program's live reads answer: RDS instances' sources (rds.getInstance, "" when
        standalone), each region's RDS instances (rds.getInstances, released ones included: AWS keeps
        them), each region's Aurora clusters (rds.getClusters) and their instances and engine versions
        (rds.getCluster clusterMembers, engineVersion)."""
        w = self.world
        members: dict[str, list[str]] = {}
        for inst, cluster in w.cluster_instances.items():
            members.setdefault(cluster, []).append(inst)
        return json.dumps(
            {
                "rdsSources": {d.ident: d.source or "" for d in w.dbs.values() if d.kind == "instance"},
                "rdsTags": {d.ident: dict(d.tags) for d in w.dbs.values() if d.kind == "instance" and d.tags},
                "rdsInstances": {
                    region: sorted(
                        d.ident for d in w.dbs.values() if d.kind == "instance" and d.region == region
                    )
                    for region in {d.region for d in w.dbs.values()}
                },
                "clusterMembers": {c: sorted(m) for c, m in members.items()},
                # Each region's Aurora clusters (rds.getClusters) and their engine versions (rds.getCluster).
                "rdsClusters": {
                    region: sorted(
                        d.ident for d in w.dbs.values() if d.kind == "cluster" and d.region == region
                    )
                    for region in {d.region for d in w.dbs.values()}
                },
                "clusterVersions": {d.ident: d.engine_version for d in w.dbs.values() if d.kind == "cluster"},
                # Each region's Auto Scaling groups as AWS has them (autoscaling.getAmiIds, getGroup):
                # what the runbook or a hand changed out of band included.
                "asgs": self._live_groups(),
                # Each region's functions' reserved concurrency (lambda.getFunction; -1: unreserved).
                "functions": self._live_functions(),
                # Region B's scaling activities and invocations as AWS recorded them (read_region_b_served_since).
                "regionBServed": list(self.region_b_served),
                # The dr stack's failback record (SSM, beside the latch): what its last update wrote.
                "failbackPhase": (
                    self.live("dr", "aws:ssm/parameter:Parameter", "dr-failback-phase") or {}
                ).get("value"),
            },
            sort_keys=True,
        )

    def _live_groups(self) -> dict[str, list[dict[str, Any]]]:
        """region -> the Auto Scaling groups the stacks made, as the live world has them: the name (the
        logical name: AWS's adds a suffix), the tags the program gave them and their sizes (desired:
        :func:`asg_capacity`, what AWS keeps within [min, max])."""
        out: dict[str, list[dict[str, Any]]] = {}
        for stack in ("primary", "dr"):
            for r in self.state[stack].values():
                live = self.world.attrs.get(r.urn)
                if r.type != "aws:autoscaling/group:Group" or live is None or r.region is None:
                    continue
                tags = {str(t.get("key")): str(t.get("value")) for t in live.get("tags") or []}
                out.setdefault(r.region, []).append(
                    {
                        "name": r.name,
                        "tags": tags,
                        "minSize": int(live.get("minSize") or 0),
                        "desiredCapacity": asg_capacity(live),
                        "maxSize": int(live.get("maxSize") or 0),
                    }
                )
        return out

    def _live_functions(self) -> dict[str, dict[str, int]]:
        """region -> function name -> its reserved concurrency in the live world (-1: unreserved)."""
        out: dict[str, dict[str, int]] = {}
        for stack in ("primary", "dr"):
            for r in self.state[stack].values():
                live = self.world.attrs.get(r.urn)
                if r.type != "aws:lambda/function:Function" or live is None or r.region is None:
                    continue
                reserved = live.get("reservedConcurrentExecutions")
                out.setdefault(r.region, {})[str(live.get("name"))] = (
                    -1 if reserved is None else int(reserved)
                )
        return out

    def facts(self, stack: str, r: Stored) -> dict[str, Any]:
        """Live facts the rejected-change rules need about ``r``."""
        w = self.world
        ident = _ident(r)
        facts: dict[str, Any] = {"existing_identifiers": set(w.dbs) | set(w.cluster_instances)}
        if r.import_id is not None:
            facts["import_live"] = w.rds_attrs.get(r.import_id)
            facts["resolve"] = lambda v: w.refs.get(v, v) if isinstance(v, str) else v
        if r.type == "aws:rds/instance:Instance" and ident in w.dbs:
            facts["is_replica"] = w.dbs[ident].source is not None
            # the engine versions of its read replicas (AWS upgrades replicas first: REJECTED)
            facts["replica_versions"] = [d.engine_version for d in w.dbs.values() if d.source == ident]
        if r.type == "aws:rds/instance:Instance":
            facts["allow_major_version_upgrade"] = bool(r.inputs.get("allowMajorVersionUpgrade"))
        if r.type == "aws:rds/cluster:Cluster":
            facts["global_member"] = bool(r.inputs.get("globalClusterIdentifier"))
        if r.type == "aws:rds/globalCluster:GlobalCluster":
            gid = r.inputs.get("globalClusterIdentifier")
            facts["headless_members"] = [
                d.ident for d in w.dbs.values() if d.global_id == gid and not w.instances_of(d.ident)
            ]
        return facts

    # ---- steps

    def run(self, steps: Sequence[Step]) -> list[StepResult]:
        """Run ``steps`` in order; a failed update stops the procedure, as it stops the operator."""
        for step in steps:
            if self.step(step).errors:
                self.stopped = len(steps) - len(self.results)
                break
        return self.results

    def step(self, step: Step) -> StepResult:
        plans: list[ResourcePlan] = []
        errors: list[str] = []
        refused: str | None = None
        applied = True
        if isinstance(step, Up):
            plans, errors, refused = self._up(step)
            applied = not errors and refused is None
        elif isinstance(step, Runbook):
            refused = self._runbook(step)
            applied = refused is None
        else:
            self.world.region_a_up = step.up
        self._canary()
        # A latch release or an Aurora switch-writer runs within the failback phase the dr stack is in.
        # A primary update within the failback (region A's application following the writer) too, and a
        # refused runbook, which changed nothing.
        in_failback = isinstance(step, Up) or (
            isinstance(step, Runbook) and (step.action in ("release", "switch-writer") or refused is not None)
        )
        phase = self.config["dr"].get("dr:failback") if in_failback else None
        if isinstance(step, Runbook) and step.action == "activate":
            phase = DECLARED_FAILOVER_OUTAGE
        if self.runbook_draining:
            phase = "drain"  # a runbook failback stopped region B's writes: the planned write outage
        obs = self.observe()
        result = StepResult(len(self.results) + 1, step, plans, errors, refused, applied, obs, [], phase)
        result.violations = invariants(result, self)
        self.results.append(result)
        return result

    def _up(self, step: Up) -> tuple[list[ResourcePlan], list[str], str | None]:
        from components.config import ConfigError
        from components.failover import FailoverRefused

        cfg = dict(self.config[step.stack])
        cfg.update(step.set)
        for key in step.rm:
            cfg.pop(key, None)
        self.config[step.stack] = cfg
        latch = self.latch_value()
        journal = json.dumps(self.world.journal, sort_keys=True) if self.world.journal else None
        primary = json.dumps(self.outputs.get("primary", {}), sort_keys=True) if step.stack == "dr" else ""
        try:
            s = _synth(
                step.stack, json.dumps(cfg, sort_keys=True), latch, primary, self.live_reads(), journal
            )
        except (FailoverRefused, ConfigError) as exc:
            return [], [], str(exc).splitlines()[0]
        self.syntheses.append(s)
        state = self.state[step.stack]
        goal = {r.urn: r for r in managed(s.resources)}
        plans: list[ResourcePlan] = []
        new_state: dict[str, Stored] = {}
        pairs: list[tuple[ResourcePlan, Stored | None, Stored | None]] = []
        for urn, new in goal.items():
            old = state.get(urn)
            plan, stored = plan_resource(old, new, self.facts(step.stack, old or new))
            plans.append(plan)
            new_state[urn] = stored
            pairs.append((plan, old, stored))
        for urn, old in state.items():
            if urn not in goal:
                plan = plan_removal(old)
                plans.append(plan)
                pairs.append((plan, old, None))
        self._refuse_writer_headless(pairs)
        errors = [e for p in plans for e in p.errors]
        if errors:
            return plans, errors, None
        # Creates first in dependency order (the program's registration order), removals last.
        for plan, old, new in pairs:
            apply_to_world(self.world, plan, old, new)
        self.state[step.stack] = new_state
        self.outputs[step.stack] = plain(s.outputs)
        return plans, [], None

    def _refuse_writer_headless(
        self, pairs: Sequence[tuple[ResourcePlan, Stored | None, Stored | None]]
    ) -> None:
        """AWS refuses deleting the writer cluster's last instance (``REJECTED_DELETES``): an error on each
        such delete, counting the instances this update creates in that cluster (created first)."""
        w, kind = self.world, "aws:rds/clusterInstance:ClusterInstance"
        gone = {_ident(old) for p, old, _ in pairs if p.type == kind and p.action is Action.DELETE and old}
        created = [
            _resolve(w, new.inputs.get("clusterIdentifier"))
            for p, _, new in pairs
            if p.type == kind and p.action is Action.CREATE and new is not None
        ]
        for p, old, _ in pairs:
            if p.type != kind or p.action is not Action.DELETE or old is None:
                continue
            cluster = w.cluster_instances.get(_ident(old) or "")
            writer = w.dbs.get(cluster or "")
            if writer is None or writer.source is not None or writer.global_id is None:
                continue
            if not (set(w.instances_of(writer.ident)) - gone) and writer.ident not in created:
                p.errors.append(
                    f"{p.label}: deletes {writer.ident}'s last instance while it is the global database's writer: "
                    + REJECTED_DELETES["writer-cluster-last-instance"]
                )

    def _runbook(self, step: Runbook) -> str | None:
        """Apply what the runbook changes; its refusal (nothing changed) when it refuses."""
        from components.failover import Latch

        w = self.world
        ctx = self.outputs["dr"]["runbook"]
        mode = ctx["databaseMode"]
        primary_asg = self.live("primary", "aws:autoscaling/group:Group", "primary-web-asg")
        dr_asg = self.live("dr", "aws:autoscaling/group:Group", "dr-web-asg")
        assert primary_asg is not None and dr_asg is not None
        if step.action in ("failback", "failback-started"):
            under_way = self._iac_failback_phase() if mode == "rds-replica" else None
            if under_way is not None:
                # lambdas/failover/failback.py _refuse_during_iac_failback (break23 BR23-6): nothing changes.
                return f"the runbook's failback refused: the dr stack's failback is under way (dr:failback {under_way})"
            self._runbook_failback(ctx, mode, primary_asg, dr_asg, stop=step.action == "failback-started")
            return None
        if step.action == "release":
            self._release(ctx, primary_asg)
            return None
        # steps.write_latch keeps an active latch (its `since`) only while region B holds the writer:
        # under an active latch with region A the writer, a failover is a new one (breaklife22 BL22-4).
        latch_kept = Latch.parse(self.latch_value()).active and self._writer_in_b(ctx)
        if step.action == "activate" and mode == "rds-replica":
            # automation/latch_cli.py activate: refused where the runbook's failover refuses (break26 B26-1).
            refused = self._failover_refusal(ctx)
            if refused is not None:
                return refused.replace("the runbook's failover refused", "latch activate refused", 1)
        if step.action == "activate" and step.planned and not w.region_a_up:
            # automation/latch_cli.py activate: a lossless move needs region A (PlannedNeedsRegionA).
            return (
                "latch activate refused: region A does not answer, so no lossless writer move is possible; "
                "run `python -m automation latch activate --unplanned` to fail over accepting the loss"
            )
        if step.action == "activate":
            # steps.declare_failover_hold: the declared failover holds region A; a new failover, so no
            # earlier drain's zero-lag proof holds.
            w.journal.setdefault("failoverDeclaredAt", w.now())
            w.journal.pop(DRAIN_PROOF, None)
            # steps.fence_primary, as the runbook's failover (break34 B34-1): stamped where region A
            # answers, pending where it does not.
            if w.region_a_up:
                w.journal.setdefault("primaryStoppedAt", w.now())
                primary_asg.update(minSize=0, desiredCapacity=0)
            else:
                w.journal.setdefault("fencePending", w.now())
            if not latch_kept:
                self._write_latch(_runbook_latch("active", "declared failover", w.now()))
            w.switch_metric = 1.0
            # The runbook's promote_database, after the switch, in both modes (break34 B34-5: the program
            # never promotes on a failover; components/failover.py refuse_program_promotion).
            self._promote_dr(ctx, mode)
            return
        if step.action == "switch-writer":
            if mode == "aurora-global":
                # steps.switch_writer: the writer-move mark first (write-ahead), then the switchover.
                if Latch.parse(self.latch_value()).active:
                    w.journal.setdefault("writerMoveRequestedAt", w.now())
                w.global_failover(ctx["primaryClusterId"])
                return None
            return self._prove_drain(ctx, dr_asg)
        if step.action == "failover" and mode == "rds-replica":
            refused = self._failover_refusal(ctx)
            if refused is not None:
                return refused
        if step.action == "failover" and w.region_a_up:
            # fence_primary (steps.fence_region_a): stamped in the journal before the change.
            w.journal["primaryStoppedAt"] = w.now()
            primary_asg.update(minSize=0, desiredCapacity=0)
        elif step.action == "failover":
            # Region A unreachable: the fence is pending until it answers (steps.fence_primary).
            w.journal.setdefault("fencePending", w.now())
        if step.action == "failover":
            # scale_web_tier: region B takes writes again; no zero-lag proof of a drain holds (B26-3).
            w.journal.pop("drStoppedAt", None)
            w.journal.pop(DRAIN_PROOF, None)
            cap = ctx["drCapacity"]
            dr_asg.update(minSize=cap["min"], maxSize=cap["max"], desiredCapacity=cap["desired"])
        self._promote_dr(ctx, mode)
        if step.action == "failover":
            w.switch_metric = 1.0
            if not latch_kept:
                self._write_latch(_runbook_latch("active", "failover", w.now()))

    def _promote_dr(self, ctx: Mapping[str, Any], mode: str) -> None:
        """The runbook's ``promote_database``: region B's replica promoted (rds-replica) or the global
        database's writer moved to region B's cluster (aurora-global)."""
        w = self.world
        if mode != "rds-replica":
            self._promote_aurora(ctx["drClusterId"])
            return
        ident = ctx["drDbInstanceId"]
        w.promote(ident)
        inst = next(
            (
                r
                for r in self.state["dr"].values()
                if r.type == "aws:rds/instance:Instance" and r.inputs.get("identifier") == ident
            ),
            None,
        )
        if inst is not None:
            w.attrs[inst.urn]["replicateSourceDb"] = None

    def _prove_drain(self, ctx: Mapping[str, Any], dr_asg: Mapping[str, Any]) -> str | None:
        """rds-replica ``python -m automation latch switch-writer`` (lambdas/failover/drain_proof.py): its
        refusal, or None once it wrote the zero-lag proof the switch-writer update needs. The proof needs
        the failback record's ``drain`` (or ``switch-writer``) under the active latch, region B's web tier
        at zero in AWS (what the runbook changed out of band included) and region A's failback instance
        replicating from region B's. The harness's world replicates without lag: once region B is
        drained, the wait for zero lag ends (the moto world measures it: tests/automation/test_drain_proof.py).
        """
        from components.failover import Latch, PhaseRecord

        w = self.world
        refused = "latch switch-writer refused (prove_drain): "
        latch = Latch.parse(self.latch_value())
        if not latch.active:
            return refused + "the latch is not active: no failover to fail back from"
        raw = (self.live("dr", "aws:ssm/parameter:Parameter", "dr-failback-phase") or {}).get("value")
        record = PhaseRecord.parse(str(raw) if raw else None)
        if (
            record is None
            or record.unreadable
            or record.phase not in ("drain", "switch-writer")
            or record.latch_since != latch.since
        ):
            return refused + f"the failback record says {record}, not dr:failback drain under this latch"
        if asg_capacity(dr_asg) > 0:
            return refused + f"region B is not drained (web tier {asg_capacity(dr_asg)})"
        primary, dr = str(ctx["primaryDbInstanceId"]), str(ctx["drDbInstanceId"])
        failback = w.dbs.get(current_failback_id(primary, dr))
        if failback is None or failback.source != dr:
            return refused + f"region A's failback instance is not a replica of {dr}"
        seen = w.now()
        w.journal[DRAIN_PROOF] = {
            "latchSince": latch.since,
            "drains": record.drains,
            "at": seen,
            "drainedAt": seen,  # when it saw region B drained (the harness's proof does not wait)
            "instance": failback.ident,
        }
        return None

    def _failover_refusal(self, ctx: Mapping[str, Any]) -> str | None:
        """The rds-replica failover's refusal at ``confirm_primary_down`` (nothing changed), or None:
        lambdas/failover/fencing.py ``_refuse_unprotected`` ("Protected again, or refuse", docs/safety.md).

        As AWS would show it (``_writer_moved_back``): region B's instance standalone and region A's IaC
        failback instance of region B's generation standalone, or the runbook's failback's writer-move
        mark with region A's declared writer standalone (or region A unreachable); under the active latch,
        the dr stack's failback record past ``switch-writer``; under a standby latch with region A never
        fenced, region B's instance standalone (a frozen copy, not a replica of the writer).
        """
        from components.failover import Latch

        w = self.world
        primary, dr = str(ctx["primaryDbInstanceId"]), str(ctx["drDbInstanceId"])
        b = w.dbs.get(dr)
        if b is None or b.source is not None:
            return None  # a replica: the failover promotes it
        failback = w.dbs.get(current_failback_id(primary, dr))
        declared = w.dbs.get(primary)
        refusal = "the runbook's failover refused at confirm_primary_down (NotReplicating): "
        if failback is not None and failback.source is None:
            return (
                refusal
                + f"region A holds the writer: {failback.ident} (created as a replica of {dr}) is standalone"
            )
        mark = w.journal.get("writerMoveRequestedAt")
        if mark and (not w.region_a_up or (declared is not None and declared.source is None)):
            return (
                refusal
                + f"region A holds the writer: the runbook's failback asked to move it there at {mark}"
            )
        if Latch.parse(self.latch_value()).active:
            phase = self._iac_failback_phase()
            if phase in WRITER_BACK_PHASES:
                return (
                    refusal
                    + f"region A holds the writer: the dr stack's failback applied {phase!r} under this latch"
                )
            return None  # a failover already latched: resumed
        if w.journal.get("primaryStoppedAt"):
            return None  # region A fenced by a failover never failed back: region B is the writer
        return refusal + f"{dr} is not replicating from the writer (standalone while the latch says standby)"

    def _iac_failback_phase(self) -> str | None:
        """The dr stack's failback phase recorded under the active latch (lambdas/failover/journal.py
        ``_iac_failback_phase``: another ``since`` says nothing; a garbled record reads switch-writer)."""
        from components.failover import Latch, PhaseRecord

        latch = Latch.parse(self.latch_value())
        if not latch.active:
            return None
        raw = (self.live("dr", "aws:ssm/parameter:Parameter", "dr-failback-phase") or {}).get("value")
        record = PhaseRecord.parse(str(raw) if raw else None)
        if record is None or record.phase is None:
            return None
        return record.phase if record.unreadable or record.latch_since == latch.since else None

    def _writer_in_b(self, ctx: Mapping[str, Any]) -> bool:
        """Whether region B's database is the writer, as the runbook's ``journal._writer_moving`` tells it:
        rds-replica, region B's instance is standalone; aurora-global, region B's cluster writes."""
        w = self.world
        if ctx["databaseMode"] == "rds-replica":
            db = w.dbs.get(str(ctx["drDbInstanceId"]))
            return db is not None and db.source is None
        _, b_region = self.regions()
        return w.writer in w.dbs and w.dbs[w.writer].region == b_region

    def _promote_aurora(self, cluster: str) -> None:
        """The runbook's promote step: a headless secondary gets an instance first, then the global failover."""
        w = self.world
        if not w.instances_of(cluster):
            # The runbook's name: a token drawn at the failover (names.failover_instance_id, BI22b-9), the
            # cluster's part cut with a hash when the whole would pass 63.
            ident = failover_instance_id(cluster, new_failover_token())
            w.cluster_instances[ident] = cluster
            # lambdas/failover/promotion.py _promote_aurora: CreateDBInstance with these four arguments; the
            # rest is AWS's (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html).
            w.rds_attrs[ident] = {
                "identifier": ident,
                "clusterIdentifier": cluster,
                "instanceClass": self.outputs["dr"]["runbook"]["drInstanceClass"],
                "engine": "aurora-postgresql",
                "promotionTier": 1,  # PromotionTier "Default: 1" (CreateDBInstance)
            }
            w.out_of_band.append(f"aws:rds/clusterInstance:ClusterInstance {ident} (runbook)")
        w.global_failover(cluster)

    def _runbook_failback(
        self,
        ctx: Mapping[str, Any],
        mode: str,
        primary_asg: dict[str, Any],
        dr_asg: dict[str, Any],
        *,
        stop: bool = False,
    ) -> None:
        w = self.world
        a_region, _ = self.regions()
        w.journal.pop("fencePending", None)  # confirm_primary_healthy: region A answers, no fence pending
        if mode == "rds-replica":
            # Rename to replace (lambdas/failover/failback.py reestablish_replication): the old primary
            # is renamed <primary>-pre-failback-<stamp> and kept, and a replica of region B's writer
            # takes <primary>, tagged with the rename's stamp (FAILBACK_STAMP_TAG): the primary
            # stack's next update reads the tag live and adopts it (components/primary_data.py). This harness
            # identifies databases by name, as region A's application does (its endpoint); a renamed
            # instance keeps its tags and the state that follows it.
            primary = ctx["primaryDbInstanceId"]
            current = w.dbs.get(primary)
            if current is None or current.source != ctx["drDbInstanceId"]:
                tags: dict[str, str] = {}
                old: dict[str, Any] = {}
                record: dict[str, Any] = {}
                w.journal["failback"] = record  # journaled before the rename (lambdas/failover/failback.py)
                if current is not None:
                    retained = retained_instance_id(primary, w.next_failback_at())
                    record["retained"] = retained
                    w.dbs[retained] = dataclasses.replace(current, ident=retained)
                    old = {**w.rds_attrs.pop(primary, {}), "identifier": retained}
                    w.rds_attrs[retained] = old
                    w.out_of_band.append(f"aws:rds/instance:Instance {primary} renamed {retained} (runbook)")
                    tags = {FAILBACK_STAMP_TAG: retained.rsplit("-", 1)[1]}
                w.dbs[primary] = Db(primary, a_region, "instance", ctx["drDbInstanceId"], None, tags=tags)
                w.rds_attrs[primary] = _runbook_failback_replica(
                    primary, old, w.rds_attrs.get(ctx["drDbInstanceId"], {}), ctx, tags
                )
                record["created"] = True
                w.out_of_band.append(
                    f"aws:rds/instance:Instance {primary} (runbook, replaces the old primary)"
                )
        cap = ctx["primaryCapacity"]  # warm_primary
        primary_asg.update(minSize=cap["min"], maxSize=cap["max"], desiredCapacity=cap["desired"])
        # scale_down_dr: stamps the stop before it when region B serves (a resumed run keeps the stamp).
        if asg_capacity(dr_asg) > 0 or "drStoppedAt" not in w.journal:
            w.journal["drStoppedAt"] = w.now()
        dr_asg.update(minSize=0, maxSize=0, desiredCapacity=0)
        self.runbook_draining = stop
        if stop:
            return
        if mode == "rds-replica":
            w.promote(ctx["primaryDbInstanceId"])
            if ctx["primaryDbInstanceId"] in w.rds_attrs:
                # The runbook's PromoteReadReplica names no BackupRetentionPeriod: "Default: 1"
                # (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PromoteReadReplica.html).
                w.rds_attrs[ctx["primaryDbInstanceId"]]["backupRetentionPeriod"] = 1
                # ... nor a PreferredBackupWindow: "A 30-minute window selected at random from an
                # 8-hour block of time per AWS Region" (same page). Any window but the program's.
                w.rds_attrs[ctx["primaryDbInstanceId"]]["backupWindow"] = RANDOM_BACKUP_WINDOW
        else:
            w.global_failover(ctx["primaryClusterId"])
        # unfence_primary: region A given back (warm_primary restored its capacity above).
        for mark in ("primaryStoppedAt", "primaryFencedMappings", "failoverDeclaredAt"):
            w.journal.pop(mark, None)
        w.switch_metric = 0.0
        self._write_latch(_runbook_latch("standby", "failback", w.now()))
        w.journal.pop("failback", None)  # clear_latch
        w.journal.pop("writerMoveRequestedAt", None)

    def _release(self, ctx: Mapping[str, Any], primary_asg: dict[str, Any]) -> None:
        """``python -m automation latch release``: only over a writer in region A (else it refuses);
        region A gets back what a runbook failover fenced (``unfence_primary``: the outputs' capacity;
        the primary stack's state still holds the values from before the fence, so no update sends
        them) before the switch moves (automation/latch_cli.py ``release``)."""
        w = self.world
        a_region, _ = self.regions()
        if w.writer is None or w.writer not in w.dbs or w.dbs[w.writer].region != a_region:
            return
        if w.journal.get("primaryStoppedAt") or asg_capacity(primary_asg) == 0:
            cap = ctx["primaryCapacity"]
            primary_asg.update(minSize=cap["min"], maxSize=cap["max"], desiredCapacity=cap["desired"])
        # steps.end_failover_hold: the failover's marks and the writer move end with the hold.
        for mark in (
            "fencePending",
            "primaryStoppedAt",
            "failoverDeclaredAt",
            "writerMoveRequestedAt",
            DRAIN_PROOF,
        ):
            w.journal.pop(mark, None)
        w.switch_metric = 0.0
        self._write_latch(_runbook_latch("standby", "latch release", w.now()))

    def _write_latch(self, value: str) -> None:
        latch = self.find("dr", "aws:ssm/parameter:Parameter", "dr-failover-latch")
        assert latch is not None, "the latch parameter exists once the dr stack is deployed"
        self.world.attrs[latch.urn]["value"] = value

    def _canary(self) -> None:
        """lambdas/health_check: every minute, switch metric = 1 while the latch says active, else 0."""
        from components.failover import Latch

        if self.find("dr", "aws:ssm/parameter:Parameter", "dr-failover-latch") is None:
            return
        self.world.switch_metric = 1.0 if Latch.parse(self.latch_value()).active else 0.0

    # ---- observation

    def observe(self) -> Observation:
        from components.failover import Latch

        w = self.world
        a_region, b_region = self.regions()
        name_of = {a_region: "A", b_region: "B"}

        def capacity(stack: str, name: str, up: bool = True) -> int:
            live = self.live(stack, "aws:autoscaling/group:Group", name)
            if live is None or not up:
                return 0
            return asg_capacity(live)

        cap = {"A": capacity("primary", "primary-web-asg", w.region_a_up), "B": capacity("dr", "dr-web-asg")}
        switch = "OK"
        alarm = self.live("dr", "aws:cloudwatch/metricAlarm:MetricAlarm", "global-switch")
        if alarm is not None:
            metric = w.switch_metric
            if metric is None:
                switch = "ALARM" if alarm.get("treatMissingData") == "breaching" else "OK"
            else:
                switch = "ALARM" if metric >= float(alarm.get("threshold") or 0) else "OK"
        traffic = "A" if (cap["A"] > 0 and switch == "OK") or alarm is None else "B"
        raw = self.latch_value()
        latch = (
            None
            if self.find("dr", "aws:ssm/parameter:Parameter", "dr-failover-latch") is None
            else ("active" if Latch.parse(raw).active else "standby")
        )
        writer = w.writer
        writer_region = name_of.get(w.dbs[writer].region) if writer in w.dbs else None
        protected = writer is not None and any(
            d.source == writer and name_of.get(d.region) != writer_region for d in w.dbs.values()
        )
        lag: list[LagAlarm] = []
        for stack in ("primary", "dr"):
            for r in self.state[stack].values():
                if (
                    r.type != "aws:cloudwatch/metricAlarm:MetricAlarm"
                    or r.inputs.get("metricName") not in LAG_METRICS
                ):
                    continue
                live = w.attrs.get(r.urn, r.inputs)
                dims = live.get("dimensions") or {}
                ident = next(iter(dims.values()), None)
                db = w.dbs.get(ident) if isinstance(ident, str) else None
                reports = db is not None and db.source is not None and db.region == r.region
                missing = str(live.get("treatMissingData") or "missing")
                # Missing data (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html):
                # breaching -> ALARM, missing -> INSUFFICIENT_DATA, notBreaching/ignore -> OK.
                state = (
                    "OK"
                    if reports
                    else {"breaching": "ALARM", "missing": "INSUFFICIENT_DATA"}.get(missing, "OK (no data)")
                )
                lag.append(LagAlarm(stack, r.name, r.region, ident, missing, state))
        unmanaged = [f"{d.kind} {d.ident}" for d in w.dbs.values() if d.managed_by is None]
        held = {
            r.inputs.get("identifier")
            for stack in self.state.values()
            for r in stack.values()
            if r.type == "aws:rds/clusterInstance:ClusterInstance"
        }
        unmanaged += [
            f"cluster instance {i}"
            for i, c in w.cluster_instances.items()
            if is_failover_instance(c, i) and i not in held
        ]
        app_dbs: dict[str, str] = {}
        for region, (stack, fn) in {
            "A": ("primary", "primary-api-payments"),
            "B": ("dr", "dr-api-payments"),
        }.items():
            env = (self.live(stack, "aws:lambda/function:Function", fn) or {}).get("environment") or {}
            ident = (env.get("variables") or {}).get("DB_INSTANCE_ID")
            if isinstance(ident, str):
                app_dbs[region] = ident
        return Observation(
            traffic, cap, writer, writer_region, latch, switch, protected, lag, unmanaged, app_dbs
        )


def asg_capacity(live: Mapping[str, Any]) -> int:
    """The instances an Auto Scaling group runs: desired capacity clamped to [min, max].

    A new MinSize or MaxSize without a DesiredCapacity moves the desired capacity into the range
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html: "If you
    specify a new value for MaxSize without specifying a value for DesiredCapacity, and the new MaxSize
    is smaller than the current size of the group, there is an implied change to DesiredCapacity").
    """
    low, high = int(live.get("minSize") or 0), int(live.get("maxSize") or 0)
    desired = live.get("desiredCapacity")
    return max(low, min(high, int(desired if desired is not None else low)))


def invariants(result: StepResult, lc: Lifecycle) -> list[Violation]:
    """The invariants after one step. Each violation names the resource and the invariant."""
    out: list[Violation] = []
    for p in result.plans:
        if p.stateful and p.action is Action.REPLACE:
            out.append(
                Violation(
                    "no-stateful-replace", f"{p.label} is replaced (force-new: {', '.join(p.force_new)})"
                )
            )
        if p.type in NO_DELETE_TYPES and p.action is Action.DELETE:
            out.append(Violation("no-stateful-delete", f"{p.label} is deleted"))
        rename = RENAMES.get(p.type)
        if p.action is Action.UPDATE and rename in p.changed:
            before, after = p.changed[rename]
            out.append(
                Violation(
                    "no-stateful-rename",
                    f"{p.label} is renamed in place ({rename} {before} -> {after}): its endpoint moves",
                )
            )
        for key, before, written in p.overwrites:
            out.append(
                Violation(
                    "no-out-of-band-overwrite",
                    f"{p.label}: the update rewrites {key} {_short(before)} (written out of band) with the "
                    f"state's {_short(written)}: {WHOLE_WRITE_SOURCE[p.type]}",
                )
            )
        if p.import_mismatches:
            diff = "; ".join(f"{k}: program {_short(a)}, AWS {_short(b)}" for k, a, b in p.import_mismatches)
            out.append(
                Violation("import-matches", f"{p.label}: the import does not match the live resource: {diff}")
            )
        for key in p.unclassified:
            out.append(
                Violation(
                    "classified-inputs",
                    f"{p.label}: input {key!r} changed but is not in the replacement table",
                )
            )
    losses = {m for p in result.plans for m in p.losses}
    for m in sorted(losses):
        out.append(Violation("no-stateful-delete", m))
    for e in result.errors:
        if e not in losses:
            out.append(Violation("provider-accepts", e))
    o = result.observation
    if not lc.state["dr"]:
        return out
    traffic = o.traffic
    where = {"A": ("primary", "primary-web-asg"), "B": ("dr", "dr-web-asg")}[traffic]
    outage = isinstance(result.step, RegionA) and not result.step.up  # the incident a failover answers
    if o.capacity[traffic] == 0 and result.phase not in PLANNED_OUTAGE_PHASES and not outage:
        out.append(
            Violation(
                "traffic-has-capacity",
                f"Route 53 sends traffic to region {traffic} (switch {o.switch}, latch {o.latch}) but "
                f"aws:autoscaling/group:Group {where[1]} (stack {where[0]}) has no capacity",
            )
        )
    if o.capacity[traffic] > 0 and o.writer_region != traffic:
        out.append(
            Violation(
                "traffic-follows-writer",
                f"region {traffic} serves traffic with capacity {o.capacity[traffic]} but the writer is "
                f"{o.writer or 'gone'} in region {o.writer_region or '-'}",
            )
        )
    app_db = o.app_dbs.get(traffic)
    if o.capacity[traffic] > 0 and o.writer_region == traffic and app_db is not None and app_db != o.writer:
        out.append(
            Violation(
                "traffic-follows-writer",
                f"region {traffic} serves traffic with the writer {o.writer} in its region, but its application "
                f"writes to {app_db} (aws:lambda/function:Function DB_INSTANCE_ID): writes acknowledged there "
                "reach no replica",
            )
        )
    if o.latch == "active" and traffic != "B":
        out.append(
            Violation(
                "latch-holds-traffic",
                f"aws:ssm/parameter:Parameter dr-failover-latch says active but traffic goes to region {traffic}",
            )
        )
    if not isinstance(result.step, Up):
        # The alarms are the program's: a runbook run or an outage leaves them as the last update set them.
        return out
    for alarm in o.lag_alarms:
        if alarm.state == "ALARM" and alarm.watches == o.writer:
            out.append(
                Violation(
                    "lag-alarm-meaningful",
                    f"aws:cloudwatch/metricAlarm:MetricAlarm {alarm.name} (stack {alarm.stack}) is in ALARM "
                    f"forever: it watches {alarm.watches}, which is the writer and reports no replica lag "
                    f"(treatMissingData {alarm.treat_missing})",
                )
            )
    watched = {a.watches for a in o.lag_alarms if a.state == "OK"}
    replicas = [d for d in lc.world.dbs.values() if d.source == o.writer and o.writer is not None]
    if result.phase in LAG_WATCH_PHASES or (
        result.phase is None and o.latch != "active" and o.traffic == "A"
    ):
        for d in replicas:
            if d.ident not in watched:
                out.append(
                    Violation(
                        "lag-alarm-meaningful",
                        f"replica {d.ident} ({d.kind}, {d.region}) of the writer {o.writer} is watched by no "
                        "replica-lag alarm in its region"
                        + (f" during failback phase {result.phase}" if result.phase else ""),
                    )
                )
    return out


def final_violations(lc: Lifecycle) -> list[Violation]:
    """At the end of a scenario: protected again — traffic in A with the writer, a replica in B, latch standby."""
    o = lc.results[-1].observation
    out: list[Violation] = []
    if not (o.traffic == "A" and o.writer_region == "A" and o.protected and o.latch != "active"):
        out.append(Violation("ends-protected", f"the scenario ends {o.line()}"))
    writer = lc.world.dbs.get(o.writer or "")
    if writer is not None and writer.managed_by is None:
        # Issue 13, What to build 3: region A's writer comes back under a stack, with no hand edits.
        out.append(
            Violation(
                "writer-in-state",
                f"the writer {writer.kind} {writer.ident} is in no stack's state (unmanaged: {o.unmanaged_dbs})",
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# rendering


def render(results: Sequence[StepResult], *, show_same: bool = False) -> str:
    """Each step's plan (per resource: action and changed inputs) and a summary line per step."""
    lines: list[str] = []
    mark = {
        Action.CREATE: "+",
        Action.IMPORT: "=",
        Action.UPDATE: "~",
        Action.REPLACE: "+-",
        Action.DELETE: "-",
        Action.RELEASE: "-r",
        Action.SAME: " ",
    }
    for r in results:
        step = r.step
        where = (
            f"pulumi up -s {step.stack}"
            if isinstance(step, Up)
            else ("runbook" if isinstance(step, Runbook) else "event")
        )
        lines.append(f"\n== step {r.index}: {r.label}  [{where}] ==")
        if isinstance(step, Up) and (step.set or step.rm):
            sets = [f"{k}={json.dumps(v)}" for k, v in step.set.items()] + [f"rm {k}" for k in step.rm]
            lines.append(f"  config: {'  '.join(sets)}")
        if r.refused:
            lines.append(f"  REFUSED by the program: {r.refused}")
        quiet_creates = 0
        for p in r.plans:
            if p.action is Action.SAME and not show_same and not p.options:
                continue
            if p.action is Action.CREATE and not p.stateful and not p.errors and not show_same:
                quiet_creates += 1
                continue
            lines.append(
                f"  {mark[p.action]:<2} {p.action:<7} {_type_short(p.type):<30} {p.name}  [{p.region}]"
            )
            for opt, (old, new) in p.options.items():
                lines.append(
                    f"        <{opt}>: {json.dumps(old)} -> {json.dumps(new)} (option, recorded in state)"
                )
            for key, (old, new) in p.changed.items():
                tag = (
                    " (force-new)"
                    if key in p.force_new
                    else (" (UNCLASSIFIED)" if key in p.unclassified else "")
                )
                lines.append(f"        {key}: {_short(old)} -> {_short(new)}{tag}")
        if quiet_creates:
            lines.append(f"  +  create  ... and {quiet_creates} other (not stateful) resource(s)")
        for e in r.errors:
            lines.append(f"  ERROR (update stops, nothing applied): {e}")
        lines.append(f"  after: {r.observation.line()}")
        for v in r.violations:
            lines.append(f"  VIOLATION {v}")
        lines.append("  " + summary(r))
    return "\n".join(lines)


def summary(r: StepResult) -> str:
    inconsistent = sum(
        1
        for v in r.violations
        if v.invariant in ("traffic-has-capacity", "traffic-follows-writer", "latch-holds-traffic")
    )
    return (
        f"summary step {r.index}: {r.count(Action.CREATE)} create, {r.count(Action.IMPORT)} import, "
        f"{r.count(Action.UPDATE)} update, "
        f"{r.count(Action.REPLACE)} replace, {r.count(Action.DELETE)} delete, {r.count(Action.RELEASE)} release; "
        f"stateful replacements {r.count(Action.REPLACE, stateful=True)}, "
        f"stateful deletes {r.count(Action.DELETE, stateful=True)}, rejected {len(r.errors)}, "
        f"inconsistent traffic states {inconsistent}"
    )


def _type_short(t: str) -> str:
    from automation.plan import short_type

    return short_type(t)
