"The project's own promises: README rendered from nbs/index.ipynb, modules exported from the notebooks, sample data."
import shutil, subprocess, sys
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


def test_packaged_sample_is_small_and_licensed():
    from bailong.data import sample_path, read_corpus, script_shares
    assert sample_path('zh_tw_sample.txt').stat().st_size + sample_path('en_zh_tw_sample.jsonl').stat().st_size <= 2_000_000
    assert 'Mozilla Public License' in sample_path('NOTICE').read_text()
    assert script_shares(read_corpus(sample_path()))['simplified'] < 0.01
    assert len(read_corpus(sample_path('en_zh_tw_sample.jsonl'), text_field='en')) > 1000
