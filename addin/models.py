"""The models DMPlan solves, as the pipeline sees them: which tables mark each, how it runs.

Each adapter reads its tables (``*_model.read_input``), runs the model within the options' time limit,
summarises it and lays out its result sheets (``*_sheets.sheets``).
"""

from __future__ import annotations

from typing import Any, Protocol

from dmplan.addin import coupon_model, coupon_sheets, mix_curves, mix_model, mix_sheets
from dmplan.addin.contract import ModelAdapter, ModelRun, RunOptions, TableSource
from dmplan.addin.sheets import SheetSpec


class ModelModule(Protocol):
    """What a model's ``*_model`` module offers the adapter."""

    SOLVERS: tuple[str, ...]
    SETTINGS: tuple[str, ...]

    def read_input(self, source: TableSource, options: RunOptions) -> Any: ...

    def run_model(self, data: Any, options: RunOptions) -> Any: ...

    def summary(self, outcome: Any) -> dict[str, Any]: ...


class LayoutModule(Protocol):
    """What a model's ``*_sheets`` module offers the adapter."""

    LEGACY_SHEETS: dict[str, str]

    def sheets(self, outcome: Any) -> list[SheetSpec]: ...


class Adapter:
    """A model as the pipeline sees it: read, run within the options' time limit, summarise, lay out."""

    def __init__(
        self,
        name: str,
        input_tables: tuple[str, ...],
        other_inputs: tuple[str, ...],
        model: ModelModule,
        layout: LayoutModule,
    ) -> None:
        self.name = name
        self.input_tables = input_tables
        self.other_inputs = other_inputs
        self.model = model
        self.layout = layout
        self.legacy_sheets = layout.LEGACY_SHEETS
        self.solvers = model.SOLVERS
        self.settings = model.SETTINGS

    def run(self, source: TableSource, options: RunOptions) -> ModelRun:
        data = self.model.read_input(source, options)
        outcome = self.model.run_model(data, options)
        summary = self.model.summary(outcome)
        sheets = self.layout.sheets(outcome)
        return ModelRun(self.name, outcome.status, summary, sheets, summary["warnings"], outcome.reason)


COUPON = Adapter("coupon", ("Segments", "Mailings"), ("Customers", "Settings"), coupon_model, coupon_sheets)
MIX = Adapter("mix", (mix_model.ACTIVITIES,), (mix_model.RULES, "Settings", mix_curves.CURVES), mix_model, mix_sheets)
ADAPTERS: tuple[ModelAdapter, ...] = (COUPON, MIX)
#: Settings every run reads, whatever its models.
COMMON_SETTINGS = ("time_limit",)
