"The judge against real OpenAI-compatible servers on 127.0.0.1: `transformers serve` with SmolLM2, and a server that fails on purpose."
import json, os, signal, subprocess, sys, time
from dataclasses import asdict
from pathlib import Path
import pytest
from servers import FaultServer
from bailong.data import sample_path
from bailong.judge import JudgeConfig, JudgeError, judge, read_judgments, results_table

MT_QUESTIONS = sample_path('bench/mt_bench/question.jsonl')


def write_jsonl(path: Path, rows) -> str:
    path.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows), encoding='utf-8')
    return str(path)


def mt_subset(tmp: Path, ids) -> str:
    "A question file with MT-bench's questions `ids`."
    qs = [json.loads(l) for l in MT_QUESTIONS.read_text(encoding='utf-8').splitlines()]
    return write_jsonl(tmp/'question.jsonl', [q for q in qs if q['question_id'] in ids])


def keys(path) -> list:
    return [(r['model'], r['question_id'], r['turn']) for r in map(json.loads, Path(path).read_text(encoding='utf-8').splitlines())]


def test_kill_and_resume_against_transformers_serve(served_smollm2, tmp_path):
    "A judge process killed after its first judgment; the rerun judges the rest, and every (question, turn) is in the file once."
    url, model = served_smollm2
    cfg = JudgeConfig(questions=mt_subset(tmp_path, {81, 101}), answers=[str(sample_path('bench/mt_bench/model_answer/SmolLM2-135M-Instruct.jsonl'))],
                      out=str(tmp_path/'judgments.jsonl'), base_url=url, model=model, reference=str(sample_path('bench/mt_bench/reference_answer/gpt-4.jsonl')),
                      concurrency=1, max_tokens=8, score_retries=0, judge_violations=True, timeout=60)
    code = 'import json, sys; from bailong.judge import JudgeConfig, judge; judge(JudgeConfig(**json.loads(sys.argv[1])), progress=False)'
    log = open(tmp_path/'judge.log', 'w+')  # a file, not a pipe, so a chatty child never blocks on a full pipe
    proc = subprocess.Popen([sys.executable, '-c', code, json.dumps(asdict(cfg))], stdout=log, stderr=log, start_new_session=True)
    out, deadline = Path(cfg.out), time.monotonic() + 90
    while not (out.exists() and out.read_bytes().count(b'\n') >= 1):
        assert proc.poll() is None, f"the judge exited before writing a judgment:\n{(tmp_path/'judge.log').read_text()[-3000:]}"
        assert time.monotonic() < deadline, 'no judgment within 90 s'
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL); proc.wait(); log.close()
    before = out.read_bytes()
    complete = before[:before.rfind(b'\n') + 1]
    assert 1 <= complete.count(b'\n') < 4, 'the run should have been killed midway'

    report = judge(cfg, progress=False)
    test_tasks = 4  # two questions, two turns each
    assert (report['tasks'], report['cached'] + report['judged'], report['failed']) == (test_tasks, test_tasks, 0)
    assert report['cached'] == complete.count(b'\n') and report['judged'] >= 1
    after = out.read_bytes()
    assert after.startswith(complete)  # nothing judged is lost or rewritten
    assert sorted(keys(out)) == sorted(set(keys(out))) and len(keys(out)) == test_tasks
    assert {k[1:] for k in keys(out)} == {(81, 1), (81, 2), (101, 1), (101, 2)}
    recs = read_judgments(out)
    assert {r['judge'][1] for r in recs} == {'single-v1', 'single-v1-multi-turn', 'single-math-v1', 'single-math-v1-multi-turn'}
    for r in recs:
        assert r['judge'][0] == model and r['attempts'] == 1 and r['http'] == [200] and isinstance(r['judgment'], str)
        assert -1 <= (r['judge_score'] if r['violation'] else r['score']) <= 10

    again = judge(cfg, progress=False)  # nothing left to judge: no call at all
    assert (again['cached'], again['judged']) == (test_tasks, 0) and out.read_bytes() == after


FAULTS = {  # question -> what the server does with the requests about it, in order
    'timeout': ['timeout'],                   # the first attempt outlives the client's timeout
    'error': [500, 500],                      # two server errors, then a judgment
    'busy': [429],                            # rate limited once (with Retry-After)
    'vague': ['noscore', 'noscore'],          # two judgments without a score, then one with
    'silent': ['noscore'] * 3,                # never a score: recorded as -1
    'down': [500] * 4,                        # fails all 1 + max_retries attempts: not recorded
}


def fault_files(tmp: Path) -> tuple[str, str]:
    "Questions named after the faults (English, one turn) and plain English answers to them."
    qs = [{'question_id': i, 'category': 'writing', 'turns': [f'Question {name}: write two sentences about the sea.']}
          for i, name in enumerate(FAULTS, 1)]
    answers = [{'question_id': q['question_id'], 'answer_id': f'a{q["question_id"]}', 'model_id': 'writer',
                'choices': [{'index': 0, 'turns': ['The sea covers most of the planet. Its tides follow the moon.']}],
                'tstamp': 0.0} for q in qs]
    return write_jsonl(tmp/'question.jsonl', qs), write_jsonl(tmp/'writer.jsonl', answers)


def test_faults_are_retried_recorded_and_never_lost(tmp_path, capsys, monkeypatch):
    secret = 'sk-test-' + 'q' * 24
    monkeypatch.setenv('BAILONG_TEST_JUDGE_KEY', secret)
    questions, answers = fault_files(tmp_path)
    script = {f'Question {name}:': actions for name, actions in FAULTS.items()}
    with FaultServer(script, delay=2.5) as server:
        cfg = JudgeConfig(questions=questions, answers=[answers], out=str(tmp_path/'judge.jsonl'), base_url=server.base_url,
                          model='fault-judge', api_key_env='BAILONG_TEST_JUDGE_KEY', concurrency=3, max_retries=3,
                          score_retries=2, timeout=1.0, max_tokens=64)
        with pytest.raises(JudgeError) as e: judge(cfg, progress=False)
        report = e.value.report
        assert (report['failed'], report['judged'], report['not_attempted']) == (1, 5, 0)
        assert 'question 6 turn 1' in str(e.value) and 'JudgeHTTPError: Error code: 500' in str(e.value) and 'Run again' in str(e.value)
        recs = {r['question_id']: r for r in read_judgments(cfg.out)}
        assert sorted(recs) == [1, 2, 3, 4, 5]                                  # the failed one is not recorded
        assert all(r['violation'] is None for r in recs.values())
        assert (recs[1]['http'], recs[1]['score']) == (['timeout', 200], 7)
        assert (recs[2]['http'], recs[2]['score']) == ([500, 500, 200], 7)
        assert (recs[3]['http'], recs[3]['score']) == ([429, 200], 7)
        assert (recs[4]['attempts'], recs[4]['http'], recs[4]['score']) == (3, [200] * 3, 7)
        assert (recs[5]['attempts'], recs[5]['score']) == (3, -1) and 'helpful' in recs[5]['judgment']
        assert server.count('Question down:') == 4
        calls = server.count()

        report = judge(cfg, progress=False)                                      # the server is back for question 6
        assert (report['cached'], report['judged'], report['failed']) == (5, 1, 0)
        assert server.count() == calls + 1                                       # only the missing judgment was asked for
        assert len(keys(cfg.out)) == 6 == len(set(keys(cfg.out)))

    assert set(server.auth) == {f'Bearer {secret}'}                              # the key was used ...
    printed = capsys.readouterr()
    for where in (Path(cfg.out).read_text(encoding='utf-8'), json.dumps(report), str(e.value), repr(cfg), printed.out, printed.err):
        assert secret not in where and 'q' * 24 not in where                       # ... and shown nowhere

    table = results_table(cfg.out)
    row = table[(table['model'] == 'writer') & (table['category'] == 'all')].iloc[0]
    assert (row['n'], row['unparsable'], row['violations'], row['mean']) == (6, 1, 0, 7.0)


def test_a_dead_server_stops_the_run(tmp_path):
    "Three failures in a row stop the run; nothing is recorded, and the error says so."
    questions, answers = fault_files(tmp_path)
    with FaultServer({'Question': [500] * 100}) as server:
        cfg = JudgeConfig(questions=questions, answers=[answers], out=str(tmp_path/'judge.jsonl'), base_url=server.base_url,
                          model='fault-judge', concurrency=1, max_retries=0)
        with pytest.raises(JudgeError, match='stopped after 3 failures in a row') as e: judge(cfg, progress=False)
        report = e.value.report  # the task already in flight when the third failure came back fails too
        assert report['failed'] in (3, 4) and report['failed'] + report['not_attempted'] == 6 == report['tasks']
        assert server.count() == report['failed']
    assert Path(cfg.out).read_text() == ''


def test_concurrency_limit(tmp_path):
    questions, answers = fault_files(tmp_path)
    with FaultServer(latency=0.3) as server:
        cfg = JudgeConfig(questions=questions, answers=[answers], out=str(tmp_path/'judge.jsonl'), base_url=server.base_url,
                          model='fault-judge', concurrency=2)
        assert judge(cfg, progress=False)['judged'] == 6
    assert server.max_in_flight == 2
