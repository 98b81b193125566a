#!/usr/bin/env python3
"""Rebuild bailong's packaged sample data from Debian's LibreOffice help packages (MPL-2.0).

    python scripts/build_sample_data.py            # downloads the two .deb files with apt-get
    python scripts/build_sample_data.py --debs DIR # or uses .deb files already in DIR

Writes bailong/assets/zh_tw_sample.txt (one zh-TW paragraph per line), bailong/assets/en_zh_tw_sample.jsonl
({"en", "zh_tw"} pairs matched by help file and paragraph id), and names the packages in bailong/assets/NOTICE.
The output is deterministic for a given package version.
"""
import argparse, glob, html.parser, json, re, subprocess, sys, tempfile, unicodedata
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--debs', help='directory holding (or receiving) the two .deb files')
    ap.add_argument('--zh-bytes', type=int, default=900_000)
    ap.add_argument('--pair-bytes', type=int, default=500_000)
    args = ap.parse_args(argv)
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
