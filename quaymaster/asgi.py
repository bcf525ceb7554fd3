"""ASGI entry point, served by uvicorn (the ``streams`` process) for server-sent events.

Long-lived streams run here so they never hold one of the API's gunicorn workers.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quaymaster.settings")

application = get_asgi_application()
