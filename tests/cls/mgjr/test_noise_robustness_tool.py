"""tools/noise_robustness.py end to end on a tiny random classifier: every kind, training and held out."""
from __future__ import annotations

import json

import torch
from mmpretrain.registry import MODELS

from tests.cls.mgjr.conftest import TINY_STUDENT


def test_tool_evaluates_training_and_held_out_kinds_on_the_same_images(tiny_neu, tmp_path):
    from tools.noise_robustness import KINDS, main

    data, split = tiny_neu
    config = tmp_path / "tiny.py"
    config.write_text(f"""
default_scope = 'mmpretrain'
custom_imports = dict(imports=['defect_plugins.cls'], allow_failed_imports=False)
model = {dict(type='ImageClassifier', **TINY_STUDENT)!r}
test_dataloader = dict(batch_size=6, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='NEUCLSDataset', data_root='', data_prefix='{data}', ann_file='{split}/test.txt',
                 pipeline=[dict(type='CheckedLoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
                           dict(type='PackInputs')]))
""")
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier', **TINY_STUDENT))
    model.init_weights()
    checkpoint = tmp_path / "tiny.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, checkpoint)
    out = tmp_path / "robust"
    levels = ["--gaussian", "0", "0.2", "--salt-pepper", "0.1", "--blur", "1.5", "--speckle", "0.5", "--jpeg", "10",
              "--motion-blur", "7", "--contrast", "0.9"]
    assert main(["--model", "A", str(config), str(checkpoint), "--model", "B", str(config), str(checkpoint),
                 *levels, "--out", str(out)]) == 0
    results = json.loads((out / "noise_robustness.json").read_text())
    assert list(results["levels"]) == list(KINDS) and results["held_out"] == ["speckle", "jpeg", "motion_blur",
                                                                               "contrast"]
    a, b = results["models"]["A"], results["models"]["B"]
    for kind in KINDS:
        assert a[kind] == b[kind] and all(0.0 <= v <= 100.0 for v in a[kind])  # same corrupted images for both
    assert a["gaussian"][0] == a["clean"] and len(a["gaussian"]) == 2
    table = (out / "noise_robustness.md").read_text()
    assert "| top-1 (%) / JPEG quality (held out) | clean | 10 |" in table and "| A |" in table
    assert (out / "noise_robustness.png").read_bytes()[:4] == b"\x89PNG"
