# nbdev 2 setup.py, reading everything from settings.ini (without pkg_resources, gone in setuptools >= 81)
from configparser import ConfigParser
from pathlib import Path
import setuptools, shlex, shutil
from setuptools.command.build_py import build_py
from packaging.version import Version

assert Version(setuptools.__version__) >= Version('77'), 'bailong builds with setuptools >= 77 (PEP 639 licence metadata)'

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

cfg_keys = 'version description keywords author author_email'.split()
expected = cfg_keys + "lib_name user branch license status min_python audience language".split()
for o in expected: assert o in cfg, "missing expected setting: {}".format(o)
setup_cfg = {o:cfg[o] for o in cfg_keys}

# settings.ini's licence key -> SPDX licence expression (PEP 639; it replaces the "License ::" classifiers)
licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT', 'gpl2': 'GPL-2.0-only', 'gpl3': 'GPL-3.0-only', 'bsd3': 'BSD-3-Clause'}
statuses = [ '1 - Planning', '2 - Pre-Alpha', '3 - Alpha',
    '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive' ]
py_versions = '3.10 3.11 3.12 3.13'.split()

def reqs(key): return shlex.split(cfg.get(key) or '')
requirements = reqs('requirements') + reqs('pip_requirements')
min_python = cfg['min_python']

class build_py_with_chapters(build_py):
    """Also put the chapters (nbs/*.ipynb, nbs/images/) and examples/*.yaml into the built package, as
    bailong/_chapters/, for `bailong notebooks DIR`. nbs/ and examples/ stay the only copies in git; an editable
    install skips this and `bailong notebooks` reads them from the repository instead."""
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return
        nbs, out = Path(cfg.get('nbs_path', 'nbs')), Path(self.build_lib)/cfg['lib_path']/'_chapters'
        chapters = sorted(nbs.glob('*.ipynb'))
        if not chapters: raise FileNotFoundError(f'no notebooks in {nbs.resolve()}: the wheel must carry the chapters')
        if out.exists(): shutil.rmtree(out)
        (out/'examples').mkdir(parents=True)
        for p in chapters: shutil.copy2(p, out/p.name)
        if (nbs/'images').is_dir():
            shutil.copytree(nbs/'images', out/'images', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
        for p in sorted(Path('examples').glob('*.yaml')): shutil.copy2(p, out/'examples'/p.name)

# README's relative image links (nbs/images/...) point at the repository, so that they show on PyPI too
raw = cfg['git_url'].replace('https://github.com/', 'https://raw.githubusercontent.com/') + '/' + cfg['branch'] + '/'
long_description = Path('README.md').read_text(encoding='utf-8').replace('](nbs/images/', '](' + raw + 'nbs/images/')

setuptools.setup(
    name = cfg['lib_name'],
    license_expression = licenses.get(cfg['license'].lower(), cfg['license']),
    license_files = reqs('license_files'),  # into the wheel's .dist-info/licenses/
    classifiers = [
        'Development Status :: ' + next(o for o in statuses if o.startswith(cfg['status'] + ' ')),  # status = 3: Alpha
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: '+o for o in py_versions[py_versions.index(min_python):]],
    url = cfg['git_url'],
    # namespace discovery, so that the data folders under bailong/assets/ are not 'ambiguous packages' to setuptools
    packages = setuptools.find_namespace_packages(include=['bailong', 'bailong.*'], exclude=['*__pycache__*']),
    include_package_data = True,
    package_data = {'bailong': ['assets/**/*', 'vendor/**/*']},  # the packaged data, every subfolder, with NOTICE and licenses/;
    # vendor/: llama.cpp's pinned GGUF converter, with its licence (gguf-py/ is no package name, so it travels as data)
    cmdclass = {'build_py': build_py_with_chapters},
    install_requires = requirements,
    extras_require = {'dev': reqs('dev_requirements'), 'gpu': reqs('gpu_requirements'),  # gpu: fused Triton kernels (CUDA)
                      'lab': reqs('lab_requirements'),  # lab: run the chapters from `bailong notebooks DIR` in JupyterLab
                      'track': reqs('track_requirements'),  # track: report_to tensorboard / trackio
                      'vllm': reqs('vllm_requirements'),  # vllm: `bailong bench answer --backend vllm` (CUDA)
                      'llama': reqs('llama_requirements')},  # llama: llama.cpp (compiled from its sdist) to check GGUF exports
    dependency_links = cfg.get('dep_links','').split(),
    python_requires  = '>=' + cfg['min_python'],
    long_description = long_description,
    long_description_content_type = 'text/markdown',
    zip_safe = False,
    entry_points = {
        'console_scripts': cfg.get('console_scripts','').split(),
        'nbdev': [f'{cfg.get("lib_path")}={cfg.get("lib_path")}._modidx:d']
    },
    **setup_cfg)
