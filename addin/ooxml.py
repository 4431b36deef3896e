"""Package-level OOXML helpers: the parts of a workbook zip, sheet parts, and legacy (VML) drawings.

openpyxl drops form controls (legacy VML buttons, such as the run button of the macro templates)
of the files it rewrites. :func:`form_buttons` reads them before a save and :func:`restore_buttons`
puts them back on the same sheets afterwards; :mod:`build.build_addin` uses the same helpers to
add the button in the first place.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
VML_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.vmlDrawing"
VML_REL_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/vmlDrawing"
BUTTON_MARK = 'ObjectType="Button"'


def read_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info.filename) for info in zf.infolist() if not info.is_dir()}


def write_parts(path: Path, parts: dict[str, bytes]) -> None:
    """Write ``parts`` as a zip at ``path`` ([Content_Types].xml first)."""
    order = ["[Content_Types].xml"] + [n for n in parts if n != "[Content_Types].xml"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in order:
            zf.writestr(name, parts[name])


def rels_add(rels: str, rel_type: str, target: str) -> tuple[str, str]:
    used = {int(n) for n in re.findall(r'Id="rId(\d+)"', rels)}
    rid = f"rId{max(used, default=0) + 1}"
    rel = f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"/>'
    if "</Relationships>" in rels:
        return rels.replace("</Relationships>", rel + "</Relationships>"), rid
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{REL_NS}">{rel}</Relationships>',
        rid,
    )


def sheet_parts(parts: dict[str, bytes]) -> list[tuple[str, str]]:
    """(sheet name, part path) of the workbook's worksheets, in tab order."""
    workbook = parts["xl/workbook.xml"].decode("utf-8")
    rels = parts["xl/_rels/workbook.xml.rels"].decode("utf-8")
    targets = {}
    for rel in re.findall(r"<Relationship\b[^>]*/>", rels):
        rid = re.search(r'Id="([^"]+)"', rel)
        target = re.search(r'Target="([^"]+)"', rel)
        if rid and target:
            path = target.group(1)
            targets[rid.group(1)] = path.lstrip("/") if path.startswith("/") else "xl/" + path
    out = []
    for sheet in re.findall(r"<sheet\b[^>]*/>", workbook):
        name = re.search(r'name="([^"]+)"', sheet)
        rid = re.search(r'r:id="([^"]+)"', sheet)
        if name and rid and rid.group(1) in targets:
            out.append((name.group(1), targets[rid.group(1)]))
    return out


def attach_vml(parts: dict[str, bytes], sheet_part: str, vml: bytes) -> bool:
    """Attach the legacy drawing ``vml`` to ``sheet_part`` unless the sheet already has one; True when attached."""
    sheet = parts[sheet_part].decode("utf-8")
    if "<legacyDrawing" in sheet:
        return False
    n = 1
    while f"xl/drawings/vmlDrawingDMPlan{n}.vml" in parts:
        n += 1
    vml_part = f"xl/drawings/vmlDrawingDMPlan{n}.vml"
    parts[vml_part] = vml
    folder, name = sheet_part.rsplit("/", 1)
    rels_part = f"{folder}/_rels/{name}.rels"
    rels = parts[rels_part].decode("utf-8") if rels_part in parts else ""
    rels, rid = rels_add(rels, VML_REL_TYPE, f"../drawings/{vml_part.rsplit('/', 1)[1]}")
    parts[rels_part] = rels.encode("utf-8")
    if 'xmlns:r="' not in sheet[: sheet.find(">", sheet.find("<worksheet"))]:
        sheet = sheet.replace(
            "<worksheet ",
            '<worksheet xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" ',
            1,
        )
    element = f'<legacyDrawing r:id="{rid}"/>'
    # CT_Worksheet order: ... legacyDrawing, legacyDrawingHF, picture, oleObjects, controls, ..., tableParts, extLst
    for follower in (
        "<legacyDrawingHF",
        "<picture",
        "<oleObjects",
        "<controls",
        "<webPublishItems",
        "<tableParts",
        "<extLst",
    ):
        at = sheet.find(follower)
        if at >= 0:
            sheet = sheet[:at] + element + sheet[at:]
            break
    else:
        sheet = sheet.replace("</worksheet>", element + "</worksheet>")
    parts[sheet_part] = sheet.encode("utf-8")
    types = parts["[Content_Types].xml"].decode("utf-8")
    if 'Extension="vml"' not in types:
        types = types.replace("</Types>", f'<Default Extension="vml" ContentType="{VML_CONTENT_TYPE}"/></Types>')
        parts["[Content_Types].xml"] = types.encode("utf-8")
    return True


def _legacy_target(parts: dict[str, bytes], sheet_part: str) -> str | None:
    """The part path the sheet's ``<legacyDrawing>`` points to (it may be missing from ``parts``)."""
    sheet = parts[sheet_part].decode("utf-8")
    match = re.search(r'<legacyDrawing\b[^>]*r:id="([^"]+)"', sheet)
    if not match:
        return None
    folder, name = sheet_part.rsplit("/", 1)
    rels = parts.get(f"{folder}/_rels/{name}.rels", b"").decode("utf-8")
    rel = next((r for r in re.findall(r"<Relationship\b[^>]*/>", rels) if f'Id="{match.group(1)}"' in r), None)
    target = re.search(r'Target="([^"]+)"', rel) if rel else None
    if target is None:
        return None
    path = target.group(1)
    part = path.lstrip("/") if path.startswith("/") else f"{folder}/{path}"
    while "/../" in part:
        part = re.sub(r"[^/]+/\.\./", "", part, count=1)
    return part


def _legacy_drawing(parts: dict[str, bytes], sheet_part: str) -> bytes | None:
    target = _legacy_target(parts, sheet_part)
    return None if target is None else parts.get(target)


def _ensure_vml_type(parts: dict[str, bytes]) -> None:
    types = parts["[Content_Types].xml"].decode("utf-8")
    if 'Extension="vml"' not in types:
        types = types.replace("</Types>", f'<Default Extension="vml" ContentType="{VML_CONTENT_TYPE}"/></Types>')
        parts["[Content_Types].xml"] = types.encode("utf-8")


def form_buttons(path: Path) -> dict[str, bytes]:
    """Sheet name -> its legacy drawing, for sheets whose drawing holds form buttons."""
    try:
        parts = read_parts(path)
        sheets = sheet_parts(parts)
    except (zipfile.BadZipFile, KeyError):
        return {}
    found = {}
    for name, part in sheets:
        if part not in parts:
            continue
        vml = _legacy_drawing(parts, part)
        if vml is not None and BUTTON_MARK.encode() in vml:
            found[name] = vml
    return found


def restore_buttons(path: Path, buttons: dict[str, bytes]) -> list[str]:
    """Re-attach ``buttons`` (from :func:`form_buttons`) to the sheets of the same name in ``path``.

    openpyxl keeps a sheet's ``<legacyDrawing>`` reference but drops the VML part it points to: the
    drawing is written back there. A sheet without the reference gets the drawing attached anew. A
    sheet whose reference now points to another drawing (cell comments) keeps it, unrestored.
    """
    if not buttons:
        return []
    parts = read_parts(path)
    restored = []
    for name, part in sheet_parts(parts):
        if name not in buttons or part not in parts:
            continue
        target = _legacy_target(parts, part)
        if target is not None and target not in parts:
            parts[target] = buttons[name]
            _ensure_vml_type(parts)
            restored.append(name)
        elif target is None and attach_vml(parts, part, buttons[name]):
            restored.append(name)
    if restored:
        write_parts(path, parts)
    return restored
