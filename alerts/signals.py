"""What the alerts app does when a queue pauses or resumes (``queues.pausing``'s signals):
the rules of kind ``queue_paused`` are measured at once, so the alert opens and notifies as
the queue pauses and resolves as an admin resumes it, without waiting for the evaluator."""

from __future__ import annotations

from typing import Any

from alerts.conditions.queues import QueuePaused
from alerts.evaluator import evaluate_kind


def queue_paused(sender: Any, **kwargs: Any) -> None:
    evaluate_kind(QueuePaused.key)


def queue_resumed(sender: Any, **kwargs: Any) -> None:
    evaluate_kind(QueuePaused.key)
