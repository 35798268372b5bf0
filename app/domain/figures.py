"""The results page's figures as Vega-Lite specifications: built here once, drawn in the browser by the
vendored vega-embed, and rendered to SVG or PNG for download by vl-convert from the very same spec.

- `roc`: each reader's empirical ROC curve of the 10-point ratings, the pooled curve and chance;
- `forest`: each reader's AUC and fooling rate with 95 % intervals, and the readers' mean from the
  multi-reader analysis (readers and cases random);
- `calibration`: accuracy at each confidence level; `position`: accuracy along the reading order.
"""

from __future__ import annotations

import math

from app.domain.analysis import StudyAnalysis

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
FIGURES = ("forest", "roc", "calibration", "position")
READER_COLOUR = "#3b6ea5"
MEAN_COLOUR = "#b5452f"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def _clip(x: float | None) -> float | None:
    """Bounds of figures in [0, 1] drawn within it (a t-interval from few readers can pass it)."""
    return None if x is None else min(1.0, max(0.0, x))


def _spec(title: str, description: str, body: dict) -> dict:
    return {
        "$schema": SCHEMA,
        "title": {"text": title, "anchor": "start", "fontSize": 14},
        "description": description,
        "config": {
            "font": FONT,
            "view": {"stroke": None},
            "axis": {"labelFontSize": 11, "titleFontSize": 12},
        },
        **body,
    }


def _interval_panel(rows: list[dict], title: str, chance: float | None) -> dict:
    y = {"field": "who", "type": "nominal", "sort": None, "title": None}
    x = {"type": "quantitative", "scale": {"domain": [0, 1]}, "title": title}
    colour = {
        "field": "kind",
        "type": "nominal",
        "scale": {"domain": ["reader", "mean (MRMC)"], "range": [READER_COLOUR, MEAN_COLOUR]},
        "legend": None,
    }
    tooltip = [
        {"field": "who", "title": "reader"},
        {"field": "value", "format": ".3f", "title": title},
        {"field": "low", "format": ".3f", "title": "95 % CI low"},
        {"field": "high", "format": ".3f", "title": "95 % CI high"},
    ]
    layers: list[dict] = [
        {
            "mark": {"type": "rule", "strokeWidth": 3},
            "encoding": {"y": y, "x": {**x, "field": "low"}, "x2": {"field": "high"}, "color": colour},
        },
        {
            "mark": {"type": "point", "filled": True, "size": 80},
            "encoding": {"y": y, "x": {**x, "field": "value"}, "color": colour, "tooltip": tooltip},
        },
    ]
    if chance is not None:
        layers.insert(
            0,
            {
                # Hidden from screen readers: Vega would give the bare line an image role with no name,
                # and the figure's description already says where chance lies.
                "mark": {"type": "rule", "strokeDash": [4, 3], "color": MEAN_COLOUR, "aria": False},
                "encoding": {"x": {"datum": chance, "type": "quantitative"}},
            },
        )
    return {"width": 260, "height": {"step": 24}, "data": {"values": rows}, "layer": layers}


def forest(an: StudyAnalysis) -> dict:
    """Readers' AUCs and fooling rates with intervals, and the MRMC means."""
    auc_rows, fool_rows = [], []
    for name, s in an.readers.items():
        auc_rows.append(
            {"who": name, "kind": "reader", "value": s.auc.value, "low": s.auc.low, "high": s.auc.high}
        )
        f = s.fooling_rate
        fool_rows.append({"who": name, "kind": "reader", "value": f.value, "low": f.low, "high": f.high})
    for rows, result in ((auc_rows, an.mrmc.auc), (fool_rows, an.mrmc.fooling)):
        level = _mean_level(result)
        if level is not None:
            rows.append(
                {
                    "who": "readers' mean",
                    "kind": "mean (MRMC)",
                    "value": level.estimate,
                    "low": _clip(level.low),
                    "high": _clip(level.high),
                }
            )
    return _spec(
        "Readers' AUC and fooling rate",
        "Each reader's AUC (DeLong 95 % interval) and fooling rate (Wilson 95 % interval), with the readers' "
        "mean from the multi-reader analysis (readers and cases random; with one reader, cases only). "
        "AUC 0.5: cannot tell them apart.",
        {
            "hconcat": [
                _interval_panel(auc_rows, "AUC", 0.5),
                _interval_panel(fool_rows, "fooling rate", None),
            ]
        },
    )


def _mean_level(result):
    """The readers' mean with an interval, or None (no analysis yet, or no variance to give one)."""
    headline = result.headline() if result is not None else None
    return headline[1] if headline is not None and headline[1].low is not None else None


def roc(an: StudyAnalysis) -> dict:
    """Empirical ROC curves of every reader and of all readings pooled."""
    rows = []
    for who, summary in [*an.readers.items(), ("pooled", an.pooled)]:
        for order, p in enumerate(summary.roc):
            threshold = None if math.isinf(p.threshold) else p.threshold
            rows.append({"who": who, "order": order, "fpr": p.fpr, "tpr": p.tpr, "threshold": threshold})
    colour = {"field": "who", "type": "nominal", "title": "reader"}
    return _spec(
        "ROC curves",
        "Empirical ROC curve of each reader's 10-point ratings (positive = synthetic) and of all readings "
        "pooled; the diagonal is chance.",
        {
            "width": 320,
            "height": 320,
            "layer": [
                {
                    "data": {"values": [{"x": 0, "y": 0}, {"x": 1, "y": 1}]},
                    "mark": {"type": "line", "strokeDash": [4, 3], "color": "#999"},
                    "encoding": {
                        "x": {"field": "x", "type": "quantitative"},
                        "y": {"field": "y", "type": "quantitative"},
                    },
                },
                {
                    "data": {"values": rows},
                    "mark": {"type": "line", "point": True, "interpolate": "linear"},
                    "encoding": {
                        "x": {
                            "field": "fpr",
                            "type": "quantitative",
                            "title": "1 − specificity (real called synthetic)",
                            "scale": {"domain": [0, 1]},
                        },
                        "y": {
                            "field": "tpr",
                            "type": "quantitative",
                            "title": "sensitivity (synthetic called synthetic)",
                            "scale": {"domain": [0, 1]},
                        },
                        "order": {"field": "order"},
                        "color": colour,
                        "strokeWidth": {
                            "condition": {"test": "datum.who === 'pooled'", "value": 3},
                            "value": 1.5,
                        },
                        "tooltip": [
                            {"field": "who"},
                            {"field": "threshold", "title": "rating ≥"},
                            {"field": "fpr", "format": ".2f"},
                            {"field": "tpr", "format": ".2f"},
                        ],
                    },
                },
            ],
        },
    )


def _bins_chart(title: str, description: str, bins, x_title: str) -> dict:
    rows = [
        {
            "bin": b.label,
            "value": b.accuracy.value,
            "low": b.accuracy.low,
            "high": b.accuracy.high,
            "n": b.accuracy.n,
        }
        for b in bins
        if b.accuracy.value is not None
    ]
    x = {"field": "bin", "type": "ordinal", "sort": None, "title": x_title}
    y = {"type": "quantitative", "scale": {"domain": [0, 1]}, "title": "accuracy"}
    return _spec(
        title,
        description,
        {
            "width": 300,
            "height": 200,
            "data": {"values": rows},
            "layer": [
                {
                    "mark": {"type": "rule", "strokeWidth": 2, "color": READER_COLOUR},
                    "encoding": {"x": x, "y": {**y, "field": "low"}, "y2": {"field": "high"}},
                },
                {
                    "mark": {"type": "point", "filled": True, "size": 70, "color": READER_COLOUR},
                    "encoding": {
                        "x": x,
                        "y": {**y, "field": "value"},
                        "tooltip": [
                            {"field": "bin", "title": x_title},
                            {"field": "value", "format": ".3f", "title": "accuracy"},
                            {"field": "n"},
                        ],
                    },
                },
            ],
        },
    )


def calibration(an: StudyAnalysis) -> dict:
    """Accuracy at each confidence level with Wilson intervals."""
    return _bins_chart(
        "Accuracy by confidence",
        "Share of correct answers at each confidence level (Wilson 95 % intervals).",
        an.realism.calibration,
        "confidence",
    )


def position(an: StudyAnalysis) -> dict:
    """Accuracy along the reading order with Wilson intervals."""
    return _bins_chart(
        "Accuracy along the order",
        "Share of correct answers in fifths of each reader's readings, in reading order "
        "(Wilson 95 % intervals).",
        an.realism.position,
        "part of each reader's readings",
    )


def figures(an: StudyAnalysis) -> dict[str, dict]:
    """Every figure's spec by name."""
    return {"forest": forest(an), "roc": roc(an), "calibration": calibration(an), "position": position(an)}
