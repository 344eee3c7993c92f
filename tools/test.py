# Copyright (c) OpenMMLab. All rights reserved.
"""Test (evaluate) a DMFormer checkpoint with an MMEngine Runner.

Example:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
    python tools/test.py CONFIG CHECKPOINT --data-root OTHER_ROOT
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from dmformer.utils import use_gloo_without_cuda


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a DMFormer model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save logs, metrics and outputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--data-root',
        help='test on this data root instead of the config\'s (same layout, '
        'e.g. a valid split generated with another seed); the evaluator\'s '
        'label files under the config\'s root move with it')
    parser.add_argument(
        '--allow-partial-checkpoint',
        action='store_true',
        help='evaluate a checkpoint that lacks some of the model\'s '
        'parameters or has others (default: refuse it)')
    parser.add_argument(
        '--show-dir',
        help='draw every prediction (a strip of frames, ground truth above '
        'prediction) into <work-dir>/<timestamp>/SHOW_DIR/<video>/'
        '<exp_id>.jpg')
    parser.add_argument(
        '--show', action='store_true', help='show the drawings in a window')
    parser.add_argument(
        '--amp',
        nargs='?',
        const='fp16',
        choices=['fp16', 'bf16'],
        help='run the network under autocast (default fp16; masks and '
        'scores are post-processed in float32)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _put_outputs_in_run_dir(runner) -> None:
    """Point the file outputs of the metrics (``outfile_prefix``: submission
    PNGs and zip, Ref-DAVIS palette PNGs) at ``<work_dir>/<timestamp>/<metric
    type>``, the run's own log folder, so a run never mixes its files with
    an earlier run's (the timestamp is the same on every rank)."""
    for metric in runner.test_loop.evaluator.metrics:
        if hasattr(metric, 'outfile_prefix'):
            metric.outfile_prefix = osp.join(runner.log_dir,
                                             type(metric).__name__)
            print(f'{type(metric).__name__} writes to '
                  f'{metric.outfile_prefix}')


def trigger_visualization_hook(cfg: Config, show_dir: Optional[str],
                               show: bool) -> None:
    """Turn on the config's ``RVOSVisualizationHook`` (as mmdet's
    ``tools/test.py`` does with its ``DetVisualizationHook``)."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError(
            f'{cfg.filename}: --show-dir/--show need '
            "default_hooks.visualization (type='RVOSVisualizationHook'), as "
            'in configs/_base_/default_runtime.py')
    hook['draw'] = True
    if show:
        hook['show'] = True
        hook['wait_time'] = 2
    if show_dir:
        hook['test_out_dir'] = show_dir


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    from dmformer.engine import read_checkpoint

    # a truncated, corrupt or unsafe file fails now, in one line; mmap: the
    # keys and shapes for the fit check below without reading the tensors
    ckpt = read_checkpoint(args.checkpoint, mmap=True)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    use_gloo_without_cuda(cfg)
    if args.data_root is not None:
        from dmformer.utils import reroot_data
        reroot_data(cfg, args.data_root, phases=('test', ))
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.amp is not None:
        cfg.merge_from_dict({'model.test_cfg.amp': args.amp})
    if args.show_dir or args.show:
        trigger_visualization_hook(cfg, args.show_dir, args.show)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # a read-only or full disk, or a work dir under a file, fails now in
    # one line, not after the inference (the PNGs and zip go in there)
    from dmformer.engine.atomic_io import check_writable
    check_writable(cfg.work_dir, 'work dir')

    from dmformer.utils import register_all_modules, tune_glibc_malloc
    register_all_modules(init_default_scope=False)
    tune_glibc_malloc()  # faster CPU steps; DMFORMER_MALLOPT=0 disables

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    problem = checkpoint_mismatch(runner.model, ckpt)
    del ckpt
    if problem and not args.allow_partial_checkpoint:
        raise SystemExit(f'error: {args.checkpoint} does not fit '
                         f'{args.config}: {problem} (--allow-partial-'
                         'checkpoint evaluates it anyway)')
    if problem:
        print(f'warning: {args.checkpoint} loaded partially: {problem}')
    _put_outputs_in_run_dir(runner)
    metrics = runner.test()
    print(metrics)


def checkpoint_mismatch(model, ckpt: dict) -> str:
    """Why the checkpoint ``ckpt`` cannot be the weights of ``model`` (''
    if it fits). MMEngine loads test checkpoints non-strictly and only logs
    the missing keys, so a checkpoint of another model would otherwise be
    evaluated with randomly initialised layers."""
    from mmengine.model import is_model_wrapper

    from dmformer.models.utils.ckpt_convert import describe_checkpoint_mismatch
    state = ckpt.get('state_dict', ckpt)
    if is_model_wrapper(model):
        model = model.module
    return describe_checkpoint_mismatch(model, state)


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
