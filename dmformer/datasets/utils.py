# Copyright (c) OpenMMLab. All rights reserved.
"""Helpers shared by the datasets (video and RefCOCO): annotation files and
the skipping of unreadable training samples."""
import logging
from typing import Any, List, Optional

from mmengine import fileio
from mmengine.logging import print_log


def load_json(path: str,
              what: str,
              backend_args: Optional[dict] = None) -> Any:
    """Load a JSON file, naming it in errors.

    Args:
        path (str): The file.
        what (str): What the file is, for messages (e.g. ``'Meta file'``).
        backend_args (dict, optional): File backend arguments.

    Returns:
        The parsed content.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not valid JSON.
    """
    if not fileio.exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'{what} {path!r} does not exist.')
    try:
        return fileio.load(path, file_format='json', backend_args=backend_args)
    except ValueError as e:
        raise ValueError(f'{what} {path!r} is not valid JSON: {e}') from e


def check_subject_span(span: Any, text: str, where: str,
                       path: Optional[str]) -> List[int]:
    """Validate a stored subject label against its caption.

    Args:
        span: The stored label; must be ``[start, end)`` ints within the
            caption.
        text (str): The (cleaned) caption.
        where (str): Names the sample in errors.
        path (str, optional): The subject label file, for errors.

    Returns:
        list[int]: ``[start, end]``.

    Raises:
        ValueError: Not a character span of the caption.
    """
    ok = isinstance(span, (list, tuple)) and len(span) == 2 and all(
        isinstance(v, int) for v in span)
    if not ok or not 0 <= span[0] < span[1] <= len(text):
        raise ValueError(
            f'Subject label {span!r} of {where} in {path!r} is not a '
            f'character span [start, end) of its caption {text!r}.')
    return [int(span[0]), int(span[1])]


class SkipBadSamplesMixin:
    """Skip training samples whose files cannot be read, up to a share.

    One unreadable or truncated frame or annotation deep inside a large
    training set should not end a run hours in, but a broken dataset
    should still fail early. Mixed into an MMEngine
    :class:`~mmengine.dataset.BaseDataset` (before it in the bases), it
    wraps :meth:`prepare_data` outside ``test_mode``: a sample whose
    pipeline raises ``OSError`` or ``ValueError`` (a missing, unreadable
    or corrupt file, a mask of another size than its frame: the loaders'
    one-line errors, which name the file) is skipped with a warning that
    gives the error and the count so far, and ``None`` is returned, so that
    ``BaseDataset.__getitem__`` draws another sample (its refetch loop).
    When more than ``max_bad_sample_ratio`` of the dataset's samples
    (rounded down) have failed in this process (each DataLoader worker
    counts its own), the error is raised again, with the count, to stop
    the run; a ratio of 0 (or a dataset too small for one allowed failure)
    raises the first error as it is. Evaluation (``test_mode``) never
    skips: every sample must be scored.

    The subclass calls :meth:`_init_bad_samples` in its ``__init__``.
    """

    def _init_bad_samples(self, max_bad_sample_ratio: float) -> None:
        """Set the share of samples that may fail before the run stops.

        Raises:
            ValueError: A ratio outside [0, 1].
        """
        if not 0 <= max_bad_sample_ratio <= 1:
            raise ValueError('max_bad_sample_ratio must be in [0, 1], got '
                             f'{max_bad_sample_ratio}')
        self.max_bad_sample_ratio = max_bad_sample_ratio
        self._num_bad_samples = 0

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output for sample ``idx``; None (another sample
        is drawn) if its files cannot be read during training.

        Raises:
            OSError, ValueError: In ``test_mode``, or when more than the
                allowed share of samples failed.
        """
        if self.test_mode:
            return super().prepare_data(idx)
        try:
            return super().prepare_data(idx)
        except (OSError, ValueError) as error:
            self._num_bad_samples += 1
            allowed = int(self.max_bad_sample_ratio * len(self))
            count = (f'{self._num_bad_samples} unreadable training samples '
                     f'in this process, {allowed} allowed '
                     f'(max_bad_sample_ratio={self.max_bad_sample_ratio} of '
                     f'{len(self)})')
            message = ' '.join(str(error).split())
            if self._num_bad_samples > allowed:
                if not allowed:
                    raise  # skipping is off (or the dataset is too small)
                stop = f'{message} [{count}: the dataset looks broken]'
                try:
                    new_error = type(error)(stop)
                except Exception:  # an error type with other arguments
                    new_error = (OSError if isinstance(error, OSError) else
                                 ValueError)(stop)
                raise new_error from error
            print_log(
                f'{self.__class__.__name__}: sample {idx} skipped, another '
                f'is drawn: {message} [{count}]',
                logger='current',
                level=logging.WARNING)
            return None
