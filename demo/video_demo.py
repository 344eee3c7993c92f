# Copyright (c) OpenMMLab. All rights reserved.
"""Segment the objects that sentences refer to in a video.

Examples:
    python demo/video_demo.py VIDEO.mp4 CONFIG CHECKPOINT \
        --text "the dog jumping over the log" "the man on the left" \
        --out-dir outputs/demo
    python demo/video_demo.py FRAMES_DIR/ CONFIG CHECKPOINT --text "..."

Writes, under ``--out-dir``:

- ``masks/<sentence index>/<frame>.png``: 0/255 masks (one folder per
  sentence, as in a Ref-YouTube-VOS submission);
- ``overlay/<frame>.jpg``: the frames with every sentence's mask blended in
  its own colour and a legend below (sentence, chosen subject phrase, mean
  score of the clip); frames with a short side under 360 pixels are
  upscaled so that the legend is readable;
- ``overlay.mp4``: the same as a video (at the input frame rate);
- ``strip.png``: one row per sentence, ``--strip-frames`` frames side by
  side, each showing only that sentence's mask (no video player needed);
- ``sentences.txt``: sentence index, chosen subject phrase per clip, mean
  score, text.

Long videos are processed in clips of ``--clip-len`` frames, so memory stays
bounded; the query is chosen per clip (as in the Ref-DAVIS protocol).
"""
import argparse
import os
import os.path as osp
from typing import Iterator, List, Tuple

import cv2
import numpy as np

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')


class FrameSource:
    """Frames of a video file or of a folder of images, read lazily.

    Args:
        path (str): A video file (mp4/avi/...) or a folder of frames.

    Raises:
        FileNotFoundError: The path does not exist.
        ValueError: Unsupported file, unreadable video, empty folder.
    """

    def __init__(self, path: str) -> None:
        if not osp.exists(path):
            raise FileNotFoundError(f'input not found: {path}')
        self.path = path
        self.fps = 10.0
        if osp.isdir(path):
            names = sorted(
                n for n in os.listdir(path) if n.lower().endswith(IMG_EXTS))
            if not names:
                raise ValueError(f'no image frames ({", ".join(IMG_EXTS)}) '
                                 f'in folder {path}')
            self.frame_files = [osp.join(path, n) for n in names]
            self.frame_ids = [osp.splitext(n)[0] for n in names]
            seen = {}
            for fid, name in zip(self.frame_ids, names):
                if fid in seen:
                    raise ValueError(
                        f'frames {seen[fid]} and {name} in {path} have the '
                        f'same frame id {fid!r}: their masks would overwrite '
                        'each other')
                seen[fid] = name
            self.num_frames = len(names)
        else:
            if not path.lower().endswith(VIDEO_EXTS):
                raise ValueError(
                    f'{path}: not a folder of frames nor a video file with '
                    f'one of the extensions {", ".join(VIDEO_EXTS)}')
            cap = cv2.VideoCapture(path)
            ok, _ = cap.read() if cap.isOpened() else (False, None)
            if not ok:
                cap.release()
                raise ValueError(f'cannot decode video file {path} '
                                 '(corrupt or unsupported codec)')
            self.fps = cap.get(cv2.CAP_PROP_FPS) or self.fps
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            cap.release()
            self.frame_files = None
            self.num_frames = count
            self.frame_ids = None

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        """Yield ``(frame_id, BGR uint8 frame)``."""
        if self.frame_files is not None:
            size = None
            for fid, fname in zip(self.frame_ids, self.frame_files):
                frame = cv2.imread(fname, cv2.IMREAD_COLOR)
                if frame is not None and \
                        fname.lower().endswith(('.jpg', '.jpeg')):
                    _check_jpeg_complete(fname)
                if frame is None:
                    raise ValueError(f'cannot read frame {fname} (corrupt or '
                                     'not an image)')
                if size is not None and frame.shape != size:
                    raise ValueError(
                        f'frame {fname} has size {frame.shape[:2]}, the '
                        f'previous frames {size[:2]}')
                size = frame.shape
                yield fid, frame
            return
        cap = cv2.VideoCapture(self.path)
        idx = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                yield f'{idx:05d}', frame
                idx += 1
        finally:
            cap.release()
        if idx == 0:
            raise ValueError(f'no frame could be decoded from {self.path}')


def _check_jpeg_complete(fname: str) -> None:
    """OpenCV decodes a truncated JPEG without an error (the missing rows
    come out grey); Pillow reports it."""
    from PIL import Image
    try:
        with Image.open(fname) as img:
            img.load()
    except OSError as e:
        raise ValueError(f'cannot read frame {fname}: {e}') from e


def clips(source: FrameSource,
          clip_len: int) -> Iterator[Tuple[List[str], List[np.ndarray]]]:
    """Group the frames into clips of at most ``clip_len`` frames."""
    ids, frames = [], []
    for fid, frame in source:
        ids.append(fid)
        frames.append(frame)
        if len(frames) == clip_len:
            yield ids, frames
            ids, frames = [], []
    if frames:
        yield ids, frames


DEMO_OUTPUTS = ('masks', 'overlay', 'overlay.mp4', 'strip.png',
                'sentences.txt')


def prepare_out_dir(out_dir: str, overwrite: bool) -> None:
    """Refuse an output folder that holds an earlier run, so that stale
    masks never mix with new ones; with ``overwrite``, remove exactly the
    files and folders this demo writes (:data:`DEMO_OUTPUTS`)."""
    import shutil
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise ValueError(f'--out-dir {out_dir} exists and is not a folder')
    found = [n for n in DEMO_OUTPUTS if osp.lexists(osp.join(out_dir, n))]
    if not found:
        return
    if not overwrite:
        raise ValueError(f'--out-dir {out_dir} holds the outputs of an '
                         f'earlier run ({", ".join(found)}); pass '
                         '--overwrite to replace them or choose another '
                         'folder')
    for name in found:
        path = osp.join(out_dir, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def strip_indices(num_frames: int, count: int) -> List[int]:
    """``count`` frame indices spread evenly over ``num_frames`` frames."""
    if num_frames <= 0 or count <= 0:
        return []
    count = min(count, num_frames)
    return sorted({int(round(i * (num_frames - 1) / max(count - 1, 1)))
                   for i in range(count)})


def legend_entry(index: int, text: str, subject: str, score: float) -> str:
    """The legend line of one sentence."""
    subject = f'subject "{subject}"' if subject else 'no subject head'
    return f'[{index}] "{text}"  {subject}, score {score:.2f}'


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DMFormer video demo',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('input', help='video file or folder of frames')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--text',
        nargs='+',
        required=True,
        help='one or more referring expressions')
    parser.add_argument('--out-dir', default='outputs/demo')
    parser.add_argument(
        '--clip-len',
        type=int,
        default=36,
        help='frames per clip (bounds memory); default 36')
    parser.add_argument(
        '--test-scale',
        type=int,
        default=None,
        help='short side of the model input; default: the config\'s')
    parser.add_argument(
        '--device',
        default=None,
        help='device to run on, e.g. cpu, cuda or cuda:1 (default: cuda '
        'when torch.cuda.is_available(), else cpu)')
    parser.add_argument(
        '--amp',
        nargs='?',
        const='fp16',
        choices=['fp16', 'bf16'],
        help='run the network under autocast (default fp16)')
    parser.add_argument(
        '--no-video', action='store_true', help='skip overlay.mp4')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace the outputs of an earlier run in --out-dir (only the '
        'files this demo writes are removed)')
    parser.add_argument(
        '--allow-partial-checkpoint',
        action='store_true',
        help='run with a checkpoint that does not match the config '
        '(default: refuse it)')
    parser.add_argument(
        '--strip-frames',
        type=int,
        default=5,
        help='frames per sentence in strip.png (0: no strip); default 5')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.clip_len < 1:
        raise ValueError(f'--clip-len must be >= 1, got {args.clip_len}')
    if args.test_scale is not None and args.test_scale < 1:
        raise ValueError(f'--test-scale must be >= 1, got {args.test_scale}')
    import torch
    if args.device is None:
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    elif args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {args.device}: CUDA is not available')
    texts = [' '.join(t.split()) for t in args.text]
    for i, text in enumerate(texts):
        if not text:
            raise ValueError(f'sentence {i} is empty')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    source = FrameSource(args.input)
    prepare_out_dir(args.out_dir, args.overwrite)

    from mmengine.utils import ProgressBar

    from dmformer.apis import inference_clip, init_model
    from dmformer.utils import tune_glibc_malloc
    from dmformer.visualization import RVOSLocalVisualizer

    # frames are BGR here (cv2); the visualizer takes and returns RGB
    visualizer = RVOSLocalVisualizer.get_instance('dmformer_demo')
    tune_glibc_malloc()  # faster CPU inference; DMFORMER_MALLOPT=0 disables
    model = init_model(
        args.config,
        args.checkpoint,
        device=args.device,
        strict=not args.allow_partial_checkpoint,
        cfg_options=None if args.amp is None else {
            'model.test_cfg.amp': args.amp
        })

    mask_dirs = [osp.join(args.out_dir, 'masks', str(i))
                 for i in range(len(texts))]
    for d in mask_dirs + [osp.join(args.out_dir, 'overlay')]:
        os.makedirs(d, exist_ok=True)
    writer, video_tmp = None, None
    video_path = osp.join(args.out_dir, 'overlay.mp4')
    subjects = [[] for _ in texts]
    scores = [[] for _ in texts]
    wanted = set(strip_indices(source.num_frames or 0, args.strip_frames))
    strip_frames, strip_ids, strip_masks = [], [], [[] for _ in texts]
    frame_index = 0
    progress = ProgressBar(source.num_frames) if source.num_frames else None
    try:
        for frame_ids, frames in clips(source, args.clip_len):
            preds = inference_clip(
                model,
                frames,
                texts,
                test_scale=args.test_scale,
                frame_ids=frame_ids)
            masks = [p.pred_instances.masks.cpu().numpy() for p in preds]
            entries = []
            for i, pred in enumerate(preds):
                subject = pred.metainfo.get('pred_subject', '')
                score = float(pred.pred_instances.scores.float().mean())
                subjects[i].append(subject)
                scores[i].append((score, len(frames)))
                entries.append(legend_entry(i, texts[i], subject, score))
            for t, (fid, frame) in enumerate(zip(frame_ids, frames)):
                for i in range(len(texts)):
                    cv2.imwrite(
                        osp.join(mask_dirs[i], f'{fid}.png'),
                        masks[i][t].astype(np.uint8) * 255)
                if frame_index in wanted:
                    strip_frames.append(frame)
                    strip_ids.append(fid)
                    for i in range(len(texts)):
                        strip_masks[i].append(masks[i][t])
                frame_index += 1
                vis = np.ascontiguousarray(
                    visualizer.draw_frame(frame[..., ::-1],
                                          [m[t] for m in masks],
                                          entries)[..., ::-1])
                cv2.imwrite(osp.join(args.out_dir, 'overlay', f'{fid}.jpg'),
                            vis)
                if not args.no_video:
                    if writer is None:
                        # write next to the target, rename when complete
                        video_tmp = video_path + '.part.mp4'
                        writer = cv2.VideoWriter(
                            video_tmp, cv2.VideoWriter_fourcc(*'mp4v'),
                            source.fps, (vis.shape[1], vis.shape[0]))
                        if not writer.isOpened():
                            raise RuntimeError(
                                f'cannot open a video writer for {video_tmp}')
                    writer.write(vis)
                if progress is not None:
                    progress.update()
    finally:
        if writer is not None:
            writer.release()
    if video_tmp is not None:
        os.replace(video_tmp, video_path)
    mean_scores = [
        sum(s * n for s, n in per) / max(sum(n for _, n in per), 1)
        for per in scores
    ]
    with open(osp.join(args.out_dir, 'sentences.txt'), 'w') as f:
        for i, text in enumerate(texts):
            f.write(f'{i}\t{" | ".join(subjects[i])}\t'
                    f'{mean_scores[i]:.4f}\t{text}\n')
    strip_path = None
    if strip_frames:
        titles = [
            legend_entry(i, texts[i], ' | '.join(dict.fromkeys(subjects[i])),
                         mean_scores[i]) for i in range(len(texts))
        ]
        strip_path = osp.join(args.out_dir, 'strip.png')
        strip = visualizer.draw_strip([f[..., ::-1] for f in strip_frames],
                                      strip_masks, titles, strip_ids)
        cv2.imwrite(strip_path, np.ascontiguousarray(strip[..., ::-1]))
    print(f'\nmasks: {osp.join(args.out_dir, "masks")}/<sentence>/'
          f'<frame>.png\noverlay frames: {osp.join(args.out_dir, "overlay")}'
          + ('' if args.no_video else f'\noverlay video: {video_path}')
          + ('' if strip_path is None else f'\nstrip: {strip_path}'))
    for i, text in enumerate(texts):
        subject = subjects[i][0] if subjects[i] else ''
        print(f'  [{i}] "{text}": subject "{subject}", '
              f'mean score {mean_scores[i]:.2f}')
    return 0


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
