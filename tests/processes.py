"""`python app.py` as real processes: start several against the fakes, stop them gracefully."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from sandbox.slack_requests import SlackRequester
from tests.harness import SIGNING_SECRET

APP = Path(__file__).resolve().parents[1] / "app.py"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The Genesys SDK alone takes about two seconds to import; a loaded machine needs more.
STARTUP_TIMEOUT = 45.0
STOP_TIMEOUT = 35.0


def base_env(home: Path) -> dict[str, str]:
    """A bare environment: no Slack, Genesys or database variables leak in from the shell."""
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET `url` without proxies: (status, body), HTTP errors included."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def run_app(
    cwd: Path, env: Mapping[str, str], *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `python app.py *args` to completion and capture its output."""
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(APP), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class BotProcess:
    """One `python app.py --http` process (granian) on its own port, output in a log file."""

    def __init__(self, name: str, env: Mapping[str, str], cwd: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requester = SlackRequester(f"{self.base_url}/slack/events", SIGNING_SECRET)
        self.log_path = cwd / f"{name}-{self.port}.log"
        self._terminated = False
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, str(APP), "--http"],
            cwd=cwd,
            env={**env, "PORT": str(self.port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        """Everything the process has written so far (it writes to the file directly)."""
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Return once /healthz answers 200; AssertionError (with the log) otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} before serving:\n"
                    f"{self.output()}"
                )
            try:
                if http_get(f"{self.base_url}/healthz", timeout=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.name} not healthy within {timeout}s:\n{self.output()}")

    def terminate(self) -> None:
        """Send SIGTERM once (a second one could cut a graceful shutdown short)."""
        if not self._terminated and self.process.poll() is None:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait up to `timeout` seconds, then SIGKILL; the exit code."""
        self.terminate()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


@contextmanager
def bot_processes(
    envs: Sequence[Mapping[str, str]], cwd: Path, *, names: Sequence[str] | None = None
) -> Iterator[list[BotProcess]]:
    """Start one `python app.py --http` per environment, all at once; wait until each is
    healthy; stop them all (SIGTERM, then SIGKILL after a timeout) on the way out.
    """
    labels = list(names) if names is not None else [f"bot{i}" for i in range(len(envs))]
    started: list[BotProcess] = []
    try:
        for label, env in zip(labels, envs, strict=True):
            started.append(BotProcess(label, env, cwd))
        for bot in started:
            bot.wait_healthy()
        yield started
    finally:
        for bot in started:
            bot.terminate()
        for bot in started:
            bot.stop()


@contextmanager
def bot_process(env: Mapping[str, str], cwd: Path, *, name: str = "bot") -> Iterator[BotProcess]:
    """One `python app.py --http`, healthy on entry and stopped on exit."""
    with bot_processes([env], cwd, names=[name]) as (bot,):
        yield bot
