# Copyright (c) OpenMMLab. All rights reserved.
from typing import Optional

from dmformer.registry import METRICS
from .ref_ytvos_metric import RefYTVOSSubmissionMetric


@METRICS.register_module()
class MeViSSubmissionMetric(RefYTVOSSubmissionMetric):
    """Writes a MeViS submission (``valid`` split) and, on a split with
    ground truth (``valid_u``), scores J&F locally.

    The MeViS evaluation server takes the Ref-YouTube-VOS layout:
    ``Annotations/<video>/<exp_id>/<frame>.png`` (0/255), zipped; see
    :class:`RefYTVOSSubmissionMetric` for the writing, the completeness
    check against ``meta_file`` and the atomic zip.

    J and F follow the official MeViS script: the ground truth of an
    expression is the union of the masks of all its objects
    (:class:`~dmformer.datasets.transforms.LoadMeViSAnnotations`), J and F
    of each frame are the DAVIS measures (both masks empty scores 1), an
    expression scores the mean over its frames, and J, F and J&F are means
    over expressions. For local scoring without writing files use
    :class:`RVOSJFMetric` with ``prefix='mevis'``.

    Args:
        **kwargs: Arguments of :class:`RefYTVOSSubmissionMetric`.
    """
    default_prefix: Optional[str] = 'mevis'
    benchmark: str = 'MeViS'
