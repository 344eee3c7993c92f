# Copyright (c) OpenMMLab. All rights reserved.
"""Convert the official RefCOCO/+/g refer releases to MDETR COCO format.

Writes, from the RefCOCO / RefCOCO+ / RefCOCOg releases of the refer
toolkit, the COCO-format expression files read by
:class:`dmformer.datasets.RefCOCODataset`.

Inputs below the COCO root (``refcoco.zip``, ``refcoco+.zip`` and
``refcocog.zip`` of the UNC refer project unpacked there)::

    <coco root>/<name>/instances.json     COCO train2014 subset: images,
                                          annotations, categories
    <coco root>/<name>/refs(<split_by>).p pickled list of refs: ref_id,
                                          ann_id, image_id, split,
                                          sentences [{sent, raw, tokens,
                                          sent_id}], category_id, file_name

``split_by`` defaults to ``unc`` for ``refcoco`` and ``refcoco+`` and to
``umd`` for ``refcocog`` (the partitions used by MDETR and ReferFormer);
``--split-by refcocog=google`` picks another one.

Outputs, one file per dataset and split::

    <coco root>/<name>/instances_<name>_<split>.json

in the layout that ReferFormer's ``tools/data/convert_refexp_to_coco.py``
writes and its ``datasets/refexp.py`` reads (MDETR's format): every
``images`` entry is one sentence of one ref, numbered 1, 2, ... in the
order of the pickle, with the ``file_name``, ``height`` and
``width`` of the COCO image, ``original_id`` (COCO image id), ``caption``
and ``dataset_name``; its single annotation (``id`` and ``image_id`` =
the entry id, ``original_id`` = the COCO annotation id) copies ``bbox``
(xywh), ``segmentation``, ``area``, ``iscrowd`` and ``category_id`` of the
referred object. ``info``, ``licenses`` and ``categories`` are copied from
``instances.json``. The caption is the sentence's ``sent`` (the
lower-cased, tokenised text of the refer toolkit that ReferFormer writes),
not ``raw``; sentences whose ``sent`` is empty are skipped, since the
dataset rejects empty captions. The images themselves are COCO's
``train2014/`` folder (``<coco root>/train2014/COCO_train2014_*.jpg``).

The refs file is a Python pickle. It is read with an unpickler that only
builds plain containers, strings and numbers and refuses any class or
function reference, but it should still be the file of the official
release.

Example::

    python tools/dataset_converters/refcoco_to_coco.py data/coco
    python tools/dataset_converters/refcoco_to_coco.py data/coco \\
        --datasets refcocog --splits train val test
"""
import argparse
import json
import os.path as osp
import pickle
from typing import Dict, Iterable, List, Optional, Tuple

#: default partition of each dataset (MDETR / ReferFormer)
DEFAULT_SPLIT_BY = {'refcoco': 'unc', 'refcoco+': 'unc', 'refcocog': 'umd'}
#: every split name of the refer releases
ALL_SPLITS = ('train', 'val', 'testA', 'testB', 'test')
REF_KEYS = ('ref_id', 'ann_id', 'image_id', 'split', 'sentences')


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global (class or function) reference."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(
            f'refusing to load the global {module}.{name}: a refs file of '
            'the official release only holds lists, dicts, strings and '
            'numbers')


def load_refs(path: str) -> List[dict]:
    """Read a ``refs(<split_by>).p`` file of the refer toolkit.

    Args:
        path (str): Path of the pickle.

    Returns:
        list[dict]: The refs, in the order of the file.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a pickle of a list of dicts, or holds
            a class or function reference.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Refs file {path!r} does not exist.')
    try:
        with open(path, 'rb') as f:
            refs = _PlainUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, UnicodeDecodeError,
            ValueError, IndexError, TypeError) as e:
        raise ValueError(f'Cannot read refs file {path!r}: {e}') from e
    if not isinstance(refs, list) or not all(
            isinstance(ref, dict) for ref in refs):
        raise ValueError(f'Refs file {path!r} must hold a list of dicts, '
                         f'got {type(refs).__name__}.')
    return refs


def load_instances(path: str) -> dict:
    """Read the ``instances.json`` of a release.

    Args:
        path (str): Path of the JSON file.

    Returns:
        dict: The COCO content; ``images``, ``annotations`` and
        ``categories`` are checked to be lists.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not JSON or lacks one of the three lists.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Instances file {path!r} does not exist.')
    try:
        with open(path) as f:
            content = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'Cannot read instances file {path!r} (not JSON): '
                         f'{e}') from e
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(content, dict) or not isinstance(
                content.get(key), list):
            raise ValueError(f'Instances file {path!r} must hold a list '
                             f'under key {key!r}.')
    return content


def _index_by_id(items: List[dict], what: str, path: str) -> Dict[int, dict]:
    """Map ``item['id']`` to the item, checking ids are present."""
    index = {}
    for item in items:
        if not isinstance(item, dict) or 'id' not in item:
            raise ValueError(f'Instances file {path!r}: an entry of {what!r} '
                             f'has no "id": {item!r:.200}')
        index[item['id']] = item
    return index


def _check_ref(ref: dict, where: str, images: Dict[int, dict],
               anns: Dict[int, dict], instances_path: str) -> None:
    """Check one ref's keys and that its image and object are known."""
    missing = [key for key in REF_KEYS if key not in ref]
    if missing:
        raise ValueError(f'{where} has no {missing} field(s).')
    if not isinstance(ref['sentences'], list):
        raise ValueError(f'{where}: "sentences" must be a list, got '
                         f'{type(ref["sentences"]).__name__}.')
    if ref['image_id'] not in images:
        raise ValueError(f'{where}: image_id {ref["image_id"]!r} is not in '
                         f'{instances_path!r}.')
    ann = anns.get(ref['ann_id'])
    if ann is None:
        raise ValueError(f'{where}: ann_id {ref["ann_id"]!r} is not in '
                         f'{instances_path!r}.')
    if ann.get('image_id') != ref['image_id']:
        raise ValueError(f'{where}: ann_id {ref["ann_id"]!r} is on image '
                         f'{ann.get("image_id")!r} in {instances_path!r}, '
                         f'not on image {ref["image_id"]!r}.')
    for key in ('bbox', 'segmentation'):
        if key not in ann:
            raise ValueError(f'Instances file {instances_path!r}: annotation '
                             f'{ann["id"]!r} has no {key!r}.')
    image = images[ref['image_id']]
    for key in ('file_name', 'height', 'width'):
        if key not in image:
            raise ValueError(f'Instances file {instances_path!r}: image '
                             f'{image["id"]!r} has no {key!r}.')


def convert_split(refs: List[dict], instances: dict, dataset: str,
                  split: str, refs_path: str,
                  instances_path: str) -> Tuple[dict, Dict[str, int]]:
    """Build the expression file of one split.

    Args:
        refs (list[dict]): All refs of the release (see :func:`load_refs`).
        instances (dict): Its ``instances.json`` content (see
            :func:`load_instances`).
        dataset (str): Dataset name, written as ``dataset_name``.
        split (str): The split to keep.
        refs_path (str): Path of the refs file, for error messages.
        instances_path (str): Path of ``instances.json``, for error
            messages.

    Returns:
        tuple[dict, dict]: The COCO-format content and the counts
        ``refs``, ``sentences`` (= entries), ``images`` (distinct COCO
        images) and ``empty`` (skipped empty sentences).

    Raises:
        ValueError: A ref lacks a key, names an image or annotation absent
            from ``instances.json`` (or an annotation of another image), or
            a sentence has no ``sent`` string.
    """
    images = _index_by_id(instances['images'], 'images', instances_path)
    anns = _index_by_id(instances['annotations'], 'annotations',
                        instances_path)
    out = dict(
        info=instances.get('info', {}),
        licenses=instances.get('licenses', []),
        images=[],
        annotations=[],
        categories=instances['categories'])
    counts = dict(refs=0, sentences=0, images=0, empty=0)
    coco_images = set()
    for index, ref in enumerate(refs):
        if ref.get('split') != split:
            continue
        where = (f'Refs file {refs_path!r}, ref {ref.get("ref_id", index)!r}'
                 f' (entry {index})')
        _check_ref(ref, where, images, anns, instances_path)
        image, ann = images[ref['image_id']], anns[ref['ann_id']]
        counts['refs'] += 1
        for k, sentence in enumerate(ref['sentences']):
            sent = sentence.get('sent') if isinstance(sentence,
                                                      dict) else None
            if not isinstance(sent, str):
                raise ValueError(f'{where}, sentence {k}: expected a dict '
                                 f'with a "sent" string, got '
                                 f'{sentence!r:.200}')
            if not sent.strip():
                counts['empty'] += 1
                continue
            entry_id = len(out['images']) + 1
            out['images'].append(
                dict(
                    file_name=image['file_name'],
                    height=image['height'],
                    width=image['width'],
                    original_id=image['id'],
                    id=entry_id,
                    caption=sent,
                    dataset_name=dataset))
            out['annotations'].append(
                dict(
                    segmentation=ann['segmentation'],
                    area=ann.get('area', 0),
                    iscrowd=ann.get('iscrowd', 0),
                    bbox=ann['bbox'],
                    image_id=entry_id,
                    category_id=ann.get('category_id', ref.get(
                        'category_id')),
                    id=entry_id,
                    original_id=ann['id']))
            coco_images.add(image['id'])
    counts['sentences'] = len(out['images'])
    counts['images'] = len(coco_images)
    return out, counts


def convert_dataset(coco_root: str,
                    dataset: str,
                    splits: Iterable[str] = ('train', 'val'),
                    split_by: Optional[str] = None) -> Dict[str, str]:
    """Write ``<coco_root>/<dataset>/instances_<dataset>_<split>.json``.

    A requested split without any ref in this release (e.g. ``testA`` of
    RefCOCOg) is reported and skipped.

    Args:
        coco_root (str): COCO root holding ``<dataset>/instances.json`` and
            ``<dataset>/refs(<split_by>).p``.
        dataset (str): ``'refcoco'``, ``'refcoco+'`` or ``'refcocog'``.
        splits (Iterable[str]): Splits to write, among :data:`ALL_SPLITS`.
        split_by (str, optional): Partition of the refs file. Defaults to
            :data:`DEFAULT_SPLIT_BY` of ``dataset``.

    Returns:
        dict[str, str]: split -> path of the written file.

    Raises:
        FileNotFoundError: ``instances.json`` or the refs file is missing.
        ValueError: An unknown dataset or split, or a bad ref (see
            :func:`convert_split`).
    """
    if dataset not in DEFAULT_SPLIT_BY:
        raise ValueError(f'dataset must be one of {list(DEFAULT_SPLIT_BY)}, '
                         f'got {dataset!r}.')
    for split in splits:
        if split not in ALL_SPLITS:
            raise ValueError(f'split must be one of {list(ALL_SPLITS)}, got '
                             f'{split!r}.')
    split_by = split_by or DEFAULT_SPLIT_BY[dataset]
    dataset_dir = osp.join(coco_root, dataset)
    instances_path = osp.join(dataset_dir, 'instances.json')
    refs_path = osp.join(dataset_dir, f'refs({split_by}).p')
    instances = load_instances(instances_path)
    refs = load_refs(refs_path)
    present = sorted({str(ref.get('split')) for ref in refs})
    print(f'{dataset} ({split_by}): {len(refs)} refs in {refs_path}, splits '
          f'{present}')
    written = {}
    for split in splits:
        content, counts = convert_split(refs, instances, dataset, split,
                                        refs_path, instances_path)
        if not counts['refs']:
            print(f'  {split}: no refs in this release, skipped')
            continue
        out_file = osp.join(dataset_dir, f'instances_{dataset}_{split}.json')
        with open(out_file, 'w') as f:
            json.dump(content, f)
        empty = (f', {counts["empty"]} empty sentences skipped'
                 if counts['empty'] else '')
        print(f'  {split}: {counts["refs"]} refs, {counts["sentences"]} '
              f'sentences, {counts["images"]} images{empty} -> {out_file}')
        written[split] = out_file
    return written


def _parse_split_by(items: List[str], datasets: List[str]) -> Dict[str, str]:
    """Parse ``--split-by NAME=PARTITION`` overrides."""
    split_by = {}
    for item in items:
        name, sep, value = item.partition('=')
        if not sep or not value or name not in DEFAULT_SPLIT_BY:
            raise ValueError(f'--split-by takes NAME=PARTITION with NAME in '
                             f'{list(DEFAULT_SPLIT_BY)} (e.g. '
                             f'refcocog=google), got {item!r}.')
        if name not in datasets:
            raise ValueError(f'--split-by {item!r}: {name!r} is not among '
                             f'--datasets {datasets}.')
        split_by[name] = value
    return split_by


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'coco_root',
        help='folder holding <name>/instances.json and <name>/refs(*).p, '
        'e.g. data/coco')
    parser.add_argument(
        '--datasets',
        nargs='+',
        default=list(DEFAULT_SPLIT_BY),
        choices=list(DEFAULT_SPLIT_BY))
    parser.add_argument(
        '--splits', nargs='+', default=['train', 'val'], choices=ALL_SPLITS)
    parser.add_argument(
        '--split-by',
        nargs='+',
        default=[],
        metavar='NAME=PARTITION',
        help='refs file per dataset, e.g. refcocog=google reads '
        'refcocog/refs(google).p (defaults: refcoco=unc, refcoco+=unc, '
        'refcocog=umd)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    split_by = _parse_split_by(args.split_by, args.datasets)
    for dataset in args.datasets:
        convert_dataset(args.coco_root, dataset, args.splits,
                        split_by.get(dataset))


if __name__ == '__main__':
    from dmformer.utils.cli import run_cli
    run_cli(main)
