# Copyright (c) OpenMMLab. All rights reserved.
"""Write tiny Ref-YouTube-VOS trees in the real on-disk format.

Frames are JPEGs written with cv2; frame ``k`` of a video is a uniform image
whose blue channel is ``FRAME_VALUE_STEP * k`` (green 100, red 200) so tests
can recover which frames were loaded. Annotations are palette ('P') PNGs
written with PIL whose pixel values are object ids.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

H, W = 24, 32
FRAME_VALUE_STEP = 20
PALETTE = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12)


def frame_name(k: int) -> str:
    """Name of the ``k``-th frame (YouTube-VOS style, step 5)."""
    return f'{5 * k:05d}'


def obj1_box(k: int) -> Tuple[int, int, int, int]:
    """(x1, y1, x2, y2) of object 1 in frame ``k`` (x2/y2 exclusive)."""
    return k, 2, k + 6, 9


def obj2_present(k: int) -> bool:
    """Object 2 is visible in frames 4..7 only."""
    return 4 <= k <= 7


def write_frame(path: str, k: int, size: Tuple[int, int] = (H, W)) -> None:
    """Write frame ``k`` as a uniform BGR JPEG."""
    img = np.zeros((*size, 3), dtype=np.uint8)
    img[..., 0] = FRAME_VALUE_STEP * k % 256
    img[..., 1] = 100
    img[..., 2] = 200
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, img)


def index_map(k: int, size: Tuple[int, int] = (H, W)) -> np.ndarray:
    """Object-id map of frame ``k``: object 1 box, object 2 in 4..7."""
    ids = np.zeros(size, dtype=np.uint8)
    x1, y1, x2, y2 = obj1_box(k)
    ids[y1:y2, x1:x2] = 1
    if obj2_present(k):
        ids[14:20, 20:30] = 2
    return ids


def write_png(path: str, ids: np.ndarray) -> None:
    """Write an object-id map as a palette PNG."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(ids, mode='P')
    img.putpalette(PALETTE)
    img.save(path)


def write_json(path: str, content) -> None:
    """Write a JSON file, creating its folder."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(content, f)


def write_video(root: str,
                split: str,
                video: str,
                num_frames: int,
                with_ann: bool = True) -> List[str]:
    """Write the frames (and masks) of one video; return frame names."""
    names = [frame_name(k) for k in range(num_frames)]
    for k, name in enumerate(names):
        write_frame(
            osp.join(root, split, 'JPEGImages', video, name + '.jpg'), k)
        if with_ann:
            write_png(
                osp.join(root, split, 'Annotations', video, name + '.png'),
                index_map(k))
    return names


def write_ytvos(root: str,
                train_expressions: Optional[Dict[str, dict]] = None,
                with_valid_ann: bool = False) -> Dict[str, List[str]]:
    """Write a tiny Ref-YouTube-VOS tree under ``root``.

    Train: ``vidA`` (12 frames, objects 1 and 2, two expressions) and
    ``vidB`` (3 frames, object 1). Valid: ``v1`` .. ``v4`` (4 frames each)
    where ``v3`` and ``v4`` are also in the test split.

    Args:
        root (str): Output folder.
        train_expressions (dict, optional): Replaces the expressions of
            ``vidA``.
        with_valid_ann (bool): Whether to write ``valid/Annotations``.

    Returns:
        dict: video -> frame names.
    """
    frames = {
        'vidA': write_video(root, 'train', 'vidA', 12),
        'vidB': write_video(root, 'train', 'vidB', 3),
    }
    write_json(
        osp.join(root, 'train', 'meta.json'), {
            'videos': {
                'vidA': {
                    'objects': {
                        '1': {
                            'category': 'person'
                        },
                        '2': {
                            'category': 'dog'
                        }
                    }
                },
                'vidB': {
                    'objects': {
                        '1': {
                            'category': 'car'
                        }
                    }
                }
            }
        })
    exps_a = train_expressions or {
        '0': {
            'exp': 'The  Man on the LEFT',
            'obj_id': '1'
        },
        '1': {
            'exp': 'a dog',
            'obj_id': '2'
        }
    }
    write_json(
        osp.join(root, 'meta_expressions', 'train', 'meta_expressions.json'), {
            'videos': {
                'vidA': {
                    'expressions': exps_a,
                    'frames': frames['vidA']
                },
                'vidB': {
                    'expressions': {
                        '0': {
                            'exp': 'a red car',
                            'obj_id': '1'
                        }
                    },
                    'frames': frames['vidB']
                }
            }
        })
    valid, test = {}, {}
    for video in ('v1', 'v2', 'v3', 'v4'):
        frames[video] = write_video(
            root, 'valid', video, 4, with_ann=with_valid_ann)
        # like the real valid split: expressions without obj_id, except
        # when local annotations exist
        exp = {'exp': f'object of {video}'}
        if with_valid_ann:
            exp['obj_id'] = '1'
        valid[video] = {
            'expressions': {
                '0': exp,
                '1': dict(exp, exp='another one')
            },
            'frames': frames[video]
        }
        if video in ('v3', 'v4'):
            test[video] = {
                'expressions': {
                    '0': {
                        'exp': 'test exp'
                    }
                },
                'frames': frames[video]
            }
    write_json(
        osp.join(root, 'meta_expressions', 'valid', 'meta_expressions.json'),
        {'videos': valid})
    write_json(
        osp.join(root, 'meta_expressions', 'test', 'meta_expressions.json'),
        {'videos': test})
    return frames
