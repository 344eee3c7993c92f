# Copyright (c) OpenMMLab. All rights reserved.
"""Measure DMFormer training speed: seconds/iter and clips/s.

A timed iteration is one ``model.train_step(data, optim_wrapper)`` - the
same call MMEngine's training loop makes: data preprocessing, forward with
all losses (matching included), backward and the optimizer step with the
config's ``optim_wrapper`` (gradient clipping included). The batch holds
``--batch-size`` random clips of ``--num-frames`` frames of size
``--shape H W``, each with random box-shaped GT masks (the object leaves
the last frame), a fixed sentence, its noun chunks and a subject span
(the subject perceptron is supervised). Data loading is not timed.
Peak memory is measured as in ``benchmark_inference.py`` (see there).

Example::

    python tools/analysis_tools/benchmark_train.py \
        configs/dmformer/dmformer_tiny_synthetic.py \
        --batch-size 2 --num-frames 5 --shape 128 128 --iters 10 \
        --json work_dirs/bench_train.json
"""
import argparse
import importlib.util
import os.path as osp
import statistics
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction


def _load_sibling(name: str):
    """Import a script of this folder (tools are not a package)."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_dmformer_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_sibling('benchmark_inference')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark DMFormer training steps.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--num-frames', type=int, default=5)
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[384, 640],
        metavar=('H', 'W'),
        help='frame size (384 x 640: a typical padded training frame)')
    parser.add_argument('--iters', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--text', default=bench.TEXT, help='the sentence')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def build_model_and_optimizer(cfg: Config, device: str):
    """The config's model (initialised, train mode) and optim wrapper."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from dmformer.registry import MODELS
    from dmformer.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'dmformer'))
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device)
    model.train()
    if 'optim_wrapper' not in cfg:
        raise ValueError('The config has no `optim_wrapper`: cannot build '
                         'the optimizer of a training step.')
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    return model, optim_wrapper


def main(argv: Optional[List[str]] = None) -> Dict:
    """Run the benchmark; returns the result dict (also printed)."""
    args = parse_args(argv)
    if min(args.batch_size, args.num_frames, *args.shape) < 1:
        raise ValueError('--batch-size, --num-frames and --shape must be '
                         'positive')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError('--device cuda: CUDA is not available')
    bench.quiet_logger()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from dmformer.utils import tune_glibc_malloc
    malloc_tuned = tune_glibc_malloc()  # DMFORMER_MALLOPT=0 disables
    torch.manual_seed(args.seed)
    model, optim_wrapper = build_model_and_optimizer(cfg, args.device)
    gen = torch.Generator().manual_seed(args.seed)
    clips = [
        bench.make_clip_sample(
            args.num_frames,
            tuple(args.shape),
            args.text,
            with_gt=True,
            generator=gen) for _ in range(args.batch_size)
    ]
    last_losses: Dict[str, float] = {}

    def step() -> None:
        data = dict(
            inputs=[frames for frames, _ in clips],
            data_samples=[sample.clone() for _, sample in clips])
        log_vars = model.train_step(data, optim_wrapper)
        last_losses.update({
            k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
            for k, v in log_vars.items()
        })

    times, mem = bench.time_runs(step, args.device, args.warmup, args.iters)
    mean = statistics.fmean(times)
    result = dict(
        config=args.config,
        device=args.device,
        batch_size=args.batch_size,
        num_frames=args.num_frames,
        shape=list(args.shape),
        iters=args.iters,
        warmup=args.warmup,
        malloc_tuned=malloc_tuned,
        seconds_per_iter=mean,
        seconds_per_iter_std=statistics.pstdev(times),
        clips_per_second=args.batch_size / mean,
        frames_per_second=args.batch_size * args.num_frames / mean,
        peak_memory_mb=mem.peak_mb,
        memory_method=mem.method,
        peak_rss_mb=mem.peak_rss_mb,
        trainable_params=sum(p.numel() for p in model.parameters()
                             if p.requires_grad),
        last_losses=last_losses,
        times=times,
        env=bench.environment(args.device))
    bench.print_table([
        ('config', osp.basename(args.config)),
        ('device', f'{args.device} ({result["env"]["threads"]} threads)'),
        ('batch', f'{args.batch_size} clip(s) x {args.num_frames} x '
         f'{args.shape[0]} x {args.shape[1]}'),
        ('iterations', f'{args.iters} timed, {args.warmup} warm-up'),
        ('glibc malloc tuned', str(malloc_tuned)),
        ('s / iter', f'{mean:.4f} +- {result["seconds_per_iter_std"]:.4f}'),
        ('clips / s', f'{result["clips_per_second"]:.3f}'),
        ('peak memory', f'{mem.peak_mb:.1f} MiB ({mem.method})'),
        ('last loss', f'{last_losses.get("loss", float("nan")):.4f}'),
    ])
    bench.dump_json(result, args.json)
    return result


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
