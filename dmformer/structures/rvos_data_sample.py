# Copyright (c) OpenMMLab. All rights reserved.
from mmengine.structures import BaseDataElement, InstanceData


class RVOSDataSample(BaseDataElement):
    """Data sample of one (video clip, referring expression) pair.

    The referred object is a single instance tracked over ``T`` frames, so
    its per-frame annotations are stored as an :obj:`InstanceData` of length
    ``T`` (one row per frame).

    Meta information (``metainfo``), set by the data pipeline:

    - ``video_id`` (str), ``exp_id`` (str), ``obj_id`` (int)
    - ``text`` (str): the cleaned referring expression (after a possible
      left/right swap by a flip).
    - ``noun_chunks`` (list[tuple[int, int]]): character spans
      ``[start, end)`` of the spaCy noun chunks of ``text``.
    - ``frame_ids`` (list[str]): frame names of the sampled frames.
    - ``img_paths`` (list[str]): frame image paths.
    - ``ori_shape`` (tuple[int, int]): (h, w) of the original frames.
    - ``img_shape`` (tuple[int, int]): (h, w) after resizing (all frames).
    - ``pad_shape`` / ``batch_input_shape`` (tuple[int, int]): set by the
      data preprocessor.
    - ``flip`` (bool), ``scale_factor`` (tuple[float, float]).
    - ``video_expressions`` (list[dict], optional): ``{"text", "obj_id"}``
      of every expression of the video (this one included), from a dataset
      built with ``with_video_expressions=True``.
    - ``object_categories`` (dict[int, str], optional): ``{obj_id:
      category}`` of every object of the video, from a dataset built with
      ``with_object_categories=True``.

    Data fields:

    - ``gt_instances`` (:obj:`InstanceData`), length ``T``:
        - ``masks`` (Tensor): bool, (T, H, W). In training at ``img_shape``
          (padded to ``batch_input_shape`` by the data preprocessor); in
          testing at ``ori_shape``.
        - ``bboxes`` (Tensor): float, (T, 4), xyxy pixels in the same frame
          as ``masks``; zeros where the object is absent.
        - ``valid`` (Tensor): bool, (T,), whether the object is present.
        - ``id_maps`` (Tensor, optional): uint8, (T, H, W), the id of
          every annotated object per pixel (0 = background), like
          ``masks``; from ``LoadRVOSAnnotations(with_seg_map=True)``.
    - ``gt_subject_span`` (Tensor): long, (2,), the character span
      ``[start, end)`` of the subject noun phrase of ``text`` (optional;
      the subject perceptron is not supervised without it).
    - ``pred_instances`` (:obj:`InstanceData`), length ``T``, written by
      ``predict``:
        - ``masks`` (Tensor): bool, (T, H, W) at ``ori_shape``.
        - ``bboxes`` (Tensor): float, (T, 4), xyxy pixels at ``ori_shape``.
        - ``scores`` (Tensor): float, (T,), score of the chosen query.
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances
