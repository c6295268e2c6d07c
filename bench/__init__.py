"""Benchmark of drop-caller (issue 5): the real bot in HTTP mode against the loopback fakes.

Run it from the project root with `python -m bench.run`; see `bench/run.py`.
"""
