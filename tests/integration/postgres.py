"""A real PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` from Debian's ``postgresql`` package.

The server lives in a temporary directory, listens on a free port on 127.0.0.1 only (its Unix socket in the same
directory), requires a password (scram-sha-256, so the tests exercise the password path), and runs with
``fsync=off`` (the tests test relayd, not the disk). ``initdb`` refuses to run as root, so under root every
command runs as the ``postgres`` system user (created by the package) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

USER = "relayd"
PASSWORD = "pg-test-secret"  # a throwaway password of a throwaway server


def bin_dir() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``: Debian keeps them out of PATH, under /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, root: Path, bindir: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self._bin = bindir
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            os.chown(root, pwd.getpwnam("postgres").pw_uid, -1)

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/relayd"

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile), "-A", "scram-sha-256",
                  "-E", "UTF8", "--locale", "C")  # fmt: skip
        self.start()
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        subprocess.run([str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "relayd"],
                       check=True, env=env, capture_output=True)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "-t", "60",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run([*self._as, str(self._bin / program), *args], capture_output=True, text=True,
                                cwd=self.root, check=False)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr or result.stdout}")
