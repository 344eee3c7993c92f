# Copyright (c) OpenMMLab. All rights reserved.
import json
import math
import os.path as osp
import time

import pytest
import torch

from dmformer.testing import load_script

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CFG = osp.join(ROOT, 'configs/dmformer/dmformer_tiny_synthetic.py')


def _load_tool(name):
    return load_script(f'tools/analysis_tools/{name}.py')


bench_infer = _load_tool('benchmark_inference')
bench_train = _load_tool('benchmark_train')


def test_time_runs_and_peak_memory():
    calls = []
    times, mem = bench_infer.time_runs(lambda: calls.append(1), 'cpu', 2, 3)
    assert len(calls) == 5 and len(times) == 3
    assert all(t >= 0 for t in times)
    # the memory is measured over the warm-up calls: at least one
    calls.clear()
    times, mem = bench_infer.time_runs(lambda: calls.append(1), 'cpu', 0, 2)
    assert len(calls) == 3 and len(times) == 2
    with pytest.raises(ValueError, match='repeat'):
        bench_infer.time_runs(lambda: None, 'cpu', 0, 0)

    # the peak is the highest sampled RSS above the RSS at entry; the RSS
    # reader is replaced by a scripted one (the real RSS of a long-lived test
    # process is dominated by memory the allocator already holds)
    readings = iter([100, 164, 130] + [100] * 1000)
    mem = bench_infer.PeakMemory('cpu', interval=1e-4)
    mem._rss = lambda: next(readings) * 2**20
    with mem:
        deadline = time.time() + 5
        while mem._peak_rss < 164 * 2**20 and time.time() < deadline:
            time.sleep(1e-3)
    assert mem.peak_mb == 64
    assert mem.peak_rss_mb == 164


def test_make_clip_sample():
    gen = torch.Generator().manual_seed(0)
    frames, sample = bench_infer.make_clip_sample(
        3, (40, 50), 'the small dog on the sofa', with_gt=True, generator=gen)
    assert frames.shape == (3, 3, 40, 50) and frames.dtype == torch.uint8
    gt = sample.gt_instances
    assert gt.valid.tolist() == [True, True, False]
    assert not gt.masks[2].any() and gt.bboxes[2].abs().sum() == 0
    for mask, box in zip(gt.masks[:2], gt.bboxes[:2]):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert box.tolist() == [float(v) for v in tight]
    start, end = sample.gt_subject_span.tolist()
    assert sample.metainfo['text'][start:end] == 'the small dog'
    assert sample.metainfo['noun_chunks'][0] == (start, end)


def test_cuda_request_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for tool in (bench_infer, bench_train):
        with pytest.raises(ValueError, match='CUDA is not available'):
            tool.main([TINY_CFG, '--device', 'cuda'])


def test_benchmark_inference_json(tmp_path):
    path = str(tmp_path / 'infer.json')
    result = bench_infer.main([
        TINY_CFG, '--num-frames', '2', '--shape', '32', '48', '--repeat',
        '2', '--warmup', '0', '--json', path
    ])
    with open(path) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(result))
    assert saved['device'] == 'cpu' and saved['shape'] == [32, 48]
    assert len(saved['times']) == 2 and min(saved['times']) > 0
    assert math.isclose(saved['seconds_per_clip'],
                        sum(saved['times']) / 2)
    assert math.isclose(saved['frames_per_second'],
                        2 / saved['seconds_per_clip'])
    assert 0 <= saved['peak_memory_mb'] < saved['peak_rss_mb']
    assert 'RSS' in saved['memory_method']


def test_benchmark_train_json(tmp_path):
    path = str(tmp_path / 'train.json')
    result = bench_train.main([
        TINY_CFG, '--batch-size', '2', '--num-frames', '2', '--shape', '32',
        '32', '--iters', '1', '--warmup', '0', '--json', path
    ])
    with open(path) as f:
        saved = json.load(f)
    assert saved['batch_size'] == 2 and saved['iters'] == 1
    assert saved['seconds_per_iter'] == saved['times'][0] > 0
    assert math.isclose(saved['clips_per_second'] * saved['seconds_per_iter'],
                        2)
    assert math.isclose(saved['frames_per_second'],
                        2 * saved['clips_per_second'])
    losses = saved['last_losses']
    # the subject perceptron is supervised; every loss is finite
    assert {'loss', 'loss_mask', 'loss_dice', 'loss_subject'} <= set(losses)
    assert all(math.isfinite(v) for v in losses.values())
    assert result['trainable_params'] > 0
    with pytest.raises(ValueError, match='positive'):
        bench_train.main([TINY_CFG, '--batch-size', '0'])


def test_benchmark_inference_one_by_one(monkeypatch):
    """--one-by-one runs N single-sentence calls on the same clip; only the
    first of them runs the backbone (the test loop's reuse)."""
    calls = []
    from dmformer.models.detectors.dmformer import DMFormer
    extract = DMFormer._extract_visual

    def counting(self, *args, **kwargs):
        calls.append(1)
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(DMFormer, '_extract_visual', counting)
    result = bench_infer.main([
        TINY_CFG, '--num-frames', '2', '--shape', '32', '48', '--repeat',
        '1', '--warmup', '0', '--num-sentences', '3', '--one-by-one'
    ])
    # a warm-up pair (measuring the memory) and a timed pair, each a run of
    # 3 sentences and one of 1 sentence: 4 backbone runs
    assert len(calls) == 4
    assert result['one_by_one'] and result['num_sentences'] == 3
    assert result['sentences_cost_ratio'] > 0
