"""The `platform/` folder holds scripts; it must never shadow Python's `platform` module."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_platform_is_the_standard_library_module_inside_the_project():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import platform, uuid, botocore, celery; print(platform.__file__); "
            "print(platform.python_version())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, version = result.stdout.split()
    assert Path(module_file).parent == Path(sysconfig.get_paths()["stdlib"])
    assert version == ".".join(map(str, sys.version_info[:3]))
    assert not (ROOT / "platform" / "__init__.py").exists()
