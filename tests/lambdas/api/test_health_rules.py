"""The health check's database decision (``lambdas/api/health_rules.py``), case by case: every rule of
``judge_database``'s docstring and the edges between them (break39 B39-1).

Invariant protected: **traffic follows the writer** (docs/safety.md): region A's health answer is what
Route 53's endpoint check and a forced failover's late look read as "region A serves its writer"; it must
not go dark because RDS's control plane did, nor answer healthy over a writer that takes no statement,
nor overrule a problem RDS states.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from lambdas.api.health_rules import CheckError, control_plane_answered, error_code, judge_database

WRITER = {"mode": "rds-replica", "instance": "db", "instance_status": "available", "writer": True}
STANDBY = {**WRITER, "writer": False}


def _unreachable() -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com/")


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("control", "data", "writer", "outcome"),
    [
        pytest.param(WRITER, None, True, {"status": "ok", **WRITER}, id="no-data-plane-writer"),
        pytest.param(STANDBY, None, False, {"status": "ok", **STANDBY}, id="no-data-plane-standby"),
        pytest.param(
            WRITER,
            {"answer": "writer"},
            True,
            {"status": "ok", **WRITER, "data_plane": {"answer": "writer"}},
            id="both-writer",
        ),
        pytest.param(
            WRITER,
            {"answer": "read-only"},
            False,
            {"status": "ok", **WRITER, "writer": False, "data_plane": {"answer": "read-only"}},
            id="rds-writer-database-read-only",
        ),
        pytest.param(
            STANDBY,
            {"answer": "writer"},
            True,
            {"status": "ok", **STANDBY, "writer": True, "data_plane": {"answer": "writer"}},
            id="promoted-before-rds-says-so",
        ),
        pytest.param(
            WRITER,
            {"error": "refused"},
            None,
            {
                "status": "failed",
                **WRITER,
                "error": "WriterRefusesSessions",
                "data_plane": {"error": "refused"},
            },
            id="writer-refuses",
        ),
        pytest.param(
            STANDBY,
            {"error": "refused"},
            False,
            {"status": "degraded", **STANDBY, "data_plane": {"error": "refused"}},
            id="standby-refuses",
        ),
        pytest.param(
            WRITER,
            {"error": "database_unreachable"},
            True,
            {"status": "degraded", **WRITER, "data_plane": {"error": "database_unreachable"}},
            id="writer-no-answer",
        ),
        pytest.param(
            WRITER,
            {"error": "NoAnswerInTime"},
            True,
            {"status": "degraded", **WRITER, "data_plane": {"error": "NoAnswerInTime"}},
            id="writer-late",
        ),
        pytest.param(
            _unreachable(),
            {"error": "refused"},
            None,
            {"status": "failed", "error": "EndpointConnectionError", "data_plane": {"error": "refused"}},
            id="control-down-refused",
        ),
        pytest.param(
            STANDBY,
            {"error": "database_unreachable"},
            False,
            {"status": "degraded", **STANDBY, "data_plane": {"error": "database_unreachable"}},
            id="standby-unreachable",
        ),
        pytest.param(
            _unreachable(),
            {"answer": "writer"},
            True,
            {
                "status": "degraded",
                "control_plane_error": "EndpointConnectionError",
                "data_plane": {"answer": "writer"},
            },
            id="control-down-writer",
        ),
        pytest.param(
            _unreachable(),
            {"answer": "not-writer"},
            False,
            {
                "status": "degraded",
                "control_plane_error": "EndpointConnectionError",
                "data_plane": {"answer": "not-writer"},
            },
            id="control-down-secondary",
        ),
        pytest.param(
            _client_error("Throttling", 400),
            {"answer": "writer"},
            True,
            {"status": "degraded", "control_plane_error": "Throttling", "data_plane": {"answer": "writer"}},
            id="control-throttled",
        ),
        pytest.param(
            _client_error("InternalFailure", 500),
            {"answer": "writer"},
            True,
            {
                "status": "degraded",
                "control_plane_error": "InternalFailure",
                "data_plane": {"answer": "writer"},
            },
            id="control-5xx",
        ),
        pytest.param(
            _client_error("SomethingNew", 503),
            {"answer": "writer"},
            True,
            {"status": "degraded", "control_plane_error": "SomethingNew", "data_plane": {"answer": "writer"}},
            id="control-unknown-503",
        ),
        pytest.param(
            _client_error("DBInstanceNotFound", 404),
            {"answer": "writer"},
            None,
            {"status": "failed", "error": "DBInstanceNotFound", "data_plane": {"answer": "writer"}},
            id="control-states-not-found",
        ),
        pytest.param(
            _client_error("AccessDenied", 403),
            {"answer": "writer"},
            None,
            {"status": "failed", "error": "AccessDenied", "data_plane": {"answer": "writer"}},
            id="control-denies",
        ),
        pytest.param(
            WRITER,
            {"answer": "busy"},
            True,
            {"status": "degraded", **WRITER, "data_plane": {"answer": "busy"}},
            id="busy-writer",
        ),
        pytest.param(
            STANDBY,
            {"answer": "busy"},
            False,
            {"status": "degraded", **STANDBY, "data_plane": {"answer": "busy"}},
            id="busy-standby",
        ),
        pytest.param(
            _unreachable(),
            {"answer": "busy"},
            None,
            {
                "status": "degraded",
                "control_plane_error": "EndpointConnectionError",
                "data_plane": {"answer": "busy"},
            },
            id="control-down-busy",
        ),
        pytest.param(
            _unreachable(),
            {"error": "database_unreachable"},
            None,
            {
                "status": "failed",
                "error": "EndpointConnectionError",
                "data_plane": {"error": "database_unreachable"},
            },
            id="neither-answers",
        ),
        pytest.param(
            _unreachable(),
            None,
            None,
            {"status": "failed", "error": "EndpointConnectionError"},
            id="control-down-no-data-plane",
        ),
    ],
)
def test_judge_database(control: Any, data: Any, writer: bool | None, outcome: dict[str, Any]) -> None:
    assert judge_database(control, data) == (writer, outcome)


def test_a_problem_rds_states_is_not_overruled() -> None:
    problem = CheckError("DatabaseUnavailable", "DB instance db is failed")
    assert judge_database(problem, {"answer": "writer"}) == (
        None,
        {"status": "failed", "error": "DatabaseUnavailable", "data_plane": {"answer": "writer"}},
    )


@pytest.mark.parametrize(
    ("error", "answered"),
    [
        (CheckError("DatabaseUnavailable", "failed"), True),
        (EndpointConnectionError(endpoint_url="https://rds.us-east-1.amazonaws.com/"), False),
        (
            ClientError({"Error": {"Code": "Throttling"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Op"),
            False,
        ),
        (
            ClientError(
                {"Error": {"Code": "ServiceUnavailable"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Op"
            ),
            False,
        ),
        (
            ClientError(
                {"Error": {"Code": "RequestTimeout"}, "ResponseMetadata": {"HTTPStatusCode": 408}}, "Op"
            ),
            False,
        ),
        (ClientError({"Error": {"Code": "Odd"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "Op"), False),
        (ClientError({"Error": {"Code": "Odd"}, "ResponseMetadata": {"HTTPStatusCode": 499}}, "Op"), True),
        (ClientError({"Error": {"Code": "Odd"}}, "Op"), True),
        (
            ClientError(
                {"Error": {"Code": "InvalidParameterValue"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                "Op",
            ),
            True,
        ),
    ],
    ids=[
        "check-error",
        "unreachable",
        "throttled",
        "unavailable-code",
        "timeout-code",
        "500",
        "499",
        "no-status",
        "400",
    ],
)
def test_control_plane_answered(error: BaseException, answered: bool) -> None:
    assert control_plane_answered(error) is answered


def test_error_code_names_what_failed() -> None:
    assert error_code(CheckError("NotAGlobalClusterMember", "m")) == "NotAGlobalClusterMember"
    assert error_code(ClientError({"Error": {"Code": "AccessDenied"}}, "Op")) == "AccessDenied"
    assert error_code(EndpointConnectionError(endpoint_url="u")) == "EndpointConnectionError"
    # The message is what the log line's detail carries (lambdas/api/health.py).
    assert str(CheckError("DatabaseUnavailable", "DB instance db is failed")) == "DB instance db is failed"
