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
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

from dmformer.models.utils.ckpt_convert import describe_checkpoint_mismatch
from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample


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


#: test-pipeline steps that read files or ground truth, and what replaces
#: them when frames come from memory (None: dropped)
_INFERENCE_REPLACEMENTS = {
    'RVOSFrameSample': None,
    'A2DFrameSample': None,
    'LoadRVOSFrames': 'LoadRVOSFramesFromNDArray',
    'LoadRVOSAnnotations': None,
    'LoadMeViSAnnotations': None,
    'LoadA2DAnnotations': None,
}


def build_inference_pipeline(cfg: Config,
                             test_scale: Optional[int] = None) -> Compose:
    """The config's test pipeline, reading frames from memory.

    The transforms that sample frames from a dataset or load files and
    ground truth are replaced (:class:`LoadRVOSFramesFromNDArray`) or
    dropped; the rest (resize, noun chunks, packing) is the config's, so
    :func:`inference_clip` preprocesses exactly as ``tools/test.py``.

    Args:
        cfg (Config): The model's config (``test_dataloader.dataset.
            pipeline``).
        test_scale (int, optional): Replace the scales of the pipeline's
            ``VideoRandomResize`` by this short side.

    Returns:
        :obj:`mmengine.dataset.Compose`: The pipeline.

    Raises:
        ValueError: The config has no test pipeline that loads frames.
    """
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    steps = copy.deepcopy(dataset.get('pipeline') or [])
    if not any(step.get('type') == 'LoadRVOSFrames' for step in steps):
        raise ValueError(
            f'{cfg.filename}: test_dataloader.dataset.pipeline has no '
            'LoadRVOSFrames step, so it cannot be run on frames in memory')
    pipeline = []
    for step in steps:
        kind = step.get('type')
        if kind in _INFERENCE_REPLACEMENTS:
            if _INFERENCE_REPLACEMENTS[kind] is not None:
                pipeline.append(dict(type=_INFERENCE_REPLACEMENTS[kind]))
            continue
        if kind == 'VideoRandomResize' and test_scale is not None:
            step['scales'] = [test_scale]
            step['max_size'] = None
        pipeline.append(step)
    with DefaultScope.overwrite_default_scope('dmformer'):
        return Compose(pipeline)


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
        test_scale (int, optional): Short side the frames are resized to
            (no long-side limit). Defaults to the config's test pipeline
            (short side 360 for the paper configs).
        frame_ids (Sequence[str], optional): Frame names kept in metainfo.

    Returns:
        list[:obj:`RVOSDataSample`]: One per sentence, with
        ``pred_instances.masks`` (T, H, W) bool at the frames' size,
        ``pred_instances.scores`` (T,) and ``metainfo['pred_subject']``.
    """
    from dmformer.datasets.transforms.loading import check_bgr_frames
    from dmformer.datasets.transforms.text import clean_caption
    if len(frames) == 0:
        raise ValueError('inference_clip: no frames given')
    check_bgr_frames(frames, 'inference_clip: ')
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise ValueError('inference_clip: no sentence given')
    if test_scale is not None and test_scale < 1:
        raise ValueError(f'inference_clip: test_scale must be >= 1, got '
                         f'{test_scale}')
    if getattr(model, 'cfg', None) is None:
        raise ValueError('inference_clip: the model has no .cfg; build it '
                         'with dmformer.apis.init_model')
    pipeline = build_inference_pipeline(model.cfg, test_scale)
    if frame_ids is None:
        frame_ids = [f'{i:05d}' for i in range(len(frames))]
    inputs, samples = None, []
    for i, raw_text in enumerate(texts):
        text = clean_caption(raw_text, where=f'sentence {i}')
        packed = pipeline(
            dict(
                img=list(frames),
                frame_id=list(frame_ids),
                video_id='demo',
                exp_id=str(i),
                text=text,
                ori_text=text))
        inputs = packed['inputs'] if inputs is None else inputs
        samples.append(packed['data_samples'])
    # all sentences on one clip: the backbone and the input projection run
    # once for all of them
    return model.test_step(dict(inputs=[inputs], data_samples=samples))
