"""Multiple choice: bad question files fail with the file and line; answer letters map to the right options; the batched
scorer equals one-pair-at-a-time scoring (left and right padding, shared inputs run once); translation distractors
are never the answer and never repeat; run_mc and compare_models write lm-eval's results layout end to end with a
tiny Llama."""
import json, math
import pytest
import torch
from bailong.data import DataError
from bailong.mc import (McConfig, McTask, TRANSLATION, compare_models, encode_pair, letter_context, loglikelihood_one,
                        loglikelihoods, mc_requests, mc_task, read_mc, run_mc, translation_items, translation_pairs,
                        wilson_interval, _key)

HEAD = 'question,A,B,C,D,answer\n'
ROWS = [{'question': f'第 {i} 題：{i} 加 {i} 等於多少？', 'A': str(2 * i), 'B': str(2 * i + 1), 'C': str(i), 'D': str(3 * i),
         'answer': 'A'} for i in range(1, 7)]


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    "A 64-wide model gains nothing from a second thread, and on a shared CPU it loses several times over."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def tok(sp_base):
    from bailong.tokenizer import load_hf_tokenizer
    return load_hf_tokenizer(sp_base)  # Mistral's SentencePiece: the space-before-a-word case of lm-eval's pair rule


@pytest.fixture(scope='module')
def tiny(tok):
    from bailong.train import tiny_llama
    return tiny_llama(len(tok), hidden_size=64, intermediate_size=128, num_key_value_heads=2).eval()


@pytest.fixture(scope='module')
def pairs(): return translation_pairs()


def write(path, text):
    path.write_text(text, encoding='utf-8'); return path


@pytest.mark.parametrize('name, text, where, message', [
    ('a.csv', HEAD + 'Q1,a,b,c,d,A\nQ2,a,b,,d,B\n', 3, "option C (field 'C') is missing or empty"),
    ('a.csv', HEAD + 'Q1,a,b,c,d\n', 2, '5 fields but the header has 6'),
    ('a.csv', HEAD + 'Q1,a,b,c,d,E\n', 2, "the answer 'E' (field 'answer') is not one of the letters A, B, C, D"),
    ('a.csv', HEAD + 'Q1,a,b,c,d,AB\n', 2, "the answer 'AB'"),
    ('a.csv', HEAD + 'Q1,a,b,c,d,\n', 2, "the answer ''"),
    ('a.csv', HEAD + '"  ",a,b,c,d,A\n', 2, "the question (field 'question') is missing or empty"),
    ('a.csv', HEAD + 'Q1,a,b,c,d,A\n"Q2,a,b,c,d,A\n', 3, 'malformed CSV'),
    ('a.csv', HEAD + '"Q1"x,a,b,c,d,A\n', 2, 'malformed CSV'),
    ('a.jsonl', json.dumps(ROWS[0]) + '\n\n{"question": "Q2", "A": \n', 3, 'not valid JSON'),
    ('a.jsonl', json.dumps(ROWS[0]) + '\n["Q2", "a", "b"]\n', 2, 'expected an object'),
    ('a.jsonl', json.dumps({**ROWS[0], 'B': None}) + '\n', 1, "option B (field 'B') is missing or empty"),
    ('a.jsonl', json.dumps({**ROWS[0], 'answer': 1}) + '\n', 1, "the answer 1 (field 'answer')"),
])
def test_bad_files_name_file_and_line(tmp_path, name, text, where, message):
    path = write(tmp_path/name, text)
    with pytest.raises(DataError) as e: read_mc(path)
    assert f'{path}:{where}: ' in str(e.value) and message in str(e.value), str(e.value)


def test_other_bad_sources(tmp_path):
    (tmp_path/'b.csv').write_bytes(HEAD.encode() + b'Q1,a,b,c,d,A\nQ\xff2,a,b,c,d,A\n')
    with pytest.raises(DataError, match=r'b\.csv:3: not valid UTF-8'): read_mc(tmp_path/'b.csv')
    for text in ('', '\n'):
        with pytest.raises(DataError, match='no header row|no questions found'): read_mc(write(tmp_path/'e.csv', text))
    with pytest.raises(DataError, match='no questions found'): read_mc(write(tmp_path/'h.csv', HEAD))
    with pytest.raises(DataError, match='unknown format'): read_mc(write(tmp_path/'q.txt', 'x'))
    with pytest.raises(FileNotFoundError): read_mc(tmp_path/'missing.csv')
    with pytest.raises(DataError, match='unknown name'): read_mc(write(tmp_path/'f.csv', HEAD), fields={'prompt': 'q'})


def test_answer_letters_map_to_options(tmp_path):
    csv_items = read_mc(write(tmp_path/'q.csv', HEAD + 'Q1,w,x,y,z, c \n"Q2, with a comma",w,x,y,z,d\n'))
    assert [(i['question'], i['choices'][i['answer']]) for i in csv_items] == [('Q1', 'y'), ('Q2, with a comma', 'z')]
    # other names, a fifth option, and options as one list with an index answer (cais/mmlu's layout)
    five = read_mc(write(tmp_path/'five.jsonl', json.dumps({'q': 'Q', 'A': 'a', 'B': 'b', 'C': 'c', 'D': 'd', 'E': 'e', 'gold': 'E'})),
                   fields={'question': 'q', 'answer': 'gold', 'E': 'E'})
    assert five == [{'question': 'Q', 'choices': ['a', 'b', 'c', 'd', 'e'], 'answer': 4}]
    listed = read_mc(write(tmp_path/'l.jsonl', json.dumps({'question': 'Q', 'choices': ['p', 'q', 'r'], 'answer': 2})),
                     fields={'choices': 'choices'})
    assert listed == [{'question': 'Q', 'choices': ['p', 'q', 'r'], 'answer': 2}]
    # the prompt shows the options under their letters, and the shots end with their own answer's letter
    task = McTask('t', csv_items[:1], [{'question': 'S', 'choices': ['s0', 's1', 's2', 's3'], 'answer': 3}])
    (ctx, cont), *rest = mc_requests(task, few_shot=1)[0]
    assert [cont] + [c for _, c in rest] == [' A', ' B', ' C', ' D']
    assert ctx == '問題：S\nA. s0\nB. s1\nC. s2\nD. s3\n答案： D\n\n問題：Q1\nA. w\nB. x\nC. y\nD. z\n答案：'
    assert ctx.endswith(letter_context(csv_items[0]))
    # a saved Hugging Face dataset reads like the file
    import datasets
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path/'ds'))
    assert read_mc(tmp_path/'ds') == read_mc(write(tmp_path/'rows.jsonl', ''.join(json.dumps(r) + '\n' for r in ROWS)))


def test_encode_pair_follows_lm_eval(tok):
    ctx, cont = encode_pair(tok, 'Answer:', ' A')
    assert encode_pair(tok, 'Answer: ', 'A') == (ctx, cont)          # a trailing space moves to the continuation
    assert ctx + cont == tok.encode('Answer: A') and ctx == tok.encode('Answer:')
    assert tok.encode(' A', add_special_tokens=False) != cont         # tokenized alone, ' A' is two pieces: '▁', 'A'
    with pytest.raises(DataError, match='empty context'): encode_pair(tok, '', ' A')


def test_batched_equals_unbatched(tok, tiny, pairs):
    letters = McTask('letters', [{'question': r['question'], 'choices': [r[k] for k in 'ABCD'], 'answer': 0} for r in ROWS[:4]],
                     [{'question': r['question'], 'choices': [r[k] for k in 'ABCD'], 'answer': 1} for r in ROWS[4:]])
    tasks = [letters] + [McTask(d, *translation_items(pairs, d, n=2, seed=1), *TRANSLATION[d]) for d in TRANSLATION]
    requests = [p for t in tasks for shots in (0, 1) for r in mc_requests(t, shots, seed=2) for p in r]
    reference = [loglikelihood_one(tiny, tok, c, x) for c, x in requests]
    calls = []
    hook = tiny.register_forward_pre_hook(lambda m, a, kw: calls.append(kw['input_ids'].shape), with_kwargs=True)
    try:
        for side, bs in (('left', 1), ('left', 5), ('right', 5), ('right', 64)):
            calls.clear()
            got = loglikelihoods(tiny, tok, requests, batch_size=bs, padding_side=side)
            assert max(abs(a - b) for a, b in zip(got, reference)) < 1e-4, (side, bs)
            # the four letter options of a question share one input: 4 questions × 2 prompts → 8 rows, not 32
            assert sum(s[0] for s in calls) == 8 + 2 * 2 * 2 * 4 and all(s[0] <= bs for s in calls)
    finally: hook.remove()
    with pytest.raises(DataError, match="padding_side='middle'"): loglikelihoods(tiny, tok, requests[:1], padding_side='middle')


@pytest.mark.parametrize('direction', ['en-zh', 'zh-en'])
def test_distractors(pairs, direction):
    src, tgt = ('en', 'zh_tw') if direction == 'en-zh' else ('zh_tw', 'en')
    items, pool = translation_items(pairs, direction, n=300, seed=0)
    assert (items, pool) == translation_items(pairs, direction, n=300, seed=0) != translation_items(pairs, direction, n=300, seed=1)
    lengths = sorted(len(p[tgt]) for p in pairs)
    for it in items:
        answer = pairs[it['pair']]
        assert it['question'] == answer[src] and it['choices'][it['answer']] == answer[tgt]
        assert len({_key(c) for c in it['choices']}) == 4                     # no repeat, not even up to punctuation
        assert sum(_key(c) == _key(answer[tgt]) for c in it['choices']) == 1  # the answer once
        own = len(answer[tgt])  # distractors come from the 10 nearest lengths: no farther than the 10th nearest other
        assert all(abs(len(c) - own) <= sorted(abs(l - own) for l in lengths)[10] for c in it['choices'])
    positions = [it['answer'] for it in items]
    assert all(40 < positions.count(k) < 110 for k in range(4)), positions  # the right option is anywhere
    used = {it['pair'] for it in items}
    assert not used & {p['pair'] for p in pool} and len(pool) + len(used) <= len(pairs)


def test_pairs_skip_short_and_repeated(tmp_path):
    recs = [{'en': 'Open the dialog to change it.', 'zh_tw': '開啟對話方塊以變更它。'},
            {'en': 'Short', 'zh_tw': '短'},                                           # too short
            {'en': 'Open the dialog to change it', 'zh_tw': '開啟對話方塊來變更。'},      # same English but a period
            {'en': 'Another sentence that is long.', 'zh_tw': '開啟對話方塊以變更它'},     # same Chinese but a period
            {'en': 'Untranslated paragraph here.', 'zh_tw': 'Untranslated paragraph here.'},  # no Chinese
            {'en': 'A last sentence, long enough.', 'zh_tw': '最後一句。'}]
    path = write(tmp_path/'p.jsonl', ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in recs))
    assert translation_pairs(path) == [recs[0], recs[5]]
    with pytest.raises(DataError, match=r'p2\.jsonl:1: expected an object'): translation_pairs(write(tmp_path/'p2.jsonl', '{"en": 1}\n'))


def test_run_mc_end_to_end(tmp_path, tok, tiny):
    tiny.save_pretrained(tmp_path/'model'); tok.save_pretrained(tmp_path/'model')
    qs = write(tmp_path/'arith.jsonl', ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in ROWS))
    out = tmp_path/'out'/'arith.json'
    res = run_mc(McConfig(task=str(qs), model=str(tmp_path/'model'), n=4, few_shot=2, batch_size=3, out=str(out)))
    assert json.loads(out.read_text(encoding='utf-8')) == res and not list(out.parent.glob('.*tmp*'))
    r = res['results']['arith']
    acc = [s['acc'] for s in res['samples']['arith']]
    assert r['alias'] == 'arith' and r['acc,none'] == sum(acc) / 4 == r['acc_norm,none']
    assert math.isclose(r['acc_stderr,none'], (sum((a - r['acc,none']) ** 2 for a in acc) / 3) ** 0.5 / 2)
    assert (r['acc_ci95_low,none'], r['acc_ci95_high,none']) == wilson_interval(sum(acc), 4)
    assert res['n-samples'] == {'arith': {'original': 6, 'effective': 4}} and res['n-shot'] == {'arith': 2}
    assert res['configs']['arith']['num_fewshot'] == 2 and res['higher_is_better']['arith'] == {'acc': True, 'acc_norm': True}
    assert res['config']['model_args'] == f"pretrained={tmp_path/'model'},dtype=float32" and res['config']['batch_size'] == 3
    for s in res['samples']['arith']:
        assert len(s['loglikelihoods']) == 4 and s['arguments'][0][0].count('問題：') == 3  # two shots and the question
        assert s['target'] == s['doc']['answer'] == 0
    # the translation task, and two models on the same items
    rows = compare_models({'a': str(tmp_path/'model'), 'b': (tiny, tok)}, tasks=('translation-zh-en',), n=3, out=str(tmp_path/'cmp'))
    assert [(r['model'], r['task'], r['n']) for r in rows] == [('a', 'translation-zh-en', 3), ('b', 'translation-zh-en', 3)]
    runs = [json.loads((tmp_path/'cmp'/m/'translation-zh-en.json').read_text(encoding='utf-8')) for m in 'ab']
    docs = [[s['doc'] for s in run['samples']['translation-zh-en']] for run in runs]
    assert docs[0] == docs[1] and all(len(d['choices']) == 4 for d in docs[0])
    lls = [[s['loglikelihoods'] for s in run['samples']['translation-zh-en']] for run in runs]
    assert max(abs(x - y) for a, b in zip(*lls) for x, y in zip(a, b)) < 1e-4  # the saved model is the same model


def test_bad_settings_fail_before_any_model_loads(tmp_path):
    qs = write(tmp_path/'q.csv', HEAD + 'Q1,a,b,c,d,A\n')
    for cfg, message in [(McConfig(task='translation-en-fr'), 'expected translation-en-zh or translation-zh-en'),
                         (McConfig(task=str(qs), few_shot=1), 'few_shot=1: q has 0 examples'),
                         (McConfig(n=-1), 'n=-1'), (McConfig(batch_size=0), 'batch_size=0'),
                         (McConfig(padding_side='up'), "padding_side='up'"),
                         (McConfig(fewshot_source=str(qs)), 'fewshot_source'), (McConfig(task=str(qs)), 'model: give')]:
        with pytest.raises(DataError, match=message.replace('(', r'\(')): run_mc(cfg)
    assert len(mc_task(McConfig(task=str(qs), n=0)).items) == 1


def test_same_numbers_as_lm_eval(tok, tiny, pairs):
    "Where lm-evaluation-harness is installed, its HFLM splits and scores the same pairs the same way."
    pytest.importorskip('lm_eval')
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    tasks = [McTask(d, *translation_items(pairs, d, n=2, seed=3), *TRANSLATION[d]) for d in TRANSLATION]
    requests = [p for t in tasks for r in mc_requests(t, 1, seed=4) for p in r] + [('問題：Q\n答案： ', 'A'), ('Answer:', ' B')]
    lm = HFLM(pretrained=tiny, tokenizer=tok, batch_size=4)
    theirs = [ll for ll, _ in lm.loglikelihood([Instance('loglikelihood', {}, r, i) for i, r in enumerate(requests)], disable_tqdm=True)]
    assert [lm._encode_pair(c, x) for c, x in requests] == [encode_pair(tok, c, x) for c, x in requests]
    for side in ('left', 'right'):
        assert max(abs(a - b) for a, b in zip(loglikelihoods(tiny, tok, requests, 4, side), theirs)) < 1e-4
