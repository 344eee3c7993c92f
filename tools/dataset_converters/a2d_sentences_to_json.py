# Copyright (c) OpenMMLab. All rights reserved.
"""Build the A2D-Sentences / JHMDB-Sentences sample lists of MTTR and
ReferFormer from the official releases, and extract the A2D frames.

A2D-Sentences (``a2d`` command), inputs below ``--data-root``::

    Release/videoset.csv            no header; columns: video id, label,
                                    start time, end time, height, width,
                                    total frames, annotated frames, subset
                                    (0 = train, 1 = test)
    Release/clips320H/<video>.mp4
    text_annotations/a2d_annotation.txt     CSV: video_id,instance_id,query
    text_annotations/a2d_missed_videos.txt  one video id per line
    text_annotations/a2d_annotation_with_instances/<video>/<frame:05d>.h5

Outputs ``a2d_sentences_single_frame_{train,test}_annotations.json``, lists
of ``[query, video_id, frame_idx, instance_id]``: as MTTR's
``get_text_annotations``, one entry per (expression, annotated frame whose
``.h5`` lists the instance), the query lower-cased, the videos of
``a2d_missed_videos.txt`` skipped and the annotation mistake ``'1 (copy)'``
(video T6bNPuKV-wY) dropped. The official counts are 3782 videos in
``videoset.csv`` and 6655 expressions. With ``--extract-frames`` every
``clips320H/<video>.mp4`` of the kept videos is decoded with OpenCV into
``Release/frames/<video>/<k:05d>.jpg``, ``k`` = 1-based frame number (the
numbering of the ``.h5`` files; ReferFormer decodes the mp4 at every
iteration with ``torchvision.io.read_video`` and takes frame ``k - 1``).

JHMDB-Sentences (``jhmdb`` command), inputs below ``--data-root``::

    Rename_Images/<class>/<video>/<frame:05d>.png
    puppet_mask/<class>/<video>/puppet_mask.mat     ('part_mask', H x W x T)
    jhmdb_annotation.txt                            CSV: video_id,query

Outputs ``jhmdb_sentences_samples_metadata.json``, lists of ``[video_id,
frame_path, mask_path, video_total_frames, query]`` (paths relative to the
data root): as MTTR's ``get_samples_metadata``, the frames are cut to the
number of puppet masks and ``--frames-per-video`` (3) of them are drawn per
expression. MTTR's draw is unseeded; to reproduce the published numbers use
the ``jhmdb_sentences_samples_metadata.json`` shipped with MTTR (read as is
by :class:`dmformer.datasets.JHMDBSentencesDataset`).

Example::

    python tools/dataset_converters/a2d_sentences_to_json.py a2d \\
        --data-root data/a2d_sentences --extract-frames
    python tools/dataset_converters/a2d_sentences_to_json.py jhmdb \\
        --data-root data/jhmdb_sentences
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import random
import re
import warnings
from typing import Dict, Iterable, List, Optional, Tuple

A2D_SUBSETS = {'train': 0, 'test': 1}
A2D_MASK_DIR = 'text_annotations/a2d_annotation_with_instances'
# instance ids of a2d_annotation.txt that MTTR drops (annotation mistakes)
_COPY_RE = re.compile(r'^\d+ \(copy\)$')


def _read_csv_rows(path: str, columns: Tuple[str, ...]) -> List[dict]:
    """Read a CSV file with a header holding ``columns``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Annotation file {path!r} does not exist.')
    with open(path, newline='') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f'{path!r} has no column(s) {missing} (header: '
                             f'{header}).')
        return [dict(row, _line=reader.line_num) for row in reader]


def read_videoset(path: str) -> Dict[str, int]:
    """Read A2D's ``Release/videoset.csv``.

    Returns:
        dict[str, int]: video id -> subset (0 train, 1 test).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'A2D video set {path!r} does not exist.')
    videos = {}
    with open(path, newline='') as f:
        for line_num, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 9 or row[8].strip() not in ('0', '1'):
                raise ValueError(
                    f'{path!r} line {line_num}: expected 9 columns ending '
                    f'with the subset (0 or 1), got {row}.')
            videos[row[0].strip()] = int(row[8])
    return videos


def read_a2d_instances(path: str) -> List[int]:
    """Instance ids of an A2D ``.h5`` annotation (dataset ``instance``)."""
    try:
        import h5py
    except ImportError as e:
        raise ImportError('Reading the A2D-Sentences masks (.h5) needs h5py: '
                          '`pip install h5py`.') from e
    try:
        with h5py.File(path, 'r') as f:
            if 'instance' not in f:
                raise ValueError(f'A2D mask annotation {path!r} has no '
                                 f'"instance" dataset (keys: {sorted(f)}).')
            return [int(i) for i in f['instance'][()].reshape(-1)]
    except OSError as e:
        raise ValueError(f'Cannot read A2D mask annotation {path!r} (not an '
                         f'HDF5 file): {e}') from e


def convert_a2d(
    data_root: str,
    out_dir: Optional[str] = None,
    splits: Iterable[str] = ('train', 'test')
) -> Dict[str, str]:
    """Write ``a2d_sentences_single_frame_<split>_annotations.json``.

    Args:
        data_root (str): A2D-Sentences root (see the module docstring).
        out_dir (str, optional): Output folder. Defaults to ``data_root``.
        splits (Iterable[str]): Subsets among ``'train'``, ``'test'``.

    Returns:
        dict[str, str]: split -> path of the written JSON file.

    Raises:
        FileNotFoundError: An input file, or the mask folder of a used
            video, is missing.
        ValueError: An expression names a video absent from
            ``videoset.csv``, or has a non-integer instance id.
    """
    out_dir = data_root if out_dir is None else out_dir
    videoset = read_videoset(osp.join(data_root, 'Release', 'videoset.csv'))
    missed_path = osp.join(data_root, 'text_annotations',
                           'a2d_missed_videos.txt')
    if not osp.isfile(missed_path):
        raise FileNotFoundError(f'{missed_path!r} does not exist.')
    with open(missed_path) as f:
        missed = {line.strip() for line in f if line.strip()}
    ann_path = osp.join(data_root, 'text_annotations', 'a2d_annotation.txt')
    rows = _read_csv_rows(ann_path, ('video_id', 'instance_id', 'query'))
    print(f'A2D-Sentences: {len(videoset)} videos in videoset.csv (official: '
          f'3782), {len(rows)} expressions (official: 6655).')
    instance_cache: Dict[str, List[int]] = {}
    written = {}
    for split in splits:
        if split not in A2D_SUBSETS:
            raise ValueError(f'split must be one of {sorted(A2D_SUBSETS)}, '
                             f'got {split!r}')
        samples, unmatched = [], []
        for row in rows:
            where = f'{ann_path!r} line {row["_line"]}'
            video_id = row['video_id'].strip()
            if video_id not in videoset:
                raise ValueError(f'{where}: video {video_id!r} is not in '
                                 'Release/videoset.csv.')
            if video_id in missed or videoset[video_id] != A2D_SUBSETS[split]:
                continue
            raw_id = row['instance_id'].strip()
            if _COPY_RE.match(raw_id):  # e.g. '1 (copy)' (MTTR drops it)
                continue
            if not raw_id.isdigit():
                raise ValueError(f'{where}: instance_id {raw_id!r} is not an '
                                 'integer.')
            instance_id = int(raw_id)
            mask_dir = osp.join(data_root, A2D_MASK_DIR, video_id)
            if not osp.isdir(mask_dir):
                raise FileNotFoundError(
                    f'{where}: mask folder {mask_dir!r} of video '
                    f'{video_id!r} does not exist (list the video in '
                    f'{missed_path!r} to skip it).')
            found = False
            for path in sorted(glob.glob(osp.join(mask_dir, '*.h5'))):
                if path not in instance_cache:
                    instance_cache[path] = read_a2d_instances(path)
                # frames where the instance is absent have no ground truth
                # and are not used (as MTTR and CMPC-V)
                if instance_id in instance_cache[path]:
                    frame_idx = int(osp.splitext(osp.basename(path))[0])
                    samples.append([
                        row['query'].lower(), video_id, frame_idx, instance_id
                    ])
                    found = True
            if not found:
                unmatched.append(f'{video_id}/{instance_id}')
        if unmatched:
            warnings.warn(f'{len(unmatched)} {split} expressions refer to an '
                          'instance in none of the .h5 files of their video '
                          f'and give no sample: {unmatched[:10]}')
        out_file = osp.join(
            out_dir, f'a2d_sentences_single_frame_{split}_annotations'
            '.json')
        with open(out_file, 'w') as f:
            json.dump(samples, f)
        print(f'{split}: {len(samples)} samples -> {out_file}')
        written[split] = out_file
    return written


def extract_a2d_frames(data_root: str,
                       video_ids: Iterable[str],
                       img_suffix: str = '.jpg',
                       out_dir: Optional[str] = None) -> Dict[str, int]:
    """Decode ``Release/clips320H/<video>.mp4`` into numbered frames.

    Args:
        data_root (str): A2D-Sentences root.
        video_ids (Iterable[str]): Videos to decode.
        img_suffix (str): Frame file suffix (``'.jpg'`` or ``'.png'``).
        out_dir (str, optional): Frame root. Defaults to
            ``<data_root>/Release/frames``.

    Returns:
        dict[str, int]: video id -> number of decoded frames, saved as
        ``<out_dir>/<video>/<k:05d><img_suffix>``, ``k`` from 1.

    Raises:
        FileNotFoundError: A video file is missing.
        ValueError: A video cannot be decoded.
    """
    import cv2
    out_dir = out_dir or osp.join(data_root, 'Release', 'frames')
    counts = {}
    for video_id in video_ids:
        path = osp.join(data_root, 'Release', 'clips320H', video_id + '.mp4')
        if not osp.isfile(path):
            raise FileNotFoundError(f'A2D video {path!r} does not exist.')
        cap = cv2.VideoCapture(path)
        video_dir = osp.join(out_dir, video_id)
        os.makedirs(video_dir, exist_ok=True)
        k = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                k += 1
                out = osp.join(video_dir, f'{k:05d}{img_suffix}')
                if not cv2.imwrite(out, frame):
                    raise ValueError(f'Cannot write frame {out!r}.')
        finally:
            cap.release()
        if k == 0:
            raise ValueError(f'Cannot decode any frame of A2D video {path!r}.')
        counts[video_id] = k
    return counts


def convert_jhmdb(data_root: str,
                  out_file: Optional[str] = None,
                  frames_per_video: int = 3,
                  seed: int = 0) -> str:
    """Write ``jhmdb_sentences_samples_metadata.json``.

    Args:
        data_root (str): JHMDB-Sentences root (see the module docstring).
        out_file (str, optional): Output file. Defaults to
            ``<data_root>/jhmdb_sentences_samples_metadata.json``.
        frames_per_video (int): Annotated frames drawn per expression.
            Defaults to 3 (MTTR).
        seed (int): Seed of the draw. Defaults to 0.

    Returns:
        str: The path of the written file.

    Raises:
        FileNotFoundError: The annotation file, or the frames or puppet mask
            of an annotated video, are missing.
        ValueError: A video has fewer usable frames than
            ``frames_per_video``, or a bad puppet mask.
    """
    import scipy.io
    ann_path = osp.join(data_root, 'jhmdb_annotation.txt')
    rows = _read_csv_rows(ann_path, ('video_id', 'query'))
    print(f'JHMDB-Sentences: {len(rows)} expressions (official: 928).')
    frame_dirs = {
        osp.basename(p): p
        for p in glob.glob(osp.join(data_root, 'Rename_Images', '*', '*'))
    }
    rng = random.Random(seed)
    samples = []
    for row in rows:
        video_id = row['video_id'].strip()
        where = f'{ann_path!r} line {row["_line"]}'
        if video_id not in frame_dirs:
            raise FileNotFoundError(
                f'{where}: video {video_id!r} has no frame folder '
                f'Rename_Images/<class>/{video_id}.')
        frame_dir = frame_dirs[video_id]
        class_name = osp.basename(osp.dirname(frame_dir))
        mask_rel = osp.join('puppet_mask', class_name, video_id,
                            'puppet_mask.mat')
        mask_path = osp.join(data_root, mask_rel)
        if not osp.isfile(mask_path):
            raise FileNotFoundError(
                f'{where}: puppet mask {mask_path!r} does not exist.')
        part_mask = scipy.io.loadmat(mask_path).get('part_mask')
        if part_mask is None or part_mask.ndim != 3:
            raise ValueError(f'{mask_path!r} has no (H, W, T) "part_mask".')
        frames = sorted(
            osp.basename(p) for p in glob.glob(osp.join(frame_dir, '*.png')))
        # the last frames may have no mask: they cannot be evaluated
        frames = frames[:part_mask.shape[2]]
        if len(frames) < frames_per_video:
            raise ValueError(
                f'{where}: video {video_id!r} has {len(frames)} frames with '
                f'a puppet mask, fewer than {frames_per_video}.')
        for name in sorted(rng.sample(frames, frames_per_video)):
            frame_rel = osp.join('Rename_Images', class_name, video_id, name)
            samples.append(
                [video_id, frame_rel, mask_rel,
                 len(frames), row['query']])
    out_file = out_file or osp.join(data_root,
                                    'jhmdb_sentences_samples_metadata.json')
    with open(out_file, 'w') as f:
        json.dump(samples, f)
    print(f'{len(samples)} samples -> {out_file}')
    return out_file


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='dataset', required=True)
    a2d = sub.add_parser('a2d', help='A2D-Sentences sample lists')
    a2d.add_argument('--data-root', default='data/a2d_sentences')
    a2d.add_argument('--out-dir', default=None)
    a2d.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'test'],
        choices=['train', 'test'])
    a2d.add_argument(
        '--extract-frames',
        action='store_true',
        help='decode the mp4 clips of the listed samples into frames')
    a2d.add_argument('--img-suffix', default='.jpg')
    jhmdb = sub.add_parser('jhmdb', help='JHMDB-Sentences sample list')
    jhmdb.add_argument('--data-root', default='data/jhmdb_sentences')
    jhmdb.add_argument('--out-file', default=None)
    jhmdb.add_argument('--frames-per-video', type=int, default=3)
    jhmdb.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.dataset == 'jhmdb':
        convert_jhmdb(args.data_root, args.out_file, args.frames_per_video,
                      args.seed)
        return
    written = convert_a2d(args.data_root, args.out_dir, args.splits)
    if args.extract_frames:
        videos = set()
        for path in written.values():
            with open(path) as f:
                videos.update(entry[1] for entry in json.load(f))
        counts = extract_a2d_frames(
            args.data_root, sorted(videos), img_suffix=args.img_suffix)
        print(f'extracted {sum(counts.values())} frames of {len(counts)} '
              'videos')


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
