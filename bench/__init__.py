"""Benchmarks (``python -m bench``, see docs/performance.md) and the chaos script."""
