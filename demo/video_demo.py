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
  its own colour;
- ``overlay.mp4``: the same as a video (at the input frame rate);
- ``sentences.txt``: sentence index, chosen subject phrase per clip, text.

Long videos are processed in clips of ``--clip-len`` frames, so memory stays
bounded; the query is chosen per clip (as in the Ref-DAVIS protocol).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Iterator, List, Tuple

import cv2
import numpy as np

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
PALETTE = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255),
           (255, 0, 255), (255, 255, 0), (0, 128, 255), (128, 0, 255)]


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


def overlay(frame: np.ndarray, masks: List[np.ndarray],
            alpha: float = 0.5) -> np.ndarray:
    """Blend each mask into the frame in its palette colour, with a contour.
    """
    out = frame.astype(np.float32)
    for i, mask in enumerate(masks):
        colour = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        out[mask] = out[mask] * (1 - alpha) + colour * alpha
    out = out.astype(np.uint8)
    for i, mask in enumerate(masks):
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, PALETTE[i % len(PALETTE)], 1)
    return out


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
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--no-video', action='store_true', help='skip overlay.mp4')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.clip_len < 1:
        raise ValueError(f'--clip-len must be >= 1, got {args.clip_len}')
    texts = [' '.join(t.split()) for t in args.text]
    for i, text in enumerate(texts):
        if not text:
            raise ValueError(f'sentence {i} is empty')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    source = FrameSource(args.input)

    from mmengine.utils import ProgressBar

    from dmformer.apis import inference_clip, init_model
    model = init_model(args.config, args.checkpoint, device=args.device)

    mask_dirs = [osp.join(args.out_dir, 'masks', str(i))
                 for i in range(len(texts))]
    for d in mask_dirs + [osp.join(args.out_dir, 'overlay')]:
        os.makedirs(d, exist_ok=True)
    writer, video_tmp = None, None
    video_path = osp.join(args.out_dir, 'overlay.mp4')
    subjects = [[] for _ in texts]
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
            for i, pred in enumerate(preds):
                subjects[i].append(pred.metainfo.get('pred_subject', ''))
            for t, (fid, frame) in enumerate(zip(frame_ids, frames)):
                for i in range(len(texts)):
                    cv2.imwrite(
                        osp.join(mask_dirs[i], f'{fid}.png'),
                        masks[i][t].astype(np.uint8) * 255)
                vis = overlay(frame, [m[t] for m in masks])
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
    with open(osp.join(args.out_dir, 'sentences.txt'), 'w') as f:
        for i, text in enumerate(texts):
            f.write(f'{i}\t{" | ".join(subjects[i])}\t{text}\n')
    print(f'\nmasks: {osp.join(args.out_dir, "masks")}/<sentence>/'
          f'<frame>.png\noverlay frames: {osp.join(args.out_dir, "overlay")}'
          + ('' if args.no_video else f'\noverlay video: {video_path}'))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
