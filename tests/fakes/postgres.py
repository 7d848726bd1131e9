"""A real PostgreSQL server for a test: Debian's `postgresql` binaries (.ci/run installs them),
a cluster made by `initdb` in a temporary folder, listening on 127.0.0.1 only, trusted local
connections. PostgreSQL refuses to run as root, so under root the cluster belongs to the
`postgres` user the Debian package creates."""

from __future__ import annotations

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


@contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A running server in `folder`; yields its URL (database `postgres`, no password)."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        folder.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o755)  # the postgres user must reach it
        for parent in folder.parents:  # pytest's temporary folders are 0700
            if parent == Path("/tmp") or parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    data, port = folder / "data", free_port()
    subprocess.run(
        [*run_as, _binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = folder / "postgres.log"
    subprocess.run(
        [*run_as, _binary("pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
