# Copyright (c) OpenMMLab. All rights reserved.
import copy

import numpy as np
import pytest
from mmdet.datasets.transforms import PhotoMetricDistortion
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.registry import init_default_scope

from dmformer.datasets.transforms import (CheckValidFrames, ImageToPseudoVideo,
                                          NoValidFrameError,
                                          VideoPhotoMetricDistortion,
                                          VideoRandomFlip, VideoRandomResize,
                                          VideoRandomSizeCrop, swap_left_right)
from dmformer.registry import TRANSFORMS

H, W = 60, 80


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('dmformer')


def coord_image(h=H, w=W, t=0):
    """Frame whose pixels encode their own (x, y) and the frame index."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = np.arange(w)[None, :]
    img[..., 1] = np.arange(h)[:, None]
    img[..., 2] = 10 * t
    return img


def object_box(t):
    """Box (x1, y1, x2, y2) of the object in frame t; None if absent."""
    return None if t == 1 else (5 + 2 * t, 10, 25 + 2 * t, 30)


def make_clip(num_frames=3, h=H, w=W, text='the dog on the left'):
    """A clip in the dict-of-lists convention; frame 1 has no object."""
    masks, boxes, valid = [], [], []
    for t in range(num_frames):
        mask = np.zeros((h, w), dtype=np.uint8)
        box = object_box(t)
        if box is not None:
            x1, y1, x2, y2 = box
            mask[y1:y2, x1:x2] = 1
        bitmap = BitmapMasks(mask[None], h, w)
        masks.append(bitmap)
        boxes.append(bitmap.get_bboxes('hbox'))
        valid.append(box is not None)
    return dict(
        img=[coord_image(h, w, t) for t in range(num_frames)],
        img_shape=[(h, w)] * num_frames,
        ori_shape=[(h, w)] * num_frames,
        gt_masks=masks,
        gt_bboxes=boxes,
        gt_valid=valid,
        text=text,
        ori_text=text,
        video_id='vid',
        exp_id='0')


def tight_box(mask):
    ys, xs = np.nonzero(mask)
    return np.array(
        [xs.min(), ys.min(), xs.max() + 1,
         ys.max() + 1], dtype=np.float32)


# ---------------------------------------------------------------- text swap
@pytest.mark.parametrize('text, expected', [
    ('the dog on the left', 'the dog on the right'),
    ('right man', 'left man'),
    ('Left dog', 'Right dog'),
    ('the LEFT one', 'the RIGHT one'),
    ('left-most zebra', 'right-most zebra'),
    ('leftmost zebra and rightmost cow', 'rightmost zebra and leftmost cow'),
    ('leftover pizza', 'leftover pizza'),
    ('bright light', 'bright light'),
    ('copyright sign', 'copyright sign'),
    ('left, right.', 'right, left.'),
    ('left right left', 'right left right'),
    ('', ''),
])
def test_swap_left_right(text, expected):
    assert swap_left_right(text) == expected


# --------------------------------------------------------------------- flip
def test_video_random_flip_geometry_and_text():
    results = make_clip()
    ori = copy.deepcopy(results)
    flip = VideoRandomFlip(prob=1.0)
    out = flip(results)
    assert out['flip'] is True and out['flip_direction'] == 'horizontal'
    assert out['text'] == 'the dog on the right'
    assert out['ori_text'] == 'the dog on the left'
    for t in range(3):
        np.testing.assert_array_equal(out['img'][t], ori['img'][t][:, ::-1])
        np.testing.assert_array_equal(out['gt_masks'][t].masks,
                                      ori['gt_masks'][t].masks[:, :, ::-1])
        box = out['gt_bboxes'][t].tensor.numpy()[0]
        if object_box(t) is None:
            # an absent object keeps its all-zero box
            np.testing.assert_array_equal(box, np.zeros(4))
        else:
            x1, y1, x2, y2 = object_box(t)
            np.testing.assert_allclose(box, [W - x2, y1, W - x1, y2])
            # the flipped box is the tight box of the flipped mask
            np.testing.assert_allclose(box,
                                       tight_box(out['gt_masks'][t].masks[0]))


def test_video_random_flip_remaps_spans():
    results = make_clip(text='the man on the left side')
    # 'the man', 'the left side'
    results['noun_chunks'] = [(0, 7), (11, 24)]
    results['gt_subject_span'] = np.array([11, 24])
    out = VideoRandomFlip(prob=1.0)(results)
    assert out['text'] == 'the man on the right side'
    assert out['noun_chunks'] == [(0, 7), (11, 25)]
    assert out['text'][11:25] == 'the right side'
    assert out['gt_subject_span'].tolist() == [11, 25]


def test_video_random_flip_no_flip_and_randomness():
    results = make_clip()
    ori = copy.deepcopy(results)
    out = VideoRandomFlip(prob=0.)(results)
    assert out['flip'] is False and out['flip_direction'] is None
    assert out['text'] == ori['text']
    np.testing.assert_array_equal(out['img'][0], ori['img'][0])
    flips = set()
    np.random.seed(0)
    for _ in range(20):
        out = VideoRandomFlip(prob=0.5)(make_clip())
        flips.add(out['flip'])
        # one decision per clip: all frames flipped alike
        first_cols = {int(img[0, 0, 0]) for img in out['img']}
        assert first_cols == ({W - 1} if out['flip'] else {0})
    assert flips == {True, False}
    with pytest.raises(ValueError, match='prob'):
        VideoRandomFlip(prob=1.5)
    with pytest.raises(ValueError, match='per-frame list'):
        VideoRandomFlip(prob=1.)(dict(img=coord_image()))


# -------------------------------------------------------------- photometric
def test_video_photometric_distortion_is_per_frame():
    frame = np.random.RandomState(0).randint(0, 256, (H, W, 3), np.uint8)
    results = dict(img=[frame.copy() for _ in range(4)], text='a')
    transform = VideoPhotoMetricDistortion()
    np.random.seed(3)
    out = transform(results)
    assert all(img.dtype == np.uint8 for img in out['img'])
    assert all(img.shape == (H, W, 3) for img in out['img'])
    # identical inputs give different outputs: one draw per frame
    assert len({img.tobytes() for img in out['img']}) > 1
    # and each frame is mmdet's distortion with the next random draw
    np.random.seed(3)
    ref = PhotoMetricDistortion()
    for img in out['img']:
        expected = ref.transform({'img': frame.copy()})['img']
        np.testing.assert_array_equal(
            img,
            np.clip(expected, 0, 255).astype(np.uint8))


# ----------------------------------------------------------- resize / crop
def test_video_random_resize_shared_scale():
    transform = VideoRandomResize(scales=[30, 40, 50], max_size=100)
    seen = set()
    np.random.seed(1)
    for _ in range(12):
        out = transform(make_clip())
        shapes = {img.shape[:2] for img in out['img']}
        assert len(shapes) == 1, 'frames resized differently'
        (h, w), = shapes
        seen.add(h)
        assert out['img_shape'] == [(h, w)] * 3
        assert w == int(W * h / H + 0.5)
        for t in range(3):
            assert out['gt_masks'][t].masks.shape == (1, h, w)
            if object_box(t) is None:
                assert not out['gt_masks'][t].masks.any()
                continue
            expected = np.array(object_box(t)) * [w / W, h / H, w / W, h / H]
            np.testing.assert_allclose(
                out['gt_bboxes'][t].tensor.numpy()[0], expected, rtol=1e-5)
        assert out['scale_factor'][0] == pytest.approx((w / W, h / H))
    assert seen == {30, 40, 50}


def test_video_random_resize_max_size_and_test_mode():
    # short side 50 would make the long side 250 > 100: long side -> 100
    clip = dict(img=[np.zeros((40, 200, 3), np.uint8)] * 2, text='x')
    out = VideoRandomResize(scales=[50], max_size=100)(clip)
    assert [img.shape[:2] for img in out['img']] == [(20, 100)] * 2
    assert out['img_shape'] == [(20, 100)] * 2
    out = VideoRandomResize(scales=[50])(
        dict(img=[np.zeros((40, 200, 3), np.uint8)]))
    assert out['img'][0].shape[:2] == (50, 250)
    with pytest.raises(ValueError, match='max_size'):
        VideoRandomResize(scales=[400, 800], max_size=640)


def _textured_frame(h, w, seed=0):
    """A uint8 BGR frame with fine detail (where resize filters differ)."""
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize('scale', [45, 30, 135])  # x1/2, x1/3, x3/2
def test_video_random_resize_pillow_is_pils_resize(scale):
    """``backend='pillow'`` resizes a frame exactly like PIL's own bilinear
    resize (what torchvision's ``T.Resize`` does to the official code's PIL
    frames); masks, label maps and boxes are resized as with OpenCV."""
    from PIL import Image
    h, w = 90, 120
    frame = _textured_frame(h, w)
    label = np.random.RandomState(1).randint(0, 4, (h, w), dtype=np.uint8)
    mask = BitmapMasks((label == 2)[None].astype(np.uint8), h, w)

    def clip():
        return dict(
            img=[frame.copy()],
            img_shape=[(h, w)],
            gt_masks=[copy.deepcopy(mask)],
            gt_bboxes=[mask.get_bboxes('hbox')],
            gt_seg_map=[label.copy()],
            text='x')

    out_h, out_w = scale, int(w * scale / h + 0.5)
    pil = VideoRandomResize(scales=[scale], backend='pillow')(clip())
    cv = VideoRandomResize(scales=[scale])(clip())
    # PIL on the RGB frame, back to BGR
    expected = np.asarray(
        Image.fromarray(frame[..., ::-1]).resize((out_w, out_h),
                                                 Image.BILINEAR))[..., ::-1]
    assert pil['img'][0].shape == (out_h, out_w, 3)
    assert pil['img'][0].dtype == np.uint8
    np.testing.assert_array_equal(pil['img'][0], expected)
    # shrinking, OpenCV's bilinear does not antialias, PIL's does; when
    # enlarging both interpolate the same 2 x 2 pixels (up to rounding)
    diff = np.abs(cv['img'][0].astype(int) - expected).max()
    assert diff > 10 if scale < h else diff <= 1
    # masks and label maps: OpenCV nearest (top-left samples, as the
    # official interpolate(mode='nearest')), whatever the frames' backend
    for key in ('gt_masks', 'gt_bboxes', 'scale_factor', 'img_shape'):
        assert repr(pil[key]) == repr(cv[key]), key
    np.testing.assert_array_equal(pil['gt_seg_map'][0], cv['gt_seg_map'][0])
    np.testing.assert_array_equal(pil['gt_masks'][0].masks[0],
                                  pil['gt_seg_map'][0] == 2)
    if scale == 45:  # x1/2: rows and columns 0, 2, 4, ...
        np.testing.assert_array_equal(pil['gt_seg_map'][0], label[::2, ::2])


def test_video_random_resize_backend_is_checked():
    with pytest.raises(ValueError, match='backend'):
        VideoRandomResize(scales=[30], backend='PIL')
    # pillow needs uint8 frames (as PIL images are)
    with pytest.raises(AssertionError, match='uint8'):
        VideoRandomResize(scales=[30], backend='pillow')(
            dict(img=[np.zeros((60, 80, 3), np.float32)]))


def test_video_random_size_crop_shared_region():
    transform = VideoRandomSizeCrop(min_size=20, max_size=40)
    np.random.seed(2)
    sizes = set()
    for _ in range(10):
        out = transform(make_clip())
        shapes = {img.shape[:2] for img in out['img']}
        assert len(shapes) == 1
        (h, w), = shapes
        sizes.add((h, w))
        assert 20 <= h <= 40 and 20 <= w <= 40
        # the top-left pixel encodes the crop offset: same for all frames
        x0, y0 = int(out['img'][0][0, 0, 0]), int(out['img'][0][0, 0, 1])
        for t, img in enumerate(out['img']):
            np.testing.assert_array_equal(
                img,
                coord_image(H, W, t)[y0:y0 + h, x0:x0 + w])
            masks, boxes = out['gt_masks'][t], out['gt_bboxes'][t]
            if len(masks) == 0:  # instance outside the crop (or absent)
                assert len(boxes) == 0
                continue
            x1, y1, x2, y2 = object_box(t)
            expected = np.clip([x1 - x0, y1 - y0, x2 - x0, y2 - y0], 0,
                               [w, h, w, h])
            np.testing.assert_allclose(boxes.tensor.numpy()[0], expected)
    assert len(sizes) > 1


def test_random_select_branches_share_draws():
    pipeline = TRANSFORMS.build(
        dict(
            type='mmcv.RandomChoice',
            prob=[0.5, 0.5],
            transforms=[
                [dict(type='VideoRandomResize', scales=[30, 36], max_size=64)],
                [
                    dict(type='VideoRandomResize', scales=[40, 50]),
                    dict(type='VideoRandomSizeCrop', min_size=24, max_size=32),
                    dict(
                        type='VideoRandomResize', scales=[30, 36],
                        max_size=64),
                ],
            ]))
    check = CheckValidFrames()
    np.random.seed(5)
    shapes = set()
    for _ in range(16):
        out = pipeline(make_clip(num_frames=4))
        frame_shapes = {img.shape[:2] for img in out['img']}
        assert len(frame_shapes) == 1
        shapes |= frame_shapes
        out = check(out)
        if out is None:
            continue
        for t in range(4):
            assert len(out['gt_masks'][t]) == 1
            assert out['gt_masks'][t].masks.shape[1:] == out['img'][
                t].shape[:2]
    # both branches were used (crop branch gives other aspect ratios)
    assert any(abs(w / h - W / H) > 0.05 for h, w in shapes)
    assert any(abs(w / h - W / H) < 0.05 for h, w in shapes)


# ------------------------------------------------------------ check valid
def test_check_valid_frames():
    results = make_clip(num_frames=4)
    h, w = H, W
    # frame 0: box clipped to zero width, frame 2: instance removed by a
    # crop, frame 3 stays valid, frame 1 was already absent
    results['gt_bboxes'][0] = HorizontalBoxes(
        np.array([[10., 10., 10., 30.]], dtype=np.float32))
    results['gt_masks'][2] = BitmapMasks(np.zeros((0, h, w), np.uint8), h, w)
    results['gt_bboxes'][2] = HorizontalBoxes(np.zeros((0, 4), np.float32))
    out = CheckValidFrames()(results)
    assert out['gt_valid'] == [False, False, False, True]
    for t in range(3):
        np.testing.assert_array_equal(out['gt_bboxes'][t].tensor.numpy(),
                                      np.zeros((1, 4)))
    assert len(out['gt_masks'][2]) == 1 and not out['gt_masks'][2].masks.any()
    np.testing.assert_allclose(out['gt_bboxes'][3].tensor.numpy()[0],
                               object_box(3))


def test_check_valid_frames_mask_rule_and_empty():
    results = make_clip(num_frames=1)
    results['gt_masks'][0] = BitmapMasks(np.zeros((1, H, W), np.uint8), H, W)
    assert CheckValidFrames(check_mask=False)(
        copy.deepcopy(results))['gt_valid'] == [True]
    # no valid frame: None makes BaseDataset draw another sample
    assert CheckValidFrames()(copy.deepcopy(results)) is None
    with pytest.raises(NoValidFrameError, match='vid'):
        CheckValidFrames(on_empty='raise')(results)
    with pytest.raises(ValueError, match='on_empty'):
        CheckValidFrames(on_empty='skip')


# ------------------------------------------------------------ pseudo video
def test_image_to_pseudo_video_masks_follow_image():
    img = np.zeros((H, W, 3), np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[15:40, 20:50] = 1
    img[mask.astype(bool)] = 255
    bitmap = BitmapMasks(mask[None], H, W)
    results = dict(
        img=[img],
        img_shape=[(H, W)],
        ori_shape=[(H, W)],
        img_path=['x.jpg'],
        frame_id=['x'],
        gt_masks=[bitmap],
        gt_bboxes=[bitmap.get_bboxes('hbox')],
        gt_valid=[True],
        noun_chunks=[(0, 3)],
        text='a b')
    # no photometric change or blur: the bright region must be the mask
    transform = ImageToPseudoVideo(
        num_frames=3, brightness_delta=0, hue_sat_delta=0, motion_blur_prob=0.)
    np.random.seed(0)
    out = transform(results)
    assert len(out['img']) == len(out['gt_masks']) == 3
    assert out['img_path'] == ['x.jpg'] * 3 and out['frame_id'] == ['x'] * 3
    assert out['img_shape'] == [(H, W)] * 3
    assert out['noun_chunks'] == [(0, 3)]  # video-level list untouched
    assert sorted(out['pseudo_frame_source']) == [0, 1, 2]
    orig = out['pseudo_frame_source'].index(0)
    np.testing.assert_array_equal(out['img'][orig], img)
    warped = 0
    for t in range(3):
        m = out['gt_masks'][t].masks[0].astype(bool)
        assert out['gt_valid'][t] and m.any()
        np.testing.assert_allclose(out['gt_bboxes'][t].tensor.numpy()[0],
                                   tight_box(m))
        bright = out['img'][t][..., 0] > 127
        iou = (bright & m).sum() / (bright | m).sum()
        assert iou > 0.9
        warped += int(not np.array_equal(m, mask.astype(bool)))
    assert warped == 2


def test_image_to_pseudo_video_identity_warp_and_errors():
    clip = make_clip(num_frames=1)
    transform = ImageToPseudoVideo(
        num_frames=4, rotate=0., translate=0., perspective=0., shuffle=False)
    out = transform(copy.deepcopy(clip))
    assert out['pseudo_frame_source'] == [0, 1, 2, 3]
    for t in range(4):
        np.testing.assert_array_equal(out['gt_masks'][t].masks,
                                      clip['gt_masks'][0].masks)
        np.testing.assert_allclose(out['gt_bboxes'][t].tensor.numpy()[0],
                                   object_box(0))
    with pytest.raises(ValueError, match='single-frame'):
        transform(make_clip(num_frames=2))
    with pytest.raises(ValueError, match='num_frames'):
        ImageToPseudoVideo(num_frames=0)


# ------------------------------------------------------------------- repr
def test_reprs_and_registry():
    cases = {
        'VideoRandomFlip':
        (dict(prob=0.3), 'VideoRandomFlip(prob=0.3, swap_text=True)'),
        'VideoPhotoMetricDistortion': (dict(hue_delta=9), 'hue_delta=9'),
        'VideoRandomResize': (dict(scales=[1, 2], max_size=4),
                              "VideoRandomResize(scales=[1, 2], max_size=4, "
                              "interpolation='bilinear', backend='cv2')"),
        'VideoRandomSizeCrop':
        (dict(min_size=3, max_size=5), 'VideoRandomSizeCrop(min_size=3, '
         'max_size=5)'),
        'CheckValidFrames': (dict(), "CheckValidFrames(check_mask=True, "
                             "on_empty='resample')"),
        'ImageToPseudoVideo':
        (dict(num_frames=2), 'ImageToPseudoVideo(num_frames=2, rotate=20.0'),
    }
    for name, (kwargs, expected) in cases.items():
        transform = TRANSFORMS.build(dict(type=name, **kwargs))
        assert expected in repr(transform), repr(transform)
    assert isinstance(
        TRANSFORMS.build(dict(type='VideoRandomSizeCrop')),
        VideoRandomSizeCrop)
