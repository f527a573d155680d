"""tests/sfn_history.py: an execution history moto holds but cannot serialize is still read whole."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from tests.sfn_history import execution_history

ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def finished() -> Iterator[tuple[Any, str]]:
    """A one-state execution run to its end in moto's interpreter."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("stepfunctions", region_name="us-west-2")
        definition = {"StartAt": "p", "States": {"p": {"Type": "Pass", "End": True}}}
        machine = client.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)
        arn = client.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")["executionArn"]
        deadline = time.monotonic() + 30
        while client.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield client, arn


def test_a_serializable_history_is_the_apis(finished: tuple[Any, str]) -> None:
    client, arn = finished
    assert execution_history(client, arn) == client.get_execution_history(executionArn=arn)["events"]


def test_the_aborted_branch_race_is_read_from_the_backend_without_the_corrupt_field(
    finished: tuple[Any, str],
) -> None:
    """The race's shape (a TaskScheduled whose timeoutInSeconds is the state's input) makes the
    API raise; the helper answers every event, the corrupted field dropped, the rest kept."""
    client, arn = finished
    execution = stepfunctions_parser_backends["123456789012"]["us-west-2"].describe_execution(arn)
    held = execution.exec_worker.env.event_manager._history_event_list
    held.append(
        {
            "id": len(held) + 1,
            "previousEventId": len(held),
            "timestamp": held[-1]["timestamp"],
            "type": HistoryEventType.TaskScheduled,
            "taskScheduledEventDetails": {
                "resource": "invoke",
                "resourceType": "lambda",
                "region": "us-west-2",
                "parameters": "{}",
                "timeoutInSeconds": {"params": {}},
            },
        }
    )
    with pytest.raises(TypeError):
        client.get_execution_history(executionArn=arn)

    events = execution_history(client, arn)

    assert [e["type"] for e in events] == [str(e["type"].value) for e in held]
    assert all(type(e["type"]) is str for e in events)
    assert events[-1]["taskScheduledEventDetails"] == {
        "resource": "invoke",
        "resourceType": "lambda",
        "region": "us-west-2",
        "parameters": "{}",
    }
    assert events[0]["type"] == "ExecutionStarted"
