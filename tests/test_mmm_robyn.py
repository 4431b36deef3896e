"""Robyn import: exports written from known parameters (both inflexion conventions) give back the curves."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dmplan.addin.mmm import CONVENTION_311, CONVENTION_312, import_robyn, write_book
from dmplan.solver.common import InputError


@dataclass
class Truth:
    coef: float
    alpha: float
    gamma: float
    theta: float
    spend: np.ndarray  # raw spend per period, all rows


PERIODS, FIRST, LAST = 60, 6, 55  # the modelling window is rows FIRST..LAST (50 periods)


def adstock(x: np.ndarray, theta: float) -> np.ndarray:
    out = np.zeros_like(x)
    for t, value in enumerate(x):
        out[t] = value + (theta * out[t - 1] if t else 0.0)
    return out


def truths(seed: int) -> dict[str, Truth]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, alpha in (("tv_S", 2.2), ("search_S", 0.7), ("ooh_S", 1.0)):
        spend = rng.uniform(0, 5000, PERIODS) * (rng.uniform(size=PERIODS) > 0.2)
        out[name] = Truth(rng.uniform(1e4, 1e5), alpha, rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.6), spend)
    return out


def window_inflexion(truth: Truth, new: bool) -> float:
    z = adstock(truth.spend, truth.theta)[FIRST : LAST + 1]
    return truth.gamma * z.max() if new else (1 - truth.gamma) * z.min() + truth.gamma * z.max()


def carryover(truth: Truth) -> float:
    z = adstock(truth.spend, truth.theta)
    return float(np.mean((z - truth.spend)[FIRST : LAST + 1]))


def curve(truth: Truth, new: bool, total_spend: np.ndarray, periods: int) -> np.ndarray:
    """N r(S / N), written out independently of the importer."""
    x = total_spend / periods + carryover(truth)
    return periods * truth.coef * x**truth.alpha / (x**truth.alpha + window_inflexion(truth, new) ** truth.alpha)


def write(rows: list[dict[str, object]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: repr(float(v)) if isinstance(v, (float, np.floating)) else v for k, v in row.items()})


def export(folder: Path, models: dict[str, Truth], new: bool, solid: str = "1_23_4", json_window: bool = True) -> Path:
    """A Robyn export folder for ``models`` (plus a decoy model with other numbers)."""
    folder.mkdir(parents=True, exist_ok=True)
    dates = [f"2024-{1 + t // 28:02d}-{1 + t % 28:02d}" for t in range(PERIODS)]
    hyper, aggregated, matrix = [], [], []
    for sid, scale in ((solid, 1.0), ("9_99_9", 1.7)):
        row: dict[str, object] = {"solID": sid}
        for name, t in models.items():
            row[f"{name}_alphas"], row[f"{name}_gammas"], row[f"{name}_thetas"] = t.alpha, t.gamma, t.theta * scale
            if new:
                row[f"{name}_inflexion"] = window_inflexion(t, new) * scale
        row["lambda"] = 0.01
        hyper.append(row)
        aggregated.append(
            {
                "solID": sid,
                "rn": "(Intercept)",
                "coef": 123.0,
                "mean_spend": "NA",
                "mean_carryover": "NA",
                "mean_response": "NA",
            }
        )
        for name, t in models.items():
            mean_spend = float(np.mean(t.spend[FIRST : LAST + 1]))
            c = carryover(t)
            k = window_inflexion(t, new)
            z = adstock(t.spend, t.theta)[FIRST : LAST + 1]
            if new:  # 3.12: the mean of the historical responses
                mean_response = float(np.mean(t.coef * z**t.alpha / (z**t.alpha + k**t.alpha)))
            else:  # 3.11: the allocator's formula at the mean spend
                x = mean_spend + c
                mean_response = t.coef * x**t.alpha / (x**t.alpha + k**t.alpha)
            aggregated.append(
                {
                    "solID": sid,
                    "rn": name,
                    "coef": t.coef * scale,
                    "mean_spend": mean_spend,
                    "mean_carryover": c,
                    "mean_response": mean_response,
                }
            )
        for kind in ("rawMedia", "adstockedMedia", "decompMedia"):
            for i, day in enumerate(dates):
                entry: dict[str, object] = {"ds": day}
                for name, t in models.items():
                    series = t.spend if kind == "rawMedia" else adstock(t.spend, t.theta)
                    entry[name] = float(series[i] * (1 if sid == solid else 3.0))
                entry["type"], entry["solID"] = kind, sid
                matrix.append(entry)
    write(hyper, folder / "pareto_hyperparameters.csv")
    write(aggregated, folder / "pareto_aggregated.csv")
    write(matrix, folder / "pareto_media_transform_matrix.csv")
    if json_window:
        model = {
            "InputCollect": {"window_start": [dates[FIRST]], "window_end": [dates[LAST]], "version": "Robyn v3.11.1"},
            "ExportedModel": {"select_model": solid},
        }
        (folder / f"RobynModel-{solid}.json").write_text(json.dumps(model))
    return folder


@pytest.mark.parametrize("new", [True, False], ids=["robyn-3.12", "robyn-3.11"])
@pytest.mark.parametrize("periods", [None, 13])
def test_exports_from_known_parameters_give_back_the_curves(tmp_path: Path, new: bool, periods: int | None) -> None:
    models = truths(1)
    imported = import_robyn(export(tmp_path, models, new), "1_23_4", periods=periods)
    assert imported.convention == (CONVENTION_312 if new else CONVENTION_311)
    horizon = periods or LAST - FIRST + 1
    assert imported.periods == horizon
    curves = imported.curves()
    assert set(curves) == set(models)
    for name, truth in models.items():
        points = curves[name]
        expected = curve(truth, new, points.spend, horizon)
        np.testing.assert_allclose(points.response, expected, rtol=1e-9, atol=1e-9 * expected.max())
        baseline = np.mean(truth.spend[FIRST : LAST + 1]) * horizon
        row = next(r for r in imported.activities() if r["activity"] == name)
        assert row["baseline"] == pytest.approx(baseline, rel=1e-12)
        assert (row["min_spend"], row["max_spend"], row["min_change"]) == pytest.approx(
            (0.5 * baseline, 2 * baseline, 0)
        )
        assert points.spend.max() >= row["max_spend"]
    if not new:
        assert imported.identity and max(v for v in imported.checks.values() if v is not None) < 1e-12
    else:
        assert not imported.identity and "loose" in " ".join(imported.notes)


def test_311_with_the_wrong_window_fails_the_identity_check(tmp_path: Path) -> None:
    folder = export(tmp_path, truths(2), new=False, json_window=False)  # no JSON: every row is taken
    with pytest.raises(InputError, match="mean_response") as raised:
        import_robyn(folder, "1_23_4")
    assert "pareto_aggregated.csv" in str(raised.value) and "--window-start" in str(raised.value)
    dates = [f"2024-{1 + t // 28:02d}-{1 + t % 28:02d}" for t in range(PERIODS)]
    imported = import_robyn(folder, "1_23_4", window_start=dates[FIRST], window_end=dates[LAST])
    assert imported.periods == LAST - FIRST + 1


def test_unknown_model_and_missing_files_are_named(tmp_path: Path) -> None:
    folder = export(tmp_path, truths(3), new=True)
    with pytest.raises(InputError, match="model 'nope' is not in the file"):
        import_robyn(folder, "nope")
    (folder / "pareto_media_transform_matrix.csv").unlink()
    with pytest.raises(InputError, match="--periods"):
        import_robyn(folder, "1_23_4")
    assert import_robyn(folder, "1_23_4", periods=4).periods == 4
    old = export(tmp_path / "old", truths(3), new=False)
    (old / "pareto_media_transform_matrix.csv").unlink()
    with pytest.raises(InputError, match="inflexion must be computed"):
        import_robyn(old, "1_23_4")


def test_write_book_adds_curves_activities_and_settings(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    imported = import_robyn(export(tmp_path / "run", truths(4), new=True), "1_23_4")
    book = tmp_path / "plan.xlsx"
    assert write_book(imported, book) == ["Curves", "Activities", "Settings"]
    wb = load_workbook(book)
    assert [c.value for c in wb["Curves"][1]] == ["activity", "spend", "response"]
    assert wb["Curves"].max_row == 1 + 3 * 201
    assert write_book(imported, book) == ["Curves"]  # a second import keeps the user's Activities


def test_cli_imports_a_robyn_run_and_the_book_solves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmplan.addin import cli

    folder = export(tmp_path / "run", truths(5), new=False)
    book = tmp_path / "robyn.xlsx"
    code = cli.main(["curves", "robyn", str(folder), "--solid", "1_23_4", "--periods", "13", "-o", str(book)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    assert "Robyn <= 3.11" in err and "identity" in err
    summary = tmp_path / "s.json"
    code = cli.main(["solve", str(book), "-q", "--summary-json", str(summary)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    mix = json.loads(summary.read_text())["models"][0]
    assert mix["revenue_model"] == "piecewise" and len(mix["curves"]) == 3
    assert mix["lift_points"] == pytest.approx(mix["lift_fitted"], rel=1e-2, abs=1e-6)
    assert mix["budget_used"] == pytest.approx(mix["baseline_total"], rel=1e-9)
    # tv's Hill alpha 2.2 is S-shaped: its convex range is reported, never clipped silently
    tv = next(c for c in mix["curves"] if c["activity"] == "tv_S")
    assert tv["convex_range"] is None or tv["convex_max_error"] is not None


def test_cli_unknown_model_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmplan.addin import cli

    folder = export(tmp_path / "run", truths(6), new=True)
    book = tmp_path / "robyn.xlsx"
    code = cli.main(["curves", "robyn", str(folder), "--solid", "2_2_2", "-o", str(book)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "file pareto_hyperparameters.csv" in err and "--solid" in err
    assert not book.exists()
