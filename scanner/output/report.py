"""``vscan report``: result records in, one self-contained HTML page out.

The page has no network references (inline CSS, JS and SVG): a sortable
table of files by their full paths, highest risk first (click a header, or
open the page with ``#sort=<column>:<asc|desc>``; the ``#`` column numbers
the rows 1..N top to bottom in every order, ties keep the risk order in
both directions), and per video a timeline of detector scores per sampled
frame with the bank-matched spans (``query_span_seconds``) shaded; a still
image gets a still's view instead (its size, its matches and its detector
scores: an image has no timeline). It shows no frame images unless asked (``thumbnails=True``): then a
few frames per file are decoded again from the recorded paths, shrunk and
blurred beyond recognition, and embedded as data URIs.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any, Iterable

from vscan.inputs.paths import record_raw_path
from vscan.output.read import read_records  # re-exported: vscan report reads every sink kind

__all__ = ["read_records", "render_report", "write_report", "blurred_thumbnails", "matched_stretch", "record_counts"]

_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_SVG_W, _SVG_H, _PAD = 640, 90, 28
_THUMB_SIDE = 48  # pixels on the long side before blurring: nothing recognisable survives
_THUMB_BLUR = 4.0


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt_risk(risk: float | None) -> str:
    return "–" if risk is None else f"{risk:.2f}"


def _risk_class(risk: float | None) -> str:
    if risk is None:
        return "err"
    return "high" if risk >= 0.7 else "mid" if risk >= 0.3 else "low"


def matched_stretch(match: dict[str, Any], duration_seconds: float | None) -> tuple[float, float] | None:
    """The stretch of the file a match covers, as ``matched_seconds`` counts it.

    ``query_span_seconds`` holds the first and last matched samples'
    timestamps, while ``matched_seconds`` counts each matched sample until
    the next sample (the last one until the file's end). Where the matched
    samples run without a gap the stretch is [first, first + matched_seconds]:
    the shading and the CLI then show the seconds the reason names ("6.0 s
    matched" is 0.0-6.0 s, not 0.0-5.6 s). With gaps it ends at the last
    matched sample. Never past the file's end."""
    span = match.get("query_span_seconds")
    if not span:
        return None
    start, last = float(span[0]), float(span[1])
    end = max(last, start + float(match.get("matched_seconds") or 0.0))
    if duration_seconds:
        end = min(end, max(float(duration_seconds), last))
    return start, end


def _timeline_svg(record: dict[str, Any]) -> str:
    tl = record.get("detection_timeline") or {}
    times = tl.get("timestamps_seconds") or []
    duration = record.get("duration_seconds")
    stretches = [(m, matched_stretch(m, duration)) for m in record.get("matches", [])]
    spans = [st for m, st in stretches if st and m.get("is_match", True)]
    partial = [st for m, st in stretches if st and not m.get("is_match", True)]
    end = max([record.get("duration_seconds") or 0.0, *(times or [0.0]), *(s[1] for s in spans + partial)]) or 1.0
    plot_w, plot_h = _SVG_W - 2 * _PAD, _SVG_H - 2 * 14
    x = lambda t: _PAD + plot_w * (t / end)
    y = lambda v: 14 + plot_h * (1 - max(0.0, min(1.0, v)))
    parts = [
        f'<svg class="timeline" width="{_SVG_W}" height="{_SVG_H}" viewBox="0 0 {_SVG_W} {_SVG_H}" role="img" '
        f'aria-label="timeline of {_esc(record["path"])}">',
        f'<rect x="{_PAD}" y="14" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for cls, group in (("span", spans), ("span partial", partial)):
        for a, b in group:
            parts.append(
                f'<rect class="{cls}" x="{x(a):.1f}" y="14" width="{max(2.0, x(b) - x(a)):.1f}" height="{plot_h}">'
                f"<title>matched {a:.1f}–{b:.1f} s</title></rect>"
            )
    for i, (name, values) in enumerate((tl.get("series") or {}).items()):
        colour = _COLOURS[i % len(_COLOURS)]
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values))
        parts.append(f'<polyline class="series" data-series="{_esc(name)}" points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for t, v in zip(times, values):
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"><title>{_esc(name)} {v:.2f} at {t:g} s</title></circle>')
    parts.append(f'<text x="{_PAD}" y="{_SVG_H - 2}" class="axis">0 s</text>')
    parts.append(f'<text x="{_SVG_W - _PAD}" y="{_SVG_H - 2}" class="axis" text-anchor="end">{end:.1f} s</text>')
    parts.append(f'<text x="2" y="18" class="axis">1</text><text x="2" y="{_SVG_H - 14}" class="axis">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _is_still(record: dict[str, Any]) -> bool:
    return (record.get("media") or {}).get("kind") == "image"


def _still_view(record: dict[str, Any]) -> str:
    """A still image's evidence: size, matches, detector scores (no time axis)."""
    media = record.get("media") or {}
    items = [f"still image, {media.get('width')}×{media.get('height')} px"]
    for m in record.get("matches") or []:
        how = "match" if m.get("is_match") else "partial match"
        distance = "" if m.get("distance_min") is None else f", distance {m['distance_min']}"
        items.append(f"{m['kind']} {how} with {_esc(m['bank_entry_id'])}{distance}")
    for name, values in ((record.get("detection_timeline") or {}).get("series") or {}).items():
        items.append(f"{_esc(name)} score {max(values, default=0.0):.2f}")
    return '<ul class="still">' + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _legend(record: dict[str, Any]) -> str:
    series = list(((record.get("detection_timeline") or {}).get("series") or {}))
    items = [f'<span class="key" style="border-color:{_COLOURS[i % len(_COLOURS)]}">{_esc(n)}</span>' for i, n in enumerate(series)]
    if any(m.get("query_span_seconds") for m in record.get("matches", [])):
        items.append('<span class="key spankey">matched span</span>')
    return " ".join(items) or '<span class="muted">no detector scores or matched spans</span>'


def blurred_thumbnails(path: str, *, count: int = 3) -> list[str]:
    """Up to ``count`` frames of ``path`` spread over its duration, each
    shrunk to ``_THUMB_SIDE`` px and Gaussian-blurred, as JPEG data URIs.
    A file that cannot be decoded gives none."""
    from PIL import Image, ImageFilter

    from vscan.decode import FixedRate, open_decoder

    try:
        decoder = open_decoder(path)
        meta = decoder.probe(path)
        rate = count / max(float(meta.duration_seconds or 1.0), 1e-3)
        frames = []
        for batch in decoder.iter_frames(path, FixedRate(rate), batch_size=count, max_side=_THUMB_SIDE * 4):
            frames.extend(batch.rgb[: count - len(frames)])
            if len(frames) >= count:
                break
    except Exception:  # the report never fails on a file; the table says what the scan found
        return []
    out = []
    for rgb in frames:
        img = Image.fromarray(rgb)
        img.thumbnail((_THUMB_SIDE, _THUMB_SIDE), Image.Resampling.BILINEAR)
        img = img.filter(ImageFilter.GaussianBlur(_THUMB_BLUR))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=60)
        out.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def _best_detection(record: dict[str, Any]) -> tuple[float, str]:
    """The strongest detection: the highest score of any model and label, faces included
    (what the risk makes of a face is the risk column's business, vscan.verdict.risk)."""
    best = max(record.get("detections") or [], key=lambda d: d["max_score"], default=None)
    if best is None:
        return -1.0, ""
    return best["max_score"], f'{best["model"]}/{best["label"]} {best["max_score"]:.2f}'


def _faces(record: dict[str, Any]) -> str:
    """Triage's per-face scores of face-crop models (vscan.detect.triage): text only, never the face."""
    faces = (record.get("detection_timeline") or {}).get("faces") or []
    if not faces:
        return ""
    items = "".join(f'<li>{_esc(f["model"])} {f["score"]:.2f} at {f["timestamp_seconds"]:.1f} s, box {_esc(f["box"])}</li>' for f in faces[:8])
    return f"<ul class='faces'>{items}</ul>"


def _best_match(record: dict[str, Any]) -> str:
    matches = [m for m in record.get("matches") or [] if m.get("is_match")]
    if not matches:
        return ""
    m = matches[0]
    if _is_still(record):
        return f'{m["bank_entry_id"]} ({m["kind"]}, still image)'
    return f'{m["bank_entry_id"]} ({m["kind"]}, {m.get("matched_seconds", 0):.1f} s)'


def record_counts(records: list[dict[str, Any]]) -> str:
    """Scanned / skipped (why) / errors / matched over the records, as vscan scan counts them."""
    from vscan.runtime.summary import ScanSummary

    summary = ScanSummary()
    for record in records:
        summary.add(record)
    return summary.counts_text(error_kinds=False)  # (records hold no file an earlier run recorded: no "already recorded")


def _floods(floods: list[dict[str, Any]]) -> str:
    """The manifest's match floods (vscan.verdict.allow.FloodCounter): entries that matched an unusual share of a run's files."""
    if not floods:
        return ""
    rows = "".join(
        f"<tr><td>{_esc(f['bank_entry_id'])}</td><td>{_esc(f.get('label') or '')}</td><td>{int(f['files'])}</td>"
        f"<td>{100 * float(f['share']):.1f}%</td><td>{_esc(f.get('started') or '')} {_esc(f.get('run_id') or '')}</td></tr>"
        for f in floods
    )
    return ('<section id="floods"><h2>Match floods</h2><p>These bank entries matched an unusual share of a run\'s files '
            "(a common intro, a logo, a bad list entry?). Check them; an entry cleared can go in an allow bank (--allow).</p>"
            "<table class='floods'><thead><tr><th>bank entry</th><th>label</th><th>files</th><th>share of the run</th><th>run</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>")  # fmt: skip


def render_report(records: Iterable[dict[str, Any]], *, thumbnails: bool = False, title: str = "vscan report",
                  floods: list[dict[str, Any]] | None = None) -> str:  # fmt: skip
    """The HTML page for ``records`` (one row per file, highest risk first); ``floods``: the
    runs' match floods (vscan.output.read.read_floods), listed, and named where a file matched one."""
    flooded = {f["bank_entry_id"]: f for f in floods or ()}
    records = sorted(records, key=lambda r: (r.get("risk") is None, -(r.get("risk") or 0.0), r["path"]))
    rows, sections = [], []
    for i, r in enumerate(records):
        name = r["path"]
        risk = r.get("risk")
        still = _is_still(r)
        seconds = "still" if still else f"{r.get('duration_seconds') or 0:.1f}"
        det_score, det_text = _best_detection(r)
        error = (r.get("error") or {}).get("type", "")
        rows.append(
            f'<tr id="row-{i}" class="{_risk_class(risk)}" data-path="{_esc(r["path"])}">'
            f'<td data-v="{i}">{i + 1}</td>'
            f'<td data-v="{_esc(name.lower())}"><a href="#file-{i}">{_esc(name)}</a></td>'
            f'<td class="risk" data-v="{-1 if risk is None else risk}">{_fmt_risk(risk)}</td>'
            f'<td data-v="{_esc(r.get("status", ""))}">{_esc(r.get("status", ""))}{(" " + _esc(error)) if error else ""}</td>'
            f'<td data-v="{_esc(_best_match(r))}">{_esc(_best_match(r))}</td>'
            f'<td data-v="{det_score}">{_esc(det_text)}</td>'
            f'<td data-v="{r.get("duration_seconds") or 0}">{seconds}</td>'
            "</tr>"
        )
        thumbs = ""
        if thumbnails and r.get("status") == "ok":
            uris = blurred_thumbnails(record_raw_path(r))  # the raw name opens the file (vscan.inputs.paths)
            thumbs = '<div class="thumbs">' + "".join(f'<img class="thumb" alt="blurred frame" src="{u}">' for u in uris) + "</div>"
        reasons = "".join(f"<li>{_esc(x)}</li>" for x in r.get("reasons") or [])
        for entry in sorted({m["bank_entry_id"] for m in r.get("matches") or () if m.get("is_match") and m["bank_entry_id"] in flooded}):
            f = flooded[entry]
            reasons += f"<li class='flood'>{_esc(entry)} is a match flood: it matched {int(f['files'])} files ({100 * float(f['share']):.1f}%) of a run</li>"
        reasons = reasons or "<li class='muted'>none</li>"
        sections.append(
            f'<section class="file" id="file-{i}"><h3><span class="badge {_risk_class(risk)}">{_fmt_risk(risk)}</span> {_esc(r["path"])}</h3>'
            f"<ul class='reasons'>{reasons}</ul>"
            + (_still_view(r) if still else f"{_timeline_svg(r)}<div class='legend'>{_legend(r)}</div>")
            + _faces(r) + f"{thumbs}</section>"
        )
    head = "".join(
        f'<th data-key="{key}" data-type="{kind}" tabindex="0">{label}</th>'
        for key, kind, label in (
            ("rank", "num", "#"), ("file", "str", "file"), ("risk", "num", "risk"), ("status", "str", "status"),
            ("match", "str", "best match"), ("detection", "num", "strongest detection"), ("duration", "num", "seconds"),
        )
    )
    return _PAGE.format(
        title=_esc(title),
        count=len(records),
        flagged=sum(1 for r in records if (r.get("risk") or 0) >= 0.7),
        counts=_esc(record_counts(records)),
        floods=_floods(list(floods or ())),
        head=head,
        rows="".join(rows),
        sections="".join(sections),
        thumbs_note="blurred thumbnails included (--thumbnails)" if thumbnails else "no frame images (use --thumbnails for blurred ones)",
    )


def write_report(records: Iterable[dict[str, Any]], out: str | os.PathLike, *, thumbnails: bool = False,
                 floods: list[dict[str, Any]] | None = None) -> Path:  # fmt: skip
    out = Path(out)
    out.write_text(render_report(records, thumbnails=thumbnails, floods=floods), encoding="utf-8")
    return out


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
th {{ cursor: pointer; background: #f0f0f0; user-select: none; }}
th[aria-sort="ascending"]::after {{ content: " \\25B2"; }}
th[aria-sort="descending"]::after {{ content: " \\25BC"; }}
td.risk {{ font-weight: bold; }}
tr.high td.risk, .badge.high {{ background: #f8d0d0; }}
tr.mid td.risk, .badge.mid {{ background: #fbe8c0; }}
tr.low td.risk, .badge.low {{ background: #e0f0e0; }}
tr.err td {{ color: #888; }}
.badge {{ padding: 1px 6px; border-radius: 4px; }}
section.file {{ margin: 1.2em 0; padding-top: .4em; border-top: 1px solid #eee; }}
section.file h3 {{ font-size: 14px; margin: .2em 0; word-break: break-all; }}
.timeline .span {{ fill: #f4a6a6; fill-opacity: .55; }}
.timeline .span.partial {{ fill: #f7d49a; }}
.axis {{ font-size: 10px; fill: #666; }}
.key {{ border-left: 12px solid; padding-left: 4px; margin-right: 10px; font-size: 12px; }}
.spankey {{ border-color: #f4a6a6; }}
.muted {{ color: #888; }}
ul.still {{ background: #fafafa; border: 1px solid #ccc; padding: .4em 1.6em; width: fit-content; }}
li.flood, #floods h2 {{ color: #8a4b00; }}
table.floods {{ width: auto; margin-bottom: 1em; }}
.thumb {{ width: 96px; height: auto; margin-right: 6px; border: 1px solid #ccc; }}
</style></head>
<body data-sorted="risk:desc">
<h1>{title}</h1>
<p>{count} files, {flagged} with risk &ge; 0.70. {thumbs_note}. Click a column to sort.</p>
<p class="counts">{counts}</p>
{floods}
<table id="files"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<h2>Files</h2>
{sections}
<script>
(function () {{
  var table = document.getElementById("files");
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function sortBy(key, dir) {{
    var col = heads.findIndex(function (h) {{ return h.dataset.key === key; }});
    if (col < 0) return;
    var num = heads[col].dataset.type === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var c = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      if (dir === "desc") c = -c;
      return c !== 0 ? c : parseFloat(a.cells[0].dataset.v) - parseFloat(b.cells[0].dataset.v);
    }});
    rows.forEach(function (r, i) {{ r.cells[0].textContent = i + 1; body.appendChild(r); }});
    heads.forEach(function (h) {{ h.removeAttribute("aria-sort"); }});
    heads[col].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    document.body.dataset.sorted = key + ":" + dir;
  }}
  heads.forEach(function (h) {{
    function go() {{
      var cur = document.body.dataset.sorted.split(":");
      var dir = cur[0] === h.dataset.key && cur[1] === "desc" ? "asc" : "desc";
      if (cur[0] !== h.dataset.key && h.dataset.type === "str") dir = "asc";
      sortBy(h.dataset.key, dir);
    }}
    h.addEventListener("click", go);
    h.addEventListener("keydown", function (e) {{ if (e.key === "Enter") go(); }});
  }});
  function fromHash() {{
    var m = /sort=([a-z]+):(asc|desc)/.exec(location.hash);
    if (m) sortBy(m[1], m[2]); else sortBy("risk", "desc");
  }}
  window.addEventListener("hashchange", fromHash);
  fromHash();
}})();
</script>
</body></html>
"""
