"""Answer generation throughput: one prompt at a time (the plain `generate` loop) vs bailong's batched path, on the same
prompts, greedy, in the same process.

    python benchmarks/generate_throughput.py                          # CPU: the quickstart's model, zh-TW bench prompts
    python benchmarks/generate_throughput.py --model bailong-quickstart/instruct
    python benchmarks/generate_throughput.py --shape llama2-7b        # GPU: Llama-2-7B shape (random weights), bf16

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
import argparse, json, platform, resource, sys, time
from pathlib import Path
import torch

SHAPES = {'llama2-7b': dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                            num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096)}


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
                                             dtype=torch.bfloat16))
    model = model.to(torch.bfloat16).eval()
    return model, prepare_tokenizer(model, tok), f'{args.shape} (random weights, bf16)'


def prompts(n: int) -> list[list[dict]]:
    "Real first-turn questions: the zh-TW bench, then MT-Bench, as single-turn conversations."
    from bailong.bench import read_questions
    qs = read_questions('bailong:zh_tw_bench') + read_questions('bailong:mt_bench')
    return [[{'role': 'user', 'content': q['turns'][0]}] for q in qs[:n]]


def timed(fn, dev):
    sync(dev); t = time.perf_counter()
    out = fn()
    sync(dev)
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shape', default='cpu', choices=['cpu', *SHAPES])
    ap.add_argument('--model', default='', help='CPU shape: a model dir or .gguf (default: the quickstart model, else SmolLM2)')
    ap.add_argument('--prompts', type=int, default=None, help='prompts answered by the batched path (default: 32 CPU, 128 GPU)')
    ap.add_argument('--loop-prompts', type=int, default=None, help='of those, answered one at a time too (default: 8)')
    ap.add_argument('--batch-size', type=int, nargs='+', default=None, help='one or more batch sizes (default: 16 CPU; 32 64 128 GPU)')
    ap.add_argument('--max-new-tokens', type=int, default=None, help='default: 64 CPU, 128 GPU')
    ap.add_argument('--json', default='', help='write the results here')
    args = ap.parse_args(argv)
    from bailong.bench import generate_loop, generate_batched
    dev = 'cuda' if torch.cuda.is_available() and args.shape != 'cpu' else 'cpu'
    if args.shape != 'cpu' and dev != 'cuda': sys.exit(f'--shape {args.shape} needs a CUDA GPU')
    gpu = dev == 'cuda'
    n, k = args.prompts or (128 if gpu else 32), args.loop_prompts or 8
    sizes, new = args.batch_size or ([32, 64, 128] if gpu else [16]), args.max_new_tokens or (128 if gpu else 64)
    if not 0 < k <= n: sys.exit(f'--loop-prompts {k}: expected 1..--prompts ({n})')
    model, tok, what = load(args, dev)
    convs = prompts(n)
    if len(convs) < n: sys.exit(f'--prompts {n}: only {len(convs)} bench questions are packaged')
    generate_batched(model, tok, convs[:2], 4, 2); generate_loop(model, tok, convs[:1], 4)  # warm-up: kernels, allocator
    if gpu: torch.cuda.reset_peak_memory_stats()
    (loop_texts, loop_tokens), loop_s = timed(lambda: generate_loop(model, tok, convs[:k], new), dev)
    loop_mem = torch.cuda.max_memory_allocated() if gpu else None
    rows = [dict(path='loop (bs 1)', prompts=k, generated_tokens=sum(loop_tokens), seconds=loop_s,
                 answers_per_s=k / loop_s, tokens_per_s=sum(loop_tokens) / loop_s, peak_gpu_mem_gib=loop_mem and loop_mem / 2**30)]
    for bs in sizes:
        if gpu: torch.cuda.reset_peak_memory_stats()
        (batch_texts, batch_tokens), batch_s = timed(lambda: generate_batched(model, tok, convs, new, bs), dev)
        batch_mem = torch.cuda.max_memory_allocated() if gpu else None
        rows.append(dict(path=f'batched (bs {bs})', prompts=n, generated_tokens=sum(batch_tokens), seconds=batch_s,
                         answers_per_s=n / batch_s, tokens_per_s=sum(batch_tokens) / batch_s, peak_gpu_mem_gib=batch_mem and batch_mem / 2**30,
                         ratio=sum(batch_tokens) / batch_s / (sum(loop_tokens) / loop_s),
                         identical=sum(a == b for a, b in zip(loop_texts, batch_texts[:k]))))
    print(f'model: {what}; device: {torch.cuda.get_device_name() if gpu else platform.processor() or "cpu"}; '
          f'max_new_tokens {new}; greedy')
    print(f"{'path':<16} {'prompts':>7} {'gen tokens':>10} {'seconds':>8} {'answers/s':>9} {'tokens/s':>9} {'x loop':>7} "
          f"{'identical':>9} {'peak GPU GiB':>12}")
    for r in rows:
        mem = f"{r['peak_gpu_mem_gib']:.1f}" if r['peak_gpu_mem_gib'] else '-'
        same = f"{r['identical']}/{k}" if 'identical' in r else '-'
        print(f"{r['path']:<16} {r['prompts']:>7} {r['generated_tokens']:>10} {r['seconds']:>8.1f} {r['answers_per_s']:>9.2f} "
              f"{r['tokens_per_s']:>9.1f} {r.get('ratio', 1.0):>6.1f}x {same:>9} {mem:>12}")
    print(f'identical: greedy answers equal to the loop\'s on its {k} prompts; peak GPU memory is max_memory_allocated')
    print(f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB')
    result = dict(shape=args.shape, model=what, device=torch.cuda.get_device_name() if gpu else 'cpu', max_new_tokens=new,
                  rows=rows, best_ratio_tokens_per_s=max(r['ratio'] for r in rows[1:]), compared=k,
                  peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  versions=dict(python=platform.python_version(), torch=torch.__version__,
                                transformers=__import__('transformers').__version__))
    if args.json: Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == '__main__':
    main()
