"""SFT on the CPU, end to end: the tiny example trains with the answer loss falling, resumes exactly after SIGKILL,
takes another conversation file with `--set data=`; `bailong merge` writes a standalone model that plain
transformers loads in a fresh process (assistant mask, generation, logits equal to the unmerged model's); `bailong chat`;
TensorBoard and Trackio sinks; bad inputs end with one clear error and no partial output."""
import importlib.util, json, os, random, re, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import run_cli, cli, ROOT

EXAMPLE = ROOT/'examples'/'sft_tiny_cpu.yaml'
SHORT = ['--set', 'steps=16', '--set', 'save_every=4', '--set', 'eval_every=8']


def metrics(run): return [json.loads(l) for l in (Path(run)/'metrics.jsonl').read_text().splitlines()]
def losses(run): return [r['loss'] for r in metrics(run) if 'loss' in r]


@pytest.fixture(scope='module')
def sft_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('sft')/'run'
    r = run_cli('train', 'sft', '--config', EXAMPLE, *SHORT, '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_tiny_example_learns_the_answers(sft_run):
    l, summary = losses(sft_run), json.loads((sft_run/'summary.json').read_text())
    assert len(l) == 16 and sum(l[-4:]) < sum(l[:4]) - 1.0, l
    assert summary['answer_loss_end'] < summary['answer_loss_start'], summary
    assert summary['conversations']['skipped'] == 0 and summary['encoding']['dropped'] == 0, summary
    assert 0 <= summary['padding_share'] < 0.2, summary  # packed rows are mostly conversation
    assert re.search(r'\{%-?\s*generation\s*-?%\}', (sft_run/'tokenizer'/'chat_template.jinja').read_text())  # answers marked


def test_resume_after_sigkill_matches_uninterrupted_run(sft_run, tmp_path):
    out = tmp_path/'b'
    proc = subprocess.Popen(['bailong', 'train', 'sft', '--config', str(EXAMPLE), *SHORT, '--out', str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at, deadline = random.Random().randint(5, 14), time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        done = [r['step'] for r in metrics(out)] if (out/'metrics.jsonl').exists() else []
        if done and max(done) >= kill_at: break
        time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed'
    os.kill(proc.pid, signal.SIGKILL); proc.wait()
    assert not (out/'summary.json').exists()
    r = run_cli('train', 'sft', '--resume', out)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = metrics(sft_run), metrics(out)
    assert [(x['step'], sorted(x)) for x in a] == [(x['step'], sorted(x)) for x in b], 'the logs cover different steps'
    for x, y in zip(a, b):
        key = 'loss' if 'loss' in x else 'eval_answer_loss'
        assert abs(x[key] - y[key]) <= 1e-6, (kill_at, x, y)


def test_set_data_trains_on_another_conversation_file(tmp_path):
    "Two-turn zh-TW/English conversations with long answers, in OpenAI `messages` format, from the packaged pairs."
    from bailong.data import sample_path
    pairs = [json.loads(l) for l in sample_path('en_zh_tw_sample.jsonl').read_text(encoding='utf-8').splitlines()]
    en_key, zh_key = [k for k in pairs[0] if k.startswith('en')][0], [k for k in pairs[0] if k.startswith('zh')][0]
    with open(tmp_path/'chats.jsonl', 'w', encoding='utf-8') as f:
        for i in range(0, 600, 3):
            group = pairs[i:i + 3]
            msgs = [{'role': 'user', 'content': '請把下面三段說明翻譯成臺灣正體中文：\n' + '\n'.join(p[en_key] for p in group)},
                    {'role': 'assistant', 'content': '\n'.join(p[zh_key] for p in group)},
                    {'role': 'user', 'content': 'Thanks. Now give me the English again, as one paragraph.'},
                    {'role': 'assistant', 'content': ' '.join(p[en_key] for p in group)}]
            f.write(json.dumps({'messages': msgs}, ensure_ascii=False) + '\n')
    sinks = [s for s in ('tensorboard', 'trackio') if importlib.util.find_spec(s)]  # the dev extra has both
    env = {**os.environ, 'TRACKIO_DIR': str(tmp_path/'trackio')}
    r = subprocess.run(['bailong', 'train', 'sft', '--config', str(EXAMPLE), '--set', f'data={tmp_path/"chats.jsonl"}', '--set', 'steps=12',
                        '--set', 'save_every=0', '--set', 'eval_every=6', '--set', 'block_size=384', '--set', f'report_to=[{", ".join(sinks)}]',
                        '--out', str(tmp_path/'run')], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    l, summary = losses(tmp_path/'run'), json.loads((tmp_path/'run'/'summary.json').read_text())
    assert sum(l[-3:]) < sum(l[:3]) - 1.0, l
    assert summary['conversations']['kept'] == 200 and json.loads((tmp_path/'run'/'config.json').read_text())['data'] == [str(tmp_path/'chats.jsonl')]
    if 'tensorboard' in sinks:  # the same records as metrics.jsonl
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        ea = EventAccumulator(str(tmp_path/'run'/'tensorboard')); ea.Reload()
        assert [e.step for e in ea.Scalars('loss')] == list(range(1, 13)) and [e.step for e in ea.Scalars('eval_answer_loss')] == [0, 6, 12]
        assert abs(ea.Scalars('loss')[-1].value - l[-1]) < 1e-5
    if 'trackio' in sinks:
        assert (tmp_path/'trackio'/'bailong.db').exists(), list((tmp_path/'trackio').rglob('*'))


FRESH = r'''
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
assert 'bailong' not in sys.modules
m = sys.argv[1]
tok, model = AutoTokenizer.from_pretrained(m), AutoModelForCausalLM.from_pretrained(m)
msgs = [{'role': 'user', 'content': '請把這句話翻譯成英文：開啟說明。'}, {'role': 'assistant', 'content': 'Open the Help.'},
        {'role': 'user', 'content': 'And into Japanese?'}, {'role': 'assistant', 'content': 'ヘルプを開きます。'}]
enc = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
marked = tok.decode([i for i, k in zip(enc['input_ids'], enc['assistant_masks']) if k])
prompt = tok.apply_chat_template(msgs[:1], add_generation_prompt=True, return_tensors='pt', return_dict=True)
out = model.generate(**prompt, max_new_tokens=5, do_sample=False)
print(json.dumps({'marked': marked, 'eos': tok.eos_token, 'new': out.shape[1] - prompt['input_ids'].shape[1], 'dtype': str(model.dtype),
                  'tied': model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()}))
'''


@pytest.fixture(scope='module')
def merged(sft_run):
    m = sft_run.parent/'merged'
    r = run_cli('merge', sft_run, '--out', m)
    assert r.returncode == 0, r.stderr[-3000:]
    return m


def test_merge_makes_a_standalone_model(sft_run, merged, tmp_path):
    m = merged
    report = json.loads((m/'merge.json').read_text())
    assert report['max_logit_diff'] < 1e-4 and report['tied'], report  # merged == base + adapter; tied stays tied
    assert (m/'model.safetensors').exists() and (m/'chat_template.jinja').exists()
    card = (m/'README.md').read_text(encoding='utf-8')
    assert card.startswith('---\nbase_model: bailong:tiny-llama\nlanguage:\n- zh\n- en\n'), card[:300]
    r = subprocess.run([sys.executable, '-c', FRESH, str(m)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got['marked'] == f"Open the Help.{got['eos']}ヘルプを開きます。{got['eos']}", got  # exactly the answers and their end token
    assert got['new'] >= 1 and got['dtype'] == 'torch.bfloat16' and got['tied'], got
    r = run_cli('merge', sft_run, '--out', m)
    assert r.returncode == 2 and 'already exists' in r.stderr


def test_chat_in_the_terminal(merged):
    r = subprocess.run(['bailong', 'chat', '--model', str(merged), '--max-new-tokens', '4'], capture_output=True, text=True,
                       input='你好\n/system 請簡短回答。\nHello\n/reset\nHi\n', timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert '(system prompt: 請簡短回答。)' in r.stdout and '(conversation cleared)' in r.stdout and r.stdout.count('> ') == 6, r.stdout



def test_bad_inputs(tmp_path):
    good = {'messages': [{'role': 'user', 'content': '你好'}, {'role': 'assistant', 'content': '你好！有什麼可以幫忙的？'}]}
    bad_lines = {'unknown role': ({'messages': [{'role': 'robot', 'content': 'x'}, {'role': 'assistant', 'content': 'y'}]}, 'role'),
                 'ends on user': ({'messages': [{'role': 'user', 'content': 'x'}]}, 'user'),
                 'empty content': ({'messages': [{'role': 'user', 'content': ' '}, {'role': 'assistant', 'content': 'y'}]}, 'empty')}
    for name, (rec, word) in bad_lines.items():
        d = tmp_path/name.replace(' ', '-'); d.mkdir()
        (d/'c.jsonl').write_text(json.dumps(good, ensure_ascii=False) + '\n' + json.dumps(rec) + '\n', encoding='utf-8')
        rc, err = cli('train', 'sft', '--config', EXAMPLE, '--set', f'data={d/"c.jsonl"}', '--out', d/'out')
        assert rc == 2 and 'c.jsonl:2' in err and word in err.lower(), (name, err[-2000:])
        assert not (d/'out').exists(), name
    (tmp_path/'latin1.jsonl').write_bytes(json.dumps(good, ensure_ascii=False).encode() + b'\n{"messages": "caf\xe9"}\n')
    r = run_cli('train', 'sft', '--config', EXAMPLE, '--set', f'data={tmp_path/"latin1.jsonl"}', '--out', tmp_path/'o1')  # as a user runs it
    assert r.returncode == 2 and 'latin1.jsonl:2' in r.stderr and 'UTF-8' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    (tmp_path/'bad.yaml').write_text('steps: 4\ndata: [a.jsonl\n')
    rc, err = cli('train', 'sft', '--config', tmp_path/'bad.yaml', '--out', tmp_path/'o2')
    assert rc == 2 and 'bad.yaml:3:1: not valid YAML' in err, err[-2000:]
    rc, err = cli('train', 'sft', '--config', EXAMPLE, '--set', 'steps=many', '--out', tmp_path/'o3')
    assert rc == 2 and "--set steps=many: steps='many': expected an integer" in err, err[-2000:]
    rc, err = cli('train', 'sft', '--config', EXAMPLE, '--set', 'report_to=wandb', '--out', tmp_path/'o4')
    assert rc == 2 and "report_to='wandb'" in err, err[-2000:]
    rc, err = cli('merge', tmp_path, '--out', tmp_path/'o5')
    assert rc == 2 and 'not a finished training run' in err, err[-2000:]
    rc, err = cli('chat', '--model', tmp_path)
    assert rc == 2 and 'not a model directory' in err, err[-2000:]
    assert not any((tmp_path/f'o{i}').exists() for i in range(1, 6))
