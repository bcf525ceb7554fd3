# gunicorn settings for the `web` process (sync workers: measured faster than ASGI for the
# API's sync DRF views, and one database connection per worker).
import os

bind = os.environ.get("QUAYMASTER_WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = int(os.environ.get("QUAYMASTER_WEB_TIMEOUT", "30"))
accesslog = "-" if os.environ.get("QUAYMASTER_WEB_ACCESS_LOG", "0") == "1" else None
# gunicorn's control socket defaults to one path per user, which two instances would share.
control_socket_disable = True
