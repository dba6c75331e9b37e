"""Parameters and FLOPs of ARCD reconstructor and discriminator variants (thesis Tables 4.2, 4.4).

Measured on this project's implementations with mmengine's ``get_model_complexity_info``
(fvcore-style tracing; one multiply-add counts as one FLOP, as in fvcore and mmengine; operators
without a counter, e.g. ``scaled_dot_product_attention``, are not counted: they are a small part
of the channel transformer, whose C tokens are few).

    python tools/arcd_complexity.py [--size 256] [--out work_dirs/seg/complexity.md]
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import defect_plugins.seg  # noqa: F401  (registers the components)

NORM = dict(type="BN", requires_grad=True)


def reconstructor_variants(base: int) -> list[tuple[str, dict]]:
    def recon(mode: str, **mflm_cfg) -> dict:
        return dict(type="ARCDReconstructor", base_channels=base, num_stages=5, mflm=mode, mflm_cfg=mflm_cfg)

    return [
        (f"reconstructor base {base}, plain (two 3x3 convs in the bottleneck)", recon("none")),
        (f"reconstructor base {base}, masked dilated conv k=3 d=1", recon("mdc", kernel_size=3, dilation=1)),
        (f"reconstructor base {base}, MFLM k=3 d=1, 5 heads x 64, 1 layer",
         recon("mflm", kernel_size=3, dilation=1, num_heads=5, head_dim=64, token_dim=64, num_layers=1)),
        (f"reconstructor base {base}, MFLM k=1 d=1 (SSPCAB default kernel)",
         recon("mflm", kernel_size=1, dilation=1, num_heads=5, head_dim=64, token_dim=64, num_layers=1)),
    ]


class Discriminator(torch.nn.Module):
    """Backbone (+ neck) + decode head, the part of a segmentor that the FLOP counter traces."""

    def __init__(self, backbone: dict, head: dict, neck: dict | None = None) -> None:
        super().__init__()
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck else None
        self.head = MODELS.build(head)

    def forward(self, x):
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


def deeplab(in_ch: int, depth: int, calm: bool) -> tuple[dict, dict, dict | None]:
    expansion = 1 if depth < 50 else 4
    chans = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
    backbone = dict(type="ResNetV1c", in_channels=in_ch, depth=depth, out_indices=(0, 1, 2, 3),
                    dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=NORM, contract_dilation=True)
    head = dict(type="DepthwiseSeparableASPPHead", in_channels=chans[3], in_index=3, channels=128,
                dilations=(1, 12, 24, 36), c1_in_channels=chans[0], c1_channels=48, num_classes=3, norm_cfg=NORM)
    neck = dict(type="AttentionNeck", in_channels=chans, levels=[0, 3], attention=dict(type="CALM")) if calm else None
    return backbone, head, neck


def measure(model: torch.nn.Module, size: int, channels: int) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        info = get_model_complexity_info(model, inputs=(torch.randn(1, channels, size, size),),
                                         show_table=False, show_arch=False)
    return info["params"] / 1e6, info["flops"] / 1e9


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--recon-bases", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    init_default_scope("mmseg")
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    torch.set_num_threads(1)
    lines = [f"Input {args.size}x{args.size}, batch 1. FLOPs = multiply-adds (mmengine/fvcore convention).", "",
             "| model | params (M) | FLOPs (G) |", "|---|---:|---:|"]
    for base in args.recon_bases:
        for name, cfg in reconstructor_variants(base):
            p, f = measure(MODELS.build(cfg), args.size, 3)
            lines.append(f"| {name} | {p:.3f} | {f:.3f} |")
    discs = [("U-Net base 64", lambda ch, c: unet(ch, 64, c)), ("U-Net base 16 (our CPU strip config)",
                                                                 lambda ch, c: unet(ch, 16, c)),
             ("DeepLabV3+ ResNetV1c-18", lambda ch, c: deeplab(ch, 18, c)),
             ("DeepLabV3+ ResNetV1c-50", lambda ch, c: deeplab(ch, 50, c))]
    for name, make in discs:
        for channels, calm in ((3, False), (6, False), (6, True)):
            backbone, head, neck = make(channels, calm)
            p, f = measure(Discriminator(backbone, head, neck), args.size, channels)
            tag = f"{name}, {channels}-ch input" + (" + CALM" if calm else "")
            lines.append(f"| {tag} | {p:.3f} | {f:.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
