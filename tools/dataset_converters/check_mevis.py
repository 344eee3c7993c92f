# Copyright (c) OpenMMLab. All rights reserved.
"""Check a downloaded MeViS folder before training on it.

Reports, per split, the numbers of videos, frames, expressions (and how
many refer to several objects or to none) and every problem found: a
listed frame that is missing or unreadable, an expression without text or
without ``obj_id`` / ``anno_id`` lists (empty lists are an expression that
refers to no object), an ``anno_id`` missing from ``mask_dict.json``, a
mask track whose length differs from the video's frame count, an RLE of
another size than the frames (``--decode``: or one that does not decode).
Exits with status 1 if there is any problem.

Example:
    python tools/dataset_converters/check_mevis.py data/mevis
    python tools/dataset_converters/check_mevis.py data/mevis \\
        --splits valid_u --decode
"""
import argparse
import os.path as osp
from typing import Optional, Sequence


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    parser = argparse.ArgumentParser(description='Check a MeViS folder')
    parser.add_argument('data_root', help='MeViS root (train/, valid_u/...)')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'valid_u', 'valid'],
        help='split folders to check (absent ones are reported)')
    parser.add_argument(
        '--decode', action='store_true', help='also decode every RLE')
    parser.add_argument(
        '--max-problems',
        type=int,
        default=20,
        help='problems printed per split')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Check the splits and print a report.

    Returns:
        int: 0 if no problem was found, else 1.
    """
    from dmformer.datasets.mevis import check_mevis_split

    args = parse_args(argv)
    if not osp.isdir(args.data_root):
        raise SystemExit(f'error: {args.data_root} is not a directory')
    total = 0
    for split in args.splits:
        if not osp.isdir(osp.join(args.data_root, split)):
            print(f'{split}: missing ({osp.join(args.data_root, split)})')
            total += 1
            continue
        report = check_mevis_split(args.data_root, split, decode=args.decode)
        s, problems = report['stats'], report['problems']
        masks = 'with masks' if s['with_masks'] else 'no mask_dict.json'
        print(f"{split}: {s['videos']} videos, {s['frames']} frames, "
              f"{s['expressions']} expressions ({s['multi_object']} refer to "
              f"several objects, {s['no_target']} to none), "
              f"{s['anno_ids']} object tracks, {masks}: "
              f'{len(problems)} problem(s)')
        for line in problems[:args.max_problems]:
            print(f'  {line}')
        if len(problems) > args.max_problems:
            print(f'  ... and {len(problems) - args.max_problems} more')
        total += len(problems)
    print('OK' if total == 0 else f'{total} problem(s) found')
    return 0 if total == 0 else 1


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
