"""The summary page shows each section's numbers and links its overlay pictures, defects first."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from defect_plugins.deploy.report import Section, write_report


def _results(folder, decisions):
    (folder / "overlays").mkdir(parents=True)
    results = []
    for index, (decision, grade) in enumerate(decisions):
        name = f"overlays/{index:06d}.png"
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), index * 40, np.uint8))
        results.append({"source": f"img{index}.png", "status": "ok", "decision": decision, "score": 0.1 * index,
                        "is_defect": decision == "defect", "grade": grade, "num_regions": int(grade != "ok"),
                        "overlay": name, "regions": []})
    results.append({"source": "broken.png", "status": "error", "error": "not a readable image"})
    summary = {"family": "anomaly", "weights": "FP32", "inference_precision_hint": "f32", "inputs": 4,
               "processed": 3, "failed": 1, "decisions": {"good": 2, "defect": 1}, "images_per_s": 12.5,
               "grades": ["ok", "minor", "major", "reject"]}
    (folder / "results.json").write_text(json.dumps({"summary": summary, "results": results}))


def test_report_links_pictures_and_numbers(tmp_path):
    _results(tmp_path / "anomaly" / "results", [("good", "ok"), ("defect", "major"), ("good", "ok")])
    page = write_report(tmp_path, [Section("AKF", tmp_path / "anomaly" / "results", {"image AUROC": 0.91},
                                           max_pictures=2)])
    text = page.read_text()
    assert "AKF" in text and "image AUROC" in text and "0.91" in text and "f32" in text
    shown = [line for line in text.splitlines() if "<img" in line]
    assert len(shown) == 2 and "000001.png" in shown[0]  # the defect comes first
    assert "grade major, 1 regions" in text
    markdown = (tmp_path / "summary.md").read_text()
    assert "](anomaly/results/overlays/000001.png)" in markdown


def test_report_shows_the_most_severe_grade_of_the_rule_file_first(tmp_path):
    # a higher score does not outrank a more severe grade; the order is the rule file's, not the alphabet's
    _results(tmp_path / "r", [("defect", "reject"), ("defect", "minor"), ("defect", "major"), ("good", "ok")])
    text = write_report(tmp_path, [Section("AKF", tmp_path / "r", max_pictures=4)]).read_text()
    shown = [line for line in text.splitlines() if "<img" in line]
    assert [name for line in shown for name in ("000000", "000001", "000002", "000003") if name in line] == [
        "000000", "000002", "000001", "000003"]


def test_report_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.json"):
        write_report(tmp_path, [Section("missing", tmp_path / "nothing")])


def test_report_opens_with_the_headline_table(tmp_path):
    _results(tmp_path / "anomaly" / "results", [("good", "ok"), ("defect", "major")])
    row = {"family": "anomalib", "model": "AKF reverse distillation", "figure": "image_auroc 0.950",
           "seconds": 61.2, "overlays": "anomaly/results"}
    page = write_report(tmp_path, [Section("AKF", tmp_path / "anomaly" / "results")], headline=[row])
    text = page.read_text()
    table = text[text.index("<table>"):text.index("</table>")]
    assert text.index("<table>") < text.index("<h2>AKF</h2>"), "the headline table comes first"
    for cell in ("<th>family</th>", "<th>overlays</th>", "anomalib", "image_auroc 0.950", "61.2",
                 "href='anomaly/results/results.json'"):
        assert cell in table
    assert "| anomalib | AKF reverse distillation | image_auroc 0.950 | 61.2 |" in (tmp_path / "summary.md").read_text()
