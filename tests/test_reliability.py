"""Reliability of files: never lose a user's files (tests/test_reliability_run.py holds the run probes). Each test is a probe that lost or changed a user's data before the fix,
the critical ones first: one output contract for every writer (never the current folder, one above it, the home folder
or an input; a non-empty output replaced only with --overwrite and only when it is the command's own kind; the new
output complete before the old goes; permissions and umask kept; killed runs' temporaries cleaned), appendable files
(answers, judgments) repaired only when recognisably bailong's and written under a lock, and the smaller file defects."""
import json, os, stat, subprocess, threading, time
from pathlib import Path
import pytest
from conftest import cli
from servers import FaultServer


def _tree(d: Path) -> dict:
    "{relative path: bytes} of every file under `d`: what a user would miss."
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}


def _user_folder(d: Path) -> dict:
    d.mkdir(parents=True, exist_ok=True)
    (d/'keep.txt').write_text('mine'); (d/'sub').mkdir(exist_ok=True); (d/'sub'/'notes.md').write_text('# notes')
    return _tree(d)


def _answers(tmp_path, n=2) -> Path:
    "A FastChat answer file of the packaged real SmolLM2 answers to the first `n` zh-TW bench questions."
    from bailong.data import sample_path
    src = sample_path('bench/zh_tw_bench/model_answer/SmolLM2-135M-Instruct.jsonl')
    out = tmp_path/'answers'/'smol.jsonl'; out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(''.join(src.read_text(encoding='utf-8').splitlines(True)[:n]), encoding='utf-8')
    return out


def _questions(tmp_path, n=3) -> Path:
    from bailong.data import sample_path
    src = sample_path('bench/zh_tw_bench/question.jsonl')
    out = tmp_path/'questions.jsonl'
    out.write_text(''.join(src.read_text(encoding='utf-8').splitlines(True)[:n]), encoding='utf-8')
    return out


# 1. critical: --out . --overwrite emptied the current folder

def test_notebooks_overwrite_into_the_current_folder_refuses_and_keeps_every_file(tmp_path, monkeypatch):
    here = tmp_path/'s'; before = _user_folder(here)
    monkeypatch.chdir(here)
    for out in ('.', here, '..', tmp_path.parent):
        rc, err = cli('notebooks', out, '--overwrite')
        assert rc == 2 and 'current folder' in err and 'Traceback' not in err, (out, err)
        assert _tree(here) == before, out
    monkeypatch.setenv('HOME', str(tmp_path/'home')); (tmp_path/'home').mkdir()
    rc, err = cli('notebooks', tmp_path/'home', '--overwrite')
    assert rc == 2 and 'home folder' in err


def test_overwrite_replaces_only_bailongs_own_output_and_keeps_its_permissions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path/'mine'; before = _user_folder(mine)
    rc, err = cli('notebooks', mine, '--overwrite')
    assert rc == 2 and 'not a bailong notebooks output' in err, err
    assert _tree(mine) == before
    note = tmp_path/'note.txt'; note.write_bytes(b'a note')
    rc, err = cli('notebooks', note, '--overwrite')
    assert rc == 2 and note.read_bytes() == b'a note', err
    old = os.umask(0o027)
    try: assert cli('notebooks', 'nb') == (0, '')
    finally: os.umask(old)
    assert stat.S_IMODE((tmp_path/'nb').stat().st_mode) == 0o750, 'the umask, not 0700'
    os.chmod(tmp_path/'nb', 0o751); (tmp_path/'nb'/'00_data.ipynb').write_text('edited')
    assert cli('notebooks', 'nb')[0] == 2 and (tmp_path/'nb'/'00_data.ipynb').read_text() == 'edited'
    assert cli('notebooks', 'nb', '--overwrite') == (0, '')
    assert stat.S_IMODE((tmp_path/'nb').stat().st_mode) == 0o751 and (tmp_path/'nb'/'00_data.ipynb').read_text() != 'edited'
    assert not [p.name for p in tmp_path.iterdir() if 'bailong-' in p.name]


def test_an_input_is_never_the_output(tmp_path, sample, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = tmp_path/'corpus'; corpus.mkdir()
    (corpus/'zh.txt').write_bytes(b'\n'.join(sample().read_bytes().split(b'\n')[:50]))
    before = _tree(corpus)
    for out in (corpus, tmp_path):
        rc, err = cli('data', 'prepare', '--input', corpus, '--out', out, '--overwrite')
        assert rc == 2 and ('is the input' in err or 'current folder' in err), err
    assert _tree(corpus) == before


def test_an_empty_folder_or_a_symlink_is_written_into_not_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path/'target'; target.mkdir(); os.chmod(target, 0o711)
    (tmp_path/'link').symlink_to(target)
    assert cli('notebooks', 'link') == (0, '')
    assert (tmp_path/'link').is_symlink() and (target/'00_data.ipynb').exists()
    assert stat.S_IMODE(target.stat().st_mode) == 0o711
    assert cli('notebooks', 'link', '--overwrite') == (0, '') and (tmp_path/'link').is_symlink()
    assert not [p.name for p in target.iterdir() if 'bailong-tmp' in p.name or 'bailong-old' in p.name]


@pytest.fixture
def tmpfs(tmp_path):
    "make(size): a real tmpfs mounted at a new folder (root only; skipped otherwise), unmounted after the test."
    mounted = []
    def make(size: str) -> Path:
        d = tmp_path/f'mnt{len(mounted)}'; d.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(d)], capture_output=True, text=True)
        if r.returncode: pytest.skip(f'cannot mount a tmpfs here (needs root): {r.stderr.strip()}')
        mounted.append(d); return d
    yield make
    for d in mounted: subprocess.run(['umount', '-l', str(d)], capture_output=True)


def test_a_mount_point_is_written_into(tmpfs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    mnt = tmpfs('8m')
    assert cli('notebooks', mnt) == (0, '') and (mnt/'00_data.ipynb').exists()
    assert cli('notebooks', mnt, '--overwrite') == (0, '') and os.path.ismount(mnt)


def test_a_full_disk_keeps_the_old_output_whole(tmpfs, monkeypatch, tmp_path):
    from bailong.cli import chapter_files
    size = sum(p.stat().st_size for p in chapter_files().values())
    monkeypatch.chdir(tmp_path)
    mnt = tmpfs(f'{size * 3 // 2 // 1024}k')  # room for one copy, not for the new one beside the old
    assert cli('notebooks', mnt/'nb') == (0, '')
    before = _tree(mnt/'nb')
    try: rc, err = cli('notebooks', mnt/'nb', '--overwrite')
    except OSError as e: rc, err = 2, str(e)  # the one-line error for OSError is part B's top-level handler
    assert rc != 0 and 'No space left' in err, err
    assert _tree(mnt/'nb') == before, 'the old output must stay whole until the new one is complete'
    assert not [p.name for p in (mnt/'nb').iterdir() if 'bailong-tmp' in p.name or 'bailong-old' in p.name]


def test_a_killed_runs_temporaries_are_cleaned_by_the_next_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dead = 2**22 + 12345  # above any pid_max: no such process
    (tmp_path/f'.nb.bailong-tmp-{dead}').mkdir(); (tmp_path/f'.nb.bailong-tmp-{dead}'/'half.ipynb').write_text('{')
    (tmp_path/f'.other.bailong-tmp-{dead}').mkdir()  # another output's: not this run's to clean
    (tmp_path/'.nb.tmp-abc').mkdir()  # not named by bailong's contract: could be the user's
    assert cli('notebooks', 'nb') == (0, '')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.nb.tmp-abc', f'.other.bailong-tmp-{dead}', 'nb']


# 2. files silently replaced or truncated

def test_a_one_line_note_given_as_answer_or_judgment_out_survives_byte_for_byte(tmp_path):
    note = tmp_path/'note.txt'; note.write_bytes('remember: 買牛奶'.encode())
    (tmp_path/'no-model').mkdir()  # a folder that exists: the output is refused before any model is loaded
    rc, err = cli('bench', 'answer', '--questions', 'bailong:zh_tw_bench', '--model', tmp_path/'no-model', '--out', note)
    assert rc == 2 and 'not an answer file' in err, err
    answers = _answers(tmp_path, 1)
    rc, err = cli('bench', 'judge', '--questions', 'bailong:zh_tw_bench', '--answers', answers, '--out', note,
                  '--api-key-env', 'BAILONG_TEST_NO_SUCH_KEY')
    assert rc == 2 and 'not a judgment file' in err, err
    assert note.read_bytes() == 'remember: 買牛奶'.encode()


def test_a_torn_first_line_of_bailongs_own_answer_file_is_still_repaired(tmp_path):
    from bailong.bench import _open_answers
    out = _answers(tmp_path, 1)
    out.write_bytes(out.read_bytes()[:40])  # killed while writing its first answer
    assert _open_answers(out, 'SmolLM2-135M-Instruct') == {} and out.read_bytes() == b''


def test_bench_check_never_replaces_its_inputs_or_a_users_file(tmp_path):
    questions, answers = _questions(tmp_path), _answers(tmp_path)
    q_before, a_before = questions.read_bytes(), answers.read_bytes()
    for out in (questions, answers):
        rc, err = cli('bench', 'check', '--questions', questions, '--answers', answers, '--out', out, '--overwrite')
        assert rc == 2 and ('input' in err or 'answer file itself' in err), err
    assert questions.read_bytes() == q_before and answers.read_bytes() == a_before
    note = tmp_path/'note.txt'; note.write_text('mine')
    rc, err = cli('bench', 'check', '--questions', questions, '--answers', answers, '--out', note, '--overwrite')
    assert rc == 2 and 'not a file this command wrote' in err and note.read_text() == 'mine', err
    out = tmp_path/'checks.jsonl'
    assert cli('bench', 'check', '--questions', questions, '--answers', answers, '--out', out)[0] == 0
    rc, err = cli('bench', 'check', '--questions', questions, '--answers', answers, '--out', out)
    assert rc == 2 and '--overwrite' in err
    os.chmod(out, 0o640)
    assert cli('bench', 'check', '--questions', questions, '--answers', answers, '--out', out, '--overwrite')[0] == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and len(out.read_text().splitlines()) >= 2


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, sp_base) -> Path:
    "A tiny Llama with a real SentencePiece tokenizer, saved as a Hugging Face directory: loads and scores in a second."
    from bailong.tokenizer import load_hf_tokenizer
    from bailong.train import tiny_llama
    tok, d = load_hf_tokenizer(sp_base), tmp_path_factory.mktemp('tiny')/'tiny'
    tiny_llama(len(tok), hidden_size=64, intermediate_size=128, num_key_value_heads=2).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_bench_mc_out_refuses_a_users_file(tiny_model, tmp_path):
    task = tmp_path/'mc.csv'
    task.write_text('question,A,B,C,D,answer\n' + ''.join(f'{i} 加 {i}？,{2 * i},{i},{3 * i},{4 * i},A\n' for i in range(1, 5)),
                    encoding='utf-8')
    note = tmp_path/'results.json'; note.write_text('{"mine": true}')
    args = ['bench', 'mc', '--task', task, '--model', tiny_model, '--n', '0', '--out', note]
    rc, err = cli(*args)
    assert rc == 2 and '--overwrite' in err and note.read_text() == '{"mine": true}', err
    rc, err = cli(*args, '--overwrite')
    assert rc == 2 and 'not a file this command wrote' in err and note.read_text() == '{"mine": true}', err
    config = (tiny_model/'config.json').read_bytes()
    rc, err = cli(*args[:-1], task, '--overwrite')
    assert rc == 2 and 'is the input' in err, err
    rc, err = cli(*args[:-1], tiny_model/'config.json', '--overwrite')
    assert rc == 2 and (tiny_model/'config.json').read_bytes() == config, err
    note.write_text(json.dumps({'results': {}, 'n-samples': {}, 'bailong_version': 'x'}))  # an earlier run's
    assert cli(*args, '--overwrite')[0] == 0 and json.loads(note.read_text())['results']


def _judgments(tmp_path, torn=False) -> Path:
    rec = {'question_id': 1, 'model': 'smol', 'judge': ['judge-model', 'single-v1'], 'user_prompt': '', 'judgment': 'ok',
           'score': 7, 'turn': 1, 'tstamp': 0.0, 'category': 'writing'}
    line = json.dumps(rec) + '\n'
    out = tmp_path/'judgments.jsonl'
    out.write_text(line + (json.dumps({**rec, 'question_id': 2})[:30] if torn else ''))
    return out


def test_bench_show_plots_refuses_a_users_folder_and_warns_on_a_torn_line(tmp_path):
    judgments = _judgments(tmp_path, torn=True)
    plots = tmp_path/'plots'; plots.mkdir(); (plots/'bars.png').write_bytes(b'my own chart')
    rc, err = cli('bench', 'show', judgments, '--plots', plots)
    assert rc == 2 and (plots/'bars.png').read_bytes() == b'my own chart', err
    assert 'judgments.jsonl:2: the last line is cut off' in err, err
    rc, err = cli('bench', 'show', judgments, '--plots', plots, '--overwrite')
    assert rc == 2 and 'not a bailong plots output' in err and (plots/'bars.png').read_bytes() == b'my own chart'
    assert cli('bench', 'show', judgments, '--plots', tmp_path/'p2')[0] == 0 and (tmp_path/'p2'/'bars.png').exists()
    assert cli('bench', 'show', judgments, '--plots', tmp_path/'p2', '--overwrite')[0] == 0


# 5. appendable outputs are written under a lock

def test_two_concurrent_answer_runs_on_one_file(tmp_path):
    from bailong.bench import AnswerConfig, answer
    questions, out = _questions(tmp_path, 3), tmp_path/'a.jsonl'
    n_turns = sum(len(json.loads(l)['turns']) for l in questions.read_text(encoding='utf-8').splitlines())
    with FaultServer(default='一個回答。', latency=0.2) as server:
        cfg = AnswerConfig(questions=str(questions), model='m', out=str(out), backend='openai', base_url=server.base_url,
                           concurrency=1, api_key_env='BAILONG_TEST_NO_SUCH_KEY')
        first = threading.Thread(target=answer, args=(cfg,), kwargs={'progress': False}); first.start()
        lock, deadline = tmp_path/'.a.jsonl.bailong-lock', time.time() + 30
        while not lock.exists() and time.time() < deadline: time.sleep(0.01)
        rc, err = cli('bench', 'answer', '--questions', questions, '--model', 'm', '--out', out, '--backend', 'openai',
                      '--base-url', server.base_url, '--api-key-env', 'BAILONG_TEST_NO_SUCH_KEY')
        first.join(60)
        assert server.count() == n_turns, 'the second run must not answer anything'
    assert rc == 2 and f'PID {os.getpid()}' in err and err.count('\n') == 1, err
    assert [json.loads(l)['question_id'] for l in out.read_text(encoding='utf-8').splitlines()] == [1, 2, 3]
    assert not lock.exists()


def test_a_second_judge_on_one_file_refuses_naming_the_first(tmp_path):
    from bailong.data import output_lock
    out, answers = tmp_path/'j.jsonl', _answers(tmp_path, 1)
    with output_lock(out):
        rc, err = cli('bench', 'judge', '--questions', 'bailong:zh_tw_bench', '--answers', answers, '--out', out,
                      '--base-url', 'http://127.0.0.1:9/v1')
    assert rc == 2 and f'(PID {os.getpid()}) is writing it' in err, err
    assert not out.exists()


# 8. smaller file defects

def test_bench_check_on_an_empty_answer_file_fails(tmp_path):
    empty = tmp_path/'empty.jsonl'; empty.write_text('')
    rc, err = cli('bench', 'check', '--questions', _questions(tmp_path), '--answers', empty, '--out', tmp_path/'c.jsonl')
    assert rc == 2 and 'no answers' in err and not (tmp_path/'c.jsonl').exists(), err


def test_judge_leaves_no_empty_file_when_it_fails_on_a_missing_key(tmp_path, monkeypatch):
    monkeypatch.delenv('BAILONG_TEST_NO_SUCH_KEY', raising=False)
    out = tmp_path/'j.jsonl'
    rc, err = cli('bench', 'judge', '--questions', 'bailong:zh_tw_bench', '--answers', _answers(tmp_path, 1), '--out', out,
                  '--api-key-env', 'BAILONG_TEST_NO_SUCH_KEY', '--judge-violations')
    assert rc == 2 and 'BAILONG_TEST_NO_SUCH_KEY' in err, err
    assert not out.exists() and not list(tmp_path.glob('.j.jsonl*'))
