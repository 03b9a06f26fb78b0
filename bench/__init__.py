"""Benchmarks (``python -m bench``): each measures its baseline in the same run and prints the ratio."""
