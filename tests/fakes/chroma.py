"""A real `chroma run` server on loopback, for tests of the store on a server and for
bench/scale.py."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .net import free_port


class ServerDidNotStart(RuntimeError):
    pass


@contextmanager
def chroma_server(data: Path) -> Iterator[tuple[int, int]]:
    """(port, pid) of a `chroma run` server on loopback keeping its data in `data`, stopped on
    exit. ServerDidNotStart when it does not answer within a minute."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    cmd = [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise ServerDidNotStart("the chroma server did not start") from None
            time.sleep(0.2)
    try:
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)
