"`bailong tokenizer extend/stats` end to end: both families, every supported kind of --base, and each bad input."
import json, shutil
import pytest
import sentencepiece as spm
from conftest import run_cli


def english_texts(shared):
    qs = [t for l in (shared/'bench/mt_bench/question.jsonl').read_text().splitlines() for t in json.loads(l)['turns']]
    return [q for q in qs if not any('\u4e00' <= c <= '\u9fff' for c in q)]


@pytest.fixture(scope='module')
def small_corpus(tmp_path_factory, shared):
    p = tmp_path_factory.mktemp('c')/'corpus.txt'
    p.write_text('\n'.join((shared/'data/zh_tw/corpus.txt').read_text(encoding='utf-8').splitlines()[:40000]), encoding='utf-8')
    return p


def test_extend_llama2_from_a_bare_tokenizer_model(tmp_path, shared, small_corpus):
    out = tmp_path/'llama2-zh'
    r = run_cli('tokenizer', 'extend', '--base', shared/'tokenizers/llama2', '--corpus', small_corpus, '--add', 4000, '--out', out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out/'extension_report.json').read_text())
    assert (report['family'], report['base_size'], report['size']) == ('sentencepiece', 32000, 36000)
    assert json.loads(r.stdout[:r.stdout.rindex('}') + 1])['size'] == 36000
    from transformers import AutoTokenizer
    fast, sp = AutoTokenizer.from_pretrained(str(out)), spm.SentencePieceProcessor(model_file=str(out/'tokenizer.model'))
    sp0 = spm.SentencePieceProcessor(model_file=str(shared/'tokenizers/llama2/tokenizer.model'))
    held_out = (shared/'data/zh_tw/corpus.txt').read_text(encoding='utf-8').splitlines()[-500:]
    for s in held_out + english_texts(shared):
        assert fast.encode(s, add_special_tokens=False) == sp.encode(s), s
        assert fast.decode(fast.encode(s, add_special_tokens=False)) == s
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(shared))
    assert len(fast.encode('使用說明功能表', add_special_tokens=False)) < len(sp0.encode('使用說明功能表')) / 2


def test_stats_json(tmp_path, shared):
    r = run_cli('tokenizer', 'stats', '--tokenizer', shared/'tokenizers/llama2', '--text', shared/'eval/ud_gsd_dev.jsonl')
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert abs(stats['words_per_token'] - 0.392) < 0.005 and stats['texts'] == 500 and stats['byte_token_rate'] > 0.3


def test_extend_mistral_sentencepiece(tmp_path, shared, small_corpus):
    import importlib.util
    from pathlib import Path
    src = Path(importlib.util.find_spec('mistral_common').submodule_search_locations[0])/'data/tokenizer.model.v1'
    (tmp_path/'mistral').mkdir(); shutil.copy(src, tmp_path/'mistral/tokenizer.model')
    out = tmp_path/'mistral-zh'
    r = run_cli('tokenizer', 'extend', '--base', tmp_path/'mistral', '--corpus', small_corpus, '--add', 3000, '--out', out)
    assert r.returncode == 0, r.stderr
    sp0, sp = (spm.SentencePieceProcessor(model_file=str(p)) for p in (src, out/'tokenizer.model'))
    assert sp.get_piece_size() == sp0.get_piece_size() + 3000
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(shared))


def test_extend_from_gguf_files(tmp_path, shared, small_corpus):
    "A byte-level GGUF (SmolLM2) and a SentencePiece GGUF (Llama 2's tokenizer written to GGUF here)."
    import gguf
    from bailong.tokenizer import smollm2_gguf, load_base
    r = run_cli('tokenizer', 'extend', '--base', smollm2_gguf(), '--corpus', small_corpus, '--add', 500, '--out', tmp_path/'smol')
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'smol/extension_report.json').read_text())['size'] == 49152 + 500
    base = load_base(shared/'tokenizers/llama2')
    w = gguf.GGUFWriter(str(tmp_path/'l2.gguf'), 'llama')
    w.add_tokenizer_model('llama'); w.add_add_space_prefix(True)
    w.add_token_list([p.piece for p in base.proto.pieces]); w.add_token_scores([p.score for p in base.proto.pieces])
    w.add_token_types([p.type for p in base.proto.pieces])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    from_gguf = load_base(tmp_path/'l2.gguf')
    assert [(p.piece, p.score, p.type) for p in from_gguf.proto.pieces] == [(p.piece, p.score, p.type) for p in base.proto.pieces]
    sp = spm.SentencePieceProcessor(model_proto=from_gguf.proto.SerializeToString())
    sp0 = spm.SentencePieceProcessor(model_file=str(shared/'tokenizers/llama2/tokenizer.model'))
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(shared)[:50] + ['使用說明 功能表'])


def _wordpiece_dir(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    t = Tokenizer(models.WordPiece({'[UNK]': 0, 'a': 1}, unk_token='[UNK]')); t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    (tmp_path/'bert').mkdir(); t.save(str(tmp_path/'bert/tokenizer.json'))
    return tmp_path/'bert'


def test_bad_inputs(tmp_path, shared, small_corpus):
    english = tmp_path/'english.txt'; english.write_text('\n'.join(english_texts(shared)))
    tiny = tmp_path/'tiny.txt'; tiny.write_text('使用說明功能表\n開啟目前應用程式的說明主頁\n')
    taken = tmp_path/'taken'; taken.mkdir(); (taken/'mine.txt').write_text('x')
    l2 = shared/'tokenizers/llama2'
    cases = {
        'unsupported kind': (['--base', _wordpiece_dir(tmp_path), '--corpus', small_corpus, '--add', 10],
                             'a WordPiece tokenizer; bailong extends SentencePiece BPE'),
        'no Chinese': (['--base', l2, '--corpus', english, '--add', 10], 'no Chinese text'),
        'too many': (['--base', l2, '--corpus', tiny, '--add', 5000, '--no-lexicon'], 'fewer than --add 5000'),
        'missing base': (['--base', tmp_path/'nope', '--corpus', tiny, '--add', 10], 'not found'),
    }
    for name, (args, message) in cases.items():
        out = tmp_path/f'out-{name.replace(" ", "-")}'
        r = run_cli('tokenizer', 'extend', *args, '--out', out)
        assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, (name, r.stderr)
        assert not out.exists(), name
    r = run_cli('tokenizer', 'extend', '--base', l2, '--corpus', small_corpus, '--add', 100, '--out', taken)
    assert r.returncode == 2 and 'already exists' in r.stderr and (taken/'mine.txt').exists()
    r = run_cli('tokenizer', 'extend', '--base', l2, '--corpus', small_corpus, '--add', 100, '--out', taken, '--overwrite')
    assert r.returncode == 0 and not (taken/'mine.txt').exists() and (taken/'tokenizer.json').exists()
    assert not list(tmp_path.glob('.*tmp-*')), 'temporary directories left behind'
