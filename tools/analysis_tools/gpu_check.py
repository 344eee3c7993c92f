# Copyright (c) OpenMMLab. All rights reserved.
"""Check that DMFormer works on this machine's GPU, in one command.

With CUDA (``--device cuda``, or ``auto`` on a machine with a GPU) it runs,
on one GPU:

a. mmcv's CUDA multi-scale deformable-attention kernel
   (``MultiScaleDeformableAttnFunction``) against mmcv's PyTorch path
   (``multi_scale_deformable_attn_pytorch``) on the same GPU tensors, in
   float32 and float64: the output and the gradients of the value, the
   sampling locations and the attention weights;
b. ``--train-iters`` (20) training iterations of the paper config
   (``tools/train.py --data-root``) on a synthetic dataset in the
   Ref-YouTube-VOS layout written to the work dir, with random weights
   (``load_from=None``, and ``default_hooks.pretrained_weights.check_frozen
   =False`` where the config has that hook): seconds per iteration (median
   of the iterations after the first quarter, at most 5 left out) and the
   peak GPU memory (``torch.cuda.max_memory_allocated`` in MiB, the
   ``memory`` field MMEngine logs every iteration on CUDA);
c. inference frames/s of the paper model on 5-frame 360 x 640 clips
   (``benchmark_inference.py``: 3 warm-up and 10 timed clips);
d. inference under fp16 and bf16 autocast (``model.test_cfg.amp``) against
   float32 (TF32 off) on a synthetic video, paper model with seeded
   weights: the mean IoU of the predicted masks over sentences and frames,
   and the largest difference of the last decoder layer's mask logits
   relative to the largest float32 logit;
e. ``tools/dist_train.sh CONFIG 1`` with the NCCL backend for
   ``--dist-iters`` (3) iterations of the paper config.

Without CUDA (``--device cpu``, or ``auto`` without a GPU) the checks that
need no GPU run instead, on the tiny config and a tiny synthetic dataset:
``--train-iters`` (2) training iterations, ``dist_train.sh CONFIG 1`` with
gloo for ``--dist-iters`` (2) iterations and bf16 CPU autocast against
float32; the GPU-only rows read ``skipped (no CUDA)``. In both modes the
deformable-attention rows on the CPU compare DMFormer's CPU path
(``multi_scale_deformable_attn_gather``, and :class:`MSDeformAttn`
against mmcv's module) with mmcv's PyTorch path, outputs and gradients.

The report is a table: check, result, figure, status (``pass``, ``FAIL``
or ``skipped (...)``). The exit status is 1 if any check failed, else 0.
``--tol-scale`` multiplies every tolerance (0 makes every check that
measures a difference fail, to see the failure path).

Tolerances:

- deformable attention, on the largest difference relative to the largest
  absolute value of the reference: float64 1e-10 and float32 1e-4. The
  paths differ only in rounding (the cell coordinates, the order of the
  sums, atomic additions in the CUDA backward); the CPU gather path
  differs from mmcv's PyTorch path by 3e-15 (float64) and 8e-7 (float32);
- autocast: mean mask IoU at least 0.98 (fp16) and 0.93 (bf16), and the
  largest mask-logit difference at most 3% (fp16) and 30% (bf16) of the
  largest float32 logit. fp16 keeps 11 significant bits, bf16 8. Measured
  with CPU autocast on 3 frames of 360 x 360 (the GPU figures are not
  measured yet): the seeded paper model, IoU 0.996 / 0.968 and logit
  difference 0.9% / 11.2% (fp16 / bf16); the seeded tiny model on 96 x 96
  frames, 0.9995 / 0.996 and 0.3% / 3.3%. The limits leave two to four
  times these differences: the masks of seeded random weights are ragged
  (many pixels near the threshold), so their IoU is lower than that of
  trained weights; a broken autocast (overflow, NaN, a wrong cast) gives
  IoUs far below.

Examples::

    python tools/analysis_tools/gpu_check.py        # the GPU if there is one
    python tools/analysis_tools/gpu_check.py --device cpu --json check.json
"""
import argparse
import contextlib
import io
import json
import math
import os
import os.path as osp
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from dmformer.testing import REPO_ROOT, load_script

PAPER_CONFIG = 'configs/dmformer/dmformer_swin-t_4xb1-6e_ref-ytvos.py'
TINY_CONFIG = 'configs/dmformer/dmformer_tiny_synthetic.py'
CHECKS = ('msda', 'amp', 'infer', 'train', 'dist')
SKIPPED = 'skipped (no CUDA)'
#: relative tolerances of the deformable-attention comparisons
MSDA_TOL = {torch.float32: 1e-4, torch.float64: 1e-10}
#: autocast: (min mean mask IoU, max mask-logit difference / max logit)
AMP_LIMITS = {'fp16': (0.98, 0.03), 'bf16': (0.93, 0.3)}
#: sentences of the autocast check
AMP_TEXTS = ('the big orange diamond', 'the small striped square far from '
             'the big orange diamond', 'the red circle moving left')


class Row:
    """One line of the report.

    Args:
        check (str): What was checked.
        result (str): What came out, in words.
        figure (str): The measured figures.
        status (str): ``'pass'``, ``'FAIL'`` or ``'skipped (...)'``.
        info (dict, optional): The figures as numbers (for ``--json``).
    """

    def __init__(self,
                 check: str,
                 result: str = '',
                 figure: str = '',
                 status: str = 'pass',
                 info: Optional[Dict] = None) -> None:
        self.check = check
        self.result = result
        self.figure = figure
        self.status = status
        self.info = info or {}

    def as_dict(self) -> Dict:
        return dict(check=self.check, result=self.result,
                    figure=self.figure, status=self.status, info=self.info)


def status_of(ok: bool) -> str:
    return 'pass' if ok else 'FAIL'


def attempt(check: str, fn: Callable[[], Row]) -> Row:
    """``fn()`` under the name ``check``, or a FAIL row naming the error
    if it raises (a broken check must not stop the others)."""
    try:
        row = fn()
    except Exception as error:
        message = ' '.join(str(error).split())
        row = Row(check, f'{type(error).__name__}: {message}'[:160], '',
                  'FAIL')
    row.check = check
    return row


# ----------------------------------------------------------------------
# a. multi-scale deformable attention
# ----------------------------------------------------------------------
#: (h, w) of the four levels of the deformable-attention inputs
MSDA_SHAPES = ((24, 40), (12, 20), (6, 10), (3, 5))
TENSOR_NAMES = ('output', 'd value', 'd locations', 'd weights')


def level_starts(shapes: torch.Tensor) -> torch.Tensor:
    areas = shapes.prod(1)
    return torch.cat((areas.new_zeros(1), areas.cumsum(0)[:-1]))


def msda_inputs(dtype: torch.dtype, device: str,
                num_queries: int = 300) -> Tuple[torch.Tensor, ...]:
    """Random inputs of the attention core and an output gradient.

    Returns:
        tuple: value (2, num_value, 8, 32), spatial shapes, level starts,
        sampling locations in [-0.1, 1.1] (some points fall outside the
        maps), attention weights summing to 1 per query and head, and the
        gradient of the (2, num_queries, 256) output.
    """
    gen = torch.Generator().manual_seed(0)
    bs, heads, dims, points = 2, 8, 32, 4
    levels = len(MSDA_SHAPES)
    shapes = torch.tensor(MSDA_SHAPES)
    f64 = dict(generator=gen, dtype=torch.float64)
    value = torch.randn(bs, int(shapes.prod(1).sum()), heads, dims, **f64)
    locations = torch.rand(bs, num_queries, heads, levels, points, 2,
                           **f64) * 1.2 - 0.1
    weights = torch.randn(bs, num_queries, heads, levels * points,
                          **f64).softmax(-1).view(bs, num_queries, heads,
                                                  levels, points)
    grad_out = torch.randn(bs, num_queries, heads * dims, **f64)
    value, locations, weights, grad_out = (
        t.to(device, dtype) for t in (value, locations, weights, grad_out))
    return (value, shapes.to(device), level_starts(shapes).to(device),
            locations, weights, grad_out)


def forward_backward(fn: Callable, value: torch.Tensor,
                     locations: torch.Tensor, weights: torch.Tensor,
                     grad_out: torch.Tensor) -> List[torch.Tensor]:
    """``[output, d value, d locations, d weights]`` of ``fn(value,
    locations, weights)`` for the output gradient ``grad_out``."""
    inputs = [t.detach().clone().requires_grad_(True)
              for t in (value, locations, weights)]
    out = fn(*inputs)
    grads = torch.autograd.grad(out, inputs, grad_out)
    return [out.detach()] + [g.detach() for g in grads]


def compare(got: Sequence[torch.Tensor],
            want: Sequence[torch.Tensor],
            names: Sequence[str] = TENSOR_NAMES) -> Tuple[float, str]:
    """The largest difference of ``got`` and ``want`` relative to the
    largest absolute value of ``want``, over the tensor pairs, and the name
    of the pair where it is (inf for a shape mismatch or NaN)."""
    worst, where = -1., ''
    for name, a, b in zip(names, got, want):
        if a.shape != b.shape:
            return math.inf, name
        scale = float(b.abs().max()) or 1.
        err = float((a.double() - b.double()).abs().max()) / scale
        if not err <= math.inf:  # NaN
            err = math.inf
        if err > worst:
            worst, where = err, name
    return worst, where


def diff_row(what: str, err: float, where: str, tol: float) -> Row:
    ok = err <= tol
    return Row('', f'{what} agree' if ok else f'{where} differs',
               f'max rel. diff {err:.1e} ({where}; limit {tol:.0e})',
               status_of(ok), dict(max_rel_diff=err, where=where, limit=tol))


def check_msda_cuda(dtype: torch.dtype, tol_scale: float) -> Row:
    """mmcv's CUDA kernel against mmcv's PyTorch path on the GPU."""
    from mmcv.ops.multi_scale_deform_attn import (
        MultiScaleDeformableAttnFunction, multi_scale_deformable_attn_pytorch)
    value, shapes, starts, locations, weights, grad_out = msda_inputs(
        dtype, 'cuda')

    def kernel(v, loc, w):
        return MultiScaleDeformableAttnFunction.apply(v, shapes, starts, loc,
                                                      w, 64)

    def pytorch(v, loc, w):
        return multi_scale_deformable_attn_pytorch(v, shapes, loc, w)

    got = forward_backward(kernel, value, locations, weights, grad_out)
    want = forward_backward(pytorch, value, locations, weights, grad_out)
    return diff_row('output and gradients', *compare(got, want),
                    MSDA_TOL[dtype] * tol_scale)


def check_msda_gather(dtype: torch.dtype, tol_scale: float) -> Row:
    """DMFormer's CPU gather path against mmcv's PyTorch path: the output
    (the gather path serves inference only; :class:`MSDeformAttn` runs
    mmcv's path whenever gradients are needed, see
    :func:`check_msda_module`)."""
    from mmcv.ops.multi_scale_deform_attn import \
        multi_scale_deformable_attn_pytorch

    from dmformer.models.layers import multi_scale_deformable_attn_gather
    value, shapes, _, locations, weights, _ = msda_inputs(dtype, 'cpu')
    with torch.no_grad():  # several chunks of queries per sample
        got = multi_scale_deformable_attn_gather(
            value, shapes, locations, weights, chunk_size=128)
        want = multi_scale_deformable_attn_pytorch(value, shapes, locations,
                                                   weights)
    return diff_row('outputs', *compare([got], [want]),
                    MSDA_TOL[dtype] * tol_scale)


def check_msda_module(tol_scale: float) -> Row:
    """:class:`MSDeformAttn` against mmcv's module in float64 on the CPU:
    the output without gradients (DMFormer's gather path), and with them
    (mmcv's PyTorch path, which :class:`MSDeformAttn` must dispatch to)
    the output and the gradients of the query, value and parameters."""
    from mmcv.ops import MultiScaleDeformableAttention

    from dmformer.models.layers import MSDeformAttn
    torch.manual_seed(0)
    levels = len(MSDA_SHAPES)
    cfg = dict(embed_dims=64, num_heads=4, num_levels=levels, num_points=4,
               batch_first=True)
    ref = MultiScaleDeformableAttention(**cfg)
    for param in ref.parameters():  # offsets spread over the maps
        torch.nn.init.normal_(param, std=0.3)
    ours = MSDeformAttn(**cfg, chunk_size=64)
    ours.load_state_dict(ref.state_dict())
    ref, ours = ref.double().eval(), ours.double().eval()
    gen = torch.Generator().manual_seed(1)
    f64 = dict(generator=gen, dtype=torch.float64)
    shapes = torch.tensor(MSDA_SHAPES)
    query = torch.randn(2, 100, 64, **f64)
    value = torch.randn(2, int(shapes.prod(1).sum()), 64, **f64)
    kwargs = dict(
        reference_points=torch.rand(2, 100, levels, 2, **f64),
        spatial_shapes=shapes,
        level_start_index=level_starts(shapes))
    outs = []
    for module in (ours, ref):
        with torch.no_grad():
            no_grad = module(query, value=value, **kwargs)
        inputs = [t.clone().requires_grad_(True) for t in (query, value)]
        out = module(inputs[0], value=inputs[1], **kwargs)
        grads = torch.autograd.grad(out.square().sum(),
                                    inputs + list(module.parameters()))
        outs.append([no_grad, out.detach()] + [g.detach() for g in grads])
    names = ['output (no grad)', 'output', 'd query', 'd value'] + [
        f'd {name}' for name, _ in ours.named_parameters()
    ]
    return diff_row('outputs and gradients', *compare(*outs, names),
                    MSDA_TOL[torch.float64] * tol_scale)


# ----------------------------------------------------------------------
# b, e. training with tools/train.py and tools/dist_train.sh
# ----------------------------------------------------------------------
def make_data(root: str, cuda: bool) -> str:
    """The synthetic Ref-YouTube-VOS-layout dataset of the training runs
    under ``root`` (made once): 4 videos of 10 frames of 360 x 360 for the
    paper config (resized to a short side of 288-512 in training), 2 of 4
    frames of 64 x 64 for the tiny one."""
    from dmformer.datasets.synthetic_rvos import make_synthetic_rvos
    if not osp.isfile(osp.join(root, 'synthetic_rvos_info.json')):
        size, frames, videos = (360, 10, 4) if cuda else (64, 4, 2)
        make_synthetic_rvos(root, num_train=videos, num_valid=1,
                            num_frames=frames, size=size, seed=0,
                            overwrite=True)
    return root


def train_options(config: str, iters: int, cuda: bool) -> List[str]:
    """``--cfg-options`` of a short training run: ``iters`` iterations of
    an iteration-based loop (whatever the config's), every iteration
    logged unsmoothed, no checkpoint. On CUDA (the paper config) also
    random weights: no ``load_from`` and no check of converted frozen
    weights (where the config has that hook); on the CPU (the tiny config)
    clips of 2 instead of 4 per batch."""
    from mmengine.config import Config
    opts = [
        'train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        'log_processor.by_epoch=False', 'log_processor.window_size=1',
        'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.by_epoch=False',
        f'default_hooks.checkpoint.interval={iters + 1}',
        'default_hooks.checkpoint.save_last=False', 'randomness.seed=0'
    ]
    if not cuda:
        opts.append('train_dataloader.batch_size=2')
    else:
        opts.append('load_from=None')
        hooks = Config.fromfile(osp.join(REPO_ROOT, config)).get(
            'default_hooks') or {}
        if 'pretrained_weights' in hooks:
            opts.append('default_hooks.pretrained_weights.check_frozen=False')
    return opts


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_training(cmd: List[str], work_dir: str, timeout: float,
                 env: Dict[str, str]) -> Tuple[int, str, List[Dict]]:
    """Run a training command in the repository root.

    Returns:
        tuple: The exit status (-1 on timeout), the output, and the
        training records of MMEngine's ``scalars.json`` under ``work_dir``
        (``time``, ``loss``, on CUDA ``memory``, ...).
    """
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, **env))
        code, log = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        code, log = -1, f'timed out after {timeout:.0f} s'
    records = []
    for root, _, files in os.walk(work_dir):
        if osp.basename(root) == 'vis_data' and 'scalars.json' in files:
            with open(osp.join(root, 'scalars.json')) as f:
                records += [json.loads(line) for line in f if line.strip()]
    return code, log, [r for r in records if 'loss' in r and 'time' in r]


def last_line(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:200] if lines else 'no output'


def training_row(code: int, log: str, records: List[Dict],
                 iters: int) -> Row:
    """A training run passes when it exits with 0 and logs ``iters``
    iterations with finite losses. The figures: the median seconds per
    iteration after the warm-up iterations (a quarter, at most 5) and, on
    CUDA, the peak memory."""
    if code != 0:
        return Row('', f'exit {code}: {last_line(log)}', '', 'FAIL')
    if len(records) != iters:
        return Row('', f'{len(records)} of {iters} iterations logged', '',
                   'FAIL')
    losses = [float(r['loss']) for r in records]
    if not all(math.isfinite(v) for v in losses):
        return Row('', f'non-finite loss: {losses}', '', 'FAIL')
    times = [float(r['time']) for r in records[min(5, iters // 4):]]
    info = dict(seconds_per_iter=statistics.median(times),
                first_loss=losses[0], last_loss=losses[-1])
    figure = f'{info["seconds_per_iter"]:.3f} s/iter'
    memory = [float(r['memory']) for r in records if 'memory' in r]
    if memory:
        info['peak_memory_mib'] = max(memory)
        figure += f', peak {max(memory):.0f} MiB'
    return Row('', f'loss {losses[0]:.3f} -> {losses[-1]:.3f}', figure,
               'pass', info)


def check_train(config: str, data_root: str, work_dir: str, iters: int,
                cuda: bool, timeout: float) -> Row:
    """``tools/train.py`` for ``iters`` iterations on ``data_root``."""
    cmd = [
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--no-validate', '--data-root', data_root, '--cfg-options'
    ] + train_options(config, iters, cuda)
    env = {} if cuda else dict(CUDA_VISIBLE_DEVICES='')
    return training_row(*run_training(cmd, work_dir, timeout, env), iters)


def check_dist(config: str, data_root: str, work_dir: str, iters: int,
               cuda: bool, timeout: float) -> Row:
    """``tools/dist_train.sh CONFIG 1`` for ``iters`` iterations: NCCL on
    CUDA, gloo on the CPU."""
    backend = 'nccl' if cuda else 'gloo'
    cmd = [
        'bash', 'tools/dist_train.sh', config, '1', '--work-dir', work_dir,
        '--no-validate', '--data-root', data_root, '--cfg-options'
    ] + train_options(config, iters, cuda) + [
        f'env_cfg.dist_cfg.backend={backend}'
    ]
    env = dict(PYTHON=sys.executable, PORT=str(free_port()))
    if cuda:
        env['NCCL_DEBUG'] = 'VERSION'  # NCCL prints its version once used
    else:
        env['CUDA_VISIBLE_DEVICES'] = ''
    code, log, records = run_training(cmd, work_dir, timeout, env)
    row = training_row(code, log, records, iters)
    if row.status != 'pass':
        return row
    if 'Distributed training: True' not in log:
        return Row('', 'the run was not distributed', '', 'FAIL')
    if cuda and 'using the gloo backend' in log:
        return Row('', 'fell back to gloo', '', 'FAIL')
    nccl = [line.split('NCCL version', 1)[1].split()[:1]
            for line in log.splitlines() if 'NCCL version' in line]
    row.result = f'{backend}, {row.result}' + (
        f' (NCCL {nccl[0][0]})' if nccl and nccl[0] else '')
    return row


# ----------------------------------------------------------------------
# c. inference speed
# ----------------------------------------------------------------------
def check_inference(config: str, device: str = 'cuda') -> Row:
    """Frames/s of ``benchmark_inference.py`` on 5 x 360 x 640 clips."""
    bench = load_script('tools/analysis_tools/benchmark_inference.py')
    with contextlib.redirect_stdout(io.StringIO()):
        result = bench.main([
            osp.join(REPO_ROOT, config), '--device', device, '--num-frames',
            '5', '--shape', '360', '640', '--repeat', '10', '--warmup', '3'
        ])
    fps = result['frames_per_second']
    return Row('', f'{result["seconds_per_clip"]:.3f} s/clip',
               f'{fps:.1f} frames/s, peak {result["peak_memory_mb"]:.0f} MiB',
               status_of(math.isfinite(fps) and fps > 0),
               dict(frames_per_second=fps,
                    seconds_per_clip=result['seconds_per_clip'],
                    peak_memory_mib=result['peak_memory_mb']))


# ----------------------------------------------------------------------
# d. autocast agreement
# ----------------------------------------------------------------------
@contextlib.contextmanager
def full_float32():
    """Float32 matrix products and convolutions on CUDA (no TF32)."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


class AmpModel:
    """A model with seeded weights (:func:`dmformer.testing.seeded_parameters`)
    and a synthetic video, segmented for :data:`AMP_TEXTS` under each
    autocast setting.

    Args:
        config (str): Config file.
        device (str): ``'cpu'`` or ``'cuda'``.
        num_frames (int): Frames of the video.
        size (int): Frame height and width.
    """

    def __init__(self, config: str, device: str, num_frames: int,
                 size: int) -> None:
        import numpy as np

        from dmformer.apis import init_model
        from dmformer.datasets.synthetic_rvos import generate_video
        from dmformer.testing import seeded_parameters
        self.model = init_model(osp.join(REPO_ROOT, config), device=device)
        seeded_parameters(self.model)
        video = generate_video(
            np.random.default_rng(0), num_frames=num_frames, size=size)
        self.frames = list(video['frames'])
        self.reference = self.run(None)

    def run(self, amp: Optional[str]) -> List[Tuple[torch.Tensor,
                                                    torch.Tensor]]:
        """``[(masks, last decoder layer's mask logits)]``, one pair per
        sentence, under autocast ``amp`` (None: float32)."""
        from dmformer.apis import inference_clip
        head = self.model.bbox_head
        predict, logits = head.predict_by_feat, []

        def recording(head_outs, *args, **kwargs):
            logits.append(head_outs['all_mask_preds'][-1].detach().cpu())
            return predict(head_outs, *args, **kwargs)

        head.predict_by_feat = recording
        self.model.test_cfg['amp'] = amp
        try:
            with full_float32():
                masks = [
                    inference_clip(self.model, self.frames,
                                   [text])[0].pred_instances.masks.cpu()
                    for text in AMP_TEXTS
                ]
        finally:
            self.model.test_cfg['amp'] = None
            del head.predict_by_feat  # back to the class method
        return list(zip(masks, logits))

    def agreement(self, amp: str) -> Tuple[float, float, float]:
        """The mean mask IoU with float32 (over sentences and frames), the
        largest logit difference relative to the largest float32 logit,
        and the share of pixels inside the float32 masks."""
        ious, covers, diff, scale = [], [], 0., 0.
        for (ref_masks, ref_logits), (masks, logits) in zip(
                self.reference, self.run(amp)):
            for a, b in zip(ref_masks, masks):
                union = int((a | b).sum())
                ious.append(1. if union == 0 else int((a & b).sum()) / union)
                covers.append(float(a.float().mean()))
            diff = max(diff, float((logits - ref_logits).abs().max()))
            scale = max(scale, float(ref_logits.abs().max()))
        rel = diff / (scale or 1.) if math.isfinite(diff) else math.inf
        return statistics.fmean(ious), rel, statistics.fmean(covers)


def check_amp(model: AmpModel, amp: str, tol_scale: float) -> Row:
    """One autocast setting against float32 (limits :data:`AMP_LIMITS`)."""
    min_iou, max_rel = AMP_LIMITS[amp]
    min_iou = 1 - (1 - min_iou) * tol_scale
    max_rel *= tol_scale
    iou, rel, cover = model.agreement(amp)
    ok = iou >= min_iou and rel <= max_rel
    return Row('', f'float32 masks cover {100 * cover:.1f}% of the pixels',
               f'mask IoU {iou:.4f} (>= {min_iou:.3f}), logit diff '
               f'{100 * rel:.2f}% (<= {100 * max_rel:.1f}%)', status_of(ok),
               dict(mean_iou=iou, logit_rel_diff=rel, mask_cover=cover))


# ----------------------------------------------------------------------
# the command
# ----------------------------------------------------------------------
def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Check DMFormer on this machine\'s GPU (without one, '
        'the parts that need no GPU) and report a table.')
    parser.add_argument(
        '--device',
        default='auto',
        choices=['auto', 'cuda', 'cpu'],
        help='auto (default): CUDA if available, else the CPU checks')
    parser.add_argument(
        '--checks',
        default=','.join(CHECKS),
        help=f'comma-separated subset of {",".join(CHECKS)} (default: all)')
    parser.add_argument(
        '--train-iters',
        type=int,
        default=None,
        help='training iterations (default: 20 on CUDA, 2 on the CPU)')
    parser.add_argument(
        '--dist-iters',
        type=int,
        default=None,
        help='iterations of dist_train.sh (default: 3 on CUDA, 2 on the '
        'CPU)')
    parser.add_argument(
        '--tol-scale',
        type=float,
        default=1.,
        help='multiply every tolerance by this (0: any difference fails)')
    parser.add_argument(
        '--timeout',
        type=float,
        default=420.,
        help='seconds each training command may run (default 420)')
    parser.add_argument(
        '--work-dir',
        help='keep the synthetic data and the training runs here '
        '(default: a temporary folder, removed at the end)')
    parser.add_argument('--json', help='also write the rows to this file')
    return parser.parse_args(argv)


def resolve(args: argparse.Namespace) -> Tuple[bool, List[str]]:
    """Whether to run on CUDA, and the checks; ValueError on bad
    arguments."""
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: CUDA is not available')
    checks = [c.strip() for c in args.checks.split(',') if c.strip()]
    unknown = sorted(set(checks) - set(CHECKS))
    if unknown or not checks:
        raise ValueError(f'--checks: unknown {", ".join(unknown) or "(none)"}'
                         f'; choose among {", ".join(CHECKS)}')
    for name in ('train_iters', 'dist_iters'):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f'--{name.replace("_", "-")} must be >= 1, '
                             f'got {value}')
    if not args.tol_scale >= 0:
        raise ValueError(f'--tol-scale must be >= 0, got {args.tol_scale}')
    if args.timeout <= 0:
        raise ValueError(f'--timeout must be positive, got {args.timeout}')
    cuda = args.device == 'cuda' or (args.device == 'auto'
                                     and torch.cuda.is_available())
    return cuda, checks


def free_cuda() -> None:
    """Give the memory PyTorch caches back between the checks."""
    if torch.cuda.is_available():
        import gc
        gc.collect()
        torch.cuda.empty_cache()


def run_checks(args: argparse.Namespace, cuda: bool, checks: List[str],
               work_dir: str) -> List[Row]:
    """Run the chosen checks in order; in CPU mode the GPU-only rows are
    listed as skipped."""
    rows: List[Row] = []
    tol = args.tol_scale
    device = 'cuda' if cuda else 'cpu'
    skipped = SKIPPED if not torch.cuda.is_available() else \
        'skipped (--device cpu)'

    def gpu_only(check: str, fn: Callable[[], Row]) -> None:
        rows.append(attempt(check, fn) if cuda else Row(check, '', '',
                                                        skipped))
        free_cuda()

    if 'msda' in checks:
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).replace('torch.', '')
            with full_float32():
                gpu_only(f'deform-attn CUDA kernel vs PyTorch, {name}, '
                         'fwd+bwd',
                         lambda d=dtype: check_msda_cuda(d, tol))
        for dtype in (torch.float32, torch.float64):
            name = str(dtype).replace('torch.', '')
            rows.append(attempt(
                f'deform-attn CPU gather vs PyTorch, {name}, forward',
                lambda d=dtype: check_msda_gather(d, tol)))
        rows.append(attempt('MSDeformAttn vs mmcv module, float64, fwd+bwd',
                            lambda: check_msda_module(tol)))
    if 'amp' in checks:
        config, name = (PAPER_CONFIG, 'paper') if cuda else (TINY_CONFIG,
                                                             'tiny')
        amps = ('fp16', 'bf16') if cuda else ('bf16', )
        if not cuda:
            rows.append(Row('fp16 autocast vs float32, paper config', '', '',
                            skipped))
        model: List[AmpModel] = []

        def amp_row(amp: str) -> Row:
            if not model:  # built once, for all the settings
                model.append(AmpModel(config, device, 5 if cuda else 3,
                                      360 if cuda else 96))
            if amp == 'bf16' and cuda and not torch.cuda.is_bf16_supported():
                return Row('', 'the GPU has no bf16', '', 'skipped (no bf16)')
            return check_amp(model[0], amp, tol)

        for amp in amps:
            rows.append(attempt(
                f'{amp} autocast vs float32, {name} config ({device})',
                lambda a=amp: amp_row(a)))
        model.clear()
        free_cuda()
    if 'infer' in checks:
        gpu_only('inference, paper config, 5 x 360 x 640 (cuda)',
                 lambda: check_inference(PAPER_CONFIG))
    data_root = osp.join(work_dir, 'data')
    for kind, fn in (('train', check_train), ('dist', check_dist)):
        if kind not in checks:
            continue
        if not cuda:
            rows.append(Row(run_title(kind, args, True), '', '', skipped))
        iters = run_iters(kind, args, cuda)
        rows.append(attempt(
            run_title(kind, args, cuda),
            lambda f=fn, k=kind, n=iters: f(
                PAPER_CONFIG if cuda else TINY_CONFIG,
                make_data(data_root, cuda), osp.join(work_dir, k), n, cuda,
                args.timeout)))
    return rows


def run_iters(kind: str, args: argparse.Namespace, cuda: bool) -> int:
    """Iterations of the ``'train'`` or ``'dist'`` run."""
    if kind == 'train':
        return args.train_iters or (20 if cuda else 2)
    return args.dist_iters or (3 if cuda else 2)


def run_title(kind: str, args: argparse.Namespace, cuda: bool) -> str:
    """The check name of the ``'train'`` or ``'dist'`` run: the paper
    config on CUDA, the tiny one on the CPU."""
    iters = run_iters(kind, args, cuda)
    where = 'paper config (cuda)' if cuda else 'tiny config (cpu)'
    if kind == 'train':
        return f'train {iters} iters, {where}'
    backend = 'nccl' if cuda else 'gloo'
    return f'dist_train.sh CONFIG 1, {iters} iters, {backend}, {where}'


def print_report(rows: List[Row]) -> None:
    """The rows as an aligned table."""
    header = Row('check', 'result', 'figure', 'status')
    fields = ('check', 'result', 'figure')
    widths = {
        f: max(len(getattr(r, f)) for r in [header] + rows)
        for f in fields
    }
    for row in [header] + rows:
        print('  '.join(f'{getattr(row, f):<{widths[f]}}'
                        for f in fields) + f'  {row.status}')


def main(argv: Optional[List[str]] = None) -> int:
    """Run the checks and print the table; returns 1 if any check failed,
    else 0."""
    args = parse_args(argv)
    cuda, checks = resolve(args)
    from dmformer.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    load_script('tools/analysis_tools/benchmark_inference.py').quiet_logger()
    work_dir = osp.abspath(args.work_dir) if args.work_dir else \
        tempfile.mkdtemp(prefix='dmformer_gpu_check_')
    os.makedirs(work_dir, exist_ok=True)
    start = time.perf_counter()
    try:
        rows = run_checks(args, cuda, checks, work_dir)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.perf_counter() - start
    where = torch.cuda.get_device_name() if cuda else 'the CPU (no CUDA)'
    print(f'DMFormer check on {where}, torch {torch.__version__}, '
          f'{seconds:.0f} s')
    print_report(rows)
    failed = sum(row.status == 'FAIL' for row in rows)
    passed = sum(row.status == 'pass' for row in rows)
    print(f'{failed} of {failed + passed} checks failed' if failed else
          f'all {passed} checks that ran passed')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(
                dict(device=where, torch=torch.__version__, seconds=seconds,
                     rows=[row.as_dict() for row in rows]), f, indent=2)
    return 1 if failed else 0


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
