"""Customer lists from CSV or Parquet files, and the mailing list written back to a file.

For lists past Excel's 1,048,576 rows: the same columns as the workbook's ``Customers`` table
(``customer_id``; ``segment`` or ``segment_id``, or the ``Segments`` table's key columns; optional
``prob_<mailing>`` scores), column names matched like the workbook contract (case-insensitive,
spaces and dashes as underscores). A path may be one file, a folder (every .csv/.parquet file
under it, a partitioned dataset) or a glob. Files are read with polars (measured against pyarrow
on 5,000,000 rows: CSV 2.8 s against 7.7 s, Parquet 1.3 s against 2.1 s, half the peak memory).

Inputs and outputs are plain (segment ids, key values per segment, mailing ids, NumPy arrays) so
the workbook side and any other caller use the same functions. Every bad input raises
:class:`dmplan.solver.common.InputError` naming the file, the row and the column, with the value
as it is in the file; nothing is dropped or invented.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from dmplan.addin.cells import normalize
from dmplan.solver.common import InputError
from dmplan.solver.coupon.model import CustomerList

SUFFIXES = (".csv", ".parquet")
SEGMENT_COLUMNS = ("segment", "segment_id")
PROB_PREFIX = "prob_"


def customer_files(spec: str | Path) -> list[Path]:
    """The files a path names: one file, every .csv/.parquet file under a folder, or a glob's matches."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        where = f"folder {path}"
    elif path.is_file():
        files = [path]
        where = f"file {path}"
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
        where = f"path {spec}"
        if not files:
            raise InputError(
                "no such file or folder.",
                where=f"customers file {spec}",
                fix="Check the path (relative paths start at the workbook's folder).",
            )
    files = [f for f in files if f.suffix.lower() in SUFFIXES] if len(files) > 1 else files
    if not files:
        raise InputError(
            "holds no .csv or .parquet file.", where=where, fix="Point it at CSV or Parquet customer files."
        )
    for f in files:
        if f.suffix.lower() not in SUFFIXES:
            raise InputError(
                f"is a {f.suffix or 'file without extension'}, not .csv or .parquet.",
                where=f"customers file {f}",
                fix="Save the customer list as CSV or Parquet.",
            )
    return files


@dataclass(frozen=True)
class Segments:
    """What a customer file is matched against: segment ids, key columns' values per segment, mailing ids."""

    ids: Sequence[str]
    keys: dict[str, Sequence[str]]  #: key column (normalised name) -> value per segment
    mailings: Sequence[str]


@dataclass(frozen=True)
class Part:
    """One file's customers as arrays."""

    file: Path
    customer_id: pl.Series  # str
    segment: np.ndarray  # int64 index into Segments.ids
    probability: np.ndarray | None  # (n, D) float64


def _read_frame(file: Path) -> pl.DataFrame:
    try:
        # CSV: every column as text, so a bad value is reported exactly as it is written in the file
        csv = file.suffix.lower() == ".csv"
        frame = pl.read_csv(file, infer_schema=False) if csv else pl.read_parquet(file)
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot be read: {first}",
            where=f"customers file {file}",
            fix="Check that it is a valid CSV or Parquet file.",
        ) from exc
    names = [normalize(c) for c in frame.columns]
    seen: dict[str, str] = {}
    for original, name in zip(frame.columns, names, strict=True):
        if name in seen:
            raise InputError(
                f"columns {seen[name]!r} and {original!r} are the same column.",
                where=f"customers file {file}",
                fix="Keep one of them.",
            )
        seen[name] = original
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def row_label(file: Path, row: int) -> str:
    # CSV: the line in the file (header is line 1); Parquet: the data row, counted from 1
    return f"line {row + 2}" if file.suffix.lower() == ".csv" else f"row {row + 1}"


def _bad(file: Path, row: int, column: str, message: str, fix: str) -> InputError:
    return InputError(message, where=f"customers file {file}, {row_label(file, row)}, column {column!r}", fix=fix)


def read_part(file: Path, segments: Segments) -> Part:
    """One file's customers (also what each Dask partition runs)."""
    frame = _read_frame(file)
    where = f"customers file {file}"
    if "customer_id" not in frame.columns:
        raise InputError(
            "has no column 'customer_id'.", where=where, fix="Add a column 'customer_id' with each customer's id."
        )
    ids = frame["customer_id"].cast(pl.String)
    missing = ids.is_null() | (ids.str.strip_chars() == "")
    if missing.any():
        row = int(missing.arg_true()[0])
        raise _bad(file, row, "customer_id", "the customer id is empty.", "Give every customer an id.")
    segment = _segments(file, frame, segments)
    probability = _scores(file, frame, segments.mailings)
    return Part(file, ids, segment, probability)


def _segments(file: Path, frame: pl.DataFrame, segments: Segments) -> np.ndarray:
    column = next((c for c in SEGMENT_COLUMNS if c in frame.columns), None)
    if column is not None:
        lookup: dict[tuple[str, ...], int] = {(normalize(s),): i for i, s in enumerate(segments.ids)}
        columns = [column]
    else:
        columns = [k for k in segments.keys if k in frame.columns]
        if not columns:
            raise InputError(
                "has neither a 'segment' column nor the Segments table's key columns "
                f"({', '.join(segments.keys) or 'none'}).",
                where=f"customers file {file}",
                fix="Add a column 'segment' with each customer's segment id.",
            )
        lookup = {}
        for i in range(len(segments.ids)):
            lookup.setdefault(tuple(normalize(segments.keys[c][i]) for c in columns), i)
    # one text key per row; the distinct keys are matched once and every row mapped through them
    key = frame.select(
        pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in columns], separator="\x1f").alias("key")
    )["key"]
    codes: dict[str, int] = {}
    for text in key.unique(maintain_order=True):
        found = lookup.get(tuple(normalize(v) for v in text.split("\x1f")))
        if found is None:
            first = int((key == text).arg_true()[0])
            raise _bad(
                file,
                first,
                columns[0],
                f"no segment matches {', '.join(columns)} = {text.replace(chr(31), ', ')}.",
                "Use values that appear in the Segments table.",
            )
        codes[text] = found
    return key.replace_strict(codes, return_dtype=pl.Int64).to_numpy()


def _scores(file: Path, frame: pl.DataFrame, mailings: Sequence[str]) -> np.ndarray | None:
    columns = [PROB_PREFIX + normalize(m) for m in mailings]
    present = [c in frame.columns for c in columns]
    if not any(present):
        return None
    for column, has in zip(columns, present, strict=True):
        if not has:
            raise InputError(
                f"mailing {column[len(PROB_PREFIX) :]!r} has no probability column {column!r}.",
                where=f"customers file {file}",
                fix=f"Add a column {column!r} with each customer's conversion probability for that mailing.",
            )
    out = np.empty((frame.height, len(columns)))
    for d, column in enumerate(columns):
        raw = frame[column]
        text = raw.dtype == pl.String
        number = (raw.str.strip_chars() if text else raw).cast(pl.Float64, strict=False)
        bad = number.is_null() | number.is_nan() | (number < 0) | (number > 1)
        if bad.any():
            row = int(bad.arg_true()[0])
            value = raw[row]
            shown = "an empty cell" if value is None or str(value).strip() == "" else repr(str(value))
            raise _bad(
                file, row, column, f"{shown} is not a probability between 0 and 1.", "Enter a number from 0 to 1."
            )
        out[:, d] = number.to_numpy()
    return out


def read_customers(spec: str | Path, segments: Segments) -> CustomerList:
    """Every customer of the files ``spec`` names, in file order then row order."""
    parts = [read_part(f, segments) for f in customer_files(spec)]
    scored = [p.probability is not None for p in parts]
    if any(scored) and not all(scored):
        unscored = next(p.file for p in parts if p.probability is None)
        raise InputError(
            "has no prob_<mailing> columns while other files of the list do.",
            where=f"customers file {unscored}",
            fix="Give every file the same columns.",
        )
    _check_unique(parts)
    ids = pl.concat([p.customer_id for p in parts]).to_numpy()
    segment = np.concatenate([p.segment for p in parts])
    probability = np.concatenate([p.probability for p in parts]) if all(scored) else None  # type: ignore[misc]
    return CustomerList(ids, segment, probability)


def _check_unique(parts: list[Part]) -> None:
    """Customer ids are unique over every file; the first repeat is named with both places."""
    ids = pl.concat([p.customer_id for p in parts])
    if ids.n_unique() == len(ids):  # the common case, cheaper than marking every repeat
        return
    repeated = ids.is_duplicated()
    value = ids.filter(repeated)[0]
    where = (ids == value).arg_true()[:2].to_list()
    starts = np.cumsum([0] + [len(p.customer_id) for p in parts])

    def place(position: int) -> tuple[Path, str]:
        k = int(np.searchsorted(starts, position, side="right") - 1)
        return parts[k].file, row_label(parts[k].file, position - int(starts[k]))

    (f1, r1), (f2, r2) = place(where[0]), place(where[1])
    raise InputError(
        f"customer id {value!r} appears twice (also {f1}, {r1}).",
        where=f"customers file {f2}, {r2}, column 'customer_id'",
        fix="Give every customer one row.",
    )


MAILING_LIST_COLUMNS = ("customer_id", "segment", "mailing", "label", "probability")


def mailing_list_format(target: Path, fix: str) -> str:
    """The mailing list's format (.csv or .parquet, from the name); its folder must exist."""
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"ends in {target.suffix or 'no extension'}.", where=f"mailing list file {target}", fix=fix)
    if not target.parent.is_dir():
        raise InputError(
            "is in a folder that does not exist.", where=f"mailing list file {target}", fix="Create the folder first."
        )
    return suffix


def write_mailing_list(
    path: str | Path,
    customer_id: np.ndarray,
    segment_ids: Sequence[str],
    segment: np.ndarray,
    mailing_ids: Sequence[str],
    labels: Sequence[str],
    assignment: np.ndarray,
    probability: np.ndarray,
) -> Path:
    """Write ``customer_id, segment, mailing, label, probability`` to CSV or Parquet (by extension),
    through a temporary file renamed into place: a reader never sees half a list.
    ``probability`` is each customer's probability for its mailing."""
    target = Path(path)
    suffix = mailing_list_format(target, "Name a .csv or .parquet file.")
    frame = pl.DataFrame(
        {
            "customer_id": pl.Series(customer_id, dtype=pl.String) if customer_id.dtype == object else customer_id,
            "segment": pl.Series(list(segment_ids), dtype=pl.String).gather(segment),
            "mailing": pl.Series(list(mailing_ids), dtype=pl.String).gather(assignment),
            "label": pl.Series(list(labels), dtype=pl.String).gather(assignment),
            "probability": probability,
        }
    )
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(handle)
    try:
        if suffix == ".csv":
            frame.write_csv(temp)
        else:
            frame.write_parquet(temp)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return target
