"""The GPU suite's CPU dry run (benchmarks/gpu_suite.py --dry-run): every part the CPU can run, and the JSON layout the
GPU run writes, so that the script cannot rot between GPU loans."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_suite_dry_run(tmp_path):
    env = {**os.environ, 'PYTHON': sys.executable, 'CUDA_VISIBLE_DEVICES': ''}
    p = subprocess.run(['bash', str(ROOT / 'benchmarks' / 'gpu_suite.sh'), '--dry-run', '--out', str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=1500)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert sorted(f.name for f in tmp_path.iterdir()) == ['gpu_suite.log', 'gpu_suite_cpu.json']
    rec = json.loads((tmp_path / 'gpu_suite_cpu.json').read_text())
    assert rec['dry_run'] and rec['device'] == 'cpu'
    assert {'torch', 'cuda', 'transformers', 'vllm', 'bitsandbytes'} <= set(rec['versions'])
    status = {k: v['status'] for k, v in rec['parts'].items()}
    transfer = 'ok' if (ROOT / 'benchmarks' / 'transfer.py').exists() else 'skipped'
    assert status == {'install': 'skipped', 'p3': 'ok', 'quickstart': 'ok', 'quickstart_vllm': 'skipped', 'p4': 'ok',
                      'p4_fp32': 'skipped', 'transfer': transfer}, rec['parts']
    assert all(v['reason'] for v in rec['parts'].values() if v['status'] == 'skipped')
    p3 = rec['p3']
    assert p3['ratio'] > 0 and p3['memory_ratio'] > 0 and p3['sft_ratio'] > 0 and p3['sft_memory_ratio'] > 0
    assert {r['variant'] for r in p3['rows']} == {'peer', 'bailong', 'peer-sft', 'bailong-sft'}
    rows = {r['path']: r for r in rec['p4']['rows']}
    assert set(rows) == {'loop (bs 1)', 'batched (bs 4)', 'continuous batching', 'vllm'}
    assert rows['loop (bs 1)']['tokens_per_s'] > 0 and rows['batched (bs 4)']['answers_per_s'] > 0
    # float32 on a small model: batched answers are the loop's, token for token
    assert rows['batched (bs 4)']['identical'] == 4 and rows['batched (bs 4)']['share_first_32_identical'] == 1.0
    qs = rec['parts']['quickstart']
    assert set(qs['stage_seconds']) == {'data', 'tokenizer', 'embeddings', 'pretrain', 'sft', 'bench', 'gguf'}
    assert qs['device'] == 'cpu' and qs['summary']['bench']['answered'] == 3
