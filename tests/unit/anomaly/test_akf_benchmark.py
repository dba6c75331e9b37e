"""AKF-RD in an ``anomalib benchmark`` grid next to anomalib's ReverseDistillation: the pieces.

AKF-RD's metrics are a superset of anomalib's default evaluator; the compat fix
``anomalib_plugin_models`` lets ``get_model`` import this package's model modules (and no
others) and makes ``BenchmarkJob.collect`` take jobs with different keys. One real benchmark
run on tiny synthetic data: tests/integration/anomaly/test_akf_benchmark.py.
"""

from __future__ import annotations

import sys

import pytest
from anomalib.models import AnomalibModule, UnknownModelError, get_model
from anomalib.pipelines.benchmark.job import BenchmarkJob

from defect_plugins.anomaly import AkfReverseDistillation
from defect_plugins.compat import anomalib_plugin_models, apply_all

UPSTREAM_ALLOWED = {"anomalib.models", "anomalib.models.image", "anomalib.models.video", "anomalib.models.components"}
DEFAULT_METRICS = {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score"}
AKF = "defect_plugins.anomaly.AkfReverseDistillation"
TINY = {"backbone": "resnet18", "pre_trained": False}


def _names(evaluator) -> list[str]:
    return [metric.name for metric in evaluator.test_metrics]


def test_akf_metrics_are_anomalibs_default_set_plus_aupro() -> None:
    default = AnomalibModule.configure_evaluator()
    assert set(_names(default)) == DEFAULT_METRICS  # what anomalib's models report (its RD included)
    akf = AkfReverseDistillation.configure_evaluator()
    assert _names(akf) == [*_names(default), "pixel_AUPRO"]
    # the shared metrics are the same metrics: class, fields and strictness
    by_name = {metric.name: metric for metric in akf.test_metrics}
    for metric in default.test_metrics:
        twin = by_name[metric.name]
        assert type(twin) is type(metric)
        assert (twin.fields, twin.strict) == (metric.fields, metric.strict)


def test_get_model_takes_the_plugins_class_path() -> None:
    model = get_model({"class_path": AKF, "init_args": {**TINY, "image_size": [64, 64]}})
    assert isinstance(model, AkfReverseDistillation)
    for module in ("defect_plugins.anomaly.akf_rd", "defect_plugins.anomaly.akf_rd.lightning_model"):
        assert isinstance(get_model({"class_path": f"{module}.AkfReverseDistillation", "init_args": TINY}),
                          AkfReverseDistillation)


def test_allow_list_gains_exactly_the_plugin_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    import anomalib.models

    assert anomalib.models.ALLOWED_MODULES - UPSTREAM_ALLOWED == set(anomalib_plugin_models.PLUGIN_MODULES)
    # get_model re-raises its refusal as a bare UnknownModelError whose cause names the reason
    with pytest.raises(UnknownModelError) as refused:  # any other module is still refused
        get_model({"class_path": "os.path.join"})
    assert "'os.path' is not allowed" in str(refused.value.__cause__)
    # what the fix repairs: upstream's set refuses the plugin
    monkeypatch.setattr(anomalib.models, "ALLOWED_MODULES", set(UPSTREAM_ALLOWED))
    with pytest.raises(UnknownModelError) as refused:
        get_model({"class_path": AKF, "init_args": TINY})
    assert "'defect_plugins.anomaly' is not allowed" in str(refused.value.__cause__)


def test_apply_is_idempotent() -> None:
    import anomalib.models

    before = set(anomalib.models.ALLOWED_MODULES)
    collect = BenchmarkJob.__dict__["collect"]
    assert anomalib_plugin_models.apply() is True
    assert anomalib_plugin_models.apply() is True
    assert anomalib.models.ALLOWED_MODULES == before
    assert BenchmarkJob.__dict__["collect"] is collect
    assert not any(getattr(f, "__defect_plugins_hook__", False) for f in sys.meta_path)  # both imported: no hook
    assert apply_all()["anomalib_plugin_models"] is True


def test_collect_takes_every_jobs_columns() -> None:
    rd = {"model.class_path": "ReverseDistillation", **dict.fromkeys(sorted(DEFAULT_METRICS), 0.5)}
    akf = {"model.class_path": AKF, **dict.fromkeys(sorted(DEFAULT_METRICS), 0.6), "pixel_AUPRO": 0.7}
    for results in ([rd, akf], [akf, rd]):  # upstream: KeyError one way, unequal columns the other
        table = BenchmarkJob.collect(results)
        assert len(table) == 2
        assert set(table.columns) == set(akf)
        assert table[sorted(DEFAULT_METRICS)].notna().all().all()
        assert table.set_index("model.class_path")["pixel_AUPRO"].isna().to_dict() == {
            "ReverseDistillation": True, AKF: False,
        }
    # jobs with the same keys: upstream's table, unchanged
    same = BenchmarkJob.collect([rd, {**rd, "image_AUROC": 0.9}])
    assert list(same.columns) == list(rd) and same["image_AUROC"].tolist() == [0.5, 0.9]
