"""Write result sheets into a workbook package at the zip level, copying every input part as is.

openpyxl rewrites the whole book on save: a 200,000-row input sheet costs more to write back
unchanged than the solve itself, and whatever openpyxl does not model (shapes, form controls,
slicers ...) is lost. :func:`graft` instead takes the result sheets from a small second package
written by openpyxl (sheets, their tables, drawings, charts, sheet-scoped defined names and
styles) and splices them into a copy of the source package:

- every part of the source that is kept is copied byte for byte (raw compressed data, not
  re-encoded); only ``[Content_Types].xml``, ``xl/workbook.xml``, its rels, ``xl/styles.xml``
  and ``docProps/app.xml`` are rewritten;
- the new parts are renumbered past the source's (sheets, drawings, charts, tables, their
  rels), table ids and names stay unique, styles are appended to the source's and the cells'
  ``s=`` indices remapped, shared strings of the result book become inline strings;
- the removed sheets (earlier results) go with every part only they reached and their defined
  names; ``calcChain.xml`` is dropped (Excel rebuilds it) and the book is marked to recalculate
  on load (the new formulas carry no cached values);
- VBA stays for a macro-enabled target; an ``.xlsx`` target drops it and switches the
  workbook's content type (and the reverse), so the file always matches its extension.

The target is written to a temporary file in its folder and renamed into place.
"""

from __future__ import annotations

import copy
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from dmplan.addin.xlsx_read import resolve_target

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
EP_NS = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
M, R, P, CT = (f"{{{ns}}}" for ns in (MAIN_NS, REL_NS, PKG_REL_NS, CT_NS))
WORKSHEET_REL = REL_NS + "/worksheet"
CALC_CHAIN_REL = REL_NS + "/calcChain"
VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
#: the workbook part's content type by target extension (Excel refuses a mismatch)
MAIN_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    ".xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
    ".xltm": "application/vnd.ms-excel.template.macroEnabled.main+xml",
    ".xlam": "application/vnd.ms-excel.addin.macroEnabled.main+xml",
}
MACRO_SUFFIXES = (".xlsm", ".xltm", ".xlam")
#: numbered part folders of a result sheet's tree and the file name stem in each
NUMBERED = re.compile(
    r"^(xl/(?:worksheets|drawings|charts|tables|drawings/_rels|charts/_rels)/)([A-Za-z]+?)(\d+)(\.\w+)$"
)
STYLE_ATTR = re.compile(r'(<(?:c|row)\b[^>]*?\bs=")(\d+)(")')
COL_STYLE = re.compile(r'(<col\b[^>]*?\bstyle=")(\d+)(")')
SHARED_CELL = re.compile(r'<c\b([^>]*?)\bt="s"([^>]*)>\s*<v>(\d+)</v>\s*</c>')
ProgressBytes = Callable[[str], None]  #: called with a short description of the step under way
Tail = Callable[[str], Iterable[str]]  #: sheet XML -> ``<row>`` elements to append to its sheetData
FAST_LEVEL_BYTES = 1 << 20  #: new parts larger than this are deflated at level 1 (3x faster, ~15% larger)


class GraftError(ValueError):
    """The result sheets cannot be written into this package (a name clash, a broken part)."""


@dataclass
class GraftReport:
    sheets: list[str]  #: the workbook's sheet names after the graft, in tab order
    renamed_tables: dict[str, str] = field(default_factory=dict)  #: result table name -> name used
    copied_parts: int = 0
    dropped_parts: list[str] = field(default_factory=list)


def graft(
    source: Path,
    results: Path,
    target: Path,
    remove: Sequence[str] = (),
    replaces: Mapping[str, str] | None = None,
    progress: ProgressBytes | None = None,
    tails: Mapping[str, Tail] | None = None,
    mode: int | None = None,
) -> GraftReport:
    """Write ``source`` without the sheets ``remove`` and with every sheet of ``results`` to ``target``.

    ``replaces`` maps a result sheet name to the removed source sheet whose tab position it
    takes; other result sheets go after the last sheet. ``target`` may be ``source`` itself.
    ``tails`` maps a result sheet name to a function that, given the sheet's XML with its
    styles already remapped, returns ``<row>`` elements to append to its ``sheetData`` (rows
    below every row the result book holds): large blocks are streamed this way instead of
    going through openpyxl's cell objects. ``mode`` is the file mode of the target (default:
    the existing target's, else 0o666 less the umask).
    """
    replaces = dict(replaces or {})
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(results) as res:
        plan = _Plan(src, res, set(remove), replaces, target.suffix.lower(), dict(tails or {}))
        target = target.resolve()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with open(source, "rb") as raw, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
                if progress:
                    progress("copying the input parts")
                plan.write(raw, out, progress)
            if mode is None and target.exists():
                mode = target.stat().st_mode & 0o777
            elif mode is None:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return plan.report


# ------------------------------------------------------------------------ helpers
def _xml(data: bytes) -> Any:
    return etree.fromstring(data, parser=etree.XMLParser(huge_tree=True, remove_blank_text=False))


def _dump(root: Any) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _rels_part(part: str) -> str:
    path = PurePosixPath(part)
    return str(path.parent / "_rels" / f"{path.name}.rels")


def _relative(from_part: str, to_part: str) -> str:
    """Relative target from the folder of ``from_part`` to ``to_part`` (both zip paths)."""
    return os.path.relpath(to_part, str(PurePosixPath(from_part).parent) or ".").replace(os.sep, "/")


def _rels(zf: zipfile.ZipFile, part: str) -> list[tuple[str, str, str, bool]]:
    """(id, type, resolved target, external) of ``part``'s relationships."""
    name = _rels_part(part) if part else "_rels/.rels"
    if name not in zf.NameToInfo:
        return []
    out = []
    for rel in _xml(zf.read(name)).iter(P + "Relationship"):
        external = rel.get("TargetMode") == "External"
        target = rel.get("Target") if external else resolve_target(part or "_", rel.get("Target"))
        out.append((rel.get("Id"), rel.get("Type"), target, external))
    return out


def _reachable(zf: zipfile.ZipFile, starts: Sequence[str], stop: set[str] | None = None) -> set[str]:
    """Parts reachable from ``starts`` through relationships (not through ``stop``)."""
    seen: set[str] = set()
    todo = [s for s in starts if not stop or s not in stop]
    while todo:
        part = todo.pop()
        if part in seen:
            continue
        seen.add(part)
        for _, _, target, external in _rels(zf, part):
            if not external and target not in seen and (not stop or target not in stop):
                todo.append(target)
    return seen


def _inline(text: str) -> str:
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f"<is><t{space}>{escape(text)}</t></is>"


# ------------------------------------------------------------------------ the plan
class _Plan:
    """Everything decided before a byte is written: which parts go, which come, what changes."""

    def __init__(
        self,
        src: zipfile.ZipFile,
        res: zipfile.ZipFile,
        remove: set[str],
        replaces: dict[str, str],
        suffix: str,
        tails: dict[str, Tail],
    ) -> None:
        self.src, self.res, self.tails = src, res, tails
        self.new_parts: dict[str, bytes] = {}  #: rewritten or added parts
        self.types_added: dict[str, str] = {}  #: part -> content type
        self.dropped: set[str] = set()
        self._read_source(remove)
        self._read_results()
        self._check_names(remove, replaces)
        self._drop_removed(remove)
        self._drop_vba_if_needed(suffix)
        self._add_result_parts()
        self._workbook(remove, replaces)
        self._content_types(suffix)
        self._app_xml()

    # ----------------------------------------------------------------- reading
    def _read_source(self, remove: set[str]) -> None:
        src = self.src
        self.wb_part = next(t for _, kind, t, _ in _rels(src, "") if kind.endswith("/officeDocument"))
        self.wb = _xml(src.read(self.wb_part))
        self.wb_rels = _rels(src, self.wb_part)
        targets = {rid: t for rid, _, t, _ in self.wb_rels}
        self.source_sheets = [(s.get("name"), s, targets.get(s.get(R + "id"), "")) for s in self.wb.iter(M + "sheet")]
        missing = remove - {n for n, _, _ in self.source_sheets}
        if missing:
            raise GraftError(f"sheets to remove are not in the workbook: {', '.join(sorted(missing))}")

    def _read_results(self) -> None:
        res = self.res
        wb_part = next(t for _, kind, t, _ in _rels(res, "") if kind.endswith("/officeDocument"))
        self.res_wb = _xml(res.read(wb_part))
        targets = {rid: t for rid, _, t, _ in _rels(res, wb_part)}
        self.result_sheets = [(s.get("name"), targets[s.get(R + "id")]) for s in self.res_wb.iter(M + "sheet")]
        self.res_types = self._types(res)
        strings_part = next((t for _, kind, t, _ in _rels(res, wb_part) if kind.endswith("/sharedStrings")), None)
        self.res_strings: list[str] = []
        if strings_part and strings_part in res.NameToInfo:
            from dmplan.addin.xlsx_read import MAIN, _text_content

            self.res_strings = [_text_content(si) for si in _xml(res.read(strings_part)).iter(MAIN + "si")]
        styles_part = next((t for _, kind, t, _ in _rels(res, wb_part) if kind.endswith("/styles")), None)
        self.res_styles = _xml(res.read(styles_part)) if styles_part else None

    @staticmethod
    def _types(zf: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
        root = _xml(zf.read("[Content_Types].xml"))
        defaults = {d.get("Extension").lower(): d.get("ContentType") for d in root.iter(CT + "Default")}
        overrides = {o.get("PartName").lstrip("/"): o.get("ContentType") for o in root.iter(CT + "Override")}
        return defaults, overrides

    def _check_names(self, remove: set[str], replaces: dict[str, str]) -> None:
        kept = {n.lower() for n, _, _ in self.source_sheets if n not in remove}
        clash = [n for n, _ in self.result_sheets if n.lower() in kept]
        if clash:
            raise GraftError(
                f"result sheet {clash[0]!r} would replace a sheet that is not being removed; "
                "remove it or give the result another name."
            )
        for new, old in replaces.items():
            if old not in remove:
                raise GraftError(f"result sheet {new!r} replaces {old!r}, which is not being removed.")

    # ---------------------------------------------------------------- removing
    def _drop_removed(self, remove: set[str]) -> None:
        removed_parts = {part for name, _, part in self.source_sheets if name in remove}
        kept_roots = [t for _, _, t, ext in _rels(self.src, "") if not ext]
        still = _reachable(self.src, kept_roots, stop=removed_parts)
        gone = _reachable(self.src, sorted(removed_parts)) - still
        gone |= {_rels_part(p) for p in gone if _rels_part(p) in self.src.NameToInfo}
        gone |= {t for _, kind, t, _ in self.wb_rels if kind == CALC_CHAIN_REL}
        self.dropped |= gone

    def _drop_vba_if_needed(self, suffix: str) -> None:
        if suffix in MACRO_SUFFIXES:
            return
        vba = {t for _, kind, t, _ in self.wb_rels if kind == VBA_REL}
        if vba:
            self.dropped |= _reachable(self.src, sorted(vba))
            self.dropped |= {_rels_part(p) for p in set(self.dropped) if _rels_part(p) in self.src.NameToInfo}

    # ------------------------------------------------------------------ adding
    def _add_result_parts(self) -> None:
        """Copy each result sheet's tree under fresh part names, its styles remapped."""
        res = self.res
        used = set(self.src.NameToInfo) - self.dropped
        counters: dict[tuple[str, str, str], int] = {}
        for name in used:
            found = NUMBERED.match(name)
            if found:
                key = (found.group(1), found.group(2), found.group(4))
                counters[key] = max(counters.get(key, 0), int(found.group(3)))
        rename: dict[str, str] = {}
        tree = _reachable(res, [part for _, part in self.result_sheets])
        for part in sorted(tree, key=lambda p: (p.count("/"), p)):
            found = NUMBERED.match(part)
            if not found:
                new = part
                while new in used:  # e.g. a media file: prefix until free
                    folder, base = new.rsplit("/", 1)
                    new = f"{folder}/dmplan_{base}"
            else:
                key = (found.group(1), found.group(2), found.group(4))
                counters[key] = counters.get(key, 0) + 1
                new = f"{key[0]}{key[1]}{counters[key]}{key[2]}"
            rename[part] = new
            used.add(new)
        self.sheet_parts = {name: rename[part] for name, part in self.result_sheets}
        for part in tree:
            if part.startswith("xl/worksheets/") and b"dxfId=" in res.read(part):
                raise GraftError(  # differential formats (dxfs) are not merged: refuse rather than restyle
                    "a result sheet uses conditional formats; write it with the openpyxl path."
                )
        style_map = self._merge_styles()
        table_ids, table_names = self._table_ids_and_names()
        self.report = GraftReport([])
        defaults, overrides = self.res_types
        sheet_of_part = {part: name for name, part in self.result_sheets}
        for old, new in rename.items():
            data = res.read(old)
            if old.startswith("xl/worksheets/"):
                data = self._sheet_xml(data, style_map, self.tails.get(sheet_of_part.get(old, "")))
            elif old.startswith("xl/tables/"):
                data = self._table_xml(old, data, table_ids, table_names)
            self.new_parts[new] = data
            kind = overrides.get(old) or defaults.get(old.rsplit(".", 1)[-1].lower())
            if kind:
                self.types_added[new] = kind
            rels_old = _rels_part(old)
            if rels_old in res.NameToInfo:
                self.new_parts[_rels_part(new)] = self._rels_xml(res.read(rels_old), old, new, rename)

    def _rels_xml(self, data: bytes, old: str, new: str, rename: dict[str, str]) -> bytes:
        root = _xml(data)
        for rel in root.iter(P + "Relationship"):
            if rel.get("TargetMode") == "External":
                continue
            target = resolve_target(old, rel.get("Target"))
            rel.set("Target", _relative(new, rename.get(target, target)))
        return _dump(root)

    def _sheet_xml(self, data: bytes, style_map: dict[int, int], tail: Tail | None) -> bytes:
        text = data.decode("utf-8")
        text = STYLE_ATTR.sub(lambda m: f"{m.group(1)}{style_map.get(int(m.group(2)), 0)}{m.group(3)}", text)
        text = COL_STYLE.sub(lambda m: f"{m.group(1)}{style_map.get(int(m.group(2)), 0)}{m.group(3)}", text)
        if self.res_strings:
            strings = self.res_strings
            text = SHARED_CELL.sub(
                lambda m: f'<c{m.group(1)}t="inlineStr"{m.group(2)}>{_inline(strings[int(m.group(3))])}</c>', text
            )
        # one selected tab: a second one would group the sheets, and edits would go to both
        head_end = text.find("<sheetData")
        head = re.sub(r'\s+tabSelected="(?:1|true)"', "", text[:head_end])
        text = head + text[head_end:]
        if tail is not None:
            end = text.rfind("</sheetData>")
            if end < 0:  # an empty <sheetData/>
                text = text.replace("<sheetData/>", "<sheetData></sheetData>", 1)
                end = text.rfind("</sheetData>")
            text = "".join([text[:end], *tail(text), text[end:]])
        return text.encode("utf-8")

    def _table_ids_and_names(self) -> tuple[dict[str, int], dict[str, str]]:
        """New ids and names for the result tables, unique against the source's kept tables."""
        ids, names = set(), set()
        for part in self.src.NameToInfo:
            if part.startswith("xl/tables/") and part.endswith(".xml") and part not in self.dropped:
                root = _xml(self.src.read(part))
                ids.add(int(root.get("id", 0)))
                names |= {root.get("name", "").lower(), root.get("displayName", "").lower()}
        new_ids, new_names = {}, {}
        next_id = max(ids, default=0)
        for part in sorted(self.res.NameToInfo):
            if not (part.startswith("xl/tables/") and part.endswith(".xml")):
                continue
            root = _xml(self.res.read(part))
            next_id += 1
            new_ids[part] = next_id
            name = root.get("displayName") or root.get("name")
            chosen, n = name, 1
            while chosen.lower() in names:
                n += 1
                chosen = f"{name}_{n}"
            names.add(chosen.lower())
            new_names[name] = chosen
        return new_ids, new_names

    def _table_xml(self, part: str, data: bytes, ids: dict[str, int], names: dict[str, str]) -> bytes:
        root = _xml(data)
        root.set("id", str(ids[part]))
        name = root.get("displayName") or root.get("name")
        if names.get(name, name) != name:
            self.report.renamed_tables[name] = names[name]
        root.set("name", names.get(name, name))
        root.set("displayName", names.get(name, name))
        return _dump(root)

    def _merge_styles(self) -> dict[int, int]:
        """Append the result book's number formats, fonts, fills, borders and cell formats to
        the source's styles; returns result cellXfs index -> index in the merged styles."""
        if self.res_styles is None:
            return {}
        styles_part = next(t for _, kind, t, _ in self.wb_rels if kind.endswith("/styles"))
        src = _xml(self.src.read(styles_part))
        res = self.res_styles

        def section(root: Any, tag: str, create_before: tuple[str, ...] = ()) -> Any:
            found = root.find(M + tag)
            if found is None:
                found = etree.Element(M + tag)
                anchor = next((root.find(M + t) for t in create_before if root.find(M + t) is not None), None)
                if anchor is not None:
                    anchor.addprevious(found)
                else:
                    root.append(found)
            return found

        order = ("numFmts", "fonts", "fills", "borders", "cellStyleXfs", "cellXfs", "cellStyles", "dxfs")
        fmt_map: dict[int, int] = {}
        res_fmts = res.find(M + "numFmts")
        if res_fmts is not None and len(res_fmts):
            src_fmts = section(src, "numFmts", order[1:])
            by_code = {f.get("formatCode"): int(f.get("numFmtId")) for f in src_fmts}
            next_id = max([163, *by_code.values()])
            for fmt in res_fmts:
                code = fmt.get("formatCode")
                if code not in by_code:
                    next_id += 1
                    by_code[code] = next_id
                    new = copy.deepcopy(fmt)
                    new.set("numFmtId", str(next_id))
                    src_fmts.append(new)
                fmt_map[int(fmt.get("numFmtId"))] = by_code[code]
            src_fmts.set("count", str(len(src_fmts)))
        offsets = {}
        for tag, child in (("fonts", "font"), ("fills", "fill"), ("borders", "border")):
            target = section(src, tag, order[order.index(tag) + 1 :])
            offsets[child] = len(target)
            for item in res.find(M + tag) if res.find(M + tag) is not None else ():
                target.append(copy.deepcopy(item))
            target.set("count", str(len(target)))
        xfs = section(src, "cellXfs", order[6:])
        base = len(xfs)
        mapping = {}
        res_xfs = res.find(M + "cellXfs")
        for i, xf in enumerate(res_xfs if res_xfs is not None else ()):
            new = copy.deepcopy(xf)
            fmt = int(new.get("numFmtId", 0))
            new.set("numFmtId", str(fmt_map.get(fmt, fmt)))
            for attr, kind in (("fontId", "font"), ("fillId", "fill"), ("borderId", "border")):
                new.set(attr, str(int(new.get(attr, 0)) + offsets[kind]))
            new.set("xfId", "0")  # the source's Normal style
            xfs.append(new)
            mapping[i] = base + i
        xfs.set("count", str(len(xfs)))
        self.new_parts[styles_part] = _dump(src)
        return mapping

    # ---------------------------------------------------------------- workbook
    def _workbook(self, remove: set[str], replaces: dict[str, str]) -> None:
        wb, report = self.wb, self.report
        sheets_el = wb.find(M + "sheets")
        old_order = [name for name, _, _ in self.source_sheets]
        rels_root = _xml(self.src.read(_rels_part(self.wb_part)))
        used_rids = {rel.get("Id") for rel in rels_root}
        for rel in list(rels_root):
            target = resolve_target(self.wb_part, rel.get("Target")) if rel.get("TargetMode") != "External" else ""
            if target in self.dropped:
                rels_root.remove(rel)
        next_sheet_id = max(int(s.get("sheetId")) for _, s, _ in self.source_sheets) if self.source_sheets else 0
        new_elements = {}
        n = 0
        for name, _ in self.result_sheets:
            n += 1
            rid = f"rId{n}"
            while rid in used_rids:
                n += 1
                rid = f"rId{n}"
            used_rids.add(rid)
            next_sheet_id += 1
            el = etree.Element(M + "sheet", nsmap={"r": REL_NS})
            el.set("name", name)
            el.set("sheetId", str(next_sheet_id))
            state = next(s.get("state") for s in self.res_wb.iter(M + "sheet") if s.get("name") == name)
            if state and state != "visible":
                el.set("state", state)
            el.set(R + "id", rid)
            new_elements[name] = el
            rel = etree.SubElement(rels_root, P + "Relationship")
            rel.set("Id", rid)
            rel.set("Type", WORKSHEET_REL)
            rel.set("Target", _relative(self.wb_part, self.sheet_parts[name]))
        # the tab order: kept sheets, result sheets at the place of the sheet they replace, the rest last
        by_old = {old: new for new, old in replaces.items()}
        final: list[tuple[str, Any, int | None]] = []  # (name, element, old index)
        for i, (name, el, _) in enumerate(self.source_sheets):
            if name in remove:
                if name in by_old:
                    final.append((by_old[name], new_elements.pop(by_old[name]), None))
            else:
                final.append((name, el, i))
        final += [(name, el, None) for name, el in new_elements.items()]
        for el in list(sheets_el):
            sheets_el.remove(el)
        for _, el, _ in final:
            sheets_el.append(el)
        report.sheets = [name for name, _, _ in final]
        new_index = {old: i for i, (_, _, old) in enumerate(final) if old is not None}
        result_index = {name: i for i, (name, _, _) in enumerate(final)}
        self._defined_names(remove, old_order, new_index, result_index)
        self._views(old_order, new_index, len(final))
        calc = wb.find(M + "calcPr")
        if calc is None:
            calc = etree.Element(M + "calcPr")
            anchor = next(
                (
                    wb.find(M + t)
                    for t in (
                        "oleSize",
                        "customWorkbookViews",
                        "pivotCaches",
                        "smartTagPr",
                        "smartTagTypes",
                        "webPublishing",
                        "fileRecoveryPr",
                        "webPublishObjects",
                        "extLst",
                    )
                    if wb.find(M + t) is not None
                ),
                None,
            )
            if anchor is not None:
                anchor.addprevious(calc)
            else:
                wb.append(calc)
        calc.set("fullCalcOnLoad", "1")  # the result formulas carry no cached values
        self.new_parts[self.wb_part] = _dump(wb)
        self.new_parts[_rels_part(self.wb_part)] = _dump(rels_root)

    def _defined_names(
        self, remove: set[str], old_order: list[str], new_index: dict[int, int], result_index: dict[str, int]
    ) -> None:
        wb = self.wb
        names_el = wb.find(M + "definedNames")
        # a global name pointing into a removed sheet goes, unless a new sheet takes that sheet's name
        # (a user's name on a result cell then points at the new result, as it would in Excel)
        reused = {name.lower() for name, _ in self.result_sheets}
        gone = [n for n in remove if n.lower() not in reused]
        quoted = [re.compile(rf"(?:^|[^A-Za-z0-9_.])'?{re.escape(n)}'?!", re.IGNORECASE) for n in gone]
        if names_el is not None:
            for dn in list(names_el):
                local = dn.get("localSheetId")
                if local is not None:
                    index = new_index.get(int(local))
                    if index is None:  # scoped to a removed sheet
                        names_el.remove(dn)
                        continue
                    dn.set("localSheetId", str(index))
                elif any(p.search(dn.text or "") for p in quoted):
                    names_el.remove(dn)  # a global name pointing into a removed sheet
        res_names = self.res_wb.find(M + "definedNames")
        res_order = [name for name, _ in self.result_sheets]
        if res_names is None or not len(res_names):
            return
        if names_el is None:
            names_el = etree.Element(M + "definedNames")
            anchor = wb.find(M + "calcPr")
            if anchor is not None:
                anchor.addprevious(names_el)
            else:
                wb.find(M + "sheets").addnext(names_el)
        for dn in res_names:
            new = copy.deepcopy(dn)
            local = dn.get("localSheetId")
            if local is not None:
                new.set("localSheetId", str(result_index[res_order[int(local)]]))
            for existing in list(names_el):
                if existing.get("name", "").lower() == new.get("name", "").lower() and existing.get(
                    "localSheetId"
                ) == new.get("localSheetId"):
                    names_el.remove(existing)
            names_el.append(new)
        # Excel wants defined names sorted by name (it repairs otherwise); keep a stable order
        ordered = sorted(names_el, key=lambda d: (d.get("name", "").lower(), int(d.get("localSheetId", -1))))
        for dn in list(names_el):
            names_el.remove(dn)
        for dn in ordered:
            names_el.append(dn)

    def _views(self, old_order: list[str], new_index: dict[int, int], count: int) -> None:
        views = self.wb.find(M + "bookViews")
        for view in views if views is not None else ():
            for attr in ("activeTab", "firstSheet"):
                value = view.get(attr)
                if value is not None:
                    view.set(attr, str(min(new_index.get(int(value), 0), max(0, count - 1))))

    # ---------------------------------------------------------- content types
    def _content_types(self, suffix: str) -> None:
        root = _xml(self.src.read("[Content_Types].xml"))
        for override in list(root.iter(CT + "Override")):
            part = override.get("PartName").lstrip("/")
            if part in self.dropped:
                root.remove(override)
            elif part == self.wb_part and suffix in MAIN_TYPES:
                override.set("ContentType", MAIN_TYPES[suffix])
        defaults = {d.get("Extension").lower() for d in root.iter(CT + "Default")}
        res_defaults = self.res_types[0]
        for part, kind in self.types_added.items():
            ext = part.rsplit(".", 1)[-1].lower()
            if res_defaults.get(ext) == kind and ext in defaults:
                continue
            if res_defaults.get(ext) == kind and ext not in ("xml",):
                el = etree.Element(CT + "Default")
                el.set("Extension", ext)
                el.set("ContentType", kind)
                root.insert(0, el)
                defaults.add(ext)
                continue
            el = etree.SubElement(root, CT + "Override")
            el.set("PartName", "/" + part)
            el.set("ContentType", kind)
        self.new_parts["[Content_Types].xml"] = _dump(root)

    def _app_xml(self) -> None:
        """docProps/app.xml: the worksheet titles and their count follow the new tab order."""
        part = "docProps/app.xml"
        if part not in self.src.NameToInfo:
            return
        root = _xml(self.src.read(part))
        ep, vt = f"{{{EP_NS}}}", f"{{{VT_NS}}}"
        pairs = root.find(f"{ep}HeadingPairs/{vt}vector")
        titles = root.find(f"{ep}TitlesOfParts/{vt}vector")
        if pairs is None or titles is None:
            return
        variants = list(pairs)
        groups = []  # (label element, count element)
        for i in range(0, len(variants) - 1, 2):
            groups.append((variants[i].find(f"{vt}lpstr"), variants[i + 1].find(f"{vt}i4")))
        items = list(titles)
        old_names = [name for name, _, _ in self.source_sheets]
        start = 0
        for label, count in groups:
            if label is None or count is None:
                return
            n = int(count.text or 0)
            texts = [it.text for it in items[start : start + n]]
            if texts == old_names:
                for it in items[start : start + n]:
                    titles.remove(it)
                anchor = items[start + n] if start + n < len(items) else None
                for name in self.report.sheets:
                    el = etree.Element(vt + "lpstr")
                    el.text = name
                    if anchor is not None:
                        anchor.addprevious(el)
                    else:
                        titles.append(el)
                count.text = str(len(self.report.sheets))
                titles.set("size", str(len(titles)))
                self.new_parts[part] = _dump(root)
                return
            start += n

    # ------------------------------------------------------------------ writing
    def write(self, raw: Any, out: zipfile.ZipFile, progress: ProgressBytes | None) -> None:
        order = ["[Content_Types].xml"]
        order += [i.filename for i in self.src.infolist() if i.filename != "[Content_Types].xml"]
        copied = 0
        for name in order:
            if name in self.new_parts:
                out.writestr(name, self.new_parts.pop(name))
            elif name in self.dropped or name.endswith("/"):
                continue
            else:
                _copy_raw(raw, self.src.getinfo(name), out)
                copied += 1
        if progress:
            progress("writing the result sheets")
        for name, data in self.new_parts.items():
            out.writestr(name, data, compresslevel=1 if len(data) > FAST_LEVEL_BYTES else None)
        self.report.copied_parts = copied
        self.report.dropped_parts = sorted(self.dropped)


def _copy_raw(raw: Any, info: zipfile.ZipInfo, out: zipfile.ZipFile) -> None:
    """Copy a member's compressed bytes as they are: the part is byte-identical and nothing is
    inflated or deflated again (a 40 MB sheet costs a read and a write)."""
    if info.flag_bits & 0x01:
        raise GraftError(f"part {info.filename} is encrypted.")
    raw.seek(info.header_offset)
    header = raw.read(30)
    if header[:4] != b"PK\x03\x04":
        raise GraftError(f"part {info.filename}: broken zip entry.")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    raw.seek(info.header_offset + 30 + name_len + extra_len)
    data = raw.read(info.compress_size)
    new = copy.copy(info)
    new.flag_bits &= ~0x08  # sizes go into the local header: no data descriptor follows
    new.extra = b""  # zip64 extras are rebuilt by FileHeader when needed
    fp = out.fp
    assert fp is not None
    new.header_offset = fp.tell()
    fp.write(new.FileHeader())
    fp.write(data)
    out.filelist.append(new)
    out.NameToInfo[new.filename] = new
    out.start_dir = fp.tell()
