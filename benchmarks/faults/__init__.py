"""The fault suite: ``python -m benchmarks.faults`` (see its ``__main__``)."""
