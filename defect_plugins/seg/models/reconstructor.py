"""ARCD stage-1 reconstruction network and its mmengine model wrapper.

The network follows the reconstructive sub-network of DRAEM (Zavrtanik et al., ICCV 2021) that
the thesis (section 3.3) builds on: a plain encoder-decoder *without skip connections* (so that
anomalies cannot be copied through to the output), five encoder stages of two 3x3 conv-BN-ReLU
layers with widths ``base * (1, 2, 4, 8, 8)``, max-pooling between stages, and a mirrored decoder
with bilinear up-sampling. ``mflm`` selects the thesis' chapter-4 variants of the bottleneck
stage: ``'none'`` (two 3x3 convolutions), ``'mdc'`` (a masked dilated convolution alone) or
``'mflm'`` (masked dilated convolution + channel transformer).

:class:`ARCDReconstructionModel` trains it in mmengine's Runner with the thesis' loss
``L2 + ssim_weight * (1 - SSIM)`` (``ssim_weight = 1/100``; SSIM from kornia) on images whose
``clean_img`` was kept by :class:`~defect_plugins.seg.transforms.SimulateAnomaly`. With an MDC
in the bottleneck, SSPCAB's self-supervised term ``self_sup_weight * MSE(block(x), x)`` is added.
"""
from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModel, BaseModule
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from .mflm import MFLM

MFLM_MODES = ("none", "mdc", "mflm")


@MODELS.register_module()
class ARCDReconstructor(BaseModule):
    """Encoder-decoder reconstruction network (no skip connections).

    Args:
        in_channels: image channels (the output has the same number).
        base_channels: width of the first stage.
        num_stages: encoder stages (spatial size shrinks by ``2 ** (num_stages - 1)``).
        mflm: ``'none'``, ``'mdc'`` or ``'mflm'`` for the bottleneck stage.
        mflm_cfg: keyword arguments for :class:`MFLM` (``kernel_size``, ``dilation``, ``num_heads``...).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 32, num_stages: int = 5, mflm: str = "none",
                 mflm_cfg: dict | None = None, norm_cfg: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if mflm not in MFLM_MODES:
            raise ValueError(f"ARCDReconstructor: mflm must be one of {MFLM_MODES}, got {mflm!r}")
        norm_cfg = norm_cfg or dict(type="BN")
        self.mflm_mode = mflm
        self.num_stages = num_stages
        widths = [base_channels * min(2 ** i, 8) for i in range(num_stages)]
        self.widths = widths
        conv = lambda cin, cout: ConvModule(cin, cout, 3, padding=1, norm_cfg=norm_cfg)  # noqa: E731
        self.encoder = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            last = i == num_stages - 1
            if last and mflm != "none":
                mcfg = dict(mflm_cfg or {})
                mcfg["use_transformer"] = mflm == "mflm"
                self.encoder.append(nn.Sequential(conv(cin, w), MFLM(w, **mcfg)))
            else:
                self.encoder.append(nn.Sequential(conv(cin, w), conv(w, w)))
            cin = w
        self.decoder = nn.ModuleList()
        for w_out in reversed(widths[:-1]):
            self.decoder.append(nn.Sequential(conv(cin, w_out), conv(w_out, w_out)))
            cin = w_out
        self.out = nn.Conv2d(cin, in_channels, 3, padding=1)
        self._self_sup: Tensor | None = None

    @property
    def divisor(self) -> int:
        return 2 ** (self.num_stages - 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if h % self.divisor or w % self.divisor:
            raise ValueError(f"ARCDReconstructor: input size {(h, w)} must be divisible by {self.divisor}")
        sizes = []
        for i, stage in enumerate(self.encoder):
            if i:
                sizes.append(x.shape[-2:])
                x = F.max_pool2d(x, 2)
            if i == self.num_stages - 1 and self.mflm_mode != "none":
                feat = stage[0](x)
                x = stage[1](feat)
                self._self_sup = F.mse_loss(x, feat.detach()) if self.training else None
            else:
                x = stage(x)
        for stage in self.decoder:
            x = F.interpolate(x, size=sizes.pop(), mode="bilinear", align_corners=False)
            x = stage(x)
        return self.out(x)

    def self_supervised_loss(self) -> Tensor | None:
        """SSPCAB's MSE between the masked block's output and input from the last forward."""
        return self._self_sup


@MODELS.register_module()
class ARCDReconstructionModel(BaseModel):
    """Stage-1 model for mmengine's Runner: inputs are ``I_c``, targets the packed ``clean_img``.

    ``predict`` returns :class:`SegDataSample` objects with ``rec_img`` and ``gt_clean`` in
    ``[0, 1]`` (undoing the data preprocessor's normalisation) for
    :class:`~defect_plugins.seg.metrics.ReconstructionAccuracy`.
    """

    def __init__(self, reconstructor: dict, data_preprocessor: dict | None = None, ssim_weight: float = 0.01,
                 ssim_window: int = 11, self_sup_weight: float = 0.1, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.reconstructor = MODELS.build(reconstructor)
        self.ssim_weight = ssim_weight
        self.ssim_window = ssim_window
        self.self_sup_weight = self_sup_weight

    # normalisation helpers: the reconstructor works in the preprocessor's space
    def _stats(self) -> tuple[Tensor, Tensor, bool]:
        pre = self.data_preprocessor
        if getattr(pre, "_enable_normalize", False):
            return pre.mean, pre.std, bool(getattr(pre, "channel_conversion", False))
        return torch.zeros(1, 1, 1), torch.ones(1, 1, 1), bool(getattr(pre, "channel_conversion", False))

    def normalise_clean(self, samples: list[SegDataSample], like: Tensor) -> Tensor:
        """Stack ``clean_img`` (uint8, loader order) and apply the preprocessor's conversion."""
        mean, std, convert = self._stats()
        clean = []
        for s in samples:
            if "clean_img" not in s:
                raise KeyError("ARCDReconstructionModel: data sample without 'clean_img'; put SimulateAnomaly "
                               "before PackARCDInputs in the pipeline")
            img = s.clean_img.data.to(like.device).float()
            if convert and img.shape[0] == 3:
                img = img[[2, 1, 0]]
            clean.append((img - mean.to(like.device)) / std.to(like.device))
        target = torch.stack(clean)
        if target.shape != like.shape:
            raise ValueError(f"ARCDReconstructionModel: clean image batch {tuple(target.shape)} differs from input "
                             f"batch {tuple(like.shape)}; use a fixed-size pipeline (PadSquareResize) and no padding")
        return target

    def to_unit(self, x: Tensor) -> Tensor:
        """Map from the preprocessor's space back to ``[0, 1]``."""
        mean, std, _ = self._stats()
        return ((x * std.to(x.device) + mean.to(x.device)) / 255.0).clamp(0, 1)

    def loss(self, inputs: Tensor, data_samples: list[SegDataSample]) -> dict[str, Tensor]:
        target = self.normalise_clean(data_samples, inputs)
        rec = self.reconstructor(inputs)
        rec_u, tgt_u = self.to_unit_unclamped(rec), self.to_unit(target)
        losses = {"loss_l2": F.mse_loss(rec_u, tgt_u),
                  "loss_ssim": self.ssim_weight * kornia.losses.ssim_loss(rec_u, tgt_u, self.ssim_window)}
        extra = self.reconstructor.self_supervised_loss() if hasattr(self.reconstructor, "self_supervised_loss") else None
        if extra is not None and self.self_sup_weight > 0:
            losses["loss_self_sup"] = self.self_sup_weight * extra
        return losses

    def to_unit_unclamped(self, x: Tensor) -> Tensor:
        mean, std, _ = self._stats()
        return (x * std.to(x.device) + mean.to(x.device)) / 255.0

    def predict(self, inputs: Tensor, data_samples: list[SegDataSample] | None = None) -> list[SegDataSample]:
        rec = self.to_unit(self.reconstructor(inputs))
        samples = data_samples if data_samples is not None else [SegDataSample() for _ in range(len(inputs))]
        target = self.to_unit(self.normalise_clean(samples, inputs)) if all("clean_img" in s for s in samples) else None
        for i, s in enumerate(samples):
            s.set_data({"rec_img": PixelData(data=rec[i])})
            if target is not None:
                s.set_data({"gt_clean": PixelData(data=target[i])})
        return samples

    def forward(self, inputs: Tensor, data_samples: list[SegDataSample] | None = None, mode: str = "tensor"):
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return self.reconstructor(inputs)
        raise RuntimeError(f"ARCDReconstructionModel: invalid mode {mode!r}")
