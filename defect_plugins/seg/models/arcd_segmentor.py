"""ARCD stage 2: frozen reconstructor + 6-channel discrimination network + optional region head.

Thesis section 3.3 (after DRAEM's discriminative sub-network, Zavrtanik et al. 2021): the input
image and its reconstruction by the stage-1 network are concatenated (6 channels) and fed to a
segmentation network (U-Net, SegNet, PSPNet or DeepLabV3+ in the thesis' Table 3.2) trained with
focal loss on labelled defective images. The thesis' strip images also have a machine-bed region,
predicted by a second head and evaluated separately.

:class:`ARCDSegmentor` is an mmseg :class:`~mmseg.models.EncoderDecoder`, so any mmseg backbone
(configured with ``in_channels=6``), neck and decode head can serve as the discriminator. The
reconstructor is built from its config, loaded from the stage-1 checkpoint in ``__init__``,
frozen (``requires_grad=False``, kept in eval mode) and restored after ``init_weights`` so no
initialisation scheme can overwrite it. It stays in the state dict, so stage-2 checkpoints are
self-contained for resuming, ``mmseg.apis.init_model`` and export.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.structures import PixelData
from mmseg.models import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor


class StageOneCheckpointError(ValueError):
    """The stage-1 (reconstructor) checkpoint is missing, unreadable or does not fit."""


def load_reconstructor_state(path: str | Path | None) -> dict[str, Tensor]:
    """Read the reconstructor weights from a stage-1 checkpoint (or a bare state dict)."""
    if path is not None and Path(path).is_dir():
        pointer = Path(path) / "last_checkpoint"  # written by mmengine's CheckpointHook in the work dir
        if not pointer.is_file():
            raise StageOneCheckpointError(
                f"model.reconstructor_checkpoint: work dir {str(path)!r} has no 'last_checkpoint'; train the stage-1 "
                "config into it first or pass the .pth file")
        path = pointer.read_text().strip()
    if path is None or str(path) == "":
        raise StageOneCheckpointError(
            "model.reconstructor_checkpoint is not set: ARCD stage 2 needs the stage-1 reconstruction checkpoint "
            "(train a packaged arcd/*stage1*.py config first, e.g. `defect-train mmseg arcd_stage1_recon_strip.py`, "
            "then pass --cfg-options model.reconstructor_checkpoint=PATH)")
    if not Path(path).is_file():
        raise StageOneCheckpointError(f"model.reconstructor_checkpoint: stage-1 checkpoint {str(path)!r} not found")
    ckpt = _load_checkpoint(str(path), map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise StageOneCheckpointError(f"model.reconstructor_checkpoint: {path} holds no state dict")
    prefix = "reconstructor."
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


@MODELS.register_module()
class ARCDSegmentor(EncoderDecoder):
    """Anomaly-reconstruction + contrastive-discrimination segmentor.

    Args:
        reconstructor: config of the stage-1 network (e.g. ``ARCDReconstructor``); must match the
            stage-1 checkpoint.
        reconstructor_checkpoint: stage-1 checkpoint file, or the stage-1 work dir (its
            ``last_checkpoint`` is used). Required for training and ``tools/test.py``; a build with
            ``train_cfg=None`` (``mmseg.apis.init_model``) only warns, since the stage-2
            checkpoint it loads next contains the reconstructor.
        backbone / neck / decode_head / auxiliary_head: the discriminator, as in
            :class:`EncoderDecoder`; the backbone takes ``2 * C`` input channels when
            ``concat_reconstruction`` is true.
        region_head: optional decode-head config (``num_classes=2``) for the machine-bed region,
            trained on ``gt_region_map``; its losses are prefixed ``region.``.
        concat_reconstruction: feed ``[image, reconstruction]``; ``False`` gives the plain
            discriminator on the image alone (same code path, for ablations).
    """

    def __init__(self, backbone: dict, decode_head: dict, reconstructor: dict,
                 reconstructor_checkpoint: str | None = None, region_head: dict | None = None,
                 concat_reconstruction: bool = True, neck: dict | None = None, auxiliary_head: dict | None = None,
                 train_cfg: dict | None = None, test_cfg: dict | None = None, data_preprocessor: dict | None = None,
                 pretrained: str | None = None, init_cfg: dict | None = None) -> None:
        try:
            state = load_reconstructor_state(reconstructor_checkpoint)
        except StageOneCheckpointError as error:
            # mmseg.apis.init_model builds with train_cfg=None and then loads a full stage-2
            # checkpoint, which already holds the reconstructor: the stage-1 file is optional there.
            if train_cfg is not None:
                raise
            print_log(f"ARCDSegmentor (inference build): {error}; the reconstructor weights must come from the "
                      "stage-2 checkpoint loaded next", logger="current", level=logging.WARNING)
            state = None
        super().__init__(backbone=backbone, decode_head=decode_head, neck=neck, auxiliary_head=auxiliary_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, data_preprocessor=data_preprocessor,
                         pretrained=pretrained, init_cfg=init_cfg)
        self.reconstructor = MODELS.build(reconstructor)
        try:
            if state is not None:
                self.reconstructor.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise StageOneCheckpointError(
                f"model.reconstructor_checkpoint {reconstructor_checkpoint}: weights do not fit model.reconstructor "
                f"({error})") from error
        self.reconstructor.requires_grad_(False)
        self.reconstructor.eval()
        self.reconstructor_checkpoint = str(reconstructor_checkpoint)
        self.concat_reconstruction = concat_reconstruction
        self.region_head = MODELS.build(region_head) if region_head is not None else None

    @property
    def with_region_head(self) -> bool:
        return self.region_head is not None

    # --- frozen reconstructor ---------------------------------------------------------------
    def init_weights(self) -> None:
        saved = copy.deepcopy(self.reconstructor.state_dict())
        super().init_weights()
        self.reconstructor.load_state_dict(saved)

    def train(self, mode: bool = True) -> "ARCDSegmentor":
        super().train(mode)
        self.reconstructor.eval()
        return self

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor) -> Tensor:
        """Reconstruction of the (normalised) input by the frozen stage-1 network."""
        return self.reconstructor(inputs)

    def discriminator_input(self, inputs: Tensor) -> Tensor:
        if not self.concat_reconstruction:
            return inputs
        return torch.cat([inputs, self.reconstruct(inputs).detach()], dim=1)

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        return super().extract_feat(self.discriminator_input(inputs))

    # --- region head ---------------------------------------------------------------------------
    @staticmethod
    def region_samples(data_samples: list[SegDataSample]) -> list[SegDataSample]:
        """Copies of the samples whose ``gt_sem_seg`` is the region map (for mmseg head losses)."""
        out = []
        for sample in data_samples:
            if "gt_region_map" not in sample:
                raise KeyError(f"ARCDSegmentor: region_head is set but sample {sample.metainfo.get('img_path')!r} "
                               "has no gt_region_map; add LoadRegionMap to the pipeline or drop region_head")
            region = SegDataSample(metainfo=sample.metainfo)
            region.gt_sem_seg = PixelData(data=sample.gt_region_map.data)
            out.append(region)
        return out

    def loss(self, inputs: Tensor, data_samples: list[SegDataSample]) -> dict:
        x = self.extract_feat(inputs)
        losses = dict(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        if self.with_region_head:
            region_losses = self.region_head.loss(x, self.region_samples(data_samples), self.train_cfg)
            losses.update({f"region.{k}": v for k, v in region_losses.items()})
        return losses

    def predict(self, inputs: Tensor, data_samples: list[SegDataSample] | None = None) -> list[SegDataSample]:
        if self.test_cfg is not None and self.test_cfg.get("mode", "whole") != "whole":
            raise NotImplementedError("ARCDSegmentor supports test_cfg.mode='whole' only")
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:], pad_shape=inputs.shape[2:],
                          padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        x = self.extract_feat(inputs)
        seg_logits = self.decode_head.predict(x, metas, self.test_cfg)
        results = self.postprocess_result(seg_logits, data_samples)
        if self.with_region_head:
            region_logits = self.region_head.predict(x, metas, self.test_cfg)
            shadow = [SegDataSample(metainfo=m) for m in metas] if data_samples is not None else None
            shadow = super().postprocess_result(region_logits, shadow)
            for sample, region in zip(results, shadow):
                sample.set_data({"region_logits": region.seg_logits, "pred_region": region.pred_sem_seg})
        return results

    def _forward(self, inputs: Tensor, data_samples: list[SegDataSample] | None = None):
        x = self.extract_feat(inputs)
        seg = self.decode_head.forward(x)
        return (seg, self.region_head.forward(x)) if self.with_region_head else seg
