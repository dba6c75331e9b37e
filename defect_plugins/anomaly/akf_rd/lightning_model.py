"""AKF reverse distillation as an anomalib ``AnomalibModule``.

Zhao, Wang, Zhu, Xue (2025), "渐进式融合知识蒸馏的工业异常检测方法"
(asymptotic fusion knowledge distillation for industrial anomaly detection).
Reverse distillation (Deng & Li, CVPR 2022) whose bottleneck is replaced by
asymptotic knowledge fusion (AKF) + a residual one-class embedding (OCE).

The paper's training: Adam, lr 1e-4, batch 32, 256x256, 100 epochs, teacher
ImageNet wide_resnet50_2 (layers 1-3), loss = sum over levels of
mean(1 - cosine). The paper's ablation (Table 3) is selectable with
``fusion`` x ``oce``:

==========================  ==================  =====
setting                     ``fusion``          ``oce``
==========================  ==================  =====
traditional fusion          ``"concat"``        false
traditional fusion + OCE    ``"concat"``        true   (= reverse distillation)
AKF                         ``"akf"``           false
AKF + OCE (paper's model)   ``"akf"``           true
==========================  ==================  =====

Use from YAML with ``model: class_path: defect_plugins.anomaly.AkfReverseDistillation``.
The learning rate is an init argument because ``anomalib train`` ignores the
YAML ``optimizer:`` section; the input size is the explicit ``image_size``
argument so that it survives checkpoint reload. Metrics (anomalib's default set:
image and pixel AUROC and F1; plus pixel AUPRO) are defined in
:meth:`configure_evaluator` for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import Batch
from anomalib.metrics import AUPRO, AUROC, Evaluator, F1Score
from anomalib.models.components import AnomalibModule
from anomalib.post_processing import PostProcessor
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import optim

from .anomaly_map import AnomalyMapGenerationMode, normalize_anomaly_map_mode
from .components.bottleneck import FusionType
from .components.fusion import WeightMode, normalize_weight_mode
from .loss import AkfReverseDistillationLoss, LossMode
from .torch_model import AkfReverseDistillationModel

__all__ = ["AkfReverseDistillation"]


class AkfReverseDistillation(AnomalibModule):
    """Lightning module of AKF reverse distillation.

    Args:
        backbone: Teacher backbone; any backbone with an anomalib RD decoder
            (resnet18/34/50/101/152, resnext50_32x4d, resnext101_32x8d,
            wide_resnet50_2, wide_resnet101_2). The paper: ``wide_resnet50_2``.
        layers: Teacher layers, shallow first. Defaults to layer1-3.
        fusion: ``"akf"`` (paper) or ``"concat"`` (traditional RD fusion).
        oce: Residual one-class embedding after the fusion. Defaults to ``True``.
        akf_weights: ``"positional"`` -- the paper's learnable ``C x H x W`` weight per
            level and position (the model then only takes ``image_size`` inputs;
            the exported model resizes any image to it); ``"adaptive"`` --
            ``1 x H x W`` weights computed from the features (AFPN style), any size;
            ``"adaptive_channels"`` -- the same with ``C x H x W`` weights per input.
            ``"fixed"`` is the old name of ``"positional"`` (accepted, with a
            ``DeprecationWarning``).
        akf_lateral: 3x3 conv + BN + ReLU on the deeper level of each AKF step
            before weighting (default, the project's first reconstruction of the
            lost fusion equations); ``False`` weights the raw deeper level and
            resamples only the running result (the literal reading).
        image_size: ``(H, W)`` the default pre-processor resizes to; also the
            size the positional fusion weights are built for. Defaults to ``(256, 256)``.
        pre_trained: Teacher weights from timm's hub (needs internet).
        teacher_weights: Local torchvision/timm state dict for the teacher
            (offline). When given, ``pre_trained`` is ignored.
        lr: Adam learning rate (paper: 1e-4).
        betas: Adam betas. Defaults to PyTorch's ``(0.9, 0.999)``.
        weight_decay: Adam weight decay. Defaults to 0.
        loss_mode: ``"flat"`` (RD code / anomalib) or ``"pixel"``; see ``loss.py``.
        anomaly_map_mode: ``ADD`` (default) or ``MULTIPLY``, as anomalib's RD: the
            ``AnomalyMapGenerationMode`` member, its name in any case (``ADD``, as in
            anomalib's RD config) or its value (``"add"``). Stored as the value.
        anomaly_map_sigma: Gaussian blur of the anomaly map, in input pixels
            (RD and the paper: 4 at 256 px). Larger values fill the inside of
            large, low-contrast defects whose feature differences sit at their
            borders.
        anomaly_map_level_weights: Weight of each teacher level's map
            (shallow first; the paper's M1-M3, Fig. 6) in the anomaly map.
            RD's equal sum by default; ``[0, 0, 1]`` scores with the deepest
            level only (every level is still distilled).
        pre_processor, post_processor, evaluator, visualizer: as for any
            ``AnomalibModule``.
    """

    def __init__(
        self,
        backbone: str = "wide_resnet50_2",
        layers: Sequence[str] = ("layer1", "layer2", "layer3"),
        fusion: FusionType = "akf",
        oce: bool = True,
        akf_weights: WeightMode = "positional",
        image_size: Sequence[int] = (256, 256),
        pre_trained: bool = True,
        teacher_weights: str | Path | None = None,
        lr: float = 1e-4,
        betas: Sequence[float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        loss_mode: LossMode = "flat",
        anomaly_map_mode: AnomalyMapGenerationMode | str = AnomalyMapGenerationMode.ADD,
        anomaly_map_sigma: int = 4,
        anomaly_map_level_weights: Sequence[float] = (1.0, 1.0, 1.0),
        pre_processor: PreProcessor | bool = True,
        post_processor: PostProcessor | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
        akf_lateral: bool = True,
    ) -> None:
        akf_weights = normalize_weight_mode(akf_weights)  # "fixed" -> "positional", with a DeprecationWarning
        # "ADD" / "add" / the enum -> "add": checked before anything is built; the hyperparameters (and
        # checkpoints) keep a plain string, which loads with torch.load(weights_only=True) as before
        anomaly_map_mode = normalize_anomaly_map_mode(anomaly_map_mode).value
        if len(image_size) != 2:  # noqa: PLR2004
            msg = f"image_size must be (height, width), got {image_size!r}."
            raise ValueError(msg)
        image_size = (int(image_size[0]), int(image_size[1]))
        if pre_processor is True:
            pre_processor = self.configure_pre_processor(image_size)
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        input_size = tuple(self.input_size) if self.input_size is not None else image_size
        if input_size != image_size:
            msg = (
                f"The pre_processor resizes to {input_size} but image_size is {image_size}: "
                "set image_size to the pre-processor's output size."
            )
            raise ValueError(msg)
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.weight_decay = float(weight_decay)
        self.model = AkfReverseDistillationModel(
            backbone=backbone,
            input_size=image_size,
            layers=layers,
            fusion=fusion,
            oce=oce,
            akf_weights=akf_weights,
            pre_trained=pre_trained,
            teacher_weights=teacher_weights,
            anomaly_map_mode=anomaly_map_mode,
            anomaly_map_sigma=anomaly_map_sigma,
            anomaly_map_level_weights=anomaly_map_level_weights,
            akf_lateral=akf_lateral,
        )
        self.loss = AkfReverseDistillationLoss(loss_mode)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path,
        map_location: Any = None,  # noqa: ANN401
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool = True,
        **kwargs: Any,  # noqa: ANN401
    ) -> AkfReverseDistillation:
        """Load a checkpoint without fetching the teacher again.

        The checkpoint's state dict holds the teacher's weights, so the hub
        download (``pre_trained``) and the ``teacher_weights`` file are skipped
        unless given here explicitly: reload and ``anomalib export`` then work
        offline and on machines without the original weights file.
        """
        kwargs.setdefault("pre_trained", False)
        kwargs.setdefault("teacher_weights", None)
        return super().load_from_checkpoint(
            checkpoint_path,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            weights_only=weights_only,
            **kwargs,
        )

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Test metrics: anomalib's default set plus pixel AUPRO (pixel ones skipped without masks).

        anomalib's default (``AnomalibModule.configure_evaluator``, what its ReverseDistillation
        uses): ``image_AUROC``, ``image_F1Score``, ``pixel_AUROC``, ``pixel_F1Score``. Keeping
        every one of them, same names and fields, puts AKF-RD in the same table as anomalib's
        models (``anomalib benchmark``); ``pixel_AUPRO`` is the AKF paper's extra metric.
        """
        return Evaluator(
            test_metrics=[
                AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
                F1Score(fields=["pred_label", "gt_label"], prefix="image_"),
                AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
                F1Score(fields=["pred_mask", "gt_mask"], prefix="pixel_", strict=False),
                AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            ],
        )

    def level_anomaly_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Per-level anomaly maps ``(N, 3, H, W)`` of pre-processed ``images`` (the paper's M1-M3, Fig. 6).

        See :meth:`AkfReverseDistillationModel.level_anomaly_maps`. anomalib's ``InferenceBatch``
        has no field for them (its fields are fixed), so they are not part of ``predict`` or of an
        export; channel ``k`` (``[:, k:k+1]``) goes wherever an anomaly map goes, e.g.
        ``ImageItem(image=..., anomaly_map=maps[i, k])`` for anomalib's ``visualize_image_item``.
        """
        return self.model.level_anomaly_maps(images)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters of the student side (bottleneck + decoder); the teacher stays frozen."""
        return list(self.model.bottleneck.parameters()) + list(self.model.decoder.parameters())

    def configure_optimizers(self) -> optim.Adam:
        """Adam on bottleneck and decoder (paper: lr 1e-4)."""
        return optim.Adam(self.trainable_parameters(), lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Distillation loss between the frozen teacher's and the student's features."""
        del args, kwargs
        loss = self.loss(*self.model(batch.image))
        self.log("train_loss", loss.item(), on_epoch=True, prog_bar=True, logger=True)
        return {"loss": loss}

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Anomaly maps and scores for the validation batch."""
        del args, kwargs
        predictions = self.model(batch.image)
        return batch.update(**predictions._asdict())

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """As anomalib's RD: no gradient clipping, no sanity validation."""
        return {"gradient_clip_val": 0, "num_sanity_val_steps": 0}

    @property
    def learning_type(self) -> LearningType:
        """One-class: trained on normal images only."""
        return LearningType.ONE_CLASS
