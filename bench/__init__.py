"""Benchmarks (``dmplan bench ...``): solver and worksheet-function timings, each beside a reference."""
