# Copyright (c) OpenMMLab. All rights reserved.
"""Generate the subject-phrase labels of a Ref-YouTube-VOS-style dataset.

Writes ``<data_root>/meta_expressions/<split>/subject_labels.json`` =
``{video_id: {exp_id: [start_char, end_char]}}``, read by the
RVOS datasets to supervise the subject perceptron.

Examples:
    # parser labels (first noun chunk), no GPU needed
    python tools/misc/gen_subject_labels.py data/ref-youtube-vos

    # GLIP teacher labels (mmdet GLIP config + checkpoint)
    python tools/misc/gen_subject_labels.py data/ref-youtube-vos \\
        --teacher glip \\
        --teacher-config glip_atss_swin-l_fpn_dyhead_pretrain_mixeddata.py \\
        --teacher-checkpoint glip_l.pth --device cuda:0 --max-frames 8
"""
import argparse
import json
import os
import os.path as osp
from typing import Optional, Sequence

from dmformer.apis.subject_labels import (GLIPTeacher, SubjectTeacher,
                                          generate_subject_labels)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Generate subject labels (character spans of the '
        'subject noun chunk of every expression).')
    parser.add_argument('data_root', help='dataset root (Ref-YTVOS layout)')
    parser.add_argument('--split', default='train', help='split folder')
    parser.add_argument(
        '--out',
        help='output file (default: <data_root>/meta_expressions/<split>/'
        'subject_labels.json)')
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
    return args


def main(argv: Optional[Sequence[str]] = None,
         teacher: Optional[SubjectTeacher] = None) -> str:
    """Run the tool.

    Args:
        argv (Sequence[str], optional): Command line (default: sys.argv).
        teacher (SubjectTeacher, optional): A teacher object to use instead
            of building one from ``--teacher`` (for tests and custom
            teachers). Defaults to None.

    Returns:
        str: Path of the written label file.
    """
    args = parse_args(argv)
    if teacher is None and args.teacher == 'glip':
        teacher = GLIPTeacher(
            args.teacher_config,
            args.teacher_checkpoint,
            device=args.device,
            batch_size=args.batch_size,
            score_thr=args.det_score_thr)
    labels, stats = generate_subject_labels(
        args.data_root,
        split=args.split,
        teacher=teacher,
        iou_thr=args.iou_thr,
        min_score=args.min_score,
        max_frames=args.max_frames,
        spacy_model=args.spacy_model)
    out = args.out or osp.join(args.data_root, 'meta_expressions', args.split,
                               'subject_labels.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(labels, f)
    print(f'Wrote subject labels of {stats["num_expressions"]} expressions '
          f'to {out} ({stats["num_teacher"]} from the teacher, '
          f'{stats["num_parser"]} from the parser fallback).')
    return out


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
