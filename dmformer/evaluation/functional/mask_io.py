# Copyright (c) OpenMMLab. All rights reserved.
"""Reading and writing the PNG masks used by the RVOS benchmarks."""
import os
import os.path as osp

import numpy as np
from PIL import Image

__all__ = [
    'davis_palette', 'load_mask_png', 'save_palette_png', 'save_binary_png'
]


def davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL VOC colour map.

    Returns:
        np.ndarray: uint8 array of shape (256, 3); entry ``i`` is the colour
        of label ``i`` (0 black, 1 (128, 0, 0), 2 (0, 128, 0), ...).
    """
    palette = np.zeros((256, 3), dtype=np.uint8)
    for label in range(256):
        value, r, g, b = label, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[label] = (r, g, b)
    return palette


def load_mask_png(path: str) -> np.ndarray:
    """Read an indexed (mode 'P') or grey-level (mode 'L') mask PNG.

    Args:
        path (str): The PNG file.

    Returns:
        np.ndarray: uint8 label map of shape (H, W) (palette indices for
        'P' images, grey levels for 'L' images).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file cannot be decoded or is not a single-channel
            mask.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'mask file not found: {path}')
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            mask = np.array(img)
    except Exception as e:  # PIL raises several unrelated exception types
        raise ValueError(f'cannot read mask file {path}: {e}') from e
    if mode == '1':
        mask = mask.astype(np.uint8)
    if mask.ndim != 2 or mode not in ('P', 'L', '1'):
        raise ValueError(f'mask file {path} must be a single-channel P/L '
                         f'PNG, got mode {mode!r} and shape {mask.shape}')
    return mask.astype(np.uint8)


def save_palette_png(label_map: np.ndarray, path: str) -> None:
    """Save a label map as an indexed PNG with the DAVIS palette.

    Args:
        label_map (np.ndarray): Integer labels in [0, 255], shape (H, W).
        path (str): Output file; parent folders are created.
    """
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f'label map for {path} must be 2-D, got shape '
                         f'{label_map.shape}')
    if label_map.size and (label_map.min() < 0 or label_map.max() > 255):
        raise ValueError(f'labels for {path} must lie in [0, 255]')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    # a uint8 array gives a mode 'L' image; putpalette turns it into 'P'
    img = Image.fromarray(label_map.astype(np.uint8))
    img.putpalette(davis_palette().reshape(-1).tolist())
    img.save(path)


def save_binary_png(mask: np.ndarray, path: str) -> None:
    """Save a binary mask as an 8-bit grey PNG with values 0 and 255.

    This is the Ref-YouTube-VOS submission format.

    Args:
        mask (np.ndarray): Mask of shape (H, W); non-zero is foreground.
        path (str): Output file; parent folders are created.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(
            f'mask for {path} must be 2-D, got shape {mask.shape}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    # a uint8 array gives a mode 'L' image
    Image.fromarray(mask.astype(bool).astype(np.uint8) * 255).save(path)
