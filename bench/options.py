"""What a bench run was asked for (``Options``), the engines it knows, and its one error."""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("database", "rabbitmq", "kafka", "sqs")


class BenchError(RuntimeError):
    """The bench cannot run (services missing, a process did not start)."""


@dataclass
class Options:
    """What the command line asked for. ``repeats``/``seconds`` override a scenario's sizes."""

    quick: bool = False
    engines: tuple[str, ...] = ENGINES
    repeats: int | None = None
    seconds: float | None = None

    def size(self, *, quick: tuple[int, float], full: tuple[int, float]) -> tuple[int, float]:
        """(repeats, seconds per measurement) for this run."""
        repeats, seconds = quick if self.quick else full
        return self.repeats or repeats, self.seconds or seconds
