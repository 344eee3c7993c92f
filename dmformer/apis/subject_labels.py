# Copyright (c) OpenMMLab. All rights reserved.
"""Subject-phrase labels of referring expressions.

The subject perceptron is supervised with the character span of the noun
chunk that names the referred object. The official code derives it at every
training iteration from a frozen GLIP-L "booster"; here the labels are
computed once, offline, by :func:`generate_subject_labels` (driven by
``tools/misc/gen_subject_labels.py``) for every dataset the paper configs
train on (:data:`LABEL_DATASETS`), and stored as ``{video_id: {exp_id:
[start_char, end_char]}}`` (spans of the caption cleaned by
:func:`~dmformer.datasets.transforms.text.clean_caption`) where the dataset
class reads them with ``subject_label_file='auto'``
(:func:`subject_label_path`):

- Ref-YouTube-VOS: ``meta_expressions/<split>/subject_labels.json``;
- MeViS: ``<split>/subject_labels.json``;
- A2D-Sentences: ``subject_labels.json`` at the root, beside the sample
  lists (both splits read it; their videos are disjoint);
- RefCOCO / RefCOCO+ / RefCOCOg: one file per annotation file,
  ``<name>/instances_<name>_<split>_subject_labels.json``.

The candidates are the spaCy noun chunks of the caption
(:func:`~dmformer.utils.noun_chunks.extract_noun_chunks` with its default
method, the one of the paper configs' ``ExtractNounChunks``), so a label
is always one of the chunks the model scores (or the whole sentence when
it has none).

For every expression and every annotated frame where the object is
visible (:class:`ReferentFrames`), the teacher grounds the caption's noun
chunks; the frame votes for the chunk of the detection that best overlaps
the ground-truth box (IoU > ``iou_thr``); the chunk with most votes wins
(:func:`vote_subject_chunk`). Fixes with respect to the official
``util/glip_labels.py``:

- ground-truth boxes are taken in the pixel frame of the image the teacher
  predicts on (the original frame; the official code de-normalised them
  with the *padded* batch size, which scales them up);
- only real matches vote: frames without a match abstain, instead of
  casting a "no match" vote that can outvote a chunk found in fewer frames;
- chunks are given to the teacher as character spans (the official code
  matched spaCy token indices against BERT word ids, which can shift or
  drop chunks), images in BGR as mmdet's GLIP expects (the official code
  fed RGB) at the teacher config's test scale (not the official 360/480
  short side), and the NMS threshold comes from the teacher config (the
  official code hard-coded 0.9);
- IoU uses continuous coordinates (no "+1" pixel convention).

Without a teacher (or when no frame matches, e.g. a MeViS expression that
refers to no object) the label is the parser fallback
:func:`parser_subject_span`: the first noun chunk, i.e. the chunk heading
the sentence, which is also the official default.
"""
import logging
import os.path as osp
from typing import (Any, Dict, List, NamedTuple, Optional, Protocol, Sequence,
                    Tuple)

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger
from PIL import Image, UnidentifiedImageError

from dmformer.datasets import (A2DSentencesDataset, MeViSDataset,
                               RefCOCODataset, RefYouTubeVOSDataset)
from dmformer.datasets.transforms.loading import (A2D_H5,
                                                  decode_coco_segmentation,
                                                  load_a2d_instance_masks,
                                                  load_mask_dict,
                                                  read_index_png)
from dmformer.utils.noun_chunks import extract_noun_chunks

Span = Tuple[int, int]


class FrameVote(NamedTuple):
    """The teacher's match on one frame.

    Attributes:
        chunk (int): Index of the matched noun chunk.
        score (float): Score of the matched detection.
        iou (float): IoU of the matched detection with the GT box.
    """
    chunk: int
    score: float
    iou: float


class SubjectTeacher(Protocol):
    """Interface of a grounding teacher (e.g. :class:`GLIPTeacher`)."""

    def predict(self, img_paths: Sequence[str], text: str,
                chunk_spans: Sequence[Span]) -> List[Dict[str, np.ndarray]]:
        """Ground the noun chunks of ``text`` in each image.

        Args:
            img_paths (Sequence[str]): Frame paths.
            text (str): The (cleaned) caption.
            chunk_spans (Sequence[tuple[int, int]]): Character spans of its
                noun chunks, in order.

        Returns:
            list[dict]: One dict per image with ``bboxes`` (N, 4) xyxy in
            the pixels of that image, ``scores`` (N,) and ``labels`` (N,)
            int, the index of the grounded chunk in ``chunk_spans``.
        """


def parser_subject_span(text: str, spacy_model: Optional[str] = None) -> Span:
    """Parser-only subject label: the noun chunk heading the sentence.

    Args:
        text (str): The caption.
        spacy_model (str, optional): spaCy pipeline name; None uses the
            default of :mod:`dmformer.utils.noun_chunks`.

    Returns:
        tuple[int, int]: Character span ``[start, end)`` of the first spaCy
        noun chunk, or of the whole sentence if it has none.

    Raises:
        ValueError: ``text`` is empty or only whitespace.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'Cannot label an empty caption: {text!r}')
    chunks = extract_noun_chunks(text, spacy_model)
    if chunks:
        return int(chunks[0][0]), int(chunks[0][1])
    return 0, len(text)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU between one box and N boxes (xyxy, continuous coordinates).

    Args:
        box (np.ndarray): (4,) box.
        boxes (np.ndarray): (N, 4) boxes.

    Returns:
        np.ndarray: (N,) IoUs (0 where the union is empty).
    """
    box = np.asarray(box, dtype=np.float64).reshape(4)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    iw = np.clip(
        np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0,
        None)
    ih = np.clip(
        np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0,
        None)
    inter = iw * ih
    area = max(box[2] - box[0], 0.) * max(box[3] - box[1], 0.)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.)


def match_frame(gt_box: np.ndarray,
                det_bboxes: np.ndarray,
                det_labels: np.ndarray,
                det_scores: np.ndarray,
                iou_thr: float = 0.4) -> Optional[FrameVote]:
    """Match the teacher's detections of one frame to the GT box.

    The detection with the largest IoU with ``gt_box`` is kept if that IoU
    is strictly above ``iou_thr`` (ties: the first detection).

    Args:
        gt_box (np.ndarray): (4,) xyxy GT box in the image's pixels.
        det_bboxes (np.ndarray): (N, 4) xyxy detections, same pixels.
        det_labels (np.ndarray): (N,) chunk index of each detection.
        det_scores (np.ndarray): (N,) detection scores.
        iou_thr (float): IoU threshold. Defaults to 0.4.

    Returns:
        FrameVote or None: The match, or None if no detection overlaps the
        GT box enough.
    """
    det_bboxes = np.asarray(det_bboxes, dtype=np.float64).reshape(-1, 4)
    if len(det_bboxes) == 0:
        return None
    det_labels = np.asarray(det_labels).reshape(-1)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    if not len(det_labels) == len(det_scores) == len(det_bboxes):
        raise ValueError(
            f'Detections disagree in length: {len(det_bboxes)} boxes, '
            f'{len(det_labels)} labels, {len(det_scores)} scores.')
    ious = box_iou(gt_box, det_bboxes)
    best = int(np.argmax(ious))
    if ious[best] <= iou_thr:
        return None
    return FrameVote(
        chunk=int(det_labels[best]),
        score=float(det_scores[best]),
        iou=float(ious[best]))


def vote_subject_chunk(votes: Sequence[Optional[FrameVote]],
                       min_score: float = 0.4) -> Optional[int]:
    """Majority vote of the per-frame matches.

    Only real matches vote (None = the frame abstains; the official code
    counted "no match" as a vote). The chunk with most votes wins; ties go
    to the chunk voted for first in frame order (like the
    official ``max(votes, key=votes.count)``). The winner is rejected if
    the best score among its votes is below ``min_score`` (official rule).

    Args:
        votes (Sequence[FrameVote | None]): One entry per frame.
        min_score (float): Minimum best score of the winning chunk.
            Defaults to 0.4.

    Returns:
        int or None: The index of the subject chunk, or None when no frame
        matched or the winner's best score is too low (use the parser
        fallback).

    Examples:
        >>> v = [None, FrameVote(1, .9, .8), None, FrameVote(1, .5, .6), None]
        >>> vote_subject_chunk(v)
        1
    """
    counts: Dict[int, int] = {}
    best_score: Dict[int, float] = {}
    for vote in votes:
        if vote is None:
            continue
        counts[vote.chunk] = counts.get(vote.chunk, 0) + 1
        best_score[vote.chunk] = max(
            best_score.get(vote.chunk, -np.inf), vote.score)
    if not counts:
        return None
    # dicts keep insertion order: max() returns the first-voted chunk on
    # ties
    winner = max(counts, key=counts.__getitem__)
    if best_score[winner] < min_score:
        return None
    return winner


def select_subject_span(text: str,
                        chunk_spans: Sequence[Span],
                        votes: Sequence[Optional[FrameVote]],
                        min_score: float = 0.4) -> Tuple[Span, str]:
    """Turn the frame votes into a subject span.

    Args:
        text (str): The caption.
        chunk_spans (Sequence[tuple[int, int]]): Its noun chunks.
        votes (Sequence[FrameVote | None]): Per-frame matches.
        min_score (float): See :func:`vote_subject_chunk`.

    Returns:
        tuple: ``(span, source)``: the span of the voted chunk and
        ``'teacher'``, or the parser fallback (first chunk, whole sentence
        without chunks) and ``'parser'``.

    Raises:
        ValueError: A vote names a chunk index outside ``chunk_spans``.
    """
    winner = vote_subject_chunk(votes, min_score)
    if winner is not None:
        if not 0 <= winner < len(chunk_spans):
            raise ValueError(
                f'The teacher voted for chunk {winner} of {text!r}, which has '
                f'{len(chunk_spans)} noun chunks.')
        start, end = chunk_spans[winner]
        return (int(start), int(end)), 'teacher'
    if chunk_spans:
        return (int(chunk_spans[0][0]), int(chunk_spans[0][1])), 'parser'
    return (0, len(text)), 'parser'


class GLIPTeacher:
    """mmdet GLIP as the subject teacher (the official code uses GLIP-L).

    Runs :class:`mmdet.apis.DetInferencer` on frame paths with the whole
    caption as the text prompt and the noun chunks as ``tokens_positive``
    (one entity per chunk, character spans), so the returned ``labels`` are
    chunk indices. Predictions are in the pixels of the input frame
    (``rescale=True``).

    Args:
        config (str): mmdet GLIP config file (e.g.
            ``glip_atss_swin-l_fpn_dyhead_pretrain_mixeddata.py``).
        checkpoint (str): Its checkpoint.
        device (str, optional): Device, e.g. ``'cuda:0'``.
            Defaults to None (mmdet's choice).
        batch_size (int): Frames per forward pass. Defaults to 1.
        score_thr (float): Detections below this score are dropped (the
            official ``select_boxes`` threshold). Defaults to 0.1.
    """

    def __init__(self,
                 config: str,
                 checkpoint: str,
                 device: Optional[str] = None,
                 batch_size: int = 1,
                 score_thr: float = 0.1) -> None:
        from mmdet.apis import DetInferencer
        from mmengine.config import Config
        from mmengine.registry import DefaultScope
        if not osp.isfile(config):
            raise FileNotFoundError(f'Teacher config {config!r} does not '
                                    'exist.')
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'Teacher checkpoint {checkpoint!r} '
                                    'does not exist.')
        cfg = Config.fromfile(config)
        # keep ``tokens_positive`` so that GLIP grounds our chunk spans
        # instead of re-running its own noun-phrase extraction
        pack = cfg.test_dataloader.dataset.pipeline[-1]
        meta_keys = tuple(pack.get('meta_keys', ()))
        if meta_keys and 'tokens_positive' not in meta_keys:
            pack['meta_keys'] = meta_keys + ('tokens_positive', )
        # DetInferencer switches the global default scope to 'mmdet';
        # restore the caller's scope afterwards
        with DefaultScope.overwrite_default_scope('mmdet'):
            self.inferencer = DetInferencer(
                model=cfg,
                weights=checkpoint,
                device=device,
                show_progress=False)
        self.batch_size = batch_size
        self.score_thr = score_thr

    def predict(self, img_paths: Sequence[str], text: str,
                chunk_spans: Sequence[Span]) -> List[Dict[str, np.ndarray]]:
        """See :meth:`SubjectTeacher.predict`."""
        from mmengine.registry import DefaultScope
        tokens_positive = [[[int(s), int(e)]] for s, e in chunk_spans]
        with DefaultScope.overwrite_default_scope('mmdet'):
            out = self.inferencer(
                list(img_paths),
                texts=text,
                tokens_positive=tokens_positive,
                batch_size=self.batch_size,
                return_datasamples=True)
        results = []
        for sample in out['predictions']:
            pred = sample.pred_instances
            keep = (pred.scores >= self.score_thr).cpu().numpy()
            results.append(
                dict(
                    bboxes=pred.bboxes.cpu().numpy()[keep],
                    scores=pred.scores.cpu().numpy()[keep],
                    labels=pred.labels.cpu().numpy()[keep]))
        return results


def _uniform_subset(items: Sequence, max_items: Optional[int]) -> list:
    """At most ``max_items`` items spread uniformly (all if None)."""
    if max_items is None or len(items) <= max_items:
        return list(items)
    inds = np.linspace(0, len(items) - 1, max_items).round().astype(int)
    return [items[i] for i in sorted(set(inds.tolist()))]


# ----------------------------------------------------------------------
# dataset layouts
# ----------------------------------------------------------------------
#: The datasets the label tool reads: those the paper configs train on.
LABEL_DATASETS = ('ref-youtube-vos', 'mevis', 'a2d', 'refcoco')
#: The RefCOCO family, each in ``<name>/instances_<name>_<split>.json``.
REFCOCO_NAMES = ('refcoco', 'refcoco+', 'refcocog')
_SPLIT_DATASETS = {
    'ref-youtube-vos': RefYouTubeVOSDataset,
    'mevis': MeViSDataset,
    'a2d': A2DSentencesDataset,
}


def _check_dataset(dataset: str) -> str:
    """Return ``dataset`` if it is one of :data:`LABEL_DATASETS`."""
    if dataset not in LABEL_DATASETS:
        raise ValueError(f'Unknown dataset {dataset!r}; choose one of '
                         f'{list(LABEL_DATASETS)}.')
    return dataset


def _layout_files(dataset: str, split: str) -> List[str]:
    """Files (relative to the data root) that the layout of ``dataset``
    has for ``split``: any of them identifies it."""
    if dataset == 'refcoco':
        return [
            f'{name}/instances_{name}_{split}.json' for name in REFCOCO_NAMES
        ]
    splits = _SPLIT_DATASETS[dataset].SPLIT_DEFAULTS
    return [splits[split]['ann_file']] if split in splits else []


def detect_dataset(data_root: str, split: str = 'train') -> str:
    """Tell the dataset of ``data_root`` from its layout.

    Ref-YouTube-VOS has ``meta_expressions/<split>/meta_expressions.json``,
    MeViS ``<split>/meta_expressions.json``, A2D-Sentences
    ``a2d_sentences_single_frame_<split>_annotations.json`` (the sample
    list of ``tools/dataset_converters/a2d_sentences_to_json.py``) and the
    RefCOCO family (``data/coco``)
    ``<name>/instances_<name>_<split>.json`` for a name of
    :data:`REFCOCO_NAMES`.

    Args:
        data_root (str): The dataset root.
        split (str): The split. Defaults to 'train'.

    Returns:
        str: One of :data:`LABEL_DATASETS`.

    Raises:
        ValueError: No layout or several layouts match.
    """
    found = [
        name for name in LABEL_DATASETS if any(
            osp.isfile(osp.join(data_root, f))
            for f in _layout_files(name, split))
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        looked = sorted(
            {f
             for name in LABEL_DATASETS
             for f in _layout_files(name, split)})
        raise ValueError(
            f'Cannot tell the dataset of {data_root!r} for split {split!r}: '
            f'none of {looked} exists there; name the dataset (one of '
            f'{list(LABEL_DATASETS)}).')
    raise ValueError(f'{data_root!r} holds the layouts of several datasets '
                     f'({found}) for split {split!r}; name the dataset.')


def default_ann_files(dataset: str,
                      data_root: str,
                      split: str = 'train') -> List[str]:
    """The annotation files of a split that the paper configs read.

    Args:
        dataset (str): One of :data:`LABEL_DATASETS`.
        data_root (str): The dataset root.
        split (str): The split. Defaults to 'train'.

    Returns:
        list[str]: Paths relative to ``data_root``: the split's file of the
        dataset class (``ref-youtube-vos``, ``mevis``, ``a2d``), or those of
        ``refcoco/``, ``refcoco+/`` and ``refcocog/`` that exist
        (``refcoco``, each labelled into its own file).

    Raises:
        ValueError: An unknown dataset or split.
        FileNotFoundError: ``refcoco`` without any of its files.
    """
    _check_dataset(dataset)
    if dataset != 'refcoco':
        splits = _SPLIT_DATASETS[dataset].SPLIT_DEFAULTS
        if split not in splits:
            raise ValueError(f'Unknown {dataset} split {split!r}; choose one '
                             f'of {sorted(splits)}.')
        return [splits[split]['ann_file']]
    files = [
        f for f in _layout_files(dataset, split)
        if osp.isfile(osp.join(data_root, f))
    ]
    if not files:
        raise FileNotFoundError(
            f'No RefCOCO annotation file of split {split!r} in '
            f'{data_root!r} (looked for {_layout_files(dataset, split)}); '
            'convert the refer-toolkit release with '
            'tools/dataset_converters/refcoco_to_coco.py.')
    return files


def subject_label_path(dataset: str, data_root: str, ann_file: str) -> str:
    """Where the dataset class reads the subject labels of ``ann_file``
    (its ``subject_label_file='auto'``).

    Args:
        dataset (str): One of :data:`LABEL_DATASETS`.
        data_root (str): The dataset root.
        ann_file (str): The annotation file, relative to ``data_root``.

    Returns:
        str: ``subject_labels.json`` beside the expression file or sample
        list (video datasets, see :class:`BaseRVOSDataset`), or
        ``<ann_file stem>_subject_labels.json`` (RefCOCO, see
        :meth:`RefCOCODataset.default_subject_label_file`).
    """
    ann_path = osp.join(data_root, ann_file)
    if _check_dataset(dataset) == 'refcoco':
        return RefCOCODataset.default_subject_label_file(ann_path)
    return osp.join(osp.dirname(ann_path), 'subject_labels.json')


def build_label_dataset(dataset: str,
                        data_root: str,
                        split: str = 'train',
                        ann_file: Optional[str] = None,
                        img_suffix: str = '.jpg',
                        ann_suffix: str = '.png') -> BaseDataset:
    """The dataset class that reads the labels, built to enumerate the
    expressions once, with the keys it uses.

    One data info per expression (``sample_mode='video'`` for the video
    datasets), without stored labels, pipeline or ``meta.json``.

    Args:
        dataset (str): One of :data:`LABEL_DATASETS`.
        data_root (str): The dataset root.
        split (str): The split (fills the file layout of the video
            datasets). Defaults to 'train'.
        ann_file (str, optional): The annotation file relative to
            ``data_root``; None for the split's file (required for
            ``refcoco``). Defaults to None.
        img_suffix (str): Frame suffix of the video datasets.
            Defaults to '.jpg'.
        ann_suffix (str): Mask suffix of Ref-YouTube-VOS.
            Defaults to '.png'.

    Returns:
        BaseDataset: The dataset, loaded.

    Raises:
        ValueError: An unknown dataset, ``refcoco`` without ``ann_file``,
            or what the dataset class raises on its files.
    """
    kwargs = dict(
        data_root=data_root,
        pipeline=[],
        subject_label_file=None,
        serialize_data=False)
    if ann_file is not None:
        kwargs['ann_file'] = ann_file
    if _check_dataset(dataset) == 'refcoco':
        if ann_file is None:
            raise ValueError('RefCOCO labels need the annotation file, one of '
                             f'{_layout_files(dataset, split)}.')
    else:
        kwargs.update(split=split, img_suffix=img_suffix)
        if dataset == 'ref-youtube-vos':
            kwargs.update(
                meta_file=None, sample_mode='video', ann_suffix=ann_suffix)
        elif dataset == 'mevis':
            kwargs.update(sample_mode='video')
    # the class's INFO summary ("no subject label file...") would describe
    # this labelling copy, not the training one
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        if dataset == 'refcoco':
            return RefCOCODataset(**kwargs)
        return _SPLIT_DATASETS[dataset](**kwargs)
    finally:
        logger.setLevel(level)


# ----------------------------------------------------------------------
# ground-truth boxes of the referred object
# ----------------------------------------------------------------------
class ReferentFrame(NamedTuple):
    """A frame showing the referred object.

    Attributes:
        img_path (str): The frame.
        box (np.ndarray): (4,) xyxy box of the object in its pixels.
        size (tuple[int, int]): (h, w) of the annotation the box comes
            from, which must be that of the frame.
    """
    img_path: str
    box: np.ndarray
    size: Tuple[int, int]


def mask_box(mask: np.ndarray) -> Optional[np.ndarray]:
    """Tight xyxy box of a binary mask (pixel-edge convention: ``x2`` is
    the last column + 1), or None if the mask is empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array(
        [xs.min(), ys.min(), xs.max() + 1,
         ys.max() + 1], dtype=np.float64)


def _hull(boxes: Sequence[np.ndarray]) -> np.ndarray:
    """The enclosing xyxy box of boxes (that of the union of their
    objects)."""
    stack = np.stack(boxes).reshape(-1, 4)
    return np.concatenate([stack[:, :2].min(0), stack[:, 2:].max(0)])


class ReferentFrames:
    """The frames of a data info where its referred object is visible,
    with the object's box, for the teacher's votes.

    - ``ref-youtube-vos``: the frames whose palette PNG holds ``obj_id``;
    - ``mevis``: the frames where the union of the masks of the
      expression's ``anno_ids`` in ``mask_dict.json`` is not empty (none
      for a no-target expression);
    - ``a2d``: the annotated frame, with the mask of instance ``obj_id``
      in its ``.h5`` file;
    - ``refcoco``: the image, with the enclosing box of the expression's
      (clipped) COCO boxes.

    The annotation files of the current video are cached (expressions of
    one video share them).

    Args:
        dataset (str): One of :data:`LABEL_DATASETS`.
    """

    def __init__(self, dataset: str) -> None:
        self.dataset = _check_dataset(dataset)
        self._video: Optional[str] = None
        # annotations of the current video: id maps, boxes, mask files
        self._cache: Dict[Any, Any] = {}

    def __call__(self, info: dict, where: str) -> List[ReferentFrame]:
        """The frames of one data info of the dataset class.

        Args:
            info (dict): The data info.
            where (str): Names the expression in errors.

        Returns:
            list[ReferentFrame]: In frame order.

        Raises:
            FileNotFoundError: A missing mask file or annotation folder.
            ValueError: No usable referent (object id, mask file, instance)
                or a malformed mask.
        """
        if info['video_id'] != self._video:
            self._video = info['video_id']
            self._cache.clear()
        read = getattr(self, '_' + self.dataset.replace('-', '_'))
        return read(info, where)

    def _ref_youtube_vos(self, info: dict, where: str) -> List[ReferentFrame]:
        obj_id = info['obj_id']
        if obj_id < 0:
            raise ValueError(f'{where} has no obj_id; the teacher needs the '
                             'referred object.')
        if info['ann_dir'] is None:
            raise FileNotFoundError(f'{where}: the split has no annotation '
                                    'folder; the teacher needs the masks.')
        frames = []
        for frame in info['video_frame_ids']:
            ann_path = osp.join(info['ann_dir'], frame + info['ann_suffix'])
            if ann_path not in self._cache:
                self._cache[ann_path] = read_index_png(ann_path)
            ids = self._cache[ann_path]
            box = mask_box(ids == obj_id)
            if box is not None:
                frames.append(
                    ReferentFrame(
                        osp.join(info['img_dir'], frame + info['img_suffix']),
                        box, ids.shape))
        return frames

    def _mevis(self, info: dict, where: str) -> List[ReferentFrame]:
        if info['mask_file'] is None:
            raise ValueError(f'{where}: the split has no mask_dict.json; the '
                             'teacher needs the masks.')
        tracks = load_mask_dict(info['mask_file'])
        frames = []
        for k, frame in enumerate(info['video_frame_ids']):
            boxes, size = [], None
            for anno_id in info['anno_ids']:
                rle = tracks[anno_id][k]
                if rle is None:
                    continue
                if not isinstance(rle, dict) or len(rle.get('size', ())) != 2:
                    raise ValueError(
                        f'{where}: anno_id {anno_id}, frame {frame!r} of '
                        f'{info["mask_file"]!r} is not a COCO RLE.')
                size = tuple(int(s) for s in rle['size'])
                if (anno_id, k) not in self._cache:
                    self._cache[anno_id, k] = mask_box(
                        decode_coco_segmentation(
                            rle, *size, f'{where}, anno_id {anno_id}'))
                if self._cache[anno_id, k] is not None:
                    boxes.append(self._cache[anno_id, k])
            if boxes:
                frames.append(
                    ReferentFrame(
                        osp.join(info['img_dir'], frame + info['img_suffix']),
                        _hull(boxes), size))
        return frames

    def _a2d(self, info: dict, where: str) -> List[ReferentFrame]:
        if info.get('mask_format') != A2D_H5:
            raise ValueError(f'{where}: mask format '
                             f'{info.get("mask_format")!r} is not A2D '
                             f'{A2D_H5!r}.')
        path = info['mask_file']
        if path not in self._cache:
            self._cache[path] = load_a2d_instance_masks(path)
        masks, ids = self._cache[path]
        if info['obj_id'] not in ids:
            raise ValueError(f'{where}: instance {info["obj_id"]} is not in '
                             f'A2D mask annotation {path!r} (instances: '
                             f'{ids}).')
        mask = masks[ids.index(info['obj_id'])]
        box = mask_box(mask)
        if box is None:
            return []
        frame = info['annotated_frame_id'] + info['img_suffix']
        return [
            ReferentFrame(osp.join(info['img_dir'], frame), box, mask.shape)
        ]

    def _refcoco(self, info: dict, where: str) -> List[ReferentFrame]:
        boxes = [
            np.asarray(ann['bbox'], dtype=np.float64)
            for ann in info['gt_anns']
        ]
        return [
            ReferentFrame(info['img_path'][0], _hull(boxes),
                          (info['height'], info['width']))
        ]


def _check_frames(frames: Sequence[ReferentFrame], where: str) -> None:
    """Check that the frames exist and have the size of their masks."""
    for frame in frames:
        try:
            with Image.open(frame.img_path) as img:
                size = (img.height, img.width)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'Frame {frame.img_path!r} of {where} does not exist.') from e
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f'Cannot read frame {frame.img_path!r} of '
                             f'{where}: {e}') from e
        if size != tuple(frame.size):
            raise ValueError(
                f'Frame {frame.img_path!r} of {where} has size {size} but '
                f'its annotation has size {tuple(frame.size)}.')


# ----------------------------------------------------------------------
# labelling
# ----------------------------------------------------------------------
def generate_subject_labels(
        data_root: str,
        split: str = 'train',
        teacher: Optional[SubjectTeacher] = None,
        iou_thr: float = 0.4,
        min_score: float = 0.4,
        max_frames: Optional[int] = None,
        spacy_model: Optional[str] = None,
        img_suffix: str = '.jpg',
        ann_suffix: str = '.png',
        dataset: str = 'auto',
        ann_file: Optional[str] = None
) -> Tuple[Dict[str, Dict[str, list]], dict]:
    """Compute the subject labels of the expressions of a dataset.

    The expressions, their keys and cleaned captions are those of the
    dataset class that reads the labels (:func:`build_label_dataset`):
    ``video_id`` / ``exp_id`` are the video and the expression id
    (Ref-YouTube-VOS, MeViS), the video and ``'<frame:05d>_<instance>'``
    (A2D-Sentences), or the entry id and ``'0'`` (RefCOCO in the
    MDETR format; ``'<image>_<annotation>'`` and the sentence index with
    annotation sentences). With a teacher, the frames showing the referred
    object and its boxes come from :class:`ReferentFrames`. Keys shared by
    expressions with different captions (possible in an A2D sample list)
    get no label: one span could not fit both captions.

    Args:
        data_root (str): Dataset root.
        split (str): Split. Defaults to 'train'.
        teacher (SubjectTeacher, optional): Grounding teacher; None writes
            parser labels. Defaults to None.
        iou_thr (float): See :func:`match_frame`. Defaults to 0.4.
        min_score (float): See :func:`vote_subject_chunk`. Defaults to 0.4.
        max_frames (int, optional): Use at most this many frames per
            expression (spread uniformly over the frames where the object
            is visible); None uses all. Defaults to None.
        spacy_model (str, optional): spaCy pipeline name. Defaults to None.
        img_suffix (str): Frame suffix. Defaults to '.jpg'.
        ann_suffix (str): Ref-YouTube-VOS mask suffix. Defaults to '.png'.
        dataset (str): One of :data:`LABEL_DATASETS`, or ``'auto'`` to
            tell it from the layout (:func:`detect_dataset`).
            Defaults to 'auto'.
        ann_file (str, optional): Annotation file relative to
            ``data_root``; None for the split's file (see
            :func:`default_ann_files`; required for ``refcoco``).
            Defaults to None.

    Returns:
        tuple[dict, dict]: The labels ``{video_id: {exp_id: [start,
        end]}}`` and statistics over the distinct keys
        ``dict(num_expressions, num_teacher, num_parser, num_ambiguous)``.

    Raises:
        FileNotFoundError: Missing annotation file, frame or mask.
        ValueError: Unknown layout or dataset, malformed annotations, an
            expression without a usable referent (teacher mode) or an
            empty caption.
    """
    if dataset == 'auto':
        dataset = detect_dataset(data_root, split)
    data = build_label_dataset(dataset, data_root, split, ann_file, img_suffix,
                               ann_suffix)
    # (video_id, exp_id) -> [(data info index, caption)]
    groups: Dict[Tuple[str, str], List[Tuple[int, str]]] = {}
    for i in range(len(data)):
        info = data.get_data_info(i)
        key = (str(info['video_id']), str(info['exp_id']))
        groups.setdefault(key, []).append((i, info['text']))
    referent_frames = ReferentFrames(dataset)
    labels: Dict[str, Dict[str, list]] = {}
    stats = dict(
        num_expressions=len(groups),
        num_teacher=0,
        num_parser=0,
        num_ambiguous=0)
    for (video_id, exp_id), members in groups.items():
        if len({text for _, text in members}) > 1:
            stats['num_ambiguous'] += 1
            continue
        info = data.get_data_info(members[0][0])
        text = info['text']
        where = (f'video {video_id!r}, expression {exp_id!r} of '
                 f'{data.ann_file!r}')
        chunks = [(int(s), int(e))
                  for s, e in extract_noun_chunks(text, spacy_model)]
        votes: List[Optional[FrameVote]] = []
        if teacher is not None and chunks:
            frames = _uniform_subset(referent_frames(info, where), max_frames)
            _check_frames(frames, where)
            if frames:
                preds = teacher.predict([f.img_path for f in frames], text,
                                        chunks)
                if len(preds) != len(frames):
                    raise ValueError(
                        f'The teacher returned {len(preds)} predictions '
                        f'for {len(frames)} frames of {where}.')
                for frame, pred in zip(frames, preds):
                    votes.append(
                        match_frame(frame.box, pred['bboxes'], pred['labels'],
                                    pred['scores'], iou_thr))
        span, source = select_subject_span(text, chunks, votes, min_score)
        labels.setdefault(video_id, {})[exp_id] = list(span)
        stats['num_' + source] += 1
    return labels, stats


__all__ = [
    'FrameVote', 'SubjectTeacher', 'GLIPTeacher', 'parser_subject_span',
    'box_iou', 'match_frame', 'vote_subject_chunk', 'select_subject_span',
    'LABEL_DATASETS', 'REFCOCO_NAMES', 'detect_dataset', 'default_ann_files',
    'subject_label_path', 'build_label_dataset', 'ReferentFrame',
    'ReferentFrames', 'mask_box', 'generate_subject_labels'
]
