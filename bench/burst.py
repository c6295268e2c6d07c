"""Send prepared HTTP requests all at once and time each answer, in a process of its own.

`python -m bench.burst` reads a JSON list of requests (host, port, base64 bytes) on stdin and
prints, for each, [status, seconds from connect to the answer's last byte, wall-clock start].

The benchmark's own process also runs FakeGenesys and FakeSlack, which serve the bot's
look-ups while the acknowledgements are being timed; a sender there would wait for that
process's GIL before it could even stamp an answer's arrival. Here nothing else runs, and the
requests are built and signed beforehand (bench/client.py), so the timed part is only connect,
send and read. Only the standard library is imported, to start quickly.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Prepared:
    """A complete HTTP request, ready to send."""

    host: str
    port: int
    data: bytes


@dataclass(frozen=True)
class Answer:
    """Status, time from the start of connect to the last byte of the answer, and when the
    connect started (time.time())."""

    status: int
    elapsed: float
    wall: float


def send(request: Prepared, timeout: float = 30.0) -> Answer:
    """Send a prepared request; time it up to the last byte of the answer's body."""
    wall = time.time()
    started = time.perf_counter()
    with socket.create_connection((request.host, request.port), timeout=timeout) as conn:
        conn.sendall(request.data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    elapsed = time.perf_counter() - started
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    return Answer(status, elapsed, wall)


def burst(requests: Sequence[Prepared]) -> list[Answer]:
    """Every request from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(requests))

    def release(request: Prepared) -> Answer:
        barrier.wait()
        return send(request)

    with ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="burst") as pool:
        return list(pool.map(release, requests))


def burst_in_subprocess(requests: Sequence[Prepared]) -> list[Answer]:
    """`burst` run by `python -m bench.burst` (see the module's docstring)."""
    import subprocess

    payload = json.dumps(
        [[r.host, r.port, base64.b64encode(r.data).decode("ascii")] for r in requests]
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.burst"],
        input=payload,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [Answer(int(s), float(e), float(w)) for s, e, w in json.loads(done.stdout)]


def main() -> int:
    """Read the requests on stdin, send them together, print the answers as JSON."""
    requests = [
        Prepared(host, int(port), base64.b64decode(data))
        for host, port, data in json.loads(sys.stdin.read())
    ]
    answers = burst(requests)
    print(json.dumps([[a.status, a.elapsed, a.wall] for a in answers]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
