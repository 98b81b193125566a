import os, subprocess, sys
from pathlib import Path
import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sp_base():
    "A real Llama-family SentencePiece model file: Llama 2's with $BAILONG_SHARED, else Mistral 7B's (mistral-common)."
    from bailong.data import sentencepiece_base
    return sentencepiece_base()


@pytest.fixture(scope="session")
def sample():
    "`sample_path`: the real data packaged with bailong."
    from bailong.data import sample_path
    return sample_path


def run_cli(*args, cwd=None, timeout=600):
    "Run the installed `bailong` console script in a subprocess, as a user would."
    return subprocess.run(['bailong', *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def cli(*args) -> tuple[int, str]:
    "bailong's entry point in this process, with what it printed to stderr: for bad inputs, which end before any work starts."
    import contextlib, io
    from bailong.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): rc = main([str(a) for a in args])
    return rc, err.getvalue()
