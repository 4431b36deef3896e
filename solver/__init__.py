"""Pure optimisation models of DMPlan. Nothing in this package imports an Excel library."""
