"""Issue 11, files and folders: every failure a file system or a broken file produces is exit 2 with a message,
no traceback, the input byte for byte and mtime unchanged, nothing left behind; success keeps or sets the mode.

Tests run as root in CI, where permission bits do not stop reading or writing: the cases that need a
non-root user skip there (and only there); a read-only FILE is still detectable through its mode bits, so
those cases run for root too.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tests.robustness import books
from tests.robustness.books import BAD_INPUT, OK

needs_non_root = pytest.mark.skipif(books.IS_ROOT, reason="root reads and writes regardless of permission bits")


@pytest.fixture
def book(tmp_path: Path, mix_template: Path) -> Path:
    """A small valid book (the mix template, 40 activities) in its own folder."""
    _, rows = books.mix_rows(mix_template, 40)
    folder = tmp_path / "in"
    folder.mkdir()
    return books.mix_book(folder, mix_template, rows, rules=[])


def _refused(
    run: books.Run, before: dict[Path, books.FileState], *folders: Path, needles: tuple[str, ...] = ()
) -> None:
    books.assert_fails(run, BAD_INPUT, *needles)
    books.assert_unchanged(before, *folders)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- unusable input files
def test_corrupt_sheet_xml(book: Path) -> None:
    books.corrupt_sheet(book, "Activities")
    before = books.snapshot(book.parent)
    run = books.solve(book, summary=book.parent / "s.json")
    _refused(run, before, book.parent, needles=(book.name,))


def test_directory_as_book(tmp_path: Path) -> None:
    folder = tmp_path / "notabook.xlsx"
    folder.mkdir()
    before = books.snapshot(tmp_path)
    run = books.dmplan("solve", folder, "-q", cwd=tmp_path)
    _refused(run, before, tmp_path, needles=("notabook.xlsx",))


def test_missing_book(tmp_path: Path) -> None:
    run = books.dmplan("solve", tmp_path / "nothere.xlsx", "-q", cwd=tmp_path)
    books.assert_fails(run, BAD_INPUT, "nothere.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_xlsx_renamed_xls(book: Path) -> None:
    renamed = book.rename(book.with_name("old.xls"))
    before = books.snapshot(book.parent)
    run = books.solve(renamed)
    _refused(run, before, book.parent, needles=("old.xls", ".xlsx"))


def test_password_protected_or_legacy_file(tmp_path: Path) -> None:
    """An encrypted workbook is an OLE compound file, like a legacy .xls: exit 2 with what to do."""
    book = tmp_path / "secret.xlsx"
    book.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 4088)
    before = books.snapshot(tmp_path)
    run = books.solve(book)
    _refused(run, before, tmp_path, needles=("secret.xlsx", "password"))


@needs_non_root
def test_unreadable_file(book: Path) -> None:
    book.chmod(0o000)
    before = books.snapshot(book.parent)
    run = books.solve(book)
    _refused(run, before, book.parent, needles=(book.name,))


def test_read_only_file_is_not_replaced_in_place(book: Path) -> None:
    """Mode 0444: refused with a hint (-o or make it writable); holds for root too (the mode bits say it)."""
    book.chmod(0o444)
    before = books.snapshot(book.parent)
    run = books.solve(book, summary=book.parent / "s.json")
    _refused(run, before, book.parent, needles=(book.name, "-o"))


def test_read_only_file_can_be_solved_elsewhere(book: Path, tmp_path: Path) -> None:
    book.chmod(0o444)
    out = tmp_path / "out.xlsx"
    before = books.snapshot(book.parent)
    run = books.solve(book, "-o", out)
    assert run.code == OK, str(run)
    books.assert_unchanged(before, book.parent)
    assert "Mix Plan" in openpyxl.load_workbook(out, read_only=True).sheetnames


@needs_non_root
def test_read_only_folder_in_place(book: Path) -> None:
    book.parent.chmod(0o555)
    try:
        before = books.snapshot(book.parent)
        run = books.solve(book)
        _refused(run, before, book.parent)
    finally:
        book.parent.chmod(0o755)


# --------------------------------------------------------------------------- output folders and the summary
@needs_non_root
def test_output_into_read_only_folder(book: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    try:
        before = books.snapshot(book.parent, out_dir)
        run = books.solve(book, "-o", out_dir / "out.xlsx")
        _refused(run, before, book.parent, out_dir)
    finally:
        out_dir.chmod(0o755)


def test_read_only_output_file_is_not_replaced(book: Path, tmp_path: Path) -> None:
    """-o onto an existing read-only workbook: exit 2, the target as it was (mode bits: holds for root too)."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = books.copy(book, out_dir / "plan.xlsx")
    target.chmod(0o444)
    before = books.snapshot(book.parent, out_dir)
    run = books.solve(book, "-o", target)
    _refused(run, before, book.parent, out_dir, needles=("plan.xlsx",))


def test_output_into_missing_folder(book: Path, tmp_path: Path) -> None:
    before = books.snapshot(book.parent)
    run = books.solve(book, "-o", tmp_path / "missing" / "out.xlsx")
    _refused(run, before, book.parent, needles=("missing",))
    assert not (tmp_path / "missing").exists()


def test_summary_json_into_missing_folder_is_checked_before_solving(book: Path, tmp_path: Path) -> None:
    """It crashed after the workbook was already written; now nothing is written at all."""
    before = books.snapshot(book.parent)
    run = books.solve(book, summary=tmp_path / "nodir" / "summary.json")
    _refused(run, before, book.parent, needles=("nodir",))
    assert not (tmp_path / "nodir").exists()


# --------------------------------------------------------------------------- lock files
def test_lock_file_of_the_input_does_not_stop_output_elsewhere(book: Path, tmp_path: Path) -> None:
    """Excel has BOOK open (``~$book.xlsx``): reading it is harmless, -o elsewhere works."""
    (book.parent / ("~$" + book.name)).write_bytes(b"\x00" * 165)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = books.solve(book, "-o", out_dir / "plan.xlsx")
    assert run.code == OK, str(run)
    assert (out_dir / "plan.xlsx").exists()


def test_lock_file_of_the_output_stops_the_run(book: Path, tmp_path: Path) -> None:
    """The -o target is open in Excel (its lock file exists): exit 2, the open file untouched."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = books.copy(book, out_dir / "plan.xlsx")
    (out_dir / "~$plan.xlsx").write_bytes(b"\x00" * 165)
    before = books.snapshot(book.parent, out_dir)
    run = books.solve(book, "-o", target)
    _refused(run, before, book.parent, out_dir, needles=("plan.xlsx",))


def test_lock_file_of_the_input_stops_an_in_place_run(book: Path) -> None:
    (book.parent / ("~$" + book.name)).write_bytes(b"\x00" * 165)
    before = books.snapshot(book.parent)
    run = books.solve(book)
    _refused(run, before, book.parent, needles=(book.name,))


# --------------------------------------------------------------------------- modes
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_new_output_file_gets_the_usual_mode(book: Path, tmp_path: Path, umask: int) -> None:
    """-o creates a file with 0o666 minus the umask (it was 0600)."""
    out = tmp_path / "new.xlsx"
    run = books.dmplan("solve", book, "-q", "-o", out, cwd=tmp_path, umask=umask)
    assert run.code == OK, str(run)
    assert _mode(out) == 0o666 & ~umask, oct(_mode(out))


def test_rewritten_file_keeps_its_mode(book: Path) -> None:
    book.chmod(0o640)
    run = books.dmplan("solve", book, "-q", cwd=book.parent, umask=0o022)
    assert run.code == OK, str(run)
    assert _mode(book) == 0o640, oct(_mode(book))
    assert [p.name for p in book.parent.iterdir()] == [book.name], "temporary files left behind"


@pytest.mark.parametrize("command", ["template", "demo"])
def test_template_and_demo_files_get_the_usual_mode(tmp_path: Path, command: str) -> None:
    out = tmp_path / "new.xlsx"
    args = ("template", "mix", "-o", out) if command == "template" else ("demo", "-o", out, "-q")
    run = books.dmplan(*args, cwd=tmp_path, umask=0o022)
    assert run.code == OK, str(run)
    assert _mode(out) == 0o644, oct(_mode(out))


# --------------------------------------------------------------------------- templates
def test_template_refuses_an_existing_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.xlsx"
    wb = openpyxl.Workbook()
    wb.active["A1"] = "my own work"
    wb.save(mine)
    before = books.snapshot(tmp_path)
    run = books.dmplan("template", "coupon", "-o", mine, cwd=tmp_path)
    _refused(run, before, tmp_path, needles=("mine.xlsx", "--force"))
    forced = books.dmplan("template", "coupon", "-o", mine, "--force", cwd=tmp_path)
    assert forced.code == OK, str(forced)
    assert "Segments" in openpyxl.load_workbook(mine, read_only=True).sheetnames


# --------------------------------------------------------------------------- .xlsm <-> .xlsx
def _xlsm_source() -> Path:
    found = sorted(p for p in books.REPO.rglob("mix_plan.xlsm") if ".git" not in p.parts)
    if not found:
        pytest.skip("no macro-enabled mix template in this checkout")
    return found[0]


def test_xlsm_to_xlsx_drops_macros_with_a_warning(tmp_path: Path) -> None:
    source = books.copy(_xlsm_source(), tmp_path / "book.xlsm")
    assert books.has_vba(source) and books.workbook_content_type(source) == books.WORKBOOK_TYPES[".xlsm"]
    out = tmp_path / "out.xlsx"
    run = books.dmplan("solve", source, "-o", out, cwd=tmp_path)
    assert run.code == OK, str(run)
    assert books.workbook_content_type(out) == books.WORKBOOK_TYPES[".xlsx"]
    assert not books.has_vba(out)
    assert "macro" in (run.out + run.err).lower(), "no warning that the macros were dropped"
    assert "Mix Plan" in openpyxl.load_workbook(out, read_only=True).sheetnames


def test_xlsx_to_xlsm_is_macro_enabled(book: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsm"
    run = books.solve(book, "-o", out)
    assert run.code == OK, str(run)
    assert books.workbook_content_type(out) == books.WORKBOOK_TYPES[".xlsm"]
    wb = openpyxl.load_workbook(out, keep_vba=True)
    assert "Mix Plan" in wb.sheetnames


def test_xlsm_in_place_keeps_its_macros(tmp_path: Path) -> None:
    source = books.copy(_xlsm_source(), tmp_path / "book.xlsm")
    run = books.solve(source)
    assert run.code == OK, str(run)
    assert books.has_vba(source) and books.workbook_content_type(source) == books.WORKBOOK_TYPES[".xlsm"]
    with zipfile.ZipFile(source) as archive:
        assert archive.testzip() is None


def test_no_temporary_file_left_after_success(book: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = books.solve(book, "-o", out_dir / "plan.xlsx", summary=out_dir / "summary.json")
    assert run.code == OK, str(run)
    assert sorted(p.name for p in out_dir.iterdir()) == ["plan.xlsx", "summary.json"]
    assert sorted(p.name for p in book.parent.iterdir()) == [book.name]
    assert os.access(out_dir / "plan.xlsx", os.R_OK)
