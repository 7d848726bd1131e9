"""A real PostgreSQL server for a test: Debian's `postgresql` binaries (.ci/run installs them),
a cluster made by `initdb` in a temporary folder, listening on 127.0.0.1 only, trusted local
connections. PostgreSQL refuses to run as root, so under root the cluster belongs to the
`postgres` user the Debian package creates."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .net import free_port


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def available() -> bool:
    return _binary("initdb") is not None and _binary("pg_ctl") is not None


class PostgresServer:
    """A cluster in `folder`, started; `url` (database `postgres`, no password)."""

    def __init__(self, folder: Path) -> None:
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            self.run_as = ["runuser", "-u", "postgres", "--"]
            folder.mkdir(parents=True, exist_ok=True)
            user = pwd.getpwnam("postgres")
            os.chown(folder, user.pw_uid, user.pw_gid)
            for parent in folder.parents:  # pytest's temporary folders are 0700
                if parent in (Path("/tmp"), Path("/")):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o711)
        self.data, port = folder / "data", free_port()
        self.options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.log = folder / "postgres.log"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        initdb = [_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        subprocess.run([*self.run_as, *initdb], check=True, capture_output=True)
        self.start()

    def _pg_ctl(self, *args: str) -> None:
        command = [_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]
        subprocess.run([*self.run_as, *command], check=True, capture_output=True)

    def start(self) -> None:
        self._pg_ctl("-o", self.options, "-w", "start")

    def stop(self) -> None:
        """At once, as a crash or a lost network would: clients' connections break."""
        self._pg_ctl("-m", "immediate", "-w", "stop")


@contextmanager
def postgres_server(folder: Path) -> Iterator[PostgresServer]:
    """A running server in `folder`, stopped on exit."""
    server = PostgresServer(folder)
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped by the test
            server.stop()
