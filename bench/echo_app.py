"""WSGI entry point of the echo peer: ``gunicorn bench.echo_app --config platform/gunicorn.conf.py``
(the same server, config and worker count as the publish API)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings_echo"

application = get_wsgi_application()
