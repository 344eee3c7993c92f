# Copyright (c) OpenMMLab. All rights reserved.
"""Convert Ref-DAVIS17 to the Ref-YouTube-VOS layout (ReferFormer's tool).

Inputs (the DAVIS-2017 unsupervised trainval 480p release and the text
annotations of Khoreva et al.)::

    DAVIS/JPEGImages/480p/<video>/<frame>.jpg
    DAVIS/Annotations_unsupervised/480p/<video>/<frame>.png
    DAVIS/ImageSets/2017/{train,val}.txt
    DAVIS/davis_semantics.json                      (optional categories)
    davis_text_annotations/Davis17_annot1.txt       (annotator 1, 1st frame)
    davis_text_annotations/Davis17_annot1_full_video.txt
    davis_text_annotations/Davis17_annot2.txt
    davis_text_annotations/Davis17_annot2_full_video.txt

with expression lines ``<video> <obj_id> "<expression>"``. Output::

    <out>/{train,valid}/JPEGImages/<video>     (symlink or copy)
    <out>/{train,valid}/Annotations/<video>    (symlink or copy)
    <out>/{train,valid}/meta.json
    <out>/meta_expressions/{train,valid}/meta_expressions.json

Each object ``k`` (ids from 1) gets the expression ids ``4(k-1) .. 4(k-1)+3``
in the order [annot1 first-frame, annot1 full-video, annot2 first-frame,
annot2 full-video], so ``int(exp_id) % 4`` is the annotator set used by
:class:`dmformer.datasets.RefDAVISDataset`. The three misspelt video names
of the text files are fixed. Unlike the original ReferFormer script, files
are linked or copied, never moved.

Example::

    python tools/dataset_converters/convert_davis_to_ytvos.py \\
        --davis-root data/ref-davis/DAVIS \\
        --text-root data/ref-davis/davis_text_annotations \\
        --out-dir data/ref-davis
"""
import argparse
import json
import os
import os.path as osp
import re
import shutil
import warnings
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

EXPRESSION_FILES = ('Davis17_annot1.txt', 'Davis17_annot1_full_video.txt',
                    'Davis17_annot2.txt', 'Davis17_annot2_full_video.txt')
# video names misspelt in the text annotations -> DAVIS names
VIDEO_NAME_FIXES = {
    'clasic-car': 'classic-car',
    'dog-scale': 'dogs-scale',
    'motor-bike': 'motorbike',
}
SPLITS = (('train', 'train.txt'), ('valid', 'val.txt'))
_LINE_RE = re.compile(r'^(\S+)\s+(\d+)\s+(.*?)\s*$')


def parse_expression_file(path: str) -> Dict[str, Dict[int, str]]:
    """Parse one Ref-DAVIS expression file.

    Args:
        path (str): File with lines ``<video> <obj_id> "<expression>"``.

    Returns:
        dict[str, dict[int, str]]: video -> obj_id -> expression (quotes
        removed, misspelt video names fixed).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A line is malformed, or an object is described twice.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Expression file {path!r} does not exist.')
    result: Dict[str, Dict[int, str]] = defaultdict(dict)
    with open(path, encoding='utf-8', errors='replace') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            match = _LINE_RE.match(line.strip())
            if match is None:
                raise ValueError(f'{path}:{lineno}: expected `<video> '
                                 f'<obj_id> "<expression>"`, got {line!r}')
            video, obj_id, exp = match.groups()
            video = VIDEO_NAME_FIXES.get(video, video)
            if len(exp) >= 2 and exp[0] == exp[-1] == '"':
                exp = exp[1:-1]
            exp = exp.strip()
            if not exp:
                raise ValueError(f'{path}:{lineno}: empty expression.')
            if int(obj_id) in result[video]:
                raise ValueError(f'{path}:{lineno}: object {obj_id} of video '
                                 f'{video!r} is described twice.')
            result[video][int(obj_id)] = exp
    return dict(result)


def _read_split(path: str) -> List[str]:
    """Read an ImageSets list of video names."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Split file {path!r} does not exist.')
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _place(src: str, dst: str, mode: str) -> None:
    """Symlink or copy the folder ``src`` to ``dst`` (kept if present)."""
    if not osp.isdir(src):
        raise FileNotFoundError(f'Folder {src!r} does not exist.')
    if osp.lexists(dst):
        return
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if mode == 'symlink':
        os.symlink(osp.abspath(src), dst, target_is_directory=True)
    else:
        shutil.copytree(src, dst)


def _object_frames(ann_dir: str) -> Dict[int, List[str]]:
    """Frames in which each object id appears, from the palette PNGs."""
    objects: Dict[int, List[str]] = defaultdict(list)
    for name in sorted(os.listdir(ann_dir)):
        if not name.endswith('.png'):
            continue
        with Image.open(osp.join(ann_dir, name)) as img:
            ids = np.unique(np.array(img))
        for obj_id in ids[ids > 0]:
            objects[int(obj_id)].append(osp.splitext(name)[0])
    return dict(objects)


def convert_davis_to_ytvos(davis_root: str,
                           text_root: str,
                           out_dir: str,
                           mode: str = 'symlink',
                           semantics_file: Optional[str] = None) -> dict:
    """Convert Ref-DAVIS17 to the Ref-YouTube-VOS layout.

    Args:
        davis_root (str): The ``DAVIS`` folder of the 2017 release.
        text_root (str): Folder of the four ``Davis17_annot*.txt`` files.
        out_dir (str): Output root (``data_root`` of the dataset).
        mode (str): ``'symlink'`` or ``'copy'``. Defaults to 'symlink'.
        semantics_file (str, optional): ``davis_semantics.json`` (video ->
            obj_id -> category). Defaults to ``<davis_root>/
            davis_semantics.json`` when it exists, else no categories.

    Returns:
        dict: Counts per split: ``videos``, ``objects``, ``expressions``,
        plus ``skipped`` (list of ``(file, video, obj_id, reason)``).
    """
    if mode not in ('symlink', 'copy'):
        raise ValueError(f"mode must be 'symlink' or 'copy', got {mode!r}")
    img_root = osp.join(davis_root, 'JPEGImages', '480p')
    ann_root = osp.join(davis_root, 'Annotations_unsupervised', '480p')
    if semantics_file is None:
        default = osp.join(davis_root, 'davis_semantics.json')
        semantics_file = default if osp.isfile(default) else None
    semantics: dict = {}
    if semantics_file is not None:
        with open(semantics_file) as f:
            semantics = json.load(f)
    expressions = [
        parse_expression_file(osp.join(text_root, name))
        for name in EXPRESSION_FILES
    ]
    split_of = {}
    for split, list_name in SPLITS:
        for video in _read_split(
                osp.join(davis_root, 'ImageSets', '2017', list_name)):
            split_of[video] = split

    skipped = []
    for name, exps in zip(EXPRESSION_FILES, expressions):
        for video in sorted(set(exps) - set(split_of)):
            skipped.append((name, video, None, 'video not in ImageSets'))

    stats = {}
    for split, _ in SPLITS:
        videos = sorted(v for v, s in split_of.items() if s == split)
        meta, meta_exp = {}, {}
        num_objects = num_exps = 0
        for video in videos:
            src_img = osp.join(img_root, video)
            src_ann = osp.join(ann_root, video)
            _place(src_img, osp.join(out_dir, split, 'JPEGImages', video),
                   mode)
            _place(src_ann, osp.join(out_dir, split, 'Annotations', video),
                   mode)
            frames = sorted(
                osp.splitext(f)[0] for f in os.listdir(src_img)
                if f.endswith('.jpg'))
            obj_frames = _object_frames(src_ann)
            categories = semantics.get(video, {})
            meta[video] = dict(
                objects={
                    str(obj_id):
                    dict(
                        category=categories.get(str(obj_id)),
                        frames=obj_frames[obj_id])
                    for obj_id in sorted(obj_frames)
                })
            video_exps = {}
            for anno_idx, (name, exps) in enumerate(
                    zip(EXPRESSION_FILES, expressions)):
                for obj_id, exp in sorted(exps.get(video, {}).items()):
                    if obj_id not in obj_frames:
                        skipped.append(
                            (name, video, obj_id, 'object not in masks'))
                        continue
                    exp_id = 4 * (obj_id - 1) + anno_idx
                    video_exps[exp_id] = dict(exp=exp, obj_id=str(obj_id))
            num_objects += len(obj_frames)
            num_exps += len(video_exps)
            meta_exp[video] = dict(
                expressions={
                    str(k): video_exps[k]
                    for k in sorted(video_exps)
                },
                frames=frames)
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        with open(osp.join(out_dir, split, 'meta.json'), 'w') as f:
            json.dump(dict(videos=meta), f)
        exp_dir = osp.join(out_dir, 'meta_expressions', split)
        os.makedirs(exp_dir, exist_ok=True)
        with open(osp.join(exp_dir, 'meta_expressions.json'), 'w') as f:
            json.dump(dict(videos=meta_exp), f)
        stats[split] = dict(
            videos=len(videos), objects=num_objects, expressions=num_exps)
    for name, video, obj_id, reason in skipped:
        warnings.warn(f'{name}: skipped video {video!r}' +
                      (f' object {obj_id}' if obj_id is not None else '') +
                      f' ({reason}).')
    stats['skipped'] = skipped
    return stats


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Convert Ref-DAVIS17 to the Ref-YouTube-VOS layout.')
    parser.add_argument(
        '--davis-root',
        default='data/ref-davis/DAVIS',
        help='the DAVIS folder of the DAVIS-2017 trainval 480p release')
    parser.add_argument(
        '--text-root',
        default='data/ref-davis/davis_text_annotations',
        help='folder of the Davis17_annot*.txt expression files')
    parser.add_argument(
        '--out-dir', default='data/ref-davis', help='output data root')
    parser.add_argument(
        '--mode',
        choices=('symlink', 'copy'),
        default='symlink',
        help='symlink (default) or copy the video folders')
    parser.add_argument(
        '--semantics',
        default=None,
        help='davis_semantics.json (default: <davis-root>/'
        'davis_semantics.json if it exists)')
    return parser.parse_args()


def main() -> None:
    """Entry point."""
    args = parse_args()
    stats = convert_davis_to_ytvos(args.davis_root, args.text_root,
                                   args.out_dir, args.mode, args.semantics)
    for split, _ in SPLITS:
        print(f'{split}: {stats[split]}')
    print(f'skipped: {len(stats["skipped"])}')


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
