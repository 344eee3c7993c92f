# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the built-in synthetic referring-video dataset (command line).

The generator (scenes, grammar, truth rules, both on-disk layouts) is the
library :mod:`dmformer.datasets.synthetic_rvos`; see its docstring for what
is written.

Examples:
    python tools/dataset_converters/make_synthetic_rvos.py \\
        --out data/synthetic-rvos --num-train 48 --num-valid 12 \\
        --num-frames 10 --size 112 --seed 0

    python tools/dataset_converters/make_synthetic_rvos.py --layout mevis \\
        --out data/synthetic-mevis --num-train 48 --num-valid 12 \\
        --num-test 4 --num-frames 10 --size 112 --seed 0
"""
import argparse
import time
from typing import Optional, Sequence

from dmformer.datasets.synthetic_rvos import (LAYOUTS, MEVIS_DEFAULT_NUM_TEST,
                                              format_summary,
                                              make_synthetic_rvos)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description='Generate the synthetic referring-video dataset in the '
        'Ref-YouTube-VOS or MeViS layout')
    parser.add_argument(
        '--out', default='data/synthetic-rvos', help='output root')
    parser.add_argument(
        '--layout',
        choices=LAYOUTS,
        default='ytvos',
        help='on-disk layout: ytvos (Ref-YouTube-VOS) or mevis (MeViS, '
        'with multi-object expressions)')
    parser.add_argument(
        '--num-train', type=int, default=48, help='training videos')
    parser.add_argument(
        '--num-valid',
        type=int,
        default=12,
        help='held-out videos with GT (valid, or valid_u for mevis)')
    parser.add_argument(
        '--num-test',
        type=int,
        default=None,
        help='mevis only: videos without GT (valid); default '
        f'{MEVIS_DEFAULT_NUM_TEST}')
    parser.add_argument(
        '--num-frames', type=int, default=10, help='frames per video')
    parser.add_argument(
        '--size', type=int, default=112, help='frame height and width')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument(
        '--min-objects', type=int, default=2, help='fewest objects/video')
    parser.add_argument(
        '--max-objects', type=int, default=4, help='most objects/video')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace the dataset in a non-empty --out')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point: generate the dataset and print a summary."""
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        summary = make_synthetic_rvos(
            args.out,
            num_train=args.num_train,
            num_valid=args.num_valid,
            num_frames=args.num_frames,
            size=args.size,
            seed=args.seed,
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            overwrite=args.overwrite,
            layout=args.layout,
            num_test=args.num_test)
    except (FileExistsError, ValueError) as err:
        raise SystemExit(f'error: {err}')
    elapsed = time.perf_counter() - start
    print(f'wrote {args.out} ({args.layout} layout): {summary["frames"]} '
          f'frames in {elapsed:.1f} s')
    print('\n'.join(format_summary(summary)))


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
