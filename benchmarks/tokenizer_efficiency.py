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

With --general (issue 23): the extensions learn from the general corpus's documents dated before 2025 (each in a fresh
process: wall time and peak RSS), and are measured on the GSD dev sentences (gold words per token, counted as the paper
does with `tokenizer.tokenize`), on a 5 % sample of the 2025 documents (characters per token), on English (ids as the
base's: MT-Bench and the packaged English, less the few texts that quote Chinese), for exact round trips, and where
the GSD tokens go (by kind: digits, a bare leading '▁', punctuation, Latin, Chinese pieces by length); then SmolLM2 + 4,000 merges from the whole folder.
    python benchmarks/tokenizer_efficiency.py --general --ablation --json benchmarks/results/tokenizer_general.json
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import sentencepiece as spm
from bailong.data import CJK_RE as CJK, read_corpus, train_valid_split, shared_path, sample_path, sentencepiece_base
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


# --- the general recipe (issue 23): Llama 2 / SmolLM2 extended from the general zh-TW corpus ----------------------

PAPER = {'Bailong': 1.005, 'Breeze': 0.847, 'TAIDE': 0.818, 'Gemma': 0.802, 'Llama 3': 0.696}  # published, whole GSD

# one ExtendConfig change at a time from the general recipe (the defaults), at 27,241 pieces
GENERAL_ABLATIONS = [('no lexicon', {'lexicon': False}),
                     ('lexicon 2.3 M chars (the old default)', {'lexicon_chars': 2_300_000}),
                     ('lexicon power 0.4', {'lexicon_power': 0.4}),
                     ('max_chars 3500', {'max_chars': 3500}),
                     ('n_prefixed 2000', {'n_prefixed': 2000}),
                     ('max_piece_chars 16', {'max_piece_chars': 16}),
                     ('sample 3 M chars', {'sample_chars': 3_000_000})]


def general_docs(folder):
    "(train, held_out): the general corpus's documents dated before 2025, and a 5 % keyed-hash sample of the 2025 ones."
    import gzip
    from bailong.data import in_valid
    train, held = [], []
    for f in sorted(Path(folder).glob('*.jsonl.gz')):
        with gzip.open(f, 'rt', encoding='utf-8') as fh:
            for line in fh:
                r = json.loads(line)
                if not str(r.get('date') or '').startswith('2025'): train.append(r['text'])
                elif in_valid(r['text'], 0.05): held.append(r['text'])
    return train, held


def extend_in_child(base, corpus, n, changes, out):
    "Run one extension in a fresh process: its wall time and peak RSS (os.wait4), as `bailong tokenizer extend` would."
    import subprocess
    code = ('import json,sys; from bailong.tokenizer import ExtendConfig, extend_tokenizer, save_extension; '
            'a = json.loads(sys.argv[1]); save_extension(extend_tokenizer(a["base"], a["corpus"], a["n"], '
            'ExtendConfig(**a["changes"])), a["out"])')
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, '-c', code, json.dumps({'base': str(base), 'corpus': str(corpus), 'n': n,
                                                                  'changes': changes, 'out': str(out)})])
    _, status, usage = os.wait4(p.pid, 0)
    if status: raise RuntimeError(f'extension {n} {changes} failed ({status})')
    return time.perf_counter() - t0, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux: GiB


def general_measure(name, tok, base_tok, ud, held, english, seconds=None, rss=None):
    "GSD words/token, held-out chars/token, English ids as the base's, exact round trips (encoding without specials)."
    enc = lambda s: tok.encode(s, add_special_tokens=False)
    words = sum(len(r['gold_tokens']) for r in ud)
    texts = [r['text'] for r in ud] + held + english
    return {'tokenizer': name, 'vocab': len(tok),
            'gsd_words_per_token': words / sum(len(tok.tokenize(r['text'])) for r in ud),
            'heldout_chars_per_token': sum(map(len, held)) / sum(len(enc(s)) for s in held),
            'english_unchanged': sum(enc(s) == base_tok.encode(s, add_special_tokens=False) for s in english)
                                 / len(english),
            'round_trips': sum(tok.decode(enc(s)) == s for s in texts) / len(texts),
            'extend_seconds': seconds, 'peak_rss_gib': rss, 'where_tokens_go': where_tokens_go(tok, ud)}


def where_tokens_go(tok, ud) -> dict:
    "GSD dev tokens by kind (bare leading '▁', digits, Latin, byte fallback, CJK pieces by length, other); gold words by kind."
    import re
    def kind(p):
        if p == '▁': return 'bare ▁'
        if re.fullmatch(r'<0x..>', p): return 'byte'
        if re.fullmatch(r'▁?\d+', p): return 'digit'
        if re.fullmatch(r'▁?[A-Za-z]+', p): return 'latin'
        return f'cjk{min(len(p.lstrip("▁")), 4)}' if CJK.search(p) else 'punctuation/other'
    def gold(w):
        if CJK.search(w): return 'cjk'
        return 'digit' if re.search(r'\d', w) else 'latin' if re.search('[A-Za-z]', w) else 'punctuation/other'
    tokens, words = {}, {}
    for r in ud:
        for p in tok.tokenize(r['text']): tokens[kind(p)] = tokens.get(kind(p), 0) + 1
        for w in r['gold_tokens']: words[gold(w)] = words.get(gold(w), 0) + 1
    return {'tokens': tokens, 'gold_words': words}


def general(args):
    from bailong.data import shared_path, sample_path
    from bailong.tokenizer import load_hf_tokenizer, smollm2_gguf
    folder = Path(args.corpus or shared_path('data/zh_tw_general'))
    base = args.base or shared_path('tokenizers/llama2/tokenizer.model')
    train, held = general_docs(folder)
    ud = [json.loads(l) for l in sample_path('ud_gsd_dev.jsonl').read_text(encoding='utf-8').splitlines()]
    english = [t for l in sample_path('bench/mt_bench/question.jsonl').read_text().splitlines() for t in json.loads(l)['turns']]
    english += read_corpus(sample_path('en_zh_tw_sample.jsonl'), text_field='en')
    english = [s for s in english if not CJK.search(s)]  # a few English texts quote Chinese, which new pieces may take
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); corpus = d/'train.jsonl'
        corpus.write_text(''.join(json.dumps({'text': t}, ensure_ascii=False) + '\n' for t in train), encoding='utf-8')
        base_tok = load_hf_tokenizer(base)
        rows.append(general_measure('Llama 2', base_tok, base_tok, ud, held, english))
        runs = [(f'general +{n}', n, {}) for n in args.sizes]
        if args.ablation: runs += [(name, max(args.sizes), ch) for name, ch in GENERAL_ABLATIONS]
        for name, n, changes in runs:
            sec, rss = extend_in_child(base, corpus, n, changes, d/name.replace(' ', '_'))
            tok = load_hf_tokenizer(d/name.replace(' ', '_'))
            rows.append(general_measure(name, tok, base_tok, ud, held, english, sec, rss) | {'changes': changes})
            print(f'  {name}: {sec:.0f} s, {rss:.2f} GiB', file=sys.stderr, flush=True)
        # the byte-level family on the whole folder, as the command runs it (2025 included: timing only)
        smol = smollm2_gguf(); smol_tok = load_hf_tokenizer(smol)
        rows.append(general_measure('SmolLM2', smol_tok, smol_tok, ud, held, english))
        sec, rss = extend_in_child(smol, folder, 4000, {}, d/'smol')
        rows.append(general_measure('SmolLM2 +4000 (whole folder)', load_hf_tokenizer(d/'smol'), smol_tok, ud, held,
                                    english, sec, rss) | {'changes': {}})
    print(f"{'tokenizer':<40}{'vocab':>7}{'GSD words/tok':>15}{'2025 chars/tok':>16}{'EN same':>9}{'round trip':>12}"
          f"{'s':>6}{'GiB':>6}")
    for r in rows:
        s, g = (f"{r['extend_seconds']:.0f}", f"{r['peak_rss_gib']:.2f}") if r['extend_seconds'] else ('-', '-')
        print(f"{r['tokenizer']:<40}{r['vocab']:>7}{r['gsd_words_per_token']:>15.3f}{r['heldout_chars_per_token']:>16.3f}"
              f"{r['english_unchanged']:>9.1%}{r['round_trips']:>12.1%}{s:>6}{g:>6}")
    for k, v in PAPER.items(): print(f'{k + " (published, whole GSD)":<40}{"":>7}{v:>15.3f}')
    result = {'cpu_count': os.cpu_count(), 'corpus': 'data/zh_tw_general (before 2025; held out: 5 % of 2025)',
              'train_chars': sum(map(len, train)), 'heldout_chars': sum(map(len, held)), 'gsd_sentences': len(ud),
              'english_texts': len(english), 'paper': PAPER, 'rows': rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', type=int, nargs='+', default=[8000, 16000, 27241])
    ap.add_argument('--ablation', action='store_true', help='also vary one ExtendConfig setting at a time at the largest size')
    ap.add_argument('--json', default='tokenizer_efficiency.json')
    ap.add_argument('--base', help='SentencePiece model file or directory (default: sentencepiece_base())')
    ap.add_argument('--corpus', help='zh-TW corpus (default: $BAILONG_SHARED/data/zh_tw/corpus.txt, else the packaged sample)')
    ap.add_argument('--general', action='store_true', help="the general recipe on $BAILONG_SHARED/data/zh_tw_general "
                    "(or --corpus, a folder of JSONL.gz with dates): Llama 2 (or --base) and SmolLM2")
    args = ap.parse_args(argv)
    if args.general:
        if args.sizes == [8000, 16000, 27241]: args.sizes = [4000, 8000, 16000, 27241]
        return general(args)
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
