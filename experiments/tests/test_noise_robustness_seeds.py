"""experiments/mgjr/noise_robustness_seeds.py: per-seed noise curves -> mean +- sd and paired differences (no
model needed)."""
import json

import pytest

LEVELS = {"gaussian": [0.0, 0.1, 0.2], "jpeg": [40, 20]}


def _write(path, models, levels=LEVELS):
    path.write_text(json.dumps({"levels": levels, "held_out": ["jpeg"], "seed": 0, "models": models}))
    return path


def _entry(clean, gaussian, jpeg):
    return {"clean": clean, "gaussian": [clean, *gaussian], "jpeg": jpeg}


@pytest.fixture
def three_seeds(tmp_path):
    files = []
    for seed, shift in enumerate((0.0, 1.0, 2.0)):
        files.append(_write(tmp_path / f"s{seed}.json", {
            "a": _entry(90.0 + shift, [80.0, 70.0], [85.0, 75.0]),
            "b": _entry(91.0 + shift, [60.0 + shift, 50.0], [80.0, 70.0 - shift]),
        }))
    return [f"{seed}={path}" for seed, path in enumerate(files)]


def test_groups_exclude_the_clean_level_and_differences_are_paired(three_seeds, tmp_path):
    from experiments.mgjr.noise_robustness_seeds import main

    out = tmp_path / "out"
    assert main([*three_seeds, "--compare", "a:b", "--out", str(out)]) == 0
    report = json.loads((out / "noise_robustness_seeds.json").read_text())
    per_seed = report["per_seed"]["a"]["0"]
    assert per_seed["training_kinds"] == pytest.approx(75.0)  # (80 + 70) / 2: the clean 90 is not a corruption
    assert per_seed["held_out"] == pytest.approx(80.0)  # JPEG re-encodes at every quality: both levels count
    diff = report["paired_differences"]["a - b"]
    assert diff["clean"]["mean"] == pytest.approx(-1.0) and diff["clean"]["sd"] == pytest.approx(0.0)
    # b's Gaussian mean is 55, 55.5, 56 per seed against a's 75: +20, +19.5, +19
    assert [diff["training_kinds"]["differences"][s] for s in ("0", "1", "2")] == pytest.approx([20.0, 19.5, 19.0])
    assert diff["training_kinds"]["sd"] == pytest.approx(0.5)
    assert diff["held_out"]["mean"] == pytest.approx(5.5)  # 80 against 75, 74.5, 74
    assert report["curves"]["b"]["gaussian"][1]["mean"] == pytest.approx(61.0)
    table = (out / "noise_robustness_seeds.md").read_text()
    assert "| a - b |" in table and "(held out)" in table


def test_a_seed_with_other_levels_is_refused_by_name(three_seeds, tmp_path, capsys):
    from experiments.mgjr.noise_robustness_seeds import main

    odd = _write(tmp_path / "odd.json", {"a": _entry(90.0, [80.0], [85.0, 75.0])},
                 levels={"gaussian": [0.0, 0.1], "jpeg": [40, 20]})
    assert main([three_seeds[0], f"1={odd}", "--out", str(tmp_path / "out")]) == 2
    assert "odd.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_model_in_compare_and_missing_file_are_named(three_seeds, tmp_path, capsys):
    from experiments.mgjr.noise_robustness_seeds import main

    assert main([*three_seeds, "--compare", "a:zz", "--out", str(tmp_path / "o")]) == 2
    assert "'zz'" in capsys.readouterr().err
    assert main([f"0={tmp_path / 'none.json'}", "--out", str(tmp_path / "o")]) == 2
    assert "none.json" in capsys.readouterr().err
