# Copyright (c) OpenMMLab. All rights reserved.
"""High-level inference: build a model from a config and segment the object
a sentence refers to in a list of frames."""
import copy
import os.path as osp
import warnings
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.utils.ckpt_convert import describe_checkpoint_mismatch


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True) -> nn.Module:
    """Build a DMFormer model from a config and load a checkpoint.

    Args:
        config (str | :obj:`Config`): Config file or object.
        checkpoint (str, optional): Checkpoint path. Without it the model
            keeps its initial weights (useful for smoke tests only).
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Options merged into the config.
        strict (bool): Refuse a checkpoint whose keys or shapes do not
            match the model (``ValueError`` naming the file, counts and a
            few keys). False loads the matching part and warns. Defaults
            to True.

    Returns:
        nn.Module: The model in eval mode, with ``model.cfg`` set.
    """
    from dmformer.utils import register_all_modules
    if isinstance(config, str):
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError('config must be a filename or a Config, got '
                        f'{type(config).__name__}')
    config = copy.deepcopy(config)
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=False)
    init_default_scope(config.get('default_scope', 'dmformer'))
    model = MODELS.build(config.model)
    if checkpoint is None:
        model.init_weights()
    else:
        # every parameter comes from the checkpoint unless strict=False
        from dmformer.engine import read_checkpoint
        ckpt = read_checkpoint(checkpoint) if osp.isfile(checkpoint) \
            else _load_checkpoint(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt) \
            if isinstance(ckpt, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f'{checkpoint}: not a checkpoint (no state '
                             'dict inside)')
        problem = describe_checkpoint_mismatch(model, state)
        if problem and strict:
            raise ValueError(f'{checkpoint} does not fit the config: '
                             f'{problem}')
        if problem:
            warnings.warn(f'{checkpoint} loaded partially: {problem}')
        _load_checkpoint_to_model(model, ckpt, strict=False, logger='silent')
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def get_test_scale(cfg: Config, default: int = 360) -> int:
    """Short side used by the config's test pipeline (``VideoRandomResize``
    with one scale), or ``default``."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset',
                                                  {}).get('pipeline', [])
    for step in pipeline:
        if step.get('type') == 'VideoRandomResize' and len(
                step.get('scales', [])) == 1:
            return int(step['scales'][0])
    return default


def _resize_short_side(frame: np.ndarray, short: int) -> np.ndarray:
    import cv2
    h, w = frame.shape[:2]
    scale = short / min(h, w)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    if (new_h, new_w) == (h, w):
        return frame
    return cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


@torch.no_grad()
def inference_clip(model: nn.Module,
                   frames: Sequence[np.ndarray],
                   texts: Sequence[str],
                   test_scale: Optional[int] = None,
                   frame_ids: Optional[Sequence[str]] = None
                   ) -> List[RVOSDataSample]:
    """Segment the referred object of each sentence in a clip.

    Args:
        model (nn.Module): A model from :func:`init_model`.
        frames (Sequence[np.ndarray]): T frames, uint8 BGR (H, W, 3), all of
            the same size.
        texts (Sequence[str]): One or more referring expressions.
        test_scale (int, optional): Short side the frames are resized to.
            Defaults to the config's test scale (360 for the paper configs).
        frame_ids (Sequence[str], optional): Frame names kept in metainfo.

    Returns:
        list[:obj:`RVOSDataSample`]: One per sentence, with
        ``pred_instances.masks`` (T, H, W) bool at the frames' size,
        ``pred_instances.scores`` (T,) and ``metainfo['pred_subject']``.
    """
    from dmformer.datasets.transforms.text import clean_caption
    from dmformer.utils.noun_chunks import extract_noun_chunks
    if len(frames) == 0:
        raise ValueError('inference_clip: no frames given')
    for i, frame in enumerate(frames):
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 \
                or frame.shape[2] != 3 or frame.dtype != np.uint8:
            what = f'{frame.dtype} {frame.shape}' if isinstance(
                frame, np.ndarray) else type(frame).__name__
            raise ValueError(f'inference_clip: frame {i} must be a uint8 '
                             f'(H, W, 3) BGR image, got {what}')
    shapes = {tuple(f.shape) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f'inference_clip: frames differ in size: {shapes}')
    ori_h, ori_w, channels = frames[0].shape
    if channels != 3 or frames[0].dtype != np.uint8:
        raise ValueError('inference_clip: frames must be uint8 (H, W, 3) '
                         f'BGR images, got {frames[0].dtype} {shapes}')
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise ValueError('inference_clip: no sentence given')
    if test_scale is None:
        test_scale = get_test_scale(getattr(model, 'cfg', Config()))
    if test_scale < 1:
        raise ValueError(f'inference_clip: test_scale must be >= 1, got '
                         f'{test_scale}')
    resized = [_resize_short_side(f, test_scale) for f in frames]
    img_h, img_w = resized[0].shape[:2]
    # [T, H, W, 3] -> [T, 3, H, W]
    clip = torch.from_numpy(np.stack(resized)).permute(0, 3, 1,
                                                       2).contiguous()
    if frame_ids is None:
        frame_ids = [f'{i:05d}' for i in range(len(frames))]
    samples = []
    for i, raw_text in enumerate(texts):
        text = clean_caption(raw_text, where=f'sentence {i}')
        samples.append(RVOSDataSample(
            metainfo=dict(
                video_id='demo',
                exp_id=str(i),
                text=text,
                noun_chunks=extract_noun_chunks(text),
                frame_ids=list(frame_ids),
                ori_shape=(ori_h, ori_w),
                img_shape=(img_h, img_w))))
    # all sentences in one batch on one clip: the backbone and the input
    # projection run once for all of them
    return model.test_step(dict(inputs=[clip], data_samples=samples))
