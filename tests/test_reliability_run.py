"""Reliability of runs (tests/test_reliability.py holds the file contract): checkpoints that cannot run code, numbers checked where the config is, the API key kept out of every
message, one top-level error handler (one line, exit 2; tracebacks only with --debug), Ctrl-C during training, and the
Colab cells pinned to this release. Bad inputs run in this process (`cli`); the training and key probes are real runs:
a subprocess CLI on the tiny example config, and an HTTP server on 127.0.0.1 that echoes the key."""
import contextlib, json, os, pickle, random, shutil, signal, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import cli, run_cli, ROOT

# ---------------------------------------------------------------- item 4: every number checked, per field

BAD_NUMBERS = [  # (command line without the bad option, the bad option, the field the one-line error must name)
    *[(['train', 'pretrain', '--set', 'corpus=[x.txt]'], ['--set', f'{k}={v}'], k) for k, v in [
        ('lr', -1), ('embedding_lr', 0), ('warmup_steps', -1), ('eval_every', -1), ('save_every', -1), ('log_every', 0),
        ('lora_alpha', 0), ('lora_alpha', -16), ('lora_dropout', 5), ('lora_dropout', 1), ('lora_r', 0), ('weight_decay', -0.1),
        ('max_grad_norm', 0), ('steps', 0), ('micro_batch', 0), ('grad_accum', 0), ('block_size', 0), ('loss_chunk', -1),
        ('extend_tokenizer', -1), ('seed', -1), ('valid_frac', 1), ('eval_texts', -1), ('lr', '.nan')]],
    (['train', 'sft', '--set', 'data=[x.jsonl]'], ['--set', 'eval_conversations=-1'], 'eval_conversations'),
    *[(['data', 'prepare', '--input', 'x.txt', '--out', 'o'], [opt, v], k) for opt, v, k in [
        ('--min-chars', '-5', 'min_chars'), ('--workers', '0', 'workers'), ('--tasks', '-1', 'tasks'),
        ('--valid-frac', '1', 'valid_frac'), ('--near-dup-threshold', '0', 'near_dup_threshold'), ('--seed', '-1', 'seed')]],
    *[(['data', 'tokenize', '--tokenizer', 't', '--input', 'x.txt', '--out', 'o'], [opt, v], k) for opt, v, k in [
        ('--batch-size', '0', 'batch_size'), ('--workers', '0', 'workers'), ('--valid-texts', '-1', 'valid_texts')]],
    (['tokenizer', 'extend', '--base', 'b', '--corpus', 'x.txt', '--out', 'o', '--add', '10'], ['--threads', '0'], 'threads'),
    (['tokenizer', 'extend', '--base', 'b', '--corpus', 'x.txt', '--out', 'o'], ['--add', '0'], 'n_new'),
    *[(['embeddings', 'compare', '--model', 'm', '--base-tokenizer', 'b', '--tokenizer', 't', '--out', 'o', '--text', 'x.txt'],
       [opt, v], k) for opt, v, k in [('--steps', '-5', 'steps'), ('--eval-texts', '0', 'eval_texts'), ('--lr', '0', 'lr'),
                                      ('--batch-size', '0', 'batch_size'), ('--distill-steps', '0', 'distill_steps')]],
    *[(['embeddings', 'init', '--model', 'm', '--base-tokenizer', 'b', '--tokenizer', 't', '--out', 'o'], [opt, v], k)
      for opt, v, k in [('--distill-steps', '0', 'distill_steps'), ('--distill-lr', '-1', 'distill_lr')]],
    (['chat', '--model', 'm'], ['--max-new-tokens', '0'], '--max-new-tokens'),
    *[(['bench', 'judge', '--answers', 'a.jsonl'], [opt, v], k) for opt, v, k in [
        ('--limit', '-1', 'limit'), ('--limit', '0', 'limit'), ('--concurrency', '0', 'concurrency')]],
    *[(['bench', 'answer', '--model', 'm'], [opt, v], k) for opt, v, k in [
        ('--limit', '-1', 'limit'), ('--batch-size', '0', 'batch_size'), ('--max-new-tokens', '0', 'max_new_tokens')]],
    (['bench', 'mc', '--model', 'm'], ['--batch-size', '0'], 'batch_size'),
]


@pytest.mark.parametrize('args,bad,name', BAD_NUMBERS, ids=[f"{a[0]}-{a[1]}-{' '.join(b)}" for a, b, _ in BAD_NUMBERS])
def test_nonsense_numbers_are_refused_naming_the_field(tmp_path, monkeypatch, args, bad, name):
    monkeypatch.chdir(tmp_path)  # nothing is read or written: the check comes first
    rc, err = cli(*args, *bad)
    assert rc == 2 and name in err and err.count('\n') == 1 and 'Traceback' not in err, err
    assert not any(tmp_path.iterdir())


def test_set_lr_minus_one_exits_2_naming_lr():
    rc, err = cli('train', 'pretrain', '--set', 'lr=-1', '--set', 'corpus=[x.txt]')
    assert rc == 2 and err.startswith('bailong: error: lr=') and 'above 0' in err, err

# ---------------------------------------------------------------- item 7: one top-level error handler


def _fake_run(d: Path, finished=False) -> Path:
    "A directory laid out as `bailong train` leaves it (the adapter, the run's config.json, metrics)."
    (d/'adapter').mkdir(parents=True); (d/'config.json').write_text('{"lr": 0.001}'); (d/'metrics.jsonl').write_text('')
    if finished: (d/'summary.json').write_text('{}')
    return d


@pytest.mark.parametrize('args', [['chat', '--model'], ['bench', 'mc', '--model'], ['bench', 'answer', '--model']])
def test_training_run_where_a_model_is_expected(tmp_path, args):
    run = _fake_run(tmp_path/'run')
    rc, err = cli(*args, run)
    assert rc == 2 and f'this is a training run; merge it first: bailong merge {run} --out DIR' in err, err
    assert err.count('\n') == 1


@pytest.mark.parametrize('args', [['chat', '--model', '{p}'], ['bench', 'mc', '--model', '{p}'],
                                  ['tokenizer', 'stats', '--tokenizer', '{p}', '--text', 'x.txt'],
                                  ['embeddings', 'init', '--model', 'm', '--base-tokenizer', '{p}', '--tokenizer', 't', '--out', 'o']])
def test_missing_model_path_is_named_before_the_hub_is_asked(tmp_path, args):
    p = str(tmp_path/'no'/'such-model')
    rc, err = cli(*[a.format(p=p) for a in args])
    assert rc == 2 and f'{p}: not found (no such file or directory)' in err and 'Repo id' not in err, err


def test_missing_model_in_a_train_config_is_named(tmp_path):
    rc, err = cli('train', 'pretrain', '--set', 'corpus=[x.txt]', '--set', f'model={tmp_path}/no/model')
    assert rc == 2 and f"model='{tmp_path}/no/model': not found (no such file or directory)" in err, err


def test_oserror_is_one_line_naming_the_path(tmp_path):
    (tmp_path/'adir').mkdir()
    rc, err = cli('train', 'pretrain', '--config', tmp_path/'adir')
    assert rc == 2 and err == f'bailong: error: {tmp_path/"adir"}: Is a directory\n', err


def test_train_out_an_existing_file(tmp_path):
    (tmp_path/'note.txt').write_text('keep me')
    rc, err = cli('train', 'pretrain', '--set', 'corpus=[x.txt]', '--out', tmp_path/'note.txt')
    assert rc == 2 and 'note.txt: an existing file' in err and err.count('\n') == 1, err
    assert (tmp_path/'note.txt').read_text() == 'keep me'


def test_tracebacks_only_with_debug(tmp_path, monkeypatch):
    from bailong.cli import main
    from bailong.data import DataError
    bad = ['chat', '--model', 'm', '--max-new-tokens', '0']
    with pytest.raises(DataError): main(['--debug', *bad])
    with pytest.raises(DataError): main([*bad, '--debug'])  # anywhere in the line
    monkeypatch.setenv('BAILONG_DEBUG', '1')
    with pytest.raises(DataError): main(bad)
    monkeypatch.delenv('BAILONG_DEBUG')
    assert cli(*bad)[0] == 2


def test_unexpected_errors_are_one_line_too(monkeypatch):
    import bailong.cli
    def boom(args): raise RuntimeError('something broke')
    monkeypatch.setattr(bailong.cli, 'cmd_chat', boom)
    rc, err = cli('chat', '--model', 'm')
    assert rc == 1 and err == 'bailong: error: RuntimeError: something broke (run again with --debug for the traceback)\n', err


def test_hints_name_options_that_exist(tmp_path):
    from bailong.data import DataError, read_corpus
    from bailong.sft import read_conversations
    (tmp_path/'bad.txt').write_bytes(b'ok\n\xff\xfe broken\n')
    with pytest.raises(DataError) as e: read_corpus(tmp_path/'bad.txt')
    assert 'bailong data prepare --errors skip' in str(e.value) and "pass errors='skip'" not in str(e.value)
    (tmp_path/'bad.jsonl').write_text(json.dumps({'messages': [{'role': 'user', 'content': 'hi'}]}) + '\n')
    with pytest.raises(DataError) as e: read_conversations(tmp_path/'bad.jsonl')
    assert '--set skip_bad=true' in str(e.value) and '--skip-bad' not in str(e.value)

# ---------------------------------------------------------------- item 3: checkpoints load with weights_only=True


def test_rng_states_round_trip_through_weights_only(tmp_path):
    from bailong.train import _rng_state, _set_rng_state
    random.seed(1); np.random.seed(2); torch.manual_seed(3); np.random.normal()  # numpy with a cached gaussian
    torch.save({'rng': _rng_state()}, tmp_path/'t.pt')
    draw = lambda: (random.random(), np.random.normal(), torch.rand(3).tolist())
    expected = draw()
    _set_rng_state(torch.load(tmp_path/'t.pt', weights_only=True)['rng'])
    assert draw() == expected


class Payload:
    "What a planted trainer.pt carries: unpickling it (weights_only=False) would create the marker file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))

# ---------------------------------------------------------------- Ctrl-C during training (item 8), then item 3 on its run

TINY_EXAMPLE = ['--config', ROOT/'examples'/'pretrain_tiny_cpu.yaml', '--set', 'steps=400', '--set', 'eval_every=0',
                '--set', 'save_every=0', '--set', 'extend_tokenizer=0', '--set', 'embedding_mode=frozen']  # fast: no pieces


def test_ctrl_c_saves_a_checkpoint_and_prints_resume_then_a_planted_checkpoint_is_refused(tmp_path):
    run = tmp_path/'run'
    proc = subprocess.Popen(['bailong', 'train', 'pretrain', *map(str, TINY_EXAMPLE), '--out', str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = run/'metrics.jsonl', time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3: break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert 'Traceback' not in err and 'KeyboardInterrupt' not in err, err
    assert f'continue with: bailong train pretrain --resume {run}' in err, err
    step = max(json.loads(l)['step'] for l in metrics.read_text().splitlines())
    ckpt = run/'checkpoints'/f'step-{step:06d}'  # the step the run had reached, saved whole
    assert ckpt.is_dir(), sorted(p.name for p in (run/'checkpoints').iterdir())
    blob = torch.load(ckpt/'trainer.pt', weights_only=True)
    assert blob['state']['step'] == step

    # a colleague's copy of the run whose trainer.pt carries a pickle payload: refused, not executed
    planted, marker = tmp_path/'planted', tmp_path/'PWNED'
    shutil.copytree(run, planted)
    torch.save({'optimizer': {}, 'scheduler': {}, 'rng': Payload(marker), 'state': {'step': step}},
               planted/'checkpoints'/ckpt.name/'trainer.pt')
    rc, err2 = cli('train', 'pretrain', '--resume', planted)
    last = err2.strip().splitlines()[-1]  # after the model's loading bars
    assert rc == 2 and last.startswith('bailong: error: ') and 'refused to load' in last and 'system' in last, err2
    assert not marker.exists(), 'the planted payload ran'

    # the interrupted run resumes from its checkpoint to the end
    rc, err3 = cli('train', 'pretrain', '--resume', run, '--set', f'steps={step + 2}')
    assert rc == 0, err3
    steps = [json.loads(l)['step'] for l in metrics.read_text().splitlines() if 'loss' in l]
    assert steps == list(range(1, step + 3)) and (run/'summary.json').exists()

# ---------------------------------------------------------------- item 6: the API key never leaves


KEY = 'sk-test-' + 'Zq7XbN2pL9mW4vR8'


class KeyEchoServer:
    "An OpenAI-compatible endpoint on 127.0.0.1 that rejects every request with 401, echoing the key it received."
    def __init__(self, form: str): self.form = form

    def __enter__(self):
        form = self.form

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def do_POST(self):
                self.rfile.read(int(self.headers.get('Content-Length', 0)))
                auth = self.headers.get('Authorization', '')  # 'Bearer sk-...'
                key = auth.removeprefix('Bearer ')
                if form == 'json':
                    body = json.dumps({'error': {'message': f'bad credentials {auth}; Incorrect API key provided: {key}.',
                                                 'type': 'invalid_request_error', 'code': 'invalid_api_key', 'key': key,
                                                 'api_key': key, 'echo': f'key={key}'}}).encode()
                    ctype = 'application/json'
                else: body, ctype = f'401 Unauthorized: {key} is not a valid key ({auth})'.encode(), 'text/plain'
                self.send_response(401); self.send_header('Content-Type', ctype)
                self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f'http://127.0.0.1:{self._server.server_address[1]}/v1'

    def __exit__(self, *exc): self._server.shutdown(); self._server.server_close()


def _bench_files(d: Path):
    q = d/'questions.jsonl'
    q.write_text(json.dumps({'question_id': 1, 'category': 'writing', 'turns': ['Write two sentences about the sea.']}) + '\n')
    a = d/'writer.jsonl'
    a.write_text(json.dumps({'question_id': 1, 'answer_id': 'a1', 'model_id': 'writer', 'tstamp': 0,
                             'choices': [{'index': 0, 'turns': ['The sea is wide. Its tides follow the moon.']}]}) + '\n')
    return q, a


@pytest.mark.parametrize('command', ['answer', 'judge'])
@pytest.mark.parametrize('form', ['json', 'plain'])
def test_api_key_never_appears_in_output_or_files(tmp_path, command, form):
    q, a = _bench_files(tmp_path)
    with KeyEchoServer(form) as url:
        if command == 'answer':
            args = ['bench', 'answer', '--backend', 'openai', '--model', 'served', '--questions', q, '--out', tmp_path/'out.jsonl']
        else: args = ['bench', 'judge', '--answers', a, '--questions', q, '--model', 'judge', '--out', tmp_path/'j.jsonl']
        r = subprocess.run(['bailong', *map(str, args), '--base-url', url, '--api-key-env', 'BAILONG_TEST_KEY'],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env={**os.environ, 'BAILONG_TEST_KEY': KEY})
    assert r.returncode != 0 and '401' in r.stderr, r.stderr  # the error itself is reported...
    secret_parts = (KEY, KEY[8:])  # ...without the key, or the part of it after a known prefix
    for text in (r.stdout, r.stderr, *(p.read_text(errors='replace') for p in tmp_path.rglob('*') if p.is_file())):
        assert not any(s in text for s in secret_parts), text
    assert 'Traceback' not in r.stderr, r.stderr


def test_redact_hides_every_form():
    from bailong.bench import redact
    text = redact(f'Bearer {KEY} | {{"api_key": "{KEY}"}} | plain {KEY} | API key provided: sk-ab***xyz.', KEY)
    assert KEY not in text and 'sk-ab***xyz' not in text and text.count('[hidden]') == 4, text

# ---------------------------------------------------------------- item 9: Colab installs what the notebook was written for


def test_colab_cells_are_pinned_to_this_release():
    r = subprocess.run([sys.executable, ROOT/'scripts'/'colab_pin.py', '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    release = (ROOT/'.github'/'workflows'/'release.yaml').read_text()
    assert "tags: [\"v*\"]" in release and 'id-token: write' in release and 'pypa/gh-action-pypi-publish' in release
    readme = (ROOT/'README.md').read_text(encoding='utf-8')
    assert 'How the PyPI name is claimed' in readme and 'release.yaml' in readme
