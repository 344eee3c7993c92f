# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
from typing import Optional, Sequence

import mmcv
from mmengine import fileio
from mmengine.hooks import Hook
from mmengine.visualization import Visualizer

from dmformer.registry import HOOKS


@HOOKS.register_module()
class RVOSVisualizationHook(Hook):
    """Draw the test (and validation) predictions, the RVOS counterpart of
    mmdet's ``DetVisualizationHook``.

    For every ``interval``-th sample, the frames listed in its
    ``img_paths`` metainfo are read and the runner's visualizer
    (:class:`~dmformer.visualization.RVOSLocalVisualizer`) draws a strip of
    a few frames with the ground truth (when the split has it) above the
    prediction, titled with the sentence, the chosen subject phrase and the
    mean score. With ``test_out_dir`` the pictures of a test run are
    written to ``<work_dir>/<timestamp>/<test_out_dir>/<video>/<exp_id>.jpg``
    (``tools/test.py --show-dir``); otherwise they go to the visualizer's
    backends. Off unless ``draw=True``.

    Args:
        draw (bool): Whether to draw at all. Defaults to False.
        interval (int): Draw every ``interval``-th sample of a test run and
            every ``interval``-th batch of a validation run. Defaults to 1.
        show (bool): Show the pictures in a window. Defaults to False.
        wait_time (float): Seconds a shown picture stays. Defaults to 0.
        test_out_dir (str, optional): Folder (under the run's log folder)
            for the test pictures. Defaults to None.
        backend_args (dict, optional): File backend arguments of the
            frames. Defaults to None.
    """

    def __init__(self,
                 draw: bool = False,
                 interval: int = 1,
                 show: bool = False,
                 wait_time: float = 0.,
                 test_out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.draw = draw
        self.interval = interval
        self.show = show
        self.wait_time = wait_time
        self.test_out_dir = test_out_dir
        self.backend_args = backend_args
        self._test_index = 0

    def _frames(self, sample) -> list:
        """The sample's frames as uint8 RGB arrays (from ``img_paths``)."""
        paths = sample.metainfo.get('img_paths')
        if not paths:
            raise KeyError('RVOSVisualizationHook needs the img_paths '
                           'metainfo (PackRVOSInputs meta_keys)')
        return [
            mmcv.imfrombytes(
                fileio.get(p, backend_args=self.backend_args),
                channel_order='rgb') for p in paths
        ]

    def _draw(self, runner, sample, step: int,
              out_file: Optional[str]) -> None:
        visualizer: Visualizer = runner.visualizer
        meta = sample.metainfo
        visualizer.add_datasample(
            f"{meta.get('video_id')}/{meta.get('exp_id')}",
            self._frames(sample),
            sample,
            show=self.show,
            wait_time=self.wait_time,
            out_file=out_file,
            step=step)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence) -> None:
        """Draw the first sample of every ``interval``-th batch."""
        if not self.draw or not outputs or \
                not self.every_n_inner_iters(batch_idx, self.interval):
            return
        self._draw(runner, outputs[0], runner.iter, None)

    def before_test(self, runner) -> None:
        self._test_index = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence) -> None:
        """Draw every ``interval``-th sample of the test run."""
        if not self.draw:
            return
        for sample in outputs:
            self._test_index += 1
            if (self._test_index - 1) % self.interval:
                continue
            out_file = None
            if self.test_out_dir is not None:
                meta = sample.metainfo
                out_file = osp.join(runner.log_dir, self.test_out_dir,
                                    str(meta.get('video_id')),
                                    f"{meta.get('exp_id')}.jpg")
            self._draw(runner, sample, self._test_index, out_file)
