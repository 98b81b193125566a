"Deterministic checks (nbs/07_checks.ipynb): the Simplified-only table, the language of a text, Bailong's rule, files."
import json
from collections import Counter
import pytest
import hanzidentifier, opencc
import bailong.checks as checks
from bailong.bench import read_answers, read_questions
from bailong.checks import check_answers, check_file, check_turn, language_request, prose, simplified_chars, text_language
from bailong.data import DataError, sample_path

ZH_BENCH, MT_BENCH = 'bailong:bench/zh_tw_bench/question.jsonl', 'bailong:bench/mt_bench/question.jsonl'
SMOL = {'zh': sample_path('bench/zh_tw_bench/model_answer/SmolLM2-135M-Instruct.jsonl'),
        'mt': sample_path('bench/mt_bench/model_answer/SmolLM2-135M-Instruct.jsonl')}
GPT4 = {'zh': sample_path('bench/zh_tw_bench/reference_answer/gpt-4.jsonl'),
        'mt': sample_path('bench/mt_bench/reference_answer/gpt-4.jsonl')}
PAIRS = [json.loads(line) for line in sample_path('en_zh_tw_sample.jsonl').open(encoding='utf-8')]
Q_ZH = '我該如何提升我的時間管理技巧？'  # zh-TW bench question 1
OK, SIMPLIFIED, ENGLISH = ('可以先列出每天要做的事，再依照重要性排出順序。', '可以先列出每天要做的事，再按照重要性来排顺序。',
                           'Make a list of what you have to do each day, then sort it by importance.')


@pytest.mark.parametrize('char', list('后里台干面着么床群秘于准几只系云余'))
def test_characters_that_zh_tw_also_writes_are_allowed(char):
    assert simplified_chars(f'這是{char}字') == []


@pytest.mark.parametrize('char', list('发们这说国内来为'))
def test_simplified_only_characters(char):
    assert simplified_chars(f'這是{char}字') == [char]


def test_distinct_in_order_and_extension_planes():
    assert simplified_chars('后来我们发现这里，我们发现') == ['来', '们', '发', '现', '这']
    assert simplified_chars('𫝈 and 𠀀') == ['𫝈']  # an extension-B Simplified form; 𠀀 is no Simplified form


@pytest.mark.skipif(opencc.__version__ != checks.OPENCC_VERSION, reason='the shipped dictionaries are those of another OpenCC release')
def test_shipped_dictionaries_are_what_opencc_converts_with():
    "Each CJK character converts to its first candidate in the shipped text dictionaries (OpenCC's build rule for TSCharactersExt)."
    cjk = [chr(i) for a, b in [(0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x20000, 0x2F7FF), (0x2FA20, 0x323AF)] for i in range(a, b + 1)]
    for config, name in [('s2t', 'STCharacters'), ('t2s', 'TSCharacters'), ('t2tw', 'TWVariants')]:
        first = {k: v[0] for k, v in checks.opencc_dictionary(name).items()}
        if name == 'TSCharacters':
            lines = sample_path('opencc/TSCharacters.txt').read_text(encoding='utf-8').splitlines()
            for marker, line in zip(lines, lines[1:]):
                if marker.startswith('# @tofu-risk:'):
                    key, *cands = line.split()
                    first[key] = [c for c in cands if c != key][0]
        converted = opencc.OpenCC(config).convert('\n'.join(cjk)).split('\n')
        assert [(c, o) for c, o in zip(cjk, converted) if o != first.get(c, c)] == []


def test_real_zh_tw_has_none_and_its_simplified_conversion_many():
    zh = [p['zh_tw'] for p in PAIRS]
    assert [simplified_chars(p) for p in zh if simplified_chars(p)] == [['内']]  # one real slip in LibreOffice's zh-TW help
    t2s = opencc.OpenCC('t2s').convert
    converted = [t2s(p) for p in zh]
    assert sum(bool(simplified_chars(c)) for c in converted) > 0.9 * len(zh)
    for p, c in zip(zh, converted):  # a flagged character was put there by the conversion
        assert not set(simplified_chars(c)) - {'内'} & set(p)


def test_code_links_and_quotations_are_not_prose():
    text = 'Use `sorted`:\n```python\nprint("你好")\n```\n「鬼月」 is “the ghost month”, see https://example.com/鬼月'
    assert '你好' not in prose(text) and '鬼月' not in prose(text) and 'ghost' not in prose(text) and 'sorted' not in prose(text)
    assert '鬼月' in prose(text, quotes=True) and '你好' not in prose(text, quotes=True)
    assert text_language('「鬼月」是什麼意思？ What does it mean?') == 'en'
    assert text_language('請解釋這段程式：```python\nfor x in range(10): print(x, "done")\n```') == 'zh'
    assert text_language('```python\nprint(42)\n```') == 'none'
    assert text_language('<html><body><div class="story"><h1>Random Joke</h1></div></body></html>') == 'en'  # MT-bench 123
    assert text_language('“人人生而自由”') == 'zh'  # nothing but a quotation: the quotation is the text


@pytest.mark.parametrize('lang, text', [
    ('zh', '人人生而自由，在尊嚴和權利上一律平等。'), ('zh', '人人生而自由，在尊严和权利上一律平等。'),
    ('en', 'All human beings are born free and equal in dignity and rights.'),
    ('other', 'すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。'),
    ('other', '모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.'),
    ('other', 'Tous les êtres humains naissent libres et égaux en dignité et en droits.'),
    ('other', 'Alle Menschen sind frei und gleich an Würde und Rechten geboren.'),
    ('other', 'Todos los seres humanos nacen libres e iguales en dignidad y derechos.'),
    ('other', 'Все люди рождаются свободными и равными в своем достоинстве и правах.'),
    ('other', 'Ich verstehe nur Bahnhof'), ('en', 'Express z-x in y'), ('none', '3.14159 + 42 = ?'), ('none', '')])
def test_text_language(lang, text):
    assert text_language(text) == lang


def test_language_of_real_questions():
    assert Counter(text_language(t) for q in read_questions(ZH_BENCH) for t in q['turns']) == {'zh': 80}
    mt = {(q['question_id'], n): text_language(t) for q in read_questions(MT_BENCH) for n, t in enumerate(q['turns'], 1)}
    assert {k: v for k, v in mt.items() if v != 'en'} == {(95, 2): 'other'}  # "Ich verstehe nur Bahnhof"


def test_rules_on_one_turn():
    assert [check_turn(Q_ZH, a)['violation'] for a in (OK, SIMPLIFIED, ENGLISH)] == [None, 'simplified', 'language']
    row = check_turn(Q_ZH, SIMPLIFIED)
    assert (row['question_language'], row['answer_language'], row['simplified_chars']) == ('zh', 'zh', ['来', '顺'])
    assert check_turn(Q_ZH, '```python\ntasks.sort()\n```')['violation'] is None
    variant = check_turn(Q_ZH, '他看着清單。')
    assert (variant['tw_variants'], variant['violation']) == (['着'], None)
    assert check_turn('How do I sort a list?', '你可以使用排序函数。')['violation'] == 'language'  # no Simplified rule for English
    assert check_turn('请问如何排序列表？', '你可以使用排序函数。')['violation'] is None  # a Simplified question
    echo = check_turn('「发」的繁體字是什麼？', '「发」的繁體字是「發」。')
    assert (echo['simplified_chars'], echo['excused_chars'], echo['violation']) == (['发'], ['发'], None)


def test_translation_and_requests():
    assert check_turn('請把這句話翻譯成英文：開啟說明。', 'Open the help.')['exempt'] == 'translation'
    assert check_turn('Please translate into Chinese: open the help.', '開啟說明。')['violation'] is None
    assert check_turn('Open the help.', '開啟說明。', category='translation')['violation'] is None
    assert check_turn('請用英文回答：' + Q_ZH, ENGLISH)['violation'] is None
    asked = check_turn('請用英文回答：' + Q_ZH, OK)
    assert (asked['expected_language'], asked['request'], asked['violation']) == ('en', '用英文回答', 'language')
    assert check_turn('Answer in Traditional Chinese: how do I sort a list?', '你可以使用排序函数。')['violation'] == 'simplified'
    assert check_turn('Answer in Chinese: how do I sort a list?', '你可以使用排序函数。')['violation'] is None
    assert check_turn('請用簡體中文回答：如何排序？', '你可以使用排序函数。')['violation'] is None
    assert check_turn('用日文寫一句問候', 'こんにちは、お元気ですか。今日はいい天気ですね。')['violation'] is None
    assert language_request('Write a function in Python that sorts a list.') is None
    assert language_request('Translate "please answer in French" for me') is None


def test_second_turns():
    assert check_turn([Q_ZH, 'Python 呢？'], '可以用 Python 寫一個提醒自己的小程式。')['violation'] is None
    assert check_turn([Q_ZH, 'Python 呢？'], ENGLISH)['violation'] == 'language'
    switch = check_turn([Q_ZH, 'What would you suggest for someone who works night shifts and has two small children?'], ENGLISH)
    assert (switch['question_language'], switch['violation']) == ('en', None)
    assert check_turn(['請用英文回答：' + Q_ZH, '再多說一點'], ENGLISH)['violation'] is None  # the request holds
    q95 = next(q for q in read_questions(MT_BENCH) if q['question_id'] == 95)
    assert check_turn(q95['turns'], 'I only understand the train station.')['exempt'] == 'translation'


def test_check_answers_on_real_answers():
    zh_q, mt_q = read_questions(ZH_BENCH), read_questions(MT_BENCH)
    zh, mt = read_answers(SMOL['zh']), read_answers(SMOL['mt'])
    rows = check_answers(zh_q, zh)
    assert len(rows) == len(zh) and {r['turn'] for r in check_answers(mt_q, mt)} == {1, 2}
    assert set(rows[0]) >= {'question_id', 'turn', 'model_id', 'simplified_chars', 'answer_language', 'question_language', 'violation'}
    assert check_answers(zh_q[:3], zh) == [r for r in rows if r['question_id'] in {1, 2, 3}]
    assert Counter(r['violation'] for r in rows)['simplified'] > 0  # SmolLM2 writes Simplified Chinese to zh-TW questions
    assert Counter(r['violation'] for r in check_answers(zh_q, read_answers(GPT4['zh']))) == {'language': 10}  # English references
    with pytest.raises(DataError, match='question_id 1: 2 answer turns for 1 question turns'):
        check_answers(zh_q, {1: {'model_id': 'x', 'choices': [{'index': 0, 'turns': ['a', 'b']}]}})


def test_agreement_with_hanzidentifier():
    "Our Simplified flag against hanzidentifier's SIMPLIFIED or MIXED, on real answers, references and LibreOffice text."
    texts = [t for path in (*SMOL.values(), *GPT4.values()) for a in read_answers(path).values() for t in a['choices'][0]['turns']]
    answers_only = len(texts)
    t2s = opencc.OpenCC('t2s').convert
    texts += [p['zh_tw'] for p in PAIRS] + [t2s(p['zh_tw']) for p in PAIRS]
    agree = [bool(simplified_chars(t)) == (hanzidentifier.identify(t) in (hanzidentifier.SIMPLIFIED, hanzidentifier.MIXED))
             for t in texts]
    assert sum(agree) / len(agree) > 0.99
    assert sum(agree[:answers_only]) / answers_only > 0.98


def test_check_file(tmp_path):
    out = tmp_path/'checks'/'smol.jsonl'
    summary = check_file(ZH_BENCH, SMOL['zh'], out)
    rows = [json.loads(line) for line in out.open(encoding='utf-8')]
    assert rows == check_answers(read_questions(ZH_BENCH), read_answers(SMOL['zh']))
    assert summary['turns'] == len(rows) and summary['answered'] + summary['unanswered'] == 80
    assert sum(summary['violations'].values()) == len(rows)


def test_check_file_errors_leave_no_partial_output(tmp_path, monkeypatch):
    out = tmp_path/'checks.jsonl'
    earlier = json.dumps({'question_id': 1, 'turn': 1, 'violation': None}) + '\n'  # an earlier run's rows
    out.write_text(earlier, encoding='utf-8')
    bad = tmp_path/'bad.jsonl'
    bad.write_text(SMOL['zh'].read_text(encoding='utf-8').splitlines()[0] + '\n{"question_id": 3, "choices": [\n', encoding='utf-8')
    with pytest.raises(DataError, match='--overwrite'): check_file(ZH_BENCH, SMOL['zh'], out)
    with pytest.raises(DataError, match=r'bad.jsonl:2'): check_file(ZH_BENCH, bad, out, overwrite=True)
    with pytest.raises(DataError, match='answers to question ids that'): check_file(MT_BENCH, SMOL['zh'], out, overwrite=True)
    with pytest.raises(DataError, match='is a directory'): check_file(ZH_BENCH, SMOL['zh'], tmp_path)
    with pytest.raises(DataError, match='is the answer file itself'): check_file(ZH_BENCH, bad, bad)
    calls = []
    def failing_dumps(*args, **kwargs):  # the disk fills up after two rows
        calls.append(1)
        if len(calls) > 2: raise OSError('No space left on device')
        return json.dumps(*args, **kwargs)
    monkeypatch.setattr(checks.json, 'dumps', failing_dumps)
    with pytest.raises(OSError): check_file(ZH_BENCH, SMOL['zh'], out, overwrite=True)
    assert out.read_text(encoding='utf-8') == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ['bad.jsonl', 'checks.jsonl']
