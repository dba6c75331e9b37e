"""A summary page (HTML + Markdown) of inference runs and benchmarks, with their pictures.

Each section is one :func:`.infer.run_inference` output folder (its ``results.json``), optionally
with extra figures (training metrics); a benchmark's text table
(:func:`defect_plugins.deploy.bench.cli.format_table`) can close the page. The page links the overlay pictures by
relative path, so the output folder can be zipped and opened anywhere. Both files are written
atomically (:mod:`defect_plugins.fileio`).
"""
from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from defect_plugins.fileio import atomic_write_text


@dataclass
class Section:
    """One model's results on the page."""

    title: str
    results_dir: Path
    figures: dict[str, Any] = field(default_factory=dict)
    max_pictures: int = 12


def _load(results_dir: Path) -> dict[str, Any]:
    path = Path(results_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (run defect-infer into {results_dir} first)")
    return json.loads(path.read_text())


def _pick(results: list[dict[str, Any]], count: int, grades: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Pictures to show: defects first (most severe grade, then score/confidence), then the rest.

    ``grades``: the run's rule-file grades, least severe first (``summary["grades"]``); a grade it
    does not list sorts as the least severe.
    """
    order = {grade: index for index, grade in enumerate(grades)}
    ok = [r for r in results if r.get("status") == "ok" and r.get("overlay")]
    ok.sort(key=lambda r: (bool(r.get("is_defect", r.get("decision") != "good")), order.get(r.get("grade", ""), 0),
                           r.get("score") or r.get("confidence") or 0.0), reverse=True)
    return ok[:count]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


HEADLINE_COLUMNS = ("family", "model", "figure", "seconds", "overlays")


def _headline(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The opening table (HTML and Markdown lines): one row per model, its overlays linked."""
    html_rows = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in HEADLINE_COLUMNS) + "</tr>"]
    md = ["| " + " | ".join(HEADLINE_COLUMNS) + " |", "|" + "---|" * len(HEADLINE_COLUMNS)]
    for row in rows:
        cells = [html.escape(_value(row.get(c, ""))) for c in HEADLINE_COLUMNS[:-1]]
        link = html.escape(str(row.get("overlays", "")))
        html_rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
                         + f"<td><a href='{link}/results.json'>{link}/</a></td></tr>")
        md.append("| " + " | ".join([*(_value(row.get(c, "")) for c in HEADLINE_COLUMNS[:-1]),
                                     f"[{row.get('overlays', '')}/]({row.get('overlays', '')}/results.json)"]) + " |")
    html_rows.append("</table>")
    return html_rows, md + [""]


def write_report(out_dir: str | Path, sections: Sequence[Section], *, title: str = "defect-plugins results",
                 benchmark_table: str | None = None,
                 headline: Sequence[dict[str, Any]] | None = None) -> Path:
    """Write ``index.html`` and ``summary.md`` into ``out_dir``; return the HTML path.

    ``headline``: rows (keys :data:`HEADLINE_COLUMNS`) of a table that opens the page;
    ``benchmark_table``: a benchmark's text table, shown as is at the end.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:90%}figure{display:inline-block;margin:4px}"
             "img{width:192px;image-rendering:pixelated}figcaption{font-size:75%;max-width:192px}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    md = [f"# {title}", ""]
    if headline:
        table_html, table_md = _headline(headline)
        parts += table_html
        md += table_md
    for section in sections:
        data = _load(section.results_dir)
        summary = data["summary"]
        rel = os.path.relpath(section.results_dir, out_dir)
        keys = ["family", "weights", "inference_precision_hint", "inputs", "processed", "failed", "decisions",
                "images_per_s"]
        rows = {key: summary.get(key) for key in keys} | section.figures
        parts.append(f"<h2>{html.escape(section.title)}</h2><table>")
        parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(_value(v))}</td></tr>" for k, v in rows.items()]
        parts.append("</table><p>")
        md += [f"## {section.title}", "", "| key | value |", "|---|---|"]
        md += [f"| {k} | {_value(v)} |" for k, v in rows.items()]
        md += ["", f"Results: `{rel}/results.csv`, regions: `{rel}/regions.csv`", ""]
        grades = summary.get("grades") or []
        for result in _pick(data["results"], section.max_pictures, grades):
            caption = result["decision"]
            if "score" in result:
                caption += f" score {result['score']:.3f}"
            if "confidence" in result:
                caption += f" {result['confidence']:.2f}"
            if result.get("grade"):
                caption += f", grade {result['grade']}, {result.get('num_regions', 0)} regions"
            caption += f" - {Path(result['source']).name}"
            src = f"{rel}/{result['overlay']}"
            parts.append(f"<figure><img src='{html.escape(src)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            md.append(f"![{caption}]({src})")
        parts.append("</p>")
        md.append("")
    if benchmark_table is not None:
        table = benchmark_table
        parts.append(f"<h2>Benchmark</h2><pre>{html.escape(table)}</pre>")
        md += ["## Benchmark", "", "```", table, "```", ""]
    parts.append("</body></html>")
    page = out_dir / "index.html"
    atomic_write_text(out_dir / "summary.md", "\n".join(md) + "\n")
    atomic_write_text(page, "\n".join(parts))
    return page
