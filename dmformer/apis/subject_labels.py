# Copyright (c) OpenMMLab. All rights reserved.
"""Subject-phrase labels of referring expressions.

The subject perceptron is supervised with the character span of the noun
chunk that names the referred object. The official code derives it at every
training iteration from a frozen GLIP-L "booster"; here the labels are
computed once, offline, by :func:`generate_subject_labels` (driven by
``tools/misc/gen_subject_labels.py``) and stored as
``meta_expressions/<split>/subject_labels.json`` =
``{video_id: {exp_id: [start_char, end_char]}}`` (spans of the caption
cleaned by :func:`~dmformer.datasets.transforms.text.clean_caption`),
which :class:`~dmformer.datasets.BaseRVOSDataset` reads.

For every expression and every annotated frame where the object is
visible, the teacher grounds the caption's noun chunks; the frame votes for
the chunk of the detection that best overlaps the ground-truth box (IoU >
``iou_thr``); the chunk with most votes wins (:func:`vote_subject_chunk`).
Fixes with respect to the official ``util/glip_labels.py``:

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

Without a teacher (or when no frame matches) the label is the parser
fallback :func:`parser_subject_span`: the first noun chunk, i.e. the chunk
heading the sentence, which is also the official default.
"""
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Protocol, Sequence, Tuple

import numpy as np

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


def generate_subject_labels(
        data_root: str,
        split: str = 'train',
        teacher: Optional[SubjectTeacher] = None,
        iou_thr: float = 0.4,
        min_score: float = 0.4,
        max_frames: Optional[int] = None,
        spacy_model: Optional[str] = None,
        img_suffix: str = '.jpg',
        ann_suffix: str = '.png') -> Tuple[Dict[str, Dict[str, list]], dict]:
    """Compute the subject labels of a dataset in the Ref-YouTube-VOS
    layout.

    Reads ``<data_root>/meta_expressions/<split>/meta_expressions.json``,
    frames from ``<data_root>/<split>/JPEGImages/<video>/<frame><img_suffix>``
    and, with a teacher, the object masks from
    ``<data_root>/<split>/Annotations/<video>/<frame><ann_suffix>``.

    Args:
        data_root (str): Dataset root.
        split (str): Split folder. Defaults to 'train'.
        teacher (SubjectTeacher, optional): Grounding teacher; None writes
            parser labels. Defaults to None.
        iou_thr (float): See :func:`match_frame`. Defaults to 0.4.
        min_score (float): See :func:`vote_subject_chunk`. Defaults to 0.4.
        max_frames (int, optional): Use at most this many frames per
            expression (spread uniformly over the frames where the object
            is visible); None uses all. Defaults to None.
        spacy_model (str, optional): spaCy pipeline name. Defaults to None.
        img_suffix (str): Frame suffix. Defaults to '.jpg'.
        ann_suffix (str): Annotation suffix. Defaults to '.png'.

    Returns:
        tuple[dict, dict]: The labels ``{video: {exp_id: [start, end]}}``
        and statistics ``dict(num_expressions, num_teacher, num_parser)``.

    Raises:
        FileNotFoundError: Missing expression file, frame or mask.
        ValueError: Malformed expression file, an expression without a
            usable ``obj_id`` (teacher mode) or an empty caption.
    """
    from dmformer.datasets.transforms.loading import read_index_png
    from dmformer.datasets.transforms.text import clean_caption

    exp_file = osp.join(data_root, 'meta_expressions', split,
                        'meta_expressions.json')
    if not osp.isfile(exp_file):
        raise FileNotFoundError(f'Expression file {exp_file!r} does not '
                                'exist.')
    with open(exp_file) as f:
        try:
            videos = json.load(f).get('videos')
        except (ValueError, AttributeError) as e:
            raise ValueError(f'{exp_file!r} is not a JSON object: {e}') from e
    if not isinstance(videos, dict):
        raise ValueError(f'{exp_file!r} must hold a dict under "videos".')

    labels: Dict[str, Dict[str, list]] = {}
    stats = dict(num_expressions=0, num_teacher=0, num_parser=0)
    for video_id in sorted(videos):
        video = videos[video_id]
        if not isinstance(video, dict) or not isinstance(
                video.get('expressions'), dict):
            raise ValueError(f'Video {video_id!r} of {exp_file!r} has no '
                             '"expressions" dict.')
        frames = sorted(str(f) for f in video.get('frames', []))
        id_maps: Dict[str, np.ndarray] = {}  # lazily read masks
        for exp_id, exp in video['expressions'].items():
            where = f'video {video_id!r}, expression {exp_id!r}'
            if not isinstance(exp, dict) or 'exp' not in exp:
                raise ValueError(f'{where} of {exp_file!r} has no "exp".')
            text = clean_caption(exp['exp'], where)
            chunks = [(int(s), int(e))
                      for s, e in extract_noun_chunks(text, spacy_model)]
            votes: List[Optional[FrameVote]] = []
            if teacher is not None and chunks:
                try:
                    obj_id = int(exp.get('obj_id'))
                except (TypeError, ValueError) as e:
                    raise ValueError(f'{where} has no integer obj_id '
                                     f'({exp.get("obj_id")!r}).') from e
                visible = []  # (frame path, GT box in its pixels)
                for frame in frames:
                    if frame not in id_maps:
                        id_maps[frame] = read_index_png(
                            osp.join(data_root, split, 'Annotations', video_id,
                                     frame + ann_suffix))
                    ys, xs = np.nonzero(id_maps[frame] == obj_id)
                    if len(xs) == 0:
                        continue
                    box = np.array(
                        [xs.min(),
                         ys.min(),
                         xs.max() + 1,
                         ys.max() + 1],
                        dtype=np.float64)
                    img_path = osp.join(data_root, split, 'JPEGImages',
                                        video_id, frame + img_suffix)
                    if not osp.isfile(img_path):
                        raise FileNotFoundError(
                            f'Frame {img_path!r} of {where} does not exist.')
                    visible.append((img_path, box))
                visible = _uniform_subset(visible, max_frames)
                if visible:
                    preds = teacher.predict([p for p, _ in visible], text,
                                            chunks)
                    if len(preds) != len(visible):
                        raise ValueError(
                            f'The teacher returned {len(preds)} predictions '
                            f'for {len(visible)} frames of {where}.')
                    for (_, box), pred in zip(visible, preds):
                        votes.append(
                            match_frame(box, pred['bboxes'], pred['labels'],
                                        pred['scores'], iou_thr))
            span, source = select_subject_span(text, chunks, votes, min_score)
            labels.setdefault(video_id, {})[str(exp_id)] = list(span)
            stats['num_expressions'] += 1
            stats['num_' + source] += 1
    return labels, stats


__all__ = [
    'FrameVote', 'SubjectTeacher', 'GLIPTeacher', 'parser_subject_span',
    'box_iou', 'match_frame', 'vote_subject_chunk', 'select_subject_span',
    'generate_subject_labels'
]
