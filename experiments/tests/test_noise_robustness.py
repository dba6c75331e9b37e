"""experiments/mgjr/noise_robustness.py: every kind (training and held out) on a tiny random classifier, the kinds
wired to registered transforms, and an MGJR config evaluated as its student."""
from __future__ import annotations

import json

import pytest
import torch
from mmpretrain.registry import MODELS, TRANSFORMS

from defect_plugins.cls.mgjr.corruptions import HELD_OUT_KINDS
from defect_plugins.cls.mgjr.noise import NOISE_KINDS
from experiments.mgjr.noise_robustness import HELD_OUT, KINDS, TRAINING_KINDS, main, noisy_pipeline
from tests.fixtures.mgjr import TINY_STUDENT, TINY_TEACHER


def test_tool_evaluates_training_and_held_out_kinds_on_the_same_images(tiny_neu, tmp_path):
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


def test_robustness_tool_lists_each_kind_once_and_inserts_held_out_corruptions_after_resize():
    assert set(TRAINING_KINDS) == set(NOISE_KINDS) and set(HELD_OUT) == set(HELD_OUT_KINDS)
    assert all(TRANSFORMS.get(KINDS[k][0]) is not None for k in KINDS)  # every kind has a registered transform
    pipeline = [dict(type='CheckedLoadImageFromFile'), dict(type='Resize', scale=(64, 64)), dict(type='PackInputs')]
    inserted = noisy_pipeline(pipeline, "jpeg", 20, seed=4)
    assert inserted[2] == {"type": "JPEGCompression", "quality": 20, "seed": 4} and len(inserted) == 4
    assert noisy_pipeline(pipeline, "motion_blur", 5.0, seed=0)[2]["length"] == 5
    assert noisy_pipeline(pipeline, "contrast", 0.0, seed=0) == pipeline
    with pytest.raises(ValueError, match="unknown kind 'fog'"):
        noisy_pipeline(pipeline, "fog", 1.0, seed=0)


@pytest.fixture()
def mgjr_checkpoint(repo_root, tiny_neu, teacher_checkpoint, tmp_path):
    """The packaged MGJR config at the tiny widths with a random MGJR checkpoint (student, projector; no training)."""
    data, split = tiny_neu
    teacher_cfg = tmp_path / "teacher_tiny.py"
    teacher_cfg.write_text(f"_base_ = ['{repo_root}/configs/mgjr/vit_teacher_neu_cls_64.py']\n"
                           f"model = {TINY_TEACHER!r}\n")
    config = tmp_path / "mgjr_tiny.py"
    config.write_text(
        f"_base_ = ['{repo_root}/configs/mgjr/mgjr_neu_cls_64.py']\n"
        f"model = dict(backbone={TINY_STUDENT['backbone']!r}, head=dict(in_channels=128),\n"
        f"             teacher_config='{teacher_cfg}', teacher_checkpoint='{teacher_checkpoint}')\n"
        f"test_dataloader = dict(batch_size=6, dataset=dict(data_prefix='{data}', ann_file='{split}/test.txt'))\n")
    torch.manual_seed(0)
    model = MODELS.build(dict(type='MGJRClassifier', teacher_config=TINY_TEACHER,
                              teacher_checkpoint=str(teacher_checkpoint), **TINY_STUDENT))
    model.init_weights()
    checkpoint = tmp_path / "mgjr.pth"
    torch.save({"state_dict": {k: v for k, v in model.state_dict().items() if not k.startswith("teacher.")},
                "meta": {}}, checkpoint)
    return config, checkpoint


def test_mgjr_config_is_evaluated_as_its_student_table_plot_and_json(mgjr_checkpoint, tmp_path):
    config, checkpoint = mgjr_checkpoint
    pipeline = [dict(type='CheckedLoadImageFromFile'), dict(type='Resize', scale=(64, 64)), dict(type='PackInputs')]
    inserted = noisy_pipeline(pipeline, "salt_pepper", 0.05, seed=3)
    assert [t["type"] for t in inserted] == ['CheckedLoadImageFromFile', 'Resize', 'AddSaltPepperNoise', 'PackInputs']
    assert noisy_pipeline(pipeline, "gaussian", 0.0, seed=0) == pipeline
    out = tmp_path / "robust"
    assert main(["--model", "A", str(config), str(checkpoint), "--model", "B", str(config), str(checkpoint),
                 "--gaussian", "0", "0.3", "--salt-pepper", "0", "0.3", "--jpeg", "20",
                 "--kinds", "gaussian", "salt_pepper", "jpeg", "--out", str(out)]) == 0
    results = json.loads((out / "noise_robustness.json").read_text())
    a, b = results["models"]["A"], results["models"]["B"]
    assert a["gaussian"] == b["gaussian"] and a["salt_pepper"] == b["salt_pepper"]  # same noisy images for all
    assert a["jpeg"] == b["jpeg"] and results["held_out"] == ["jpeg"] and len(a["jpeg"]) == 1
    assert all(0.0 <= v <= 100.0 for v in a["gaussian"] + a["salt_pepper"]) and len(a["gaussian"]) == 2
    assert a["gaussian"][0] == a["clean"]  # strength 0 reuses the clean accuracy
    assert (out / "noise_robustness.png").read_bytes()[:4] == b"\x89PNG"
    assert "| A |" in (out / "noise_robustness.md").read_text()
    assert main(["--model", "C", str(config), str(tmp_path / "none.pth"), "--out", str(out)]) == 2
