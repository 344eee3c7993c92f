# Copyright (c) OpenMMLab. All rights reserved.
from .local_visualizer import RVOSLocalVisualizer, evenly_spaced, legend_entry
from .rvos_drawing import (PALETTE, draw_legend, draw_masks, frame_with_legend,
                           make_strip, sentence_colour, upscale_factor)

__all__ = [
    'PALETTE', 'draw_legend', 'draw_masks', 'frame_with_legend',
    'make_strip', 'sentence_colour', 'upscale_factor', 'RVOSLocalVisualizer',
    'legend_entry', 'evenly_spaced'
]
