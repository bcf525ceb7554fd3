"""platform/step.py, one quiet step of `make install` / `make run`: a progress line, the
command's output kept in a log, and the end of it shown only when the command fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEP = ROOT / "platform" / "step.py"


def step(log: Path, label: str, *command: str, verbose: bool = False, tail: int | None = None):
    env = {k: v for k, v in os.environ.items() if k != "QUAYMASTER_VERBOSE"}
    if verbose:
        env["QUAYMASTER_VERBOSE"] = "1"
    options = ["--log", str(log)] + (["--tail", str(tail)] if tail else [])
    return subprocess.run(
        [sys.executable, str(STEP), *options, label, "--", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def shell(script: str) -> tuple[str, ...]:
    return (sys.executable, "-c", script)


def test_a_step_that_works_prints_one_line_and_keeps_its_output_in_the_log(tmp_path: Path):
    log = tmp_path / "log" / "setup.log"
    noisy = "import sys; print('Collecting x'); print('SetuptoolsDeprecation', file=sys.stderr)"

    done = step(log, "Installing dependencies…", *shell(noisy))

    assert done.returncode == 0
    assert done.stdout.startswith("Installing dependencies… done (")
    assert done.stdout.count("\n") == 1
    assert done.stderr == ""
    kept = log.read_text()
    assert "Installing dependencies…" in kept
    assert "Collecting x" in kept
    assert "SetuptoolsDeprecation" in kept


def test_a_step_that_fails_exits_with_its_status_and_shows_the_end_of_its_output(tmp_path: Path):
    log = tmp_path / "setup.log"
    failing = "import sys\nfor i in range(1, 61): print('line', i)\nsys.exit(3)"

    failed = step(log, "Migrating the database…", *shell(failing), tail=5)

    assert failed.returncode == 3
    assert "Migrating the database… failed (exit status 3" in failed.stdout
    shown = failed.stderr.splitlines()
    assert [line for line in shown if line.startswith("line ")] == [
        f"line {i}" for i in range(56, 61)
    ]
    assert f"The full output is in {log}." in failed.stderr
    assert "line 1\n" in log.read_text()


def test_each_step_adds_to_the_log_and_a_failure_shows_only_its_own_output(tmp_path: Path):
    log = tmp_path / "setup.log"
    step(log, "First…", *shell("print('from the first step')"))

    failed = step(log, "Second…", *shell("import sys; print('from the second step'); sys.exit(1)"))

    assert failed.returncode == 1
    assert "from the second step" in failed.stderr
    assert "from the first step" not in failed.stderr
    kept = log.read_text()
    assert kept.index("from the first step") < kept.index("from the second step")


def test_a_missing_program_fails_like_a_shell_would(tmp_path: Path):
    failed = step(tmp_path / "setup.log", "Creating the virtualenv…", "no-such-program-here")

    assert failed.returncode == 127
    assert "no-such-program-here: No such file or directory" in failed.stderr


def test_verbose_shows_the_output_as_it_comes_and_still_keeps_it(tmp_path: Path):
    log = tmp_path / "setup.log"

    done = step(log, "Loading demo data…", *shell("print('Demo tables created')"), verbose=True)

    assert done.returncode == 0
    assert "Demo tables created" in done.stdout
    assert "Demo tables created" in log.read_text()
