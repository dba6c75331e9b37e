"""``anomaly_map_mode`` takes anomalib's enum member names (``ADD``, as in its RD config), the values and the enum."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anomalib.models.image.reverse_distillation.anomaly_map import AnomalyMapGenerationMode

from defect_plugins.anomaly import AkfReverseDistillation
from defect_plugins.anomaly.akf_rd.anomaly_map import normalize_anomaly_map_mode

SIZE = 64
ADD, MULTIPLY = AnomalyMapGenerationMode.ADD, AnomalyMapGenerationMode.MULTIPLY


def _model(**kwargs: object) -> AkfReverseDistillation:
    torch.manual_seed(0)
    defaults = {"backbone": "resnet18", "image_size": (SIZE, SIZE), "pre_trained": False, "visualizer": False}
    defaults.update(kwargs)
    return AkfReverseDistillation(**defaults)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("ADD", ADD), ("add", ADD), ("Add", ADD), ("MULTIPLY", MULTIPLY), ("multiply", MULTIPLY), (ADD, ADD),
     (MULTIPLY, MULTIPLY)],
)
def test_names_values_and_members_build_the_model(given: object, expected: AnomalyMapGenerationMode) -> None:
    model = _model(anomaly_map_mode=given)
    assert model.model.anomaly_map_generator.mode is expected
    # stored as the plain value: checkpoints stay loadable with torch.load(weights_only=True), as before
    assert model.hparams["anomaly_map_mode"] == expected.value
    assert type(model.hparams["anomaly_map_mode"]) is str


def test_default_is_add() -> None:
    assert _model().model.anomaly_map_generator.mode is ADD


def test_multiply_changes_the_map() -> None:
    images = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    maps = {}
    for mode in ("ADD", "MULTIPLY"):
        model = _model(anomaly_map_mode=mode)
        model.model.eval()
        with torch.no_grad():
            maps[mode] = model.model(images).anomaly_map
    assert not torch.allclose(maps["ADD"], maps["MULTIPLY"])


@pytest.mark.parametrize("bad", ["sideways", "", "ADDD", 3, None])
def test_bad_value_names_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match=r"anomaly_map_mode must be one of ADD, MULTIPLY \(or their values 'add', "
                                         r"'multiply'; any case\), got"):
        _model(anomaly_map_mode=bad)
    with pytest.raises(ValueError, match="ADD, MULTIPLY"):
        normalize_anomaly_map_mode(bad)  # type: ignore[arg-type]


def _cli(mode: str, root: Path):
    from anomalib.cli.cli import AnomalibCLI

    return AnomalibCLI(
        [
            "fit", "--model", "defect_plugins.anomaly.AkfReverseDistillation", "--model.backbone", "resnet18",
            "--model.pre_trained", "false", "--model.image_size", f"[{SIZE}, {SIZE}]", "--model.visualizer", "false",
            "--model.anomaly_map_mode", mode,
            "--data", "anomalib.data.MVTecAD", "--data.root", str(root / "data"), "--data.num_workers", "0",
            "--trainer.logger", "false", "--default_root_dir", str(root / "results"),
        ],
        run=False,  # parse and instantiate only
    )


@pytest.mark.parametrize(("mode", "expected"), [("ADD", ADD), ("add", ADD), ("MULTIPLY", MULTIPLY)])
def test_anomalib_cli_parser_takes_the_member_name_and_the_value(mode: str, expected: object, tmp_path: Path) -> None:
    cli = _cli(mode, tmp_path)
    assert cli.model.model.anomaly_map_generator.mode is expected
    assert cli.model.hparams["anomaly_map_mode"] == expected.value


def test_anomalib_cli_parser_reports_the_choices_for_a_bad_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"anomaly_map_mode must be one of ADD, MULTIPLY.*got 'sideways'"):
        _cli("sideways", tmp_path)
