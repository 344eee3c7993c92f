# Copyright (c) OpenMMLab. All rights reserved.
import numpy as np
import pytest

from dmformer.visualization import (draw_legend, draw_masks, frame_with_legend,
                                    make_strip, sentence_colour,
                                    upscale_factor)


def _frame(h=112, w=112):
    return np.full((h, w, 3), 128, dtype=np.uint8)


def test_upscale_factor():
    assert upscale_factor(112, 112) == 4  # 448 >= 360
    assert upscale_factor(360, 640) == 1
    assert upscale_factor(100, 300, min_short_side=250) == 3
    with pytest.raises(ValueError):
        upscale_factor(0, 10)


def test_draw_masks_uses_the_sentence_colours():
    mask_a = np.zeros((112, 112), bool)
    mask_a[10:40, 10:40] = True
    mask_b = np.zeros((112, 112), bool)
    mask_b[60:100, 60:100] = True
    vis = draw_masks(_frame(), [mask_a, mask_b], alpha=1.0)
    # inside each mask (away from the contour) the colour of its sentence
    assert tuple(vis[25, 25]) == sentence_colour(0)
    assert tuple(vis[80, 80]) == sentence_colour(1)
    assert tuple(vis[50, 5]) == (128, 128, 128)
    with pytest.raises(ValueError, match='does not match'):
        draw_masks(_frame(), [np.zeros((10, 10), bool)])


def test_legend_is_readable_and_wraps():
    entries = ['[0] "the big orange diamond far from the small striped '
               'square"  subject "the big orange diamond", score 0.91',
               '[1] "the small striped square"  subject "the small '
               'striped square", score 0.88']
    panel = draw_legend(448, entries)
    assert panel.shape[1] == 448 and panel.dtype == np.uint8
    # long entries wrap onto several lines of about 26 px each
    assert panel.shape[0] >= 4 * 26
    # a colour swatch per sentence, in its colour, and dark text
    for i in range(2):
        colour = np.array(sentence_colour(i))
        assert (np.abs(panel.reshape(-1, 3) - colour).sum(1) == 0).any()
    assert (panel.reshape(-1, 3).max(1) < 80).sum() > 200


def test_frame_with_legend_upscales_small_frames():
    mask = np.zeros((112, 112), bool)
    mask[20:50, 30:60] = True
    out = frame_with_legend(_frame(), [mask], ['[0] "a" score 0.50'])
    # 112 px frames are shown 4x (448 px) with the legend below
    assert out.shape[1] == 448 and out.shape[0] > 448
    assert tuple(out[35 * 4, 45 * 4]) != (128, 128, 128)


def test_make_strip_layout():
    frames = [_frame() for _ in range(3)]
    masks = [[np.zeros((112, 112), bool)] * 3,
             [np.ones((112, 112), bool)] * 3]
    strip = make_strip(frames, masks, ['first', 'second'],
                       frame_ids=['00000', '00005', '00010'])
    # 112 px tiles upscaled 2x (>= 160 px), 3 per row with 6 px gaps
    assert strip.shape[1] == 3 * 224 + 2 * 6
    # header + 2 x (title + tiles)
    assert strip.shape[0] > 2 * 224
    with pytest.raises(ValueError, match='sentence 1 has 2 masks'):
        make_strip(frames, [masks[0], masks[1][:2]], ['a', 'b'])
