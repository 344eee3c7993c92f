# Copyright (c) OpenMMLab. All rights reserved.
"""Measure DMFormer inference speed (frames/s) and peak memory.

The model (``init_model``: eval mode, optional checkpoint) segments one
random clip of ``--num-frames`` frames of size ``--shape H W`` with a fixed
sentence, ``--warmup`` untimed then ``--repeat`` timed times. With
``--num-sentences N`` the clip is segmented for N sentences in one call (as
``inference_clip`` and the demo do: the visual features are computed once
and shared), and the one-sentence call is timed in the same run, so the
cost ratio of N sentences to one is measured side by side. With
``--one-by-one`` the N sentences are instead N consecutive one-sentence
calls on the same frames, as ``tools/test.py`` runs the expressions of a
video (the model keeps the visual features of the previous call,
``test_cfg.reuse_visual``; ``--cfg-options
model.test_cfg.reuse_visual=False`` measures the cost without). Every
timed run starts without kept features.

``--stages`` adds a per-stage report: the seconds of the text encoder
(``language_model``), subject head, backbone, input projection (``neck``),
decoupled interaction (``encoder``), ``bbox_head`` (decoder, pixel decoder,
mask head) and post-processing (``bbox_head.predict_by_feat``),
timed by
hooks inside the same runs (median over the timed runs; "other" is the
rest of ``test_step``: preprocessing, tokenisation, subject selection),
their share, their multiply-accumulates from one extra run under
``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions; element-wise work such as the deformable-attention sampling
is not counted) and the achieved GMAC/s, plus the ratio of the whole call
to the backbone. A timed run is
one ``model.test_step`` call: data preprocessing (normalisation, padding)
and the ``predict`` forward, including the subject selection and the mask
post-processing; the noun chunks are given in ``metainfo`` as the data
pipeline does, so spaCy is not timed.

Peak memory, over the warm-up runs (at least one; the timed runs go
without the sampling thread, which would slow them down):

- CUDA: ``torch.cuda.max_memory_allocated`` (tensors only: weights,
  activations and workspaces, after ``reset_peak_memory_stats``).
- CPU: peak resident set size (RSS) of the process, sampled every ~1 ms by
  a thread from ``/proc/self/statm``, minus the RSS once the model is
  built, i.e. the activations, workspaces and allocator caches of the runs
  (weights excluded). It can miss spikes shorter than the sampling period.
  The absolute peak RSS is reported as ``peak_rss_mb``.

Example::

    python tools/analysis_tools/benchmark_inference.py \
        configs/dmformer/dmformer_tiny_synthetic.py \
        --num-frames 5 --shape 128 128 --repeat 10 --warmup 2 \
        --json work_dirs/bench_infer.json
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import DictAction

TEXT = 'a person riding a red bike on the left'
#: further sentences for --num-sentences (several expressions of one clip)
MORE_TEXTS = ('the dog running on the right', 'a white car parked near the '
              'tree', 'the man in a blue shirt waving his hand',
              'the small bird on the branch')


class PeakMemory:
    """Peak memory over a ``with`` block (see the module docstring).

    Args:
        device (str): ``'cpu'`` or ``'cuda'``.
        interval (float): RSS sampling period in seconds (CPU only).

    Attributes:
        peak_mb (float): Peak memory in MiB after the block.
        method (str): How it was measured.
    """

    def __init__(self, device: str, interval: float = 1e-3) -> None:
        self.device = device
        self.interval = interval
        self.peak_mb = 0.
        self.peak_rss_mb = 0.
        self.method = 'torch.cuda.max_memory_allocated' \
            if device.startswith('cuda') else \
            'sampled peak RSS delta (/proc/self/statm)'
        self._page = os.sysconf('SC_PAGE_SIZE') if hasattr(
            os, 'sysconf') else 4096
        self._stop = threading.Event()
        self._peak_rss = 0

    def _rss(self) -> int:
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * self._page
        except OSError:  # not Linux: the lifetime high-water mark
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_rss = max(self._peak_rss, self._rss())
            time.sleep(self.interval)

    def __enter__(self) -> 'PeakMemory':
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = self._rss()
            self._peak_rss = self._base
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self._peak_rss = max(self._peak_rss, self._rss())
            self.peak_mb = (self._peak_rss - self._base) / 2**20
            self.peak_rss_mb = self._peak_rss / 2**20


def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_runs(fn: Callable[[], object], device: str, warmup: int,
              repeat: int) -> Tuple[List[float], PeakMemory]:
    """Call ``fn`` ``warmup`` times (at least once) under
    :class:`PeakMemory`, then time ``repeat`` calls without it.

    The timed calls run without the memory sampler: on CPU its thread
    wakes every millisecond and slowed the paper model's calls by 7-8% on
    2 cores (measured), more in the stages with many small operations.

    Returns:
        tuple: the per-call seconds of the timed calls and the
        :class:`PeakMemory` of the warm-up calls.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f'repeat must be >= 1 and warmup >= 0, got '
                         f'{repeat} and {warmup}')
    with PeakMemory(device) as mem:
        for _ in range(max(1, warmup)):
            fn()
    times = []
    for _ in range(repeat):
        times += _timed(fn, device)
    return times, mem


def _timed(fn: Callable[[], object], device: str) -> List[float]:
    """``[seconds]`` of one call of ``fn``."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return [time.perf_counter() - start]


def make_clip_sample(num_frames: int,
                     shape: Tuple[int, int],
                     text: str = TEXT,
                     with_gt: bool = False,
                     generator: Optional[torch.Generator] = None
                     ) -> Tuple[torch.Tensor, object]:
    """A random uint8 clip (T, 3, H, W) and its :obj:`RVOSDataSample`.

    With ``with_gt`` the sample gets a random box-shaped GT mask per frame
    (object absent from one frame when T > 1), the matching boxes and the
    subject span of the first noun chunk.
    """
    from dmformer.structures import RVOSDataSample
    from dmformer.utils.noun_chunks import extract_noun_chunks
    h, w = shape
    frames = torch.randint(
        0, 256, (num_frames, 3, h, w), dtype=torch.uint8, generator=generator)
    chunks = [tuple(c) for c in extract_noun_chunks(text)]
    sample = RVOSDataSample(
        metainfo=dict(
            video_id='bench',
            exp_id='0',
            text=text,
            noun_chunks=chunks,
            frame_ids=[f'{i:05d}' for i in range(num_frames)],
            ori_shape=(h, w),
            img_shape=(h, w)))
    if with_gt:
        from mmengine.structures import InstanceData
        masks = torch.zeros(num_frames, h, w, dtype=torch.bool)
        boxes = torch.zeros(num_frames, 4)
        for i in range(num_frames):
            x0, y0 = (int(torch.randint(0, s // 2, (1, ),
                                        generator=generator))
                      for s in (w, h))
            x1 = x0 + 1 + int(
                torch.randint(0, w - x0 - 1, (1, ), generator=generator))
            y1 = y0 + 1 + int(
                torch.randint(0, h - y0 - 1, (1, ), generator=generator))
            masks[i, y0:y1, x0:x1] = True
            boxes[i] = torch.tensor([x0, y0, x1, y1], dtype=torch.float32)
        valid = torch.ones(num_frames, dtype=torch.bool)
        if num_frames > 1:  # the object leaves the last frame
            valid[-1] = False
            masks[-1] = False
            boxes[-1] = 0
        sample.gt_instances = InstanceData(
            masks=masks, bboxes=boxes, valid=valid)
        if chunks:
            sample.gt_subject_span = torch.tensor(chunks[0])
    return frames, sample


#: top-level modules of DMFormer timed by ``--stages``, in forward order
STAGES = ('language_model', 'subject_head', 'backbone', 'neck', 'encoder',
          'bbox_head')


class StageTimer:
    """Seconds spent in each top-level stage of a model, per call.

    Forward pre/post hooks time ``STAGES`` (those the model has); the
    ``predict`` method of the head (post-processing) is wrapped.
    :meth:`start` begins a call, :meth:`stop` stores its per-stage totals.
    """

    def __init__(self, model, device: str) -> None:
        self.device = device
        self.calls: List[Dict[str, float]] = []
        self._current: Dict[str, float] = {}
        self._handles = []
        self._begin: Dict[str, float] = {}
        self.stages = [s for s in STAGES if getattr(model, s, None)]
        for name in self.stages:
            module = getattr(model, name)
            self._handles.append(
                module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(
                module.register_forward_hook(self._post(name)))
        head = model.bbox_head
        self._predict = head.predict_by_feat

        def timed_predict(*args, **kwargs):
            self._pre('postprocess')(None, None)
            out = self._predict(*args, **kwargs)
            self._post('postprocess')(None, None, None)
            return out

        head.predict_by_feat = timed_predict
        self._head = head
        self.stages.append('postprocess')

    def _pre(self, name: str):

        def hook(module, args):
            synchronize(self.device)
            self._begin[name] = time.perf_counter()

        return hook

    def _post(self, name: str):

        def hook(module, args, out):
            synchronize(self.device)
            self._current[name] = self._current.get(name, 0.) + \
                time.perf_counter() - self._begin.pop(name)

        return hook

    def start(self) -> None:
        self._current = {}

    def stop(self) -> None:
        self.calls.append(self._current)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        del self._head.predict_by_feat  # back to the class method


def count_stage_macs(model, fn: Callable[[], object]) -> Dict[str, float]:
    """Multiply-accumulates (GMAC) of each stage in one call of ``fn``."""
    from torch.utils.flop_counter import FlopCounterMode

    # the counter's module tracker hooks tensors that require grad; a
    # parameter passed between modules would trip it
    trainable = [p for p in model.parameters() if p.requires_grad]
    for param in trainable:
        param.requires_grad_(False)
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        for param in trainable:
            param.requires_grad_(True)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    macs = {'total': sum(counts.get('Global', {}).values()) / 2e9}
    for name in STAGES:
        macs[name] = sum(counts.get(f'{root}.{name}', {}).values()) / 2e9
    return macs


def stage_rows(timer: StageTimer, times: List[float],
               macs: Dict[str, float]) -> List[Dict]:
    """One row per stage (+ other, total): seconds, share, GMAC, GMAC/s."""
    rows = []
    total = statistics.median(times)
    for name in timer.stages:
        sec = statistics.median(call.get(name, 0.) for call in timer.calls)
        rows.append(dict(stage=name, seconds=sec))
    rows.append(
        dict(stage='other', seconds=total - sum(r['seconds'] for r in rows)))
    rows.append(dict(stage='total', seconds=total))
    for row in rows:
        row['share'] = row['seconds'] / total
        gmac = macs.get(row['stage'])
        row['gmac'] = gmac
        row['gmac_per_s'] = gmac / row['seconds'] \
            if gmac is not None and row['seconds'] > 0 else None
    return rows


def quiet_logger() -> None:
    """Make a WARNING-level MMLogger current, so that building the model
    does not print its weight-initialisation log."""
    from mmengine.logging import MMLogger
    name = 'dmformer_benchmark'
    if not MMLogger.check_instance_created(name):
        MMLogger.get_instance(name, log_level='WARNING')


def print_table(rows: List[Tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f'{name:<{width}}  {value}')


def dump_json(result: Dict, path: Optional[str]) -> None:
    if path is None:
        return
    parent = osp.dirname(osp.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)
    print(f'results written to {path}')


def environment(device: str) -> Dict:
    env = dict(
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine())
    if device.startswith('cuda'):
        env['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return env


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Benchmark DMFormer inference.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--checkpoint', help='checkpoint to load')
    parser.add_argument('--num-frames', type=int, default=5)
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[360, 640],
        metavar=('H', 'W'),
        help='frame size (the paper tests at short side 360)')
    parser.add_argument('--repeat', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--text', default=TEXT, help='the sentence')
    parser.add_argument(
        '--stages',
        action='store_true',
        help='also report seconds, share, multiply-adds and GMAC/s of '
        'every stage, and the whole call / backbone ratio')
    parser.add_argument(
        '--num-sentences',
        type=int,
        default=1,
        help='segment the clip for this many sentences in one call '
        f'(--text, then up to {len(MORE_TEXTS)} built-in ones) and report '
        'the cost ratio to one sentence')
    parser.add_argument(
        '--one-by-one',
        action='store_true',
        help='with --num-sentences N: N consecutive one-sentence calls on '
        'the same clip (the test loop) instead of one call')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='write the results to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict:
    """Run the benchmark; returns the result dict (also printed)."""
    args = parse_args(argv)
    if args.num_frames < 1 or min(args.shape) < 1:
        raise ValueError('--num-frames and --shape must be positive')
    if not 1 <= args.num_sentences <= 1 + len(MORE_TEXTS):
        raise ValueError('--num-sentences must be in 1..'
                         f'{1 + len(MORE_TEXTS)}, got {args.num_sentences}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError('--device cuda: CUDA is not available')
    from dmformer.apis import init_model
    from dmformer.utils import tune_glibc_malloc
    malloc_tuned = tune_glibc_malloc()  # DMFORMER_MALLOPT=0 disables
    quiet_logger()
    torch.manual_seed(args.seed)
    model = init_model(
        args.config,
        args.checkpoint,
        device=args.device,
        cfg_options=args.cfg_options)
    gen = torch.Generator().manual_seed(args.seed)
    frames, sample = make_clip_sample(args.num_frames, tuple(args.shape),
                                      args.text, generator=gen)

    samples = [sample] + [
        make_clip_sample(1, (1, 1), text)[1] for text in
        MORE_TEXTS[:args.num_sentences - 1]
    ]
    for other in samples[1:]:
        other.set_metainfo(
            {k: sample.metainfo[k]
             for k in ('frame_ids', 'ori_shape', 'img_shape')})

    def run(num: int = args.num_sentences) -> None:
        model.clear_visual_cache()  # no features kept from the last run
        calls = [[s] for s in samples[:num]] if args.one_by_one \
            else [samples[:num]]
        with torch.no_grad():
            for call in calls:
                model.test_step(
                    dict(
                        inputs=[frames],
                        data_samples=[s.clone() for s in call]))

    timer = StageTimer(model, args.device) if args.stages else None
    if timer is not None:
        timed_run = run

        def run(num: int = args.num_sentences) -> None:
            timer.start()
            timed_run(num)
            if num == args.num_sentences:
                timer.stop()

    one_sentence = None
    if args.num_sentences > 1:
        # N sentences and one sentence alternate, so that load changes of
        # the machine hit both alike
        times, one_times = [], []
        with PeakMemory(args.device) as mem:
            for _ in range(max(1, args.warmup)):
                run()
                run(1)
        for _ in range(args.repeat):
            times += _timed(run, args.device)
            one_times += _timed(lambda: run(1), args.device)
        one_sentence = statistics.fmean(one_times)
    else:
        times, mem = time_runs(run, args.device, args.warmup, args.repeat)
    mean = statistics.fmean(times)
    stages = None
    if timer is not None:
        timer.calls = timer.calls[-args.repeat:]  # the timed runs only
        timer.remove()
        stages = stage_rows(timer, times, count_stage_macs(model, run))
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        device=args.device,
        num_frames=args.num_frames,
        shape=list(args.shape),
        repeat=args.repeat,
        warmup=args.warmup,
        malloc_tuned=malloc_tuned,
        seconds_per_clip=mean,
        seconds_per_clip_std=statistics.pstdev(times),
        frames_per_second=args.num_frames / mean,
        peak_memory_mb=mem.peak_mb,
        memory_method=mem.method,
        peak_rss_mb=mem.peak_rss_mb,
        times=times,
        num_sentences=args.num_sentences,
        one_by_one=args.one_by_one,
        seconds_one_sentence=one_sentence,
        sentences_cost_ratio=mean / one_sentence if one_sentence else None,
        stages=stages,
        full_over_backbone=_ratio_to_backbone(stages),
        env=environment(args.device))
    print_table([
        ('config', osp.basename(args.config)),
        ('device', f'{args.device} ({result["env"]["threads"]} threads)'),
        ('clip', f'{args.num_frames} x {args.shape[0]} x {args.shape[1]}'),
        ('glibc malloc tuned', str(malloc_tuned)),
        ('runs', f'{args.repeat} timed, {args.warmup} warm-up'),
        ('s / clip', f'{mean:.4f} +- {result["seconds_per_clip_std"]:.4f}'),
        ('frames / s', f'{result["frames_per_second"]:.2f}'),
        ('peak memory', f'{mem.peak_mb:.1f} MiB ({mem.method})'),
    ] + ([
        ('sentences', f'{args.num_sentences} '
         f'({"one per call" if args.one_by_one else "in one call"})'),
        ('s / clip, 1 sentence', f'{one_sentence:.4f}'),
        (f'cost of {args.num_sentences} sentences / 1',
         f'{result["sentences_cost_ratio"]:.2f}x'),
    ] if one_sentence else []))
    if stages:
        print(f'{"stage":<14}{"s":>9}{"share":>8}{"GMAC":>9}{"GMAC/s":>9}')
        for row in stages:
            gmac = '' if row['gmac'] is None else f'{row["gmac"]:.2f}'
            rate = '' if row['gmac_per_s'] is None else \
                f'{row["gmac_per_s"]:.1f}'
            print(f'{row["stage"]:<14}{row["seconds"]:>9.4f}'
                  f'{100 * row["share"]:>7.1f}%{gmac:>9}{rate:>9}')
        print(f'whole call / backbone: {result["full_over_backbone"]:.2f}x')
    dump_json(result, args.json)
    return result


def _ratio_to_backbone(stages: Optional[List[Dict]]) -> Optional[float]:
    if not stages:
        return None
    by_name = {row['stage']: row['seconds'] for row in stages}
    return by_name['total'] / by_name['backbone'] \
        if by_name.get('backbone') else None


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
