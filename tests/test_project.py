"The project's own promises: README rendered from nbs/index.ipynb, modules exported from the notebooks, sample data."
import json, re, shutil, subprocess, sys
from conftest import ROOT


def test_readme_is_rendered_from_index():
    r = subprocess.run([sys.executable, ROOT/'scripts/render_readme.py', '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_modules_come_only_from_notebooks(tmp_path):
    copy = tmp_path/'p'
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns('.git', '.venv', '*.egg-info', '__pycache__'))
    subprocess.run(['nbdev_export'], cwd=copy, check=True, capture_output=True)
    for py in (ROOT/'bailong').glob('*.py'):
        assert (copy/'bailong'/py.name).read_text() == py.read_text(), f'{py.name} differs from its notebook'


def test_packaged_data_is_small_and_licensed():
    from bailong.data import sample_path, read_corpus, script_shares
    assets = sample_path('.')
    data = [p for p in assets.rglob('*') if p.is_file() and p.parent.name != 'licenses' and p.name != 'NOTICE' and '__pycache__' not in p.parts]
    assert sum(p.stat().st_size for p in data) <= 4_500_000  # a few MB: the general sample is 2.3 MB of it
    notice = sample_path('NOTICE').read_text()
    for p in data: assert p.name in notice, f'{p.relative_to(assets)} has no source and licence in assets/NOTICE'
    for lic in ('Mozilla Public License', 'CC BY-SA 4.0', 'Apache License, Version 2.0'): assert lic in notice
    assert 'Mozilla Public License Version 2.0' in sample_path('licenses/MPL-2.0.txt').read_text()
    assert 'Attribution-ShareAlike 4.0 International' in sample_path('licenses/CC-BY-SA-4.0.txt').read_text()
    assert script_shares(read_corpus(sample_path()))['simplified'] < 0.01
    assert len(read_corpus(sample_path('en_zh_tw_sample.jsonl'), text_field='en')) > 1000


def test_only_slow_cells_read_unshipped_data():
    "A fresh clone has no shared/ folder: an example cell that reads one (`shared_path('...')`) must be flagged slow."
    offenders = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for c in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            src = ''.join(c['source'])
            reads = [l for l in src.splitlines() if re.search(r"shared_path\('", l) and 'test_fail' not in l]
            if c['cell_type'] == 'code' and reads and not src.startswith(('#| slow', '#| export')): offenders.append((nb.name, reads[0]))
    assert not offenders, offenders


def test_every_notebook_opens_in_colab():
    "A badge that opens the notebook itself in Colab, then a hidden cell that installs bailong there and only there."
    import configparser
    ini = configparser.ConfigParser(); ini.read(ROOT/'settings.ini'); settings = ini['DEFAULT']
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
        badge, install = ''.join(cells[1]['source']), ''.join(cells[2]['source'])
        assert f'colab.research.google.com/github/bailong/bailong/blob/main/nbs/{nb.name})' in badge, nb.name
        assert install.startswith('#| hide') and 'import google.colab' in install, nb.name
        guarded = install[install.index('else:'):]
        assert 'pip' in guarded and 'except ImportError: pass' in install, nb.name
        # bailong from the badge's repository at this version's tag: a bare `pip install bailong` would take whatever
        # package holds the name on PyPI (scripts/colab_pin.py writes the pin)
        assert repr(f"bailong @ git+{settings['git_url']}@v{settings['version']}") in guarded, f'{nb.name}: Colab cell not pinned'
        installs = [l for l in guarded.splitlines() if 'pip +' in l]
        assert not [l for l in installs if re.search(r"'bailong(\[\w+\])?[=<>~']", l)], f'{nb.name}: installs an unpinned bailong'


CHAPTERS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))


def test_chapters_carry_their_outputs():
    """Each chapter is committed with the outputs of a real run (`scripts/run_chapters.py`): a reader on GitHub or in
    Colab sees numbers and plots before running anything. No stored output is an error, none has an execution count."""
    for nb in CHAPTERS + [ROOT/'nbs'/'workshop.ipynb']:
        cells = [c for c in json.loads(nb.read_text(encoding='utf-8'))['cells'] if c['cell_type'] == 'code']
        outs = [o for c in cells for o in c['outputs']]
        assert outs, f'{nb.name} has no stored outputs: run python scripts/run_chapters.py nbs/{nb.name}'
        assert not [o for o in outs if o['output_type'] == 'error'], f'{nb.name} stores an error'
        assert not [c for c in cells if c.get('execution_count')], f'{nb.name}: run nbdev_clean'


MACHINE_PATH = re.compile(r'(?<![\w.<~-])/(?:tmp|work|home|root|Users|var/folders|private|content|opt|usr/local)/|site-packages/')


def test_stored_outputs_hold_no_machine_path():
    "A stored output names paths as any reader's machine would (`scripts/run_chapters.py` writes them so), never the runner's."
    found = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        for i, c in enumerate(json.loads(nb.read_text(encoding='utf-8'))['cells']):
            for o in c.get('outputs', []):
                text = json.dumps(o, ensure_ascii=False).replace('<site-packages>/', '')
                if m := MACHINE_PATH.search(text): found.append(f'{nb.name} cell {i}: ...{text[max(0, m.start() - 60):m.end() + 40]}')
    assert not found, 'run python scripts/run_chapters.py --paths-only on these notebooks:\n' + '\n'.join(found[:20])


def test_chapters_end_with_what_we_learned_and_exercises():
    "Each chapter ends with a summary and exercises whose solutions sit in hidden, self-checking cells (nbdev_test runs them)."
    for nb in CHAPTERS:
        cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
        md = [''.join(c['source']) for c in cells if c['cell_type'] == 'markdown']
        assert any('## What we learned' in m for m in md), nb.name
        assert any('## Exercises' in m for m in md), nb.name
        solutions = [c for c in cells if c['cell_type'] == 'code' and ''.join(c['source']).startswith('#| hide\n# Solution to exercise')]
        assert solutions, f'{nb.name} has no solution cells'
        for c in solutions:
            src = ''.join(c['source'])
            assert c['metadata'].get('jupyter', {}).get('source_hidden'), f'{nb.name}: a solution cell is not hidden'
            assert re.search(r'\btest_\w+\(|\bassert\b', src), f'{nb.name}: a solution that cannot fail:\n{src[:200]}'


def test_example_configs_load():
    "Every example config loads as `bailong train` loads it and passes the checks that need no data on disk."
    from bailong.train import load_config, check_config
    from bailong.pretrain import PretrainConfig
    from bailong.sft import SftConfig
    examples = sorted((ROOT/'examples').glob('*.yaml'))
    assert len(examples) >= 5
    for p in examples:
        cfg = check_config(load_config(PretrainConfig if p.name.startswith('pretrain') else SftConfig, p))
        assert cfg.steps > 0 and cfg.out, p.name
