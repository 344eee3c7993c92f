# Copyright (c) OpenMMLab. All rights reserved.
import logging
import re
from collections import OrderedDict
from typing import Dict, List, Sequence, Set

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from dmformer.registry import HOOKS

#: What makes the GLIP-T weights of the paper models' frozen Swin-T / BERT.
GLIP_CONVERT_CMD = (
    'python tools/model_converters/glip_to_dmformer.py '
    'glip_tiny_model_o365_goldg_cc_sbu.pth checkpoints/glip-t_dmformer.pth')


def _is_training_start(runner) -> bool:
    """Whether the runner is starting a training run (``Runner.train``
    builds its train loop before it loads a checkpoint; ``Runner.test`` and
    ``Runner.val`` never build it)."""
    return isinstance(getattr(runner, '_train_loop', None), BaseLoop)


def _has_pretrained_init(module) -> bool:
    """Whether ``module`` loads its own pretrained weights: an ``init_cfg``
    of type ``'Pretrained'`` or a ``pretrained_path`` (e.g.
    :class:`~dmformer.models.BertTextEncoder`'s local HF folder)."""
    if getattr(module, 'pretrained_path', None):
        return True
    init_cfg = getattr(module, 'init_cfg', None)
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(
        isinstance(cfg, dict) and cfg.get('type') == 'Pretrained'
        and cfg.get('checkpoint') for cfg in cfgs)


@HOOKS.register_module()
class PretrainedWeightsHook(Hook):
    """Hand pretrained weights from one training stage to the next, and
    refuse to train frozen modules that received none.

    DMFormer freezes GLIP-T's Swin-T and BERT; their weights come from a
    checkpoint (``load_from``: the converted GLIP-T file for pre-training,
    pre-training's last epoch for fine-tuning). A frozen module left at its
    random initialisation would train for days on random features without
    any error, so at the start of training this hook checks that every
    frozen parameter (``requires_grad=False``) received weights from

    - the ``load_from`` or resumed checkpoint (its ``state_dict`` keys, after
      ``drop_keys``), or
    - its own module or an ancestor that loads pretrained weights itself
      (an ``init_cfg`` of type ``'Pretrained'``, or a ``pretrained_path``),

    and otherwise stops before the first iteration with one line naming the
    module and the command that makes its weights.

    ``drop_keys`` removes state-dict keys from the ``load_from`` checkpoint
    of a *new* training run before it is loaded, as the official
    fine-tuning deletes the pre-trained class heads (``class_embed``) so
    that the new dataset's heads start from their initialisation. Resumed
    runs and ``tools/test.py`` load their checkpoints whole.

    Args:
        check_frozen (bool): Stop a training run whose frozen parameters got
            no pretrained weights. ``False`` only warns (smoke tests with
            random weights). Defaults to True.
        drop_keys (Sequence[str]): Regular expressions (``re.match``) of
            the ``load_from`` keys not to load when a new training run
            starts. Defaults to ().
        weights_hint (str): What to tell the user who has no weights for
            the frozen modules. Defaults to the GLIP-T conversion command.
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 check_frozen: bool = True,
                 drop_keys: Sequence[str] = (),
                 weights_hint: str = GLIP_CONVERT_CMD) -> None:
        self.check_frozen = check_frozen
        self.drop_keys = [re.compile(k) for k in drop_keys]
        self.weights_hint = weights_hint
        self.loaded_keys: Set[str] = set()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Drop ``drop_keys`` from a new run's ``load_from`` checkpoint and
        record the keys that will be loaded."""
        state_dict = checkpoint.get('state_dict', checkpoint)
        if self.drop_keys and _is_training_start(runner) and \
                not runner._resume:
            dropped = [
                key for key in state_dict
                if any(p.match(re.sub(r'^module\.', '', key))
                       for p in self.drop_keys)
            ]
            for key in dropped:
                del state_dict[key]
            patterns = ', '.join(p.pattern for p in self.drop_keys)
            print_log(
                f'PretrainedWeightsHook: {len(dropped)} keys of the '
                f'load_from checkpoint not loaded (drop_keys: {patterns}); '
                'those parameters keep their initialisation',
                logger='current',
                level=logging.INFO if dropped else logging.WARNING)
        self.loaded_keys.update(
            re.sub(r'^module\.', '', key) for key in state_dict)

    def uncovered_frozen(self, model) -> Dict[str, List[str]]:
        """The frozen parameters of ``model`` that received no weights.

        Args:
            model (nn.Module): The (unwrapped) model.

        Returns:
            dict[str, list[str]]: Top-level module name -> names of its
            frozen parameters without weights (empty if all are covered).
        """
        covered_prefixes = [
            name + '.' for name, module in model.named_modules()
            if name and _has_pretrained_init(module)
        ]
        uncovered: Dict[str, List[str]] = OrderedDict()
        for name, param in model.named_parameters():
            if param.requires_grad or name in self.loaded_keys or any(
                    name.startswith(p) for p in covered_prefixes):
                continue
            uncovered.setdefault(name.split('.')[0], []).append(name)
        return uncovered

    def before_train(self, runner) -> None:
        """Stop (or warn) if a frozen module received no weights."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        uncovered = self.uncovered_frozen(model)
        if not uncovered:
            return
        top, names = next(iter(uncovered.items()))
        total = sum(1 for n, p in model.named_parameters()
                    if n.split('.')[0] == top and not p.requires_grad)
        module_type = type(getattr(model, top)).__name__
        load_from = runner.cfg.get('load_from', None)
        problem = (
            f'frozen module `{top}` ({module_type}) received no pretrained '
            f'weights for {len(names)} of its {total} frozen parameters '
            f'(e.g. {names[0]}; load_from={load_from!r}, no Pretrained '
            'init_cfg): it would train on random features')
        if len(uncovered) > 1:
            others = ', '.join(f'`{name}`' for name in list(uncovered)[1:])
            problem += f' (so would {others})'
        if not self.check_frozen:
            print_log(
                f'PretrainedWeightsHook: {problem}; training anyway '
                '(check_frozen=False)',
                logger='current',
                level=logging.WARNING)
            return
        raise ValueError(
            f'{problem}. Make the weights with `{self.weights_hint}` and '
            'pass `--cfg-options load_from=<that file>` (or '
            '`default_hooks.pretrained_weights.check_frozen=False` for a '
            'smoke test with random weights)')
