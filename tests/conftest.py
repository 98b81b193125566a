import os, subprocess
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


@pytest.fixture(scope="session")
def smollm2_hf(tmp_path_factory):
    "SmolLM2-135M-Instruct as a Hugging Face directory, made once from the packaged GGUF: it loads in a second, and serves."
    from bailong.embeddings import load_model, save_model
    from bailong.tokenizer import smollm2_gguf, load_hf_tokenizer
    return save_model(load_model(smollm2_gguf()), load_hf_tokenizer(smollm2_gguf()), tmp_path_factory.mktemp('smollm2')/'smollm2',
                      info={'from': smollm2_gguf().name})


@pytest.fixture(scope="session")
def served_smollm2(smollm2_hf):
    "(base URL, model name) of a real OpenAI-compatible server on 127.0.0.1: `transformers serve` with SmolLM2, one per session."
    from bailong.judge import serve
    with serve(smollm2_hf) as url: yield url, str(smollm2_hf)
