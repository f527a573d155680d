"""The network between a function and an RDS instance endpoint (automation/emulator/network.py).

A function configured as the program configures it (``DB_HOST`` the endpoint's DNS name, ``DB_PORT``
5432, ``DB_SSLMODE=require``) reaches the real server bearing the instance's name, over TLS, and
is refused in the clear (``rds.force_ssl``), on another port, or when the name does not resolve.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pg8000.exceptions
import pg8000.native
import pytest

from automation.emulator.network import (
    POSTGRES_PORT,
    RdsNetwork,
    instance_endpoint,
    parse_endpoint,
)
from automation.postgres import APP_USER, DATABASE, PgCluster, PgServer
from lambdas.api.config import DriverLedger, host_region, ledger_from_env
from lambdas.api.ledger import ssl_context

REGION = "us-east-1"
IDENTIFIER = "pilotlight-net-db"
ARN = f"arn:aws:rds:{REGION}:123456789012:db:{IDENTIFIER}"


@pytest.fixture(scope="module")
def server(pg_cluster: PgCluster) -> Iterator[PgServer]:
    writer = pg_cluster.new_writer(pg_cluster.unique_name("net"))
    try:
        yield writer
    finally:
        pg_cluster.discard(writer)


@pytest.fixture
def network(server: PgServer) -> Iterator[tuple[RdsNetwork, dict[str, Any]]]:
    """A network whose DNS knows one name (``names`` may be emptied to make it stop resolving)."""
    names: dict[str, Any] = {IDENTIFIER: (server.host, server.port, ARN)}
    emulator = SimpleNamespace(resolve_instance=lambda region, identifier: names.get(identifier) if region == REGION else None)  # fmt: skip
    net = RdsNetwork(emulator)  # type: ignore[arg-type]
    with net.installed():
        yield net, names


def connect(host: str, tls: bool, port: int = POSTGRES_PORT) -> pg8000.native.Connection:
    target = DriverLedger(host, port, DATABASE, "arn:secret", "require" if tls else "disable")
    return pg8000.native.Connection(
        APP_USER, host=host, port=port, database=DATABASE, ssl_context=ssl_context(target), timeout=5
    )


def test_an_endpoint_name_is_an_rds_name_in_its_region() -> None:
    """The name the function is given passes the handler's own same-region check."""
    name = instance_endpoint(IDENTIFIER, REGION)
    assert parse_endpoint(name) == (IDENTIFIER, REGION)
    assert host_region(name) == REGION
    assert parse_endpoint("127.0.0.1") is None


def test_the_endpoint_name_reaches_the_server_over_tls(network: tuple[RdsNetwork, dict[str, Any]]) -> None:
    net, _ = network
    con = connect(instance_endpoint(IDENTIFIER, REGION), tls=True)
    try:
        assert con.run("SELECT current_user, current_database()") == [[APP_USER, DATABASE]]
    finally:
        con.close()
    assert net.reached == [ARN]


def test_a_connection_in_the_clear_is_refused_as_rds_force_ssl_refuses_it(
    network: tuple[RdsNetwork, dict[str, Any]],
) -> None:
    """The server's FATAL comes first; pg8000 then finds the connection closed, as with a real server."""
    net, _ = network
    with pytest.raises(pg8000.exceptions.Error) as refused:
        connect(instance_endpoint(IDENTIFIER, REGION), tls=False)
    chain: list[BaseException] = []
    error: BaseException | None = refused.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    fatal = [e.args[0] for e in chain if isinstance(e, pg8000.exceptions.DatabaseError)]
    assert fatal and fatal[0]["C"] == "28000" and "SSL off" in fatal[0]["M"], chain
    assert net.refused_plaintext == 1


def test_a_name_that_does_not_resolve_or_another_port_connects_nowhere(
    network: tuple[RdsNetwork, dict[str, Any]],
) -> None:
    """A renamed or dark instance's name resolves to nothing; the instance listens on 5432 only."""
    net, names = network
    name = instance_endpoint(IDENTIFIER, REGION)
    with pytest.raises(pg8000.exceptions.InterfaceError):
        connect(name, tls=True, port=POSTGRES_PORT + 1)
    names.clear()
    with pytest.raises(pg8000.exceptions.InterfaceError) as unresolved:
        connect(name, tls=True)
    assert "Name or service not known" in str(unresolved.value.__cause__)
    assert net.reached == []


def verified_target(host: str, ca_file: str) -> DriverLedger:
    """The driver target the function parses from DB_SSLROOTCERT alone (verify-full by default)."""
    env = {
        "DB_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:db-AbCdEf",
        "DB_NAME": DATABASE,
        "DB_HOST": host,
        "DB_SSLROOTCERT": ca_file,
    }
    target = ledger_from_env(env, REGION)
    assert isinstance(target, DriverLedger) and target.sslmode == "verify-full", target
    return target


@pytest.mark.parametrize("identifier", [IDENTIFIER, "pilotlight-production-data-db-instance-generation-2"])
def test_verify_full_checks_the_endpoint_s_certificate_against_the_ca_file(
    network: tuple[RdsNetwork, dict[str, Any]], identifier: str
) -> None:
    """DB_SSLROOTCERT names the CA (AWS's global-bundle.pem in AWS, the emulator's CA here): the
    chain and the host name are verified, and the session reaches the server. A name longer than a
    certificate's CN may hold (64) is verified too."""
    net, names = network
    names[identifier] = names[IDENTIFIER]
    name = instance_endpoint(identifier, REGION)
    target = verified_target(name, net.ca_file)
    context = ssl_context(target)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    con = pg8000.native.Connection(
        APP_USER, host=name, port=POSTGRES_PORT, database=DATABASE, ssl_context=context, timeout=5
    )
    try:
        assert con.run("SELECT 1") == [[1]]
    finally:
        con.close()


def test_verify_full_refuses_a_server_whose_certificate_another_ca_issued(
    network: tuple[RdsNetwork, dict[str, Any]],
) -> None:
    """Whoever answers the endpoint's name without a certificate from the trusted CA gets no password."""
    name = instance_endpoint(IDENTIFIER, REGION)
    stranger = RdsNetwork(SimpleNamespace())  # type: ignore[arg-type]
    target = verified_target(name, stranger.ca_file)
    with pytest.raises((ssl.SSLCertVerificationError, pg8000.exceptions.InterfaceError)) as refused:
        pg8000.native.Connection(
            APP_USER,
            host=name,
            port=POSTGRES_PORT,
            database=DATABASE,
            ssl_context=ssl_context(target),
            timeout=5,
        )
    assert "certificate verify failed" in str(refused.value) or isinstance(
        refused.value.__cause__ or refused.value.__context__, ssl.SSLCertVerificationError
    ), refused.value
