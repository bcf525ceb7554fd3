"""Quaymaster's benchmarks: ``python -m bench [--quick] [--scenario NAME ...]``.

Every figure is a ratio to a peer measured in the same run (see ``bench/harness.py``).
"""
