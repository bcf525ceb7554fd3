# The project's gunicorn config (platform/gunicorn.conf.py) plus a cProfile of every worker,
# dumped to $QUAYMASTER_BENCH_PROFILE_DIR/web-<pid>.pstats when the worker exits.
# Used by ``python -m bench.profile`` only.
import cProfile
import os
from pathlib import Path

_project = Path(__file__).resolve().parents[1] / "platform" / "gunicorn.conf.py"
exec(compile(_project.read_text(), str(_project), "exec"))

_profiler = None


def post_worker_init(worker):
    global _profiler
    _profiler = cProfile.Profile()
    _profiler.enable()


def worker_exit(server, worker):
    if _profiler is not None:
        _profiler.disable()
        folder = Path(os.environ["QUAYMASTER_BENCH_PROFILE_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        _profiler.dump_stats(str(folder / f"web-{os.getpid()}.pstats"))
