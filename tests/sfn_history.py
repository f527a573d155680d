"""An execution's event history from moto's Step Functions, read through the API.

moto 5.2's interpreter has a race on an aborted Parallel branch: when a sibling branch fails while
a branch is scheduling its Lambda task, the task's ``TimeoutSeconds`` evaluates on a stopped
environment and ``env.stack.pop()`` returns the state's input, so the branch's
``TaskScheduled`` event records a dict as ``timeoutInSeconds``
(``moto/stepfunctions/parser/asl/component/state/exec/state_task/service/state_task_service.py``,
``_before_eval_execution``). Every later ``GetExecutionHistory`` of that execution then fails in
moto's response serializer (``TypeError: int() argument must be ... not 'dict'``): the history is
whole, only moto cannot serialize it. It was seen once in CI in 2,928 tests, and reproduced here
with 4 of 400 runs of a Parallel whose branch fails, on 2 cores under load.

AWS writes ``timeoutInSeconds`` as the integer the definition gives
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_TaskScheduledEventDetails.html),
so for that one case the history is read from moto's backend in this process, the same events the
API would return, with the corrupted field dropped. Anything else raises.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.models import stepfunctions_parser_backends


def execution_history(client: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of the execution ``arn``, oldest first, as GetExecutionHistory returns them."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        try:
            page = client.get_execution_history(**kwargs)
        except TypeError:
            return _from_backend(arn)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def _from_backend(arn: str) -> list[dict[str, Any]]:
    """The history moto holds for ``arn``, each ``TaskScheduled`` event's non-integer
    ``timeoutInSeconds`` (the race above) dropped; the event types as plain strings."""
    _, _, _, region, account, *_ = arn.split(":")
    execution = stepfunctions_parser_backends[account][region].describe_execution(arn)
    events = []
    for held in execution.to_history_output()["events"]:
        event = dict(held)
        event["type"] = str(event["type"].value if hasattr(event["type"], "value") else event["type"])
        details = event.get("taskScheduledEventDetails")
        if details is not None and not isinstance(details.get("timeoutInSeconds", 0), int):
            event["taskScheduledEventDetails"] = {k: v for k, v in details.items() if k != "timeoutInSeconds"}
        events.append(event)
    return events
