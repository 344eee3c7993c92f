# Copyright (c) OpenMMLab. All rights reserved.
import contextlib
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import InstanceData
from torch import Tensor

from dmformer.registry import MODELS
from dmformer.structures import RVOSDataSample
from dmformer.utils.typing_utils import ConfigType, OptConfigType

SampleList = List[RVOSDataSample]


def _to_float32(obj):
    """Cast the floating tensors in nested lists / tuples / dicts to
    float32 (the outputs of an autocast forward)."""
    if isinstance(obj, Tensor):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, dict):
        return {k: _to_float32(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_float32(v) for v in obj)
    return obj


@MODELS.register_module()
class DMFormer(BaseModel):
    """Implementation of `Decoupled Multimodal Transformers for Referring
    Video Object Segmentation <https://doi.org/10.1109/TCSVT.2023.3284979>`_
    (IEEE TCSVT 2023).

    Code is re-written from the `official repo
    <https://github.com/gaomingqi/DMFormer>`_ (which calls the model
    ``DMMI``) on MMEngine/MMCV/MMDetection components.

    The forward pass, as a diagram::

        frames (b, t, 3, H, W)          sentence(s)
              |                              |
        backbone (Swin-T)           language_model (BERT) -> words, sentence
              |                              |
        neck (ChannelMapper,         subject_head -> subject noun chunk
              4 levels)                      |
              |                              |
              +---------- encoder -----------+
              |  context branch (sentence)   |
              |  subject branch (subject)    |
              +---- memory, text_embed ------+
                             |
                 bbox_head: deformable decoder, class/box branches,
                 cross-modal FPN + dynamic mask head

    The module names follow mmdet's DETR-style detectors (``backbone``,
    ``neck``, ``encoder``, ``bbox_head``, ``language_model`` as in
    ``GroundingDINO``). Checkpoints saved before they did (``text_encoder``,
    ``input_proj``, ``neck`` for the encoder, ``head``) still load: their
    keys are renamed on loading
    (:func:`dmformer.models.utils.ckpt_convert.upgrade_legacy_keys`).

    Args:
        backbone (dict): Visual backbone config (strides 4/8/16/32).
        language_model (dict): Text encoder config
            (:class:`BertTextEncoder`).
        neck (dict): Projection of backbone levels to the transformer
            levels (mmdet ``ChannelMapper``, strides 8/16/32/64).
        encoder (dict): The decoupled interaction
            (:class:`DecoupledInteraction`): context and subject branches.
        bbox_head (dict): Decoder + mask head config
            (:class:`DMFormerHead`).
        subject_head (dict, optional): Subject perceptron config
            (:class:`SubjectPerceptronHead`). Needed when the encoder has a
            subject branch. Defaults to None.
        referent_head (dict, optional): A training-only loss module that
            sees every expression of a clip's video (e.g.
            :class:`ReferentContrastHead`): ``loss(proj_feats,
            sentence_feats, data_samples)``. Not used at inference.
            Defaults to None.
        auxiliary_head (dict, optional): A training-only loss module on the
            text-free visual levels (e.g. :class:`CategorySegHead`, as
            mmseg's ``auxiliary_head``): ``loss(proj_feats,
            data_samples)``. Not used at inference. Defaults to None.
        positional_encoding (dict): mmdet ``SinePositionalEncoding`` config
            for the visual levels. Defaults to
            ``dict(num_feats=128, normalize=True, offset=-0.5)``.
        num_backbone_outs_to_proj (int): How many of the last backbone
            outputs feed ``neck``. Defaults to 3.
        batch_invariant (bool): At test time (``predict`` / ``tensor``
            in eval mode), run the stages that see padding (backbone
            windows, the GroupNorm of ``neck``, the convolutions,
            norms and spatially reduced attention of the pixel decoder) on
            every clip at its own padded size (``pad_shape``: ``img_shape``
            rounded up to the pad divisor) and mask the rest, so a clip gets
            the same prediction whatever it is batched with; the deformable
            attention and the text stages are batch-invariant by
            construction (masked keys, sizes in pixels). A clip alone in its
            batch is computed exactly as the official code does.
            ``False`` pads every clip to the batch's largest size for all
            stages, as the official code does, so that batch mates change a
            clip's GroupNorm statistics and borders. Defaults to True.
        batch_invariant_train (bool): The same in training. Off by default:
            the official code trains on batch-padded clips, and training
            per clip size scored 2-4 J&F lower on the synthetic recipe (two
            seeds). Defaults to False.
        train_cfg (dict, optional): Training settings of ``bbox_head``:
            ``assigner``, the matcher of queries to the referent
            (:class:`VideoQueryMatcher`), as mmdet's ``train_cfg.assigner``,
            and ``mask_loss_upsample`` (see :class:`DMFormerHead`).
            Defaults to None (the head's defaults).
        test_cfg (dict, optional): ``clip_len``: at test time, videos longer
            than this many frames are segmented in consecutive clips of at
            most ``clip_len`` frames, each with its own query choice (the
            Ref-DAVIS protocol uses 36), so memory does not grow with video
            length. None or no key: the whole video at once.
            ``reuse_visual`` (default True): consecutive calls on the same
            frames (the expressions of one video, which the test loop runs
            one after another) reuse the backbone and input-projection
            features of the previous call instead of recomputing them;
            the frames are compared tensor by tensor, so the masks are
            exactly those of a fresh run. Only for a video of one clip and
            one sample per call, and not with a backbone that reads the
            text (RMHCA). ``amp`` (``'fp16'``, ``'bf16'`` or None):
            run the network under ``torch.autocast`` with this dtype (on
            CPU or CUDA); the outputs are cast back to float32 before the
            post-processing (query choice, upsampling, threshold).
            Defaults to None.
        data_preprocessor (dict, optional): :class:`RVOSDataPreprocessor`.
        init_cfg (dict, optional): Initialisation config.
    """

    #: ``test_cfg.amp`` -> autocast dtype
    AMP_DTYPES = {None: None, 'fp16': torch.float16, 'bf16': torch.bfloat16}

    def __init__(self,
                 backbone: ConfigType,
                 language_model: ConfigType,
                 neck: ConfigType,
                 encoder: ConfigType,
                 bbox_head: ConfigType,
                 subject_head: OptConfigType = None,
                 referent_head: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 positional_encoding: ConfigType = dict(
                     num_feats=128, normalize=True, offset=-0.5),
                 num_backbone_outs_to_proj: int = 3,
                 batch_invariant: bool = True,
                 batch_invariant_train: bool = False,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from mmdet.models.layers import SinePositionalEncoding

        from ..layers.positional_encoding import SinePositionalEncoding1D

        self.backbone = MODELS.build(backbone)
        # built in this order so that the initial weights and the parameter
        # order are those of the checkpoints before the mmdet names
        self.language_model = MODELS.build(language_model)
        self.neck = MODELS.build(neck)
        self.encoder = MODELS.build(encoder)
        if train_cfg is not None:
            # as mmdet's DETR detectors: the head reads train_cfg.assigner
            bbox_head = dict(bbox_head, train_cfg=train_cfg)
        self.bbox_head = MODELS.build(bbox_head)
        self.subject_head = MODELS.build(subject_head) \
            if subject_head is not None else None
        self.referent_head = MODELS.build(referent_head) \
            if referent_head is not None else None
        # built last: the other modules' initial weights do not depend on it
        self.auxiliary_head = MODELS.build(auxiliary_head) \
            if auxiliary_head is not None else None
        if getattr(self.encoder, 'subject_branch', None) is not None \
                and self.subject_head is None:
            raise ValueError('The encoder has a subject branch, which needs a '
                             '`subject_head` to choose the subject phrase.')
        self.positional_encoding = SinePositionalEncoding(
            **positional_encoding)
        embed_dims = 2 * positional_encoding['num_feats']
        self.text_positional_encoding = SinePositionalEncoding1D(
            num_feats=embed_dims, normalize=True)
        self.num_backbone_outs_to_proj = num_backbone_outs_to_proj
        self.batch_invariant = batch_invariant
        self.batch_invariant_train = batch_invariant_train
        self.test_cfg = dict(test_cfg or {})
        clip_len = self.test_cfg.get('clip_len')
        if clip_len is not None and (not isinstance(clip_len, int)
                                     or clip_len < 1):
            raise ValueError('test_cfg.clip_len must be a positive int or '
                             f'None, got {clip_len!r}')
        amp = self.test_cfg.get('amp')
        if amp not in self.AMP_DTYPES:
            raise ValueError("test_cfg.amp must be None, 'fp16' or 'bf16', "
                             f'got {amp!r}')
        # (frames, amp, visual features) of the last single-clip predict call;
        # dropped whenever the weights may change (training, loading)
        self._visual_cache: Optional[Tuple[Tensor, Optional[str],
                                           Dict]] = None

    def clear_visual_cache(self) -> None:
        """Forget the visual features kept for the next predict call (see
        ``test_cfg.reuse_visual``); needed only after changing the weights
        in place by hand (training and ``load_state_dict`` clear it)."""
        self._visual_cache = None

    def train(self, mode: bool = True) -> 'DMFormer':
        """Set the training mode; drops the kept visual features."""
        self.clear_visual_cache()
        return super().train(mode)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Load this module's own tensors (``load_state_dict``); drops the
        kept visual features, and renames the keys of a checkpoint saved
        with the old module names (see
        :func:`~dmformer.models.utils.ckpt_convert.upgrade_legacy_keys`) before
        the sub-modules read theirs."""
        from dmformer.models.utils.ckpt_convert import upgrade_legacy_keys
        self.clear_visual_cache()
        upgrade_legacy_keys(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def with_subject_head(self) -> bool:
        return self.subject_head is not None

    @property
    def with_lang_fusion(self) -> bool:
        """Whether the backbone reads the text (RMHCA), so that its
        features cannot be shared between sentences."""
        return getattr(self.backbone, 'lang_fusion', None) is not None

    # ------------------------------------------------------------------
    # MMEngine entry points
    # ------------------------------------------------------------------
    def forward(self,
                inputs: Tensor,
                data_samples: Optional[SampleList] = None,
                mode: str = 'tensor') -> Union[Dict, SampleList, Tuple]:
        """The unified entry for training and testing.

        Args:
            inputs (Tensor): Normalised, padded frames of shape
                (b, t, 3, H, W) from :class:`RVOSDataPreprocessor`.
            data_samples (list[:obj:`RVOSDataSample`]): One per video, with
                the expression in ``metainfo['text']``.
            mode (str): ``'loss'``, ``'predict'`` or ``'tensor'``.

        Returns:
            dict | list | tuple: losses for ``'loss'``; the data samples with
            ``pred_instances`` for ``'predict'``; the raw head outputs for
            ``'tensor'``.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        elif mode == 'predict':
            return self.predict(inputs, data_samples)
        elif mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". '
                           'Only supports loss, predict and tensor mode')

    def loss(self, inputs: Tensor,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Compute the losses of a batch of clips.

        Returns:
            dict[str, Tensor]: mask/box/class losses of every decoder layer
            and, with a subject perceptron, ``loss_subject``.
        """
        self.clear_visual_cache()  # features of other weights
        inputs, frame_idx = self._select_valid_frames(inputs, data_samples)
        if frame_idx is not None:
            # supervise the annotated frames only (A2D/JHMDB-Sentences)
            data_samples = [
                self._sample_with_frames(s, frame_idx) for s in data_samples
            ]
        outs = self.forward_features(inputs, data_samples)
        losses = self.bbox_head.loss_by_feat(outs['head_outs'], data_samples)
        if self.with_subject_head:
            from ..utils.token_spans import char_span_to_token_labels
            text = outs['text']
            spans = self._gt_subject_char_spans(data_samples,
                                                text['word_feats'].device)
            labels = char_span_to_token_labels(spans, text['offsets'],
                                               text['word_pad_mask'])
            losses.update(
                self.subject_head.loss(outs['subject_logits'],
                                       text['word_pad_mask'], labels))
        if self.referent_head is not None:
            # every expression of every clip's video, in sample order
            texts = [
                exp['text'] for sample in data_samples
                for exp in sample.metainfo.get('video_expressions', [])
            ]
            sentence_feats = self.language_model.encode_sentences(texts) \
                if texts else outs['text']['sentence_feat'][:0]
            losses.update(
                self.referent_head.loss(outs['visual']['proj_feats'],
                                        sentence_feats, data_samples))
        if self.auxiliary_head is not None:
            losses.update(
                self.auxiliary_head.loss(outs['visual']['proj_feats'],
                                         data_samples))
        return losses

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper) -> Dict[str, Tensor]:
        """MMEngine's training step, except that a step whose total loss or
        any loss term is NaN or infinite updates nothing: it is skipped
        with a warning naming the terms, and the run stops after
        ``default_hooks.nonfinite_loss.max_consecutive_steps`` such steps in
        a row (see :mod:`dmformer.engine.nonfinite_loss`; under DDP the
        wrapper ``GuardedDistributedDataParallel`` does the same).

        Args:
            data (dict | tuple | list): A batch of the dataloader.
            optim_wrapper (OptimWrapper): Updates the parameters.

        Returns:
            dict[str, Tensor]: The log variables.
        """
        from dmformer.engine.nonfinite_loss import \
            train_step_skipping_nonfinite
        return train_step_skipping_nonfinite(self, data, optim_wrapper)

    def test_step(self, data: Union[dict, tuple, list]) -> SampleList:
        """Preprocess and predict; a video longer than ``test_cfg.clip_len``
        is preprocessed clip by clip too, so that only one clip at a time
        exists as a float tensor (memory flat in video length).

        Normalisation and padding are per frame and the frames of a video
        share one size, so the clips get exactly the tensors that slicing
        the preprocessed whole video would give, and :meth:`predict` runs
        each clip as it would run it inside the whole video.

        Args:
            data (dict): ``inputs`` (list of uint8 (T, 3, H, W)) and
                ``data_samples``, as from the dataloader.

        Returns:
            list[:obj:`RVOSDataSample`]: See :meth:`predict`.
        """
        clip_len = self.test_cfg.get('clip_len')
        inputs = data.get('inputs') if isinstance(data, dict) else None
        samples = data.get('data_samples') if isinstance(data, dict) \
            else None
        if not clip_len or not isinstance(inputs, (list, tuple)) \
                or len(inputs) != 1 or inputs[0].dim() != 4 \
                or inputs[0].shape[0] <= clip_len or not samples \
                or any('valid_indices' in s.metainfo for s in samples):
            return super().test_step(data)
        video, preds, subjects = inputs[0], None, None
        for start in range(0, video.shape[0], clip_len):
            # metainfo only: the ground truth stays on the caller's samples
            clip_samples = [
                RVOSDataSample(metainfo=s.metainfo) for s in samples
            ]
            clip_data = self.data_preprocessor(
                dict(
                    inputs=[video[start:start + clip_len]],
                    data_samples=clip_samples), False)
            out = self._run_forward(clip_data, mode='predict')
            clip_preds = [s.pred_instances for s in out]
            preds = clip_preds if preds is None else [
                InstanceData.cat([p, c]) for p, c in zip(preds, clip_preds)
            ]
            subjects = [s.metainfo.get('pred_subject') for s in out]
        for sample, pred, subject in zip(samples, preds, subjects):
            sample.pred_instances = pred
            if subject is not None:
                sample.set_metainfo(dict(pred_subject=subject))
        return samples

    def predict(self, inputs: Tensor, data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Segment the referred object in every frame.

        Returns:
            list[:obj:`RVOSDataSample`]: the input samples with
            ``pred_instances`` (``masks`` (t, H, W) bool at ``ori_shape``,
            ``bboxes`` (t, 4), ``scores`` (t,)) and, with a subject
            perceptron, ``metainfo['pred_subject']`` (the chosen phrase).
        """
        num_frames = inputs.shape[1]
        inputs, frame_idx = self._select_valid_frames(inputs, data_samples)
        clip_len = self.test_cfg.get('clip_len') or inputs.shape[1]
        results, subject_spans = None, None
        # consecutive clips of at most clip_len frames, one query choice each
        # several sentences on one clip: the text-free visual features once,
        # then the sentences one by one (batching them through the encoder
        # and head was slower on CPU than running them in turn)
        share = inputs.shape[0] == 1 and len(data_samples) > 1 \
            and not self.with_lang_fusion
        # the expressions of one video come one after another in testing:
        # keep the visual features of a one-clip video for the next call
        reuse = self.test_cfg.get('reuse_visual', True) \
            and inputs.shape[0] == 1 and len(data_samples) == 1 \
            and inputs.shape[1] <= clip_len and not self.with_lang_fusion
        if not reuse:
            self._visual_cache = None
        amp = self._autocast(inputs.device)
        for start in range(0, inputs.shape[1], clip_len):
            clip = inputs[:, start:start + clip_len]
            visual = None
            with amp:
                if reuse:
                    visual = self._cached_visual(clip, data_samples)
                elif share:
                    visual = self._extract_visual(clip, data_samples[:1],
                                                  None)
            # one call per sentence when sharing, else one for the batch
            calls = [[s] for s in data_samples] if share else [data_samples]
            clip_results, subject_spans = [], []
            for samples in calls:
                with amp:
                    outs = self.forward_features(clip, samples, visual)
                # post-processing in float32 (a no-op without amp)
                clip_results += self.bbox_head.predict_by_feat(
                    _to_float32(outs['head_outs']), samples, rescale=rescale)
                spans = outs['subject_char_spans']
                subject_spans = None if spans is None else \
                    subject_spans + spans
                del outs
            del visual
            results = clip_results if results is None else [
                InstanceData.cat([r, c])
                for r, c in zip(results, clip_results)
            ]
        for i, (sample, pred) in enumerate(zip(data_samples, results)):
            if frame_idx is not None:
                pred = self._expand_to_all_frames(pred, frame_idx, num_frames)
            sample.pred_instances = pred
            if subject_spans is not None:
                start, end = subject_spans[i]
                sample.set_metainfo(
                    dict(pred_subject=sample.metainfo['text'][start:end]))
        return data_samples

    def _autocast(self, device: torch.device):
        """``torch.autocast`` context of ``test_cfg.amp`` (or a no-op)."""
        dtype = self.AMP_DTYPES[self.test_cfg.get('amp')]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=dtype)

    def _cached_visual(self, clip: Tensor, data_samples: SampleList) -> Dict:
        """Visual features of ``clip`` (1, t, 3, H, W): those of the
        previous call if it had exactly the same frames (and AMP setting),
        else computed and kept for the next call."""
        cached, amp = self._visual_cache, self.test_cfg.get('amp')
        if cached is not None and cached[0].shape == clip.shape \
                and cached[0].device == clip.device and cached[1] == amp \
                and torch.equal(cached[0], clip):
            return cached[2]
        self._visual_cache = None  # free the old features first
        visual = self._extract_visual(clip, data_samples[:1], None)
        self._visual_cache = (clip, amp, visual)
        return visual

    def _forward(self,
                 inputs: Tensor,
                 data_samples: Optional[SampleList] = None) -> Dict:
        """Network forward without post-processing.

        Returns:
            dict: the head outputs (``all_cls_scores``, ``all_bbox_preds``,
            ``all_mask_preds``) and ``subject_logits`` (b, L, 2) or None.
        """
        outs = self.forward_features(inputs, data_samples)
        head_outs = dict(outs['head_outs'])
        head_outs['subject_logits'] = outs['subject_logits']
        return head_outs

    # ------------------------------------------------------------------
    # Stages
    # ------------------------------------------------------------------
    def forward_features(self,
                         inputs: Tensor,
                         data_samples: SampleList,
                         visual: Optional[Dict] = None) -> Dict:
        """Run the stages: :meth:`forward_text` -> :meth:`select_subject`
        -> :meth:`extract_feat` -> :meth:`forward_transformer`
        (:meth:`pre_transformer`, the decoupled interaction
        :meth:`forward_encoder`, :meth:`pre_decoder`, then the decoder and
        mask heads, :meth:`forward_decoder`). Each stage takes and returns
        dicts and can be overridden.

        Args:
            inputs (Tensor): (b, t, 3, H, W); or (1, t, 3, H, W) with several
                samples: several sentences on the same clip.
            data_samples (list[:obj:`RVOSDataSample`]): b samples.
            visual (dict, optional): Precomputed :meth:`extract_feat`
                outputs of these b videos (text-free backbone only);
                skips the backbone and the input projection
                (:meth:`predict` shares them between the sentences of a
                clip this way).

        Returns:
            dict: ``head_outs``, ``text`` (text encoder outputs),
            ``visual`` (:meth:`extract_feat` outputs), ``subject_logits``
            and ``subject_char_spans``.
        """
        if inputs.dim() != 5:
            raise ValueError('DMFormer expects inputs of shape '
                             f'(b, t, 3, H, W), got {tuple(inputs.shape)}')
        bs = len(data_samples) if data_samples is not None else 0
        if bs == 0 or inputs.shape[0] not in (1, bs):
            raise ValueError('DMFormer needs one data sample (with the '
                             'expression text) per video, or several '
                             'samples for one video.')
        if inputs.shape[0] != bs:  # one clip, several sentences
            inputs = inputs.expand(bs, *inputs.shape[1:])
        text_dict = self.forward_text(data_samples)
        subject_dict = self.select_subject(text_dict, data_samples)
        if visual is None:
            visual = self.extract_feat(inputs, data_samples, text_dict)
        head_outs = self.forward_transformer(visual, text_dict, subject_dict,
                                             data_samples, inputs.shape[1])
        return dict(
            head_outs=head_outs,
            text=text_dict['text'],
            visual=visual,
            subject_logits=subject_dict['subject_logits'],
            subject_char_spans=subject_dict['subject_char_spans'])

    def forward_text(self, data_samples: SampleList) -> Dict:
        """Encode the expressions (mmdet's ``language_model`` step).

        Args:
            data_samples (list[:obj:`RVOSDataSample`]): b samples with
                ``text`` in their metainfo.

        Returns:
            dict: ``texts`` (list[str]), ``text`` (the text encoder's
            outputs: ``word_feats`` (b, L, C), ``word_pad_mask`` (b, L)
            bool with True = padding, ``sentence_feat`` (b, C), token
            ``offsets``), and ``word_feats``, ``word_pad_mask``,
            ``text_pos`` (b, L, C) sine positions.
        """
        texts = [self._get_text(sample) for sample in data_samples]
        text = self.language_model(texts)
        word_pad_mask = text['word_pad_mask']
        return dict(
            texts=texts,
            text=text,
            word_feats=text['word_feats'],
            word_pad_mask=word_pad_mask,
            text_pos=self.text_positional_encoding(word_pad_mask))

    def select_subject(self, text_dict: Dict,
                       data_samples: SampleList) -> Dict:
        """Choose the subject phrase with the subject perceptron.

        Args:
            text_dict (dict): Outputs of :meth:`forward_text`.
            data_samples (list[:obj:`RVOSDataSample`]): With the
                ``noun_chunks`` candidates in their metainfo.

        Returns:
            dict: ``subject_logits`` (b, L, 2), ``subject_span`` (b, 2)
            token span and ``subject_char_spans`` (list of character
            spans); all None without a subject perceptron.
        """
        if not self.with_subject_head:
            return dict(
                subject_logits=None,
                subject_span=None,
                subject_char_spans=None)
        from ..utils.token_spans import token_span_to_char_span
        text, word_pad_mask = text_dict['text'], text_dict['word_pad_mask']
        subject_logits = self.subject_head(text_dict['word_feats'],
                                           word_pad_mask)
        chunk_spans, chunk_valid = self._noun_chunk_token_spans(
            data_samples, text_dict['texts'], text['offsets'], word_pad_mask)
        subject_span = self.subject_head.select(subject_logits, word_pad_mask,
                                                chunk_spans, chunk_valid)
        # one host transfer for the batch (reporting only)
        subject_char_spans = [
            tuple(span) for span in token_span_to_char_span(
                subject_span, text['offsets'], word_pad_mask).tolist()
        ]
        return dict(
            subject_logits=subject_logits,
            subject_span=subject_span,
            subject_char_spans=subject_char_spans)

    def extract_feat(self,
                     inputs: Tensor,
                     data_samples: SampleList,
                     text_dict: Optional[Dict] = None) -> Dict:
        """Backbone and input projection of a batch of clips; with
        ``batch_invariant``, per group of clips at their own padded size
        (see :meth:`_clip_groups`).

        Args:
            inputs (Tensor): (b, t, 3, H, W).
            data_samples (list[:obj:`RVOSDataSample`]): b samples.
            text_dict (dict, optional): :meth:`forward_text` outputs, read
                only by a backbone with language fusion (RMHCA).

        Returns:
            dict: See :meth:`_extract_visual` (plus ``clip_groups`` when
            the clips were processed in groups).
        """
        lang = None if text_dict is None else {
            k: text_dict[k]
            for k in ('word_feats', 'word_pad_mask', 'text_pos')
        }
        clip_groups = self._clip_groups(inputs, data_samples)
        if clip_groups is None:
            return self._extract_visual(inputs, data_samples, lang)
        return self._merge_clip_groups(
            [(idx,
              self._extract_visual(
                  inputs[idx, :, :, :pad_h, :pad_w],
                  [data_samples[i] for i in idx],
                  None if lang is None else
                  {k: v[idx]
                   for k, v in lang.items()}))
             for (pad_h, pad_w), idx in clip_groups], len(data_samples),
            inputs.shape[1])

    def forward_transformer(self, visual: Dict, text_dict: Dict,
                            subject_dict: Dict, data_samples: SampleList,
                            num_frames: int) -> Dict:
        """:meth:`pre_transformer`, the decoupled interaction
        (:meth:`forward_encoder`), :meth:`pre_decoder`, then the decoder
        and mask heads (:meth:`forward_decoder`).

        Returns:
            dict: The head outputs (see :meth:`forward_decoder`).
        """
        encoder_inputs = self.pre_transformer(visual)
        encoder_outs = self.forward_encoder(encoder_inputs, text_dict,
                                            subject_dict, num_frames)
        decoder_inputs = self.pre_decoder(encoder_outs, visual, num_frames)
        return self.forward_decoder(encoder_outs, visual, text_dict,
                                    data_samples, num_frames, decoder_inputs)

    def pre_transformer(self, visual: Dict) -> Dict:
        """Flatten the projected levels into one token sequence per frame,
        with their positions, padding, spatial shapes, valid ratios and the
        encoder's reference points (mmdet's ``pre_transformer``; see
        :func:`~dmformer.models.layers.flatten_encoder_inputs`).

        Args:
            visual (dict): :meth:`extract_feat` outputs.

        Returns:
            dict: The visual keyword arguments of the encoder.
        """
        from ..layers.decoupled_interaction import flatten_encoder_inputs
        return flatten_encoder_inputs(visual['proj_feats'],
                                      visual['proj_masks'],
                                      visual['proj_pos'])

    def forward_encoder(self, encoder_inputs: Dict, text_dict: Dict,
                        subject_dict: Dict, num_frames: int) -> Dict:
        """The decoupled interaction (``encoder``): the context branch with
        the whole sentence and the subject branch with the chosen subject
        phrase, on the flattened visual tokens.

        Args:
            encoder_inputs (dict): :meth:`pre_transformer` outputs.
            text_dict (dict): :meth:`forward_text` outputs.
            subject_dict (dict): :meth:`select_subject` outputs.
            num_frames (int): Frames per video T.

        Returns:
            dict: ``memory``, ``memory_pad_mask``, ``spatial_shapes``,
            ``level_start_index``, ``valid_ratios`` and ``text_embed`` (see
            :class:`~dmformer.models.layers.DecoupledInteraction`).
        """
        return self.encoder(
            **encoder_inputs,
            word_feats=text_dict['word_feats'],
            word_pad_mask=text_dict['word_pad_mask'],
            text_pos=text_dict['text_pos'],
            sentence_feat=text_dict['text']['sentence_feat'],
            subject_span=subject_dict['subject_span'],
            num_frames=num_frames)

    def pre_decoder(self, encoder_outs: Dict, visual: Dict,
                    num_frames: int) -> Dict:
        """The decoder's queries (content: the text embedding, position:
        the learnt query embeddings) and initial reference points (mmdet's
        ``pre_decoder``; see :meth:`DMFormerHead.pre_decoder`).

        Args:
            encoder_outs (dict): :meth:`forward_encoder` outputs.
            visual (dict): :meth:`extract_feat` outputs.
            num_frames (int): Frames per video T.

        Returns:
            dict: ``query``, ``query_pos``, ``reference_points`` and
            ``ref_map`` (the training-only referring map, or None).
        """
        return self.bbox_head.pre_decoder(
            encoder_outs['memory'], encoder_outs['valid_ratios'],
            encoder_outs['text_embed'], num_frames,
            visual['backbone_masks'][1])

    def forward_decoder(self,
                        encoder_outs: Dict,
                        visual: Dict,
                        text_dict: Dict,
                        data_samples: SampleList,
                        num_frames: int,
                        decoder_inputs: Optional[Dict] = None) -> Dict:
        """Deformable decoder, class/box branches, cross-modal pixel
        decoder and dynamic mask heads (``bbox_head``).

        Args:
            encoder_outs (dict): :meth:`forward_encoder` outputs.
            visual (dict): :meth:`extract_feat` outputs.
            text_dict (dict): :meth:`forward_text` outputs.
            data_samples (list[:obj:`RVOSDataSample`]): With ``img_shape``.
            num_frames (int): Frames per video T.
            decoder_inputs (dict, optional): :meth:`pre_decoder` outputs;
                the head builds them itself when not given.

        Returns:
            dict: ``all_cls_scores``, ``all_bbox_preds``,
            ``all_mask_preds`` and the other outputs of
            :class:`~dmformer.models.heads.DMFormerHead`.
        """
        img_shapes = [tuple(s.metainfo['img_shape'][:2]) for s in data_samples]
        return self.bbox_head(
            memory=encoder_outs['memory'],
            memory_pad_mask=encoder_outs['memory_pad_mask'],
            spatial_shapes=encoder_outs['spatial_shapes'],
            level_start_index=encoder_outs['level_start_index'],
            valid_ratios=encoder_outs['valid_ratios'],
            text_embed=encoder_outs['text_embed'],
            num_frames=num_frames,
            pixel_inputs=dict(
                feats=[visual['backbone_feats'][0]],
                mlvl_pad_masks=visual['backbone_masks'],
                mlvl_pos=visual['backbone_pos'],
                clip_groups=visual.get('clip_groups')),
            word_feats=text_dict['word_feats'],
            word_pad_mask=text_dict['word_pad_mask'],
            text_pos=text_dict['text_pos'],
            img_shapes=img_shapes,
            decoder_inputs=decoder_inputs)

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------
    def _extract_visual(
            self, inputs: Tensor, data_samples: SampleList,
            lang: Optional[Dict[str, Tensor]]) -> Dict[str, List[Tensor]]:
        """Backbone and input projection of a batch of clips.

        Args:
            inputs (Tensor): (b, t, 3, H, W).
            data_samples (list[:obj:`RVOSDataSample`]): b samples.
            lang (dict[str, Tensor], optional): ``word_feats``,
                ``word_pad_mask`` and ``text_pos`` of the b sentences (only
                read with language fusion in the backbone).

        Returns:
            dict[str, list[Tensor]]: ``backbone_feats`` / ``proj_feats``
            (b*t, C, h, w) per level, their padding masks
            ``backbone_masks`` / ``proj_masks`` (b*t, h, w) bool and sine
            positions ``backbone_pos`` / ``proj_pos`` (b*t, C, h, w).
        """
        num_frames = inputs.shape[1]
        # [b, t, 3, H, W] -> [(b t), 3, H, W]
        frames = inputs.flatten(0, 1)
        backbone_feats = self.backbone(
            frames, lang=lang, num_frames=num_frames) \
            if self.with_lang_fusion else self.backbone(frames)
        img_pad_mask = self._image_pad_mask(inputs, data_samples)
        proj_feats = list(
            self.neck(
                tuple(backbone_feats[-self.num_backbone_outs_to_proj:])))
        backbone_masks, backbone_pos = self._masks_and_pos(
            img_pad_mask, backbone_feats, num_frames)
        proj_masks, proj_pos = self._masks_and_pos(img_pad_mask, proj_feats,
                                                   num_frames)
        return dict(
            backbone_feats=list(backbone_feats),
            backbone_masks=backbone_masks,
            backbone_pos=backbone_pos,
            proj_feats=proj_feats,
            proj_masks=proj_masks,
            proj_pos=proj_pos)

    def _clip_groups(
        self, inputs: Tensor, data_samples: SampleList
    ) -> Optional[List[Tuple[Tuple[int, int], List[int]]]]:
        """Group the videos of a batch by their own padded size.

        Returns:
            list | None: ``((pad_h, pad_w), video indices)`` per size, or
            None when batch invariance is off (``batch_invariant``, or
            ``batch_invariant_train`` in training) or every clip already has
            the batch's padded size (nothing to crop).
        """
        if not (self.batch_invariant_train
                if self.training else self.batch_invariant):
            return None
        batch_shape = tuple(inputs.shape[-2:])
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, sample in enumerate(data_samples):
            # written by the data preprocessor; without it, the whole canvas
            shape = tuple(sample.metainfo.get('pad_shape', batch_shape)[:2])
            shape = (min(shape[0], batch_shape[0]),
                     min(shape[1], batch_shape[1]))
            groups.setdefault(shape, []).append(i)
        if list(groups) == [batch_shape]:
            return None
        return list(groups.items())

    @staticmethod
    def _merge_clip_groups(parts: List[Tuple[List[int], Dict]],
                           num_videos: int, num_frames: int) -> Dict:
        """Put the per-group outputs of :meth:`_extract_visual` back into
        batch order on one canvas per level (features and positions padded
        with zeros, masks with True).

        Returns:
            dict: The keys of :meth:`_extract_visual` for the whole batch
            plus ``clip_groups``: ``(frame rows, backbone level shapes)``
            per group, for the stages that crop again (pixel decoder).
        """
        merged = dict()
        first = parts[0][1]
        device = first['proj_feats'][0].device
        rows_of = [
            torch.cat([
                torch.arange(i * num_frames, (i + 1) * num_frames,
                             device=device) for i in idx
            ]) for idx, _ in parts
        ]
        for key in first:
            levels = []
            for lvl in range(len(first[key])):
                tensors = [out[key][lvl] for _, out in parts]
                h = max(x.shape[-2] for x in tensors)
                w = max(x.shape[-1] for x in tensors)
                ref = tensors[0]
                shape = (num_videos * num_frames, *ref.shape[1:-2], h, w)
                canvas = ref.new_ones(shape) if ref.dtype == torch.bool \
                    else ref.new_zeros(shape)
                for rows, x in zip(rows_of, tensors):
                    canvas[rows, ..., :x.shape[-2], :x.shape[-1]] = x
                levels.append(canvas)
            merged[key] = levels
        merged['clip_groups'] = [
            (rows, [tuple(x.shape[-2:]) for x in out['backbone_feats']])
            for rows, (_, out) in zip(rows_of, parts)
        ]
        return merged

    @staticmethod
    def _select_valid_frames(
            inputs: Tensor,
            data_samples: SampleList) -> Tuple[Tensor, Optional[Tensor]]:
        """Keep only the frames listed in ``metainfo['valid_indices']``.

        Datasets with one annotated frame per clip (A2D-Sentences,
        JHMDB-Sentences) set ``valid_indices``; as in ReferFormer, the
        network after the per-frame backbone then only sees those frames.
        Selecting them at the input is equivalent and skips the backbone
        for the others.

        Returns:
            tuple: the (b, k, 3, H, W) inputs and the (k,) frame indices, or
            the inputs unchanged and None without ``valid_indices``.
        """
        indices = [s.metainfo.get('valid_indices', None) for s in data_samples]
        if all(idx is None for idx in indices):
            return inputs, None
        if any(idx is None for idx in indices) or any(
                list(idx) != list(indices[0]) for idx in indices):
            raise ValueError('All clips of a batch must have the same '
                             f'valid_indices, got {indices}')
        frame_idx = torch.as_tensor(
            list(indices[0]), dtype=torch.long, device=inputs.device)
        if len(frame_idx) == 0 or frame_idx.min() < 0 \
                or frame_idx.max() >= inputs.shape[1]:
            raise ValueError(f'valid_indices {indices[0]} out of range for '
                             f'clips of {inputs.shape[1]} frames')
        return inputs[:, frame_idx], frame_idx

    @staticmethod
    def _sample_with_frames(sample: RVOSDataSample,
                            frame_idx: Tensor) -> RVOSDataSample:
        """A shallow copy of ``sample`` whose ground truth keeps only the
        given frames."""
        new = sample.clone()
        new.gt_instances = sample.gt_instances[frame_idx.to(
            sample.gt_instances.masks.device)]
        return new

    @staticmethod
    def _expand_to_all_frames(pred: InstanceData, frame_idx: Tensor,
                              num_frames: int) -> InstanceData:
        """Scatter the predictions of the selected frames into a result of
        ``num_frames`` frames (empty masks, zero boxes and scores
        elsewhere)."""
        full = InstanceData()
        for key, value in pred.items():
            out = value.new_zeros((num_frames, ) + tuple(value.shape[1:]))
            out[frame_idx.to(value.device)] = value
            full[key] = out
        return full

    @staticmethod
    def _get_text(sample: RVOSDataSample) -> str:
        text = sample.metainfo.get('text', None)
        if not isinstance(text, str) or not text.strip():
            vid = sample.metainfo.get('video_id', '?')
            exp = sample.metainfo.get('exp_id', '?')
            raise ValueError(f'Empty or missing expression text for video '
                             f'"{vid}", expression "{exp}": {text!r}')
        return text

    @staticmethod
    def _image_pad_mask(inputs: Tensor, data_samples: SampleList) -> Tensor:
        """Padding mask of the input videos, (b, H, W) bool, True = pad
        (the same for all frames of a video)."""
        bs, _, _, pad_h, pad_w = inputs.shape
        mask = inputs.new_ones((bs, pad_h, pad_w), dtype=torch.bool)
        for i, sample in enumerate(data_samples):
            img_h, img_w = sample.metainfo.get('img_shape',
                                               (pad_h, pad_w))[:2]
            mask[i, :img_h, :img_w] = False
        return mask

    def _masks_and_pos(self, img_pad_mask: Tensor, feats: List[Tensor],
                       num_frames: int) -> Tuple[List, List]:
        """Nearest-resize the padding mask to every level and compute the
        2-D sine positional encodings.

        Both are computed once per video and repeated over its frames;
        with a single video the positions are an expanded view (no copy):
        the stride-4 encodings of a 5 x 384 x 640 clip cost 0.1 s per
        frame set otherwise.

        Args:
            img_pad_mask (Tensor): (b, H, W) bool, True = padding.
            feats (list[Tensor]): Maps of shape (b*t, C, h, w).
            num_frames (int): Frames per video t.

        Returns:
            tuple[list[Tensor], list[Tensor]]: Masks (b*t, h, w) bool and
            positions (b*t, C, h, w) per level.
        """
        masks, poses = [], []
        for feat in feats:
            mask = F.interpolate(
                img_pad_mask[None].float(),
                size=feat.shape[-2:]).to(torch.bool)[0]
            pos = self.positional_encoding(mask).to(feat.dtype)
            masks.append(mask.repeat_interleave(num_frames, dim=0))
            poses.append(
                pos.expand(num_frames, -1, -1, -1) if pos.size(0) ==
                1 else pos.repeat_interleave(num_frames, dim=0))
        return masks, poses

    def _noun_chunk_token_spans(
            self, data_samples: SampleList, texts: List[str], offsets: Tensor,
            word_pad_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Token spans (b, K, 2) and validity (b, K) of the noun chunks.

        The chunks' character spans come from ``metainfo['noun_chunks']``
        (computed in the data pipeline) or are parsed here with spaCy.
        """
        from dmformer.utils.noun_chunks import extract_noun_chunks
        from ..utils.token_spans import char_spans_to_token_spans
        char_spans = []
        for sample, text in zip(data_samples, texts):
            chunks = sample.metainfo.get('noun_chunks', None)
            if chunks is None:
                chunks = extract_noun_chunks(text)
            char_spans.append([tuple(c) for c in chunks])
        return char_spans_to_token_spans(char_spans, offsets, word_pad_mask)

    @staticmethod
    def _gt_subject_char_spans(data_samples: SampleList,
                               device: torch.device) -> Tensor:
        """(b, 2) long character spans of the labelled subject, -1 if
        unknown."""
        spans = []
        for sample in data_samples:
            span = sample.get('gt_subject_span', None)
            if span is None:
                spans.append(torch.full((2, ), -1, dtype=torch.long))
            else:
                spans.append(torch.as_tensor(span, dtype=torch.long))
        return torch.stack(spans).to(device)
