# Copyright (c) OpenMMLab. All rights reserved.
"""Tiny copies of the real releases of the RVOS benchmarks, for tests.

Each writer lays out, at a few pixels and frames, the on-disk structure of
a public release **with its quirks**, so that tests exercise the paths a
researcher's real download takes:

- :func:`write_ref_ytvos_release`: Ref-YouTube-VOS. The valid
  ``meta_expressions.json`` lists the valid *and* the test videos (507 =
  202 + 305 on the real data), ``meta_expressions/test`` lists the test
  ones, ``valid/JPEGImages`` holds the valid videos only; valid
  expressions carry no ``obj_id``; listed frames are every 5th frame and
  may not start at ``00000``; frame sizes differ between videos (landscape
  720x1280 and 1080x1920, portrait 1280x720, scaled down); captions have
  capitals, punctuation, double and trailing spaces.
- :func:`write_mevis_release`: MeViS. ``mask_dict.json`` with one COCO RLE
  per frame (``null`` where the object is absent), expressions that refer
  to several objects and to none (empty ``obj_id`` / ``anno_id`` lists),
  a ``valid`` split without masks whose expressions carry only ``exp``.
- :func:`write_ref_davis_release`: the DAVIS-2017 trainval release and the
  Ref-DAVIS text annotations, the input of
  ``tools/dataset_converters/convert_davis_to_ytvos.py`` (misspelt video
  names, an expression of an object that is in no mask).
- :func:`write_a2d_release`: A2D-Sentences, the input of
  ``tools/dataset_converters/a2d_sentences_to_json.py`` with the frames
  already extracted (``Release/frames``): ``videoset.csv`` without header,
  a missed video, the ``'1 (copy)'`` instance, MATLAB-layout ``.h5``
  masks, 320-pixel-high frames of several widths (scaled down).

Every writer returns what a correct reader must find (videos, frames,
sizes, expressions), computed from the layout it wrote, so tests compare
a dataset class with the release rather than with itself. Frame ``k`` of
a video is a uniform BGR image whose blue channel is ``(40 * k) % 256``.
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

__all__ = [
    'write_ref_ytvos_release', 'write_mevis_release',
    'write_ref_davis_release', 'write_a2d_release', 'box_mask', 'rle_encode'
]

#: blue value step between consecutive frames of a video
FRAME_VALUE_STEP = 40
# DAVIS palette: black, then red, green, yellow... (first 4 colours)
_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
_PALETTE += [0] * (256 * 3 - len(_PALETTE))

Size = Tuple[int, int]
Box = Tuple[int, int, int, int]  # (y1, y2, x1, x2), exclusive ends


def box_mask(size: Size, box: Optional[Box]) -> np.ndarray:
    """A binary mask with one filled box.

    Args:
        size (tuple[int, int]): (h, w) of the mask.
        box (tuple[int, int, int, int], optional): (y1, y2, x1, x2) with
            exclusive ends; None for an empty mask.

    Returns:
        np.ndarray: uint8 (h, w), 1 inside the box.
    """
    mask = np.zeros(size, dtype=np.uint8)
    if box is not None:
        y1, y2, x1, x2 = box
        mask[y1:y2, x1:x2] = 1
    return mask


def rle_encode(mask: np.ndarray) -> dict:
    """A COCO compressed RLE as stored in MeViS ``mask_dict.json``.

    Args:
        mask (np.ndarray): (h, w) binary mask.

    Returns:
        dict: ``{"size": [h, w], "counts": str}``.
    """
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(s) for s in rle['size']],
                counts=rle['counts'].decode('ascii'))


def _write_json(path: str, content) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(content, f)


def _write_frame(path: str, k: int, size: Size) -> None:
    """Frame ``k`` as a uniform BGR image (JPEG or PNG by suffix)."""
    img = np.empty((*size, 3), dtype=np.uint8)
    img[..., 0] = FRAME_VALUE_STEP * k % 256
    img[..., 1] = 90
    img[..., 2] = 170
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f'cannot write frame {path}')


def _write_palette_png(path: str, ids: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode='P')
    img.putpalette(_PALETTE)
    img.save(path)


def _id_map(size: Size, boxes: Dict[int, Optional[Box]]) -> np.ndarray:
    """Object-id map with the boxes of several objects (later ones on
    top)."""
    ids = np.zeros(size, dtype=np.uint8)
    for obj_id, box in boxes.items():
        ids[box_mask(size, box).astype(bool)] = obj_id
    return ids


# ----------------------------------------------------------------------
# Ref-YouTube-VOS
# ----------------------------------------------------------------------
# valid videos: size (h, w), listed frame numbers (every 5th, not always
# from 0) and raw captions, in release order
_YTVOS_VALID = {
    '0b6f9105fc': dict(
        size=(36, 64),  # 720x1280
        frames=[0, 5, 10],
        expressions=[
            'A  man in a RED shirt, walking to the LEFT. ',
            'the dog (brown) jumping over  a fence!',
        ]),
    '3e03f623bb': dict(
        size=(54, 96),  # 1080x1920
        frames=[10, 15, 20],
        expressions=[
            "a person's hand holding a Cup ",
            'Zebra on the right-side',
            'the  second zebra,  behind the first one.',
        ]),
    'b9ec1b9f5d': dict(
        size=(64, 36),  # portrait 1280x720
        frames=[25, 30, 35],
        expressions=['A skateboarder doing a trick...  ']),
}
# test videos: listed in valid and in test meta_expressions, no frames in
# valid/JPEGImages; they sort between the valid ones
_YTVOS_TEST = {
    '2b904b76c9': dict(frames=[0, 5, 10, 15],
                       expressions=['a white Car driving  away']),
    'f4e7c3a1d2': dict(
        frames=[5, 10, 15],
        expressions=['the parrot on the left ', 'A PARROT, eating.']),
}
# train videos: size, frames, objects {obj_id: (category, {frame index:
# box or None})} and expressions [(caption, obj_id)]
_YTVOS_TRAIN = {
    'a3f5e1c7b9': dict(
        size=(36, 64),
        frames=[0, 5, 10, 15, 20, 25],
        objects={
            1: ('person', {k: (4, 20, 2 + 3 * k, 14 + 3 * k)
                           for k in range(6)}),
            # the dog enters in the third listed frame
            2: ('dog', {k: (22, 34, 40, 60) if k >= 2 else None
                        for k in range(6)}),
        },
        expressions=[('A  man wearing a HAT, on the left.', 1),
                     ('the dog running ', 2), ('a man', 1)]),
    'c81e728d9d': dict(
        size=(64, 36),
        frames=[0, 5, 10, 15],
        objects={1: ('skateboard', {k: (40, 50, 4, 30)
                                    for k in range(4)})},
        expressions=[('a Skateboard, rolling.', 1)]),
}


def _ytvos_frame_names(numbers: Sequence[int]) -> List[str]:
    return [f'{n:05d}' for n in numbers]


def write_ref_ytvos_release(root: str) -> dict:
    """Write a tiny Ref-YouTube-VOS release under ``root``.

    Layout (the real release)::

        root/
        ├── train/JPEGImages/<video>/<frame>.jpg
        ├── train/Annotations/<video>/<frame>.png     (palette, object ids)
        ├── train/meta.json
        ├── valid/JPEGImages/<video>/<frame>.jpg      (valid videos only)
        └── meta_expressions/{train,valid,test}/meta_expressions.json

    3 valid videos (6 expressions, 3 frames each: 18 submission PNGs) of 3
    sizes, 2 test videos listed in both the valid and the test expression
    files, 2 train videos.

    Args:
        root (str): Output folder (created).

    Returns:
        dict: ``valid`` and ``test``: ``{video: {"frames": [names],
        "size": (h, w) (valid only), "expressions": {exp_id: raw
        caption}}}``; ``train``: ``{video: {"frames", "size",
        "expressions": {exp_id: (raw caption, obj_id)}, "categories":
        {obj_id: category}}}``.
    """
    out: Dict[str, dict] = dict(valid={}, test={}, train={})
    valid_meta, test_meta, train_meta, train_objects = {}, {}, {}, {}
    for video, spec in _YTVOS_VALID.items():
        names = _ytvos_frame_names(spec['frames'])
        for k, name in enumerate(names):
            _write_frame(
                osp.join(root, 'valid', 'JPEGImages', video, name + '.jpg'),
                k, spec['size'])
        exps = {str(i): e for i, e in enumerate(spec['expressions'])}
        valid_meta[video] = dict(
            expressions={i: dict(exp=e) for i, e in exps.items()},
            frames=names)
        out['valid'][video] = dict(
            frames=names, size=spec['size'], expressions=exps)
    for video, spec in _YTVOS_TEST.items():
        names = _ytvos_frame_names(spec['frames'])
        exps = {str(i): e for i, e in enumerate(spec['expressions'])}
        entry = dict(
            expressions={i: dict(exp=e) for i, e in exps.items()},
            frames=names)
        valid_meta[video] = entry
        test_meta[video] = entry
        out['test'][video] = dict(frames=names, expressions=exps)
    for video, spec in _YTVOS_TRAIN.items():
        names = _ytvos_frame_names(spec['frames'])
        objects = {}
        for k, name in enumerate(names):
            _write_frame(
                osp.join(root, 'train', 'JPEGImages', video, name + '.jpg'),
                k, spec['size'])
            boxes = {i: b[k] for i, (_, b) in spec['objects'].items()}
            _write_palette_png(
                osp.join(root, 'train', 'Annotations', video, name + '.png'),
                _id_map(spec['size'], boxes))
        for obj_id, (category, boxes) in spec['objects'].items():
            objects[str(obj_id)] = dict(
                category=category,
                frames=[names[k] for k, b in boxes.items() if b is not None])
        train_objects[video] = dict(objects=objects)
        exps = {
            str(i): (e, obj_id)
            for i, (e, obj_id) in enumerate(spec['expressions'])
        }
        train_meta[video] = dict(
            expressions={
                i: dict(exp=e, obj_id=str(obj_id))
                for i, (e, obj_id) in exps.items()
            },
            frames=names)
        out['train'][video] = dict(
            frames=names,
            size=spec['size'],
            expressions=exps,
            categories={
                int(i): o['category']
                for i, o in objects.items()
            })
    _write_json(osp.join(root, 'train', 'meta.json'),
                dict(videos=train_objects))
    for split, meta in (('train', train_meta), ('valid', valid_meta),
                        ('test', test_meta)):
        _write_json(
            osp.join(root, 'meta_expressions', split,
                     'meta_expressions.json'), dict(videos=meta))
    return out


# ----------------------------------------------------------------------
# MeViS
# ----------------------------------------------------------------------
# split -> video -> size, number of frames (consecutive from 00000),
# objects [{frame index: box or None}] (obj_id = list index) and
# expressions [(caption, [obj_id, ...])]; [] = refers to no object
_MEVIS = {
    'train': {
        '7f2a9c04e1b3': dict(
            size=(36, 64),
            num_frames=5,
            objects=[
                {k: (4, 16, 2 + 4 * k, 14 + 4 * k) for k in range(5)},
                {k: (20, 32, 40, 56) if k >= 2 else None for k in range(5)},
            ],
            expressions=[('The bird flying away.', [0]),
                         ('two birds moving  left', [0, 1]),
                         ('the cat jumping over the wall', [])]),
    },
    'valid_u': {
        'a91c3e5f7d20': dict(
            size=(36, 64),
            num_frames=3,
            objects=[
                {k: (6, 18, 4 + 6 * k, 20 + 6 * k) for k in range(3)},
                {k: (22, 34, 44, 60) for k in range(3)},
            ],
            expressions=[('The bird flying away.', [0]),
                         ('Two birds  moving left', [0, 1]),
                         ('the fish swimming ', [])]),
        'c3d5e7f9a1b2': dict(
            size=(64, 36),  # portrait
            num_frames=3,
            # absent in the middle frame (null RLE)
            objects=[{0: (10, 30, 6, 26), 1: None, 2: (30, 50, 8, 28)}],
            expressions=[('a Man walking in, then out', [0]),
                         ('the horse that is running', [])]),
    },
    'valid': {
        '0e8d6c4b2a19': dict(
            size=(36, 64),
            num_frames=3,
            expressions=['The bird flying away.', 'two birds moving left']),
        'f1e2d3c4b5a6': dict(
            size=(64, 36),
            num_frames=4,
            expressions=['a person turning around ']),
    },
}


def write_mevis_release(root: str) -> dict:
    """Write a tiny MeViS release under ``root``.

    Layout (the real release)::

        root/
        ├── train/{JPEGImages/<video>/<frame>.jpg, meta_expressions.json,
        │          mask_dict.json}
        ├── valid_u/{JPEGImages, meta_expressions.json, mask_dict.json}
        └── valid/{JPEGImages, meta_expressions.json}     (no masks)

    ``anno_id`` are unique in a split, ``obj_id`` are object indices in a
    video; a no-target expression has ``"obj_id": [], "anno_id": []``. In
    ``valid_u``: 2 videos, 5 expressions (one of 2 objects, 2 of none), 3
    frames each; in ``valid``: 2 videos, 3 expressions, 2 x 3 + 1 x 4 = 10
    submission PNGs.

    Args:
        root (str): Output folder (created).

    Returns:
        dict: split -> video -> ``frames`` (names), ``size`` (h, w),
        ``expressions`` ({exp_id: raw caption}) and, for the splits with
        masks, ``targets`` ({exp_id: (T, h, w) uint8 union of the
        referred objects' masks, all zero for no target}) and ``obj_ids``
        ({exp_id: [obj_id, ...]}).
    """
    out: Dict[str, dict] = {}
    for split, videos in _MEVIS.items():
        with_gt = split != 'valid'
        meta, tracks, out[split] = {}, {}, {}
        for video, spec in videos.items():
            size = spec['size']
            names = [f'{k:05d}' for k in range(spec['num_frames'])]
            for k, name in enumerate(names):
                _write_frame(
                    osp.join(root, split, 'JPEGImages', video,
                             name + '.jpg'), k, size)
            info = dict(frames=names, size=size, expressions={})
            exps = {}
            if not with_gt:
                for i, caption in enumerate(spec['expressions']):
                    exps[str(i)] = dict(exp=caption)
                    info['expressions'][str(i)] = caption
                meta[video] = dict(expressions=exps, frames=names)
                out[split][video] = info
                continue
            anno_of = {}
            for obj_id, boxes in enumerate(spec['objects']):
                anno_of[obj_id] = len(tracks)
                tracks[str(len(tracks))] = [
                    None if boxes[k] is None else rle_encode(
                        box_mask(size, boxes[k]))
                    for k in range(len(names))
                ]
            info.update(targets={}, obj_ids={})
            for i, (caption, obj_ids) in enumerate(spec['expressions']):
                exps[str(i)] = dict(
                    exp=caption,
                    obj_id=list(obj_ids),
                    anno_id=[anno_of[o] for o in obj_ids])
                target = np.zeros((len(names), *size), dtype=np.uint8)
                for o in obj_ids:
                    for k in range(len(names)):
                        target[k] |= box_mask(size, spec['objects'][o][k])
                info['expressions'][str(i)] = caption
                info['targets'][str(i)] = target
                info['obj_ids'][str(i)] = list(obj_ids)
            meta[video] = dict(expressions=exps, frames=names)
            out[split][video] = info
        if with_gt:
            _write_json(osp.join(root, split, 'mask_dict.json'), tracks)
        _write_json(
            osp.join(root, split, 'meta_expressions.json'),
            dict(videos=meta))
    return out


# ----------------------------------------------------------------------
# Ref-DAVIS17 (input of convert_davis_to_ytvos.py)
# ----------------------------------------------------------------------
# video -> split, size (480p scaled down), number of frames and object
# boxes {obj_id: box} (static); text_name: the misspelt name used by the
# expression files
_DAVIS = {
    'bear': dict(split='train', size=(24, 43), num_frames=3,
                 objects={1: (4, 20, 6, 30)}),
    'classic-car': dict(split='valid', size=(24, 43), num_frames=3,
                        objects={1: (2, 12, 2, 20), 2: (14, 22, 24, 40)},
                        text_name='clasic-car'),
    'dogs-jump': dict(split='valid', size=(24, 45), num_frames=4,
                      objects={1: (3, 21, 4, 16), 2: (5, 19, 26, 42)}),
}
# the expressions of each file (annotator 1 and 2, first frame and full
# video) for (video, obj_id); object 3 of dogs-jump is in no mask
_DAVIS_TEXT = {
    ('bear', 1): 'a brown bear walking',
    ('classic-car', 1): 'A  red Classic car.',
    ('classic-car', 2): 'the man standing next to the car',
    ('dogs-jump', 1): 'a dog jumping ',
    ('dogs-jump', 2): 'the Second dog, on the right',
    ('dogs-jump', 3): 'a person throwing a ball',
}
_DAVIS_FILES = ('Davis17_annot1.txt', 'Davis17_annot1_full_video.txt',
                'Davis17_annot2.txt', 'Davis17_annot2_full_video.txt')


def write_ref_davis_release(davis_root: str, text_root: str) -> dict:
    """Write the DAVIS-2017 trainval 480p layout and the Ref-DAVIS text
    annotations (the input of ``convert_davis_to_ytvos.py``).

    Layout::

        davis_root/JPEGImages/480p/<video>/<frame:05d>.jpg
        davis_root/Annotations_unsupervised/480p/<video>/<frame:05d>.png
        davis_root/ImageSets/2017/{train,val}.txt
        text_root/Davis17_annot{1,2}[_full_video].txt

    Expression lines are ``<video> <obj_id> "<expression>"``; the video
    ``classic-car`` is spelt ``clasic-car`` there (as in the real files)
    and object 3 of ``dogs-jump`` is described but in no mask (the
    converter skips it).

    Args:
        davis_root (str): The ``DAVIS`` folder to write.
        text_root (str): The folder of the expression files.

    Returns:
        dict: split -> video -> ``frames`` (names), ``size`` and
        ``expressions`` ({exp_id: (raw caption, obj_id)} with the
        converter's ids ``4 (obj_id - 1) + file index``).
    """
    out: Dict[str, dict] = dict(train={}, valid={})
    lists: Dict[str, List[str]] = dict(train=[], valid=[])
    for video, spec in _DAVIS.items():
        names = [f'{k:05d}' for k in range(spec['num_frames'])]
        for k, name in enumerate(names):
            _write_frame(
                osp.join(davis_root, 'JPEGImages', '480p', video,
                         name + '.jpg'), k, spec['size'])
            _write_palette_png(
                osp.join(davis_root, 'Annotations_unsupervised', '480p',
                         video, name + '.png'),
                _id_map(spec['size'], spec['objects']))
        lists[spec['split']].append(video)
        exps = {}
        for (v, obj_id), caption in _DAVIS_TEXT.items():
            if v == video and obj_id in spec['objects']:
                for j in range(len(_DAVIS_FILES)):
                    exps[str(4 * (obj_id - 1) + j)] = (caption, obj_id)
        out[spec['split']][video] = dict(
            frames=names, size=spec['size'], expressions=exps)
    sets = osp.join(davis_root, 'ImageSets', '2017')
    os.makedirs(sets, exist_ok=True)
    for split, name in (('train', 'train.txt'), ('valid', 'val.txt')):
        with open(osp.join(sets, name), 'w') as f:
            f.write(''.join(v + '\n' for v in lists[split]))
    os.makedirs(text_root, exist_ok=True)
    for j, name in enumerate(_DAVIS_FILES):
        with open(osp.join(text_root, name), 'w') as f:
            for (video, obj_id), caption in _DAVIS_TEXT.items():
                spelt = _DAVIS[video].get('text_name', video)
                # the annotators' wordings differ; keep them recognisable
                text = caption if j % 2 == 0 else caption.rstrip() + ' '
                f.write(f'{spelt} {obj_id} "{text}"\n')
    return out


# ----------------------------------------------------------------------
# A2D-Sentences (input of a2d_sentences_to_json.py, frames extracted)
# ----------------------------------------------------------------------
# video -> subset (0 train, 1 test), size (320 high, scaled down), number
# of frames, and annotated frames {1-based frame: {instance: box}}
_A2D = {
    '-3Ttm4-ZsXM': dict(subset=0, size=(32, 43), num_frames=8,
                        annotated={3: {0: (4, 20, 2, 18),
                                       1: (10, 30, 24, 40)},
                                   6: {0: (6, 22, 8, 24)}}),
    'EadxBPmQvtg': dict(subset=1, size=(32, 57), num_frames=6,
                        annotated={2: {0: (2, 28, 10, 40)}}),
    'zzMissedVid': dict(subset=0, size=(32, 43), num_frames=4,
                        annotated={}),
}
# (video, instance id as written, query)
_A2D_QUERIES = [
    ('-3Ttm4-ZsXM', '0', 'Man in a Black shirt, running'),
    ('-3Ttm4-ZsXM', '1', 'a  dog rolling on the grass'),
    ('-3Ttm4-ZsXM', '0 (copy)', 'man in a black shirt running'),
    ('EadxBPmQvtg', '0', 'A bird flying '),
    ('zzMissedVid', '0', 'a ball rolling'),
]


def _write_a2d_h5(path: str, size: Size, boxes: Dict[int, Box]) -> None:
    """An A2D mask file: ``reMask`` (N, W, H), or (W, H) for one instance,
    and ``instance`` (float ids), as MATLAB writes them."""
    import h5py
    ids = sorted(boxes)
    stack = np.stack([box_mask(size, boxes[i]) for i in ids])
    remask = stack.transpose(0, 2, 1)
    if len(ids) == 1:
        remask = remask[0]
    os.makedirs(osp.dirname(path), exist_ok=True)
    with h5py.File(path, 'w') as f:
        f.create_dataset('reMask', data=remask.astype(np.float64))
        f.create_dataset('instance', data=np.array(ids, dtype=np.float64))


def write_a2d_release(root: str) -> dict:
    """Write a tiny A2D-Sentences release under ``root`` (needs h5py).

    Layout (the real release, frames already extracted by
    ``a2d_sentences_to_json.py a2d --extract-frames``)::

        root/Release/videoset.csv           (9 columns, no header)
        root/Release/frames/<video>/<k:05d>.jpg     (k from 1)
        root/text_annotations/a2d_annotation.txt    (video_id,instance_id,
                                                     query)
        root/text_annotations/a2d_missed_videos.txt
        root/text_annotations/a2d_annotation_with_instances/<video>/
            <k:05d>.h5

    Args:
        root (str): Output folder (created).

    Returns:
        dict: ``train`` and ``test``: lists of ``(video, frame_idx,
        instance_id, query)`` samples the converter must produce (MTTR's
        rules: one per annotated frame listing the instance, query
        lower-cased, the missed video and ``'(copy)'`` ids dropped), and
        ``sizes`` ({video: (h, w)}).
    """
    os.makedirs(osp.join(root, 'Release'), exist_ok=True)
    mask_dir = osp.join(root, 'text_annotations',
                        'a2d_annotation_with_instances')
    with open(osp.join(root, 'Release', 'videoset.csv'), 'w',
              newline='') as f:
        writer = csv.writer(f)
        for video, spec in _A2D.items():
            h, w = spec['size']
            writer.writerow([
                video, 11, 0.0, 4.2, h, w, spec['num_frames'],
                len(spec['annotated']), spec['subset']
            ])
    for video, spec in _A2D.items():
        for k in range(1, spec['num_frames'] + 1):
            _write_frame(
                osp.join(root, 'Release', 'frames', video, f'{k:05d}.jpg'),
                k - 1, spec['size'])
        for frame, boxes in spec['annotated'].items():
            _write_a2d_h5(
                osp.join(mask_dir, video, f'{frame:05d}.h5'), spec['size'],
                boxes)
    with open(osp.join(root, 'text_annotations', 'a2d_missed_videos.txt'),
              'w') as f:
        f.write('zzMissedVid\n')
    with open(osp.join(root, 'text_annotations', 'a2d_annotation.txt'),
              'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['video_id', 'instance_id', 'query'])
        writer.writerows(_A2D_QUERIES)
    out: Dict[str, list] = dict(train=[], test=[])
    for video, raw_id, query in _A2D_QUERIES:
        if video == 'zzMissedVid' or not raw_id.isdigit():
            continue
        spec = _A2D[video]
        split = 'train' if spec['subset'] == 0 else 'test'
        for frame in sorted(spec['annotated']):
            if int(raw_id) in spec['annotated'][frame]:
                out[split].append((video, frame, int(raw_id), query.lower()))
    out['sizes'] = {video: spec['size'] for video, spec in _A2D.items()}
    return out
