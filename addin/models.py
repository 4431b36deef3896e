"""The models DMPlan solves, as the pipeline sees them: which tables mark each, how it runs.

Each adapter reads its tables (``*_model.read_input``), runs the model within the options' time limit,
summarises it and lays out its result sheets (``*_sheets.sheets``).
"""

from __future__ import annotations

from dmplan.addin import coupon_model, coupon_sheets, mix_curves, mix_model, mix_sheets
from dmplan.addin.contract import ModelAdapter, ModelRun, RunOptions, TableSource


class CouponAdapter:
    name = "coupon"
    input_tables: tuple[str, ...] = ("Segments", "Mailings")
    other_inputs: tuple[str, ...] = ("Customers", "Settings")
    legacy_sheets = coupon_sheets.LEGACY_SHEETS
    solvers: tuple[str, ...] = coupon_model.SOLVERS

    def run(self, source: TableSource, options: RunOptions) -> ModelRun:
        data = coupon_model.read_input(source, options)
        outcome = coupon_model.run_model(data, options)
        summary = coupon_model.summary(outcome)
        reason = None if outcome.status.has_plan else (outcome.result.certificate.message or outcome.status.value)
        summary["reason"] = reason
        return ModelRun(self.name, outcome.status, summary, coupon_sheets.sheets(outcome), summary["warnings"], reason)


class MixAdapter:
    name = "mix"
    input_tables: tuple[str, ...] = (mix_model.ACTIVITIES,)
    other_inputs: tuple[str, ...] = (mix_model.RULES, "Settings", mix_curves.CURVES)
    legacy_sheets = mix_sheets.LEGACY_SHEETS
    solvers: tuple[str, ...] = mix_model.SOLVERS

    def run(self, source: TableSource, options: RunOptions) -> ModelRun:
        data = mix_model.read_input(source, options)
        outcome = mix_model.run_model(data, options)
        summary = mix_model.summary(outcome)
        return ModelRun(
            self.name, outcome.status, summary, mix_sheets.sheets(outcome), summary["warnings"], outcome.reason
        )


ADAPTERS: tuple[ModelAdapter, ...] = (CouponAdapter(), MixAdapter())
#: Every solver name a model takes, for checking an override before anything runs.
SOLVER_NAMES = {adapter.name: adapter.solvers for adapter in ADAPTERS}
