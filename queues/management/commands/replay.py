"""``manage.py replay --link ID [--filter JSON] [--ids 1,2,…] [--changed-from T]
[--changed-to T] --rate N [--preview | --background]``, ``--resume ID``, ``--cancel ID``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues.errors import QueueError
from queues.models.replay import Replay
from queues.replay import driver, service


class Command(BaseCommand):
    help = (
        "Replay a table link's records from their current version (as 'replay' events). Runs "
        "in the foreground until it ends (Ctrl-C leaves it to the scheduler's tick, which "
        "resumes it after the last chunk written); --background leaves it to the scheduler."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--link", type=int, help="The table link's id (the queues page).")
        parser.add_argument(
            "--filter", help='A query-language filter, e.g. \'{"status": "paid"}\'.'
        )
        parser.add_argument("--ids", help="Record ids, comma-separated.")
        parser.add_argument("--changed-from", help="Records changed at or after (ISO 8601).")
        parser.add_argument("--changed-to", help="Records changed before (ISO 8601).")
        parser.add_argument("--rate", type=int, default=100, help="Records a second (100).")
        parser.add_argument("--preview", action="store_true", help="Count; start nothing.")
        parser.add_argument("--background", action="store_true", help="Start; run elsewhere.")
        parser.add_argument("--resume", type=int, metavar="ID", help="Run a running replay.")
        parser.add_argument("--cancel", type=int, metavar="ID", help="Cancel a replay.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["cancel"] is not None:
                replay = service.cancel(options["cancel"])
                self.stdout.write(f"Cancelled replay {replay.pk}: {self._counts(replay)}.")
                return
            if options["resume"] is not None:
                self._run(service.get(options["resume"]))
                return
            if options["link"] is None:
                raise CommandError("Give --link ID (or --resume ID, --cancel ID).")
            selection = self._selection(options)
            if options["preview"]:
                seen = service.preview(options["link"], selection, options["rate"])
                self.stdout.write(
                    f"{seen.count:,} record(s) of {seen.link.table.slug} would be replayed to "
                    f"{seen.link.queue.name} (limit {seen.limit:,}), about "
                    f"{seen.seconds:,.0f} s at {seen.rate:,}/s."
                )
                return
            replay = service.start(options["link"], selection, options["rate"])
        except QueueError as error:
            raise CommandError(f"{error.code}: {error.message}") from None
        self.stdout.write(
            f"Started replay {replay.pk} ({replay.replay_id}): {replay.total:,} record(s) at "
            f"{replay.rate:,}/s."
        )
        if not options["background"]:
            self._run(replay)

    def _selection(self, options: dict[str, Any]) -> dict[str, Any]:
        selection: dict[str, Any] = {}
        if options["filter"]:
            try:
                selection["filter"] = json.loads(options["filter"])
            except json.JSONDecodeError as error:
                raise CommandError(f"--filter is not JSON: {error.msg}.") from None
        if options["ids"]:
            try:
                selection["ids"] = [int(part) for part in options["ids"].split(",") if part.strip()]
            except ValueError:
                raise CommandError("--ids takes whole numbers separated by commas.") from None
        for key in ("changed_from", "changed_to"):
            if options[key]:
                selection[key] = options[key]
        return selection

    def _run(self, replay: Replay) -> None:
        owner = driver.new_owner()
        shown = [0]

        def progress(now: Replay) -> None:
            if now.written - shown[0] >= max(1, now.total // 20) or now.ended:
                shown[0] = now.written
                self.stdout.write(f"  {self._counts(now)}")

        try:
            outcome = driver.run(replay.pk, owner, progress=progress)
        finally:
            driver.release(replay.pk, owner)
        replay.refresh_from_db()
        if outcome is driver.Outcome.BUSY and not replay.ended:
            raise CommandError(f"Replay {replay.pk} is being run by {replay.owner or 'another'}.")
        self.stdout.write(f"Replay {replay.pk} {replay.state}: {self._counts(replay)}.")

    @staticmethod
    def _counts(replay: Replay) -> str:
        return f"{replay.written:,} of {replay.total:,} written ({replay.percent}%)"
