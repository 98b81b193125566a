#!/usr/bin/env python3
"""Render nbs/index.ipynb to README.md (markdown cells as they are, code cells marked `#| hide` left out; image
links relative to nbs/ made relative to the repository root).

nbdev's own `nbdev_readme` needs Quarto; this does the part we use without it. `--check` exits 1 when README.md
is out of date (the tests run it)."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    parts = []
    for cell in json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']:
        src = ''.join(cell['source']).strip()
        if not src: continue
        if cell['cell_type'] == 'markdown': parts.append(src.replace('](images/', '](nbs/images/'))
        elif not src.startswith(('#| hide', '#|hide')): parts.append(f'```python\n{src}\n```')
    return '\n\n'.join(parts) + '\n'


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    text, readme = render(), ROOT/'README.md'
    if '--check' in argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        if not ok: print('README.md is out of date: run python scripts/render_readme.py', file=sys.stderr)
        return 0 if ok else 1
    readme.write_text(text, encoding='utf-8')
    return 0


if __name__ == '__main__': sys.exit(main())
