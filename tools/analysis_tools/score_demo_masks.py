# Copyright (c) OpenMMLab. All rights reserved.
"""Score the masks written by ``demo/video_demo.py`` against ground truth.

The demo writes ``<demo_dir>/masks/<sentence index>/<frame>.png`` (0/255)
and ``<demo_dir>/sentences.txt``; the ground truth is a folder of palette
PNGs whose pixel value is the object id (the Ref-YouTube-VOS / DAVIS
``Annotations/<video>`` layout). ``--obj-ids`` gives the referred object of
every sentence. The region similarity J (IoU, 1 on frames where both masks
are empty, as the DAVIS toolkit) is printed per sentence, averaged over the
frames.

Example::

    python tools/analysis_tools/score_demo_masks.py \\
        work_dirs/quickstart/demo \\
        data/synthetic-rvos/valid/Annotations/valid_0000 --obj-ids 2 1
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def _read_png(path: str) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as img:
            return np.array(img)
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read mask {path}: {e}') from e


def read_sentences(demo_dir: str) -> List[Dict[str, str]]:
    """Sentences of a demo run: ``text``, ``subject`` and ``score``."""
    path = osp.join(demo_dir, 'sentences.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found: not a demo output dir')
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip('\n').split('\t')
            if len(parts) != 4:
                raise ValueError(f'{path}:{lineno}: expected 4 tab-separated '
                                 f'fields, got {len(parts)}')
            rows.append(dict(subject=parts[1], score=parts[2], text=parts[3]))
    return rows


def score_demo_masks(demo_dir: str, ann_dir: str,
                     obj_ids: Sequence[int]) -> List[float]:
    """Mean J of every sentence's masks against its object's GT masks.

    Args:
        demo_dir (str): Output folder of the demo.
        ann_dir (str): Folder of GT palette PNGs named like the frames.
        obj_ids (Sequence[int]): Referred object id per sentence.

    Returns:
        list[float]: Mean J (0-1) per sentence.

    Raises:
        FileNotFoundError: A folder or a frame's GT is missing (named).
        ValueError: Wrong number of object ids, or mask sizes differ.
    """
    sentences = read_sentences(demo_dir)
    if len(obj_ids) != len(sentences):
        raise ValueError(f'{len(obj_ids)} object ids for {len(sentences)} '
                         f'sentences in {demo_dir}')
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(f'GT folder not found: {ann_dir}')
    scores = []
    for i, obj_id in enumerate(obj_ids):
        mask_dir = osp.join(demo_dir, 'masks', str(i))
        names = sorted(n for n in os.listdir(mask_dir)
                       if n.endswith('.png')) if osp.isdir(mask_dir) else []
        if not names:
            raise FileNotFoundError(f'no masks in {mask_dir}')
        ious = []
        for name in names:
            gt_path = osp.join(ann_dir, name)
            if not osp.isfile(gt_path):
                raise FileNotFoundError(f'no GT for frame {name}: {gt_path}')
            pred = _read_png(osp.join(mask_dir, name)) > 127
            gt = _read_png(gt_path) == int(obj_id)
            if pred.shape != gt.shape:
                raise ValueError(f'{name}: mask {pred.shape} and GT '
                                 f'{gt.shape} differ in size')
            union = np.logical_or(pred, gt).sum()
            ious.append(1.0 if union == 0 else
                        np.logical_and(pred, gt).sum() / union)
        scores.append(float(np.mean(ious)))
    return scores


def main(argv: Optional[Sequence[str]] = None) -> List[float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('demo_dir', help='output folder of the demo')
    parser.add_argument('ann_dir', help='GT palette PNGs of the video')
    parser.add_argument(
        '--obj-ids',
        type=int,
        nargs='+',
        required=True,
        help='referred object id of every sentence')
    args = parser.parse_args(argv)
    try:
        scores = score_demo_masks(args.demo_dir, args.ann_dir, args.obj_ids)
        sentences = read_sentences(args.demo_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    print('demo masks against the ground truth (mean J over frames):')
    for i, (row, obj_id, j) in enumerate(zip(sentences, args.obj_ids,
                                             scores)):
        verdict = 'right object' if j > 0.5 else 'WRONG or poor mask'
        print(f'  [{i}] "{row["text"]}" -> object {obj_id}: J {j:.3f} '
              f'({verdict}; chosen subject "{row["subject"]}")')
    return scores


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
