#!/usr/bin/env python3
"""The one place that defines what each chapter's hidden Colab cell installs: bailong from the repository its badge points
to, pinned to the tag of this version (`v` + settings.ini's version), never a bare `pip install bailong` from PyPI, where
whoever registers the name first would run code in every reader's session.

`python scripts/colab_pin.py` rewrites the pin in every notebook's Colab cell (after a version bump);
`--check` exits 1 when a cell carries another pin (tests/test_project.py checks the same through `pin()`)."""
import configparser, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN_RE = re.compile(r"'bailong @ git\+[^']*'")  # the pinned requirement as the cell writes it


def pin(settings=ROOT/'settings.ini') -> str:
    "The requirement the Colab cells install, e.g. 'bailong @ git+https://github.com/bailong/bailong@v0.1.0'."
    cfg = configparser.ConfigParser(); cfg.read(settings)
    s = cfg['DEFAULT']
    return f"{s['lib_name']} @ git+{s['git_url']}@v{s['version']}"


def colab_cell(nb: dict) -> dict | None:
    "The hidden cell that runs only in Colab, if the notebook has one."
    return next((c for c in nb['cells'] if c['cell_type'] == 'code' and 'import google.colab' in ''.join(c['source'])), None)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    want, stale = repr(pin()), []
    for path in sorted((ROOT/'nbs').glob('*.ipynb')):
        nb = json.loads(path.read_text(encoding='utf-8'))
        cell = colab_cell(nb)
        if cell is None: continue
        src = ''.join(cell['source'])
        if want in src: continue
        stale.append(path.name)
        if '--check' in argv: continue
        if not PIN_RE.search(src): raise SystemExit(f"{path}: its Colab cell has no 'bailong @ git+...' requirement to update")
        cell['source'] = PIN_RE.sub(lambda m: want, src).splitlines(keepends=True)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    if '--check' in argv and stale: print(f"Colab cells not pinned to {pin()}: {', '.join(stale)}", file=sys.stderr)
    elif stale: print(f"pinned {len(stale)} notebooks to {pin()}")
    return 1 if stale and '--check' in argv else 0


if __name__ == '__main__': sys.exit(main())
