"""`bailong bench` as a user runs it: answer (batched, resumable) with the real SmolLM2, check on the packaged real
answers, judge against an OpenAI-compatible server with the key in an environment variable only, show, mc; bad inputs
end with one error naming the argument and leave no file."""
import json, os, subprocess
from pathlib import Path
import pytest
from conftest import run_cli, cli
from servers import FaultServer

ANSWER_KEYS = {'question_id', 'answer_id', 'model_id', 'choices', 'tstamp'}


def lines(path) -> list[dict]:
    return [json.loads(l) for l in Path(path).read_text(encoding='utf-8').splitlines()]


def test_answer_writes_fastchat_answers_batched_and_resumes(smollm2_hf, tmp_path):
    out = tmp_path/'model_answer'/'smol.jsonl'
    base = ['bench', 'answer', '--questions', 'bailong:zh_tw_bench', '--model', smollm2_hf, '--model-id', 'smol',
            '--max-new-tokens', '12', '--batch-size', '4', '--out', out]
    r = run_cli(*base, '--limit', '3')
    assert r.returncode == 0, r.stderr
    first = lines(out)
    assert [a['question_id'] for a in first] == [1, 2, 3] and all(set(a) >= ANSWER_KEYS for a in first)
    assert all(a['model_id'] == 'smol' and len(a['choices'][0]['turns']) == 1 and a['choices'][0]['turns'][0] for a in first)
    r = run_cli(*base, '--limit', '5')
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout[r.stdout.index('{'):])
    assert (report['answered_before'], report['answered']) == (3, 2)
    again = lines(out)
    assert [a['question_id'] for a in again] == [1, 2, 3, 4, 5] and again[:3] == first  # the first three untouched


def test_check_on_real_answers(tmp_path):
    from bailong.data import sample_path
    answers = sample_path('bench/zh_tw_bench/model_answer/SmolLM2-135M-Instruct.jsonl')
    r = run_cli('bench', 'check', '--questions', 'bailong:zh_tw_bench', '--answers', answers, '--out', tmp_path/'c.jsonl')
    assert r.returncode == 0, r.stderr
    rows = lines(tmp_path/'c.jsonl')
    assert len(rows) == len(lines(answers)) and {r['violation'] for r in rows} <= {None, 'simplified', 'language'}
    summary = json.loads(r.stdout)
    assert sum(summary['violations'].values()) == len(rows)


def test_judge_show_with_a_key_only_in_the_environment(tmp_path):
    from bailong.data import sample_path
    answers = sample_path('bench/zh_tw_bench/model_answer/SmolLM2-135M-Instruct.jsonl')
    secret = 'sk-test-' + os.urandom(8).hex()
    env = {**os.environ, 'MY_JUDGE_KEY': secret}
    out = tmp_path/'judgments.jsonl'
    with FaultServer() as server:
        args = ['bench', 'judge', '--questions', 'bailong:zh_tw_bench', '--answers', answers, '--limit', '6', '--base-url',
                server.base_url, '--model', 'judge-model', '--api-key-env', 'MY_JUDGE_KEY', '--out', out,
                '--judge-violations']  # SmolLM2 breaks Bailong's rules often: ask the judge about those answers too
        r = subprocess.run(['bailong', *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert server.auth and all(a == f'Bearer {secret}' for a in server.auth)
        again = subprocess.run(['bailong', *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
        assert again.returncode == 0 and json.loads(again.stdout)['cached'] == 6, again.stdout
    assert secret not in r.stdout + r.stderr + again.stdout + out.read_text()
    judged = lines(out)
    assert len(judged) == 6 and all(j.get('judge_score', j['score']) == 7 for j in judged)  # the server's verdict
    assert all(j['score'] == (0 if j['violation'] else 7) for j in judged)  # a broken rule scores 0 all the same
    r = run_cli('bench', 'show', out, '--plots', tmp_path/'plots')
    assert r.returncode == 0, r.stderr
    assert 'SmolLM2-135M-Instruct' in r.stdout and 'all' in r.stdout and (tmp_path/'plots'/'bars.png').stat().st_size > 0


def test_mc_reports_accuracy_with_an_interval(smollm2_hf, tmp_path):
    r = run_cli('bench', 'mc', '--task', 'translation-zh-en', '--model', smollm2_hf, '--n', '6', '--batch-size', '8', '--out', tmp_path/'mc.json')
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path/'mc.json').read_text())['results']['translation-zh-en']
    assert 0 <= res['acc_ci95_low,none'] <= res['acc,none'] <= res['acc_ci95_high,none'] <= 1


def test_bad_inputs(tmp_path):
    (tmp_path/'q.jsonl').write_text('{"question_id": 1, "category": "x", "turns": ["hi"]}\n{"question_id": 1, "turns": ["again"]}\n')
    (tmp_path/'a.jsonl').write_text(json.dumps({'question_id': 99, 'answer_id': 'a', 'model_id': 'm',
                                                'choices': [{'index': 0, 'turns': ['x']}], 'tstamp': 0}) + '\n')
    cases = {
        'duplicate question ids': (['bench', 'check', '--questions', tmp_path/'q.jsonl', '--answers', tmp_path/'a.jsonl', '--out', tmp_path/'c1.jsonl'], 'q.jsonl', tmp_path/'c1.jsonl'),
        'answers to unknown questions': (['bench', 'check', '--questions', 'bailong:zh_tw_bench', '--answers', tmp_path/'a.jsonl', '--out', tmp_path/'c2.jsonl'], 'a.jsonl', tmp_path/'c2.jsonl'),
        'unknown backend': (['bench', 'answer', '--model', 'm', '--backend', 'tgi', '--out', tmp_path/'x.jsonl'], 'backend', tmp_path/'x.jsonl'),
        'unknown judge backend': (['bench', 'judge', '--answers', tmp_path/'a.jsonl', '--backend', 'tgi', '--out', tmp_path/'j.jsonl'], 'backend', tmp_path/'j.jsonl'),
        'missing mc file': (['bench', 'mc', '--task', tmp_path/'nope.csv', '--model', 'm', '--out', tmp_path/'m.json'], 'nope.csv', tmp_path/'m.json'),
        'no judgments': (['bench', 'show', tmp_path/'none.jsonl'], 'none.jsonl', None),
    }
    for name, (args, word, out) in cases.items():
        rc, err = cli(*args)
        assert rc == 2 and err.startswith('bailong: error:') and word in err, (name, err)
        assert out is None or not out.exists(), name
    with pytest.raises(SystemExit):  # argparse: a --fields value that is not a JSON object
        cli('bench', 'answer', '--model', 'm', '--fields', '[1]')
