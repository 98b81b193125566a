"""Answer generation throughput: one prompt at a time (the plain `generate` loop) vs bailong's batched path, on the same
prompts, greedy, in the same process.

    python benchmarks/generate_throughput.py                          # CPU: the quickstart's model, zh-TW bench prompts
    python benchmarks/generate_throughput.py --model bailong-quickstart/instruct
    python benchmarks/generate_throughput.py --shape llama2-7b        # GPU: Llama-2-7B shape (random weights), bf16
    python benchmarks/generate_throughput.py --shape llama2-7b --paths loop,batched,cb,vllm --batch-size 128

`--paths` adds transformers' continuous batching (`cb`: `model.generate_batch` on the same token ids, greedy) and vLLM
(`vllm`: the model saved to disk, `LLM.chat`, temperature 0; run last, after the HF model is freed). A path that cannot
run (vLLM not installed, no CUDA) gets a row with its error instead of stopping the others. Agreement with the loop is
reported per path: answers identical, the token position of the first difference (tokens of the decoded answers,
re-encoded; None where identical) and the share of answers whose first 32 tokens are identical. `--dtype float32` on a
small model is the check that the paths agree exactly when arithmetic does not get in the way.

Both paths are `bailong.bench.generate_loop` / `generate_batched`: greedy, the model's chat template, EOS ends an
answer. The loop answers the first `--loop-prompts` prompts (its tokens/s does not depend on how many it answers); the
batched path answers all `--prompts`, and its answers to the loop's prompts are compared text for text. Generated
tokens count up to and including EOS. On the CPU the quickstart's model (SmolLM2-135M-Instruct extended, pre-trained
and fine-tuned by `bailong quickstart`, or the plain SmolLM2 if no quickstart has run) answers real zh-TW bench
questions in float32, where greedy text must be identical. The 7B shape has random weights: every answer runs to
`--max-new-tokens`, which is what a throughput measure wants, but near-tied logits in bf16 can make batched and
single answers part ways, so the table reports how many are identical rather than requiring it.
Prints a table and writes JSON (`--json`); results measured here are in `benchmarks/results/`.
Target (issue 11): on a GPU, batched >= 25x the loop's generated tokens/s. Measured on an H200 (7B shape, bf16, 128
new tokens): the loop 24.6 tokens/s; batched 14.8x at bs 32, 25.2x at bs 64, 47.1x at bs 128 (36 GiB peak). CPU (2 cores,
the quickstart's model, 48 new tokens): batched at 16 7.8x the loop, identical answers.
"""
import argparse, json, platform, resource, shutil, sys, tempfile, time
from pathlib import Path
import torch

SHAPES = {'llama2-7b': dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                            num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096),
          # random weights, small enough for a CPU dry run of every path (benchmarks/gpu_suite.py --dry-run)
          'tiny': dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=4, vocab_size=32000, max_position_embeddings=1024)}
PATHS = ('loop', 'batched', 'cb', 'vllm')


def sync(dev):
    if dev == 'cuda': torch.cuda.synchronize()


def load(args, dev):
    "The model, its tokenizer ready for batched generation, and what it is, for the table."
    from bailong.bench import load_answer_model, prepare_tokenizer
    if args.shape == 'cpu':
        from bailong.tokenizer import smollm2_gguf
        src = args.model or ('bailong-quickstart/instruct' if Path('bailong-quickstart/instruct/config.json').exists() else str(smollm2_gguf()))
        return *load_answer_model(src, 'float32', dev), f'{src} (float32)'
    from transformers import LlamaConfig, LlamaForCausalLM
    from bailong.data import sentencepiece_base
    from bailong.tokenizer import load_hf_tokenizer
    from bailong.sft import DEFAULT_CHAT_TEMPLATE
    tok = load_hf_tokenizer(sentencepiece_base())  # a Llama-family 32,000-piece tokenizer: Llama 2's with $BAILONG_SHARED
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    torch.manual_seed(0)
    with torch.device(dev):
        model = LlamaForCausalLM(LlamaConfig(**SHAPES[args.shape], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                             dtype=getattr(torch, args.dtype)))
    model = model.to(getattr(torch, args.dtype)).eval()
    return model, prepare_tokenizer(model, tok), f'{args.shape} (random weights, {args.dtype})'


def prompts(n: int) -> list[list[dict]]:
    "Real first-turn questions: the zh-TW bench, then MT-Bench, as single-turn conversations."
    from bailong.bench import read_questions
    qs = read_questions('bailong:zh_tw_bench') + read_questions('bailong:mt_bench')
    return [[{'role': 'user', 'content': q['turns'][0]}] for q in qs[:n]]


def generate_cb(model, tok, convs, new: int) -> tuple[list[str], list[int]]:
    "Greedy answers through transformers' continuous batching (`generate_batch`), in the order of `convs`."
    from transformers import GenerationConfig
    from bailong.bench import _end_ids
    ids = [tok.apply_chat_template(c, add_generation_prompt=True, return_dict=True)['input_ids'] for c in convs]
    ends = _end_ids(model, tok)
    cfg = GenerationConfig(max_new_tokens=new, do_sample=False, eos_token_id=ends, pad_token_id=tok.pad_token_id)
    out = model.generate_batch(inputs=ids, generation_config=cfg, progress_bar=False)
    texts, counts = [], []
    for r in sorted(out.values(), key=lambda r: int(r.request_id.rsplit('_', 1)[-1])):  # ids are req_0, req_1, ... in input order
        if r.error: raise RuntimeError(f'generate_batch: {r.error}')
        n = next((i + 1 for i, t in enumerate(r.generated_tokens) if t in ends), len(r.generated_tokens))
        texts.append(tok.decode(r.generated_tokens[:n], skip_special_tokens=True).strip()); counts.append(n)
    return texts, counts


def generate_vllm(model_dir: str, dtype: str, convs, new: int, bs: int) -> tuple[list[str], list[int]]:
    "Greedy answers from vLLM on the saved model, its KV cache sized so that `bs` answers run at once."
    from vllm import LLM, SamplingParams
    llm = LLM(model=model_dir, dtype=dtype, seed=0, max_num_seqs=bs, gpu_memory_utilization=0.6)
    generate_vllm.load_s = time.perf_counter()
    outs = llm.chat(convs, SamplingParams(temperature=0, max_tokens=new), use_tqdm=False)
    return [o.outputs[0].text.strip() for o in outs], [len(o.outputs[0].token_ids) for o in outs]


def agreement(tok, ref: list[str], texts: list[str], k: int = 32) -> dict:
    "How closely answers follow the loop's: identical, first differing token (None: identical), share equal on the first k."
    enc = lambda t: tok(t, add_special_tokens=False)['input_ids']
    firsts, same_k = [], 0
    for a, b in zip(map(enc, ref), map(enc, texts)):
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None if len(a) == len(b) else min(len(a), len(b)))
        firsts.append(i); same_k += a[:k] == b[:k]
    return {'identical': sum(i is None for i in firsts), 'first_diff_token': firsts, f'share_first_{k}_identical': same_k / len(firsts)}


def timed(fn, dev):
    sync(dev); t = time.perf_counter()
    out = fn()
    sync(dev)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shape', default='cpu', choices=['cpu', *SHAPES])
    ap.add_argument('--model', default='', help='CPU shape: a model dir or .gguf (default: the quickstart model, else SmolLM2)')
    ap.add_argument('--dtype', default=None, choices=['bfloat16', 'float32'], help='default: bfloat16 on a GPU, float32 on the CPU')
    ap.add_argument('--paths', default='loop,batched', help='comma-separated, from: ' + ', '.join(PATHS))
    ap.add_argument('--prompts', type=int, default=None, help='prompts answered by the batched path (default: 32 CPU, 128 GPU)')
    ap.add_argument('--loop-prompts', type=int, default=None, help='of those, answered one at a time too (default: 8)')
    ap.add_argument('--batch-size', type=int, nargs='+', default=None, help='one or more batch sizes (default: 16 CPU; 32 64 128 GPU)')
    ap.add_argument('--max-new-tokens', type=int, default=None, help='default: 64 CPU, 128 GPU')
    ap.add_argument('--json', default='', help='write the results here')
    args = ap.parse_args(argv)
    from bailong.bench import generate_loop, generate_batched
    gpu = torch.cuda.is_available() and args.shape != 'cpu'
    dev = 'cuda' if gpu else 'cpu'
    if args.shape == 'llama2-7b' and not gpu: sys.exit(f'--shape {args.shape} needs a CUDA GPU')
    args.dtype = args.dtype or ('bfloat16' if gpu else 'float32')
    paths = [p for p in args.paths.split(',') if p]
    if bad := sorted(set(paths) - set(PATHS)): sys.exit(f"--paths: unknown {bad}; choose from {', '.join(PATHS)}")
    n, k = args.prompts or (128 if gpu else 32), args.loop_prompts or 8
    sizes, new = args.batch_size or ([32, 64, 128] if gpu else [16]), args.max_new_tokens or (128 if gpu else 64)
    if not 0 < k <= n: sys.exit(f'--loop-prompts {k}: expected 1..--prompts ({n})')
    model, tok, what = load(args, dev)
    convs = prompts(n)
    if len(convs) < n: sys.exit(f'--prompts {n}: only {len(convs)} bench questions are packaged')
    generate_batched(model, tok, convs[:2], 4, 2); generate_loop(model, tok, convs[:1], 4)  # warm-up: kernels, allocator
    loop_texts, rows = None, []

    def row(path, fn, prompts):
        "Time one path, compare its answers with the loop's; a path that fails gets its error, the others still run."
        if gpu: torch.cuda.reset_peak_memory_stats()
        try: (texts, tokens), secs = timed(fn, dev)
        except Exception as e:
            rows.append(dict(path=path, error=f'{type(e).__name__}: {str(e)[:300]}')); print(rows[-1], flush=True); return
        mem = torch.cuda.max_memory_allocated() if gpu and path != 'vllm' else None
        r = dict(path=path, prompts=prompts, generated_tokens=sum(tokens), seconds=secs, answers_per_s=prompts / secs,
                 tokens_per_s=sum(tokens) / secs, peak_gpu_mem_gib=mem and mem / 2**30)
        if loop_texts is not None:
            r.update(ratio=r['tokens_per_s'] / rows[0]['tokens_per_s'], **agreement(tok, loop_texts, texts[:k]))
        rows.append(r); print(json.dumps({k_: v for k_, v in r.items() if k_ != 'first_diff_token'}), flush=True)
        return texts

    if 'loop' in paths or len(paths) > 1:  # the reference every other path is compared with
        loop_texts = row('loop (bs 1)', lambda: generate_loop(model, tok, convs[:k], new), k)
    if 'batched' in paths:
        for bs in sizes: row(f'batched (bs {bs})', lambda: generate_batched(model, tok, convs, new, bs), n)
    if 'cb' in paths: row('continuous batching', lambda: generate_cb(model, tok, convs, new), n)
    if 'vllm' in paths:
        d = Path(tempfile.mkdtemp(prefix='bailong-vllm-', dir='/dev/shm' if Path('/dev/shm').exists() else None))
        try:
            model.save_pretrained(d); tok.save_pretrained(d)
            del model
            if gpu: torch.cuda.empty_cache()
            row('vllm', lambda: generate_vllm(str(d), args.dtype, convs, new, max(sizes)), n)
        finally: shutil.rmtree(d, ignore_errors=True)
    device = torch.cuda.get_device_name() if gpu else platform.processor() or 'cpu'
    print(f'model: {what}; device: {device}; max_new_tokens {new}; greedy')
    print(f"{'path':<20} {'prompts':>7} {'gen tokens':>10} {'seconds':>8} {'answers/s':>9} {'tokens/s':>9} {'x loop':>7} "
          f"{'identical':>9} {'same 32':>7} {'peak GPU GiB':>12}")
    for r in rows:
        if 'error' in r: print(f"{r['path']:<20} {r['error'][:100]}"); continue
        mem = f"{r['peak_gpu_mem_gib']:.1f}" if r['peak_gpu_mem_gib'] else '-'
        same = f"{r['identical']}/{k}" if 'identical' in r else '-'
        same32 = f"{r['share_first_32_identical']:.0%}" if 'identical' in r else '-'
        print(f"{r['path']:<20} {r['prompts']:>7} {r['generated_tokens']:>10} {r['seconds']:>8.1f} {r['answers_per_s']:>9.2f} "
              f"{r['tokens_per_s']:>9.1f} {r.get('ratio', 1.0):>6.1f}x {same:>9} {same32:>7} {mem:>12}")
    print(f"identical: greedy answers equal to the loop's on its {k} prompts; same 32: their first 32 tokens equal; "
          'peak GPU memory is max_memory_allocated (not for vLLM, which takes a share of the card up front)')
    print(f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB')
    ratios = [r['ratio'] for r in rows[1:] if 'ratio' in r]
    result = dict(shape=args.shape, model=what, dtype=args.dtype, device=device, max_new_tokens=new, rows=rows,
                  best_ratio_tokens_per_s=max(ratios, default=None), compared=k,
                  peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  versions=dict(python=platform.python_version(), torch=torch.__version__,
                                transformers=__import__('transformers').__version__))
    if args.json: Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == '__main__':
    main()
