"End-to-end runs of the `bailong` command in subprocesses: output, exit status, and no partial output on errors."
import json
import pytest
from conftest import run_cli


@pytest.mark.parametrize('cmd', [[], ['data'], ['data', 'prepare'], ['tokenizer'], ['tokenizer', 'extend'],
                                 ['tokenizer', 'stats'], ['quickstart']])
def test_help_everywhere(cmd):
    r = run_cli(*cmd, '--help')
    assert r.returncode == 0 and r.stdout.startswith('usage: bailong'), r.stderr


def test_data_prepare_real_corpus(shared, tmp_path):
    out = tmp_path/'x'
    r = run_cli('data', 'prepare', '--input', shared/'data/zh_tw/corpus.txt', '--out', out, '--s2t')
    assert r.returncode == 0, r.stderr
    for step in ('read', 'clean', 'dedup_exact', 'dedup_near', 'train', 'valid'): assert f'\n{step} ' in '\n' + r.stdout
    assert 'script before: traditional' in r.stdout and 'simplified' in r.stdout
    report = json.loads((out/'report.json').read_text(encoding='utf-8'))
    steps = {s['step']: s for s in report['steps']}
    assert steps['read']['docs'] == 131387 and steps['read']['chars'] > steps['dedup_near']['chars']
    n_train = sum(1 for _ in open(out/'train.jsonl', encoding='utf-8'))
    n_valid = sum(1 for _ in open(out/'valid.jsonl', encoding='utf-8'))
    assert (n_train, n_valid) == (report['train']['docs'], report['valid']['docs'])
    assert abs(n_valid / (n_train + n_valid) - 0.02) < 0.001
    # same seed, same split: a rerun into another folder is byte-identical
    r2 = run_cli('data', 'prepare', '--input', shared/'data/zh_tw/corpus.txt', '--out', tmp_path/'y', '--s2t')
    assert r2.returncode == 0 and (tmp_path/'y/valid.jsonl').read_bytes() == (out/'valid.jsonl').read_bytes()


def _bad_inputs(tmp_path, shared):
    (tmp_path/'empty.txt').write_text('\n\n')
    (tmp_path/'bin.txt').write_bytes(bytes(range(256)) * 4)
    lines = (shared/'data/zh_tw/corpus.txt').read_bytes().split(b'\n')[:10]
    lines[6] = '伺服器'.encode('big5')
    (tmp_path/'big5.txt').write_bytes(b'\n'.join(lines))
    (tmp_path/'c.xml').write_text('<doc>說明</doc>')
    return {'missing.txt': 'corpus file not found', 'empty.txt': 'empty', 'bin.txt': 'binary',
            'big5.txt': 'big5.txt:7: not valid UTF-8', 'c.xml': "unknown corpus format '.xml'"}


def test_bad_inputs_fail_cleanly(tmp_path, shared):
    for name, message in _bad_inputs(tmp_path, shared).items():
        out = tmp_path/f'out_{name}'
        r = run_cli('data', 'prepare', '--input', tmp_path/name, '--out', out)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert message in r.stderr and 'Traceback' not in r.stderr, (name, r.stderr)
        assert not out.exists() and not list(tmp_path.glob(f'.out_{name}*')), f'{name}: partial output left behind'


def test_skip_bad_lines_on_request(tmp_path, shared):
    _bad_inputs(tmp_path, shared)
    r = run_cli('data', 'prepare', '--input', tmp_path/'big5.txt', '--out', tmp_path/'o', '--errors', 'skip')
    assert r.returncode == 0, r.stderr
    assert 'skipped undecodable lines: 1' in r.stdout


def test_existing_output_refused_unless_overwrite(tmp_path, shared):
    src = shared/'data/zh_tw/corpus.txt'
    small = tmp_path/'small.txt'; small.write_bytes(b'\n'.join(src.read_bytes().split(b'\n')[:500]))
    out = tmp_path/'o'; out.mkdir(); (out/'keep.txt').write_text('mine')
    r = run_cli('data', 'prepare', '--input', small, '--out', out)
    assert r.returncode == 2 and 'already exists' in r.stderr and (out/'keep.txt').exists()
    r = run_cli('data', 'prepare', '--input', small, '--out', out, '--overwrite')
    assert r.returncode == 0 and not (out/'keep.txt').exists() and (out/'train.jsonl').exists()


def test_quickstart_end_to_end(tmp_path):
    r = run_cli('quickstart', '--out', tmp_path/'qs')
    assert r.returncode == 0, r.stderr
    assert '== [1/' in r.stdout and '== summary' in r.stdout and str((tmp_path/'qs').resolve()) in r.stdout
    summary = json.loads((tmp_path/'qs/summary.json').read_text(encoding='utf-8'))
    assert summary['stages']['data']['train_docs'] > 5000
    assert (tmp_path/'qs/data/train.jsonl').exists()
    tok = summary['stages']['tokenizer']
    assert tok['vocab'] == 49152 + 2000 and tok['tokens_per_char_after'] < 0.6 * tok['tokens_per_char_before']
    from transformers import AutoModelForCausalLM, AutoTokenizer
    assert len(AutoTokenizer.from_pretrained(tok['dir'])) == 51152
    emb = summary['stages']['embeddings']
    assert emb['bits_per_char_zip_tie'] < emb['bits_per_char_random'] and emb['eval_texts'] == 100
    model = AutoModelForCausalLM.from_pretrained(emb['dir'])
    assert model.get_input_embeddings().weight.shape[0] == 51152 and model.lm_head.weight is model.get_input_embeddings().weight
    assert 'zip-tie' in r.stdout and 'random' in r.stdout
