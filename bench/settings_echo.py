"""Settings for the bare echo peer: the project's settings (middleware, DRF defaults, database)
with only the URLconf swapped for ``bench.echo_urls``. No project code changes."""

from quaymaster.settings import *  # noqa: F403

ROOT_URLCONF = "bench.echo_urls"
