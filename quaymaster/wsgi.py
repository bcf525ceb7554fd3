"""WSGI entry point, served by gunicorn's sync workers (the ``web`` process)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")

application = get_wsgi_application()
