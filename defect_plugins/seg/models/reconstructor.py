"""ARCD stage-1 reconstruction network and its mmengine model wrapper.

Zhang Xunfei, "Research on steel defect detection based on semantic segmentation" (Zhejiang
University master's thesis, 2023): the stage-1 network of section 3.3 and its chapter-4 variants,
whose sizes Table 4.2 gives at 256x256 (thop's convention): base 69.05 M parameters / 160.38 G,
"Base + MDC" 135.58 M / 283.59 G, "Base + MFLM" 57.26 M / 137.85 G.

``layout='draem'`` (default) is the reconstructive sub-network of DRAEM (Zavrtanik et al., ICCV
2021), which those figures match at base width 128: a plain encoder-decoder *without skip
connections* (anomalies cannot be copied through to the output).

* encoder: five blocks of two 3x3 conv-BN-ReLU with widths ``base * (1, 2, 4, 8, 8)``, 2x2
  max-pooling between blocks;
* decoder, one stage per pooling, deepest first: bilinear up-sampling to the size before that
  pooling and a 3x3 conv-BN-ReLU keeping the width, then two 3x3 conv-BN-ReLU, the second one
  narrowing to the width of the next shallower encoder block (``8w -> 4w -> 2w -> w -> w``);
* a final 3x3 convolution to the image channels.

``mflm='mdc'`` or ``'mflm'`` replaces the *second* 3x3 convolution of each encoder block (keeping
its BN and ReLU; ``mflm_stages`` selects blocks) with :class:`~defect_plugins.seg.models.MFLM`:
``'mdc'`` is SSPCAB's block (masked convolution ``k=3, d=1`` + SE gate, reduction 8), ``'mflm'``
SSMCTB's (masked convolution ``k=1, d=1`` + channel transformer, 64-dimensional tokens, 5 heads x
64, one layer); ``mflm_cfg`` overrides these settings. At width 128 this gives the three Table 4.2
rows, parameters within 0.03 % and GFLOPs within 0.3 % (``experiments/arcd/arcd_complexity.py``, thop's
convention: multiply-accumulates; the transformer's positional embedding, 64 values per channel, is
not counted). The convolutions before BN have no bias (DRAEM's have: 0.01 M at width 128).

``layout='compact'`` is this project's earlier network (two 3x3 conv-BN-ReLU per decoder stage,
narrowing in the first, 65.8 M parameters at width 128; the masked module in the bottleneck block
only, replacing its whole second conv-BN-ReLU). It is kept because the README demo's configs
(``configs/demo/arcd_stage*_synthetic_strip.py``) were tuned and timed with it.

:class:`ARCDReconstructionModel` trains it in mmengine's Runner with the thesis' loss
``L2 + ssim_weight * (1 - SSIM)`` (``ssim_weight = 1/100``; SSIM from kornia, 11x11 Gaussian
window; the same terms as the RA metric of Table 4.1,
:class:`~defect_plugins.seg.metrics.ReconstructionAccuracy`) on images whose ``clean_img`` was kept
by :class:`~defect_plugins.seg.transforms.SimulateAnomaly`. SSPCAB's self-supervised term
``self_sup_weight * mean_blocks MSE(block(x), x)`` is not part of the thesis' loss and is off by
default (``self_sup_weight=0``).
"""
from __future__ import annotations

import inspect
from typing import Sequence

import kornia
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModel, BaseModule
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch import Tensor, nn

from .mflm import MFLM

MFLM_MODES = ("none", "mdc", "mflm")
LAYOUTS = ("draem", "compact")
# Table 4.2's settings: MDC = SSPCAB (k=3, d=1, SE reduction 8); MFLM = SSMCTB-style (k=1, d=1,
# 64-dimensional tokens, 5 heads x 64, one layer).
MODE_DEFAULTS = {
    "mdc": dict(kernel_size=3, dilation=1, attention="se", se_reduction=8),
    "mflm": dict(kernel_size=1, dilation=1, attention="transformer", token_dim=64, num_heads=5, head_dim=64,
                 num_layers=1),
}


class MaskedConvBNReLU(nn.Module):
    """A conv-BN-ReLU whose convolution is an :class:`MFLM` (masked convolution + gate)."""

    def __init__(self, channels: int, mflm_cfg: dict, norm_cfg: dict) -> None:
        super().__init__()
        self.masked = MFLM(channels, **mflm_cfg)
        self.bn = build_norm_layer(norm_cfg, channels)[1]
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.masked(x)))


@MODELS.register_module()
class ARCDReconstructor(BaseModule):
    """Encoder-decoder reconstruction network (no skip connections), thesis Table 4.2.

    Args:
        in_channels: image channels (the output has the same number).
        base_channels: width of the first encoder block (128 in the thesis).
        num_stages: encoder blocks (5 in the thesis); widths ``base * min(2 ** i, 8)``.
        mflm: ``'none'``, ``'mdc'`` or ``'mflm'`` (see the module docstring).
        mflm_cfg: keyword arguments for :class:`MFLM` on top of the mode's defaults
            (``MODE_DEFAULTS``): ``kernel_size``, ``dilation``, ``token_dim``, ``num_heads``,
            ``head_dim``, ``num_layers``, ``se_reduction``, ``attention``...
        mflm_stages: encoder blocks (0-based) whose second convolution is replaced; default all
            (``'draem'``) or the last one (``'compact'``).
        layout: ``'draem'`` (thesis, default) or ``'compact'`` (this project's earlier network,
            kept for the README demo).
        norm_cfg: normalisation layers (default BN).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 128, num_stages: int = 5, mflm: str = "none",
                 mflm_cfg: dict | None = None, mflm_stages: Sequence[int] | None = None, layout: str = "draem",
                 norm_cfg: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        if mflm not in MFLM_MODES:
            raise ValueError(f"ARCDReconstructor: mflm must be one of {MFLM_MODES}, got {mflm!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"ARCDReconstructor: layout must be one of {LAYOUTS}, got {layout!r}")
        if num_stages < 1 or base_channels < 1:
            raise ValueError(f"ARCDReconstructor: num_stages and base_channels must be >= 1, got {num_stages}, "
                             f"{base_channels}")
        norm_cfg = norm_cfg or dict(type="BN")
        self.mflm_mode = mflm
        self.layout = layout
        self.num_stages = num_stages
        if mflm_stages is None:
            mflm_stages = range(num_stages) if layout == "draem" else [num_stages - 1]
        self.mflm_stages = sorted({int(i) for i in mflm_stages}) if mflm != "none" else []
        bad = [i for i in self.mflm_stages if not 0 <= i < num_stages]
        if bad:
            raise ValueError(f"ARCDReconstructor: mflm_stages {bad} out of range for {num_stages} encoder blocks")
        self.mflm_kwargs = {**MODE_DEFAULTS[mflm], **(mflm_cfg or {})} if mflm != "none" else {}
        known = set(inspect.signature(MFLM.__init__).parameters) - {"self", "channels", "init_cfg"}
        unknown = sorted(set(self.mflm_kwargs) - known)
        if unknown:
            raise ValueError(f"ARCDReconstructor: mflm_cfg keys {unknown} are not MFLM arguments; expected some of "
                             f"{sorted(known)}")
        widths = [base_channels * min(2 ** i, 8) for i in range(num_stages)]
        self.widths = widths
        # SSPCAB's self-supervised MSE of the masked blocks, from the last training forward
        self.track_self_supervised = True
        self._self_sup: list[Tensor] = []
        if layout == "draem":
            self._build_draem(in_channels, widths, norm_cfg)
        else:
            self._build_compact(in_channels, widths, norm_cfg)

    def _build_draem(self, in_channels: int, widths: list[int], norm_cfg: dict) -> None:
        conv = lambda cin, cout: ConvModule(cin, cout, 3, padding=1, norm_cfg=norm_cfg)  # noqa: E731
        self.encoder = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            second = (MaskedConvBNReLU(w, self.mflm_kwargs, norm_cfg) if i in self.mflm_stages else conv(w, w))
            self.encoder.append(nn.Sequential(conv(cin, w), second))
            cin = w
        self.decoder = nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):  # the resolution of encoder block i
            out = widths[max(i - 1, 0)]
            self.decoder.append(nn.Sequential(conv(cin, cin), conv(cin, cin), conv(cin, out)))
            cin = out
        self.out = nn.Conv2d(cin, in_channels, 3, padding=1)

    def _build_compact(self, in_channels: int, widths: list[int], norm_cfg: dict) -> None:
        conv = lambda cin, cout: ConvModule(cin, cout, 3, padding=1, norm_cfg=norm_cfg)  # noqa: E731
        self.encoder = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            if i in self.mflm_stages:
                self.encoder.append(nn.Sequential(conv(cin, w), MFLM(w, **self.mflm_kwargs)))
            else:
                self.encoder.append(nn.Sequential(conv(cin, w), conv(w, w)))
            cin = w
        self.decoder = nn.ModuleList()
        for w_out in reversed(widths[:-1]):
            self.decoder.append(nn.Sequential(conv(cin, w_out), conv(w_out, w_out)))
            cin = w_out
        self.out = nn.Conv2d(cin, in_channels, 3, padding=1)

    @property
    def divisor(self) -> int:
        return 2 ** (self.num_stages - 1)

    def _masked(self, module: nn.Module, x: Tensor) -> Tensor:
        """Run a masked module (an :class:`MFLM` or the block holding one), recording SSPCAB's MSE."""
        masked = module.masked if isinstance(module, MaskedConvBNReLU) else module
        y = masked(x)
        if self.training and self.track_self_supervised:
            self._self_sup.append(F.mse_loss(y, x))
        return module.act(module.bn(y)) if isinstance(module, MaskedConvBNReLU) else y

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < self.divisor:
            raise ValueError(f"ARCDReconstructor: input size {(h, w)} is smaller than {self.divisor} "
                             f"({self.num_stages} encoder blocks)")
        if self.layout == "compact" and (h % self.divisor or w % self.divisor):
            raise ValueError(f"ARCDReconstructor: input size {(h, w)} must be divisible by {self.divisor}")
        self._self_sup = []
        sizes = []
        for i, stage in enumerate(self.encoder):
            if i:
                sizes.append(x.shape[-2:])
                x = F.max_pool2d(x, 2)
            if i in self.mflm_stages:
                x = self._masked(stage[1], stage[0](x))
            else:
                x = stage(x)
        for stage in self.decoder:
            x = F.interpolate(x, size=sizes.pop(), mode="bilinear", align_corners=False)
            x = stage(x)
        return self.out(x)

    def self_supervised_loss(self) -> Tensor | None:
        """Mean over the masked blocks of SSPCAB's ``MSE(block(x), x)`` in the last training forward."""
        if not self._self_sup:
            return None
        return torch.stack(self._self_sup).mean()


@MODELS.register_module()
class ARCDReconstructionModel(BaseModel):
    """Stage-1 model for mmengine's Runner: inputs are ``I_c``, targets the packed ``clean_img``.

    Loss (thesis chapter 4, the quantity behind Table 4.1's RA): ``loss_l2 = MSE`` and
    ``loss_ssim = ssim_weight * (1 - SSIM)``, both on images in ``[0, 1]``. kornia's ``ssim_loss``
    is ``(1 - SSIM) / 2``, so it is doubled here: ``ssim_weight=0.01`` is the thesis' 1/100
    (this project weighed it 1/200 before; ``ssim_weight=0.005`` gives that loss back).

    ``predict`` returns :class:`SegDataSample` objects with ``rec_img`` and ``gt_clean`` in
    ``[0, 1]`` (undoing the data preprocessor's normalisation) for
    :class:`~defect_plugins.seg.metrics.ReconstructionAccuracy`.

    Args:
        reconstructor: config of the network (``ARCDReconstructor``).
        data_preprocessor: mmseg data preprocessor config.
        ssim_weight: weight of ``1 - SSIM`` (1/100 in the thesis).
        ssim_window: side of SSIM's Gaussian window.
        self_sup_weight: weight of SSPCAB's self-supervised MSE of the masked blocks (``loss_self_sup``);
            not in the thesis, 0 (off) by default.
    """

    def __init__(self, reconstructor: dict, data_preprocessor: dict | None = None, ssim_weight: float = 0.01,
                 ssim_window: int = 11, self_sup_weight: float = 0.0, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        for key, value in (("ssim_weight", ssim_weight), ("self_sup_weight", self_sup_weight)):
            if value < 0:
                raise ValueError(f"ARCDReconstructionModel: model.{key} must be >= 0, got {value}")
        self.reconstructor = MODELS.build(reconstructor)
        self.ssim_weight = ssim_weight
        self.ssim_window = ssim_window
        self.self_sup_weight = self_sup_weight
        if hasattr(self.reconstructor, "track_self_supervised"):
            self.reconstructor.track_self_supervised = self_sup_weight > 0

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
        rec = self.reconstructor(inputs).float()  # the loss in float32 even under bf16 autocast
        rec_u, tgt_u = self.to_unit_unclamped(rec), self.to_unit(target)
        losses = {"loss_l2": F.mse_loss(rec_u, tgt_u),
                  # kornia's ssim_loss is (1 - SSIM) / 2
                  "loss_ssim": (2.0 * self.ssim_weight) * kornia.losses.ssim_loss(rec_u, tgt_u, self.ssim_window)}
        extra = (self.reconstructor.self_supervised_loss() if hasattr(self.reconstructor, "self_supervised_loss")
                 else None)
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
