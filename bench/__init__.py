"""pg-audit benchmark suite: every variant in one run, reported as ratios.

Run from the repository root with ``bench/run`` (see docs/benchmarks.md).
"""
