"""The workbook side of DMPlan: reading input tables, writing result sheets, CLI and Excel add-in."""
