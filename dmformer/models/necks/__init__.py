# Copyright (c) OpenMMLab. All rights reserved.
from .decoupled_interaction import DecoupledInteraction, InteractionBranch

__all__ = ['DecoupledInteraction', 'InteractionBranch']
