"""The backend simulator in a process of its own.

Benchmarks and CLI tests run it apart from the code they measure or drive, so the two
share the machine's cores fairly instead of one event loop.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_simulator(
    instances: int, *, extra_args: Sequence[str] = (), ready_timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m bot.sim.backend``; return the process and its URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.sim.backend",
            "--port",
            str(port),
            "--instances",
            str(instances),
            *extra_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while True:
        try:
            httpx.get(url + "/_sim/state", timeout=2).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the backend simulator did not start") from None
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
