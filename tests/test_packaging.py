"""`pip install bailong`: the wheel and sdist build from the clone, pass `twine check`, carry the packaged data, every
licence and the chapters; the wheel installs in a fresh venv elsewhere and its `bailong` command runs there.
Offline: nothing here downloads anything."""
import json, os, shutil, subprocess, sys, tarfile, time, zipfile
from configparser import ConfigParser
from pathlib import Path
import pytest
from conftest import ROOT

cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8'); cfg = cfg['DEFAULT']
NAME, VERSION = cfg['lib_name'], cfg['version']


def _files(folder, pattern='*'):
    "Files under `folder` (recursively), as paths relative to the repository."
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT/folder).rglob(pattern)
                  if p.is_file() and not {'__pycache__', '.ipynb_checkpoints'} & set(p.parts))

ASSETS = _files('bailong/assets')                        # data files, NOTICE, licenses/
LICENCES = ['LICENSE', 'bailong/assets/NOTICE', *_files('bailong/assets/licenses')]
NOTEBOOKS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
CHAPTERS = NOTEBOOKS + [f[len('nbs/'):] for f in _files('nbs/images')] + [f for f in _files('examples') if f.endswith('.yaml')]


def _run(*cmd, timeout=1800, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def _clone_files():
    "What a clone holds: tracked and untracked-not-ignored files (the working tree when git is missing)."
    try: out = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): return None
    return [f for f in out.decode().split('\0') if f and (ROOT/f).is_file()]


@pytest.fixture(scope='module')
def dists(tmp_path_factory):
    """Wheel and sdist built by `python -m build` (the wheel from the sdist) from a copy of the clone, with this
    environment's setuptools (`--no-isolation`: an isolated build would download its build requirements)."""
    tmp = tmp_path_factory.mktemp('dists')
    src, files = tmp/'src', _clone_files()
    if files is None:
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns('.git', '.venv', '*.egg-info', '__pycache__', 'build', 'dist'))
    for f in files or []:
        (src/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, src/f)
    _run(sys.executable, '-m', 'build', '--no-isolation', '--outdir', tmp/'dist', src, timeout=900)
    (wheel,), (sdist,) = (tmp/'dist').glob('*.whl'), (tmp/'dist').glob('*.tar.gz')
    return wheel, sdist


def test_twine_check(dists):
    r = _run(sys.executable, '-m', 'twine', 'check', '--strict', *dists, timeout=300)
    assert r.stdout.count('PASSED') == 2, r.stdout


def test_wheel_carries_data_licences_and_chapters(dists):
    wheel, _ = dists
    names = set(zipfile.ZipFile(wheel).namelist())
    assert len(ASSETS) >= 11 and 'bailong/assets/ud_gsd_dev.jsonl' in ASSETS and 'bailong/assets/bench/mt_bench/question.jsonl' in ASSETS
    assert not [a for a in ASSETS if a not in names], 'packaged data missing from the wheel'
    assert not [c for c in CHAPTERS if f'{NAME}/_chapters/{c}' not in names], 'chapters missing from the wheel'
    dist_info = f'{NAME}-{VERSION}.dist-info'
    assert len(LICENCES) >= 4 and not [l for l in LICENCES if f'{dist_info}/licenses/{l}' not in names]
    meta = zipfile.ZipFile(wheel).read(f'{dist_info}/METADATA').decode()
    for line in ['License-Expression: Apache-2.0', f"Requires-Python: >={cfg['min_python']}", 'Provides-Extra: lab',
                 *[f'License-File: {l}' for l in LICENCES]]:
        assert line + '\n' in meta, line
    assert 'Requires-Dist: jupyterlab' in meta and 'Requires-Dist: torch<' in meta
    assert not [n for n in names if n.startswith(('nbs/', 'examples/', 'tests/')) or '__pycache__' in n]


def test_sdist_carries_what_the_wheel_is_built_from(dists):
    _, sdist = dists
    root = f'{NAME}-{VERSION}/'
    names = {n[len(root):] for n in tarfile.open(sdist).getnames()}
    need = ['setup.py', 'pyproject.toml', 'settings.ini', 'LICENSE', 'README.md', 'MANIFEST.in', *ASSETS,
            *[f'nbs/{c}' if not c.startswith('examples/') else c for c in CHAPTERS]]
    assert not [n for n in need if n not in names]


def _unmet_requirements(wheel) -> list[str]:
    "The wheel's `Requires-Dist` (no extras) that this environment does not satisfy."
    from importlib.metadata import PackageNotFoundError, version
    from packaging.requirements import Requirement
    meta = zipfile.ZipFile(wheel).read(f'{NAME}-{VERSION}.dist-info/METADATA').decode()
    unmet = []
    for line in meta.splitlines():
        if not line.startswith('Requires-Dist: '): continue
        req = Requirement(line[len('Requires-Dist: '):])
        if req.marker and not req.marker.evaluate({'extra': ''}): continue
        try: have = version(req.name)
        except PackageNotFoundError: have = None
        if have is None or not req.specifier.contains(have, prereleases=True): unmet.append(f'{req} (installed: {have})')
    return unmet


def test_wheel_in_a_fresh_venv(dists, tmp_path_factory):
    """Install the wheel in a new venv outside the repository; run `bailong` there as a pip user would. Offline: the
    new venv sees this environment's packages through a .pth file (the dependencies the wheel declares, checked
    against it), and the wheel itself is installed from the file with no package index."""
    wheel, _ = dists
    assert not _unmet_requirements(wheel), _unmet_requirements(wheel)
    home = tmp_path_factory.mktemp('user')
    assert ROOT not in home.parents
    venv, t0 = home/'venv', time.perf_counter()
    _run(sys.executable, '-m', 'venv', venv, timeout=300)
    py, bailong = venv/'bin/python', venv/'bin/bailong'
    import sysconfig
    site = Path(_run(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    # plain path lines: this environment's own .pth files (the repository's editable install among them) are not run
    (site/'_dependencies.pth').write_text('\n'.join(dict.fromkeys(sysconfig.get_paths()[k] for k in ('purelib', 'platlib'))) + '\n')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')}
    env.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='Agg', VIRTUAL_ENV=str(venv),
               PATH=f"{venv/'bin'}{os.pathsep}{env.get('PATH', '')}", PIP_NO_INDEX='1')
    # --force-reinstall: pip sees the development install of bailong through the .pth and would otherwise skip the
    # wheel; it does not touch that install, which lies outside the new environment
    _run(py, '-m', 'pip', 'install', '-q', '--no-compile', '--no-deps', '--force-reinstall', wheel, cwd=home, env=env)
    print(f'fresh venv + install: {time.perf_counter() - t0:.0f}s')
    where = _run(py, '-c', 'import bailong, bailong.cli; print(bailong.__file__)', cwd=home, env=env).stdout.strip()
    assert Path(where).resolve().is_relative_to(venv.resolve()) and not Path(where).resolve().is_relative_to(ROOT), where
    assert (ROOT/'bailong/__init__.py').exists(), 'the development install was touched'

    r = _run(bailong, '--help', cwd=home, env=env)
    assert r.stdout.startswith('usage: bailong') and 'notebooks' in r.stdout and 'quickstart' in r.stdout

    r = _run(bailong, 'notebooks', 'chapters', cwd=home, env=env)
    got = sorted(p.relative_to(home/'chapters').as_posix() for p in (home/'chapters').rglob('*')
                 if p.is_file() and p.name != '.bailong-output')  # the mark that lets --overwrite replace it
    assert got == sorted(CHAPTERS) and 'jupyter lab chapters' in r.stdout
    assert json.loads((home/'chapters/90_cli.ipynb').read_text(encoding='utf-8'))['cells']
    r = subprocess.run([bailong, 'notebooks', 'chapters'], capture_output=True, text=True, cwd=home, env=env)
    assert r.returncode == 2 and 'chapters' in r.stderr and '--overwrite' in r.stderr, r.stderr

    # the wheel's packaged data and examples, end to end: pre-training (zh-TW sample), SFT (translation chats built from
    # the packaged pairs), merge, chat. The quickstart itself runs in its chapter and as the README's first command.
    t0 = time.perf_counter()
    short = ['--set', 'steps=2', '--set', 'eval_every=2', '--set', 'save_every=0']
    _run(bailong, 'train', 'pretrain', '--config', 'chapters/examples/pretrain_tiny_cpu.yaml', *short, '--out', 'pre', cwd=home, env=env)
    assert json.loads((home/'pre/summary.json').read_text())['new_tokens'] == 500
    _run(bailong, 'train', 'sft', '--config', 'chapters/examples/sft_tiny_cpu.yaml', *short, '--out', 'sft', cwd=home, env=env)
    summary = json.loads((home/'sft/summary.json').read_text(encoding='utf-8'))
    assert summary['conversations']['kept'] > 1800 and summary['answer_loss_end'] > 0, summary
    _run(bailong, 'merge', 'sft', '--out', 'chat-model', cwd=home, env=env)
    r = _run(bailong, 'chat', '--model', 'chat-model', '--max-new-tokens', '3', cwd=home, env=env, input='你好\n')
    assert r.stdout.count('> ') == 2, r.stdout
    print(f'train, merge, chat: {time.perf_counter() - t0:.0f}s')
