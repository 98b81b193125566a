"End-to-end runs of the `bailong` command in subprocesses: output, exit status, and no partial output on errors."
import json
import pytest
from conftest import run_cli


@pytest.mark.parametrize('cmd', [[], ['data'], ['data', 'prepare'], ['data', 'tokenize'], ['tokenizer'], ['tokenizer', 'extend'],
                                 ['tokenizer', 'stats'], ['quickstart'], ['notebooks']])
def test_help_everywhere(cmd):
    r = run_cli(*cmd, '--help')
    assert r.returncode == 0 and r.stdout.startswith('usage: bailong'), r.stderr


def test_data_prepare_real_corpus(sample, tmp_path):
    out = tmp_path/'x'
    r = run_cli('data', 'prepare', '--input', sample(), '--out', out, '--s2t')
    assert r.returncode == 0, r.stderr
    for step in ('read', 'clean', 's2t', 'dedup', 'train', 'valid'): assert f'\n{step} ' in '\n' + r.stdout
    assert 'script before: traditional' in r.stdout and 'simplified' in r.stdout
    report = json.loads((out/'report.json').read_text(encoding='utf-8'))
    steps = {s['step']: s for s in report['steps']}
    assert steps['read']['docs'] == 8499 and steps['read']['chars'] > steps['dedup']['chars']
    import pyarrow.parquet as pq
    count = lambda split: sum(pq.ParquetFile(f).metadata.num_rows for f in (out/split).glob('*.parquet'))
    n_train, n_valid = count('train'), count('valid')
    assert (n_train, n_valid) == (report['train']['docs'], report['valid']['docs'])
    assert abs(n_valid / (n_train + n_valid) - 0.02) < 0.005
    # same seed, same split: a rerun into another folder is byte-identical
    r2 = run_cli('data', 'prepare', '--input', sample(), '--out', tmp_path/'y', '--s2t')
    assert r2.returncode == 0
    assert [f.read_bytes() for f in sorted((tmp_path/'y').rglob('*.parquet'))] == [f.read_bytes() for f in sorted(out.rglob('*.parquet'))]


def _bad_inputs(tmp_path, sample):
    (tmp_path/'empty.txt').write_text('\n\n')
    (tmp_path/'bin.txt').write_bytes(bytes(range(256)) * 4)
    lines = sample().read_bytes().split(b'\n')[:10]
    lines[6] = '伺服器'.encode('big5')
    (tmp_path/'big5.txt').write_bytes(b'\n'.join(lines))
    (tmp_path/'c.xml').write_text('<doc>說明</doc>')
    return {'missing.txt': 'corpus file not found', 'empty.txt': 'empty', 'bin.txt': 'binary',
            'big5.txt': 'big5.txt:7: not valid UTF-8', 'c.xml': "unknown corpus format '.xml'"}


def test_bad_inputs_fail_cleanly(tmp_path, sample):
    for name, message in _bad_inputs(tmp_path, sample).items():
        out = tmp_path/f'out_{name}'
        r = run_cli('data', 'prepare', '--input', tmp_path/name, '--out', out)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert message in r.stderr and 'Traceback' not in r.stderr, (name, r.stderr)
        assert not out.exists() and not list(tmp_path.glob(f'.out_{name}*')), f'{name}: partial output left behind'


def test_skip_bad_lines_on_request(tmp_path, sample):
    _bad_inputs(tmp_path, sample)
    r = run_cli('data', 'prepare', '--input', tmp_path/'big5.txt', '--out', tmp_path/'o', '--errors', 'skip')
    assert r.returncode == 0, r.stderr
    assert 'skipped undecodable lines: 1' in r.stdout


def test_existing_output_refused_unless_overwrite(tmp_path, sample):
    src = sample()
    small = tmp_path/'small.txt'; small.write_bytes(b'\n'.join(src.read_bytes().split(b'\n')[:500]))
    out = tmp_path/'o'; out.mkdir(); (out/'keep.txt').write_text('mine')
    r = run_cli('data', 'prepare', '--input', small, '--out', out)
    assert r.returncode == 2 and 'already exists' in r.stderr and (out/'keep.txt').exists()
    r = run_cli('data', 'prepare', '--input', small, '--out', out, '--overwrite')
    assert r.returncode == 2 and 'not a bailong prepared corpus output' in r.stderr and (out/'keep.txt').exists()
    (out/'keep.txt').unlink()
    r = run_cli('data', 'prepare', '--input', small, '--out', out)
    assert r.returncode == 0 and (out/'report.json').exists(), r.stderr  # an empty folder is written into
    (out/'report.json').write_text('{}')
    r = run_cli('data', 'prepare', '--input', small, '--out', out, '--overwrite')  # its own output: replaced
    assert r.returncode == 0 and json.loads((out/'report.json').read_text()), r.stderr
