"""Token shards from the command line: a killed `bailong data tokenize` resumes without redoing finished shards and ends
byte-identical; bad inputs (empty directory, a vocabulary too large for the dtype, another tokenizer's shards, a truncated
shard) fail with one clear line and leave nothing behind."""
import functools, json, os, signal, subprocess, tempfile, time
from pathlib import Path
import pytest
from conftest import run_cli, cli


@functools.cache
def sp_tokenizer() -> str:
    "Llama 2's (or Mistral's) SentencePiece tokenizer extended by 300 pieces from the packaged sample, as the paper's in miniature."
    from bailong.tokenizer import extend_tokenizer, save_extension
    from bailong.data import sentencepiece_base, sample_path
    return str(save_extension(extend_tokenizer(sentencepiece_base(), sample_path(), 300), Path(tempfile.mkdtemp())/'zh'))


@pytest.fixture(scope='module')
def shards_input(tmp_path_factory):
    "Six JSONL files of real text, ~1.5 MB each: six shards that take a few seconds to tokenize, one after the other."
    from bailong.data import read_corpus, sample_path
    d = tmp_path_factory.mktemp('corpus')
    docs = read_corpus(sample_path())
    for k in range(6):
        with open(d/f'part-{k}.jsonl', 'w', encoding='utf-8') as f:
            for r in range(6): f.writelines(json.dumps({'text': f'{k}-{r} {t}'}, ensure_ascii=False) + '\n' for t in docs)
    return d


def _shard_bytes(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted((out/'shards').iterdir())}


def _processes_of(out: Path) -> list[int]:
    "PIDs of the processes whose command line names `out`: a run's own process and those it forked."
    pids = []
    for p in Path('/proc').iterdir():
        try:
            if p.name.isdigit() and str(out).encode() in (p/'cmdline').read_bytes(): pids.append(int(p.name))
        except OSError: pass
    return pids


def test_killed_tokenize_resumes_and_ends_identical(tmp_path, shards_input):
    tok = sp_tokenizer()
    r = run_cli('data', 'tokenize', '--tokenizer', tok, '--input', shards_input, '--out', tmp_path/'whole')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'tokens (uint16)' in r.stdout and 'in 6 shards' in r.stdout
    out, part = tmp_path/'cut', tmp_path/'.cut.bailong-partial'
    proc = subprocess.Popen(['bailong', 'data', 'tokenize', '--tokenizer', tok, '--input', str(shards_input), '--out', str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done, deadline = part/'logs'/'completions', time.time() + 300
    while time.time() < deadline and proc.poll() is None and not (done.exists() and any(done.iterdir())): time.sleep(0.02)
    assert proc.poll() is None, 'tokenize finished before it could be killed'
    os.kill(proc.pid, signal.SIGKILL); proc.wait()
    assert not out.exists(), 'a killed run must not look finished'
    deadline = time.time() + 10
    while (left := _processes_of(out)) and time.time() < deadline: time.sleep(0.1)
    for pid in left: os.kill(pid, signal.SIGKILL)  # so that a failure here leaves nothing running either
    assert not left, f'processes of the killed run still alive (its workers must die with it): {left}'
    finished = sorted(p.name for p in done.iterdir())
    assert 0 < len(finished) < 6, finished
    first = part/'shards'/f'{int(finished[0]):05d}_unshuffled.ds'
    stamp = first.stat().st_mtime_ns
    r = run_cli('data', 'tokenize', '--tokenizer', tok, '--input', shards_input, '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out/'shards'/first.name).stat().st_mtime_ns == stamp, 'a finished shard was tokenized again'
    assert not part.exists() and _shard_bytes(out) == _shard_bytes(tmp_path/'whole')
    timing = ('seconds', 'mb_per_s', 'input')
    manifest = lambda d: {k: v for k, v in json.loads((d/'manifest.json').read_text()).items() if k not in timing}
    assert manifest(out) == manifest(tmp_path/'whole')
    m = json.loads((out/'manifest.json').read_text())
    rest = sum(s['text_bytes'] for i, s in enumerate(m['shards']) if i not in {int(f) for f in finished}) / 2**20
    assert m['mb_per_s'] * m['seconds'] <= rest * 1.1 + 0.1, ('MB/s counts the shards of the killed run', m, rest)


def test_tokenize_bad_inputs(tmp_path, shards_input):
    from bailong.tokenizer import load_hf_tokenizer
    tok = sp_tokenizer()
    (tmp_path/'empty').mkdir()
    big = load_hf_tokenizer(tok); big.add_tokens([f'詞{i}' for i in range(70_000 - len(big))]); big.save_pretrained(tmp_path/'big')
    cases = {'empty directory': (['--input', tmp_path/'empty'], 'holds no corpus files'),
             'vocabulary larger than the dtype': (['--input', shards_input, '--tokenizer', tmp_path/'big', '--dtype', 'uint16'],
                                                  "70,000 tokens, more than uint16's 65,536 ids"),
             'unknown dtype': (['--input', shards_input, '--dtype', 'int8'], "dtype='int8'"),
             'missing tokenizer': (['--input', shards_input, '--tokenizer', tmp_path/'nope'], 'not found (no such file or directory)')}
    for name, (args, message) in cases.items():
        args = ['--tokenizer', tok, *args] if '--tokenizer' not in args else args
        rc, err = cli('data', 'tokenize', *args, '--out', tmp_path/'out')
        assert rc == 2 and message in err and 'Traceback' not in err, (name, err[-2000:])
        assert not list(tmp_path.glob('*out*')), (name, list(tmp_path.glob('*out*')))  # no output, no .partial


def test_training_refuses_other_tokenizers_and_truncated_shards(tmp_path):
    "Shards of the packaged sample: training with another tokenizer, or from a truncated shard, stops before any step."
    from bailong.data import sample_path, sentencepiece_base
    tok = sp_tokenizer()
    assert run_cli('data', 'prepare', '--input', sample_path(), '--out', tmp_path/'prep').returncode == 0
    r = run_cli('data', 'tokenize', '--tokenizer', tok, '--input', tmp_path/'prep', '--out', tmp_path/'tokens')
    assert r.returncode == 0, r.stderr[-2000:]
    base = ['train', 'pretrain', '--set', f'base_tokenizer={sentencepiece_base()}', '--set', 'steps=1', '--set', 'eval_every=0',
            '--set', 'embedding_mode=full']
    rc, err = cli(*base, '--set', f'corpus={tmp_path/"tokens"}', '--set', f'tokenizer={sentencepiece_base()}', '--out', tmp_path/'r1')
    assert rc == 2 and 'tokenized with' in err and 'tokenize again' in err, err[-2000:]
    assert not (tmp_path/'r1').exists()
    shard = next((tmp_path/'tokens'/'shards').glob('*.ds'))
    shard.write_bytes(shard.read_bytes()[:-100])
    rc, err = cli(*base, '--set', f'corpus={tmp_path/"tokens"}', '--out', tmp_path/'r2')
    assert rc == 2 and 'truncated' in err and shard.name in err, err[-2000:]
    assert not (tmp_path/'r2').exists()


def _general_docs(n: int, step: int = 1) -> list[str]:
    "`n` JSONL lines, every `step`-th, of the packaged general-domain sample ({text, source, date}; sources in file order)."
    import gzip
    from bailong.data import sample_path
    with gzip.open(sample_path('zh_tw_general_sample.jsonl.gz'), 'rt', encoding='utf-8') as f: return f.readlines()[::step][:n]


def test_one_file_shared_by_workers_same_output(tmp_path):
    "One file read in byte ranges (a .gz one by every n-th line) by 1 or 2 workers: every document once, the same bytes out."
    import gzip, hashlib
    from bailong.data import PrepareConfig, prepare, plan_parts, stream_records
    lines = _general_docs(400)
    (tmp_path/'in').mkdir()
    (tmp_path/'in'/'a.jsonl').write_text(''.join(lines), encoding='utf-8')
    with gzip.open(tmp_path/'in'/'b.jsonl.gz', 'wt', encoding='utf-8') as f: f.write(''.join(lines[:150]))
    whole = [r['text'] for r in stream_records(tmp_path/'in'/'a.jsonl')]
    for n in (2, 3, 7):
        assert [r['text'] for k in range(n) for r in stream_records(tmp_path/'in'/'a.jsonl', part=(k, n))] == whole
        assert sorted(r['text'] for k in range(n) for r in stream_records(tmp_path/'in'/'b.jsonl.gz', part=(k, n))) == sorted(whole[:150])
    assert len(plan_parts(sorted(map(str, (tmp_path/'in').iterdir())), 5)) == 5
    digests = {}
    for w in (1, 2):
        report = prepare(PrepareConfig(inputs=[str(tmp_path/'in')], tasks=5, workers=w), tmp_path/f'out{w}', progress=False)
        assert report['tasks'] == 5 and report['steps'][0]['docs'] == 550
        digests[w] = {p.relative_to(tmp_path/f'out{w}').as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in sorted((tmp_path/f'out{w}').rglob('*.parquet'))}
    assert len(digests[1]) >= 5 and digests[1] == digests[2]


def test_mix_and_held_out_by_date(tmp_path):
    "Per-source weights by a keyed hash (the same documents every run), and documents dated on or after --valid-after held out."
    import pyarrow.parquet as pq
    from bailong.data import DataError, PrepareConfig, prepare, parse_mix, GENERAL_MIX, clean_text
    lines = _general_docs(600, step=4)
    (tmp_path/'g.jsonl').write_text(''.join(lines), encoding='utf-8')
    recs = [json.loads(l) for l in lines]
    assert {'law', 'president', 'tainan'} <= {r['source'] for r in recs}
    assert parse_mix('default') == GENERAL_MIX and parse_mix('none') == {} and parse_mix('law=0.2, tainan=1') == {'law': 0.2, 'tainan': 1.0}
    for bad in ('law', 'law=2', 'law=x'):
        try: parse_mix(bad); raise AssertionError(bad)
        except DataError as e: assert 'mix=' in str(e)
    cfg = lambda **kw: PrepareConfig(inputs=[str(tmp_path/'g.jsonl')], near_dup_threshold=1.0, **kw)
    # the sample was itself chosen by the same keyed hash, below about 0.045 x the default weights: 0.02 keeps part of it
    r = prepare(cfg(mix='law=0,president=0.02', valid_after='2020-01-01'), tmp_path/'a', progress=False)
    mixed = {s['step']: s['docs'] for s in r['steps']}
    n_law, n_pres = sum(x['source'] == 'law' for x in recs), sum(x['source'] == 'president' for x in recs)
    assert mixed['read'] - n_law - n_pres < mixed['mix'] < mixed['read'] - n_law  # all laws out, some of the President's
    texts = lambda d, split: [t for f in sorted((d/split).glob('*.parquet')) for t in pq.read_table(f)['text'].to_pylist()]
    dated = {clean_text(x['text']): x.get('date', '') for x in recs}
    assert texts(tmp_path/'a', 'valid') and all(dated[t] >= '2020-01-01' for t in texts(tmp_path/'a', 'valid'))
    assert all(dated[t] < '2020-01-01' for t in texts(tmp_path/'a', 'train'))
    again = prepare(cfg(mix='law=0,president=0.02', valid_after='2020-01-01'), tmp_path/'b', progress=False)
    assert texts(tmp_path/'b', 'train') == texts(tmp_path/'a', 'train')
    rc, err = cli('data', 'prepare', '--input', tmp_path/'g.jsonl', '--out', tmp_path/'c', '--valid-after', 'soon')
    assert rc == 2 and "valid_after='soon'" in err and not (tmp_path/'c').exists()
