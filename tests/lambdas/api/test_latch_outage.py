"""Region A's ``/health`` does not wait for region B: a slow or unreachable latch costs it nothing.

A Route 53 checker counts an endpoint unhealthy when its answer has not started 2 seconds after it
connected (https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html).
Region B's SSM is simulated by a server on 127.0.0.1 that accepts connections and never answers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lambdas.api import handler as handler_module
from lambdas.api import health
from lambdas.api.clients import ClientCache
from tests.lambdas.api.support import Answer, load_event

Invoke = Callable[[dict[str, Any]], Answer]


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(1)
    for conn in held:
        conn.close()
    server.close()


def test_region_a_answers_200_within_a_second_while_region_b_hangs(
    clients: ClientCache, invoke: Invoke, set_latch: Callable[[str], None], hanging_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    now = [0.0]
    clients.memo["latch"] = health.LatchMemo(value="standby", read_at=0.0, clock=lambda: now[0])
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", hanging_endpoint)  # region B's SSM stops answering
    assert invoke(load_event("get_health")).status == 200  # a warm container: its clients are made

    now[0] += health.LATCH_TTL_SECONDS  # time to read region B again
    for attempt in range(3):  # the first read waits for its timeout; the next ones use the memory
        start = time.monotonic()
        answer = invoke(load_event("get_health"))
        elapsed = time.monotonic() - start

        assert answer.status == 200, answer.body
        assert elapsed < 1.0, f"attempt {attempt}: region A's health took {elapsed:.2f} s"
        assert answer.body["active"] is True
        assert answer.body["checks"]["latch"]["status"] == "degraded"


def test_region_a_answers_from_its_last_read_while_region_b_hangs(
    clients: ClientCache, invoke: Invoke, set_latch: Callable[[str], None], hanging_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    now = [1000.0]
    clients.memo["latch"] = health.LatchMemo(clock=lambda: now[0])
    set_latch("active")
    assert invoke(load_event("get_health")).body["active"] is False  # read from region B

    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", hanging_endpoint)
    restarted = ClientCache()  # new clients (they read the endpoint when made), the same memory
    restarted.memo = clients.memo
    monkeypatch.setattr(handler_module, "_CLIENTS", restarted)
    now[0] += health.LATCH_TTL_SECONDS + 1  # stale: region A tries region B, which hangs
    answer = invoke(load_event("get_health"))

    assert answer.status == 200
    latch = answer.body["checks"]["latch"]
    assert answer.body["active"] is False and latch["state"] == "active"  # the last value read stands
    assert latch["status"] == "degraded" and latch["last_known_seconds"] == health.LATCH_TTL_SECONDS + 1


def test_the_memory_expires_so_a_failover_reaches_region_a(
    clients: ClientCache, invoke: Invoke, set_latch: Callable[[str], None]
) -> None:
    now = [0.0]
    clients.memo["latch"] = health.LatchMemo(clock=lambda: now[0])
    set_latch("standby")
    assert invoke(load_event("get_health")).body["active"] is True
    set_latch("active")
    assert invoke(load_event("get_health")).body["active"] is True  # within the TTL: remembered
    now[0] += health.LATCH_TTL_SECONDS
    assert invoke(load_event("get_health")).body["active"] is False
