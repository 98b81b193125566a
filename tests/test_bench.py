"""Bench questions and answers: each kind of bad question file ends in an error that names the file and line, field
mappings read other layouts (JSON, JSONL, a saved HF dataset), batched greedy answers equal the one-at-a-time loop on
SmolLM2, turn 2 is asked after the model's own turn-1 answer, an interrupted answer run resumes (a torn last line is
cut and written again), and the openai backend writes a valid FastChat file against a real `transformers serve` on
127.0.0.1."""
import importlib.util, json
import pytest
from bailong.bench import (AnswerConfig, answer, answer_turns, generate_batched, generate_loop, generation_settings,
                           load_answer_model, read_answers, read_questions, _generate)
from bailong.data import DataError

FIELDS = {'question_id': 'id', 'turns': 'prompt', 'category': 'category', 'reference': 'answer'}


@pytest.fixture(scope='module')
def smol(smollm2_hf):
    "SmolLM2-135M-Instruct (its HF copy, made once per session from the GGUF), float32 on the CPU, loaded once for the module."
    return load_answer_model(smollm2_hf, device='cpu')


@pytest.fixture(scope='module')
def questions():
    return read_questions('bailong:zh_tw_bench'), read_questions('bailong:mt_bench')


GOOD = json.dumps({'question_id': 1, 'category': 'writing', 'turns': ['Hi']})
BAD = [('no_id.jsonl', GOOD + '\n' + json.dumps({'turns': ['Hi']}), "no_id.jsonl:2: no question id (field 'question_id')"),
       ('dup.jsonl', GOOD + '\n' + GOOD, 'dup.jsonl:2: duplicate question_id 1 (first at'),
       ('empty.jsonl', json.dumps({'question_id': 3, 'turns': []}), "empty.jsonl:1: question 3: turns (field 'turns') is empty"),
       ('blank.jsonl', json.dumps({'question_id': 3, 'turns': ['Hi', '  ']}), 'blank.jsonl:1: question 3: turns'),
       ('bad.jsonl', GOOD + '\n\n' + GOOD[:-5], 'bad.jsonl:3: not valid JSON'),
       ('bad.json', '[\n' + GOOD + ',\n{"question_id": 2,]\n]', 'bad.json:3: not valid JSON'),
       ('scalar.json', '{"data": 1}', "expected a list of questions, or an object with a 'data' or 'questions' list"),
       ('list.jsonl', '[1, 2]', 'list.jsonl record 1: expected a JSON object, got int'),
       ('none.jsonl', '\n\n', 'none.jsonl: no questions in it')]


@pytest.mark.parametrize('name,text,message', BAD, ids=[b[0] for b in BAD])
def test_bad_question_files(tmp_path, name, text, message):
    (tmp_path/name).write_text(text, encoding='utf-8')
    with pytest.raises(DataError) as e: read_questions(tmp_path/name)
    assert message in str(e.value) and str(tmp_path/name) in str(e.value), str(e.value)


def test_packaged_sets_and_settings(questions):
    zh, mt = questions
    assert len(zh) == len(mt) == 80 and {len(q['turns']) for q in mt} == {2}
    assert sum('reference' in q for q in mt) == 39 and read_questions('bailong:mt_bench', limit=5) == mt[:5]
    assert [generation_settings(c)['temperature'] for c in ('writing', 'roleplay', 'extraction', 'math', 'coding',
            'reasoning', 'stem', 'humanities', 'arena-hard-200', 'generic')] == [0.7, 0.7, 0, 0, 0, 0, 0.1, 0.1, 0, 0.7]
    assert not generation_settings('math')['do_sample'] and generation_settings('stem')['do_sample']
    with pytest.raises(FileNotFoundError): read_questions('bailong:no_such_bench.jsonl')


def test_field_mapping(tmp_path, questions):
    "The same records as a JSON list, an object with a 'questions' list, JSON lines and a saved HF dataset."
    import datasets
    recs = [{'id': f'q{i}', 'prompt': q['turns'][0], 'answer': 'ref' if i % 2 else None, 'category': q['category'] if i else None}
            for i, q in enumerate(questions[1][:6])]
    del recs[1]['category']  # absent from a JSON record: 'general' too
    (tmp_path/'list.json').write_text(json.dumps(recs), encoding='utf-8')
    (tmp_path/'obj.json').write_text(json.dumps({'questions': recs}), encoding='utf-8')
    (tmp_path/'lines.json').write_text('\n'.join(map(json.dumps, recs)), encoding='utf-8')  # JSON lines named .json
    datasets.Dataset.from_list([{'category': None, **r} for r in recs]).save_to_disk(str(tmp_path/'ds'))
    want = [{'question_id': r['id'], 'category': r.get('category') or 'general', 'turns': [r['prompt']],
             **({'reference': ['ref']} if r['answer'] else {})} for r in recs]
    for src in ('list.json', 'obj.json', 'lines.json', 'ds'):
        assert read_questions(tmp_path/src, fields=FIELDS) == want, src
    assert read_questions(tmp_path/'ds', fields=FIELDS, limit=2) == want[:2]
    with pytest.raises(DataError, match="unknown field 'prompt'"): read_questions(tmp_path/'list.json', fields={'prompt': 'turns'})
    with pytest.raises(DataError, match="no record of .* has the field 'prompts'"): read_questions(tmp_path/'ds', fields={'turns': 'prompts'})
    with pytest.raises(DataError, match=r"list.json record 1: no question id \(field 'question_id'\)"): read_questions(tmp_path/'list.json')


def test_batched_greedy_equals_loop(smol, questions):
    "Left-padded, length-sorted batches give the loop's greedy answers token for token (float32, CPU)."
    model, tok = smol
    assert tok.pad_token == '<|endoftext|>' and tok.eos_token == '<|im_end|>' and tok.padding_side == 'left'
    convs = [[{'role': 'user', 'content': q['turns'][0]}] for q in questions[0][:3] + questions[1][:2]]
    texts, counts = generate_loop(model, tok, convs, 16)
    assert generate_batched(model, tok, convs, 16, batch_size=3) == (texts, counts)
    assert all(0 < n <= 16 for n in counts) and all(texts)


def test_turn_two_sees_its_own_answer(smol, questions):
    model, tok = smol
    zh, mt = questions
    seen = []
    def gen(convs, qs):
        seen.append([[dict(m) for m in c] for c in convs]); return _generate(model, tok, convs, 12)
    answers, counts = answer_turns([mt[0], zh[0], mt[1]], gen, system_prompt='Be brief.')
    assert [len(a) for a in answers] == [2, 1, 2] and [len(c) for c in counts] == [2, 1, 2]
    assert [len(s) for s in seen] == [3, 2]
    for conv, q, a in zip(seen[1], (mt[0], mt[1]), (answers[0], answers[2])):
        assert conv == [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': q['turns'][0]},
                        {'role': 'assistant', 'content': a[0]}, {'role': 'user', 'content': q['turns'][1]}]


def test_resume_after_a_torn_line(smol, tmp_path, questions):
    out = tmp_path/'model_answer'/'smol.jsonl'
    cfg = AnswerConfig(questions='bailong:mt_bench', model='smol', out=str(out), max_new_tokens=6, limit=2, batch_size=2)
    assert answer(cfg, progress=False, loaded=smol)['answered'] == 2
    first = read_answers(out)
    out.write_bytes(out.read_bytes()[:-25])  # the last line torn, as by a kill during its write
    with pytest.raises(DataError, match=r'smol.jsonl:2: the last line is cut off'): read_answers(out)
    cfg.limit = 4
    report = answer(cfg, progress=False, loaded=smol)
    assert (report['answered_before'], report['answered']) == (1, 3), report
    done = read_answers(out)
    assert list(done) == [q['question_id'] for q in questions[1][:4]] and done[81] == first[81]
    for q in questions[1][:4]:
        r = done[q['question_id']]
        assert r['model_id'] == 'smol' and len(r['choices'][0]['turns']) == 2 and len(r['answer_id']) == 22
        g = r['generation']
        assert (g['temperature'], g['seed'], g['max_new_tokens']) == (generation_settings(q['category'])['temperature'], 0, 6)
        assert all(0 < n <= 6 for n in g['new_tokens'])
    assert answer(cfg, progress=False, loaded=smol)['answered'] == 0  # nothing left to do
    lines = out.read_text(encoding='utf-8').splitlines()
    lines.insert(1, lines[0][:30])
    out.write_text('\n'.join(lines) + '\n', encoding='utf-8')  # a bad line that is not the last: an error, not a resume
    with pytest.raises(DataError, match='smol.jsonl:2: not valid JSON'): answer(cfg, progress=False, loaded=smol)


def test_bad_configs(tmp_path):
    for kw, msg in [({'backend': 'tgi', 'model': 'm'}, "backend='tgi'"), ({}, 'model: give the model'),
                    ({'model': 'm', 'batch_size': 0}, 'batch_size=0'), ({'model': 'm', 'limit': -1}, 'limit=-1')]:
        with pytest.raises(DataError, match=msg): answer(AnswerConfig(out=str(tmp_path/'a.jsonl'), **kw), progress=False)
    assert not (tmp_path/'a.jsonl').exists()


@pytest.mark.skipif(importlib.util.find_spec('vllm') is not None, reason='vLLM is installed')
def test_vllm_backend_says_what_to_install(tmp_path):
    with pytest.raises(ImportError, match="backend='vllm' needs vLLM"):
        answer(AnswerConfig(model='m', backend='vllm', limit=1, out=str(tmp_path/'a.jsonl')), progress=False)


def test_openai_backend_against_transformers_serve(served_smollm2, tmp_path, questions, monkeypatch):
    base_url, name = served_smollm2
    monkeypatch.setenv('BENCH_TEST_KEY', 'sk-test-do-not-save-3141')
    out = tmp_path/'served.jsonl'
    cfg = AnswerConfig(questions='bailong:mt_bench', model=name, model_id='smol-served', out=str(out), backend='openai',
                       base_url=base_url, api_key_env='BENCH_TEST_KEY', max_new_tokens=8, limit=3, concurrency=2)
    report = answer(cfg, progress=False)
    assert (report['answered'], report['questions']) == (3, 3) and 0 < report['new_tokens'] <= 3 * 2 * 8, report
    done = read_answers(out)
    assert list(done) == [q['question_id'] for q in questions[1][:3]]
    for r in done.values():
        assert r['model_id'] == 'smol-served' and len(r['choices'][0]['turns']) == 2 and all(r['choices'][0]['turns'])
        assert r['generation']['backend'] == 'openai' and all(0 < n <= 8 for n in r['generation']['new_tokens'])
    assert 'sk-test' not in out.read_text() and 'sk-test' not in json.dumps(report)


def test_a_training_run_loads_as_its_merge(smol, tmp_path):
    "A bailong run directory (base + adapter) is merged in memory into the model that `bailong merge` writes."
    import torch
    from bailong.embeddings import load_model
    from bailong.sft import SftConfig, sft, merge
    smol[1].save_pretrained(str(tmp_path/'tok'))  # SmolLM2's tokenizer, as the tiny preset uses, without converting the GGUF again
    sft(SftConfig(data=['bailong:translation-chats'], model='bailong:tiny-llama', base_tokenizer=str(tmp_path/'tok'), steps=2,
                  embedding_mode='full', eval_every=0, save_every=0, warmup_steps=0, eval_conversations=2, block_size=256,
                  out=str(tmp_path/'run')), progress=False)
    from_run, run_tok = load_answer_model(tmp_path/'run', device='cpu')
    merge(tmp_path/'run', tmp_path/'merged', dtype='float32')
    merged, tok = load_answer_model(tmp_path/'merged', device='cpu')
    enc = tok.apply_chat_template([[{'role': 'user', 'content': '請把這句話翻譯成英文：開啟說明。'}]], add_generation_prompt=True,
                                  return_tensors='pt', return_dict=True)
    with torch.no_grad():
        a, b, base = (m(**enc).logits for m in (from_run, merged, load_model(tmp_path/'run'/'base_model')))
    assert torch.allclose(a, b, atol=1e-5) and (a - base).abs().max() > 1e-3  # the adapter is in, as in the merge
    assert (run_tok.pad_token, run_tok.padding_side) == (tok.pad_token, 'left') and run_tok.pad_token != run_tok.eos_token
