"""SFT data (nbs/05_sft.ipynb): every bad conversation record is an error naming file and line, or is skipped and
counted; the OpenAI, ShareGPT, FastChat and HF dataset readers; translation chats; marked chat templates that render
like the model's own; truncation; packed and padded batches; a saved tokenizer that plain transformers reloads with
the same assistant mask."""
import json, subprocess, sys, textwrap
import pytest
import torch
from bailong.data import DataError
from bailong.sft import (DEFAULT_CHAT_TEMPLATE, PackedConversations, PaddedConversations, chatml_template, encode_conversation,
                         encode_conversations, length_grouped_batches, load_conversations, loss_mask_html, read_conversations,
                         training_chat_template, translation_chats, with_chat_template, write_conversations)

U, A, S = ({'role': r, 'content': c} for r, c in (('user', 'Hi'), ('assistant', 'Hello'), ('system', 'Be brief.')))
GOOD = {'messages': [U, A]}
TWO = [{'role': 'user', 'content': '請將以下內容翻譯成英文：\n\n若要變更控制項的屬性，請按一下滑鼠右鍵。'},
       {'role': 'assistant', 'content': 'To change the properties of a control, right-click it.'},
       {'role': 'user', 'content': 'Translate your answer back into Traditional Chinese.'},
       {'role': 'assistant', 'content': '若要變更控制項的屬性，請按一下滑鼠右鍵。'}]


# Llama-2-chat's own template, as its tokenizer_config.json ships it
LLAMA2_CHAT = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
    "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")


@pytest.fixture(scope='module')
def smol():
    from bailong.tokenizer import load_hf_tokenizer, smollm2_gguf
    return with_chat_template(load_hf_tokenizer(smollm2_gguf()))


@pytest.fixture(scope='module')
def llama(sp_base):
    from bailong.tokenizer import load_hf_tokenizer
    return with_chat_template(load_hf_tokenizer(sp_base))


def sharegpt(conv):
    names = {'system': 'system', 'user': 'human', 'assistant': 'gpt'}
    return {'conversations': [{'from': names[m['role']], 'value': m['content']} for m in conv]}


def jsonl(path, *records):
    path.write_bytes(b'\n'.join(r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode() for r in records) + b'\n')
    return path


def masked_texts(tok, messages):
    "The rendered text under each run of assistant-masked tokens."
    text = tok.apply_chat_template(messages, tokenize=False)
    spans = tok(text, add_special_tokens=False, return_offsets_mapping=True)['offset_mapping']
    mask = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)['assistant_masks']
    runs, prev = [], 0
    for (s, e), m in zip(spans, mask):
        if m and not prev: runs.append([s, e])
        elif m: runs[-1][1] = e
        prev = m
    return [text[s:e] for s, e in runs]


BAD = [  # (record at line 2, report reason, words of the error)
    ({'messages': [U, {'role': 'bot', 'content': 'x'}]}, 'unknown role', "turn 2: unknown role 'bot'"),
    ({'conversations': [{'from': 'human', 'value': 'a'}, {'from': 'robot', 'value': 'b'}]}, 'unknown role', "unknown role 'robot'"),
    ({'messages': [U, U, A]}, 'two user turns in a row', 'turns 1 and 2 are both user turns'),
    ({'messages': [S, U, A, A]}, 'two assistant turns in a row', 'turns 3 and 4 are both assistant turns'),
    ({'messages': [U, {'role': 'assistant', 'content': ' \n\t'}]}, 'empty content', 'turn 2 (assistant) has no text'),
    ({'messages': [{'role': 'user', 'content': ''}, A]}, 'empty content', 'turn 1 (user) has no text'),
    ({'messages': [U, A, U]}, 'ends on a user turn', 'turn 3 is a user turn with no answer'),
    ({'messages': [S, U]}, 'no assistant turn', 'no assistant answer'),
    ({'messages': []}, 'no assistant turn', 'no assistant answer'),
    ({'messages': [A, U, A]}, 'starts with assistant', 'turn 1: expected the user to speak first'),
    ({'messages': [U, S, A]}, 'system not first', 'turn 2: a system message may only come first'),
    ({'text': 'Hi'}, 'missing field', "'messages' list (OpenAI) or a 'conversations' list (ShareGPT)"),
    ({'messages': [U, {'role': 'assistant'}]}, 'missing field', "turn 2: expected an object with 'role' and 'content'"),
    ({'conversations': [{'from': 'human', 'text': 'a'}]}, 'missing field', "turn 1: expected an object with 'from' and 'value'"),
    ({'messages': 'Hi'}, 'missing field', "'messages' should be a list"),
    ({'messages': [U, {'role': 'assistant', 'content': [{'type': 'text'}]}]}, 'missing field', "turn 2: 'content' should be text"),
    ('{"messages": [{"role": "user", "content": "說明"}]}'.encode('big5'), 'not UTF-8', 'not valid UTF-8'),
    (b'{"messages": [{"role": "user", "content": "Hi"},', 'invalid JSON', 'not valid JSON'),
    (b'[1, 2]', 'missing field', 'expected an object'),
]


@pytest.mark.parametrize('record,reason,words', BAD, ids=[f'{r}-{i}' for i, (_, r, _) in enumerate(BAD)])
def test_bad_record_names_file_and_line_or_is_counted(tmp_path, record, reason, words):
    f = jsonl(tmp_path/'chats.jsonl', GOOD, record, GOOD)
    with pytest.raises(DataError) as e: read_conversations(f)
    assert f'{f}:2: ' in str(e.value) and words in str(e.value) and 'skip_bad' in str(e.value), str(e.value)
    convs, report = read_conversations(f, skip_bad=True)
    assert convs == [[U, A], [U, A]]
    assert (report['read'], report['kept'], report['skipped'], report['reasons']) == (3, 2, 1, {reason: 1})
    assert len(report['examples']) == 1 and report['examples'][0].startswith(f'{f}:2: ') and words in report['examples'][0]


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jsonl'): read_conversations(tmp_path/'nope.jsonl')
    with pytest.raises(FileNotFoundError, match='nope.jsonl'):
        read_conversations({'questions': tmp_path/'nope.jsonl', 'answers': tmp_path/'nope.jsonl'})
    with pytest.raises(DataError, match='no usable conversation'):
        read_conversations(jsonl(tmp_path/'bad.jsonl', {'messages': [U]}), skip_bad=True)
    with pytest.raises(DataError, match='at least one'): load_conversations([])
    with pytest.raises(DataError, match="exactly the keys 'questions' and 'answers'"): read_conversations({'questions': 'q.jsonl'})


def test_blank_lines_are_not_records_and_lines_keep_their_numbers(tmp_path):
    f = tmp_path/'c.jsonl'
    f.write_text(json.dumps(GOOD) + '\n\n  \n' + json.dumps({'messages': [U]}) + '\n', encoding='utf-8')
    with pytest.raises(DataError, match=f'{f}:4: '): read_conversations(f)
    assert read_conversations(f, skip_bad=True)[1]['read'] == 2


def test_sharegpt_and_openai_read_the_same(tmp_path):
    chats = [[S, U, A], [{'role': 'user', 'content': '「屬性」的英文？'}, {'role': 'assistant', 'content': 'Properties'}, U, A]]
    share = jsonl(tmp_path/'share.jsonl', *(sharegpt(c) for c in chats))
    openai = write_conversations(chats, tmp_path/'out'/'openai.jsonl')
    assert read_conversations(share)[0] == read_conversations(openai)[0] == chats
    assert '「屬性」' in openai.read_text(encoding='utf-8')


def test_write_conversations_is_atomic(tmp_path):
    f = write_conversations([[U, A]], tmp_path/'c.jsonl')
    def broken():
        yield [S, U, A]; raise RuntimeError('interrupted')
    with pytest.raises(RuntimeError): write_conversations(broken(), f)
    assert read_conversations(f)[0] == [[U, A]] and [p.name for p in tmp_path.iterdir()] == ['c.jsonl']


def test_fastchat_pairs_questions_and_answers(tmp_path):
    q = jsonl(tmp_path/'question.jsonl', {'question_id': 1, 'turns': ['q1', 'q2']}, {'question_id': 2, 'turns': ['only']},
              {'question_id': 3, 'turns': ['a', 'b']}, {'question_id': 4, 'turns': ['x']})
    a = jsonl(tmp_path/'answer.jsonl', {'question_id': 2, 'choices': [{'index': 0, 'turns': ['one answer']}]},
              {'question_id': 1, 'choices': [{'index': 0, 'turns': ['a1', 'a2']}]},
              {'question_id': 3, 'choices': [{'turns': ['just one']}]}, {'question_id': 9, 'choices': [{'turns': ['?']}]},
              {'question_id': 2, 'choices': [{'turns': ['again']}]}, {'question_id': 5})
    src = {'questions': q, 'answers': a}
    with pytest.raises(DataError, match=f'{a}:5: a second answer to question_id 2'): read_conversations(src)
    convs, report = read_conversations(src, skip_bad=True)
    assert convs == [[{'role': 'user', 'content': 'q1'}, {'role': 'assistant', 'content': 'a1'},
                      {'role': 'user', 'content': 'q2'}, {'role': 'assistant', 'content': 'a2'}],
                     [{'role': 'user', 'content': 'only'}, {'role': 'assistant', 'content': 'one answer'}]]
    assert report['reasons'] == {'duplicate answer': 1, 'missing field': 1, 'turn count mismatch': 1, 'no answer': 1,
                                 'answer without question': 1}
    assert report['kept'] + report['skipped'] == report['read'] == 7
    assert report['examples'][2] == f'{q}:3: question_id 3 has 2 turns but its answer ({a}:3) has 1'


def test_mt_bench_reference_answers():
    src = {'questions': 'bailong:bench/mt_bench/question.jsonl', 'answers': 'bailong:bench/mt_bench/reference_answer/gpt-4.jsonl'}
    with pytest.raises(DataError, match=r'question\.jsonl:1: question_id 81 has no answer'): read_conversations(src)
    convs, report = read_conversations(src, skip_bad=True)
    assert (report['read'], report['kept'], report['reasons']) == (80, 30, {'no answer': 50})
    assert all([m['role'] for m in c] == ['user', 'assistant'] * 2 for c in convs)


def test_hf_dataset_directories(tmp_path):
    import datasets
    datasets.disable_progress_bars()
    chats = [[S, U, A], [U, A, U, A]]
    datasets.Dataset.from_list([{'messages': c, 'id': i} for i, c in enumerate(chats)]).save_to_disk(tmp_path/'saved')
    assert read_conversations(tmp_path/'saved')[0] == chats
    datasets.DatasetDict({'train': datasets.Dataset.from_list([sharegpt(c) for c in chats])}).save_to_disk(tmp_path/'dict')
    assert read_conversations(tmp_path/'dict')[0] == chats
    (tmp_path/'files').mkdir(); jsonl(tmp_path/'files'/'train.jsonl', {'messages': chats[0]}, {'messages': [U, U, A]})
    with pytest.raises(DataError, match='files row 2: turns 1 and 2 are both user turns'): read_conversations(tmp_path/'files')
    assert read_conversations(tmp_path/'files', skip_bad=True)[1]['reasons'] == {'two user turns in a row': 1}
    datasets.Dataset.from_list([{'text': 'x'}]).save_to_disk(tmp_path/'text')
    with pytest.raises(DataError, match="expected a 'messages' or 'conversations' column .columns: text"):
        read_conversations(tmp_path/'text')


def test_load_conversations_merges_reports(tmp_path):
    a = write_conversations([[U, A]], tmp_path/'a.jsonl')
    b = jsonl(tmp_path/'b.jsonl', GOOD, {'messages': [U]}, b'{')
    convs, report = load_conversations([a, b], skip_bad=True)
    assert len(convs) == 2 and (report['read'], report['kept'], report['skipped']) == (4, 2, 2)
    assert report['reasons'] == {'no assistant turn': 1, 'invalid JSON': 1} and len(report['sources']) == 2
    assert report['source'] == [str(a), str(b)] and report['examples'][0].startswith(f'{b}:2: ')
    assert load_conversations(str(a))[1]['kept'] == 1


def test_translation_chats():
    chats = translation_chats(limit=300)
    assert chats == translation_chats(limit=300) != translation_chats(seed=1, limit=300)
    assert read_conversations('bailong:translation-chats')[0][:300] == chats
    assert {sum(m['role'] == 'user' for m in c) for c in chats} == {2}
    assert {sum(m['role'] == 'user' for m in c) for c in translation_chats(turns=1, limit=20)} == {1}
    first = [c[1 if c[0]['role'] == 'system' else 0]['content'] for c in chats]
    zh_worded = [any('\u4e00' <= ch <= '\u9fff' for ch in f.split('\n')[0]) for f in first]
    assert 0.25 < sum(zh_worded) / len(chats) < 0.75
    with pytest.raises(DataError, match='turns=0'): translation_chats(turns=0)


def test_marked_templates_render_like_the_originals(smol, llama, sp_base):
    from bailong.tokenizer import load_hf_tokenizer
    own = smol.chat_template
    assert '{% generation %}' in own or '{%- generation -%}' in own
    raw = load_hf_tokenizer(sp_base)
    assert raw.chat_template is None and training_chat_template(raw) == DEFAULT_CHAT_TEMPLATE
    raw.chat_template = own
    assert training_chat_template(raw) == own  # already marked: kept as it is
    raw.chat_template = LLAMA2_CHAT
    assert training_chat_template(raw) == DEFAULT_CHAT_TEMPLATE
    for conv in ([S, *TWO], TWO, TWO[:3], [S, {'role': 'user', 'content': ' Hi \n'}, {'role': 'assistant', 'content': '\nHello  '}]):
        assert raw.apply_chat_template(conv, tokenize=False) == llama.apply_chat_template(conv, tokenize=False)
    raw.chat_template = chatml_template('You are Qwen.')
    raw.chat_template = raw.chat_template.replace('{%- generation -%}', '').replace('{%- endgeneration -%}', '')
    assert training_chat_template(raw) == chatml_template('You are Qwen.')
    raw.chat_template = "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token }}{% endfor %}"
    with pytest.raises(DataError, match='pass a template with'): training_chat_template(raw)
    with pytest.raises(DataError, match='no {% generation %} marks'): with_chat_template(raw, raw.chat_template)


def test_assistant_mask_is_exactly_the_answers(smol, llama):
    answers = [m['content'] for m in TWO if m['role'] == 'assistant']
    assert masked_texts(smol, TWO) == [a + '<|im_end|>' for a in answers]
    assert [t.removeprefix(' ') for t in masked_texts(llama, TWO)] == [a + ' </s>' for a in answers]
    assert (smol.pad_token, llama.pad_token) == ('<|endoftext|>', '<unk>')
    html = loss_mask_html(smol, TWO)
    mask = smol.apply_chat_template(TWO, return_dict=True, return_assistant_tokens_mask=True)['assistant_masks']
    assert html.count('background:#b7e4c7;') == sum(mask)
    assert '&lt;|im_start|&gt;' in html


def test_pad_never_ends_a_turn():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    t = Tokenizer(models.WordLevel({'Hi': 0, '!': 1, 'Hello': 2, '.': 3, '</s>': 4}, unk_token='</s>'))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, eos_token='</s>', pad_token='</s>')
    template = ("{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content + eos_token }}{% endgeneration %}"
                "{% else %}{{ m.content }}{% endif %}{% endfor %}")
    with pytest.raises(DataError, match='no pad token'): with_chat_template(tok, template)


def test_saved_tokenizer_reloads_in_a_fresh_process(smol, llama, tmp_path):
    "Plain transformers, no bailong: the saved template and pad token come back and mark exactly the answers."
    for name, tok in (('smol', smol), ('llama', llama)):
        tok.save_pretrained(tmp_path/name)
    code = textwrap.dedent(f"""
        import json, sys
        from transformers import AutoTokenizer
        conv = json.loads(sys.argv[1]); out = {{}}
        for name in ('smol', 'llama'):
            tok = AutoTokenizer.from_pretrained({str(tmp_path)!r} + '/' + name)
            enc = tok.apply_chat_template(conv, return_dict=True, return_assistant_tokens_mask=True)
            out[name] = [enc['input_ids'], enc['assistant_masks'], tok.pad_token]
        assert not any(m.startswith('bailong') for m in sys.modules)
        print(json.dumps(out))""")
    r = subprocess.run([sys.executable, '-c', code, json.dumps(TWO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.splitlines()[-1])
    for name, tok in (('smol', smol), ('llama', llama)):
        enc = tok.apply_chat_template(TWO, return_dict=True, return_assistant_tokens_mask=True)
        assert got[name] == [list(enc['input_ids']), list(enc['assistant_masks']), tok.pad_token], name
        ex = encode_conversation(tok, TWO, 1024)
        assert [t for t, m in zip(*got[name][:2]) if m] == [t for t in ex['labels'] if t != -100]


def test_truncation_drops_whole_later_pairs_then_cuts_the_first_answer(llama):
    conv = [S, *TWO, {'role': 'user', 'content': 'Thanks!'}, {'role': 'assistant', 'content': 'You are welcome.'}]
    n = [len(llama.apply_chat_template(conv[:k])['input_ids']) for k in (3, 5, 7)]  # 1, 2 and 3 pairs
    assert n[0] < n[1] < n[2]
    for block, kept, dropped in ((n[2], 7, 0), (n[2] - 1, 5, 1), (n[1], 5, 1), (n[1] - 1, 3, 2), (n[0], 3, 2)):
        ex = encode_conversation(llama, conv, block)
        whole = encode_conversation(llama, conv[:kept], 4096)
        assert (ex['input_ids'], ex['labels']) == (whole['input_ids'], whole['labels'])
        assert (ex['turns_dropped'], ex['answer_cut']) == (dropped, False)
    cut = encode_conversation(llama, conv, n[0] - 5)
    assert (len(cut['input_ids']), cut['turns_dropped'], cut['answer_cut']) == (n[0] - 5, 2, True)
    assert cut['labels'] == encode_conversation(llama, conv[:3], 4096)['labels'][:n[0] - 5]
    prompt = len(llama.apply_chat_template(conv[:2], add_generation_prompt=True)['input_ids'])
    assert encode_conversation(llama, conv, prompt) is None
    assert sum(l != -100 for l in encode_conversation(llama, conv, prompt + 1)['labels']) == 1
    examples, report = encode_conversations(llama, [conv, conv[:3], conv], n[1])
    assert report == {'conversations': 3, 'whole': 1, 'turns_dropped': 2, 'answer_cut': 0, 'dropped': 0,
                      'tokens': sum(len(e['input_ids']) for e in examples),
                      'loss_tokens': sum(l != -100 for e in examples for l in e['labels'])}
    assert encode_conversations(llama, [conv, conv], prompt)[1]['dropped'] == 2
    with pytest.raises(DataError, match='turns 1 and 2 are both user turns'): encode_conversation(llama, [U, U, A], 64)


def test_unmarked_template_is_an_error_not_an_empty_loss(sp_base):
    from bailong.tokenizer import load_hf_tokenizer
    tok = load_hf_tokenizer(sp_base)
    tok.chat_template = "{% for m in messages %}{{ m['content'] + eos_token }}{% endfor %}"
    with pytest.raises(DataError, match='marks no answer token'): encode_conversation(tok, [U, A], 64)


def ex(n, first=10, answer=2):
    "A fake encoded conversation of `n` tokens whose last `answer` tokens carry the loss."
    ids = list(range(first, first + n))
    return {'input_ids': ids, 'labels': [-100] * (n - answer) + ids[n - answer:], 'turns_dropped': 0, 'answer_cut': False}


def test_packing_shapes_positions_and_labels():
    examples = [ex(3, 10), ex(4, 20), ex(5, 30), ex(2, 40, answer=1), ex(8, 50)]
    p = PackedConversations(examples, 8, pad_id=0)  # best-fit decreasing: [8], [5, 3], [4, 2]
    assert len(p) == 3 and p.lengths.tolist() == [8, 8, 6] and p.padding_share == pytest.approx(2 / 24)
    assert p.rows == [[4], [2, 0], [1, 3]]
    b = p.collate([0, 2, 1])
    assert {k: (v.shape, v.dtype) for k, v in b.items()} == {k: (torch.Size([3, 8]), torch.long)
                                                             for k in ('input_ids', 'labels', 'position_ids')}
    assert b['position_ids'][0].tolist() == list(range(8)) and b['input_ids'][0].tolist() == list(range(50, 58))
    assert b['input_ids'][1].tolist() == [20, 21, 22, 23, 40, 41, 0, 0]
    assert b['position_ids'][1].tolist() == [0, 1, 2, 3, 0, 1, 0, 1]
    assert b['labels'][1].tolist() == [-100, -100, 22, 23, -100, 41, -100, -100]
    assert b['input_ids'][2].tolist() == [30, 31, 32, 33, 34, 10, 11, 12] and b['position_ids'][2].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert b['labels'][2].tolist() == [-100, -100, -100, 33, 34, -100, 11, 12]
    p = PackedConversations([ex(3), ex(2)], 8, pad_id=7)
    assert p.collate([0])['position_ids'][0].tolist() == [0, 1, 2, 0, 1, 0, 1, 2]  # the padding: its own run
    assert p.collate([0])['input_ids'][0, 5:].tolist() == [7, 7, 7] and (p.collate([0])['labels'][0, 5:] == -100).all()
    first = ex(3, answer=3)  # a label on a conversation's first token would be predicted from the previous conversation
    assert PackedConversations([ex(4), first], 8, 0).collate([0])['labels'][0].tolist()[4:7] == [-100, 11, 12]
    with pytest.raises(DataError, match='example 1 has 9 tokens, more than block_size=8'): PackedConversations([ex(3), ex(9)], 8, 0)
    with pytest.raises(DataError, match='no examples'): PackedConversations([], 8, 0)


def test_padded_batches_and_length_groups():
    examples = [ex(n, 10 * i) for i, n in enumerate([5, 3, 9, 4, 7, 2, 8, 6])]
    p = PaddedConversations(examples, pad_id=0)
    b = p.collate([1, 2])
    assert {k: v.shape for k, v in b.items()} == {k: torch.Size([2, 9]) for k in ('input_ids', 'labels', 'attention_mask')}
    assert b['attention_mask'].tolist() == [[1] * 3 + [0] * 6, [1] * 9]
    assert b['input_ids'][0].tolist() == [10, 11, 12] + [0] * 6 and b['labels'][0].tolist() == [-100, 11, 12] + [-100] * 6
    assert len(p) == 8 and p.padding_share([[1, 2]]) == pytest.approx(6 / 18) and p.padding_share([[0], [1]]) == 0
    batches = length_grouped_batches(p.lengths, 2, seed=0, window=2)
    assert sorted(i for b in batches for i in b) == list(range(8)) and all(len(b) == 2 for b in batches)
    assert batches == length_grouped_batches(p.lengths, 2, seed=0, window=2) != length_grouped_batches(p.lengths, 2, seed=1, window=2)
    for w in range(0, 8, 4):  # sorted within each window of window * batch_size
        window = [p.lengths[i] for b in batches[w // 2:w // 2 + 2] for i in b]
        assert window == sorted(window, reverse=True)
    whole = length_grouped_batches(p.lengths, 2, seed=0, window=100)
    assert [p.lengths[i] for b in whole for i in b] == sorted(p.lengths, reverse=True)
    assert p.padding_share(whole) < p.padding_share(length_grouped_batches(p.lengths, 2, seed=0, window=1))
    assert len(length_grouped_batches([1, 2, 3], 2, seed=0)[-1]) == 1  # the last batch may be smaller
