"""Parameters and FLOPs of ARCD reconstructor and discriminator variants (thesis Tables 4.2, 4.4).

    python experiments/arcd/arcd_complexity.py [--size 256] [--json OUT.json] [--out OUT.md]

Thesis: Zhang Xunfei, "Research on steel defect detection based on semantic segmentation",
Zhejiang University master's thesis, 2023. Table 4.2 gives, at 256x256, the base reconstructor
69.05 M parameters / 160.38 GFLOPs, "Base + MDC" 135.58 M / 283.59 G and "Base + MFLM"
57.26 M / 137.85 G; the rows ``recon128_base``, ``recon128_mdc`` and ``recon128_mflm`` rebuild
them (DRAEM layout, base width 128; MDC / MFLM in place of the second 3x3 convolution of the five
encoder blocks, see :mod:`defect_plugins.seg.models.reconstructor`).

Counting convention (thop's, which the thesis' figures follow; implemented here with forward
hooks, without thop):

* FLOPs are multiply-accumulates: convolutions ``output elements x (C_in / groups) x k_h x k_w``
  (transposed: ``input elements x (C_out / groups) x k_h x k_w``), linear layers ``output
  elements x in_features``, normalisation layers 2 per element; bias additions, activations,
  pooling, interpolation and functional calls (the attention product inside the channel
  transformer, element-wise gates) count 0. ``gflops`` is that count / 1e9 for one image.
* Parameters are counted for the layers above only, so a bare ``nn.Parameter`` of a composite
  module is not: the MFLM channel transformer's positional embedding (64 values per channel,
  0.19 M for a width-128 reconstructor) is left out, as thop leaves it out. ``params_all_m`` gives
  every parameter.

The networks are built and traced on PyTorch's ``meta`` device (shapes only, no memory, no
arithmetic), so the whole table takes seconds.

``--json`` writes ``{"size", "convention", "rows": [{"name", "params_m", "gflops", "params_all_m",
...}]}``; the three Table 4.2 rows also carry ``thesis_params_m`` and ``thesis_gflops``.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch
from torch import nn

NORM = dict(type="BN", requires_grad=True)
CONVENTION = ("thop convention: FLOPs = multiply-accumulates of convolutions and linear layers (bias not counted) "
              "+ 2 per element of normalisation layers, nothing else; parameters of those layers only (the MFLM "
              "positional embedding, a bare nn.Parameter, is not counted); batch 1, 3-channel (reconstructor) or "
              "3/6-channel (discriminator) input of size x size, built on the meta device")
# thesis Table 4.2 at 256x256: (params M, GFLOPs)
THESIS_TABLE_4_2 = {"recon128_base": (69.05, 160.38), "recon128_mdc": (135.58, 283.59),
                    "recon128_mflm": (57.26, 137.85)}

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm)


def _macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    if isinstance(module, _CONV):
        return output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, _CONV_T):
        return inputs[0].numel() * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, _NORM):
        return 2 * inputs[0].numel()
    return 0


def count_thop_style(model: nn.Module, inputs: torch.Tensor) -> dict[str, float]:
    """``{'params', 'params_all', 'macs'}`` of ``model(inputs)`` under the convention in the module docstring."""
    counted = [m for m in model.modules() if isinstance(m, _CONV + _CONV_T + (nn.Linear,) + _NORM)]
    total = {"macs": 0}
    handles = [m.register_forward_hook(lambda mod, inp, out: total.__setitem__("macs", total["macs"] + _macs(
        mod, inp, out))) for m in counted]
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for m in counted for p in m.parameters(recurse=False))
    return {"params": float(params), "params_all": float(sum(p.numel() for p in model.parameters())),
            "macs": float(total["macs"])}


def measure(cfg: dict | nn.Module, size: int, channels: int = 3, device: str = "meta") -> dict[str, float]:
    """Build ``cfg`` (an mmseg model config, or a module factory result) on ``device`` and count it at ``size``."""
    from mmseg.registry import MODELS

    with torch.device(device):
        model = MODELS.build(cfg) if isinstance(cfg, dict) else cfg
        inputs = torch.zeros(1, channels, size, size)
    out = count_thop_style(model, inputs)
    return {"params_m": out["params"] / 1e6, "gflops": out["macs"] / 1e9, "params_all_m": out["params_all"] / 1e6}


def reconstructor_variants(base: int) -> list[tuple[str, dict]]:
    """``(row name, ARCDReconstructor config)``: the Table 4.2 variants at width ``base`` (+ the compact layout)."""

    def recon(mode: str, layout: str = "draem") -> dict:
        return dict(type="ARCDReconstructor", base_channels=base, num_stages=5, mflm=mode, layout=layout)

    return [(f"recon{base}_base", recon("none")), (f"recon{base}_mdc", recon("mdc")),
            (f"recon{base}_mflm", recon("mflm")), (f"recon{base}_compact_base", recon("none", "compact"))]


class Discriminator(nn.Module):
    """Backbone (+ neck) + decode head, the part of a segmentor that the FLOP counter traces."""

    def __init__(self, backbone: dict, head: dict, neck: dict | None = None) -> None:
        super().__init__()
        from mmseg.registry import MODELS

        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck else None
        self.head = MODELS.build(head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(feats)


def unet(in_ch: int, base: int, calm: bool) -> tuple[dict, dict, dict | None]:
    backbone = dict(type="UNet", in_channels=in_ch, base_channels=base, num_stages=5, norm_cfg=NORM)
    head = dict(type="FCNHead", in_channels=base, in_index=4, channels=base, num_convs=1, concat_input=False,
                num_classes=3, norm_cfg=NORM)
    neck = dict(type="AttentionNeck", in_channels=[base * 16, base * 8, base * 4, base * 2, base], levels=[4],
                attention=dict(type="CALM")) if calm else None
    return backbone, head, neck


def _resnet(in_ch: int, depth: int) -> tuple[dict, list[int]]:
    expansion = 1 if depth < 50 else 4
    chans = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
    return dict(type="ResNetV1c", in_channels=in_ch, depth=depth, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                strides=(1, 2, 1, 1), norm_cfg=NORM, contract_dilation=True), chans


def deeplab(in_ch: int, depth: int, calm: bool) -> tuple[dict, dict, dict | None]:
    backbone, chans = _resnet(in_ch, depth)
    head = dict(type="DepthwiseSeparableASPPHead", in_channels=chans[3], in_index=3, channels=128,
                dilations=(1, 12, 24, 36), c1_in_channels=chans[0], c1_channels=48, num_classes=3, norm_cfg=NORM)
    neck = dict(type="AttentionNeck", in_channels=chans, levels=[0, 3], attention=dict(type="CALM")) if calm else None
    return backbone, head, neck


def pspnet(in_ch: int, depth: int, calm: bool) -> tuple[dict, dict, dict | None]:
    backbone, chans = _resnet(in_ch, depth)
    head = dict(type="PSPHead", in_channels=chans[3], in_index=3, channels=128, pool_scales=(1, 2, 3, 6),
                num_classes=3, norm_cfg=NORM)
    neck = dict(type="AttentionNeck", in_channels=chans, levels=[3], attention=dict(type="CALM")) if calm else None
    return backbone, head, neck


def rows(size: int, recon_bases: list[int], discriminators: bool = True) -> list[dict]:
    """All rows of the table (see the module docstring)."""
    out = []
    for base in recon_bases:
        for name, cfg in reconstructor_variants(base):
            row = {"name": name, **measure(cfg, size, 3)}
            if name in THESIS_TABLE_4_2:
                row["thesis_params_m"], row["thesis_gflops"] = THESIS_TABLE_4_2[name]
            out.append(row)
    if not discriminators:
        return out
    discs = [("unet64", lambda ch, c: unet(ch, 64, c)), ("unet16", lambda ch, c: unet(ch, 16, c)),
             ("deeplabv3plus_r18", lambda ch, c: deeplab(ch, 18, c)),
             ("deeplabv3plus_r50", lambda ch, c: deeplab(ch, 50, c)),
             ("pspnet_r18", lambda ch, c: pspnet(ch, 18, c))]
    for name, make in discs:
        for channels, calm in ((3, False), (6, False), (6, True)):
            backbone, head, neck = make(channels, calm)
            with torch.device("meta"):
                model = Discriminator(backbone, head, neck)
            tag = f"{name}_{channels}ch" + ("_calm" if calm else "")
            out.append({"name": tag, **measure(model, size, channels)})
    return out


def markdown(table: list[dict], size: int) -> str:
    lines = [f"Input {size}x{size}, batch 1. {CONVENTION}.", "",
             "| name | params (M) | GFLOPs | all params (M) | thesis params (M) | thesis GFLOPs |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in table:
        thesis = (f"{r['thesis_params_m']:.2f} | {r['thesis_gflops']:.2f}" if "thesis_params_m" in r else " | ")
        lines.append(f"| {r['name']} | {r['params_m']:.3f} | {r['gflops']:.3f} | {r['params_all_m']:.3f} | {thesis} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--recon-bases", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--no-discriminators", action="store_true", help="reconstructor rows only")
    parser.add_argument("--json", type=Path, default=None, help="write {size, convention, rows} here")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope

    import defect_plugins.seg  # noqa: F401  (registers the components)

    init_default_scope("mmseg")
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    table = rows(args.size, args.recon_bases, not args.no_discriminators)
    text = markdown(table, args.size)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"size": args.size, "convention": CONVENTION, "rows": table}, indent=1) + "\n")
    return text


if __name__ == "__main__":
    main()
