"""Data pipeline at scale: `bailong data prepare`, `bailong data tokenize` and the start of `bailong train pretrain` on
corpora of ~10 MiB, ~100 MiB and ~1 GiB, against the old in-memory path where it fits in memory.

    python benchmarks/data_scale.py                                  # 10, 100 and 1000 MiB; "before" at 10 and 100
    python benchmarks/data_scale.py --sizes 10 --before-sizes 10     # a few minutes

$BAILONG_SHARED must name the shared data folder (the corpus is read from it).

Corpora: real zh-TW text. Each document is 5–40 lines (uniform) drawn at random, with replacement, from the non-empty
lines of $BAILONG_SHARED/data/zh_tw/corpus.txt (7 MB: man pages, LibreOffice help, Debian Reference, poems), so that
documents are not near-duplicates of one another, written as `{"text": doc}` JSONL lines until the folder holds the
size asked for, split evenly over 4 files (16 at 1 GiB: datatrove runs one task per file). They are built once under
`--work` and reused.

"After", each stage a subprocess of the CLI, one after the other on the same corpus:
  prepare    bailong data prepare --input CORPUS --out PREP --workers W
  tokenize   bailong data tokenize --tokenizer TOK --input PREP --out TOKENS --workers W
  train      bailong train pretrain --set corpus=TOKENS ... --set steps=1 (tiny-llama preset, block 256, micro-batch 4)
"Before", the old in-memory path: `bailong.data.prepare_corpus` in a subprocess, writing train/valid JSONL and the
report as the old `bailong data prepare` did, and `bailong train pretrain --set corpus=[the raw JSONL files]`, which
reads, cleans, tokenizes and packs everything before its first step. It is measured only at `--before-sizes`: it holds
every document and every token id as Python objects, ~100 GB of RAM at 1 GiB, so it is never run there.

Measured for each command: wall time, start-up included (the JSON's inner_s is the command's own count, without it);
MB/s = corpus MiB (the JSONL files' size) / wall seconds, for every stage, so that stages compare (tokenize also per
worker, and tokens/s); peak RSS, process tree, sampled: the CLI process and all its worker children summed, every
0.1 s with psutil. Pages shared between processes count once per process, so it errs high; the JSON also has the
peak PSS of the tree (shared pages split between their processes), sampled every 1 s. GB = 1e9 bytes.
For train: the time from process start until RUN/metrics.jsonl holds the line of step 1 (polled every 0.2 s), after
which the run is stopped; its peak RSS is up to that point.
TOK is the paper's kind of tokenizer: Llama 2's SentencePiece model extended by `--add` (27,241) zh-TW pieces learned on
the same 7 MB corpus with `bailong tokenizer extend`, made once under `--work` (or `--tokenizer DIR`); the train command
builds the tiny preset on Llama 2's vocabulary (`base_tokenizer`) and resizes it to the extension's.

Targets (data-scale issue): peak RSS of prepare and tokenize flat in corpus size, <= 2 GB at 1 GiB with 2 workers;
first step <= 30 s after tokenization whatever the size; tokenize >= 5 MB/s per worker on this CPU at 1 GiB (the
acceptance: "a 1 GB corpus ... within the targets"; on 10 MiB the command's ~5 s of start-up is most of its wall time).
Prints a table and writes JSON (`--json`, default benchmarks/results/data_scale.json).
"""
import argparse, json, os, platform, random, shutil, subprocess, sys, time
from pathlib import Path
import psutil

BIN = Path(sys.executable).parent  # the `bailong` script of this environment
GB = 1e9


def make_corpus(src, out_dir, mb: float, files: int, seed: int = 0) -> dict:
    "JSONL files part-0000.jsonl... of 5-40 random source lines per document, ~`mb` MiB in all; cached with a .json beside the folder."
    out_dir, meta = Path(out_dir), Path(f'{out_dir}.json')
    if meta.exists() and out_dir.exists(): return json.loads(meta.read_text())
    lines = [l for l in Path(src).read_text(encoding='utf-8').splitlines() if l.strip()]
    rng, tmp = random.Random(seed), Path(f'{out_dir}.tmp')
    shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir(parents=True)
    per_file, docs, size = mb * 2**20 / files, 0, 0
    for i in range(files):
        with open(tmp/f'part-{i:04d}.jsonl', 'w', encoding='utf-8') as f:
            written = 0
            while written < per_file:
                rec = json.dumps({'text': '\n'.join(rng.choices(lines, k=rng.randint(5, 40)))}, ensure_ascii=False) + '\n'
                f.write(rec); written += len(rec.encode()); docs += 1
        size += written
    shutil.rmtree(out_dir, ignore_errors=True); tmp.rename(out_dir)  # only a finished corpus is ever reused
    info = {'mib': size / 2**20, 'bytes': size, 'docs': docs, 'files': files, 'seed': seed, 'source': str(src),
            'source_lines': len(lines)}
    meta.write_text(json.dumps(info, indent=1))
    return info


def tree_mem(root: psutil.Process, pss: bool = False) -> int:
    "RSS (or PSS: shared pages split between their processes) of a process and all its descendants, summed."
    try: procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess: return 0
    total = 0
    for p in procs:
        try: total += p.memory_full_info().pss if pss else p.memory_info().rss
        except psutil.Error: pass  # ended (or a zombie) between listing and reading
    return total


def stop_tree(root: psutil.Process):
    for p in [*root.children(recursive=True), root]:
        try: p.kill()
        except psutil.Error: pass


def first_step_seen(metrics: Path) -> bool:
    if not metrics.exists(): return False
    for l in metrics.read_text().splitlines():
        try:
            if json.loads(l).get('step') == 1: return True
        except json.JSONDecodeError: pass  # a line being written
    return False


def watch(cmd: list, log: Path, timeout: float, metrics: Path | None = None) -> dict:
    """Run `cmd`, sampling its process tree's RSS every 0.1 s; with `metrics`, stop it once step 1 is logged there.
    Output goes to `log`; a failure keeps its last lines."""
    shown = ['python', '-c', 'BEFORE_PREPARE', *cmd[3:]] if cmd[1] == '-c' else cmd  # not the script's whole text
    print('  $ ' + ' '.join(map(str, shown)), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    with open(log, 'w') as f: p = subprocess.Popen(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT)
    root, peak, peak_pss, first, polls, late = psutil.Process(p.pid), 0, 0, None, 0, False
    while True:
        try: p.wait(timeout=0.1); break
        except subprocess.TimeoutExpired: pass
        peak, polls = max(peak, tree_mem(root)), polls + 1
        if polls % 10 == 1: peak_pss = max(peak_pss, tree_mem(root, pss=True))  # reading PSS walks page tables: once a second
        if metrics is not None and polls % 2 == 0 and first_step_seen(metrics):
            first = time.perf_counter() - t0
            stop_tree(root); p.wait(); break  # the rest (export, summary) is not what is measured
        if (late := time.perf_counter() - t0 > timeout): stop_tree(root); p.wait(); break
    rec = {'wall_s': round(time.perf_counter() - t0, 2), 'peak_rss_gb': round(peak / GB, 3), 'peak_pss_gb': round(peak_pss / GB, 3)}
    if metrics is not None: rec['first_step_s'] = round(first, 2) if first is not None else None
    if (metrics is not None and first is None) or (metrics is None and p.returncode != 0):
        tail = log.read_text(errors='replace').strip().splitlines()[-3:]
        rec['error'] = f'stopped after {timeout:.0f} s (--timeout)' if late else ' | '.join(tail) or f'exit {p.returncode}'
    return rec


def extended_tokenizer(work: Path, add: int) -> Path:
    "The paper's tokenizer in kind: Llama 2's SentencePiece model extended with `add` pieces from the shared corpus, made once."
    from bailong.data import shared_path
    out = work/f'tokenizer-llama2-{add}'
    if not (out/'extension_report.json').exists():
        cmd = [BIN/'bailong', 'tokenizer', 'extend', '--base', base_tokenizer(), '--corpus',
               shared_path('data/zh_tw/corpus.txt'), '--add', add, '--out', out, '--threads', 1, '--overwrite']
        print('  $ ' + ' '.join(map(str, cmd)), file=sys.stderr, flush=True)
        subprocess.run(list(map(str, cmd)), check=True, stdout=subprocess.DEVNULL)
    return out


def base_tokenizer() -> str:
    from bailong.data import sentencepiece_base
    return str(sentencepiece_base())


def train_cmd(corpus: str, tok, out: Path) -> list:
    # the tiny preset built on Llama 2's vocabulary, resized to the extension's and zip-tied, as the paper's model in miniature
    sets = [f'corpus={corpus}', 'model=bailong:tiny-llama', f'base_tokenizer={base_tokenizer()}', f'tokenizer={tok}', 'steps=1', 'eval_every=0', 'save_every=0',
            'block_size=256', 'micro_batch=4']
    return [BIN/'bailong', 'train', 'pretrain', *[a for s in sets for a in ('--set', s)], '--out', out]


# the old `bailong data prepare`: prepare_corpus in memory, then what its save_prepared wrote (inlined: it left the package)
BEFORE_PREPARE = """
import json, sys
from pathlib import Path
from bailong.data import PrepareConfig, prepare_corpus
train, valid, report = prepare_corpus(PrepareConfig(inputs=sys.argv[2:]), progress=False)
out = Path(sys.argv[1]); out.mkdir(parents=True)
for name, docs in (('train', train), ('valid', valid)):
    with open(out/f'{name}.jsonl', 'w', encoding='utf-8') as f:
        for d in docs: f.write(json.dumps({'text': d}, ensure_ascii=False) + '\\n')
(out/'report.json').write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding='utf-8')
"""


def after(corpus: Path, info: dict, tok, work: Path, workers: int, timeout: float) -> dict:
    tag, res = corpus.name, {}
    prep, tokens, run = work/f'{tag}-prep', work/f'{tag}-tokens', work/f'{tag}-run'
    for d in (prep, tokens, run): shutil.rmtree(d, ignore_errors=True)
    r = watch([BIN/'bailong', 'data', 'prepare', '--input', corpus, '--out', prep, '--workers', workers],
              work/f'{tag}-prepare.log', timeout)
    r['mb_per_s'] = round(info['mib'] / r['wall_s'], 2)
    if (prep/'report.json').exists():
        rep = json.loads((prep/'report.json').read_text())
        r.update(inner_s=rep.get('seconds'), report={k: rep[k] for k in ('train', 'valid') if k in rep})  # inner_s: without start-up
    res['prepare'] = r
    if 'error' in r: return res
    r = watch([BIN/'bailong', 'data', 'tokenize', '--tokenizer', tok, '--input', prep, '--out', tokens, '--workers', workers],
              work/f'{tag}-tokenize.log', timeout)
    r['mb_per_s'] = round(info['mib'] / r['wall_s'], 2); r['mb_per_s_per_worker'] = round(r['mb_per_s'] / workers, 2)
    if (tokens/'manifest.json').exists():
        man = json.loads((tokens/'manifest.json').read_text())
        r.update(tokens=man.get('tokens'), docs=man.get('docs'), dtype=man.get('dtype'), shards=len(man.get('shards', [])),
                 inner_s=man.get('seconds'))
        if r['tokens']: r['tokens_per_s'] = round(r['tokens'] / r['wall_s'])
    res['tokenize'] = r
    if 'error' in r: return res
    res['train'] = watch(train_cmd(str(tokens), tok, run), work/f'{tag}-train.log', timeout, run/'metrics.jsonl')
    return res


def before(corpus: Path, info: dict, tok, work: Path, timeout: float) -> dict:
    tag, files = corpus.name, sorted(map(str, corpus.glob('*.jsonl')))
    prep, run = work/f'{tag}-before-prep', work/f'{tag}-before-run'
    for d in (prep, run): shutil.rmtree(d, ignore_errors=True)
    r = watch([sys.executable, '-c', BEFORE_PREPARE, prep, *files], work/f'{tag}-before-prepare.log', timeout)
    r['mb_per_s'] = round(info['mib'] / r['wall_s'], 2)
    # the old path's training reads the raw files itself; a JSON list is a YAML flow list for --set
    return {'prepare': r, 'train': watch(train_cmd(json.dumps(files), tok, run), work/f'{tag}-before-train.log', timeout,
                                         run/'metrics.jsonl')}


def ratios(row: dict) -> dict:
    "after / before, where both were measured."
    out, a, b = {}, row.get('after', {}), row.get('before') or {}
    for stage, key in (('prepare', 'wall_s'), ('prepare', 'peak_rss_gb'), ('train', 'first_step_s'), ('train', 'peak_rss_gb')):
        x, y = a.get(stage, {}).get(key), b.get(stage, {}).get(key)
        if x and y and 'error' not in a[stage] and 'error' not in b[stage]: out[f'{stage}_{key}'] = round(x / y, 3)
    return out


def targets(rows: list) -> dict:
    "Pass/fail for each target of the issue, on what was measured (None: not measured)."
    def vals(stage, key):  # {MiB: value} of the sizes where the stage ran without error
        done = [(r['mib_asked'], r['after'][stage]) for r in rows if 'error' not in r['after'].get(stage, {'error': 1})]
        return {mib: s[key] for mib, s in done if s.get(key) is not None}
    out = {}
    for stage in ('prepare', 'tokenize'):
        peaks = vals(stage, 'peak_rss_gb'); at1g = peaks.get(1000)
        out[f'{stage}_peak_rss_at_1GiB_le_2GB'] = {'measured_gb': at1g, 'pass': None if at1g is None else at1g <= 2}
        if len(peaks) > 1:  # flat: how much the peak grows from the smallest to the largest corpus
            lo, hi = min(peaks), max(peaks)
            out[f'{stage}_peak_rss_growth'] = {'sizes_mib': [lo, hi], 'ratio': round(peaks[hi] / peaks[lo], 2)}
    first = vals('train', 'first_step_s')
    out['first_step_le_30s'] = {'measured_s': first, 'pass': all(v <= 30 for v in first.values()) if first else None}
    speed = vals('tokenize', 'mb_per_s_per_worker'); at1g = speed.get(1000)  # the acceptance: a 1 GB corpus within the targets
    out['tokenize_ge_5MBps_per_worker_at_1GiB'] = {'measured': speed, 'pass': None if at1g is None else at1g >= 5}
    return out


def table(rows: list) -> str:
    def f(stage, key, side='after', fmt='{:.1f}'):
        def g(r):
            s = (r.get(side) or {}).get(stage)
            if s is None: return '–'
            if 'error' in s: return 'fail'  # its numbers measure a failure
            return fmt.format(s[key]) if s.get(key) is not None else '–'
        return g
    cols = [('MiB', lambda r: f"{r['corpus']['mib']:.0f}"), ('docs', lambda r: f"{r['corpus']['docs']:,}"),
            ('prep s', f('prepare', 'wall_s')), ('prep MB/s', f('prepare', 'mb_per_s')),
            ('prep GB', f('prepare', 'peak_rss_gb', fmt='{:.2f}')),
            ('tok s', f('tokenize', 'wall_s')), ('tok MB/s/w', f('tokenize', 'mb_per_s_per_worker')),
            ('tok GB', f('tokenize', 'peak_rss_gb', fmt='{:.2f}')), ('tokens', f('tokenize', 'tokens', fmt='{:,}')),
            ('1st step s', f('train', 'first_step_s')),
            ('old prep s', f('prepare', 'wall_s', 'before')), ('old prep GB', f('prepare', 'peak_rss_gb', 'before', '{:.2f}')),
            ('old 1st step s', f('train', 'first_step_s', 'before')), ('old train GB', f('train', 'peak_rss_gb', 'before', '{:.2f}'))]
    cells = [[name for name, _ in cols]] + [[g(r) for _, g in cols] for r in rows]
    w = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    return '\n'.join('  '.join(c.rjust(wi) for c, wi in zip(line, w)) for line in cells)


def cpu_model() -> str:
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor()


def summary(args, src, tok, rows) -> dict:
    "Everything measured, and what each number is."
    machine = {'cpu_count': os.cpu_count(), 'processor': platform.processor(), 'cpu_model': cpu_model(), 'platform': platform.platform(),
               'memory_gb': round(psutil.virtual_memory().total / GB, 1), 'python': platform.python_version()}
    what = 'given with --tokenizer' if args.tokenizer else \
        f"Llama 2's tokenizer.model + {args.add} zh-TW pieces (the paper's count), bailong tokenizer extend on the shared corpus"
    return {
        'machine': machine, 'workers': args.workers, 'tokenizer': {'path': str(tok), 'what': what},
        'corpus': 'documents of 5-40 lines (uniform) drawn at random with replacement from the non-empty lines of '
                  f'{src}, random.Random(0); JSONL {{"text": doc}}; 4 files, 16 at >= 1000 MiB',
        'memory': 'peak RSS, process tree, sampled: the CLI process and its descendants summed, every 0.1 s; GB = 1e9 bytes. '
                  'peak_pss_gb: the same tree summed in PSS (shared pages split between processes), every 1 s',
        'mb_per_s': 'corpus MiB (JSONL bytes / 2**20) / wall seconds, for every stage',
        'first_step': 'seconds from `bailong train pretrain` start until metrics.jsonl holds step 1 (polled every 0.2 s)',
        'before': 'old in-memory path (prepare_corpus, writing JSONL as the old CLI did; train from the raw JSONL files); '
                  'not run at 1 GiB, where it would need ~100 GB of RAM',
        'commands': {'prepare': 'bailong data prepare --input CORPUS --out PREP --workers W',
                     'tokenize': 'bailong data tokenize --tokenizer TOK --input PREP --out TOKENS --workers W',
                     'train': 'bailong train pretrain --set corpus=TOKENS --set model=bailong:tiny-llama --set base_tokenizer=LLAMA2 --set tokenizer=TOK --set steps=1 '
                              '--set eval_every=0 --set save_every=0 --set block_size=256 --set micro_batch=4 --out RUN',
                     'before_prepare': 'python -c BEFORE_PREPARE PREP CORPUS/*.jsonl: ' + BEFORE_PREPARE.strip(),
                     'before_train': 'the train command with --set corpus=[CORPUS/part-0000.jsonl, ...]'},
        'rows': rows, 'targets': targets(rows)}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[10, 100, 1000], help='corpus sizes in MiB (default: 10 100 1000)')
    ap.add_argument('--before-sizes', type=int, nargs='*', default=[10, 100],
                    help='sizes at which the old in-memory path is measured too (default: 10 100; never 1000: ~100 GB of RAM)')
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--add', type=int, default=27241, help="zh-TW pieces added to Llama 2's tokenizer (default: 27241, the paper's)")
    ap.add_argument('--tokenizer', default='', help='tokenizer dir to use instead of the extension made under --work')
    ap.add_argument('--work', default='/tmp/bailong_data_scale', help='corpora, tokenizer and outputs (corpora are reused)')
    ap.add_argument('--timeout', type=float, default=7200, help='seconds per command before it is stopped (default: 7200)')
    ap.add_argument('--json', default=str(Path(__file__).parent/'results'/'data_scale.json'))
    ap.add_argument('--keep', action='store_true', help='keep prepared data, tokens and runs under --work')
    args = ap.parse_args(argv)
    from bailong.data import shared_path
    src, work = shared_path('data/zh_tw/corpus.txt'), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    tok = Path(args.tokenizer) if args.tokenizer else extended_tokenizer(work, args.add)
    rows = []
    for mib in args.sizes:
        files = 16 if mib >= 1000 else 4
        corpus = work/f'corpus-{mib}MiB'
        print(f'{mib} MiB: building or reusing {corpus}', file=sys.stderr, flush=True)
        t = time.perf_counter(); info = make_corpus(src, corpus, mib, files)
        row = {'mib_asked': mib, 'corpus': info, 'build_s': round(time.perf_counter() - t, 1),
               'after': after(corpus, info, tok, work, args.workers, args.timeout)}
        if mib in args.before_sizes: row['before'] = before(corpus, info, tok, work, args.timeout)
        row['ratios_after_over_before'] = ratios(row)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # after every size: a long run keeps what it measured
        Path(args.json).write_text(json.dumps(summary(args, src, tok, rows), indent=1, ensure_ascii=False))
        if not args.keep:
            for d in work.glob(f'{corpus.name}-*'):
                if d.is_dir(): shutil.rmtree(d, ignore_errors=True)
    print(table(rows))
    print(json.dumps(targets(rows), indent=1))


if __name__ == '__main__': sys.exit(main())
