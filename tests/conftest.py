import os, subprocess, sys
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared():
    from bailong.data import shared_path
    return shared_path('README.md').parent


def run_cli(*args, cwd=None, timeout=600):
    "Run the installed `bailong` console script in a subprocess, as a user would."
    return subprocess.run(['bailong', *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)
