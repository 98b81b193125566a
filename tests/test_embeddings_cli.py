"`bailong embeddings init/compare` end to end on a tiny random Llama with a real Llama-family tokenizer, and bad inputs."
import json
import pytest
import torch
from conftest import run_cli


@pytest.fixture(scope='module')
def setup(tmp_path_factory, sp_base, sample):
    d = tmp_path_factory.mktemp('emb')
    from bailong.train import tiny_llama
    tiny_llama(32000).save_pretrained(d/'tiny')
    tiny_llama(1000, num_hidden_layers=1).save_pretrained(d/'small-vocab')
    corpus = d/'corpus.txt'
    corpus.write_text('\n'.join(sample().read_text(encoding='utf-8').splitlines()[:-300]), encoding='utf-8')
    r = run_cli('tokenizer', 'extend', '--base', sp_base, '--corpus', corpus, '--add', 1000, '--out', d/'tok')
    assert r.returncode == 0, r.stderr
    return d


def test_init_writes_a_standalone_model(setup, sp_base, tmp_path):
    r = run_cli('embeddings', 'init', '--model', setup/'tiny', '--base-tokenizer', sp_base,
                '--tokenizer', setup/'tok', '--method', 'zip-tie', '--tie', '--out', tmp_path/'m')
    assert r.returncode == 0, r.stderr
    from transformers import AutoModelForCausalLM, AutoTokenizer
    m, before = AutoModelForCausalLM.from_pretrained(str(tmp_path/'m')), AutoModelForCausalLM.from_pretrained(str(setup/'tiny'))
    tok = AutoTokenizer.from_pretrained(str(tmp_path/'m'))
    assert m.get_input_embeddings().weight.shape[0] == len(tok) == 33000
    assert m.lm_head.weight is m.get_input_embeddings().weight
    assert torch.equal(m.get_input_embeddings().weight[:32000], before.get_input_embeddings().weight)
    lan, lan_bytes = tok.convert_tokens_to_ids('欄'), tok.convert_tokens_to_ids(['<0xE6>', '<0xAC>', '<0x84>'])  # 欄 in UTF-8
    assert lan >= 32000 and lan_bytes == [233, 175, 135] and torch.equal(m.get_input_embeddings().weight[lan],
                                                                         before.get_input_embeddings().weight[lan_bytes].mean(0))
    assert json.loads((tmp_path/'m/bailong_init.json').read_text())['method'] == 'zip-tie'


def test_distill_init_moves_only_new_rows(setup, sp_base, sample, tmp_path):
    r = run_cli('embeddings', 'init', '--model', setup/'tiny', '--base-tokenizer', sp_base, '--tokenizer', setup/'tok',
                '--method', 'zip-tie-distill', '--text', sample(), '--distill-steps', 3, '--out', tmp_path/'m')
    assert r.returncode == 0, r.stderr
    from transformers import AutoModelForCausalLM
    m, before = AutoModelForCausalLM.from_pretrained(str(tmp_path/'m')), AutoModelForCausalLM.from_pretrained(str(setup/'tiny'))
    assert torch.equal(m.get_input_embeddings().weight[:32000], before.get_input_embeddings().weight)
    assert torch.equal(m.lm_head.weight[:32000], before.lm_head.weight)
    info = json.loads((tmp_path/'m/bailong_init.json').read_text())
    assert info['method'] == 'zip-tie-distill' and info['distill_steps'] == 3 and info['distill_loss'][1] < info['distill_loss'][0]


def test_compare_writes_json_and_plot(setup, sp_base, sample, tmp_path):
    text = tmp_path/'heldout.txt'
    text.write_text('\n'.join(sample().read_text(encoding='utf-8').splitlines()[-300:]), encoding='utf-8')
    r = run_cli('embeddings', 'compare', '--model', setup/'tiny', '--base-tokenizer', sp_base,
                '--tokenizer', setup/'tok', '--text', text, '--steps', 2, '--eval-texts', 20, '--methods', 'zip-tie', 'random',
                '--out', tmp_path/'cmp')
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path/'cmp/compare.json').read_text())
    assert set(res) == {'base', 'zip-tie', 'random'}
    for v in res.values(): assert v['bits_per_char_after'] > 0 and v['chars_seen'] == res['base']['chars_seen']
    assert (tmp_path/'cmp/compare.png').stat().st_size > 1000


def test_bad_inputs(setup, sp_base, tmp_path):
    from bailong.tokenizer import smollm2_gguf
    common = ['--base-tokenizer', sp_base]
    (setup/'english.txt').write_text('Hello, world.\nAnother English line.\n')
    cases = {
        'not an extension': (['--model', setup/'tiny', *common, '--tokenizer', smollm2_gguf()], 'does not extend the base'),
        'model too small': (['--model', setup/'small-vocab', *common, '--tokenizer', setup/'tok'], 'fewer than the base tokenizer'),
        'unknown method': (['--model', setup/'tiny', *common, '--tokenizer', setup/'tok', '--method', 'zipper'], "invalid choice: 'zipper'"),
        'distill without text': (['--model', setup/'tiny', *common, '--tokenizer', setup/'tok', '--method', 'zip-tie-distill'], 'give --text'),
        'distill on English': (['--model', setup/'tiny', *common, '--tokenizer', setup/'tok', '--method', 'zip-tie-distill',
                                '--text', setup/'english.txt'], 'texts that contain new tokens'),
    }
    for name, (args, message) in cases.items():
        out = tmp_path/name.replace(' ', '-')
        r = run_cli('embeddings', 'init', *args, '--out', out)
        assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, (name, r.stderr)
        assert not out.exists(), name
