"""The alerts app's Celery tasks: beat sends ``alerts.evaluate`` every
``QUAYMASTER_ALERT_EVALUATE_SECONDS`` to the scheduler process (sent twice at once, by two beats
by mistake, only the holder of the evaluator lease evaluates: ``alerts.lease``), and
``alerts.prune`` with the other housekeeping tasks."""

from __future__ import annotations

from celery import shared_task

from alerts import evaluator, housekeeping


@shared_task(name="alerts.evaluate", ignore_result=True)
def evaluate() -> str:
    return str(evaluator.evaluate())


@shared_task(name="alerts.prune", ignore_result=True)
def prune() -> int:
    return housekeeping.prune()
