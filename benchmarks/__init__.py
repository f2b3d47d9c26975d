"""Benchmarks of journeys on this machine: ``python -m benchmarks``."""
