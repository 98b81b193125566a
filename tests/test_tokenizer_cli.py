"`bailong tokenizer extend/stats` end to end: both families, every supported kind of --base, and each bad input."
import json, shutil
import pytest
import sentencepiece as spm
from conftest import run_cli


def english_texts(sample):
    qs = [t for l in sample('bench/mt_bench/question.jsonl').read_text().splitlines() for t in json.loads(l)['turns']]
    return [q for q in qs if not any('\u4e00' <= c <= '\u9fff' for c in q)]


def general_zh(sample):
    "General-domain zh-TW sentences (UD Chinese-GSD), none of them in the training corpus."
    return [json.loads(l)['text'] for l in sample('ud_gsd_dev.jsonl').read_text(encoding='utf-8').splitlines()]


@pytest.fixture(scope='module')
def small_corpus(sample):
    return sample()  # 8,499 real zh-TW paragraphs of LibreOffice help


def test_extend_from_a_bare_tokenizer_model(tmp_path, sp_base, sample, small_corpus):
    "A directory holding only a tokenizer.model, as Llama 2 ships it."
    (tmp_path/'base').mkdir(); shutil.copy(sp_base, tmp_path/'base/tokenizer.model')
    out = tmp_path/'base-zh'
    r = run_cli('tokenizer', 'extend', '--base', tmp_path/'base', '--corpus', small_corpus, '--add', 4000, '--out', out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out/'extension_report.json').read_text())
    assert (report['family'], report['base_size'], report['size']) == ('sentencepiece', 32000, 36000)
    assert json.loads(r.stdout[:r.stdout.rindex('}') + 1])['size'] == 36000
    from transformers import AutoTokenizer
    fast, sp = AutoTokenizer.from_pretrained(str(out)), spm.SentencePieceProcessor(model_file=str(out/'tokenizer.model'))
    sp0 = spm.SentencePieceProcessor(model_file=str(sp_base))
    for s in general_zh(sample) + english_texts(sample):
        assert fast.encode(s, add_special_tokens=False) == sp.encode(s), s
        assert fast.decode(fast.encode(s, add_special_tokens=False)) == s
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(sample))
    assert len(fast.encode('儲存格欄位', add_special_tokens=False)) < len(sp0.encode('儲存格欄位')) / 2


def test_extend_from_a_model_file_of_any_name(tmp_path, sample, small_corpus):
    "mistral-common's tokenizer.model.v1, passed as it is named."
    import importlib.util
    from pathlib import Path
    src = Path(importlib.util.find_spec('mistral_common').submodule_search_locations[0])/'data/tokenizer.model.v1'
    out = tmp_path/'mistral-zh'
    r = run_cli('tokenizer', 'extend', '--base', src, '--corpus', small_corpus, '--add', 3000, '--out', out)
    assert r.returncode == 0, r.stderr
    sp0, sp = (spm.SentencePieceProcessor(model_file=str(p)) for p in (src, out/'tokenizer.model'))
    assert sp.get_piece_size() == sp0.get_piece_size() + 3000
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(sample))


def test_stats_json(sp_base):
    r = run_cli('tokenizer', 'stats', '--tokenizer', sp_base, '--text', 'bailong:ud_gsd_dev.jsonl')  # the packaged file
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    published = {'tokenizer.model': 0.392, 'tokenizer.model.v1': 0.488}[sp_base.name]  # Llama 2 (the paper's figure), Mistral 7B
    assert abs(stats['words_per_token'] - published) < 0.005 and stats['texts'] == 500 and stats['byte_token_rate'] > 0.3


def test_extend_from_gguf_files(tmp_path, sp_base, sample, small_corpus):
    "A byte-level GGUF (SmolLM2) and a SentencePiece GGUF (the SentencePiece base written to GGUF here)."
    import gguf
    from bailong.tokenizer import smollm2_gguf, load_base
    r = run_cli('tokenizer', 'extend', '--base', smollm2_gguf(), '--corpus', small_corpus, '--add', 500, '--out', tmp_path/'smol')
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'smol/extension_report.json').read_text())['size'] == 49152 + 500
    base = load_base(sp_base)
    w = gguf.GGUFWriter(str(tmp_path/'sp.gguf'), 'llama')
    w.add_tokenizer_model('llama'); w.add_add_space_prefix(True)
    w.add_token_list([p.piece for p in base.proto.pieces]); w.add_token_scores([p.score for p in base.proto.pieces])
    w.add_token_types([p.type for p in base.proto.pieces])
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    from_gguf = load_base(tmp_path/'sp.gguf')
    assert [(p.piece, p.score, p.type) for p in from_gguf.proto.pieces] == [(p.piece, p.score, p.type) for p in base.proto.pieces]
    sp = spm.SentencePieceProcessor(model_proto=from_gguf.proto.SerializeToString())
    sp0 = spm.SentencePieceProcessor(model_file=str(sp_base))
    assert all(sp.encode(s) == sp0.encode(s) for s in english_texts(sample)[:50] + ['使用說明 功能表'])


def _wordpiece_dir(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    t = Tokenizer(models.WordPiece({'[UNK]': 0, 'a': 1}, unk_token='[UNK]')); t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    (tmp_path/'bert').mkdir(); t.save(str(tmp_path/'bert/tokenizer.json'))
    return tmp_path/'bert'


def test_bad_inputs(tmp_path, sp_base, sample, small_corpus):
    english = tmp_path/'english.txt'; english.write_text('\n'.join(english_texts(sample)))
    tiny = tmp_path/'tiny.txt'; tiny.write_text('使用說明功能表\n開啟目前應用程式的說明主頁\n')
    taken = tmp_path/'taken'; taken.mkdir(); (taken/'mine.txt').write_text('x')
    l2 = sp_base
    cases = {
        'unsupported kind': (['--base', _wordpiece_dir(tmp_path), '--corpus', small_corpus, '--add', 10],
                             'a WordPiece tokenizer; bailong extends SentencePiece BPE'),
        'no Chinese': (['--base', l2, '--corpus', english, '--add', 10], 'no Chinese text'),
        'too many': (['--base', l2, '--corpus', tiny, '--add', 5000, '--no-lexicon'], 'fewer than --add 5000'),
        'missing base': (['--base', tmp_path/'nope', '--corpus', tiny, '--add', 10], 'not found'),
        'not a tokenizer': (['--base', english, '--corpus', tiny, '--add', 10], 'english.txt: not a SentencePiece model'),
    }
    for name, (args, message) in cases.items():
        out = tmp_path/f'out-{name.replace(" ", "-")}'
        r = run_cli('tokenizer', 'extend', *args, '--out', out)
        assert r.returncode == 2 and message in r.stderr and 'Traceback' not in r.stderr, (name, r.stderr)
        assert not out.exists(), name
    r = run_cli('tokenizer', 'extend', '--base', l2, '--corpus', small_corpus, '--add', 100, '--out', taken)
    assert r.returncode == 2 and 'already exists' in r.stderr and (taken/'mine.txt').exists()
    r = run_cli('tokenizer', 'extend', '--base', l2, '--corpus', small_corpus, '--add', 100, '--out', taken, '--overwrite')
    assert r.returncode == 2 and 'not a bailong tokenizer output' in r.stderr and (taken/'mine.txt').exists()  # not ours
    (taken/'mine.txt').unlink()
    r = run_cli('tokenizer', 'extend', '--base', l2, '--corpus', small_corpus, '--add', 100, '--out', taken)
    assert r.returncode == 0 and (taken/'tokenizer.json').exists(), r.stderr  # an empty folder is written into
    assert not list(tmp_path.glob('.*tmp-*')) and not list(taken.glob('.*tmp-*')), 'temporary directories left behind'
