"""automation.cloud with the Pulumi workspace replaced by a test double.

``FakeBackend`` stands in for ``pulumi.automation``: its factory hands out ``FakeStack`` objects
that record every call (``set_config``, ``set_all_config``, ``remove_config``, ``get_all_config``,
``up``, ``preview``, ``destroy``, ``outputs``) in one shared, ordered log, so the tests assert the
order of operations across both stacks and the config each stack had when it was updated.
"""

from __future__ import annotations

import errno
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from automation import cloud
from automation.cloud import (
    CLI_MISSING_MESSAGE,
    DestroyRefused,
    DrillReport,
    OperationFailed,
    StackNotFound,
    Stacks,
    VerifyResult,
)

REGION_A = "us-east-1"
REGION_B = "us-west-2"
HEALTH_URL = "https://app.example.com/health"
UP_SECONDS = 30.0


# ---------------------------------------------------------------------------------------------
# Test doubles
# ---------------------------------------------------------------------------------------------


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps or a fake update runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Call:
    stack: str
    method: str
    args: tuple[Any, ...] = ()
    config: dict[str, str] = field(default_factory=dict)  # the stack's config when the call was made


def _result(outputs: dict[str, Any], changes: dict[str, int] | None = None) -> SimpleNamespace:
    summary = SimpleNamespace(result="succeeded", resource_changes=changes or {"same": 10, "update": 1})
    return SimpleNamespace(
        summary=summary,
        outputs={k: SimpleNamespace(value=v, secret=k == "dbPassword") for k, v in outputs.items()},
        change_summary=changes or {"same": 10, "update": 1},
    )


class FakeStack:
    """Records what the operations do to one stack."""

    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.config: dict[str, str] = {}
        self.path_config: dict[str, str] = {}

    def _log(self, method: str, *args: Any) -> None:
        self.backend.log.append(Call(self.name, method, args, dict(self.config)))

    def get_all_config(self) -> dict[str, Any]:
        self._log("get_all_config")
        return {k: SimpleNamespace(value=v, secret=False) for k, v in self.config.items()}

    def set_config(self, key: str, value: Any, *, path: bool = False) -> None:
        assert not path
        self.config[key] = value.value
        self._log("set_config", key, value.value)

    def set_all_config(self, config: dict[str, Any], *, path: bool = False) -> None:
        target = self.path_config if path else self.config
        target.update({k: v.value for k, v in config.items()})
        self._log("set_all_config", {k: v.value for k, v in config.items()}, path)

    def remove_config(self, key: str, *, path: bool = False) -> None:
        self.config.pop(key, None)
        self._log("remove_config", key)

    def up(self, *, on_output: Callable[[str], Any] | None = None) -> SimpleNamespace:
        self._log("up")
        if self.backend.fail_up_on == self.name:
            raise RuntimeError(f"error: update of {self.name} failed\nresource x: AccessDenied")
        if on_output is not None:
            on_output(f"Updating ({self.name})")
        if self.backend.clock is not None:
            self.backend.clock.sleep(UP_SECONDS)
        return _result(self.backend.outputs.get(self.name, {}))

    def preview(self, *, on_output: Callable[[str], Any] | None = None) -> SimpleNamespace:
        self._log("preview")
        return _result({}, {"same": 10, "create": 2})

    def destroy(
        self, *, on_output: Callable[[str], Any] | None = None, remove: bool | None = None
    ) -> SimpleNamespace:
        self._log("destroy", remove)
        return _result({}, {"delete": 12})

    def outputs(self) -> dict[str, Any]:
        self._log("outputs")
        return _result(self.backend.outputs.get(self.name, {})).outputs


class FakeBackend:
    """The stack factory: hands out FakeStacks; knows which stacks exist."""

    def __init__(self, *, existing: tuple[str, ...] = (), clock: FakeClock | None = None) -> None:
        self.log: list[Call] = []
        self.requests: list[tuple[str, bool]] = []
        self.stacks: dict[str, FakeStack] = {name: FakeStack(self, name) for name in existing}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.clock = clock
        self.fail_up_on: str | None = None

    def __call__(self, stack_name: str, *, create: bool) -> FakeStack:
        self.requests.append((stack_name, create))
        if stack_name not in self.stacks:
            if not create:
                raise StackNotFound(f"stack {stack_name!r} does not exist")
            self.stacks[stack_name] = FakeStack(self, stack_name)
        return self.stacks[stack_name]

    def calls(self, *methods: str) -> list[tuple[str, str]]:
        """(stack, method) in order, for the given methods (all but reads when none given)."""
        wanted = methods or ("set_config", "set_all_config", "remove_config", "up", "preview", "destroy")
        return [(c.stack, c.method) for c in self.log if c.method in wanted]

    def touched(self, stack: str) -> list[Call]:
        return [c for c in self.log if c.stack == stack]


def _outputs(backend: FakeBackend, primary: str = "primary", dr: str = "dr") -> None:
    backend.outputs[primary] = {"region": REGION_A, "albDnsName": "a.example.com", "dbPassword": "s3cret"}
    backend.outputs[dr] = {
        "failoverHealthUrl": HEALTH_URL,
        "runbook": {"primaryRegion": REGION_A, "drRegion": REGION_B},
    }


@pytest.fixture(autouse=True)
def latch_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The boto3 latch writes (tested against moto in test_runbook_cli.py), recorded here."""
    written: list[str] = []

    def write(runbook: dict[str, Any], action: str) -> str:
        assert "drRegion" in runbook, runbook
        written.append(action)
        return f"latch {action}"

    monkeypatch.setattr(cloud, "write_latch", write)
    return written


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    """A project directory with the checked-in stack files the ephemeral stacks are seeded from."""
    (tmp_path / "Pulumi.yaml").write_text("name: pilotlight\nruntime: python\n")
    (tmp_path / "Pulumi.primary.yaml").write_text(
        "config:\n"
        "  aws:region: us-east-1\n"
        "  pilotlight:role: primary\n"
        "  pilotlight:database:\n"
        "    mode: aurora-global\n"
        "    instances: 1\n"
        "  pilotlight:azs: [us-east-1a, us-east-1b]\n"
    )
    (tmp_path / "Pulumi.dr.yaml").write_text(
        "config:\n"
        "  aws:region: us-west-2\n"
        "  pilotlight:role: dr\n"
        "  pilotlight:primaryStack: primary\n"
        "  dr:active: false\n"
    )
    return tmp_path


DRILL = Stacks(primary="drill-1234-primary", dr="drill-1234-dr", org="acme")
Q_PRIMARY = "acme/pilotlight/drill-1234-primary"
Q_DR = "acme/pilotlight/drill-1234-dr"


# ---------------------------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------------------------


def test_deploy_ups_primary_before_dr_and_leaves_checked_in_config_alone() -> None:
    backend = FakeBackend()
    _outputs(backend)
    lines: list[str] = []

    result = cloud.deploy(stack_factory=backend, on_output=lines.append)

    assert backend.calls() == [("primary", "up"), ("dr", "up")]
    assert backend.requests == [("primary", True), ("dr", True)]
    assert [(s.stack, s.operation, s.result) for s in result.steps] == [
        ("primary", "up", "succeeded"),
        ("dr", "up", "succeeded"),
    ]
    assert result.outputs["primary"]["region"] == REGION_A
    assert result.outputs["primary"]["dbPassword"] == "[secret]"
    assert any(line.startswith("==> up primary") for line in lines)


def test_deploy_ephemeral_stacks_are_seeded_and_dr_points_at_the_ephemeral_primary(templates: Path) -> None:
    backend = FakeBackend()
    _outputs(backend, Q_PRIMARY, Q_DR)

    cloud.deploy(stacks=DRILL, stack_factory=backend, on_output=lambda _: None, work_dir=templates)

    assert backend.calls("up") == [(Q_PRIMARY, "up"), (Q_DR, "up")]
    primary, dr = backend.stacks[Q_PRIMARY], backend.stacks[Q_DR]
    assert primary.config == {"aws:region": "us-east-1", "pilotlight:role": "primary"}
    assert primary.path_config == {
        "pilotlight:database.mode": "aurora-global",
        "pilotlight:database.instances": "1",
        "pilotlight:azs[0]": "us-east-1a",
        "pilotlight:azs[1]": "us-east-1b",
    }
    assert dr.path_config == {}
    dr_up = next(c for c in backend.log if c.stack == Q_DR and c.method == "up")
    assert dr_up.config["pilotlight:primaryStack"] == Q_PRIMARY
    assert dr_up.config["dr:active"] == "false"
    assert dr_up.config["aws:region"] == "us-west-2"
    # The primary is fully configured and up before the DR stack is touched at all.
    first_dr = next(i for i, c in enumerate(backend.log) if c.stack == Q_DR)
    primary_up = next(i for i, c in enumerate(backend.log) if c.stack == Q_PRIMARY and c.method == "up")
    assert primary_up < first_dr


def test_deploy_ephemeral_without_org_qualifies_with_the_logged_in_org(templates: Path) -> None:
    backend = FakeBackend()
    stacks = Stacks(primary="drill-7-primary", dr="drill-7-dr")
    seen: list[str] = []

    def resolver(stack: Any) -> str:
        seen.append(stack.name)
        return "my-user"

    cloud.deploy(
        stacks=stacks,
        stack_factory=backend,
        on_output=lambda _: None,
        work_dir=templates,
        org_resolver=resolver,
    )

    assert (
        backend.stacks["drill-7-dr"].config["pilotlight:primaryStack"] == "my-user/pilotlight/drill-7-primary"
    )
    assert seen == ["drill-7-primary"]


def test_deploy_fully_qualified_names_are_used_as_given(templates: Path) -> None:
    backend = FakeBackend()
    stacks = Stacks(primary="team/pilotlight/drill-9-primary", dr="team/pilotlight/drill-9-dr")

    cloud.deploy(stacks=stacks, stack_factory=backend, on_output=lambda _: None, work_dir=templates)

    assert backend.stacks["team/pilotlight/drill-9-dr"].config["pilotlight:primaryStack"] == (
        "team/pilotlight/drill-9-primary"
    )


def test_deploy_seeding_keeps_keys_the_stack_already_has(templates: Path) -> None:
    backend = FakeBackend(existing=(Q_DR,))
    backend.stacks[Q_DR].config["dr:active"] = "true"  # failed over earlier; a redeploy must not undo it

    cloud.deploy(stacks=DRILL, stack_factory=backend, on_output=lambda _: None, work_dir=templates)

    assert backend.stacks[Q_DR].config["dr:active"] == "true"
    assert backend.stacks[Q_DR].config["pilotlight:role"] == "dr"


def test_deploy_refuses_to_copy_secrets_into_a_new_stack(templates: Path) -> None:
    (templates / "Pulumi.primary.yaml").write_text("config:\n  pilotlight:apiKey:\n    secure: AAABAM==\n")
    backend = FakeBackend()

    with pytest.raises(cloud.CloudError, match="pilotlight:apiKey"):
        cloud.deploy(stacks=DRILL, stack_factory=backend, on_output=lambda _: None, work_dir=templates)
    assert backend.calls("up") == []


def test_deploy_config_overrides_go_to_the_named_role_before_its_update() -> None:
    backend = FakeBackend()

    cloud.deploy(
        stack_factory=backend,
        on_output=lambda _: None,
        config_overrides={"primary": {"pilotlight:environment": "drill"}, "dr": {"dr:capacityPercent": "50"}},
    )

    assert backend.calls() == [
        ("primary", "set_config"),
        ("primary", "up"),
        ("dr", "set_config"),
        ("dr", "up"),
    ]
    assert backend.stacks["primary"].config == {"pilotlight:environment": "drill"}
    assert backend.stacks["dr"].config == {"dr:capacityPercent": "50"}


def test_deploy_rejects_overrides_for_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="'primary' or 'dr'"):
        cloud.deploy(stack_factory=FakeBackend(), config_overrides={"prod": {"a": "b"}})


# ---------------------------------------------------------------------------------------------
# failover / failback
# ---------------------------------------------------------------------------------------------


def test_failover_activates_the_latch_then_sets_active_on_dr_only_and_never_touches_primary(
    latch_writes: list[str],
) -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    _outputs(backend)

    result = cloud.failover(stack_factory=backend, on_output=lambda _: None)

    # E2: traffic moves through the latch (the program refuses dr:active true under a standby latch).
    assert latch_writes == ["activate"]
    assert [c.method for c in backend.log if c.method in ("outputs", "set_config", "up")] == [
        "outputs",
        "set_config",
        "up",
    ]
    assert backend.calls() == [("dr", "set_config"), ("dr", "up")]
    up = backend.log[-1]
    assert up.config == {"dr:active": "true"}
    assert backend.touched("primary") == []
    assert all(name != "primary" for name, _ in backend.requests)
    assert backend.requests == [("dr", False)]  # selected, never created
    assert result.summary.result == "succeeded"


def test_cli_failover_unplanned_is_latch_activate_unplanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cloud failover --unplanned` over a region A that does not answer is `latch activate --unplanned`
    (the runbook's promotion, which may lose the unreplicated tail and says how much); without it the
    declared failover asks for a lossless move (break34 B34-5)."""
    asked: list[tuple[str, bool]] = []

    def write(runbook: dict[str, Any], action: str, *, planned: bool = True) -> str:
        asked.append((action, planned))
        return f"latch {action}"

    monkeypatch.setattr(cloud, "write_latch", write)
    backend = FakeBackend(existing=("primary", "dr"))
    _outputs(backend)

    assert _main(["failover", "--unplanned"], backend).code == 0
    assert _main(["failover"], backend).code == 0
    assert asked == [("activate", False), ("activate", True)]


def test_failover_on_a_missing_dr_stack_fails_without_creating_it() -> None:
    backend = FakeBackend()

    with pytest.raises(StackNotFound):
        cloud.failover(stack_factory=backend, on_output=lambda _: None)
    assert backend.stacks == {}


@pytest.mark.parametrize(
    ("phase", "expected", "dr_config_at_up"),
    [
        (
            "replicate",
            [("dr", "set_config"), ("dr", "up")],
            [{"dr:active": "true", "dr:failback": "replicate"}],
        ),
        (
            # then the primary stack: region A's application follows the writer (break13, B13-1)
            "switch-writer",
            [("dr", "set_config"), ("dr", "up"), ("primary", "up")],
            [{"dr:active": "true", "dr:failback": "switch-writer"}],
        ),
        (
            # pulumi up never writes the latch: it is released (runbook output read) before route-back.
            "route-back",
            [("dr", "set_config"), ("dr", "up")],
            [{"dr:active": "true", "dr:failback": "route-back"}],
        ),
        (
            "complete",
            [
                ("dr", "set_config"),
                ("dr", "set_config"),
                ("dr", "up"),
                ("dr", "remove_config"),
                ("primary", "up"),
            ],
            [{"dr:active": "false", "dr:failback": "complete"}],
        ),
    ],
)
def test_failback_phase_sets_and_removes_the_right_keys(
    phase: str,
    expected: list[tuple[str, str]],
    dr_config_at_up: list[dict[str, str]],
    latch_writes: list[str],
) -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    backend.stacks["dr"].config["dr:active"] = "true"
    _outputs(backend)

    cloud.failback(phase=phase, stack_factory=backend, on_output=lambda _: None)

    assert backend.calls() == expected
    assert [c.config for c in backend.log if c.stack == "dr" and c.method == "up"] == dr_config_at_up
    assert latch_writes == {"route-back": ["release"], "switch-writer": ["switch-writer"]}.get(phase, [])
    if phase == "complete":
        assert backend.calls()[-1] == ("primary", "up")
        assert backend.stacks["dr"].config == {"dr:active": "false"}
        assert [c.args for c in backend.log if c.method == "remove_config"] == [("dr:failback",)]
    elif phase != "switch-writer":
        assert backend.touched("primary") == []


def test_failback_all_runs_the_phases_in_order_and_ups_primary_last() -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    backend.stacks["dr"].config["dr:active"] = "true"
    _outputs(backend)

    steps = cloud.failback(phase="all", stack_factory=backend, on_output=lambda _: None)

    failback_values = [
        c.args[1] for c in backend.log if c.method == "set_config" and c.args[0] == "dr:failback"
    ]
    assert failback_values == ["replicate", "drain", "switch-writer", "route-back", "complete"]
    assert [(s.stack, s.operation) for s in steps] == [
        ("dr", "up"),
        ("dr", "up"),
        ("dr", "latch switch-writer"),
        ("dr", "up"),
        ("primary", "up"),
        ("dr", "latch release"),
        ("dr", "up"),
        ("dr", "up"),
        ("primary", "up"),
    ]
    assert backend.calls()[-1] == ("primary", "up")


def test_failback_stops_before_route_back_when_the_latch_release_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    _outputs(backend)

    def refuse(runbook: dict[str, Any], action: str) -> str:
        raise cloud.CloudError("refused: the writer is region B")

    monkeypatch.setattr(cloud, "write_latch", refuse)
    with pytest.raises(cloud.CloudError, match="the writer is region B"):
        cloud.failback(phase="route-back", stack_factory=backend, on_output=lambda _: None)
    assert backend.calls("set_config", "up") == []


def test_failback_rejects_an_unknown_phase() -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    with pytest.raises(ValueError, match="replicate, drain, switch-writer, route-back, complete, all"):
        cloud.failback(phase="rollback", stack_factory=backend)
    assert backend.log == []


# ---------------------------------------------------------------------------------------------
# drill
# ---------------------------------------------------------------------------------------------


class ServingRegion:
    """The failover health endpoint: region A until the DR stack is active, then (after a few
    unhealthy polls while the DR tier starts) region B; back to A once DR is no longer active."""

    def __init__(self, backend: FakeBackend, dr_stack: str, unhealthy_polls: int) -> None:
        self.backend = backend
        self.dr_stack = dr_stack
        self.unhealthy_polls = unhealthy_polls
        self.polls_since_failover = 0
        self.urls: list[str] = []

    def __call__(self, url: str) -> VerifyResult:
        self.urls.append(url)
        dr = self.backend.stacks[self.dr_stack]
        if dr.config.get("dr:active") == "true":
            self.polls_since_failover += 1
            if self.polls_since_failover <= self.unhealthy_polls:
                return VerifyResult(healthy=False, status=503, detail="warming up")
            return VerifyResult(healthy=True, region=REGION_B, status=200)
        return VerifyResult(healthy=True, region=REGION_A, status=200)


def _drill(
    backend: FakeBackend,
    clock: FakeClock,
    verify: Callable[[str], VerifyResult],
    **kwargs: Any,
) -> DrillReport:
    return cloud.drill(
        stack_factory=backend,
        verify=verify,
        on_output=lambda _: None,
        clock=clock,
        sleep=clock.sleep,
        poll_interval=10.0,
        timeout=300.0,
        **kwargs,
    )


@pytest.mark.parametrize("unhealthy_polls", [0, 1, 5])
def test_drill_runs_deploy_failover_failback_in_order_and_measures_rto(unhealthy_polls: int) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    _outputs(backend)
    verify = ServingRegion(backend, "dr", unhealthy_polls)

    report = _drill(backend, clock, verify)

    assert report.passed, report.render()
    assert backend.calls("up") == [
        ("primary", "up"),  # deploy
        ("dr", "up"),
        ("dr", "up"),  # failover
        ("dr", "up"),  # failback: replicate
        ("dr", "up"),  # failback: drain
        ("dr", "up"),  # failback: switch-writer
        ("primary", "up"),  # region A's application follows the writer
        ("dr", "up"),  # failback: route-back
        ("dr", "up"),  # failback: complete
        ("primary", "up"),
    ]
    dr_ups = [c.config for c in backend.log if c.stack == "dr" and c.method == "up"]
    assert [cfg.get("dr:active") for cfg in dr_ups] == [None, "true", "true", "true", "true", "true", "false"]
    assert [cfg.get("dr:failback") for cfg in dr_ups] == [
        None,
        None,
        "replicate",
        "drain",
        "switch-writer",
        "route-back",
        "complete",
    ]
    # RTO: the failover update, then one poll every 10 s until B answers.
    assert report.rto_seconds == pytest.approx(UP_SECONDS + unhealthy_polls * 10.0)
    assert [p.name for p in report.phases] == [
        "deploy",
        "verify-primary",
        "failover",
        "verify-dr",
        "failback-replicate",
        "failback-drain",
        "failback-switch-writer",
        "failback-route-back",
        "failback-complete",
        "verify-primary-again",
    ]
    durations = {p.name: p.seconds for p in report.phases}
    assert durations["deploy"] == pytest.approx(2 * UP_SECONDS)
    assert durations["failover"] == pytest.approx(UP_SECONDS)
    assert durations["verify-dr"] == pytest.approx(unhealthy_polls * 10.0)
    assert durations["failback-complete"] == pytest.approx(2 * UP_SECONDS)
    assert [(v.phase, v.expected_region, v.observed_region, v.polls) for v in report.verifications] == [
        ("verify-primary", REGION_A, REGION_A, 1),
        ("verify-dr", REGION_B, REGION_B, unhealthy_polls + 1),
        ("verify-primary-again", REGION_A, REGION_A, 1),
    ]
    assert set(verify.urls) == {HEALTH_URL}
    assert report.primary_region == REGION_A and report.dr_region == REGION_B


def test_drill_that_never_sees_region_b_fails_but_still_fails_back() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    _outputs(backend)
    verify = ServingRegion(backend, "dr", unhealthy_polls=10_000)

    report = _drill(backend, clock, verify)

    assert not report.passed
    assert report.rto_seconds is None
    verify_dr = next(v for v in report.verifications if v.phase == "verify-dr")
    assert not verify_dr.ok
    assert verify_dr.seconds <= 300.0
    assert "no healthy answer from us-west-2" in verify_dr.detail
    assert backend.calls("up")[-1] == ("primary", "up")  # the failback ran to the end
    assert "FAILED" in report.render()


def test_drill_stops_and_reports_when_a_pulumi_update_fails() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    _outputs(backend)
    backend.fail_up_on = "dr"

    report = _drill(backend, clock, ServingRegion(backend, "dr", 0))

    assert not report.passed
    assert report.error is not None and "up failed on stack 'dr'" in report.error
    assert "AccessDenied" in report.error
    assert backend.calls("up") == [("primary", "up"), ("dr", "up")]
    assert report.phases[-1].name == "deploy" and not report.phases[-1].ok
    assert [(s.stack, s.result) for s in report.steps] == [("primary", "succeeded"), ("dr", "failed")]
    json.dumps(report.to_dict())  # the CI artifact is serialisable


def test_drill_without_a_health_url_output_says_which_output_is_missing() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    _outputs(backend)
    del backend.outputs["dr"]["failoverHealthUrl"]

    report = _drill(backend, clock, ServingRegion(backend, "dr", 0))

    assert not report.passed
    assert report.error is not None and "failoverHealthUrl" in report.error
    assert ("dr", "set_config") not in backend.calls()  # never failed over blind


def test_drill_on_ephemeral_stacks_wires_the_reference_before_deploying_dr(templates: Path) -> None:
    clock = FakeClock()
    backend = FakeBackend(clock=clock)
    _outputs(backend, Q_PRIMARY, Q_DR)

    report = _drill(backend, clock, ServingRegion(backend, Q_DR, 2), stacks=DRILL, work_dir=templates)

    assert report.passed, report.render()
    first_dr_up = next(c for c in backend.log if c.stack == Q_DR and c.method == "up")
    assert first_dr_up.config["pilotlight:primaryStack"] == Q_PRIMARY
    assert report.rto_seconds == pytest.approx(UP_SECONDS + 20.0)


# ---------------------------------------------------------------------------------------------
# destroy / preview
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stacks",
    [
        Stacks(),
        Stacks(primary="drill-1-primary", dr="dr"),
        Stacks(primary="prod-primary", dr="drill-1-dr"),
        Stacks(primary="acme/pilotlight/primary", dr="acme/pilotlight/dr"),
    ],
)
def test_destroy_refuses_stacks_not_named_drill_without_force(stacks: Stacks) -> None:
    backend = FakeBackend(existing=(stacks.primary, stacks.dr))

    with pytest.raises(DestroyRefused, match="--force"):
        cloud.destroy(stacks=stacks, stack_factory=backend)
    assert backend.log == [] and backend.requests == []


def test_destroy_drill_stacks_destroys_dr_before_primary_and_removes_them() -> None:
    stacks = Stacks(primary="drill-1-primary", dr="drill-1-dr")
    backend = FakeBackend(existing=(stacks.primary, stacks.dr))

    steps = cloud.destroy(stacks=stacks, stack_factory=backend, on_output=lambda _: None)

    assert backend.calls() == [("drill-1-dr", "destroy"), ("drill-1-primary", "destroy")]
    assert [c.args for c in backend.log if c.method == "destroy"] == [(True,), (True,)]
    assert all(not create for _, create in backend.requests)
    assert [s.changes for s in steps] == [{"delete": 12}, {"delete": 12}]


def test_destroy_with_force_destroys_a_named_stack_but_keeps_it_in_the_backend() -> None:
    backend = FakeBackend(existing=("primary", "dr"))

    cloud.destroy(stacks=Stacks(), force=True, stack_factory=backend, on_output=lambda _: None)

    assert backend.calls() == [("dr", "destroy"), ("primary", "destroy")]
    assert [c.args for c in backend.log if c.method == "destroy"] == [(None,), (None,)]


def test_destroy_skips_a_drill_stack_that_was_never_created() -> None:
    stacks = Stacks(primary="drill-2-primary", dr="drill-2-dr")
    backend = FakeBackend(existing=(stacks.primary,))
    lines: list[str] = []

    cloud.destroy(stacks=stacks, stack_factory=backend, on_output=lines.append)

    assert backend.calls() == [("drill-2-primary", "destroy")]
    assert "drill-2-dr" not in backend.stacks
    assert any("no such stack" in line for line in lines)


def test_preview_previews_primary_then_dr_and_changes_no_config() -> None:
    backend = FakeBackend(existing=("primary", "dr"))

    steps = cloud.preview(stack_factory=backend, on_output=lambda _: None)

    assert backend.calls() == [("primary", "preview"), ("dr", "preview")]
    assert [s.changes for s in steps] == [{"same": 10, "create": 2}] * 2
    assert "create=2" in cloud.render_steps(steps)


@pytest.mark.parametrize(
    ("primary", "dr", "message"),
    [
        ("primary", "primary", "must differ"),
        ("a/primary", "b/primary", "must differ"),
        ("", "dr", "not a stack name"),
        ("a/b/c/d", "dr", "not a stack name"),
    ],
)
def test_stacks_rejects_bad_names(primary: str, dr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Stacks(primary=primary, dr=dr)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


def _main(argv: list[str], factory: Any = None) -> Run:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = cloud.main(argv, stack_factory=factory, stdout=out, stderr=err)
    return Run(code, out.getvalue(), err.getvalue())


def _no_cli(stack_name: str, *, create: bool) -> Any:
    # What pulumi.automation raises: LocalWorkspace runs `pulumi version` via subprocess.
    raise FileNotFoundError(errno.ENOENT, "No such file or directory", "pulumi")


@pytest.mark.parametrize(
    "argv",
    [
        ["deploy"],
        ["failover"],
        ["failback", "--phase", "switch-writer"],
        ["drill", "--primary-stack", "drill-1-primary", "--dr-stack", "drill-1-dr"],
        ["destroy", "--primary-stack", "drill-1-primary", "--dr-stack", "drill-1-dr"],
        ["preview"],
    ],
)
def test_cli_without_the_pulumi_cli_exits_2_with_one_clear_message(argv: list[str]) -> None:
    run = _main(argv, _no_cli)

    assert run.code == 2
    assert run.err.strip() == f"error: {CLI_MISSING_MESSAGE}"
    assert "Pulumi CLI is required for cloud operations" in run.err
    assert "python -m automation plan" in run.err
    assert "drill --local" in run.err
    assert "Traceback" not in run.err


def test_cli_with_the_real_automation_api_and_no_pulumi_on_path_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `pulumi` to run

    run = _main(["preview"])

    assert run.code == 2
    assert "Pulumi CLI is required" in run.err


def test_a_missing_project_file_is_not_mistaken_for_a_missing_cli() -> None:
    assert cloud.is_missing_cli_error(FileNotFoundError(errno.ENOENT, "No such file", "pulumi"))
    assert cloud.is_missing_cli_error(FileNotFoundError(errno.ENOENT, "x", "/opt/pulumi/bin/pulumi"))
    assert not cloud.is_missing_cli_error(
        FileNotFoundError("failed to find project settings file in workdir: /x")
    )
    assert not cloud.is_missing_cli_error(FileNotFoundError(errno.ENOENT, "x", "Pulumi.yaml"))


def test_cli_destroy_of_a_production_stack_is_refused_with_exit_2() -> None:
    backend = FakeBackend(existing=("primary", "dr"))

    run = _main(["destroy"], backend)

    assert run.code == 2
    assert "refusing to destroy" in run.err and "--force" in run.err
    assert backend.log == []


def test_cli_deploy_prints_progress_and_a_summary_table() -> None:
    backend = FakeBackend()
    _outputs(backend)

    run = _main(["deploy", "--config-dr", "dr:capacityPercent=50"], backend)

    assert run.code == 0, run.err
    assert "==> up primary" in run.out
    table = run.out[run.out.index("stack ") :]
    assert table.splitlines()[2].split()[:3] == ["primary", "up", "succeeded"]
    assert table.splitlines()[3].split()[:3] == ["dr", "up", "succeeded"]
    assert backend.stacks["dr"].config == {"dr:capacityPercent": "50"}


def test_cli_json_keeps_stdout_for_the_document() -> None:
    backend = FakeBackend()
    _outputs(backend)

    run = _main(["deploy", "--json"], backend)

    assert run.code == 0
    doc = json.loads(run.out)
    assert doc["operation"] == "deploy"
    assert [s["stack"] for s in doc["steps"]] == ["primary", "dr"]
    assert doc["outputs"]["primary"]["dbPassword"] == "[secret]"
    assert "==> up primary" in run.err


def test_cli_failover_and_failback_use_the_named_stacks() -> None:
    backend = FakeBackend(existing=("p2", "d2"))
    _outputs(backend, "p2", "d2")

    assert _main(["failover", "--primary-stack", "p2", "--dr-stack", "d2"], backend).code == 0
    assert (
        _main(["failback", "--phase", "all", "--primary-stack", "p2", "--dr-stack", "d2"], backend).code == 0
    )

    # failover, replicate, drain, switch-writer, then p2 (region A's app follows the writer), route-back, complete
    assert backend.calls("up") == [("d2", "up")] * 4 + [("p2", "up")] + [("d2", "up")] * 2 + [("p2", "up")]
    assert backend.stacks["d2"].config == {"dr:active": "false"}


def test_cli_drill_writes_the_report_and_exits_by_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FakeBackend()
    _outputs(backend)
    monkeypatch.setattr(cloud, "http_verify", ServingRegion(backend, "dr", 0))
    report_path = tmp_path / "reports" / "drill.json"

    run = _main(["drill", "--poll-interval", "0", "--timeout", "5", "--report", str(report_path)], backend)

    assert run.code == 0, run.out + run.err
    assert "Drill PASSED" in run.out and "RTO" in run.out
    saved = json.loads(report_path.read_text())
    assert saved["passed"] is True
    assert saved["rto_seconds"] is not None


def test_cli_operation_failure_exits_1_naming_the_stack() -> None:
    backend = FakeBackend(existing=("primary", "dr"))
    _outputs(backend)
    backend.fail_up_on = "dr"

    run = _main(["failover"], backend)

    assert run.code == 1
    assert "up failed on stack 'dr'" in run.err and "AccessDenied" in run.err


@pytest.mark.parametrize(
    "argv",
    [[], ["explode"], ["failback"], ["failback", "--phase", "undo"], ["deploy", "--config-dr", "novalue"]],
)
def test_cli_usage_errors_exit_2(argv: list[str]) -> None:
    assert _main(argv, FakeBackend()).code == 2


def test_operation_failed_keeps_the_tail_of_the_pulumi_error() -> None:
    error = OperationFailed("dr", "up", RuntimeError("\n".join(f"line {i}" for i in range(40))))
    assert "line 39" in str(error) and "line 0\n" not in str(error)


# ---------------------------------------------------------------------------------------------
# the default verify, and import hygiene
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def health_server() -> Iterator[Callable[[int, bytes], str]]:
    """A local HTTP server answering /health with the status and body a test sets."""
    answer: dict[str, Any] = {"status": 200, "body": b"{}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer["body"])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def set_answer(status: int, body: bytes) -> str:
        answer.update(status=status, body=body)
        return f"http://127.0.0.1:{server.server_address[1]}/health"

    yield set_answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "healthy", "region"),
    [
        (200, b'{"region": "us-west-2", "status": "ok"}', True, "us-west-2"),
        (200, b'{"status": "ok"}', False, None),
        (200, b"<html>", False, None),
        (503, b'{"region": "us-west-2"}', False, None),
    ],
)
def test_http_verify_reads_the_serving_region(
    health_server: Callable[[int, bytes], str], status: int, body: bytes, healthy: bool, region: str | None
) -> None:
    result = cloud.http_verify(health_server(status, body), timeout=5)
    assert (result.healthy, result.region) == (healthy, region)


def test_http_verify_unreachable_is_unhealthy_not_an_error() -> None:
    result = cloud.http_verify("http://127.0.0.1:9/health", timeout=1)
    assert not result.healthy and result.detail


def test_importing_the_module_does_not_load_the_automation_api() -> None:
    code = "import sys, automation.cloud; print('pulumi.automation' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
