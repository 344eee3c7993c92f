# Copyright (c) OpenMMLab. All rights reserved.
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from dmformer.registry import METRICS
from .utils import (get_field, get_frame_ids, get_masks, sample_name,
                    score_masks, summarize_jf)


@METRICS.register_module()
class RVOSJFMetric(BaseMetric):
    """Region (J) and boundary (F) similarity of referring video object
    segmentation, scored per expression.

    For every (video, expression) the predicted masks
    (``pred_instances.masks``, bool (T, H, W) at ``ori_shape``) are compared
    with ``gt_instances.masks`` on all frames with the DAVIS-2017 measures
    (:func:`~dmformer.evaluation.functional.db_eval_iou` and
    :func:`~dmformer.evaluation.functional.db_eval_boundary`, so frames where
    both masks are empty score 1). The score of an expression is the mean
    over its frames and the reported J, F and J&F are means over
    expressions, as in the MeViS / Ref-YouTube-VOS protocol. Clips of the
    same expression evaluated separately are merged by ``frame_ids``.

    Args:
        collect_device (str): Device used to collect results across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the metric names. Defaults to
            ``'rvos'``.
        collect_dir (str, optional): Folder used by ``collect_results`` with
            ``collect_device='cpu'``.
        log_per_video (bool): Log a per-video table. Defaults to True.
        per_expression_file (str, optional): If given, also write the
            per-expression scores (fractions) to this JSON file as
            ``{video_id: {exp_id: {"J": .., "F": .., "JF": ..}}}``, e.g. to
            score a subset of expressions afterwards. Defaults to None.
        swap_pairs_file (str, optional): A ``swap_pairs.json`` of the
            synthetic data (``{"pairs": [[[video, exp], [video, exp]], ...]}``:
            two expressions with the same words and different referents).
            If given, also report ``swap_J&F`` (J&F over the expressions of
            the pairs), ``swap_pairs_solved`` (pairs whose two expressions
            both reach J > 0.5) and ``num_swap_pairs``. Defaults to None.
        subject_label_file (str, optional): A ``subject_labels.json``
            (``{video: {exp: [start, end]}}``, character span of the
            subject phrase). If given, also report ``subject_acc``: the
            percentage of labelled expressions whose chosen subject
            (``pred_subject``, set by a model with a subject perceptron) is
            exactly the labelled phrase, and ``num_subject_labels``.
            Defaults to None.
    """
    default_prefix: Optional[str] = 'rvos'

    def __init__(self,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None,
                 log_per_video: bool = True,
                 per_expression_file: Optional[str] = None,
                 swap_pairs_file: Optional[str] = None,
                 subject_label_file: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        self.log_per_video = log_per_video
        self.per_expression_file = per_expression_file
        self.swap_pairs_file = swap_pairs_file
        self.subject_label_file = subject_label_file
        check_label_files(swap_pairs_file=swap_pairs_file,
                          subject_label_file=subject_label_file)

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Score the samples of one batch and store per-frame J and F.

        Args:
            data_batch (dict): Unused.
            data_samples (Sequence[dict | RVOSDataSample]): Samples with
                ``pred_instances.masks``, ``gt_instances.masks`` and
                metainfo ``video_id``, ``exp_id`` and (optional)
                ``frame_ids``.
        """
        for sample in data_samples:
            pred = get_masks(sample, 'pred_instances')
            gt = get_masks(sample, 'gt_instances')
            if pred is None:
                raise ValueError(
                    f'{sample_name(sample)} has no pred_instances.masks')
            if gt is None:
                raise ValueError(
                    f'{sample_name(sample)} has no gt_instances.masks')
            frame_ids = get_frame_ids(sample, pred.shape[0])
            record = dict(
                video_id=str(get_field(sample, 'video_id')),
                exp_id=str(get_field(sample, 'exp_id')),
                frame_ids=frame_ids,
                text=get_field(sample, 'text', None),
                pred_subject=get_field(sample, 'pred_subject', None))
            record.update(score_masks(sample, pred, gt))
            self.results.append(record)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Merge the records into expression scores.

        Returns:
            dict: ``J``, ``F``, ``J&F`` (in percent, means over
            expressions) and ``num_expressions``.
        """
        summary = summarize_jf(results)
        if self.log_per_video:
            _log_per_video(summary)
        if self.per_expression_file is not None:
            _dump_per_expression(summary, self.per_expression_file)
        metrics = {
            'J': summary['J'] * 100,
            'F': summary['F'] * 100,
            'J&F': summary['JF'] * 100,
            'num_expressions': len(summary['per_exp'])
        }
        if self.swap_pairs_file is not None:
            metrics.update(
                score_swap_pairs(summary['per_exp'], self.swap_pairs_file))
        if self.subject_label_file is not None:
            metrics.update(score_subjects(results, self.subject_label_file))
        return metrics


def check_label_files(**files: Optional[str]) -> None:
    """Fail when the metric is built, not after a training run's first
    epoch, if an optional label file is missing.

    Raises:
        FileNotFoundError: Names the argument and the path.
    """
    for name, path in files.items():
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f'{name} not found: {path}')


def score_swap_pairs(per_exp: Dict[Tuple[str, str], dict],
                     swap_pairs_file: str) -> Dict[str, float]:
    """Scores of the swap pairs of the synthetic data.

    Args:
        per_exp (dict): ``(video_id, exp_id)`` -> scores with ``J`` and
            ``JF`` (fractions), as in :func:`summarize_jf`.
        swap_pairs_file (str): ``swap_pairs.json`` with ``{"pairs":
            [[[video, exp], [video, exp]], ...]}``.

    Returns:
        dict: ``swap_J&F`` (percent, mean over the expressions of the
        pairs), ``swap_pairs_solved`` (pairs whose two expressions both
        reach J > 0.5) and ``num_swap_pairs``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is malformed, or an expression of a pair was
            not scored (named).
    """
    check_label_files(swap_pairs_file=swap_pairs_file)
    try:
        with open(swap_pairs_file) as f:
            pairs = [[(str(v), str(e)) for v, e in pair]
                     for pair in json.load(f)['pairs']]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{swap_pairs_file}: not a swap_pairs.json '
                         f'({e!r})') from e
    jf, solved = [], 0
    for pair in pairs:
        for key in pair:
            if key not in per_exp:
                raise ValueError(f'{swap_pairs_file}: expression {key} of a '
                                 'swap pair was not evaluated')
        jf += [per_exp[key]['JF'] for key in pair]
        solved += all(per_exp[key]['J'] > 0.5 for key in pair)
    return {
        'swap_J&F': 100 * sum(jf) / max(len(jf), 1),
        'swap_pairs_solved': solved,
        'num_swap_pairs': len(pairs)
    }


def _dump_per_expression(summary: dict, path: str) -> None:
    """Write ``{video: {exp: {J, F, JF}}}`` atomically to ``path``."""
    table: Dict[str, Dict[str, dict]] = {}
    for (video_id, exp_id), scores in summary['per_exp'].items():
        table.setdefault(video_id, {})[exp_id] = {
            k: float(scores[k])
            for k in ('J', 'F', 'JF')
        }
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(table, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _log_per_video(summary: dict) -> None:
    """Log a per-video J / F / J&F table (percent)."""
    lines = [f"{'video':<24} {'#exp':>5} {'J':>7} {'F':>7} {'J&F':>7}"]
    for vid, s in summary['per_video'].items():
        lines.append(f"{vid:<24} {s['num_exps']:>5} {s['J'] * 100:7.2f} "
                     f"{s['F'] * 100:7.2f} {s['JF'] * 100:7.2f}")
    lines.append(f"{'mean over expressions':<24} "
                 f"{len(summary['per_exp']):>5} {summary['J'] * 100:7.2f} "
                 f"{summary['F'] * 100:7.2f} {summary['JF'] * 100:7.2f}")
    MMLogger.get_current_instance().info('Per-video J&F:\n' +
                                         '\n'.join(lines))


def score_subjects(results: Sequence[dict],
                   subject_label_file: str) -> Dict[str, float]:
    """Accuracy of the subject phrases chosen by the subject perceptron.

    Args:
        results (Sequence[dict]): Records with ``video_id``, ``exp_id``,
            ``text`` and ``pred_subject`` (the chosen phrase; None or empty
            when nothing was chosen). Clips of the same expression share
            the choice, so duplicates count once.
        subject_label_file (str): ``subject_labels.json`` with ``{video:
            {exp: [start, end]}}`` character spans into the expression.

    Returns:
        dict: ``subject_acc`` (percent of labelled, evaluated expressions
        whose chosen phrase equals the labelled one, surrounding spaces
        ignored) and ``num_subject_labels``.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is malformed, or a record has no text.
    """
    check_label_files(subject_label_file=subject_label_file)
    try:
        with open(subject_label_file) as f:
            labels = {(str(v), str(e)): (int(span[0]), int(span[1]))
                      for v, exps in json.load(f).items()
                      for e, span in exps.items()}
    except (ValueError, KeyError, TypeError, AttributeError,
            IndexError) as e:
        raise ValueError(f'{subject_label_file}: not a subject_labels.json '
                         f'({e!r})') from e
    chosen: Dict[Tuple[str, str], bool] = {}
    for rec in results:
        key = (rec['video_id'], rec['exp_id'])
        if key not in labels or key in chosen:
            continue
        text = rec.get('text')
        if not isinstance(text, str):
            raise ValueError(f'expression {key} has no text to compare '
                             f'with {subject_label_file}')
        start, end = labels[key]
        pred = rec.get('pred_subject') or ''
        chosen[key] = pred.strip() == text[start:end].strip()
    return {
        'subject_acc': 100 * sum(chosen.values()) / max(len(chosen), 1),
        'num_subject_labels': len(chosen)
    }
