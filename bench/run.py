"""Benchmark drop-caller (issues 5, 13 and 14): the real bot (`python app.py`) against the
loopback simulators, with an injected Genesys latency on every request.

    python -m bench.run [--latency-ms 100] [--out bench-results/latest.json] [--quick]

The simulators run in this process; the bot runs as a subprocess. Everything reported is
measured during the run (bench/measure.py) and printed as a table (bench/report.py); the
method and the history of the figures are in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.botprocess import BotExited, BotProcess
from bench.measure import (
    UNLIMITED_ENV,
    BenchError,
    Driver,
    Plan,
    ack_cpu,
    acknowledgements,
    bare_server,
    calibrate,
    cold_start,
    drops_and_memory,
    flow_summary,
    ms,
    native_server,
    running,
    socket_mode,
    sustained,
    timed_flow,
)
from bench.report import table, targets
from sandbox.genesys_simulator import FakeGenesys
from sandbox.slack_simulator import FakeSlack

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    memory_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    return {
        "cpu": cpu or platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def revision() -> dict[str, Any]:
    """The commit measured, and whether the bot's code differed from it."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(  # noqa: S603 - fixed arguments
                ["git", *args],  # noqa: S607 - git from PATH
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except OSError:
            return ""

    changed = git("status", "--porcelain", "--", "app.py", "bot", "genesys")
    return {"commit": git("rev-parse", "--short", "HEAD"), "bot_code_changed": bool(changed)}


def measure(plan: Plan, logs: Path) -> dict[str, Any]:
    """Every measurement, as one JSON-able report; the bots' output is kept as `logs`.*.log."""
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_ms": ms(plan.latency),
        "quick": plan.quick,
        "machine": machine(),
        "revision": revision(),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="drop-caller-bench-") as tmp:
        try:
            _measure_in(Path(tmp), plan, report)
        finally:
            logs.parent.mkdir(parents=True, exist_ok=True)
            for phase in ("main", "socket", "sustained"):
                with contextlib.suppress(OSError):
                    shutil.copyfile(Path(tmp, phase, "bot.log"), f"{logs}.{phase}-bot.log")
    report["run_seconds"] = round(time.perf_counter() - began, 1)
    report["targets"] = targets(report)
    return report


def _measure_in(tmp: Path, plan: Plan, report: dict[str, Any]) -> None:
    workdir = tmp / "main"
    workdir.mkdir()
    report["calibration"] = calibrate()
    genesys = FakeGenesys()
    genesys.latency = plan.latency
    genesys.disconnect_delay = 0.0
    report["main_bot_env"] = UNLIMITED_ENV
    with (
        genesys,
        FakeSlack() as slack,
        running(BotProcess(genesys, slack, workdir, UNLIMITED_ENV)) as bot,
    ):
        first, tokens_before = len(genesys.requests), genesys.token_requests
        driver = Driver(genesys, slack, bot)
        report["cold_start"] = cold_start(driver)
        measured = drops_and_memory(driver, plan, plan.latency, first, tokens_before)
        samples = measured.pop("samples")
        multi = [
            timed_flow(driver, plan.latency, calls=3, click=False)
            for _ in range(plan.multi_samples)
        ]
        report["flows"] = {
            "command_to_card": flow_summary(
                samples, "card_ms", "card_floor_rounds", "card_waves", plan.latency
            ),
            "command_to_card_3_calls": flow_summary(
                multi, "card_ms", "card_floor_rounds", "card_waves", plan.latency
            ),
            "click_to_outcome": flow_summary(
                samples, "outcome_ms", "outcome_floor_rounds", "outcome_waves", plan.latency
            ),
            "samples": samples,
            "samples_3_calls": multi,
        }
        report |= measured
        report["acknowledgement"] = acknowledgements(driver, plan)
        report["bot_exit_status"] = bot.stop()
        # A serverless platform starts instances on a database that already exists: start
        # the same bot again on this one.
        report["cold_start_existing_db"] = cold_start(driver)
        bot.stop()
    bare_dir = tmp / "bare"
    bare_dir.mkdir()
    report["bare_server"] = bare_server(plan, bare_dir)
    report["native_server"] = native_server(plan, bare_dir)
    report["ack_cpu"] = ack_cpu()
    socket_dir = tmp / "socket"
    socket_dir.mkdir()
    report["socket_mode"] = socket_mode(plan, socket_dir)
    sustained_dir = tmp / "sustained"
    sustained_dir.mkdir()
    report["sustained"] = sustained(plan, sustained_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--latency-ms", type=float, default=100.0, help="Genesys latency per request"
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/latest.json"))
    parser.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be 0 or more")
    # This process holds the simulators: keep its long-lived heap out of the collector, so
    # that a full collection cannot stall them while they are answering the bot.
    gc.collect()
    gc.freeze()
    plan = Plan.make(args.latency_ms, args.quick)
    print(
        f"Benchmarking drop-caller ({'quick' if plan.quick else 'default'} plan, "
        f"{args.latency_ms:g} ms Genesys latency)...",
        file=sys.stderr,
    )
    logs = args.out.with_suffix("")
    try:
        report = measure(plan, logs)
    except (BenchError, BotExited) as exc:
        print(f"benchmark failed: {exc}\n(the bot's output: {logs}.*-bot.log)", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    print(f"(JSON: {args.out}; the bot's output: {logs}.main-bot.log, {logs}.sustained-bot.log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
