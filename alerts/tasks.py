"""The alerts app's Celery task: beat sends ``alerts.evaluate`` every
``QUAYMASTER_ALERT_EVALUATE_SECONDS`` to the scheduler process. Sent twice at once (two beats
by mistake), only the holder of the evaluator lease evaluates (``alerts.lease``)."""

from __future__ import annotations

from celery import shared_task

from alerts import evaluator


@shared_task(name="alerts.evaluate", ignore_result=True)
def evaluate() -> str:
    return str(evaluator.evaluate())
