"""`python app.py` as a subprocess (HTTP mode, or Socket Mode), pointed at the simulators."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from sandbox.environment import simulated_environment
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_requests import SlackRequester
from sandbox.slack_simulator import FakeSlack

APP = Path(__file__).resolve().parents[1] / "app.py"
SIGNING_SECRET = "bench-signing-secret"  # noqa: S105 - the simulators' made-up secret
SUPERVISOR = "USUP1"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BotExited(RuntimeError):
    """The bot process ended while the benchmark still needed it."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> int:
    """The HTTP status of GET `url` (proxies ignored); OSError if it cannot connect."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def read_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (kB) from /proc/<pid>/status and Pss (kB) from smaps_rollup, if readable."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Pss":
                found["Pss"] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The child processes of `pid` (from /proc/<pid>/task/*/children, else a /proc scan)."""
    children: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    with contextlib.suppress(OSError):
        for task in task_dir.iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    if children:
        return sorted(set(children))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Field 4 of stat is the parent pid; the command name (field 2) may hold spaces.
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


class BotProcess:
    """The real bot, on a free port, against the given simulators.

    The environment is bare (PATH and locale only, HOME in the work folder) plus the
    simulators' (the SQLite database in the work folder), PORT and `extra_env`. With
    `socket_mode`, the bot connects to the Slack simulator over Socket Mode (`--socket`) and
    serves only /healthz on PORT; otherwise it serves HTTP (`--http`). Its output goes to
    `bot.log` in the work folder.
    """

    def __init__(
        self,
        genesys: FakeGenesys,
        slack: FakeSlack,
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        *,
        socket_mode: bool = False,
    ) -> None:
        self.workdir = workdir
        self.socket_mode = socket_mode
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requester = SlackRequester(f"{self.base_url}/slack/events", SIGNING_SECRET)
        self.log_path = workdir / "bot.log"
        keep = ("PATH", "LANG", "LC_ALL")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env["HOME"] = str(workdir)
        env["PYTHONUNBUFFERED"] = "1"
        self._env = env | simulated_environment(
            genesys,
            slack,
            signing_secret=SIGNING_SECRET,
            supervisors=SUPERVISOR,
            database_url=f"sqlite:///{workdir / 'drop_caller.db'}",
        )
        self._env["PORT"] = str(self.port)
        if socket_mode:
            self._env["SLACK_APP_TOKEN"] = slack.app_token
        self._env |= extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of `python app.py` (in HTTP mode, the server's parent)."""
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> float:
        """Start the process; returns `time.perf_counter()` taken just before it was spawned."""
        self._log = self.log_path.open("ab")  # a restart adds to the same log
        started = time.perf_counter()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(APP), "--socket" if self.socket_mode else "--http"],
            cwd=self.workdir,
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return started

    def is_running(self) -> bool:
        """Whether the process has been started and has not ended."""
        return self._process is not None and self._process.poll() is None

    def check_running(self) -> None:
        """Raise `BotExited` (with the end of its log) if the process has ended."""
        if self._process is not None and self._process.poll() is not None:
            raise BotExited(
                f"the bot exited with status {self._process.returncode}:\n{self.log_tail()}"
            )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Wait until GET /healthz answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            try:
                if http_get(f"{self.base_url}/healthz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise BotExited(f"/healthz was not 200 within {timeout:g} s:\n{self.log_tail()}")

    def worker_pid(self) -> int | None:
        """The HTTP server's worker process: the (one) child of its parent."""
        children = children_of(self.pid)
        return children[0] if children else None

    def stop(self) -> int | None:
        """SIGTERM, then wait (the bot finishes in-flight work); kill after 40 s."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the bot printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
