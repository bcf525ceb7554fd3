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

# LOG_FORMAT=json: gunicorn's own lines (the master's too) are JSON like every process's
# (quaymaster/logs.py); an access line carries the request id the answer sent back.
if os.environ.get("LOG_FORMAT", "text").strip().lower() == "json":
    from quaymaster.logs import logging_config

    logconfig_dict = logging_config("json", os.environ.get("LOG_LEVEL", "INFO"))
    if accesslog is None:  # gunicorn logs access lines whenever logconfig_dict is set
        logconfig_dict["loggers"]["gunicorn.access"] = {"level": "WARNING", "propagate": False}
    access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'

# Prometheus metrics of every worker, merged at /metrics (multiprocess mode, see
# quaymaster/metrics.py): the directory must be in the environment before a worker imports
# prometheus_client. PROMETHEUS_MULTIPROC_DIR if given, else one per master under var/; emptied
# at start (an earlier start's values would be summed in), a dead worker's live gauges dropped.
_var = os.environ.get("QUAYMASTER_VAR_DIR") or os.path.join(os.path.dirname(__file__), "..", "var")
_own_metrics_dir = os.path.abspath(os.path.join(_var, "prometheus", f"web-{os.getpid()}"))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", _own_metrics_dir)


def on_starting(server):
    import glob
    import shutil

    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    # The directories of masters that were killed (no on_exit) go too.
    for other in glob.glob(os.path.join(os.path.dirname(_own_metrics_dir), "web-*")):
        pid = other.rpartition("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(other, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_exit(server):
    if os.environ["PROMETHEUS_MULTIPROC_DIR"] == _own_metrics_dir:
        import shutil

        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
