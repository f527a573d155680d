"""Forensics on a server's WAL: where each transaction's commit record is.

After a writer dies mid-write, its data directory still holds every commit it acknowledged
(:mod:`automation.postgres.server` explains why a process kill loses none). ``pg_waldump``
(https://www.postgresql.org/docs/18/pgwaldump.html) reads that WAL without the server running, and
gives each commit record's start position. A commit reached a standby if and only if the standby
replayed past that position, which turns "what was replicated" into arithmetic on LSNs.
"""

from __future__ import annotations

import re

from automation.postgres.exceptions import CommandFailed
from automation.postgres.server import PgServer
from automation.postgres.sql import format_lsn, parse_lsn

_COMMIT = re.compile(r"rmgr: Transaction\s.*?tx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*desc: COMMIT\b")
_TIMELINE = re.compile(r"^Latest checkpoint's TimeLineID:\s*(\d+)$", re.MULTILINE)
_END_OF_WAL = "pg_waldump: error: error in WAL record at"


def checkpoint_timeline(server: PgServer) -> int:
    """The timeline of ``server``'s latest checkpoint, from ``pg_controldata`` (server may be down).

    https://www.postgresql.org/docs/18/app-pgcontroldata.html
    """
    output = server.cluster.runner.run("pg_controldata", ["-D", str(server.data_dir)]).stdout
    match = _TIMELINE.search(output)
    if match is None:
        raise CommandFailed(["pg_controldata", "-D", str(server.data_dir)], 0, output)
    return int(match.group(1))


def commit_lsns(server: PgServer, start_lsn: int, timeline: int | None = None) -> dict[int, int]:
    """Transaction id -> start LSN of its commit record, for commits at or after ``start_lsn``.

    Reads ``server``'s own ``pg_wal`` to its end (the first invalid record: ``pg_waldump`` then
    exits 1 with "error in WAL record", which is the normal end here). ``timeline`` defaults to
    the latest checkpoint's.
    """
    tli = timeline if timeline is not None else checkpoint_timeline(server)
    result = server.cluster.runner.run(
        "pg_waldump",
        [
            "--path",
            str(server.data_dir / "pg_wal"),
            "--start",
            format_lsn(start_lsn),
            "--timeline",
            str(tli),
            "--rmgr",
            "Transaction",
        ],
        check=False,
    )
    if result.returncode != 0 and _END_OF_WAL not in result.stdout:
        raise CommandFailed(list(map(str, result.args)), result.returncode, result.stdout)
    return {int(xid): parse_lsn(lsn) for xid, lsn in _COMMIT.findall(result.stdout)}
