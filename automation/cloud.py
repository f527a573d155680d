"""Cloud operations on the two stacks through the Pulumi Automation API.

``deploy``, ``failover``, ``failback``, ``drill``, ``destroy`` and ``preview`` drive the Pulumi
program in the repository root, exactly as ``pulumi up -s primary`` / ``pulumi up -s dr`` would,
but in the right order and with the right config on each stack:

- the DR stack reads the primary stack's outputs, so the primary is always deployed first and
  destroyed last;
- failover touches the DR stack only (region A and its stack may be unreachable);
- failback is explicit and phased (``dr:failback``), because the DR stack refuses
  ``dr:active false`` while the failover latch says "active";
- a production stack is never destroyed unless asked for by name with ``force``.

Every function takes a ``stack_factory`` (default: ``pulumi.automation``), so tests substitute a
test double and nothing here needs the Pulumi CLI until a real operation runs. Nothing happens at
import time; ``pulumi.automation`` itself is imported lazily.

The CLI (``python -m automation cloud <operation> ...``) is ``main``; the Pulumi CLI is required
for it, unlike ``python -m automation plan`` and ``python -m automation drill --local``.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from pulumi.automation import ConfigMap, ConfigValue

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The Pulumi project (``Pulumi.yaml``) this module drives."""

PROJECT_NAME = "pilotlight"
"""Used to qualify stack names when ``Pulumi.yaml`` cannot be read."""

TEMPLATE_PRIMARY = "primary"
TEMPLATE_DR = "dr"
"""The checked-in stacks. Any other stack name is seeded from these stacks' config files."""

DRILL_PREFIX = "drill-"
"""Stacks whose name starts with this may be destroyed without ``force``."""

from components.config import FAILBACK_PHASES  # noqa: E402 - one definition of the phases

"""The ``dr:failback`` phases in order. The last one returns the DR stack to standby."""

# Config keys this module writes. Everything else comes from the stack files.
KEY_ACTIVE = "dr:active"
KEY_FAILBACK = "dr:failback"
KEY_PRIMARY_STACK = "pilotlight:primaryStack"

HEALTH_URL_OUTPUT = "failoverHealthUrl"

OnOutput = Callable[[str], Any]
Clock = Callable[[], float]


# --------------------------------------------------------------------------------------------
# What this module needs from pulumi.automation (satisfied by auto.Stack and by test doubles)
# --------------------------------------------------------------------------------------------


class ConfigValueLike(Protocol):
    """A config value as read back from a stack."""

    @property
    def value(self) -> Any: ...

    @property
    def secret(self) -> bool: ...


class OutputValueLike(Protocol):
    """A stack output."""

    @property
    def value(self) -> Any: ...

    @property
    def secret(self) -> bool: ...


class UpdateSummaryLike(Protocol):
    """The summary of an update (``UpdateSummary``)."""

    @property
    def result(self) -> str | None: ...

    @property
    def resource_changes(self) -> Mapping[Any, int] | None: ...


class UpResultLike(Protocol):
    """The result of ``up`` (``UpResult``)."""

    @property
    def summary(self) -> UpdateSummaryLike: ...

    @property
    def outputs(self) -> Mapping[str, OutputValueLike]: ...


class PreviewResultLike(Protocol):
    """The result of ``preview`` (``PreviewResult``)."""

    @property
    def change_summary(self) -> Mapping[Any, int]: ...


class DestroyResultLike(Protocol):
    """The result of ``destroy`` (``DestroyResult``)."""

    @property
    def summary(self) -> UpdateSummaryLike: ...


class CloudStack(Protocol):
    """The part of ``pulumi.automation.Stack`` the operations use."""

    @property
    def name(self) -> str: ...

    def get_all_config(self) -> Mapping[str, ConfigValueLike]: ...

    def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None: ...

    def set_all_config(self, config: ConfigMap, *, path: bool = False) -> None: ...

    def remove_config(self, key: str, *, path: bool = False) -> None: ...

    def up(self, *, on_output: OnOutput | None = None) -> UpResultLike: ...

    def preview(self, *, on_output: OnOutput | None = None) -> PreviewResultLike: ...

    def destroy(
        self, *, on_output: OnOutput | None = None, remove: bool | None = None
    ) -> DestroyResultLike: ...

    def outputs(self) -> Mapping[str, OutputValueLike]: ...


class StackFactory(Protocol):
    """Returns the stack named ``stack_name``; creates it only when ``create`` is true.

    Raises ``StackNotFound`` when the stack does not exist and ``create`` is false.
    """

    def __call__(self, stack_name: str, *, create: bool) -> CloudStack: ...


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class CloudError(Exception):
    """A cloud operation could not run or failed; the message says which and why."""


class StackNotFound(CloudError):
    """The stack does not exist in the state backend."""


class DestroyRefused(CloudError):
    """``destroy`` was asked for a stack that is not a drill stack, without ``force``."""


class OperationFailed(CloudError):
    """A Pulumi operation on one stack failed."""

    def __init__(self, stack: str, operation: str, cause: BaseException) -> None:
        self.stack = stack
        self.operation = operation
        self.cause = cause
        super().__init__(f"{operation} failed on stack {stack!r}: {_short_error(cause)}")


CLI_MISSING_MESSAGE = (
    "The Pulumi CLI is required for cloud operations (deploy, failover, failback, drill, destroy, "
    "preview) and was not found on PATH. Install it (https://www.pulumi.com/docs/install/) or, "
    "without it, use `python -m automation plan` (offline plan) or `python -m automation drill "
    "--local` (runbook against a local AWS emulator)."
)


def is_missing_cli_error(exc: BaseException) -> bool:
    """True for the error ``pulumi.automation`` raises when it cannot run the ``pulumi`` binary.

    ``LocalWorkspace`` runs ``pulumi version`` through ``subprocess`` before anything else, so a
    missing binary surfaces as ``FileNotFoundError`` whose ``filename`` is the command
    (``pulumi``, or ``<root>/bin/pulumi``). A missing ``Pulumi.yaml`` is also a
    ``FileNotFoundError``, but with another message and no such filename.
    """
    if not isinstance(exc, FileNotFoundError) or exc.errno not in (None, errno.ENOENT):
        return False
    filename = exc.filename
    return isinstance(filename, str) and os.path.basename(filename) in ("pulumi", "pulumi.exe")


# --------------------------------------------------------------------------------------------
# Inputs and results
# --------------------------------------------------------------------------------------------


def _bare(name: str) -> str:
    """The stack name without its ``org/project/`` qualifier."""
    return name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Stacks:
    """The two stacks an operation works on.

    ``primary`` and ``dr`` are stack names (``drill-1234-primary``) or fully qualified names
    (``acme/pilotlight/drill-1234-primary``). ``org`` qualifies bare names: set it to pin the
    Pulumi organization; without it the logged-in identity's organization is used.
    """

    primary: str = TEMPLATE_PRIMARY
    dr: str = TEMPLATE_DR
    org: str | None = None

    def __post_init__(self) -> None:
        for role, name in (("primary", self.primary), ("dr", self.dr)):
            if not name or not name.strip() or name.count("/") > 2:
                raise ValueError(
                    f"{role} stack name {name!r} is not a stack name (NAME, ORG/NAME, ORG/PROJECT/NAME)"
                )
        if _bare(self.primary) == _bare(self.dr):
            raise ValueError(f"the primary and DR stacks must differ; both are {_bare(self.primary)!r}")

    @property
    def primary_is_template(self) -> bool:
        """True when the primary stack is the checked-in ``primary`` stack."""
        return _bare(self.primary) == TEMPLATE_PRIMARY

    @property
    def dr_is_template(self) -> bool:
        """True when the DR stack is the checked-in ``dr`` stack."""
        return _bare(self.dr) == TEMPLATE_DR

    @property
    def are_drill_stacks(self) -> bool:
        """True when both stacks are ephemeral drill stacks (safe to destroy)."""
        return _bare(self.primary).startswith(DRILL_PREFIX) and _bare(self.dr).startswith(DRILL_PREFIX)

    def selector(self, name: str, project: str) -> str:
        """The name to select a stack by: qualified with ``org`` when one is given."""
        if self.org is None or "/" in name:
            return name
        return f"{self.org}/{project}/{name}"


@dataclass(frozen=True)
class StepResult:
    """One Pulumi operation on one stack."""

    stack: str
    operation: str
    seconds: float
    result: str
    changes: dict[str, int] = field(default_factory=dict)

    def changes_text(self) -> str:
        """``create=3 update=1`` (``same`` omitted), or ``-``."""
        shown = [f"{k}={v}" for k, v in sorted(self.changes.items()) if k != "same" and v]
        return " ".join(shown) or "-"


@dataclass(frozen=True)
class DeployResult:
    """Both stacks deployed: the steps and each stack's outputs (secrets redacted)."""

    steps: tuple[StepResult, ...]
    outputs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class VerifyResult:
    """One answer (or non-answer) from the failover health endpoint."""

    healthy: bool
    region: str | None = None
    status: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class VerifyOutcome:
    """Polling the health endpoint until the expected region answered, or the timeout."""

    phase: str
    url: str
    expected_region: str
    ok: bool
    polls: int
    seconds: float
    observed_region: str | None
    detail: str


@dataclass(frozen=True)
class PhaseTiming:
    """How long one drill phase took."""

    name: str
    seconds: float
    ok: bool


@dataclass
class DrillReport:
    """What a drill did, how long each phase took, and the measured RTO."""

    primary_stack: str
    dr_stack: str
    primary_region: str | None = None
    dr_region: str | None = None
    phases: list[PhaseTiming] = field(default_factory=list)
    verifications: list[VerifyOutcome] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    rto_seconds: float | None = None
    error: str | None = None

    @property
    def passed(self) -> bool:
        """No error, every phase succeeded and every verification saw the expected region."""
        return (
            self.error is None
            and bool(self.phases)
            and all(p.ok for p in self.phases)
            and all(v.ok for v in self.verifications)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CI artifact)."""
        data = asdict(self)
        data["passed"] = self.passed
        return data

    def render(self) -> str:
        """The report for people: outcome, RTO, phases, verifications."""
        lines = [
            f"Drill {'PASSED' if self.passed else 'FAILED'}: {self.primary_stack} "
            f"({self.primary_region or '?'}) -> {self.dr_stack} ({self.dr_region or '?'})",
            f"RTO (failover start -> first healthy answer from {self.dr_region or 'region B'}): "
            + (f"{self.rto_seconds:.1f} s" if self.rto_seconds is not None else "not measured"),
        ]
        if self.error:
            lines.append(f"Error: {self.error}")
        lines.append("")
        lines.append(
            _table(
                ["phase", "result", "duration"], [[p.name, _ok(p.ok), _secs(p.seconds)] for p in self.phases]
            )
        )
        if self.verifications:
            lines.append("")
            lines.append(
                _table(
                    ["verification", "expected", "observed", "result", "polls", "duration"],
                    [
                        [
                            v.phase,
                            v.expected_region,
                            v.observed_region or "-",
                            _ok(v.ok),
                            str(v.polls),
                            _secs(v.seconds),
                        ]
                        for v in self.verifications
                    ],
                )
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The real Automation API
# --------------------------------------------------------------------------------------------


def automation_stack_factory(work_dir: Path = REPO_ROOT) -> StackFactory:
    """The default factory: local-program stacks of the project in ``work_dir``."""

    def factory(stack_name: str, *, create: bool) -> CloudStack:
        from pulumi import automation as auto

        if create:
            return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(work_dir))
        try:
            return auto.select_stack(stack_name=stack_name, work_dir=str(work_dir))
        except auto.StackNotFoundError as exc:
            raise StackNotFound(f"stack {stack_name!r} does not exist") from exc

    return factory


def _config_value(value: str, secret: bool = False) -> ConfigValue:
    from pulumi.automation import ConfigValue

    return ConfigValue(value=value, secret=secret)


def _default_org(stack: CloudStack) -> str:
    """The organization a bare stack name resolves to for the logged-in identity."""
    workspace = getattr(stack, "workspace", None)
    who_am_i = getattr(workspace, "who_am_i", None)
    if who_am_i is None:
        raise CloudError("cannot tell which Pulumi organization holds the stacks; pass --org")
    who = who_am_i()
    url = getattr(who, "url", None) or ""
    if url and not url.startswith(("https://", "http://")):
        return "organization"  # DIY backends (file://, s3://, ...) name every org "organization"
    token = getattr(who, "token_information", None)
    token_org = getattr(token, "organization", None)
    return token_org or who.user


# --------------------------------------------------------------------------------------------
# A session: stacks selected once, every operation timed and reported
# --------------------------------------------------------------------------------------------


class _Session:
    def __init__(
        self,
        stacks: Stacks,
        *,
        stack_factory: StackFactory | None,
        on_output: OnOutput,
        clock: Clock,
        work_dir: Path,
        org_resolver: Callable[[CloudStack], str] | None = None,
    ) -> None:
        self.stacks = stacks
        self.factory = stack_factory or automation_stack_factory(work_dir)
        self.on_output = on_output
        self.clock = clock
        self.work_dir = work_dir
        self.org_resolver = org_resolver or _default_org
        self.steps: list[StepResult] = []
        self._cache: dict[str, CloudStack] = {}
        self._project: str | None = None

    @property
    def project(self) -> str:
        if self._project is None:
            self._project = _project_name(self.work_dir)
        return self._project

    def stack(self, name: str, *, create: bool = False) -> CloudStack:
        if name not in self._cache:
            self._cache[name] = self.factory(self.stacks.selector(name, self.project), create=create)
        return self._cache[name]

    def say(self, message: str) -> None:
        self.on_output(f"==> {message}")

    @contextmanager
    def _step(self, stack: str, operation: str) -> Iterator[dict[str, Any]]:
        self.say(f"{operation} {stack}")
        started = self.clock()
        box: dict[str, Any] = {"result": "succeeded", "changes": {}}
        try:
            yield box
        except BaseException as exc:
            self.steps.append(StepResult(stack, operation, self.clock() - started, "failed"))
            if _passes_through(exc):
                raise
            raise OperationFailed(stack, operation, exc) from exc
        step = StepResult(stack, operation, self.clock() - started, box["result"], box["changes"])
        self.steps.append(step)
        self.say(f"{operation} {stack}: {step.result} in {_secs(step.seconds)} ({step.changes_text()})")

    def up(self, name: str) -> UpResultLike:
        with self._step(name, "up") as box:
            result = self.stack(name).up(on_output=self.on_output)
            box["result"] = result.summary.result or "succeeded"
            box["changes"] = _changes(result.summary.resource_changes)
        return result

    def latch(self, name: str, action: str, *, planned: bool = True) -> None:
        """``python -m automation latch <action>`` with the stack's ``runbook`` output (see write_latch)."""
        with self._step(name, f"latch {action}") as box:
            outputs = self.stack(name).outputs()
            if "runbook" not in outputs:
                raise CloudError(f"stack {name!r} has no `runbook` output; is it the DR stack?")
            value = outputs["runbook"].value
            runbook = json.loads(value) if isinstance(value, str) else dict(value)
            self.say(write_latch(runbook, action) if planned else write_latch(runbook, action, planned=False))
            box["result"] = "succeeded"

    def preview(self, name: str) -> PreviewResultLike:
        with self._step(name, "preview") as box:
            result = self.stack(name).preview(on_output=self.on_output)
            box["changes"] = _changes(result.change_summary)
        return result

    def destroy(self, name: str, *, remove: bool) -> None:
        with self._step(name, "destroy") as box:
            result = self.stack(name).destroy(on_output=self.on_output, remove=remove or None)
            box["result"] = result.summary.result or "succeeded"
            box["changes"] = _changes(result.summary.resource_changes)

    def set_config(self, name: str, key: str, value: str) -> None:
        self.say(f"config {name}: {key}={value}")
        self.stack(name).set_config(key, _config_value(value))

    def remove_config(self, name: str, key: str) -> None:
        self.say(f"config {name}: remove {key}")
        self.stack(name).remove_config(key)

    def seed_from_template(self, name: str, template: str) -> None:
        """Give a new stack the template stack's config, without overwriting what it already has.

        Keys already set are kept, so redeploying a drill stack after a failover never resets
        ``dr:active`` behind the operator's back.
        """
        config = _template_config(self.work_dir, template)
        existing = set(self.stack(name).get_all_config())
        missing = {k: v for k, v in config.items() if k not in existing}
        if not missing:
            return
        self.say(f"config {name}: {len(missing)} key(s) from Pulumi.{template}.yaml")
        scalars, paths = _flatten_config(missing)
        from pulumi.automation import ConfigValue

        if scalars:
            self.stack(name).set_all_config({k: ConfigValue(v) for k, v in scalars.items()})
        if paths:
            self.stack(name).set_all_config({k: ConfigValue(v) for k, v in paths.items()}, path=True)

    def qualified(self, name: str) -> str:
        """``org/project/name`` for a StackReference."""
        if name.count("/") == 2:
            return name
        if "/" in name:
            org, bare = name.split("/")
            return f"{org}/{self.project}/{bare}"
        org = self.stacks.org or self.org_resolver(self.stack(name, create=True))
        return f"{org}/{self.project}/{name}"


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------


def deploy(
    *,
    stacks: Stacks = Stacks(),
    config_overrides: Mapping[str, Mapping[str, str]] | None = None,
    on_output: OnOutput = print,
    stack_factory: StackFactory | None = None,
    clock: Clock = time.monotonic,
    work_dir: Path = REPO_ROOT,
    org_resolver: Callable[[CloudStack], str] | None = None,
) -> DeployResult:
    """``up`` the primary stack, then the DR stack (which reads the primary's outputs).

    Stacks other than the checked-in ``primary``/``dr`` are created if needed and seeded from
    ``Pulumi.primary.yaml``/``Pulumi.dr.yaml``; the DR stack's ``pilotlight:primaryStack`` is
    pointed at the primary stack's fully qualified name. ``config_overrides`` maps a role
    (``"primary"``/``"dr"``) to config keys and values set before the update.
    """
    overrides = dict(config_overrides or {})
    unknown = set(overrides) - {"primary", "dr"}
    if unknown:
        raise ValueError(f"config_overrides keys must be 'primary' or 'dr'; got {sorted(unknown)}")
    session = _Session(
        stacks,
        stack_factory=stack_factory,
        on_output=on_output,
        clock=clock,
        work_dir=work_dir,
        org_resolver=org_resolver,
    )
    return _deploy(session, overrides)


def _deploy(session: _Session, overrides: Mapping[str, Mapping[str, str]]) -> DeployResult:
    stacks = session.stacks
    session.say(f"deploy: {stacks.primary} then {stacks.dr}")
    session.stack(stacks.primary, create=True)
    if not stacks.primary_is_template:
        session.seed_from_template(stacks.primary, TEMPLATE_PRIMARY)
    for key, value in overrides.get("primary", {}).items():
        session.set_config(stacks.primary, key, value)
    primary_result = session.up(stacks.primary)

    session.stack(stacks.dr, create=True)
    if not stacks.dr_is_template:
        session.seed_from_template(stacks.dr, TEMPLATE_DR)
    if not stacks.primary_is_template:
        # The checked-in dr stack refers to "primary"; an ephemeral pair must refer to its own.
        session.set_config(stacks.dr, KEY_PRIMARY_STACK, session.qualified(stacks.primary))
    for key, value in overrides.get("dr", {}).items():
        session.set_config(stacks.dr, key, value)
    dr_result = session.up(stacks.dr)

    return DeployResult(
        steps=tuple(session.steps),
        outputs={
            stacks.primary: _plain_outputs(primary_result.outputs),
            stacks.dr: _plain_outputs(dr_result.outputs),
        },
    )


def failover(
    *,
    stacks: Stacks = Stacks(),
    on_output: OnOutput = print,
    stack_factory: StackFactory | None = None,
    clock: Clock = time.monotonic,
    work_dir: Path = REPO_ROOT,
    planned: bool = True,
) -> UpResultLike:
    """Declared failover: the latch activated (traffic to region B, and region B's database made the
    writer: at zero lag after region A's writes stopped, or with ``planned`` False over a region A that
    does not answer), then ``dr:active=true`` on the DR stack and ``up`` the DR stack only (the program
    refuses ``dr:active true`` under a standby latch).

    The primary stack is not selected, read or updated: region A may be down.
    """
    session = _Session(
        stacks, stack_factory=stack_factory, on_output=on_output, clock=clock, work_dir=work_dir
    )
    return _failover(session, planned=planned)


def _failover_steps(
    *, stacks: Stacks, on_output: OnOutput, stack_factory: StackFactory | None, planned: bool = True
) -> tuple[StepResult, ...]:
    """``failover`` for the CLI, which reports the timed step rather than the UpResult."""
    session = _Session(
        stacks, stack_factory=stack_factory, on_output=on_output, clock=time.monotonic, work_dir=REPO_ROOT
    )
    _failover(session, planned=planned)
    return tuple(session.steps)


def _failover(session: _Session, *, planned: bool = True) -> UpResultLike:
    dr = session.stacks.dr
    session.say(f"failover: {dr} takes the traffic")
    session.latch(dr, "activate", planned=planned)
    session.set_config(dr, KEY_ACTIVE, "true")
    return session.up(dr)


def failback(
    *,
    stacks: Stacks = Stacks(),
    phase: str,
    on_output: OnOutput = print,
    stack_factory: StackFactory | None = None,
    clock: Clock = time.monotonic,
    work_dir: Path = REPO_ROOT,
) -> tuple[StepResult, ...]:
    """One explicit failback phase (``components.config.FAILBACK_PHASES``), or ``all`` in order.

    ``replicate``, ``switch-writer`` and ``route-back`` set ``dr:failback=<phase>`` and ``up`` the DR stack. ``complete``
    sets ``dr:failback=complete`` and ``dr:active=false`` and ``up``s the DR stack (the latch
    accepts ``dr:active false`` only while ``dr:failback`` is set), then removes ``dr:failback``
    and ``up``s the primary stack last, so region A's stack converges on its declared state.
    """
    phases = _phases(phase)
    session = _Session(
        stacks, stack_factory=stack_factory, on_output=on_output, clock=clock, work_dir=work_dir
    )
    for name in phases:
        _failback_phase(session, name)
    return tuple(session.steps)


def _phases(phase: str) -> tuple[str, ...]:
    if phase == "all":
        return FAILBACK_PHASES
    if phase not in FAILBACK_PHASES:
        raise ValueError(f"unknown failback phase {phase!r}; allowed: {', '.join((*FAILBACK_PHASES, 'all'))}")
    return (phase,)


def write_latch(runbook: Mapping[str, Any], action: str, *, planned: bool = True) -> str:
    """The failover latch with boto3 (``pulumi up`` never writes it): ``activate`` before a declared
    failover's update, ``switch-writer`` before that phase (Aurora's writer move; rds-replica's zero-lag
    proof, refused with CloudError when it cannot be made), ``release`` before
    ``route-back`` (refused, CloudError, unless region A holds the writer). See ``automation.latch_cli``.
    ``planned`` False: ``latch activate --unplanned``. A refusal is a CloudError naming the step.
    """
    import boto3

    from automation.latch_cli import activate, release, switch_writer
    from lambdas.failover.clients import Clients
    from lambdas.failover.context import RunbookContext
    from lambdas.failover.exceptions import StepFailed

    ctx = RunbookContext.from_dict(runbook)
    clients = Clients.for_context(ctx, boto3.Session())
    if action == "activate":
        try:
            return "; ".join(activate(ctx, clients, reason="automation cloud failover", planned=planned))
        except StepFailed as exc:
            raise CloudError(f"latch activate refused: {exc.step}: {exc.reason}") from exc
    if action == "switch-writer":
        # rds-replica: the zero-lag proof the switch-writer update's promotion needs; aurora-global: the
        # switchover. Refused: nothing moved, and the update after it would be refused (break26 B26-2).
        moved, lines = switch_writer(ctx, clients, reason="automation cloud failback")
        if not moved and ctx.database_mode != "aurora-global":
            raise CloudError("; ".join(lines))
        return "; ".join(lines)
    done, lines = release(ctx, clients, reason="automation cloud failback")
    if not done:
        raise CloudError("; ".join(lines))
    return "; ".join(lines)


def _failback_phase(session: _Session, phase: str) -> None:
    dr, primary = session.stacks.dr, session.stacks.primary
    if phase == "switch-writer":
        # Aurora: the program cannot move the writer; the runbook's switch_writer step does.
        # rds-replica: the update promotes region A's replica, once this proved zero lag after the drain.
        session.latch(dr, "switch-writer")
    if phase == "route-back":
        # The latch is what Route 53 follows, and pulumi up never writes it (components/failover.py).
        session.latch(dr, "release")
    session.say(f"failback phase {phase!r}")
    session.set_config(dr, KEY_FAILBACK, phase)
    if phase != FAILBACK_PHASES[-1]:
        session.up(dr)
        if phase == "switch-writer":
            # rds-replica: region A's writer is now the promoted failback instance; the primary stack
            # adopts it and region A's application follows it before traffic goes back (README,
            # "Failing back"). Aurora: nothing changes (the cluster is the writer wherever it is).
            session.up(primary)
        return
    session.set_config(dr, KEY_ACTIVE, "false")
    session.up(dr)
    # Back to a plain standby config: the next routine `pulumi up -s dr` needs no failback flag.
    session.remove_config(dr, KEY_FAILBACK)
    session.up(primary)


def preview(
    *,
    stacks: Stacks = Stacks(),
    on_output: OnOutput = print,
    stack_factory: StackFactory | None = None,
    clock: Clock = time.monotonic,
    work_dir: Path = REPO_ROOT,
) -> tuple[StepResult, ...]:
    """Preview both stacks (primary first), changing nothing, not even config."""
    session = _Session(
        stacks, stack_factory=stack_factory, on_output=on_output, clock=clock, work_dir=work_dir
    )
    session.preview(stacks.primary)
    session.preview(stacks.dr)
    return tuple(session.steps)


def destroy(
    *,
    stacks: Stacks,
    force: bool = False,
    on_output: OnOutput = print,
    stack_factory: StackFactory | None = None,
    clock: Clock = time.monotonic,
    work_dir: Path = REPO_ROOT,
) -> tuple[StepResult, ...]:
    """Destroy the DR stack, then the primary stack (reverse dependency order).

    Refused unless both stack names start with ``drill-`` or ``force`` is true. Drill stacks are
    also removed from the backend; a stack that does not exist is skipped (a drill that failed
    before deploying still cleans up).
    """
    if not (stacks.are_drill_stacks or force):
        raise DestroyRefused(
            f"refusing to destroy {stacks.primary!r} and {stacks.dr!r}: only stacks named "
            f"'{DRILL_PREFIX}*' are destroyed without --force"
        )
    session = _Session(
        stacks, stack_factory=stack_factory, on_output=on_output, clock=clock, work_dir=work_dir
    )
    for name in (stacks.dr, stacks.primary):
        try:
            session.stack(name)
        except StackNotFound:
            session.say(f"destroy {name}: no such stack, nothing to destroy")
            continue
        session.destroy(name, remove=_bare(name).startswith(DRILL_PREFIX))
    return tuple(session.steps)


def http_verify(url: str, *, timeout: float = 5.0) -> VerifyResult:
    """GET the health URL; healthy on HTTP 200 with a JSON body naming the serving ``region``."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        return VerifyResult(healthy=False, status=exc.code, detail=f"HTTP {exc.code}")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return VerifyResult(healthy=False, detail=str(getattr(exc, "reason", exc)))
    try:
        data = json.loads(body)
    except ValueError:
        return VerifyResult(healthy=False, status=status, detail="body is not JSON")
    region = data.get("region") if isinstance(data, dict) else None
    healthy = status == 200 and isinstance(region, str) and bool(region)
    return VerifyResult(healthy=healthy, region=region if isinstance(region, str) else None, status=status)


def drill(
    *,
    stacks: Stacks = Stacks(),
    verify: Callable[[str], VerifyResult] | None = None,
    on_output: OnOutput = print,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 900.0,
    poll_interval: float = 10.0,
    config_overrides: Mapping[str, Mapping[str, str]] | None = None,
    stack_factory: StackFactory | None = None,
    work_dir: Path = REPO_ROOT,
    org_resolver: Callable[[CloudStack], str] | None = None,
) -> DrillReport:
    """Deploy, verify A serves, fail over, verify B serves, fail back (all phases), verify A.

    RTO is the time from the start of the failover to the first healthy answer from region B on
    the failover health URL (stack output ``failoverHealthUrl``). A verification that times out
    fails the drill but the failback still runs, so the stacks end in standby. A Pulumi
    operation that fails stops the drill; the report says where. Never raises for a failed
    drill: read ``report.passed``.
    """
    check = verify or http_verify
    session = _Session(
        stacks,
        stack_factory=stack_factory,
        on_output=on_output,
        clock=clock,
        work_dir=work_dir,
        org_resolver=org_resolver,
    )
    report = DrillReport(primary_stack=stacks.primary, dr_stack=stacks.dr)

    def phase(name: str, action: Callable[[], Any]) -> Any:
        started = clock()
        try:
            value = action()
        except Exception:
            report.phases.append(PhaseTiming(name, clock() - started, False))
            raise
        ok = value.ok if isinstance(value, VerifyOutcome) else True
        report.phases.append(PhaseTiming(name, clock() - started, ok))
        return value

    def wait_for(name: str, url: str, region: str) -> VerifyOutcome:
        outcome = _wait_for_region(
            name,
            url,
            region,
            check,
            clock=clock,
            sleep=sleep,
            timeout=timeout,
            interval=poll_interval,
            say=session.say,
        )
        report.verifications.append(outcome)
        return outcome

    try:
        deployed: DeployResult = phase("deploy", lambda: _deploy(session, config_overrides or {}))
        url, primary_region, dr_region = _drill_targets(deployed, stacks)
        report.primary_region, report.dr_region = primary_region, dr_region

        phase("verify-primary", lambda: wait_for("verify-primary", url, primary_region))

        failover_started = clock()
        phase("failover", lambda: _failover(session))
        verified_dr: VerifyOutcome = phase("verify-dr", lambda: wait_for("verify-dr", url, dr_region))
        if verified_dr.ok:
            # The poll ended at the first healthy answer from B.
            report.rto_seconds = clock() - failover_started

        for name in FAILBACK_PHASES:
            phase(f"failback-{name}", lambda name=name: _failback_phase(session, name))
        phase("verify-primary-again", lambda: wait_for("verify-primary-again", url, primary_region))
    except Exception as exc:
        if _passes_through(exc) and not isinstance(exc, CloudError):
            raise
        report.error = str(exc)
        session.say(f"drill stopped: {exc}")
    finally:
        report.steps = list(session.steps)
    return report


def _wait_for_region(
    phase: str,
    url: str,
    region: str,
    verify: Callable[[str], VerifyResult],
    *,
    clock: Clock,
    sleep: Callable[[float], None],
    timeout: float,
    interval: float,
    say: Callable[[str], None],
) -> VerifyOutcome:
    """Poll ``url`` until it answers healthy from ``region`` or ``timeout`` seconds pass."""
    say(f"{phase}: waiting for {url} to answer from {region} (timeout {_secs(timeout)})")
    started = clock()
    polls = 0
    last = VerifyResult(healthy=False, detail="not polled")
    while True:
        polls += 1
        last = verify(url)
        if last.healthy and last.region == region:
            seconds = clock() - started
            say(f"{phase}: {region} answered after {polls} poll(s), {_secs(seconds)}")
            return VerifyOutcome(phase, url, region, True, polls, seconds, last.region, last.detail)
        if clock() - started + interval > timeout:
            seconds = clock() - started
            detail = (
                f"no healthy answer from {region} within {_secs(timeout)}; last: "
                f"region={last.region!r} status={last.status!r} {last.detail}".rstrip()
            )
            say(f"{phase}: {detail}")
            return VerifyOutcome(phase, url, region, False, polls, seconds, last.region, detail)
        sleep(interval)


def _drill_targets(deployed: DeployResult, stacks: Stacks) -> tuple[str, str, str]:
    """The failover health URL and both regions, from the stacks' outputs."""
    primary_out = deployed.outputs.get(stacks.primary, {})
    dr_out = deployed.outputs.get(stacks.dr, {})
    raw_runbook = dr_out.get("runbook")
    runbook: dict[str, Any] = raw_runbook if isinstance(raw_runbook, dict) else {}

    def first(*candidates: Any) -> Any:
        return next((c for c in candidates if isinstance(c, str) and c), None)

    url = first(dr_out.get(HEALTH_URL_OUTPUT), primary_out.get(HEALTH_URL_OUTPUT))
    primary_region = first(
        runbook.get("primaryRegion"), dr_out.get("primaryRegion"), primary_out.get("region")
    )
    dr_region = first(runbook.get("drRegion"), dr_out.get("drRegion"), dr_out.get("region"))
    missing = [
        what
        for what, value in (
            (f"stack output {HEALTH_URL_OUTPUT!r}", url),
            ("the primary region (dr output runbook.primaryRegion)", primary_region),
            ("the DR region (dr output runbook.drRegion)", dr_region),
        )
        if value is None
    ]
    if missing:
        raise CloudError("cannot verify the drill, the stacks do not export " + ", ".join(missing))
    return url, primary_region, dr_region


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _project_name(work_dir: Path) -> str:
    import yaml

    try:
        data = yaml.safe_load((work_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return PROJECT_NAME
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else PROJECT_NAME


def _template_config(work_dir: Path, template: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``Pulumi.<template>.yaml``."""
    import yaml

    path = work_dir / f"Pulumi.{template}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise CloudError(f"cannot seed a new stack from {path.name}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CloudError(f"cannot seed a new stack from {path.name}: not valid YAML ({exc})") from exc
    config = data.get("config", {}) if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise CloudError(f"{path.name}: 'config' must be a mapping")
    return {str(k): v for k, v in config.items()}


def _flatten_config(config: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Split stack-file config into plain keys and ``--path`` keys, all values as strings.

    Encrypted values (``{secure: ...}``) cannot be copied to a stack with another secrets
    provider, so they stop the seeding with the key named.
    """
    scalars: dict[str, str] = {}
    paths: dict[str, str] = {}

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def walk(path: str, value: Any) -> None:
        if isinstance(value, dict):
            if set(value) == {"secure"}:
                raise CloudError(
                    f"config key {path!r} is a secret; set it on the new stack yourself "
                    "(secrets are never copied between stacks)"
                )
            for k, v in value.items():
                key = str(k)
                walk(f"{path}.{key}" if key.isidentifier() else f'{path}["{key}"]', v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{path}[{i}]", v)
        else:
            paths[path] = scalar(value)

    for key, value in config.items():
        if isinstance(value, dict | list):
            walk(key, value)
        elif value is not None:
            scalars[key] = scalar(value)
    return scalars, paths


def _changes(raw: Mapping[Any, int] | None) -> dict[str, int]:
    return {str(getattr(k, "value", k)): int(v) for k, v in (raw or {}).items()}


def _plain_outputs(outputs: Mapping[str, OutputValueLike]) -> dict[str, Any]:
    return {k: ("[secret]" if v.secret else v.value) for k, v in outputs.items()}


def _short_error(exc: BaseException) -> str:
    """The useful tail of an error: a Pulumi CommandError carries the CLI's whole output."""
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(lines[-15:]) if lines else type(exc).__name__


def _secs(seconds: float) -> str:
    if seconds >= 90:
        return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"
    return f"{seconds:.1f}s"


def _ok(ok: bool) -> str:
    return "ok" if ok else "FAILED"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    out.extend(fmt.format(*row) for row in rows)
    return "\n".join(line.rstrip() for line in out)


def render_steps(steps: Sequence[StepResult]) -> str:
    """The summary table printed at the end of every operation."""
    return _table(
        ["stack", "operation", "result", "changes", "duration"],
        [[s.stack, s.operation, s.result, s.changes_text(), _secs(s.seconds)] for s in steps],
    )


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

OPERATIONS = ("deploy", "failover", "failback", "drill", "destroy", "preview")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--primary-stack", default=TEMPLATE_PRIMARY, metavar="NAME", help="default: %(default)s"
    )
    common.add_argument("--dr-stack", default=TEMPLATE_DR, metavar="NAME", help="default: %(default)s")
    common.add_argument(
        "--org", default=None, help="Pulumi organization of the stacks (default: the logged-in identity's)"
    )
    common.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (progress on stderr)"
    )

    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument(
        "--config-primary", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="config set on the primary stack before deploying (repeatable)",
    )  # fmt: skip
    overrides.add_argument(
        "--config-dr", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
        help="config set on the DR stack before deploying (repeatable)",
    )  # fmt: skip

    parser = argparse.ArgumentParser(
        prog="python -m automation cloud",
        description="Cloud operations on the primary and DR stacks (needs the Pulumi CLI and AWS access).",
    )
    sub = parser.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    sub.add_parser("deploy", parents=[common, overrides], help="up the primary stack, then the DR stack")
    fo = sub.add_parser(
        "failover", parents=[common], help="latch activate, then dr:active=true and up the DR stack only"
    )
    fo.add_argument(
        "--unplanned",
        action="store_true",
        help="region A's database does not answer: `latch activate --unplanned` (promote once traffic has "
        "left region A, reporting an upper estimate of what may be lost)",
    )
    fb = sub.add_parser("failback", parents=[common], help="one explicit failback phase, or all")
    fb.add_argument("--phase", required=True, choices=(*FAILBACK_PHASES, "all"))
    dr = sub.add_parser(
        "drill", parents=[common, overrides], help="deploy, fail over, verify, fail back, report RTO"
    )
    dr.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per verification (default: %(default)s)"
    )
    dr.add_argument(
        "--poll-interval", type=float, default=10.0, help="seconds between polls (default: %(default)s)"
    )
    dr.add_argument(
        "--report", type=Path, default=None, metavar="PATH", help="also write the report as JSON here"
    )
    ds = sub.add_parser(
        "destroy", parents=[common], help="destroy the DR stack, then the primary (drill stacks)"
    )
    ds.add_argument(
        "--force", action="store_true", help="allow stacks whose names do not start with 'drill-'"
    )
    sub.add_parser("preview", parents=[common], help="preview both stacks")
    return parser


def main(
    argv: list[str] | None = None,
    *,
    stack_factory: StackFactory | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """``python -m automation cloud <operation> [options]``; returns the exit code.

    0: done (drill passed); 1: an operation failed (or the drill did); 2: usage error, refused
    destroy, or no Pulumi CLI.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)

    # With --json, stdout carries only the JSON document; people read progress on stderr.
    progress = err if args.json else out

    def say(line: str) -> None:
        print(line, file=progress, flush=True)

    try:
        stacks = Stacks(primary=args.primary_stack, dr=args.dr_stack, org=args.org)
    except ValueError as exc:
        print(f"error: {exc}", file=err)
        return 2
    common: dict[str, Any] = {"stacks": stacks, "on_output": say, "stack_factory": stack_factory}
    overrides = {
        "primary": dict(getattr(args, "config_primary", [])),
        "dr": dict(getattr(args, "config_dr", [])),
    }

    try:
        if args.operation == "drill":
            report = drill(
                **common,
                timeout=args.timeout,
                poll_interval=args.poll_interval,
                config_overrides=overrides,
            )
            say("")
            say(render_steps(report.steps))
            say("")
            say(report.render())
            if args.report is not None:
                args.report.parent.mkdir(parents=True, exist_ok=True)
                args.report.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
                say(f"report written to {args.report}")
            if args.json:
                print(json.dumps(report.to_dict(), indent=2), file=out)
            return 0 if report.passed else 1

        payload: dict[str, Any] = {
            "operation": args.operation,
            "primaryStack": stacks.primary,
            "drStack": stacks.dr,
        }
        if args.operation == "deploy":
            deployed = deploy(**common, config_overrides=overrides)
            steps: Sequence[StepResult] = deployed.steps
            payload["outputs"] = deployed.outputs
        elif args.operation == "failover":
            steps = _failover_steps(**common, planned=not args.unplanned)
        elif args.operation == "failback":
            steps = failback(**common, phase=args.phase)
        elif args.operation == "destroy":
            steps = destroy(**common, force=args.force)
        else:
            steps = preview(**common)
        payload["steps"] = [asdict(s) for s in steps]
        say("")
        say(render_steps(steps))
        if args.json:
            print(json.dumps(payload, indent=2), file=out)
        return 0
    except DestroyRefused as exc:
        print(f"error: {exc}", file=err)
        return 2
    except FileNotFoundError as exc:
        if is_missing_cli_error(exc):
            print(f"error: {CLI_MISSING_MESSAGE}", file=err)
            return 2
        print(f"error: {exc}", file=err)
        return 1
    except (CloudError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    except Exception as exc:
        if _is_invalid_cli_version(exc):
            print(f"error: the installed Pulumi CLI cannot be used: {exc}", file=err)
            return 2
        raise


def _passes_through(exc: BaseException) -> bool:
    """Errors that are not one stack's failure: ours, interrupts, and no usable Pulumi CLI."""
    return (
        not isinstance(exc, Exception)
        or isinstance(exc, CloudError)
        or is_missing_cli_error(exc)
        or _is_invalid_cli_version(exc)
    )


def _is_invalid_cli_version(exc: BaseException) -> bool:
    return type(exc).__name__ == "InvalidVersionError" and type(exc).__module__.startswith(
        "pulumi.automation"
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
