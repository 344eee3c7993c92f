# Copyright (c) OpenMMLab. All rights reserved.
"""Annotation-file helpers shared by the datasets (video and RefCOCO)."""
from typing import Any, List, Optional

from mmengine import fileio


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
