#!/usr/bin/env python3
"""Zip-tie initialisation speed: bailong's vectorised `resize_and_init` vs a per-token Python loop, same run.

    python benchmarks/init_speed.py [--json init_speed.json]

A random Llama-2-7B-shaped embedding (4,096 wide, untied head; one small layer so it fits any machine) is resized
from 32,000 to 59,241 rows with a real 32,000-piece SentencePiece tokenizer (Llama 2's with $BAILONG_SHARED, else
Mistral 7B's) extended by 27,241 zh-TW pieces learned from the packaged sample, and the 27,241 new rows
of both embedding matrices are initialised. Prints a table, then JSON.
"""
import argparse, copy, json, os, sys, tempfile, time
from pathlib import Path
import torch
from bailong.data import sample_path, sentencepiece_base
from bailong.embeddings import new_token_ids, resize_and_init
from bailong.train import tiny_llama
from bailong.tokenizer import Extension, extend_tokenizer, load_base, load_hf_tokenizer, save_extension


def loop_init(model, base_tok, new_tok):
    "The obvious implementation: one Python iteration per new token."
    ids = new_token_ids(base_tok, new_tok)
    old_in = model.get_input_embeddings().weight[:len(base_tok)].detach().clone()
    old_out = model.get_output_embeddings().weight[:len(base_tok)].detach().clone()
    model.resize_token_embeddings(len(new_tok), mean_resizing=False)
    model_bpe = base_tok.backend_tokenizer.model
    with torch.no_grad():
        for i, t in zip(ids, new_tok.convert_ids_to_tokens(ids)):
            parts = [p.id for p in model_bpe.tokenize(t)]
            model.get_input_embeddings().weight[i] = old_in[parts].mean(0)
            model.get_output_embeddings().weight[i] = old_out[parts].mean(0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--json', default='init_speed.json')
    ap.add_argument('--repeats', type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        base = load_base(sentencepiece_base())
        t0 = load_hf_tokenizer(save_extension(Extension(base, {}, proto=base.proto), Path(d)/'base'))
        t1 = load_hf_tokenizer(save_extension(extend_tokenizer(base, sample_path(), 27241), Path(d)/'ext'))
    model = tiny_llama(32000, hidden_size=4096, intermediate_size=256, num_hidden_layers=1, num_attention_heads=32,
                       num_key_value_heads=32)  # Llama-2-7B's embedding width on a one-layer body: init time is all embedding
    times = {}
    for name, fn in [('bailong resize_and_init', lambda m: resize_and_init(m, t0, t1)), ('per-token loop', lambda m: loop_init(m, t0, t1))]:
        for _ in range(args.repeats):  # best of N, each on a fresh copy of the model
            m = copy.deepcopy(model)
            start = time.perf_counter(); fn(m); times[name] = min(times.get(name, 1e9), time.perf_counter() - start)
            if name.startswith('bailong'): ref = m.get_input_embeddings().weight[32000:].clone()
            else: assert torch.allclose(ref, m.get_input_embeddings().weight[32000:], atol=1e-6), 'the two implementations disagree'
            del m
    print(f"{'implementation':<26}{'seconds':>9}{'vs loop':>9}")
    for k, v in times.items(): print(f"{k:<26}{v:>9.2f}{times['per-token loop'] / v:>8.1f}x")
    result = {'repeats': args.repeats, 'rows_initialised': 27241, 'width': 4096, 'rows_total': len(t1), 'threads': torch.get_num_threads(),
              'cpu_count': os.cpu_count(), 'seconds': times, 'speedup_vs_loop': times['per-token loop'] / times['bailong resize_and_init']}
    Path(args.json).write_text(json.dumps(result, indent=1)); print(json.dumps(result))


if __name__ == '__main__': sys.exit(main())
