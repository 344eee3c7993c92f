# Copyright (c) OpenMMLab. All rights reserved.
"""Proof of learning: the decoupled model vs its single-branch ablations.

Trains each config with the same budget and seed(s) on the synthetic data
(tools/dataset_converters/make_synthetic_rvos.py), evaluates J&F on the
synthetic valid split and reports, side by side, J&F over all expressions
and over the *swap-pair* subset: expressions such as "the red circle next to
the blue square" vs "the blue square next to the red circle", which have the
same words but different referents, so a bag-of-words reading cannot tell
them apart.

The default configs are the main job's decoupled tiny model and its
context-only and subject-only ablations; every (config, seed) run prints its
scores when it ends and the tables give mean +- standard deviation over the
seeds. ``--heldout-data-root`` also scores every checkpoint on the valid
split of another data root (one generated with a seed the training data
never used); ``--jobs 2`` runs two trainings at a time, each on half of the
cores (more runs per hour on 2 cores than one 2-thread run at a time).

Example (9 trainings of about 12 minutes each on 2 CPU cores):
    python tools/analysis_tools/benchmark_swap_pairs.py --seeds 0 1 2 \\
        --heldout-data-root data/synthetic-rvos-valid-seed1234
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIGS = [
    'configs/dmformer/dmformer_tiny_synthetic_attr-pretrained.py',
    'configs/dmformer/dmformer_tiny_synthetic_attr-pretrained_context-only.py',
    'configs/dmformer/dmformer_tiny_synthetic_attr-pretrained_subject-only.py',
]


def load_swap_keys(data_root: str) -> List[Tuple[str, str]]:
    """(video_id, exp_id) keys of the valid expressions in swap pairs."""
    path = osp.join(data_root, 'meta_expressions/valid/swap_pairs.json')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{path} not found: generate the data with '
            'tools/dataset_converters/make_synthetic_rvos.py')
    pairs = json.load(open(path))['pairs']
    return [(str(v), str(e)) for pair in pairs for v, e in pair]


def summarize(per_exp: Dict[str, Dict[str, dict]],
              swap_keys: List[Tuple[str, str]]) -> Dict[str, float]:
    """J&F (percent) over all expressions and over the swap-pair subset,
    plus the share of swap pairs whose two expressions both reach J > 0.5.
    """
    all_jf = [s['JF'] for exps in per_exp.values() for s in exps.values()]
    missing = [k for k in swap_keys if k[1] not in per_exp.get(k[0], {})]
    if missing:
        raise ValueError(f'swap-pair expressions without a score: '
                         f'{missing[:5]}')
    swap_jf = [per_exp[v][e]['JF'] for v, e in swap_keys]
    swap_j = [per_exp[v][e]['J'] for v, e in swap_keys]
    pairs_ok = [
        swap_j[i] > 0.5 and swap_j[i + 1] > 0.5
        for i in range(0, len(swap_j), 2)
    ]
    return {
        'J&F': 100 * float(np.mean(all_jf)),
        'swap J&F': 100 * float(np.mean(swap_jf)),
        'swap pairs solved %': 100 * float(np.mean(pairs_ok)),
        'swap pairs solved': int(np.sum(pairs_ok)),
        'num_expressions': len(all_jf),
        'num_swap_expressions': len(swap_keys),
    }


TABLE_KEYS = ('J&F', 'swap J&F', 'swap pairs solved')


def format_table(results: Dict[str, dict]) -> str:
    """Markdown table of ``mean +- std`` per config (see :func:`main`)."""
    lines = ['| config | ' + ' | '.join(TABLE_KEYS) + ' |',
             '|---' * (len(TABLE_KEYS) + 1) + '|']
    for name, res in results.items():
        cells = [f'{res["mean"][k]:.2f} ± {res["std"][k]:.2f}'
                 for k in TABLE_KEYS]
        lines.append(f'| `{name}` | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def schedule_options(config: str, iters: int) -> List[str]:
    """``--cfg-options`` that stretch an iteration-based schedule of the
    config to ``iters`` iterations (milestones and ``end`` scaled
    proportionally), so a longer run keeps the schedule's shape."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    base = cfg.train_cfg.max_iters
    options = []
    for i, sched in enumerate(cfg.get('param_scheduler', [])):
        if sched.get('by_epoch', True):
            continue
        if 'milestones' in sched:
            scaled = [round(m * iters / base) for m in sched['milestones']]
            options.append(f'param_scheduler.{i}.milestones={scaled}')
        if sched.get('end', None) == base:
            options.append(f'param_scheduler.{i}.end={iters}')
    return [o.replace(' ', '') for o in options]


def train_and_score(config: str,
                    seed: int,
                    iters: int,
                    data_root: str,
                    work_dir: str,
                    env: Optional[Dict[str, str]] = None
                    ) -> Dict[str, Dict[str, dict]]:
    """Train ``config`` and return its per-expression valid scores."""
    per_exp_file = osp.join(work_dir, 'per_expression.json')
    options = schedule_options(config, iters) + [
        f'randomness.seed={seed}',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'val_evaluator.per_expression_file={per_exp_file}',
    ]
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools/train.py'), config, '--work-dir', work_dir,
        '--data-root', data_root, '--cfg-options'
    ] + options
    _run(cmd, osp.join(work_dir, 'benchmark_train.log'), env)
    return json.load(open(per_exp_file))


def score_heldout(
        config: str,
        work_dir: str,
        heldout_root: str,
        env: Optional[Dict[str, str]] = None) -> Dict[str, Dict[str, dict]]:
    """Score the run's last checkpoint on the valid split of another data
    root (e.g. one generated with a seed the training data never used)
    with ``tools/test.py``; return the per-expression scores."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    per_exp_file = osp.join(work_dir, 'per_expression_heldout.json')
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools/test.py'), config, checkpoint, '--work-dir',
        osp.join(work_dir, 'test_heldout'), '--data-root', heldout_root,
        '--cfg-options', f'test_evaluator.per_expression_file={per_exp_file}'
    ]
    _run(cmd, osp.join(work_dir, 'benchmark_test_heldout.log'), env)
    return json.load(open(per_exp_file))


def _run(cmd: List[str], log_file: str, env: Optional[Dict[str,
                                                           str]]) -> None:
    """Run ``cmd`` from the repository root, its output in ``log_file``."""
    print('$ ' + ' '.join(cmd), flush=True)
    with open(log_file, 'w') as log:
        proc = subprocess.run(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        raise RuntimeError(f'{cmd[1]} exited with {proc.returncode}; see '
                           f'{log_file}')


def thread_env(jobs: int) -> Optional[Dict[str, str]]:
    """Environment of one of ``jobs`` concurrent runs: the CPU cores split
    between them (intra-op threads), None for a single job."""
    if jobs <= 1:
        return None
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    return dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)


def aggregate(runs: List[dict]) -> Dict[str, dict]:
    """Mean and population standard deviation over the runs of a config."""
    return dict(
        runs=runs,
        mean={k: float(np.mean([r[k] for r in runs]))
              for k in runs[0]},
        std={k: float(np.std([r[k] for r in runs]))
             for k in runs[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS)
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument(
        '--iters', type=int, default=None,
        help='training iterations (default: the config\'s)')
    parser.add_argument('--data-root', default='data/synthetic-rvos')
    parser.add_argument(
        '--heldout-data-root',
        default=None,
        help='also score every checkpoint on the valid split of this data '
        'root (e.g. generated with another seed)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs at a time; the CPU cores are split between them')
    parser.add_argument(
        '--work-dir', default='work_dirs/benchmark_swap_pairs')
    parser.add_argument('--json', default=None, help='write results here')
    args = parser.parse_args()
    if args.jobs < 1:
        raise ValueError(f'--jobs must be at least 1, got {args.jobs}')

    from mmengine.config import Config
    splits = {'valid': args.data_root}
    if args.heldout_data_root:
        splits['held-out'] = args.heldout_data_root
    swap_keys = {
        split: load_swap_keys(root)
        for split, root in splits.items()
    }
    env = thread_env(args.jobs)
    # training iterations per config, read once (and before any run starts)
    budgets = {
        config: args.iters or Config.fromfile(config).train_cfg.max_iters
        for config in args.configs
    }

    def one_run(config: str, seed: int) -> Dict[str, dict]:
        name = osp.splitext(osp.basename(config))[0]
        work_dir = osp.join(args.work_dir, f'{name}_seed{seed}')
        os.makedirs(work_dir, exist_ok=True)
        scores = {
            'valid':
            summarize(
                train_and_score(config, seed, budgets[config], args.data_root,
                                work_dir, env), swap_keys['valid'])
        }
        if args.heldout_data_root:
            scores['held-out'] = summarize(
                score_heldout(config, work_dir, args.heldout_data_root, env),
                swap_keys['held-out'])
        for split, res in scores.items():
            print(f'{name} seed {seed} ({split}): ' + ', '.join(
                f'{k} {res[k]:.2f}' for k in TABLE_KEYS), flush=True)
        return scores

    jobs = [(config, seed) for config in args.configs for seed in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda job: one_run(*job), jobs))

    results = {}
    for split in splits:
        table = {}
        for config in args.configs:
            name = osp.splitext(osp.basename(config))[0]
            runs = [
                scores[split] for (cfg, _), scores in zip(jobs, done)
                if cfg == config
            ]
            table[name] = dict(
                iters=budgets[config], seeds=args.seeds, **aggregate(runs))
        results[split] = table
        print(f'\n{split} split ({splits[split]}):')
        print(format_table(table))
        print(f'({runs[0]["num_expressions"]} expressions, '
              f'{runs[0]["num_swap_expressions"]} in swap pairs; seeds '
              f'{args.seeds}; mean +- std over seeds)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
