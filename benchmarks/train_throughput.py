"""QLoRA training throughput: the peer stack exactly as users configure it vs bailong's path, same model, same batch, same run.

    python benchmarks/train_throughput.py                      # CPU: a small random Llama, a few minutes
    python benchmarks/train_throughput.py --shape llama2-7b    # GPU: Llama-2-7B shape, vocab 59,241, S=2048, B=2

Peer: transformers + peft + bitsandbytes, 4-bit NF4 (double quant, bf16 compute), `prepare_model_for_kbit_training`
(gradient checkpointing), LoRA r=128 on all linear layers, `modules_to_save=["embed_tokens", "lm_head"]`,
PagedAdamW32bit. bailong: `load_base_model` + `wrap_model` + `LMLoss` from `bailong.train`, the same LoRA, the same
embeddings trained (`embedding_mode: full`), the same optimizer. On the CPU both use torch AdamW (paged optimizers
need CUDA) and float32 compute, as bailong's CPU runs do.

Every variant runs in its own process on one random-weight model written once, with the same random token blocks;
tokens/s is measured over `--steps` optimizer steps after `--warmup`. Peak GPU memory is torch's
`max_memory_allocated` (paged optimizer states live in CUDA managed memory and are not in it, for either stack; the
table also gives the device memory in use after the last step). MFU counts 6·N + 12·L·H·S FLOPs per token (N = weights
that multiply activations, including the head) against a bf16 matrix product timed on the same GPU.
Prints a table and writes JSON (`--json`). Measured: `benchmarks/results/` (H200: 2.60x the peer at 0.96x its memory with
micro-batch 3 and float32 masters, 2.7x at 0.85x with micro-batch 4 and bf16 trained parameters; CPU: parity).
"""
import argparse, json, os, platform, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import torch

SHAPES = {
    'cpu-small': dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                      vocab_size=8192, max_position_embeddings=1024, seq=256, batch=2, r=16, chunk=0),
    # a few seconds a variant: the CPU dry run of benchmarks/gpu_suite.py
    'tiny': dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                 vocab_size=2048, max_position_embeddings=256, seq=64, batch=2, r=8, chunk=0),
    'llama2-7b': dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                      vocab_size=59241, max_position_embeddings=4096, seq=2048, batch=2, r=128, chunk=4096),
}
# bailong variants: PretrainConfig settings, and the micro-batches to time in one process. The -sft variants train as
# examples/sft_llama2_7b.yaml does (LoRA on the embeddings and head too), against the peer recipe without
# modules_to_save; -compile compiles each decoder layer and -ckpt28 leaves the last 4 of 32 layers un-checkpointed (both
# untried levers, off by default). cuda_cfg applies on a GPU only, so the same variant also runs on the CPU.
VARIANTS = {
    'peer': {},
    'peer-sft': dict(peer_sft=True),
    'bailong': dict(cfg=dict(trainable_dtype='float32')),
    'bailong-bf16': dict(cfg=dict(trainable_dtype='bfloat16'), gpu_only=True),
    'bailong-fused': dict(cfg=dict(trainable_dtype='float32', fused_kernels=True), batches=(2, 4), gpu_only=True),
    'bailong-bf16-fused': dict(cfg=dict(trainable_dtype='bfloat16', fused_kernels=True), batches=(2, 4), gpu_only=True),
    'bailong-sft': dict(cfg=dict(trainable_dtype='float32', embedding_mode='lora'), cuda_cfg=dict(fused_kernels=True)),
    'bailong-bf16-fused-compile': dict(cfg=dict(trainable_dtype='bfloat16', fused_kernels=True), compile=True, gpu_only=True),
    'bailong-bf16-fused-ckpt28': dict(cfg=dict(trainable_dtype='bfloat16', fused_kernels=True), no_ckpt_last=4, gpu_only=True),
}


def model_flops_per_token(s: dict) -> float:
    h, i, l, v = s['hidden_size'], s['intermediate_size'], s['num_hidden_layers'], s['vocab_size']
    kv = h * s['num_key_value_heads'] // s['num_attention_heads']
    n = l * (2 * h * h + 2 * h * kv + 3 * h * i) + v * h
    return 6 * n + 12 * l * h * s['seq']


def matmul_peak(dev: str) -> float:
    "FLOP/s of a large matrix product in the compute dtype (bf16 on a GPU, float32 on the CPU)."
    n, dt = (8192, torch.bfloat16) if dev == 'cuda' else (2048, torch.float32)
    a, b = torch.randn(n, n, device=dev, dtype=dt), torch.randn(n, n, device=dev, dtype=dt)
    for _ in range(3): a @ b
    sync(dev); t = time.perf_counter(); reps = 20 if dev == 'cuda' else 5
    for _ in range(reps): a @ b
    sync(dev)
    return 2 * n ** 3 * reps / (time.perf_counter() - t)


def sync(dev):
    if dev == 'cuda': torch.cuda.synchronize()


def write_model(shape: dict, dev: str, dtype) -> Path:
    "A random-weight Llama of `shape`, saved once for every variant to load."
    from transformers import LlamaConfig, LlamaForCausalLM
    keys = ('hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size',
            'max_position_embeddings')
    h, i, l, v = shape['hidden_size'], shape['intermediate_size'], shape['num_hidden_layers'], shape['vocab_size']
    size, shm = (l * (4 * h * h + 3 * h * i) + 2 * v * h) * torch.finfo(dtype).bits // 8, Path('/dev/shm')
    root = shm if shm.exists() and shutil.disk_usage(shm).free > 1.5 * size else None  # RAM is faster to reload from
    d = Path(tempfile.mkdtemp(prefix='bailong-bench-', dir=root))
    torch.manual_seed(0); old = torch.get_default_dtype(); torch.set_default_dtype(dtype)
    with torch.device(dev): model = LlamaForCausalLM(LlamaConfig(**{k: shape[k] for k in keys}, tie_word_embeddings=False))
    torch.set_default_dtype(old)
    model.save_pretrained(d); del model
    if dev == 'cuda': torch.cuda.empty_cache()
    return d


def peer_model(d, shape, dev, dtype, sft=False):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    model = AutoModelForCausalLM.from_pretrained(d, quantization_config=q, dtype=dtype, device_map={'': dev})
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, LoraConfig(r=shape['r'], lora_alpha=2 * shape['r'], lora_dropout=0.05, target_modules='all-linear',
                                             modules_to_save=None if sft else ['embed_tokens', 'lm_head'], task_type='CAUSAL_LM'))
    if dev == 'cpu':
        from bailong.train import keep_4bit_differentiable
        keep_4bit_differentiable(model)  # or the CPU kernel drops LoRA gradients (see the training-engine chapter)
    return model, lambda x: model(input_ids=x, labels=x).loss


def bailong_model(d, shape, dev, dtype, settings):
    from bailong.train import TrainConfig, load_base_model, wrap_model, LMLoss, autocast
    cfg = TrainConfig(**{**dict(model=str(d), compute_dtype=str(dtype).split('.')[-1], block_size=shape['seq'], lora_r=shape['r'],
                                lora_alpha=2 * shape['r'], lora_dropout=0.05, embedding_mode='full', gradient_checkpointing=True,
                                loss_chunk=shape['chunk']), **settings})
    model = wrap_model(cfg, load_base_model(cfg, str(d), dev), [])
    loss = LMLoss(model, cfg.loss_chunk)
    def step(x):
        with autocast(cfg, dev): return loss(x)
    return model, step


def levers(model, v: dict):
    "The untried levers: compile each decoder layer; stop checkpointing the last `no_ckpt_last` layers (more memory, less recompute)."
    from transformers.modeling_layers import GradientCheckpointingLayer
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for layer in layers[len(layers) - v.get('no_ckpt_last', 0):]: layer.gradient_checkpointing = False
    if v.get('compile'):
        for layer in layers: layer.compile()


def child(args):
    "Build one variant, time it, print one RESULT line."
    shape, dev = SHAPES[args.shape], 'cuda' if torch.cuda.is_available() else 'cpu'
    dtype, v = (torch.bfloat16 if dev == 'cuda' else torch.float32), VARIANTS[args.variant]
    t = time.perf_counter(); torch.manual_seed(0)
    if args.variant.startswith('peer'): model, step = peer_model(args.model_dir, shape, dev, dtype, v.get('peer_sft', False))
    else: model, step = bailong_model(args.model_dir, shape, dev, dtype, {**v['cfg'], **(v.get('cuda_cfg', {}) if dev == 'cuda' else {})})
    levers(model, v)
    model.train()  # from_pretrained leaves eval mode, where gradient checkpointing and dropout are off
    params = [p for p in model.parameters() if p.requires_grad]
    if dev == 'cuda':
        import bitsandbytes as bnb
        opt = bnb.optim.PagedAdamW32bit(params, lr=2e-5)
    else: opt = torch.optim.AdamW(params, lr=2e-5)
    rec = {'variant': args.variant, 'load_s': round(time.perf_counter() - t, 1), 'trainable_params': sum(p.numel() for p in params),
           'trainable_dtypes': sorted({str(p.dtype).split('.')[-1] for p in params}), 'runs': []}

    def one(x):
        loss = step(x); loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
        return loss.item()

    batches = [int(b) for b in args.batches.split('/')] if args.batches else v.get('batches', (shape['batch'],))
    for batch in batches:
        x = torch.randint(0, shape['vocab_size'], (batch, shape['seq']), generator=torch.Generator().manual_seed(1)).to(dev)
        try:
            losses = [one(x) for _ in range(args.warmup)]
            sync(dev)
            if dev == 'cuda': torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            losses += [one(x) for _ in range(args.steps)]
            sync(dev); secs = time.perf_counter() - t0
        except torch.OutOfMemoryError as e:
            rec['runs'].append({'batch': batch, 'error': f'out of memory: {str(e)[:120]}'}); break
        run = {'batch': batch, 'tokens_per_s': batch * shape['seq'] * args.steps / secs, 'step_s': secs / args.steps,
               'first_loss': losses[0], 'last_loss': losses[-1]}
        if dev == 'cuda':
            free, total = torch.cuda.mem_get_info()
            run.update(peak_gb=torch.cuda.max_memory_allocated() / 1e9, reserved_gb=torch.cuda.max_memory_reserved() / 1e9,
                       device_used_gb=(total - free) / 1e9)
        else: run['peak_rss_gb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        rec['runs'].append(run)
    print('RESULT ' + json.dumps(rec), flush=True)


def versions() -> dict:
    from importlib.metadata import version, PackageNotFoundError
    out = {'python': platform.python_version()}
    for name in ('torch', 'transformers', 'peft', 'bitsandbytes', 'liger-kernel'):
        try: out[name] = version(name)
        except PackageNotFoundError: out[name] = None
    out['device'] = torch.cuda.get_device_name() if torch.cuda.is_available() else f'cpu ({os.cpu_count()} cores)'
    return out


def table(results: list, peak: float, fpt: float) -> str:
    "Markdown table; ratios are against the peer's first run (peer-sft's for -sft rows) in the same invocation."
    runs = [(r['variant'], run) for r in results for run in (r['runs'] or [{'error': r.get('error', '?')}])]
    base = lambda sft: next((run for name, run in runs if name == ('peer-sft' if sft else 'peer') and 'tokens_per_s' in run), None)
    mem = 'peak_gb' if any('peak_gb' in run for _, run in runs) else 'peak_rss_gb'
    lines = [f"| variant | B | tokens/s | × peer | MFU | {mem} | × peer mem | first loss | last loss |", '|' + '---|' * 9]
    for name, run in runs:
        if 'error' in run: lines.append(f"| {name} | {run.get('batch', '')} | {run['error'][:80]} | | | | | | |"); continue
        peer = base(name.endswith('-sft'))  # SFT settings against the peer's SFT recipe
        ratio = f"{run['tokens_per_s'] / peer['tokens_per_s']:.2f}" if peer else '–'
        mratio = f"{run[mem] / peer[mem]:.2f}" if peer else '–'
        lines.append(f"| {name} | {run['batch']} | {run['tokens_per_s']:,.0f} | {ratio} | {run['tokens_per_s'] * fpt / peak:.1%} | "
                     f"{run[mem]:.2f} | {mratio} | {run['first_loss']:.4f} | {run['last_loss']:.4f} |")
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shape', choices=SHAPES, default=None, help='model shape (default: llama2-7b on a GPU, cpu-small otherwise)')
    ap.add_argument('--variants', default=','.join(VARIANTS),
                    help='comma-separated, from: ' + ', '.join(VARIANTS) + '; NAME:2/4 times micro-batches 2 and 4 instead of its own')
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--budget', type=float, default=3600, help='seconds; variants that would start after it are skipped')
    ap.add_argument('--json', default=None, help='write results here')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--batches', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--model-dir', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    gpu = torch.cuda.is_available()
    args.shape = args.shape or ('llama2-7b' if gpu else 'cpu-small')
    if args.child: args.variant = args.child; return child(args)
    specs = [n.partition(':') for n in args.variants.split(',') if n]
    t_start, shape, dev = time.perf_counter(), SHAPES[args.shape], 'cuda' if gpu else 'cpu'
    if bad := [n for n, _, _ in specs if n not in VARIANTS]: ap.error(f"--variants: unknown {bad}; choose from {', '.join(VARIANTS)}")
    specs = [(n, b) for n, _, b in specs if gpu or not VARIANTS[n].get('gpu_only')]
    peak = matmul_peak(dev)
    d = write_model(shape, dev, torch.bfloat16 if gpu else torch.float32)
    info = {'shape': args.shape, **{k: v for k, v in shape.items()}, 'warmup': args.warmup, 'steps': args.steps,
            'matmul_peak_tflops': peak / 1e12, 'model_flops_per_token': model_flops_per_token(shape), 'versions': versions(),
            'write_model_s': round(time.perf_counter() - t_start, 1)}
    print(json.dumps(info), flush=True)
    results = []
    try:
        for name, batches in specs:
            left = args.budget - (time.perf_counter() - t_start)
            if left < 30: results.append({'variant': name, 'error': 'skipped: out of --budget', 'runs': []}); continue
            cmd = [sys.executable, __file__, '--child', name, '--model-dir', str(d), '--shape', args.shape,
                   '--warmup', str(args.warmup), '--steps', str(args.steps)] + (['--batches', batches] if batches else [])
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
                line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
                results.append(json.loads(line[7:]) if line else {'variant': name, 'runs': [],
                               'error': f'exit {p.returncode}: ' + (p.stderr.strip().splitlines() or ['?'])[-1][:300]})
                if not line: print(p.stderr[-3000:], file=sys.stderr)
            except subprocess.TimeoutExpired:
                results.append({'variant': name, 'error': 'timed out (--budget)', 'runs': []})
            print(json.dumps(results[-1]), flush=True)
            if args.json: Path(args.json).write_text(json.dumps({**info, 'results': results}, indent=1))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(table(results, peak, model_flops_per_token(shape)))
    return results


if __name__ == '__main__':
    main()
