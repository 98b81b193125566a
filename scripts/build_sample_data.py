#!/usr/bin/env python3
"""Rebuild bailong's packaged sample data: the LibreOffice help text (MPL-2.0) and the general-domain zh-TW sample.

    python scripts/build_sample_data.py            # downloads the two .deb files with apt-get
    python scripts/build_sample_data.py --debs DIR # or uses .deb files already in DIR
    python scripts/build_sample_data.py --general ../shared/data/zh_tw_general --no-libreoffice

Writes bailong/assets/zh_tw_sample.txt (one zh-TW paragraph per line), bailong/assets/en_zh_tw_sample.jsonl
({"en", "zh_tw"} pairs matched by help file and paragraph id), and names the packages in bailong/assets/NOTICE.
With --general DIR (the folder of news/laws/Cofacts JSONL.gz documents, public domain in Taiwan and CC0) it also writes
bailong/assets/zh_tw_general_sample.jsonl.gz (documents dated before --heldout-from, chosen by bailong's keyed-hash
mixing rule with its default weights, GENERAL_MIX, scaled down to --general-chars) and zh_tw_general_heldout.jsonl.gz
(the documents dated on or after --heldout-from, chosen by the same hash). The output is deterministic for given inputs.
"""
import argparse, glob, gzip, html.parser, json, re, subprocess, sys, tempfile, unicodedata
from pathlib import Path

PACKAGES = {'zh-TW': 'libreoffice-help-zh-tw', 'en-US': 'libreoffice-help-en-us'}
ASSETS = Path(__file__).resolve().parents[1]/'bailong'/'assets'
CJK = re.compile(r'[\u3400-\u9fff\uf900-\ufaff]')


class _Paragraphs(html.parser.HTMLParser):
    "Collect the text of every <p>/<h1-6> element that carries an id (LibreOffice's paragraph ids)."
    def __init__(self):
        super().__init__(); self.out, self.stack = {}, []
    def handle_starttag(self, tag, attrs):
        if tag in ('p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6'):
            self.stack.append((tag, dict(attrs).get('id'), []))
    def handle_endtag(self, tag):
        if self.stack and self.stack[-1][0] == tag:
            _, pid, parts = self.stack.pop()
            text = ' '.join(''.join(parts).split())
            if pid and text: self.out.setdefault(pid, text)
    def handle_data(self, data):
        if self.stack: self.stack[-1][2].append(data)


def paragraphs(path):
    p = _Paragraphs(); p.feed(Path(path).read_text(encoding='utf-8')); return p.out


def download(debs):
    for pkg in PACKAGES.values():
        if not glob.glob(f'{debs}/{pkg}_*.deb'):
            subprocess.run(['apt-get', 'download', pkg], cwd=debs, check=True)


def extract(debs, root):
    for pkg in PACKAGES.values():
        deb, = sorted(glob.glob(f'{debs}/{pkg}_*.deb'))[-1:]
        subprocess.run(['dpkg', '-x', deb, root], check=True)
    return Path(root)/'usr/share/libreoffice/help'


def evenly(items, max_bytes):
    "Every k-th item, so the sample covers all help modules yet stays under `max_bytes`."
    total = sum(len(s.encode()) for s in items)
    k = max(1, -(-total // max_bytes))
    out, size = [], 0
    for s in items[::k]:
        size += len(s.encode())
        if size > max_bytes: break
        out.append(s)
    return out


def build(help_dir, zh_bytes, pair_bytes):
    zh_lines, pairs, seen = [], [], set()
    for f in sorted((help_dir/'zh-TW').rglob('*.html')):
        rel = f.relative_to(help_dir/'zh-TW')
        zh = paragraphs(f)
        en_file = help_dir/'en-US'/rel
        en = paragraphs(en_file) if en_file.exists() else {}
        for pid, text in zh.items():
            text = unicodedata.normalize('NFC', text)
            if not CJK.search(text) or text in seen: continue
            seen.add(text); zh_lines.append(text)
            if pid in en and en[pid] != text: pairs.append(json.dumps({'en': en[pid], 'zh_tw': text}, ensure_ascii=False))
    return evenly(zh_lines, zh_bytes), evenly(pairs, pair_bytes)


def update_notice(names: str):
    "Name the Debian packages in section 1 of assets/NOTICE (the file also credits the other packaged data)."
    notice = (ASSETS/'NOTICE').read_text(encoding='utf-8')
    new = re.sub(r'libreoffice-help-zh-tw_\S+ \S+ with', names + ' with', notice, count=1)
    if 'libreoffice-help-zh-tw' not in new: raise SystemExit(f"{ASSETS/'NOTICE'}: no LibreOffice section to update")
    (ASSETS/'NOTICE').write_text(new, encoding='utf-8')


def _write_jsonl_gz(path, docs):
    "gzip without a file name or time stamp in its header, so that a rebuild is byte-identical."
    with open(path, 'wb') as raw, gzip.GzipFile(filename='', mode='wb', fileobj=raw, mtime=0, compresslevel=9) as f:
        f.write(''.join(json.dumps(d, ensure_ascii=False) + '\n' for d in docs).encode())


def build_general(src, train_chars, heldout_chars, heldout_from, seed=0):
    """(sample, held-out) documents of `src`: those dated before `heldout_from` kept by `in_mix` with GENERAL_MIX's weights
    times one fraction (so the sample keeps the mixing default's proportions), and those dated on or after it (2025: the
    latest news) by the same hash with a fraction of their own."""
    from bailong.data import GENERAL_MIX, stream_records, mix_key
    docs = [r for f in sorted(Path(src).glob('*.jsonl.gz')) for r in stream_records(f)]
    if not docs: raise SystemExit(f'{src}: no .jsonl.gz documents')
    late = lambda r: (r.get('date') or '') >= heldout_from
    weight = lambda r: GENERAL_MIX.get(r.get('source'), 1.0)
    key = {id(r): mix_key(r['text'], seed) for r in docs}
    def pick(rows, chars):
        frac = min(1.0, chars / max(sum(len(r['text']) * weight(r) for r in rows), 1))
        return [r for r in rows if key[id(r)] < frac * weight(r)]
    return pick([r for r in docs if not late(r)], train_chars), pick([r for r in docs if late(r)], heldout_chars)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--debs', help='directory holding (or receiving) the two .deb files')
    ap.add_argument('--zh-bytes', type=int, default=900_000)
    ap.add_argument('--pair-bytes', type=int, default=500_000)
    ap.add_argument('--general', help='folder of the general-domain JSONL.gz documents ({text, source, date})')
    ap.add_argument('--general-chars', type=int, default=1_600_000, help='characters of the general sample')
    ap.add_argument('--heldout-chars', type=int, default=300_000, help='characters of its held-out part')
    ap.add_argument('--heldout-from', default='2025-01-01', help='documents dated on or after this are held out')
    ap.add_argument('--no-libreoffice', action='store_true', help='leave the LibreOffice sample as it is')
    args = ap.parse_args(argv)
    if args.general:
        train, held = build_general(args.general, args.general_chars, args.heldout_chars, args.heldout_from)
        for name, docs in (('zh_tw_general_sample.jsonl.gz', train), ('zh_tw_general_heldout.jsonl.gz', held)):
            _write_jsonl_gz(ASSETS/name, docs)
            by = {}
            for r in docs: by[r['source']] = by.get(r['source'], 0) + len(r['text'])
            print(f"{name}: {len(docs):,} documents, {sum(by.values()):,} characters ({', '.join(f'{k} {v:,}' for k, v in sorted(by.items()))}), "
                  f"{(ASSETS/name).stat().st_size:,} bytes")
    if args.no_libreoffice: return
    with tempfile.TemporaryDirectory() as tmp:
        debs = args.debs or tmp
        download(debs)
        zh, pairs = build(extract(debs, Path(tmp)/'root'), args.zh_bytes, args.pair_bytes)
        names = ', '.join(Path(p).name for pkg in PACKAGES.values() for p in glob.glob(f'{debs}/{pkg}_*.deb'))
    ASSETS.mkdir(parents=True, exist_ok=True)
    (ASSETS/'zh_tw_sample.txt').write_text('\n'.join(zh) + '\n', encoding='utf-8')
    (ASSETS/'en_zh_tw_sample.jsonl').write_text('\n'.join(pairs) + '\n', encoding='utf-8')
    update_notice(names)
    print(f'{len(zh)} zh-TW lines, {len(pairs)} en/zh-TW pairs -> {ASSETS}')


if __name__ == '__main__': sys.exit(main())
