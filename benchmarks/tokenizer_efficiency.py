#!/usr/bin/env python3
"""Tokenizer extension benchmark: the SentencePiece base vs the naive merge vs bailong, at several budgets.

    python benchmarks/tokenizer_efficiency.py [--base tokenizer.model] [--corpus corpus.txt] [--sizes 8000 16000 27241]
                                              [--ablation] [--json results.json]

The base defaults to Llama 2's tokenizer when $BAILONG_SHARED holds it (else Mistral 7B's, from mistral-common); the
corpus to $BAILONG_SHARED's data/zh_tw/corpus.txt (else the packaged LibreOffice sample).
Measures, for each tokenizer: (a) tokens/char on a held-out 2 % of the corpus (the extensions are trained on the
other 98 %); (b) efficiency = gold words / tokens on general-domain zh-TW (UD Chinese-GSD dev);
English tokens/char on the MT-Bench questions; extension wall time; and fast-tokenizer English encode throughput
relative to the base, measured in the same run. With --ablation, also bailong at the largest size with one setting
changed at a time (no lexicon, flatter/steeper lexicon, a lighter lexicon, fewer/more single characters, a quarter of
the corpus with and without the lexicon). Prints a table, then writes JSON.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import sentencepiece as spm
from bailong.data import read_corpus, train_valid_split, shared_path, sample_path, sentencepiece_base
from bailong.tokenizer import ExtendConfig, extend_tokenizer, load_base, save_extension, Extension


def encode_seconds(fast, texts):
    t0 = time.perf_counter(); fast.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    return time.perf_counter() - t0


def throughput_ratios(fasts, texts, rounds=7):
    "Median over rounds of (base time / tokenizer time); every round times all tokenizers back to back, base first."
    ratios = [[] for _ in fasts]
    for _ in range(rounds):
        t = [encode_seconds(f, texts) for f in fasts]
        for i, ti in enumerate(t): ratios[i].append(t[0] / ti)
    chars = sum(map(len, texts))
    return [sorted(r)[len(r) // 2] for r in ratios], chars / encode_seconds(fasts[0], texts)


def measure(name, sp, held_out, ud, english, seconds=None):
    words = sum(len(r['gold_tokens']) for r in ud)
    return {'tokenizer': name, 'vocab': sp.get_piece_size(),
            'heldout_tokens_per_char': sum(len(sp.encode(s)) for s in held_out) / sum(map(len, held_out)),
            'ud_efficiency': words / sum(len(sp.encode(r['text'])) for r in ud),
            'english_tokens_per_char': sum(len(sp.encode(s)) for s in english) / sum(map(len, english)),
            'extend_seconds': seconds}


# one ExtendConfig change at a time from the default (lexicon_chars 2.3 M = the whole training corpus, power 0.6,
# char_share 0.185); 'quarter.txt' is the first quarter of the training lines (too few pieces for 27,241 without the
# lexicon, so 8,000 there)
ABLATIONS = [('no lexicon', 'train.txt', {'lexicon': False}),
             ('lexicon power 0.4', 'train.txt', {'lexicon_power': 0.4}),
             ('lexicon power 1.0', 'train.txt', {'lexicon_power': 1.0}),
             ('lexicon 1.15 M chars', 'train.txt', {'lexicon_chars': 1_150_000}),
             ('char_share 0.1', 'train.txt', {'char_share': 0.1}),
             ('char_share 0.3', 'train.txt', {'char_share': 0.3}),
             ('quarter corpus +8000', 'quarter.txt', {'n_new': 8000}),
             ('quarter, no lexicon +8000', 'quarter.txt', {'n_new': 8000, 'lexicon': False})]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[8000, 16000, 27241])
    ap.add_argument('--ablation', action='store_true', help='also vary one ExtendConfig setting at a time at the largest size')
    ap.add_argument('--json', default='tokenizer_efficiency.json')
    ap.add_argument('--base', help='SentencePiece model file or directory (default: sentencepiece_base())')
    ap.add_argument('--corpus', help='zh-TW corpus (default: $BAILONG_SHARED/data/zh_tw/corpus.txt, else the packaged sample)')
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer
    if args.corpus is None:
        try: args.corpus = shared_path('data/zh_tw/corpus.txt')
        except FileNotFoundError: args.corpus = sample_path()
    lines = read_corpus(args.corpus)
    train, held_out = train_valid_split(lines, 0.02, seed=0)
    ud = [json.loads(l) for l in sample_path('ud_gsd_dev.jsonl').read_text(encoding='utf-8').splitlines()]
    english = [t for l in sample_path('bench/mt_bench/question.jsonl').read_text().splitlines() for t in json.loads(l)['turns']]
    base = load_base(args.base or sentencepiece_base())
    rows, fasts = [], []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); (d/'train.txt').write_text('\n'.join(train), encoding='utf-8')
        base_dir = save_extension(Extension(base, {}, proto=base.proto), d/'base')
        rows.append(measure(Path(base.source).name, spm.SentencePieceProcessor(model_file=str(base_dir/'tokenizer.model')), held_out, ud, english))
        fasts.append(AutoTokenizer.from_pretrained(str(base_dir)))
        for n in args.sizes:
            for method in ('naive', 'bailong'):
                t0 = time.perf_counter()  # the whole extension, lexicon loading included, as the CLI runs it
                ext = extend_tokenizer(base, d/'train.txt', n, ExtendConfig(method=method))
                seconds = time.perf_counter() - t0
                out = save_extension(ext, d/f'{method}-{n}')
                rows.append(measure(f'{method} +{n}', spm.SentencePieceProcessor(model_file=str(out/'tokenizer.model')),
                                    held_out, ud, english, seconds))
                fasts.append(AutoTokenizer.from_pretrained(str(out)))
                print(f'  {method} +{n}: {seconds:.1f}s', file=sys.stderr, flush=True)
        if args.ablation:
            n, quarter = max(args.sizes), train[:len(train) // 4]
            (d/'quarter.txt').write_text('\n'.join(quarter), encoding='utf-8')
            for name, corpus, changes in ABLATIONS:
                t0 = time.perf_counter()
                ext = extend_tokenizer(base, d/corpus, changes.get('n_new', n), ExtendConfig(**changes))
                seconds = time.perf_counter() - t0
                out = save_extension(ext, d/f'ablation-{len(rows)}')
                rows.append(measure(name, spm.SentencePieceProcessor(model_file=str(out/'tokenizer.model')),
                                    held_out, ud, english, seconds) | {'ablation': changes, 'corpus': corpus})
                fasts.append(AutoTokenizer.from_pretrained(str(out)))
                print(f'  {name}: {seconds:.1f}s', file=sys.stderr, flush=True)
        ratios, base_speed = throughput_ratios(fasts, english * 20)
    for r, q in zip(rows, ratios): r['english_throughput_vs_base'] = q
    rows[0]['english_chars_per_s'] = base_speed
    print(f"{'tokenizer':<28}{'vocab':>7}{'held-out tok/char':>19}{'UD efficiency':>15}{'EN tok/char':>13}"
          f"{'extend s':>10}{'EN speed vs base':>18}")
    for r in rows:
        sec = f"{r['extend_seconds']:.1f}" if r['extend_seconds'] is not None else '-'
        print(f"{r['tokenizer']:<28}{r['vocab']:>7}{r['heldout_tokens_per_char']:>19.3f}{r['ud_efficiency']:>15.3f}"
              f"{r['english_tokens_per_char']:>13.4f}{sec:>10}{r['english_throughput_vs_base']:>17.0%}")
    result = {'cpu_count': os.cpu_count(), 'held_out_lines': len(held_out), 'rows': rows}
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == '__main__': sys.exit(main())
