"""`bailong export gguf`, checked by reading the files back and by llama.cpp itself, on both families bailong extends:
a merged byte-level BPE extension of the real SmolLM2-135M-Instruct (tied, chat template with generation marks) and a
SentencePiece extension of Mistral's tokenizer (59k-class vocabulary) on a tiny random untied Llama.
Always run: the `gguf` package reads the vocabulary, token types, scores, merges and tensors back; transformers loads
the file (`gguf_file=`) with the model's logits; the Modelfile; bad inputs. Where llama-cpp-python is installed
(`pip install -e ".[llama]"`, a C++ build): llama.cpp tokenizes 50 zh-TW and 50 English lines with the HF ids, its greedy
tokens on 5 prompts are transformers' for 16 tokens (a divergence only at a near-tie), and the GGUF's chat template
renders the HF prompt."""
import importlib.util, json, re, time
from pathlib import Path
import pytest
import torch
from conftest import cli, run_cli

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec('llama_cpp') is None,
                                     reason='llama.cpp is not installed: pip install -e ".[llama]" (compiles llama.cpp)')
PROMPTS = ['請把這句話翻譯成英文：開啟說明系統。', '台灣最高的山是', 'Translate into Traditional Chinese: Open the Help system.',
           'The capital of France is', '使用說明功能表，可以']


def lines(sample, n=50):
    "n zh-TW lines (LibreOffice help and UD Chinese-GSD) and n English ones (the sample's English side), spread over the files."
    from bailong.data import read_corpus
    zh = [t for t in read_corpus(sample()) if len(t) <= 200]
    gsd = [json.loads(l)['text'] for l in sample('ud_gsd_dev.jsonl').read_text(encoding='utf-8').splitlines()]
    en = [json.loads(l)['en'] for l in sample('en_zh_tw_sample.jsonl').read_text(encoding='utf-8').splitlines()]
    return zh[::len(zh) // (n - 10)][:n - 10] + gsd[:10], en[::len(en) // n][:n]


@pytest.fixture(scope='module')
def smol_zh(tmp_path_factory, sample):
    """A merged zh-TW SmolLM2 instruct model as `bailong merge` leaves it: the real SmolLM2-135M-Instruct, its tokenizer
    extended with 300 byte-level pieces, zip-tie rows, tied, bfloat16, the SFT chat template with generation marks."""
    from bailong.tokenizer import smollm2_gguf, extend_tokenizer, load_hf_tokenizer
    from bailong.embeddings import load_model, resize_and_init, save_model
    from bailong.sft import training_chat_template
    base = load_hf_tokenizer(smollm2_gguf())
    tok = extend_tokenizer(smollm2_gguf(), sample(), 300).hf()
    tok.chat_template = training_chat_template(base)
    model = load_model(smollm2_gguf())
    resize_and_init(model, base, tok, method='zip-tie')
    return save_model(model.to(torch.bfloat16), tok, tmp_path_factory.mktemp('smol')/'smol-zh')


@pytest.fixture(scope='module')
def smol_f16(smol_zh):
    t0 = time.perf_counter()
    r = run_cli('export', 'gguf', smol_zh, '--out', smol_zh.parent/'smol-zh-f16.gguf')
    assert r.returncode == 0, r.stderr[-3000:]
    print(f'export f16: {time.perf_counter() - t0:.0f}s (with the CLI start)')
    assert f"ollama create smol-zh-f16 -f {smol_zh.parent/'smol-zh-f16.Modelfile'} && ollama run smol-zh-f16" in r.stdout
    return smol_zh.parent/'smol-zh-f16.gguf'


@pytest.fixture(scope='module')
def sp_tiny(tmp_path_factory, sp_base, sample):
    "Mistral's SentencePiece tokenizer extended to a 59k-class vocabulary (`bailong tokenizer extend`), on a tiny untied Llama."
    from transformers import AutoTokenizer
    from bailong.train import tiny_llama
    d = tmp_path_factory.mktemp('sp')
    r = run_cli('tokenizer', 'extend', '--base', sp_base, '--corpus', sample(), '--add', 27000, '--out', d/'tok')
    assert r.returncode == 0, r.stderr[-3000:]
    tok = AutoTokenizer.from_pretrained(str(d/'tok'))
    model = tiny_llama(len(tok), tied=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model.to(torch.bfloat16).save_pretrained(d/'sp-zh'); tok.save_pretrained(d/'sp-zh')  # bfloat16, as bailong merge saves
    r = run_cli('export', 'gguf', d/'sp-zh', '--out', d/'sp-zh-f16.gguf', '--type', 'f16')
    assert r.returncode == 0, r.stderr[-3000:]
    return d/'sp-zh', d/'sp-zh-f16.gguf'


def test_pre_tokenizer_table_agrees_with_llama_cpp():
    "bailong's name for SmolLM2's pre-tokenizer is the one llama.cpp's converter finds for the unextended SmolLM2."
    import hashlib
    from bailong.gguf import VENDOR, PRE_TOKENIZERS, pre_tokenizer_fingerprint
    from bailong.tokenizer import smollm2_gguf, load_hf_tokenizer
    src = (VENDOR/'conversion'/'base.py').read_text(encoding='utf-8')
    chktxt = eval(re.search(r"chktxt = ('.*')\n", src)[1])
    tok = load_hf_tokenizer(smollm2_gguf())
    chkhsh = hashlib.sha256(str(tok.encode(chktxt)).encode()).hexdigest()
    name = re.search(chkhsh + r'":\n\s+# ref: \S+\n\s+res = "(\w+)"', src)[1]
    assert PRE_TOKENIZERS[pre_tokenizer_fingerprint(json.loads(tok.backend_tokenizer.to_str()))] == name == 'smollm'


def test_smol_file_reads_back(smol_zh, smol_f16):
    from transformers import AutoTokenizer
    from bailong.gguf import read_gguf, gguf_chat_template
    tok, g = AutoTokenizer.from_pretrained(str(smol_zh)), read_gguf(smol_f16)
    assert g['tokens'] == tok.convert_ids_to_tokens(list(range(len(tok)))) and len(tok) == 49152 + 300
    special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
    assert [i for i, t in enumerate(g['token_types']) if t == 3] == sorted(special)  # CONTROL; the rest NORMAL
    assert set(g['token_types']) == {1, 3}
    assert g['merges'][-1] == ' '.join(json.loads((smol_zh/'tokenizer.json').read_text())['model']['merges'][-1])
    assert 'output.weight' not in g['tensors'] and g['tensors']['token_embd.weight'] == ('F16', (576, len(tok)))
    m = g['meta']
    assert (m['tokenizer.ggml.model'], m['tokenizer.ggml.pre']) == ('gpt2', 'smollm')
    assert m['tokenizer.ggml.eos_token_id'] == tok.eos_token_id and m['tokenizer.ggml.bos_token_id'] == tok.bos_token_id
    assert re.search(r'{%-?\s*generation', tok.chat_template) and 'generation -%}' not in m['tokenizer.chat_template']
    assert m['tokenizer.chat_template'] == gguf_chat_template(tok.chat_template)


def _logit_diff(model_dir, gguf_path, texts):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ref = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    back = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32).eval()
    with torch.no_grad():
        return max((back(**tok(t, return_tensors='pt')).logits - ref(**tok(t, return_tensors='pt')).logits).abs().max().item()
                   for t in texts)


def test_smol_loads_back_in_transformers(smol_zh, smol_f16):
    diff = _logit_diff(smol_zh, smol_f16, PROMPTS[:3])
    print(f'SmolLM2-zh f16 GGUF vs the bfloat16 model, largest logit difference: {diff:.2e}')
    assert diff < 1e-2


def test_modelfile_renders_like_the_hf_template(smol_zh, smol_f16):
    from transformers import AutoTokenizer
    from bailong.gguf import chat_parts, render_parts
    tok, mf = AutoTokenizer.from_pretrained(str(smol_zh)), smol_f16.with_suffix('.Modelfile').read_text()
    assert mf.splitlines()[1] == 'FROM ./smol-zh-f16.gguf' and 'PARAMETER stop "<|im_end|>"' in mf
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in mf
    assert mf.count('{{ .Content }}') == 3 and 'generation' not in mf
    parts = chat_parts(tok)
    for conv in ([{'role': 'user', 'content': '你好'}], [{'role': 'system', 'content': '請用繁體中文。'}, {'role': 'user', 'content': 'Hi'},
                 {'role': 'assistant', 'content': '嗨！'}, {'role': 'user', 'content': '台灣最高的山？'}]):
        assert render_parts(parts, conv) == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)


def test_sentencepiece_extension_reads_back(sp_tiny):
    import sentencepiece as spm
    from bailong.gguf import read_gguf, merge_scores
    model_dir, path = sp_tiny
    # the merged model has no tokenizer.model (transformers saves tokenizer.json only); the extension's is the reference
    assert not (model_dir/'tokenizer.model').exists()
    sp, g = spm.SentencePieceProcessor(model_file=str(model_dir.parent/'tok'/'tokenizer.model')), read_gguf(path)
    n = sp.get_piece_size()
    assert g['meta']['tokenizer.ggml.model'] == 'llama' and len(g['tokens']) == n == 32000 + 27000
    new = range(32000, n)  # the added pieces: in place, normal pieces, scored in SentencePiece's order of merging
    assert [g['tokens'][i] for i in new] == [sp.id_to_piece(i) for i in new] and {g['token_types'][i] for i in new} == {1}
    reachable = merge_scores(json.loads((model_dir/'tokenizer.json').read_text()))  # pieces some merge makes
    merged = [i for i in reachable if len(sp.id_to_piece(i)) > 1]
    assert len(merged) > 50_000
    assert sorted(merged, key=lambda i: -g['scores'][i]) == sorted(merged, key=lambda i: -sp.get_score(i))
    assert g['token_types'][1:3] == [3, 3] and g['token_types'][0] in (2, 3) and g['token_types'][3] == 6  # <unk> <s> </s>, bytes
    assert g['tensors']['output.weight'][1] == g['tensors']['token_embd.weight'][1]  # untied: its own head
    assert _logit_diff(model_dir, path, ['開啟說明系統。', 'Open the Help system.']) < 1e-2


def test_bad_inputs(tmp_path, smol_zh):
    (tmp_path/'run'/'adapter').mkdir(parents=True); (tmp_path/'run'/'summary.json').write_text('{}')
    (tmp_path/'random').mkdir(); (tmp_path/'random'/'notes.txt').write_text('x')
    (tmp_path/'taken.gguf').write_text('keep')
    cases = [(['export', 'gguf', tmp_path/'run', '--out', tmp_path/'a.gguf'], 'not a merged model; merge it first'),
             (['export', 'gguf', tmp_path/'random', '--out', tmp_path/'a.gguf'], 'no config.json'),
             (['export', 'gguf', tmp_path/'missing', '--out', tmp_path/'a.gguf'], 'not a directory'),
             (['export', 'gguf', smol_zh, '--out', tmp_path/'a.gguf', '--type', 'q4_k'], "--type 'q4_k': expected one of f16, bf16, q8_0"),
             (['export', 'gguf', smol_zh, '--out', tmp_path/'a.bin'], 'expected a file name ending in .gguf'),
             (['export', 'gguf', smol_zh, '--out', tmp_path/'taken.gguf'], 'already exists; pass overwrite (--overwrite)')]
    for args, message in cases:
        rc, err = cli(*args)
        assert rc == 2 and message in err and err.count('\n') == 1, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['random', 'run', 'taken.gguf']  # nothing written, nothing left
    assert (tmp_path/'taken.gguf').read_text() == 'keep'


@needs_llama_cpp
@pytest.mark.parametrize('which', ['smol', 'sp'])
def test_llama_cpp_tokenizes_and_generates_like_transformers(which, request, sample):
    from llama_cpp import Llama
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from bailong.gguf import llama_cpp_tokens, llama_cpp_greedy, hf_greedy, compare_greedy, read_gguf
    model_dir, path = (request.getfixturevalue('smol_zh'), request.getfixturevalue('smol_f16')) if which == 'smol' else request.getfixturevalue('sp_tiny')
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    llm = Llama(str(path), n_ctx=512, n_threads=2, verbose=False)
    add_bos = bool(read_gguf(path)['meta'].get('tokenizer.ggml.add_bos_token'))
    zh, en = lines(sample)
    bad = [t for t in zh + en if llama_cpp_tokens(llm, t, add_bos) != tok(t)['input_ids']]
    print(f'{which}: {len(zh) + len(en) - len(bad)}/{len(zh) + len(en)} lines tokenized identically')
    assert len(zh) == len(en) == 50 and not bad, bad[:3]
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    for p in PROMPTS:
        ids = tok(p)['input_ids']
        ours, gaps = hf_greedy(model, ids, 16)
        c = compare_greedy(ours, llama_cpp_greedy(llm, ids, 16), gaps)
        print(which, p, c)
        assert c['ok'], (p, c)


@needs_llama_cpp
def test_llama_cpp_renders_the_chat_template(smol_zh, smol_f16):
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(smol_zh))
    llm = Llama(str(smol_f16), n_ctx=256, verbose=False, vocab_only=True)
    fmt = Jinja2ChatFormatter(llm.metadata['tokenizer.chat_template'], eos_token=tok.eos_token, bos_token=tok.bos_token)
    conv = [{'role': 'user', 'content': '請把這句話翻譯成英文：開啟說明系統。'}, {'role': 'assistant', 'content': 'Open the Help system.'},
            {'role': 'user', 'content': 'Thanks!'}]
    assert fmt(messages=conv).prompt == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
