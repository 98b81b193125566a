"""GPU memory of the example 7B configs: will a run fit a T4 (16 GB), an A100 (40 GB), an H100 (80 GB)?

    python benchmarks/memory_table.py --json benchmarks/results/memory_h200.json     # one GPU, about 3 minutes

Each example config (`examples/*_7b*.yaml`) is loaded as the CLI loads it, then run for a few optimizer steps with the
engine's own pieces (`load_base_model`, `wrap_model`, `LMLoss`, `build_optimizer`, `loss_scaler`, `optimizer_step`)
on a random-weight model of the Llama-2-7B shape with the extended 59,241-token vocabulary (tied, as the configs say),
on random token blocks of the config's `block_size`, at the config's micro-batch and at others given by `--batches`.
Each config runs in its own process, so each peak is its own.

Measured: `torch.cuda.max_memory_allocated` over loading and the steps (the number that decides a fit, up to the
allocator's fragmentation, on any CUDA GPU: the weights, LoRA, activations and gradients are the same bytes
everywhere), `max_memory_reserved`, and the device memory in use after the last step (`mem_get_info`, which includes
the CUDA context and the paged optimizer's states that are resident on the GPU). Computed: the paged optimizer's
states (8 bytes per trained parameter for 32-bit Adam); they live in CUDA managed memory, which the driver pages out
to CPU RAM when the GPU is full, so they slow a tight run down rather than stop it. A card "fits" a row when the
peak allocated plus 1 GB (CUDA context and kernels) is under its usable memory: T4 15.1 GB, A100 39.4 GB, H100 79.1 GB.
The T4 rows are float16 (a T4 has no bfloat16); T4 speed is not measured here.
"""
import argparse, json, shutil, subprocess, sys, time
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_throughput import SHAPES, write_model, versions  # noqa: E402

CONFIGS = ('pretrain_llama2_7b.yaml', 'sft_llama2_7b.yaml', 'pretrain_llama2_7b_t4.yaml')
CARDS = {'T4 16 GB': 15.1, 'A100 40 GB': 39.4, 'H100 80 GB': 79.1}


def engine_config(path: Path, model_dir: str):
    "The example exactly as `bailong train` loads and checks it, on the random model."
    from bailong.train import load_config, check_config
    from bailong.pretrain import PretrainConfig
    from bailong.sft import SftConfig
    return check_config(load_config(PretrainConfig if path.name.startswith('pretrain') else SftConfig, path, model=model_dir))


def child(args):
    "One config, every micro-batch: print one RESULT line."
    from bailong.train import load_base_model, wrap_model, LMLoss, build_optimizer, loss_scaler, optimizer_step, autocast
    from bailong.embeddings import tie_embeddings
    cfg, dev, shape = engine_config(HERE.parent/'examples'/args.child, args.model_dir), 'cuda', SHAPES['llama2-7b']
    torch.manual_seed(0); t = time.perf_counter()
    model = load_base_model(cfg, args.model_dir, dev)
    if cfg.tie_embeddings: tie_embeddings(model)
    model = wrap_model(cfg, model, [])
    model.train()
    loss_fn, (opt, sched), scaler = LMLoss(model, cfg.loss_chunk), build_optimizer(cfg, model), loss_scaler(cfg, dev)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rec = {'config': args.child, 'compute_dtype': cfg.compute_dtype, 'block_size': cfg.block_size, 'lora_r': cfg.lora_r,
           'embedding_mode': cfg.embedding_mode, 'fused_kernels': cfg.fused_kernels, 'optimizer': cfg.optimizer,
           'load_s': round(time.perf_counter() - t, 1), 'trainable_params': trained,
           'optimizer_state_gb': trained * (8 if cfg.optimizer.endswith('32bit') or cfg.optimizer == 'adamw' else 2) / 1e9, 'runs': []}
    batches = sorted({cfg.micro_batch, *[int(b) for b in args.batches.split(',') if b]})
    for mb in batches:
        x = torch.randint(0, shape['vocab_size'], (mb, cfg.block_size), generator=torch.Generator().manual_seed(1)).to(dev)
        losses, skipped = [], 0
        try:
            for s in range(args.steps):
                if s == 1: torch.cuda.synchronize(); t0 = time.perf_counter()
                with autocast(cfg, dev): loss = loss_fn(x)
                scaler.scale(loss).backward()
                skipped += not optimizer_step(cfg, model, opt, sched, scaler); losses.append(loss.item())
            torch.cuda.synchronize(); secs = (time.perf_counter() - t0) / (args.steps - 1)
        except torch.OutOfMemoryError as e:
            rec['runs'].append({'micro_batch': mb, 'error': f'out of memory: {str(e)[:120]}'}); break
        free, total = torch.cuda.mem_get_info()
        rec['runs'].append({'micro_batch': mb, 'peak_allocated_gb': torch.cuda.max_memory_allocated() / 1e9,
                            'peak_reserved_gb': torch.cuda.max_memory_reserved() / 1e9, 'device_used_gb': (total - free) / 1e9,
                            'step_s': secs, 'tokens_per_s': mb * cfg.block_size / secs, 'losses': losses, 'skipped_steps': skipped,
                            'loss_scale': scaler.get_scale() if scaler.is_enabled() else None})
    print('RESULT ' + json.dumps(rec), flush=True)


def table(results) -> str:
    cards = list(CARDS)
    lines = ['| config | dtype | micro-batch | peak allocated GB (measured) | paged Adam states GB (computed) | ' + ' | '.join(cards) + ' |',
             '|---|---|---|---|---|' + '---|' * len(cards)]
    for r in results:
        for run in r.get('runs') or [{'micro_batch': '-', 'error': r.get('error', '?')}]:
            if 'error' in run:
                lines.append(f"| {r['config']} | {r.get('compute_dtype', '')} | {run['micro_batch']} | {run['error'][:60]} | | " + ' | ' * len(cards)); continue
            fit = ['fits' if run['peak_allocated_gb'] + 1 <= CARDS[c] else 'no' for c in cards]
            lines.append(f"| {r['config']} | {r['compute_dtype']} | {run['micro_batch']} | {run['peak_allocated_gb']:.1f} | "
                         f"{r['optimizer_state_gb']:.1f} | " + ' | '.join(fit) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--configs', default=','.join(CONFIGS), help='example YAML files (default: %(default)s)')
    ap.add_argument('--batches', default='1,2', help='micro-batches to measure besides each config\'s own (default: %(default)s)')
    ap.add_argument('--steps', type=int, default=4, help='optimizer steps per micro-batch (default: %(default)s)')
    ap.add_argument('--json', default=None, help='write the results here')
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    ap.add_argument('--model-dir', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child: return child(args)
    if not torch.cuda.is_available(): sys.exit('memory_table.py measures GPU memory: run it on a machine with a CUDA GPU')
    if args.steps < 2: ap.error('--steps: at least 2 (the first step is not timed)')
    t_start = time.perf_counter()
    d = write_model(SHAPES['llama2-7b'], 'cuda', torch.bfloat16)
    info = {'versions': versions(), 'write_model_s': round(time.perf_counter() - t_start, 1), 'cards_usable_gb': CARDS, 'steps': args.steps}
    results = []
    try:
        for name in args.configs.split(','):
            p = subprocess.run([sys.executable, __file__, '--child', name, '--model-dir', str(d), '--batches', args.batches,
                                '--steps', str(args.steps)], capture_output=True, text=True)
            line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT ')), None)
            results.append(json.loads(line[7:]) if line else {'config': name, 'runs': [],
                           'error': f'exit {p.returncode}: ' + (p.stderr.strip().splitlines() or ['?'])[-1][:300]})
            if not line: print(p.stderr[-3000:], file=sys.stderr)
            print(json.dumps(results[-1]), flush=True)
            if args.json: Path(args.json).write_text(json.dumps({**info, 'results': results}, indent=1))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(table(results))
    return results


if __name__ == '__main__':
    main()
