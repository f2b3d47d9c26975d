"""The worker process: ``python -m workers`` or ``journeys worker``."""

from workers.worker import build_workers, run_worker, running_worker, workflow_runner

__all__ = ["build_workers", "run_worker", "running_worker", "workflow_runner"]
