# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the subject-phrase labels of a dataset the paper configs train
on.

Writes ``{video_id: {exp_id: [start_char, end_char]}}`` (character spans
of the subject noun chunk of every cleaned caption) where the dataset
class reads it (``subject_label_file='auto'``), with its keys:

- ``ref-youtube-vos``: ``<root>/meta_expressions/<split>/subject_labels.json``
- ``mevis``: ``<root>/<split>/subject_labels.json``
- ``a2d``: ``<root>/subject_labels.json`` (beside the sample lists)
- ``refcoco``: ``<root>/<name>/instances_<name>_<split>_subject_labels.json``
  for each of ``refcoco``, ``refcoco+``, ``refcocog`` present (or only
  ``--ann-file``)

The dataset is told from the layout of ``data_root`` unless ``--dataset``
names it. Without ``--teacher`` every label is the parser fallback (the
first noun chunk); with it, the chunk that the GLIP teacher grounds on the
referred object's box in most frames.

Examples:
    # parser labels (first noun chunk), no GPU needed
    python tools/misc/gen_subject_labels.py data/ref-youtube-vos

    # GLIP-L teacher labels (mmdet GLIP config + checkpoint)
    python tools/misc/gen_subject_labels.py data/ref-youtube-vos \\
        --teacher glip \\
        --teacher-config glip_atss_swin-l_fpn_dyhead_pretrain_mixeddata.py \\
        --teacher-checkpoint glip_l.pth --device cuda:0 --max-frames 8

    # the other training sets, same teacher options
    python tools/misc/gen_subject_labels.py data/mevis --dataset mevis
    python tools/misc/gen_subject_labels.py data/a2d_sentences --dataset a2d
    python tools/misc/gen_subject_labels.py data/coco --dataset refcoco
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

from dmformer.apis.subject_labels import (LABEL_DATASETS, GLIPTeacher,
                                          SubjectTeacher, default_ann_files,
                                          detect_dataset,
                                          generate_subject_labels,
                                          subject_label_path)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Generate subject labels (character spans of the '
        'subject noun chunk of every expression) where the dataset class '
        'reads them.')
    parser.add_argument(
        'data_root',
        help='dataset root (data/ref-youtube-vos, data/mevis, '
        'data/a2d_sentences or data/coco)')
    parser.add_argument(
        '--dataset',
        choices=('auto', ) + LABEL_DATASETS,
        default='auto',
        help='dataset layout (default: told from the files of data_root)')
    parser.add_argument('--split', default='train', help='split')
    parser.add_argument(
        '--ann-file',
        help='annotation file relative to data_root (default: the split\'s '
        'file; refcoco: every <name>/instances_<name>_<split>.json present)')
    parser.add_argument(
        '--out',
        help='output file (default: where the dataset class reads it, see '
        'above)')
    parser.add_argument(
        '--teacher',
        choices=['glip'],
        help='grounding teacher; without it the parser fallback (first noun '
        'chunk) is written')
    parser.add_argument('--teacher-config', help='mmdet GLIP config')
    parser.add_argument('--teacher-checkpoint', help='GLIP checkpoint')
    parser.add_argument('--device', default=None, help='e.g. cuda:0')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='frames per GLIP pass')
    parser.add_argument(
        '--det-score-thr',
        type=float,
        default=0.1,
        help='teacher detections below this score are ignored')
    parser.add_argument(
        '--iou-thr',
        type=float,
        default=0.4,
        help='a frame votes if a detection has IoU > this with the GT box')
    parser.add_argument(
        '--min-score',
        type=float,
        default=0.4,
        help='the winning chunk needs a vote with at least this score')
    parser.add_argument(
        '--max-frames',
        type=int,
        default=None,
        help='frames per expression given to the teacher (uniform subset '
        'of the frames showing the object; default: all)')
    parser.add_argument(
        '--spacy-model', default=None, help='spaCy pipeline name')
    args = parser.parse_args(argv)
    if args.teacher and not (args.teacher_config and args.teacher_checkpoint):
        parser.error('--teacher glip needs --teacher-config and '
                     '--teacher-checkpoint')
    if args.max_frames is not None and args.max_frames < 1:
        parser.error(f'--max-frames must be >= 1, got {args.max_frames}')
    return args


def main(argv: Optional[Sequence[str]] = None,
         teacher: Optional[SubjectTeacher] = None) -> List[str]:
    """Run the tool.

    Args:
        argv (Sequence[str], optional): Command line (default: sys.argv).
        teacher (SubjectTeacher, optional): A teacher object to use instead
            of building one from ``--teacher`` (for tests and custom
            teachers). Defaults to None.

    Returns:
        list[str]: Paths of the written label files, one per annotation
        file.

    Raises:
        FileNotFoundError: Missing data root, annotation file, frame or
            mask.
        ValueError: Unknown layout, ``--out`` with several annotation
            files, or malformed annotations.
    """
    args = parse_args(argv)
    if not osp.isdir(args.data_root):
        raise FileNotFoundError(
            f'Data root {args.data_root!r} is not a folder.')
    dataset = args.dataset
    if dataset == 'auto':
        dataset = detect_dataset(args.data_root, args.split)
    ann_files = [args.ann_file] if args.ann_file else default_ann_files(
        dataset, args.data_root, args.split)
    if args.out and len(ann_files) > 1:
        raise ValueError(f'--out names one file but {len(ann_files)} '
                         f'annotation files are labelled ({ann_files}); '
                         'pick one with --ann-file.')
    if teacher is None and args.teacher == 'glip':
        teacher = GLIPTeacher(
            args.teacher_config,
            args.teacher_checkpoint,
            device=args.device,
            batch_size=args.batch_size,
            score_thr=args.det_score_thr)
    outs = []
    for ann_file in ann_files:
        labels, stats = generate_subject_labels(
            args.data_root,
            split=args.split,
            teacher=teacher,
            iou_thr=args.iou_thr,
            min_score=args.min_score,
            max_frames=args.max_frames,
            spacy_model=args.spacy_model,
            dataset=dataset,
            ann_file=ann_file)
        out = args.out or subject_label_path(dataset, args.data_root, ann_file)
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
        with open(out, 'w') as f:
            json.dump(labels, f)
        ambiguous = ''
        if stats['num_ambiguous']:
            ambiguous = (f'; {stats["num_ambiguous"]} keys shared by '
                         'different captions left unlabelled')
        print(f'{dataset} {ann_file}: wrote subject labels of '
              f'{stats["num_teacher"] + stats["num_parser"]} expressions to '
              f'{out} ({stats["num_teacher"]} from the teacher, '
              f'{stats["num_parser"]} from the parser fallback{ambiguous}).')
        outs.append(out)
    return outs


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
