# Copyright (c) OpenMMLab. All rights reserved.
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmengine.visualization import Visualizer

from dmformer.registry import VISUALIZERS
from .rvos_drawing import frame_with_legend, make_strip


def legend_entry(text: str,
                 subject: Optional[str] = None,
                 score: Optional[float] = None) -> str:
    """Legend text of one sentence: the sentence, its chosen subject
    phrase and its mean score (the parts that are known)."""
    entry = f'"{text}"'
    if subject:
        entry += f' | subject: "{subject}"'
    if score is not None:
        entry += f' | score {score:.2f}'
    return entry


def evenly_spaced(num: int, count: int) -> List[int]:
    """``count`` indices spread over ``range(num)`` (all if fewer)."""
    if count <= 0 or num <= 0:
        return []
    if num <= count:
        return list(range(num))
    return sorted({round(i * (num - 1) / (count - 1))
                   for i in range(count)}) if count > 1 else [0]


@VISUALIZERS.register_module()
class RVOSLocalVisualizer(Visualizer):
    """Draws referring video segmentation results, the RVOS counterpart of
    mmdet's ``DetLocalVisualizer``.

    Frames are uint8 **RGB** ``(H, W, 3)`` arrays (as mmengine's
    visualizers take them); every sentence has its own colour.

    - :meth:`draw_frame`: one frame with the masks of several sentences and
      a legend (sentence, chosen subject phrase, mean score) below it,
      upscaled so that small frames stay readable (the demo's overlay).
    - :meth:`add_datasample`: one expression of a video as a strip of a
      few frames, the ground truth row above the prediction row, each row
      titled with the sentence (and the chosen subject and score); shown,
      written to ``out_file`` or sent to the visualization backends (used
      by :class:`~dmformer.engine.hooks.RVOSVisualizationHook`).

    Args:
        name (str): Name of the instance. Defaults to 'visualizer'.
        vis_backends (list[dict], optional): Visualization backends.
        save_dir (str, optional): Save directory of the backends.
        num_frames (int): Frames per strip of :meth:`add_datasample`
            (evenly spaced over the video). Defaults to 5.
        min_short_side (int): :meth:`draw_frame` upscales frames to at
            least this short side. Defaults to 360.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 num_frames: int = 5,
                 min_short_side: int = 360) -> None:
        super().__init__(
            name=name, vis_backends=vis_backends, save_dir=save_dir)
        self.num_frames = num_frames
        self.min_short_side = min_short_side

    def draw_frame(self, frame: np.ndarray, masks: Sequence[np.ndarray],
                   entries: Sequence[str]) -> np.ndarray:
        """One frame with every sentence's mask and the legend.

        Args:
            frame (np.ndarray): uint8 RGB ``(H, W, 3)``.
            masks (Sequence[np.ndarray]): One bool ``(H, W)`` mask per
                sentence.
            entries (Sequence[str]): One legend text per sentence (see
                :func:`legend_entry`).

        Returns:
            np.ndarray: uint8 RGB ``(k*H + legend, k*W, 3)``; also the
            visualizer's current image.
        """
        drawn = frame_with_legend(
            mmcv.rgb2bgr(frame), masks, entries,
            min_short_side=self.min_short_side)
        drawn = mmcv.bgr2rgb(drawn)
        self.set_image(drawn)
        return drawn

    def draw_strip(self, frames: Sequence[np.ndarray],
                   masks: Sequence[Sequence[np.ndarray]],
                   titles: Sequence[str],
                   frame_ids: Optional[Sequence[str]] = None) -> np.ndarray:
        """Rows of frames, one row per sentence with only its mask.

        Args:
            frames (Sequence[np.ndarray]): N uint8 RGB frames.
            masks (Sequence[Sequence[np.ndarray]]): ``masks[s][n]``, bool
                mask of row s in frame n.
            titles (Sequence[str]): Title per row.
            frame_ids (Sequence[str], optional): Column captions.

        Returns:
            np.ndarray: uint8 RGB image; also the current image.
        """
        drawn = make_strip([mmcv.rgb2bgr(f) for f in frames], masks, titles,
                           frame_ids)
        drawn = mmcv.bgr2rgb(drawn)
        self.set_image(drawn)
        return drawn

    def add_datasample(self,
                       name: str,
                       image: Sequence[np.ndarray],
                       data_sample=None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0) -> np.ndarray:
        """Draw one expression of a video: ground truth and prediction.

        Args:
            name (str): Image name for the backends.
            image (Sequence[np.ndarray]): All frames of the sample, uint8
                RGB, at ``ori_shape`` (as ``pred_instances.masks``).
            data_sample (:obj:`RVOSDataSample`): With ``text`` and
                ``frame_ids`` in its metainfo and ``pred_instances`` /
                ``gt_instances`` (``masks`` (T, H, W)); ``pred_subject``
                and scores are added to the titles when present.
            draw_gt (bool): Draw the ground-truth row if present.
            draw_pred (bool): Draw the prediction row if present.
            show (bool): Show the image. Defaults to False.
            wait_time (float): Seconds to show it. Defaults to 0.
            out_file (str, optional): Write the image here (BGR JPEG/PNG)
                instead of sending it to the backends.
            step (int): Global step for the backends. Defaults to 0.

        Returns:
            np.ndarray: The drawn uint8 RGB image.
        """
        meta = data_sample.metainfo
        text = meta.get('text', '')
        frame_ids = list(meta.get('frame_ids', range(len(image))))
        if len(frame_ids) != len(image):
            raise ValueError(f'{name}: {len(image)} frames but '
                             f'{len(frame_ids)} frame_ids')
        keep = evenly_spaced(len(image), self.num_frames)
        rows, titles = [], []
        gt = data_sample.get('gt_instances')
        if draw_gt and gt is not None and 'masks' in gt:
            rows.append(_mask_list(gt.masks, keep))
            titles.append(f'ground truth: "{text}"')
        pred = data_sample.get('pred_instances')
        if draw_pred and pred is not None and 'masks' in pred:
            score = float(pred.scores.float().mean()) \
                if 'scores' in pred else None
            rows.append(_mask_list(pred.masks, keep))
            titles.append('prediction: ' + legend_entry(
                text, meta.get('pred_subject'), score))
        if not rows:
            raise ValueError(f'{name}: nothing to draw (no masks)')
        drawn = self.draw_strip([image[i] for i in keep], rows, titles,
                                [str(frame_ids[i]) for i in keep])
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn


def _mask_list(masks, keep: Sequence[int]) -> List[np.ndarray]:
    """Bool numpy masks of the frames ``keep`` from a (T, H, W) tensor or
    array."""
    masks = masks.cpu().numpy() if hasattr(masks, 'cpu') else \
        np.asarray(masks)
    return [masks[i].astype(bool) for i in keep]
