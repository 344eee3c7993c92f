# Copyright (c) OpenMMLab. All rights reserved.
"""Plot the learning curve of a training run as a PNG.

Reads the scalar log that MMEngine's ``LocalVisBackend`` writes during
training (``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON object
per line: training lines carry ``loss`` and ``iter``, validation lines the
metrics, placed at the training iteration logged last) and draws two panels
against the iteration: the training loss (raw and smoothed) and every
validation metric that matches ``--metrics`` (default: J&F, J and F).

Example::

    python tools/analysis_tools/plot_learning_curve.py work_dirs/quickstart
    python tools/analysis_tools/plot_learning_curve.py \\
        work_dirs/quickstart/20261201_101010/vis_data/scalars.json \\
        --out curve.png
"""
import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

DEFAULT_METRICS = ('J&F', '/J', '/F')

Curve = List[Tuple[int, float]]


def find_scalar_log(path: str) -> str:
    """The ``scalars.json`` of ``path``: the file itself, or the newest
    ``*/vis_data/scalars.json`` under a work dir.

    Raises:
        FileNotFoundError: No scalar log exists there.
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such file or work dir')
    logs = glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json'))
    if not logs:
        raise FileNotFoundError(
            f'{path}: no */vis_data/scalars.json (was the run trained with '
            "MMEngine's LocalVisBackend?)")
    return max(logs, key=osp.getmtime)


def read_scalar_log(
        path: str,
        metrics: Sequence[str] = DEFAULT_METRICS
) -> Tuple[Curve, Dict[str, Curve]]:
    """Training loss and validation metrics of one scalar log.

    Args:
        path (str): A ``scalars.json`` file.
        metrics (Sequence[str]): A validation key is kept when it ends with
            one of these strings (``'J&F'`` keeps ``ref_ytvos/J&F``).

    Returns:
        tuple: the loss curve ``[(iter, loss), ...]`` and a dict metric name
        -> ``[(iter, value), ...]``.

    Raises:
        ValueError: A line is not JSON (named by its line number), or the
            log holds no training loss.
    """
    loss: Curve = []
    vals: Dict[str, Curve] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}:{lineno}: not JSON ({e})') from e
            if 'loss' in rec and 'iter' in rec:
                loss.append((int(rec['iter']), float(rec['loss'])))
                continue
            # MMEngine logs validation with `step` = the epoch (0 in
            # iteration-based loops): place it at the last logged iteration
            step = loss[-1][0] if loss else rec.get('step', 0)
            for key, value in rec.items():
                if key != 'step' and isinstance(value, (int, float)) and \
                        any(key.endswith(m) for m in metrics):
                    vals.setdefault(key, []).append((int(step), float(value)))
    if not loss:
        raise ValueError(f'{path}: no training loss in the log')
    return loss, vals


def smooth(values: Sequence[float], weight: float = 0.9) -> List[float]:
    """Exponential moving average with bias correction (as TensorBoard)."""
    out, avg = [], 0.
    for i, v in enumerate(values, 1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def plot_learning_curve(loss: Curve,
                        vals: Dict[str, Curve],
                        out_file: str,
                        title: str = '') -> str:
    """Draw the loss and the validation metrics; write a PNG.

    Args:
        loss (list): ``[(iter, loss), ...]``.
        vals (dict): metric name -> ``[(iter, value), ...]``.
        out_file (str): PNG path (folders are created).
        title (str): Figure title.

    Returns:
        str: ``out_file``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    its, ls = zip(*loss)
    axes[0].plot(its, ls, color='tab:blue', alpha=0.3, label='loss')
    axes[0].plot(its, smooth(ls), color='tab:blue', label='loss (smoothed)')
    axes[0].set_xlabel('iteration')
    axes[0].set_ylabel('training loss')
    axes[0].grid(alpha=0.3)
    axes[0].legend()
    if vals:
        for name, curve in sorted(vals.items()):
            x, y = zip(*curve)
            # the last value goes in the legend: labels at the curves'
            # ends overlap when two metrics end close together
            axes[1].plot(
                x, y, marker='o', label=f'{name} (last: {y[-1]:.1f})')
        axes[1].legend()
        axes[1].set_ylabel('validation score')
    else:
        axes[1].text(0.5, 0.5, 'no validation in this run', ha='center',
                     va='center', transform=axes[1].transAxes)
    axes[1].set_xlabel('iteration')
    axes[1].set_xlim(0, max(its[-1], 1) * 1.02)
    axes[1].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot loss and validation metrics against iterations')
    parser.add_argument('log', help='work dir or vis_data/scalars.json')
    parser.add_argument(
        '--out',
        help='PNG to write (default: <work dir>/learning_curve.png)')
    parser.add_argument(
        '--metrics',
        nargs='+',
        default=list(DEFAULT_METRICS),
        help='keep validation keys ending with these strings')
    parser.add_argument('--title', default='', help='figure title')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    try:
        log = find_scalar_log(args.log)
        loss, vals = read_scalar_log(log, args.metrics)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f'error: {e}')
    out = args.out or osp.join(
        args.log if osp.isdir(args.log) else osp.dirname(
            osp.dirname(osp.dirname(log))), 'learning_curve.png')
    plot_learning_curve(loss, vals, out, title=args.title)
    last = {k: v[-1][1] for k, v in vals.items()}
    print(f'learning curve: {out} ({len(loss)} loss points'
          + ''.join(f', {k} {v:.2f}' for k, v in sorted(last.items()))
          + ')')
    return out


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
