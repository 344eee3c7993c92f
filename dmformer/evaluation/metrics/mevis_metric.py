# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from dmformer.registry import METRICS
from .ref_ytvos_metric import RefYTVOSSubmissionMetric


@METRICS.register_module()
class MeViSSubmissionMetric(RefYTVOSSubmissionMetric):
    """Writes a MeViS submission (``valid`` split) and, on a split with
    ground truth (``valid_u``), scores J&F locally.

    The PNGs (0/255, one per listed frame, at the frame's original size)
    are written to ``<outfile_prefix>/Annotations/<video>/<exp_id>/
    <frame>.png`` as for Ref-YouTube-VOS, but the archive holds the video
    folders at its root, ``<video>/<exp_id>/<frame>.png``: the layout of
    the organisers' ``sample_submission_valid.zip`` (made with ``cd output
    && zip -r ../submission.zip *``) that the MeViS server (CodaLab
    competition 15094) reads. See :class:`RefYTVOSSubmissionMetric` for the
    writing, the expected set of ``meta_file`` (every (video, expression,
    listed frame), checked before zipping) and the atomic zip.

    J and F follow the organisers' MeViS script: the ground truth of an
    expression is the union of the masks of all its objects
    (:class:`~dmformer.datasets.transforms.LoadMeViSAnnotations`), empty in
    every frame for an expression that refers to no object; J and F of
    each frame are the DAVIS measures (both masks empty scores J = F = 1, a
    non-empty prediction against an empty target J = F = 0); an expression
    scores the mean over all its frames, and J, F are means over
    expressions, J&F = (J + F) / 2. For local scoring without writing files
    use :class:`RVOSJFMetric` with ``prefix='mevis'``.

    Args:
        **kwargs: Arguments of :class:`RefYTVOSSubmissionMetric`.
    """
    default_prefix: Optional[str] = 'mevis'
    benchmark: str = 'MeViS'
    zip_root: str = ''
