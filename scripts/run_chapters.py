"""Re-run the chapters and keep their outputs in the notebooks: the numbers, tables and plots a reader sees on GitHub,
in Colab before running anything, and on the docs pages.

    python scripts/run_chapters.py                              # every chapter, about 20 minutes on 2 CPU cores
    python scripts/run_chapters.py nbs/02_embeddings.ipynb      # one chapter
    BAILONG_SHARED=../shared python scripts/run_chapters.py --slow nbs/01_tokenizer.ipynb   # its slow cells too

Each chapter runs in a fresh process, from its own folder, as `nbdev_test` runs it. Cells that are not run here keep
the outputs they had: `#| slow` cells without `--slow`, `#| notest` and `#| eval: false` cells. Progress bars and
library warnings are switched off, so the outputs hold what the chapter prints and draws (bars that a library draws anyway are dropped), and each widget
also stores its state as plain HTML, which GitHub and the docs show where no widget can run. The notebooks are then
cleaned as `nbdev_clean` does (no execution counts or metadata). Run on a clean checkout, the script changes only
timings in the outputs: paths of the machine that ran them are stored as `<tmp>/...`, `<site-packages>/...`, `~/...` or
relative to the repository (`machine_paths`; `--paths-only` applies just that to the stored outputs). The test run (`nbdev_test`) ignores stored outputs and runs every
chapter fresh.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = {'TQDM_DISABLE': '1', 'PYTHONWARNINGS': 'ignore', 'TRANSFORMERS_VERBOSITY': 'error', 'HF_HUB_OFFLINE': '1',
         'HF_DATASETS_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false', 'MPLBACKEND': 'module://matplotlib_inline.backend_inline'}


def static_html(w) -> str:
    "A widget as plain HTML, for readers whose viewer runs no widgets (GitHub, a docs page, Colab before running)."
    import html, ipywidgets as W
    if isinstance(w, W.Box):
        style = 'display:flex;gap:8px' if isinstance(w, W.HBox) else 'display:flex;flex-direction:column;gap:4px'
        return f'<div style="{style}">' + ''.join(static_html(c) for c in w.children) + '</div>'
    if isinstance(w, (W.HTML, W.HTMLMath)): return w.value
    label = f'<b>{html.escape(w.description)}</b> ' if getattr(w, 'description', '') else ''
    if isinstance(w, W.Textarea): return f'<div>{label}<textarea rows="3" style="width:90%" readonly>{html.escape(str(w.value))}</textarea></div>'
    if isinstance(w, (W.Text, W.Label)): return f'<div>{label}<input style="width:90%" readonly value="{html.escape(str(w.value), quote=True)}"></div>'
    if isinstance(w, W.Button): return f'<button disabled>{html.escape(w.description)}</button>'
    if hasattr(w, 'value'): return f'<div>{label}{html.escape(str(w.value))}</div>'  # dropdowns, sliders: the value shown
    return ''


def machine_paths(text: str) -> str:
    "Where a chapter prints a path of the machine that ran it, the same path as any reader's machine would name it."
    import site, sysconfig, tempfile
    tmp = os.path.realpath(tempfile.gettempdir())
    # the longest first: site-packages may sit inside the repository (.venv) or the home folder
    subs = [(d.rstrip(os.sep) + os.sep, '<site-packages>/') for d in {sysconfig.get_paths()['purelib'], *site.getsitepackages()}]
    subs += [(tmp + os.sep, '<tmp>/'), ('/tmp/', '<tmp>/'), (str(ROOT) + os.sep, ''), (str(ROOT), '.')]
    subs += [(os.path.expanduser('~') + os.sep, '~/')]
    for old, new in subs: text = text.replace(old, new)
    return text


def scrub_outputs(nb) -> None:
    "Every string of every stored output through `machine_paths` (stream text, text/plain, HTML, widget fallbacks)."
    def fix(v):
        if isinstance(v, str): return machine_paths(v)
        if isinstance(v, list): return [fix(x) for x in v]
        if isinstance(v, dict): return {k: fix(x) for k, x in v.items()}
        return v
    for cell in nb['cells']:
        if cell.get('cell_type') == 'code':
            cell['outputs'] = [type(o)(fix(dict(o))) if isinstance(o, dict) else o for o in cell.get('outputs', [])]


def run_one(path: Path, slow: bool) -> None:
    "Execute one chapter in this process and write its outputs back."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from nbdev.process import extract_directives
    from nbdev.config import get_config
    skip = set(get_config().tst_flags.split()) - ({'slow'} if slow else set())
    nb = read_nb(path)

    def not_here(cell):
        "True for cells this run leaves as they are (markdown, and the flagged code cells)."
        if cell.cell_type != 'code': return True
        d = extract_directives(cell, remove=False)
        return bool(skip & d.keys()) or d.get('eval:', [''])[0].lower() == 'false'

    def keep_prints(cell):
        "execnb drops a cell's printed output when its source ends with ';' (Jupyter drops only the value): end it with None."
        if not_here(cell): return True
        if cell.source.rstrip().endswith(';'): cell.ends_with_semicolon, cell.source = cell.source, cell.source + '\nNone'
        return False

    def restore(cell):
        if 'ends_with_semicolon' in cell: cell.source = cell.pop('ends_with_semicolon')

    shell = CaptureShell(path, mpl_format='png')  # plain PNGs: half the bytes of retina ones in the repository
    os.chdir(path.parent)
    shell.run_all(nb, exc_stop=True, preproc=keep_prints, postproc=restore)
    from ipywidgets.widgets.widget import _instances as widgets
    for cell in nb.cells:
        if cell.cell_type != 'code': continue
        # progress bars that a library draws whatever TQDM_DISABLE says: redrawn lines, no content
        cell.outputs = [o for o in cell.outputs if not (o.get('name') == 'stderr' and '\r' in ''.join(o.get('text', '')))]
        for o in cell.outputs:  # a widget keeps its live view for Jupyter, plus its state as HTML for every other viewer
            view = o.get('data', {}).get('application/vnd.jupyter.widget-view+json')
            if view and view.get('model_id') in widgets:
                o['data']['text/html'] = static_html(widgets[view['model_id']])
                view['model_id'] = f'{cell.id}-widget'  # its live state is not stored: a stable name instead of a random one
    scrub_outputs(nb)
    write_nb(nb, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='*', help='chapters to run (default: every nbs/*.ipynb but index.ipynb)')
    ap.add_argument('--slow', action='store_true', help='run the `#| slow` cells too (they read $BAILONG_SHARED)')
    ap.add_argument('--paths-only', action='store_true', help='only rewrite machine paths in the stored outputs; run nothing')
    ap.add_argument('--one', help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.paths_only:
        for nb in [Path(n) for n in args.notebooks] or sorted((ROOT/'nbs').glob('*.ipynb')):
            d = json.loads(nb.read_text(encoding='utf-8'))
            scrub_outputs(d)
            nb.write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
            subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(nb)], cwd=ROOT, check=True)
        return
    if args.one: return run_one(Path(args.one).resolve(), args.slow)
    if args.slow and not os.environ.get('BAILONG_SHARED'): ap.error('--slow: the slow cells read $BAILONG_SHARED; set it')
    nbs = [Path(n).resolve() for n in args.notebooks] or sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
    if missing := [str(n) for n in nbs if not n.is_file()]: ap.error(f'no such notebook: {", ".join(missing)}')
    failed, times_file = [], ROOT/'nbs'/'images'/'chapter_times.json'
    for nb in nbs:
        t = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, '--one', str(nb)] + (['--slow'] if args.slow else []),
                           env={**os.environ, **QUIET}, capture_output=True, text=True)
        secs = time.perf_counter() - t
        print(f'{nb.name}: {"ok" if r.returncode == 0 else "FAILED"} in {secs:.0f} s', flush=True)
        if r.returncode: failed.append(nb.name); print(r.stderr[-4000:], file=sys.stderr); continue
        subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(nb)], cwd=ROOT, check=True)
        if not args.slow:  # the workshop plan reads these: what a reader waits for "Run all" here (slow cells skipped)
            times = json.loads(times_file.read_text()) if times_file.exists() else {'chapters': {}}
            times['chapters'][nb.name] = round(secs)
            times['machine'] = f'{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}'
            times_file.write_text(json.dumps(times, indent=1, sort_keys=True) + '\n')
    if failed: sys.exit(f'failed: {", ".join(failed)} (their outputs were not written)')


if __name__ == '__main__':
    main()
