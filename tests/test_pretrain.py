"""Continued pre-training on the CPU: embedding modes, the 4-bit gradient trap, exact resume after SIGKILL, export, bad inputs,
tying an untied base as Bailong did, bf16 autocast with float32 masters, and two processes (DDP over gloo) against one; the
last two read token shards."""
import functools, json, os, random, signal, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
import torch
from conftest import run_cli, cli, ROOT

TINY = dict(model='bailong:tiny-llama', block_size=32, micro_batch=4, steps=12, eval_every=6,
            save_every=0, lr=3e-3, embedding_lr=3e-3, warmup_steps=2, eval_texts=16)


@functools.cache
def zh_tokenizer() -> str:
    """SmolLM2's tokenizer extended by 300 pieces learned from the packaged sample, learned once for every run here
    (`extend_tokenizer` itself runs in the chapter and in the packaging test's pre-training example)."""
    from bailong.tokenizer import extend_tokenizer, save_extension, smollm2_gguf
    from bailong.data import sample_path
    return str(save_extension(extend_tokenizer(smollm2_gguf(), sample_path(), 300), Path(tempfile.mkdtemp())/'zh'))


@functools.cache
def sample_tokens() -> str:
    "The packaged sample, prepared and tokenized once with `zh_tokenizer()`: the resume and two-process runs read shards."
    from bailong.data import prepare, PrepareConfig, tokenize_corpus, TokenizeConfig, sample_path
    d = Path(tempfile.mkdtemp())
    prepare(PrepareConfig(inputs=[str(sample_path())]), d/'prep', progress=False)
    tokenize_corpus(TokenizeConfig(tokenizer=zh_tokenizer(), input=str(d/'prep'), out=str(d/'tokens')), progress=False)
    return str(d/'tokens')


def cfg_for(tmp_path, name, **kw):
    from bailong.pretrain import PretrainConfig
    from bailong.data import sample_path
    return PretrainConfig(**{**TINY, 'tokenizer': zh_tokenizer(), 'corpus': [str(sample_path())], 'out': str(tmp_path/name), **kw})


def untied_base(d: Path) -> str:
    "A tiny random Llama with separate input and output embeddings (as Llama 2), on SmolLM2's vocabulary, saved with that tokenizer."
    from bailong.train import TINY, tiny_llama
    from bailong.tokenizer import load_hf_tokenizer, smollm2_gguf
    smol = load_hf_tokenizer(smollm2_gguf())
    tiny_llama(len(smol), tied=False, **TINY).save_pretrained(d)
    smol.save_pretrained(d)
    return str(d)


def effective_embeddings(model, n):
    with torch.no_grad(): return model.get_input_embeddings()(torch.arange(n)).float().clone()


def reload(run):
    "The three documented lines: base, resize, adapter."
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained(f'{run}/base_model', quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.float32))
    base.resize_token_embeddings(len(AutoTokenizer.from_pretrained(f'{run}/tokenizer')), mean_resizing=False)
    model = PeftModel.from_pretrained(base, f'{run}/adapter')
    from bailong.train import keep_4bit_differentiable
    keep_4bit_differentiable(model)  # the CPU 4-bit kernel that training used
    return model


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    "`trained(mode)`: (config, summary) of one run per embedding mode, trained on first use and shared by the tests."
    from bailong.pretrain import pretrain
    root, done = tmp_path_factory.mktemp('modes'), {}
    def get(mode):
        if mode not in done:
            cfg = cfg_for(root, mode, embedding_mode=mode); done[mode] = (cfg, pretrain(cfg, progress=False))
        return done[mode]
    return get


@pytest.mark.parametrize('mode', ['new-rows', 'full', 'lora'])
def test_embedding_modes(trained, tmp_path, mode):
    from bailong.pretrain import load_docs
    from bailong.train import build_model
    cfg, summary = trained(mode)
    rows = [json.loads(l) for l in (Path(cfg.out)/'metrics.jsonl').read_text().splitlines()]
    losses = [r['loss'] for r in rows if 'loss' in r]
    assert sum(losses[-3:]) < sum(losses[:3]) and summary['bits_per_char_end'] < summary['bits_per_char_start']
    # the initial (zip-tie) rows, rebuilt the same way, vs the rows of the exported model
    _, initial, new_ids, _ = build_model(cfg, tmp_path, load_docs(cfg)[0])
    n_old, n = min(new_ids), max(new_ids) + 1
    before, after = effective_embeddings(initial, n), effective_embeddings(reload(cfg.out), n)
    if mode == 'new-rows': assert torch.equal(before[:n_old], after[:n_old])
    else: assert not torch.equal(before[:n_old], after[:n_old])
    assert not torch.equal(before[n_old:], after[n_old:])


def test_lora_gradients_survive_an_evaluation(tmp_path):
    "bitsandbytes on CPU repacks 4-bit weights after an eval-mode forward unless told not to; gradients must still flow."
    import bitsandbytes as bnb
    from bailong.pretrain import evaluate, load_docs
    from bailong.train import build_model
    cfg = cfg_for(tmp_path, 'grad')
    tok, model, _, _ = build_model(cfg, tmp_path, load_docs(cfg)[0])
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    evaluate(model, tok, ['使用說明功能表，可以啟動和控制說明系統。'] * 2)
    x = torch.tensor([tok.encode('開啟目前應用程式的說明主頁。')])
    model(input_ids=x, labels=x).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if 'lora_' in n}
    assert grads and all(g is not None for g in grads.values()), 'LoRA gradients were lost after the evaluation'
    assert all(g.abs().sum() > 0 for n, g in grads.items() if 'lora_B' in n)  # lora_A's are 0 while B is still 0


def _yaml(tmp_path, **kw):
    from bailong.data import sample_path
    body = {**TINY, 'tokenizer': zh_tokenizer(), 'corpus': [str(sample_path())], 'steps': 16, 'save_every': 3, 'eval_every': 8, **kw}
    p = tmp_path/'run.yaml'; p.write_text(json.dumps(body)); return p


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    config = _yaml(tmp_path, corpus=[sample_tokens()])  # blocks read from memory-mapped shards
    r = run_cli('train', 'pretrain', '--config', config, '--out', tmp_path/'a')
    assert r.returncode == 0, r.stderr
    proc = subprocess.Popen(['bailong', 'train', 'pretrain', '--config', str(config), '--out', str(tmp_path/'b')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at, metrics = random.Random().randint(4, 14), tmp_path/'b/metrics.jsonl'
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        done = [json.loads(l)['step'] for l in metrics.read_text().splitlines()] if metrics.exists() else []
        if done and max(done) >= kill_at: break
        time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed'
    os.kill(proc.pid, signal.SIGKILL); proc.wait()
    assert not (tmp_path/'b/summary.json').exists()
    r = run_cli('train', 'pretrain', '--resume', tmp_path/'b')
    assert r.returncode == 0, r.stderr
    load = lambda run: [json.loads(l) for l in (tmp_path/run/'metrics.jsonl').read_text().splitlines()]
    a, b = load('a'), load('b')
    assert [(x['step'], 'loss' in x) for x in a] == [(x['step'], 'loss' in x) for x in b], 'the logs cover different steps'
    for x, y in zip(a, b):
        key = 'loss' if 'loss' in x else 'eval_bits_per_char'
        assert abs(x[key] - y[key]) <= 1e-6, (kill_at, x, y)


def test_export_reloads_in_a_fresh_process(trained):
    cfg, summary = trained('new-rows')  # the default embedding mode
    script = f'''
import json, sys
sys.path.insert(0, {str(ROOT/'tests')!r})
from test_pretrain import reload
from bailong.pretrain import load_docs, PretrainConfig
from bailong.embeddings import bits_per_char
from transformers import AutoTokenizer
cfg = PretrainConfig(**json.load(open({str(Path(cfg.out)/'config.json')!r})))
model, tok = reload({cfg.out!r}), AutoTokenizer.from_pretrained({cfg.out + '/tokenizer'!r})
print(bits_per_char(model, tok, load_docs(cfg)[1]))
'''
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert abs(float(r.stdout.strip().splitlines()[-1]) - summary['bits_per_char_end']) < 1e-4



def test_bad_inputs(tmp_path):
    from bailong.train import tiny_llama
    tiny_llama(1000, num_hidden_layers=1).save_pretrained(tmp_path/'small')
    from bailong.tokenizer import smollm2_gguf
    (tmp_path/'tiny.txt').write_text('使用說明功能表\n說明\n')
    (tmp_path/'file').write_text('x')
    cases = {
        'unknown key': ({'learning_rate': 0.1}, "unknown key 'learning_rate'"),
        'vocab mismatch': ({'model': str(tmp_path/'small'), 'base_tokenizer': str(smollm2_gguf()),
                            'embedding_mode': 'full'}, 'vocabulary mismatch'),
        'block size': ({'block_size': 4096}, "above the model's maximum of 1024"),
        'corpus too small': ({'corpus': [str(tmp_path/'tiny.txt')], 'embedding_mode': 'full'}, 'fewer than one block'),
        'tying with frozen old rows': ({'model': untied_base(tmp_path/'untied'), 'tie_embeddings': True}, "embedding_mode='new-rows' keeps them frozen"),
        'distillation as a rule': ({'init': 'zip-tie-distill'}, 'bailong embeddings init --method zip-tie-distill'),
    }
    for name, (kw, message) in cases.items():
        d = tmp_path/name.replace(' ', '-'); d.mkdir()
        rc, err = cli('train', 'pretrain', '--config', _yaml(d, **kw), '--out', d/'out')  # in this process: no training starts
        assert rc == 2 and message in err, (name, err[-2000:])
        assert not (d/'out').exists(), (name, list((d/'out').rglob('*')))  # no partial output, nothing --resume could trust
    r = run_cli('train', 'pretrain', '--config', _yaml(tmp_path), '--out', tmp_path/'file'/'out')
    assert r.returncode == 2 and 'not writable' in r.stderr, r.stderr[-2000:]


def test_tying_an_untied_base(tmp_path):
    """`tie_embeddings` on an untied Llama, as Bailong did to Llama 2: the output layer is the input matrix from the first step,
    LoRA on embedding and head (the paper's mode) trains it once for both, and the merge stays tied and equal to base + adapter."""
    from transformers import AutoModelForCausalLM
    from bailong.embeddings import is_tied
    from bailong.pretrain import pretrain, load_docs
    from bailong.sft import merge
    from bailong.train import build_model
    cfg = cfg_for(tmp_path, 'tied', model=untied_base(tmp_path/'untied'), tie_embeddings=True, embedding_mode='lora')
    _, model, new_ids, _ = build_model(cfg, tmp_path, load_docs(cfg)[0])
    base = model.get_base_model()
    assert new_ids and is_tied(base) and base.config.tie_word_embeddings
    summary = pretrain(cfg, progress=False)
    assert summary['bits_per_char_end'] < summary['bits_per_char_start']
    report = merge(cfg.out, tmp_path/'merged', dtype='float32')
    assert report['tied'] and report['max_logit_diff'] < 1e-4, report
    m = AutoModelForCausalLM.from_pretrained(tmp_path/'merged')
    assert m.config.tie_word_embeddings and is_tied(m)
    assert m.get_input_embeddings().weight.shape[0] == max(new_ids) + 1
    plain = cfg_for(tmp_path, 'untied-run', model=cfg.model, embedding_mode='lora', steps=2, eval_every=0)
    pretrain(plain, progress=False)
    untied = merge(plain.out, tmp_path/'merged-untied', dtype='float32')
    assert not untied['tied'], untied  # without the setting an untied base stays untied


def test_bf16_compute_trains_float32_masters(tmp_path):
    "The GPU path (autocast bf16, float32 trained parameters, chunked loss, checkpointing) also runs on the CPU."
    from bailong.pretrain import pretrain
    cfg = cfg_for(tmp_path, 'bf16', compute_dtype='bfloat16', embedding_mode='full', loss_chunk=40, gradient_checkpointing=True)
    summary = pretrain(cfg, progress=False)
    losses = [json.loads(l)['loss'] for l in (tmp_path/'bf16/metrics.jsonl').read_text().splitlines() if '"loss"' in l]
    assert sum(losses[-3:]) < sum(losses[:3]) and summary['bits_per_char_end'] < summary['bits_per_char_start']
    from safetensors.torch import load_file
    saved = load_file(tmp_path/'bf16/adapter/adapter_model.safetensors')
    trained = {k: v.dtype for k, v in saved.items() if 'original_module' not in k}  # the frozen originals stay bf16
    assert 'base_model.model.model.embed_tokens.modules_to_save.weight' in trained
    assert set(trained.values()) == {torch.float32}, 'the trained parameters were not kept in float32'


def test_two_processes_match_one(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a machine without GPUs: 2 CPU processes over gloo, micro-batch 2
    each, read the same blocks as one process with micro-batch 4; every logged loss agrees within 1e-5 (float sums in
    another order), and so do the held-out bits/char."""
    import shutil
    if not shutil.which('accelerate'): pytest.skip('accelerate is not installed')
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': ''}
    one = _yaml(tmp_path, corpus=[sample_tokens()], steps=6, save_every=0, eval_every=6, micro_batch=4, gradient_checkpointing=True,
                loss_chunk=40)  # both launches map the same token shards
    r = run_cli('train', 'pretrain', '--config', one, '--out', tmp_path/'one')
    assert r.returncode == 0, r.stderr[-3000:]
    two = tmp_path/'two.yaml'; two.write_text(one.read_text().replace('"micro_batch": 4', '"micro_batch": 2'))
    r = subprocess.run(['accelerate', 'launch', '--multi_gpu', '--num_processes', '2', '--main_process_port', '29517',
                        '-m', 'bailong.cli', 'train', 'pretrain', '--config', str(two), '--out', str(tmp_path/'two')],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    load = lambda run: [json.loads(l) for l in (tmp_path/run/'metrics.jsonl').read_text().splitlines()]
    a, b = load('one'), load('two')
    assert [x['step'] for x in a] == [x['step'] for x in b] and sum('loss' in x for x in a) == 6
    for x, y in zip(a, b):
        key = 'loss' if 'loss' in x else 'eval_bits_per_char'
        assert abs(x[key] - y[key]) <= 1e-5, (x, y)
    assert b[1]['tokens'] == a[1]['tokens']  # both read 4 blocks a step


def test_float16_loss_scaling(tmp_path, monkeypatch):
    """Colab's T4 path (float16 autocast, dynamic loss scaling, float32 masters) on the tiny example: the loss falls, every
    logged value is finite, and a step whose gradient overflows (injected at step 3) is skipped, counted in the metrics,
    and halves the scale."""
    import math
    from bailong import train as engine
    from bailong.pretrain import pretrain
    forward, calls = engine.LMLoss.forward, []
    def overflow_once(self, *a, **kw):
        calls.append(1)
        loss = forward(self, *a, **kw)
        return loss * 1e30 if len(calls) == 3 else loss  # finite in float32, infinite once its gradient reaches float16
    monkeypatch.setattr(engine.LMLoss, 'forward', overflow_once)
    cfg = cfg_for(tmp_path, 'fp16', compute_dtype='float16', embedding_mode='full', steps=10, eval_every=10)
    summary = pretrain(cfg, progress=False)
    rows = [json.loads(l) for l in (tmp_path/'fp16/metrics.jsonl').read_text().splitlines()]
    train = [r for r in rows if 'loss' in r]
    assert all(math.isfinite(v) for r in rows for v in r.values()), rows
    assert [r['skipped_steps'] for r in train] == [0, 0] + [1] * 8, train
    assert [r['loss_scale'] for r in train] == [65536.0] * 2 + [32768.0] * 8, train
    clean = [r['loss'] for r in train if r['step'] != 3]
    assert sum(clean[-3:]) < sum(clean[:3]) and summary['bits_per_char_end'] < summary['bits_per_char_start'], (clean, summary)
    with pytest.raises(Exception, match="loss scaling needs float32"):
        pretrain(cfg_for(tmp_path, 'bad', compute_dtype='float16', trainable_dtype='bfloat16'), progress=False)
    assert not (tmp_path/'bad').exists()
