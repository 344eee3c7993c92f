# Copyright (c) OpenMMLab. All rights reserved.
"""Train a DMFormer model with an MMEngine Runner.

Example:
    python tools/train.py configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py
    bash tools/dist_train.sh CONFIG 8
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from dmformer.utils import use_gloo_without_cuda


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a DMFormer model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the real total batch (GPUs x '
        'clips per GPU) over the one the config was tuned for (its '
        '`auto_scale_lr.base_batch_size`, the NxB part of its name)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate during training')
    parser.add_argument(
        '--data-root',
        help='train, validate and test on this data root instead of the '
        'config\'s (same layout); the evaluators\' label files under the '
        'config\'s root move with it')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. '
        'train_cfg.max_epochs=2 "model.encoder.subject_branch=None"')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command-line options to the config."""
    cfg.launcher = args.launcher
    if args.data_root is not None:
        from dmformer.utils import reroot_data
        reroot_data(cfg, args.data_root)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # after --cfg-options: env_cfg.dist_cfg (backend, timeout) may come from
    # there; on CPU the gloo group gets the timeout (see dmformer/engine)
    from dmformer.engine.dist_failure import init_cpu_process_group
    init_cpu_process_group(cfg)
    use_gloo_without_cuda(cfg)

    # work_dir: CLI > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError(
                f'--auto-scale-lr: {args.config} has no '
                '`auto_scale_lr.base_batch_size` to scale from')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        # the newest checkpoint of the work dir that loads; a truncated or
        # corrupt one is skipped with one line each
        from dmformer.engine.resume import find_resumable_checkpoint
        rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
        log = print if rank == '0' else (lambda line: None)
        checkpoint = find_resumable_checkpoint(cfg.work_dir, log=log)
        if checkpoint is not None:
            log(f'--resume: from {checkpoint}')
            cfg.resume = True
            cfg.load_from = checkpoint
        elif cfg.get('load_from', None):
            # a first start: load_from (the previous stage's weights) is
            # loaded as without --resume
            log(f'--resume: {cfg.work_dir} has no checkpoint that loads; '
                f'starting from load_from={cfg.load_from}')
        else:
            log(f'--resume: {cfg.work_dir} has no checkpoint that loads; '
                'starting from the initial weights')
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    return cfg


def weights_hint(path: str) -> str:
    """How to make the checkpoint ``path`` that a config's ``load_from``
    names: the config that writes ``work_dirs/<config name>/...``, the
    GLIP-T converter for ``checkpoints/glip*``."""
    parts = osp.normpath(path).split(os.sep)
    if 'work_dirs' in parts[:-2]:
        name = parts[parts.index('work_dirs') + 1]
        config = osp.join('configs', 'dmformer', name + '.py')
        if osp.isfile(config):
            return (f'it is written by `bash tools/dist_train.sh {config} 8`'
                    '; or pass --cfg-options load_from=<checkpoint>')
    if osp.basename(path).startswith('glip'):
        from dmformer.engine.hooks.pretrained_weights_hook import \
            GLIP_CONVERT_CMD
        return f'convert GLIP-T with `{GLIP_CONVERT_CMD}`'
    return 'pass --cfg-options load_from=<checkpoint>'


def main() -> Optional[int]:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)

    # Explicit registration (no hidden scope import); it also makes
    # checkpoints resumable under torch>=2.6 (see dmformer/engine).
    from dmformer.utils import register_all_modules, tune_glibc_malloc
    register_all_modules(init_default_scope=False)
    tune_glibc_malloc()  # faster CPU steps; DMFORMER_MALLOPT=0 disables
    load_from = cfg.get('load_from', None)
    if load_from and '://' not in load_from and not osp.isfile(load_from):
        raise FileNotFoundError(
            f'load_from: checkpoint not found: {load_from} '
            f'({weights_hint(load_from)})')
    if load_from and osp.isfile(load_from):
        # a truncated, corrupt or unsafe file fails here in one line, not
        # after the dataloaders are built; mmap: no full read
        from dmformer.engine import read_checkpoint
        read_checkpoint(load_from, mmap=True)
    # a read-only or full disk fails now, not at the first checkpoint
    from dmformer.engine.atomic_io import check_writable
    check_writable(cfg.work_dir, 'work dir')

    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    return train(runner, cfg)


def train(runner: Runner, cfg: Config) -> Optional[int]:
    """Run the training; a run that cannot go on ends with one line.

    Two faults end it with ``error: <message>`` on stderr and exit status
    1, the checkpoints written so far staying as they are: too many steps
    in a row with a non-finite loss (see
    :mod:`dmformer.engine.nonfinite_loss`) and, in a distributed run, a
    collective operation that failed because a rank died or hung (the line
    names the ranks that stopped answering, see
    :mod:`dmformer.engine.dist_failure`).

    Returns:
        int | None: The exit status; None when the training completed.
    """
    from dmformer.engine.dist_failure import (describe_failure, dist_timeout,
                                              is_collective_failure)
    from dmformer.engine.nonfinite_loss import NonFiniteLossError
    try:
        runner.train()
    except NonFiniteLossError as error:
        message = str(error)
    except Exception as error:
        if not is_collective_failure(error):
            raise
        message = describe_failure(error, dist_timeout(cfg))
    else:
        return None
    print(f'error: {message}', file=sys.stderr, flush=True)
    return 1


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
