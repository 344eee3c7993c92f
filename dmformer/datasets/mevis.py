# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.logging import MMLogger
from PIL import Image

from dmformer.registry import DATASETS
from .base_rvos_dataset import BaseRVOSDataset
from .transforms.loading import decode_coco_segmentation, load_mask_dict


@DATASETS.register_module()
class MeViSDataset(BaseRVOSDataset):
    """MeViS (`Ding et al., ICCV 2023 <https://arxiv.org/abs/2308.08544>`_):
    motion expressions that refer to one or several objects.

    Layout of the official release::

        data_root/
        ├── train/JPEGImages/<video>/<frame>.jpg
        ├── train/meta_expressions.json
        ├── train/mask_dict.json
        ├── valid_u/{JPEGImages,meta_expressions.json,mask_dict.json}
        └── valid/{JPEGImages,meta_expressions.json}   (no ground truth)

    An expression of ``meta_expressions.json`` is ``{"exp": str, "obj_id":
    [int, ...], "anno_id": [int, ...]}``: it refers to **all** the listed
    objects (parallel lists), or to none when both lists are empty (a
    no-target expression, e.g. "the bird flying away" in a video without
    one). ``mask_dict.json`` maps ``str(anno_id)`` to one COCO RLE (or
    ``null``, object absent) per frame of the video, in sorted frame
    order. The target of an expression is the **union** of its objects'
    masks (the MeViS protocol for models with one output per expression),
    loaded by :class:`~dmformer.datasets.transforms.LoadMeViSAnnotations`;
    frames where none of its objects is visible have an empty target, and
    a no-target expression has an empty target in every frame (scored
    against it like the organisers' script, whose sum over zero
    ``anno_id`` is an empty mask). In training, a clip without any target
    pixel is dropped by ``CheckValidFrames`` and another sample drawn, so
    no-target expressions give no training clip, as in the official MeViS
    training code, which draws another sample when no frame is valid.

    Data infos are those of :class:`BaseRVOSDataset` with ``obj_id=-1``
    plus ``obj_ids`` (list[int]), ``anno_ids`` (list[str], empty for a
    no-target expression) and ``mask_file`` (str, or None for a split
    without ground truth). Frame sampling, augmentation and packing are the
    Ref-YouTube-VOS ones.

    Splits (``split`` fills the defaults; explicit arguments win):

    - ``'train'``: one sample per (video, expression, anchor frame).
    - ``'valid_u'``: the split with public ground truth, all frames, scored
      locally.
    - ``'valid'``: the evaluation-server split, all frames, no masks.

    When a mask file is used, every expression must have ``obj_id`` and
    ``anno_id`` lists (empty for no target) of equal lengths, and every
    ``anno_id`` must be in the mask file with one entry per frame of the
    video; violations raise a ``ValueError`` naming the video, the
    expression and the file. Use ``tools/dataset_converters/check_mevis.py``
    to check a downloaded folder completely (frames, RLE sizes).

    Args:
        split (str): ``'train'``, ``'valid_u'`` or ``'valid'``.
            Defaults to 'train'.
        mask_file (str, optional): ``mask_dict.json`` relative to
            ``data_root``; None for a split without ground truth. Defaults
            to the split's file.
        **kwargs: Arguments of :class:`BaseRVOSDataset`.
    """

    SPLIT_DEFAULTS = dict(
        train=dict(
            ann_file='train/meta_expressions.json',
            data_prefix=dict(img_path='train/JPEGImages', ann_path=''),
            mask_file='train/mask_dict.json',
            sample_mode='anchor'),
        valid_u=dict(
            ann_file='valid_u/meta_expressions.json',
            data_prefix=dict(img_path='valid_u/JPEGImages', ann_path=''),
            mask_file='valid_u/mask_dict.json',
            sample_mode='video'),
        valid=dict(
            ann_file='valid/meta_expressions.json',
            data_prefix=dict(img_path='valid/JPEGImages', ann_path=''),
            mask_file=None,
            sample_mode='video'))

    def __init__(self, split: str = 'train', **kwargs) -> None:
        kwargs = self._with_split_defaults(split, kwargs)
        self.split = split
        self.mask_file = kwargs.pop('mask_file')
        self._tracks: Optional[dict] = None
        self._mask_path: Optional[str] = None
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the expressions and check them against the mask file.

        Returns:
            list[dict]: The data infos (see the class docstring).
        """
        self._mask_path = self._abs(self.mask_file)
        if self._mask_path is not None:
            self._tracks = load_mask_dict(self._mask_path, self.backend_args)
        try:
            data_list = super().load_data_list()
        finally:
            self._tracks = None  # the parsed file stays in the process cache
        num_multi = len({(d['video_id'], d['exp_id'])
                         for d in data_list if len(d['obj_ids']) > 1})
        no_target = len({(d['video_id'], d['exp_id'])
                         for d in data_list
                         if self._mask_path is not None and not d['anno_ids']})
        MMLogger.get_current_instance().info(
            f'{self.__class__.__name__} ({self.split}): {num_multi} '
            f'expressions refer to several objects, {no_target} to none; '
            f'ground truth {self._mask_path!r}.')
        return data_list

    def parse_referent(self, raw_data_info: dict, where: str) -> dict:
        """Parse the objects an expression refers to.

        Args:
            raw_data_info (dict): As in :meth:`parse_data_info`.
            where (str): Names the video and expression in errors.

        Returns:
            dict: ``obj_id`` (-1), ``obj_ids``, ``anno_ids``, ``mask_file``
            and ``category`` (None).

        Raises:
            ValueError: See the class docstring.
        """
        exp = raw_data_info['exp']
        obj_ids = self._id_list(exp, 'obj_id', where)
        anno_ids = self._id_list(exp, 'anno_id', where)
        if self._tracks is not None:
            problems = referent_problems(
                obj_ids if exp.get('obj_id') is not None else None,
                anno_ids if exp.get('anno_id') is not None else None,
                self._tracks, len(raw_data_info['frame_ids']),
                self._mask_path)
            if problems:
                raise ValueError(
                    f'{where} of {self.ann_file!r}: {problems[0]}.')
        return dict(
            obj_id=-1,
            obj_ids=[int(i) for i in obj_ids],
            anno_ids=anno_ids if self._tracks is not None else [],
            mask_file=self._mask_path,
            category=None)

    @staticmethod
    def _id_list(exp: dict, key: str, where: str) -> List[str]:
        """An id list of an expression as strings ([] if absent)."""
        ids = exp.get(key)
        if ids is None:
            return []
        if not isinstance(ids, list):
            ids = [ids]
        for i in ids:
            if isinstance(i, bool) or not str(i).lstrip('-').isdigit():
                raise ValueError(
                    f'{where}: {key} must be a list of integers, got '
                    f'{exp.get(key)!r}.')
        return [str(int(i)) for i in ids]


def _frame_size(path: str) -> Optional[Tuple[int, int]]:
    """(h, w) of an image from its header, None if unreadable."""
    try:
        with Image.open(path) as img:
            return img.height, img.width
    except (OSError, SyntaxError, ValueError):
        return None


def check_mevis_split(data_root: str,
                      split: str,
                      decode: bool = False,
                      img_suffix: str = '.jpg') -> dict:
    """Check one split of a MeViS folder completely.

    Checks what :class:`MeViSDataset` checks when it loads, and what it
    only finds while training: that every listed frame exists and can be
    read, and that every RLE has the size of its video's frames (and, with
    ``decode``, decodes).

    Args:
        data_root (str): The MeViS root (holding ``train/``, ``valid_u/``,
            ``valid/``).
        split (str): Split folder name.
        decode (bool): Also decode every RLE (slow on the full dataset).
            Defaults to False.
        img_suffix (str): Frame suffix. Defaults to '.jpg'.

    Returns:
        dict: ``stats`` (videos, frames, expressions, multi_object,
        no_target, anno_ids, with_masks) and ``problems`` (list of one-line
        messages naming the video, expression and file).
    """
    split_dir = osp.join(data_root, split)
    ann_file = osp.join(split_dir, 'meta_expressions.json')
    mask_file = osp.join(split_dir, 'mask_dict.json')
    stats = dict(
        videos=0,
        frames=0,
        expressions=0,
        multi_object=0,
        no_target=0,
        anno_ids=0,
        with_masks=osp.isfile(mask_file))
    problems: List[str] = []
    try:
        with open(ann_file) as f:
            videos = json.load(f)['videos']
        assert isinstance(videos, dict)
    except FileNotFoundError:
        return dict(stats=stats, problems=[f'{ann_file}: does not exist'])
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        return dict(
            stats=stats,
            problems=[f'{ann_file}: not a MeViS meta_expressions.json '
                      f'({e!r})'])
    tracks: Dict[str, list] = {}
    if not stats['with_masks'] and split in ('train', 'valid_u'):
        problems.append(f'{mask_file}: does not exist (the {split} split of '
                        'MeViS comes with masks)')
    if stats['with_masks']:
        try:
            tracks = load_mask_dict(mask_file)
        except ValueError as e:
            return dict(stats=stats, problems=[str(e)])
        stats['anno_ids'] = len(tracks)
    for video_id in sorted(videos):
        video = videos[video_id]
        frames = sorted(str(f) for f in video.get('frames', []))
        stats['videos'] += 1
        stats['frames'] += len(frames)
        img_dir = osp.join(split_dir, 'JPEGImages', video_id)
        present = set(os.listdir(img_dir)) if osp.isdir(img_dir) else set()
        if not present:
            problems.append(f'video {video_id!r}: frame folder {img_dir} is '
                            'missing or empty')
        size = None
        for frame in frames:
            path = osp.join(img_dir, frame + img_suffix)
            if frame + img_suffix not in present:
                if present:
                    problems.append(f'video {video_id!r}: frame {path} is '
                                    'listed but missing')
                continue
            if size is None:
                size = _frame_size(path)
                if size is None:
                    problems.append(f'video {video_id!r}: frame {path} '
                                    'cannot be read')
        for exp_id, exp in sorted(video.get('expressions', {}).items()):
            stats['expressions'] += 1
            where = f'video {video_id!r}, expression {exp_id!r}'
            if not isinstance(exp, dict) or not str(exp.get('exp',
                                                            '')).strip():
                problems.append(f'{where}: no "exp" text in {ann_file}')
                continue
            if len(exp.get('obj_id') or []) > 1:
                stats['multi_object'] += 1
            if stats['with_masks'] and exp.get('obj_id') == [] and \
                    exp.get('anno_id') == []:
                stats['no_target'] += 1
            if stats['with_masks']:
                problems += _check_expression_masks(exp, where, tracks,
                                                    len(frames), size,
                                                    mask_file, decode)
    return dict(stats=stats, problems=problems)


def referent_problems(obj_ids: Optional[Sequence],
                      anno_ids: Optional[Sequence], tracks: dict,
                      num_frames: int, mask_file: str) -> List[str]:
    """What is wrong with the objects of a MeViS expression, as messages
    (empty if nothing): a missing list, ``obj_id`` and ``anno_id`` lists of
    different lengths, an ``anno_id`` that is not in ``mask_dict.json`` or
    whose track does not have one entry per frame. Two empty lists are a
    no-target expression, not a problem. :class:`MeViSDataset` raises the
    first; :func:`check_mevis_split` lists them all.

    Args:
        obj_ids (Sequence, optional): The expression's ``obj_id`` list
            (None when the expression has none).
        anno_ids (Sequence, optional): Its ``anno_id`` list (None when
            absent).
        tracks (dict): The parsed ``mask_dict.json``.
        num_frames (int): Frames of the video.
        mask_file (str): Path of ``mask_dict.json`` (for the messages).

    Returns:
        list[str]: One message per problem.
    """
    if obj_ids is None or anno_ids is None:
        return ['missing obj_id / anno_id list: every MeViS expression with '
                'ground truth has both (empty lists for an expression that '
                'refers to no object)']
    if len(obj_ids) != len(anno_ids):
        return [f'lists {len(obj_ids)} obj_id and {len(anno_ids)} anno_id; '
                'the lists must be parallel']
    problems = []
    for anno_id in anno_ids:
        track = tracks.get(str(anno_id))
        if track is None:
            problems.append(f'anno_id {anno_id} is not in mask file '
                            f'{mask_file!r}')
        elif len(track) != num_frames:
            problems.append(f'anno_id {anno_id} has {len(track)} masks in '
                            f'{mask_file!r} but the video has {num_frames} '
                            'frames')
    return problems


def _check_expression_masks(exp: dict, where: str, tracks: dict,
                            num_frames: int, size: Optional[Tuple[int, int]],
                            mask_file: str, decode: bool) -> List[str]:
    """Problems of one expression's objects in ``mask_dict.json``: those of
    :func:`referent_problems`, then RLEs of another size than the frames
    (or, with ``decode``, that do not decode)."""
    obj_ids, anno_ids = exp.get('obj_id'), exp.get('anno_id')
    problems = [
        f'{where}: {p}'
        for p in referent_problems(obj_ids, anno_ids, tracks, num_frames,
                                   mask_file)
    ]
    if not obj_ids or not anno_ids or len(obj_ids) != len(anno_ids) or \
            size is None:
        return problems
    for anno_id in anno_ids:
        for k, rle in enumerate(tracks.get(str(anno_id)) or []):
            if rle is None:
                continue
            if not isinstance(rle, dict) or list(
                    rle.get('size', [])) != list(size):
                got = rle.get('size') if isinstance(rle, dict) else rle
                problems.append(
                    f'{where}: anno_id {anno_id}, frame {k}: RLE size '
                    f'{got!r:.40} in {mask_file} differs from the frame size '
                    f'{list(size)}')
                break
            if decode:
                try:
                    decode_coco_segmentation(rle, *size)
                except Exception as e:  # pycocotools raises several types
                    problems.append(f'{where}: anno_id {anno_id}, frame {k}:'
                                    f' RLE in {mask_file} does not decode '
                                    f'({e})')
                    break
    return problems
