"""The record reference (docs/records.md), generated from the result record's JSON Schema.

``python3 -m vscan.cli.schema_docs`` prints it; ``tests/test_docs.py`` checks that
the committed page is what this prints and that every field, nested ones
included, has a description (in the schema, or here in :data:`DESCRIPTIONS`).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from vscan.verdict.record import result_schema

__all__ = ["DESCRIPTIONS", "schema_fields", "records_reference"]

#: Nested fields without a description in the schema: "matches[].query_pct" -> text.
DESCRIPTIONS: dict[str, str] = {
    "known_benign.list": "The list's path.",
    "known_benign.version": "The list's version (NSRL's VERSION table, or `# version: X` in a plain list).",
    "known_benign.digest": "Which digest was found on it.",
    "error.message": "What went wrong, in words, naming the file.",
    "media.kind": "`video` or `image` (a still; a one-frame GIF is a still).",
    "media.decoder": "The decoder that served: `decord`, `pyav` or `image`.",
    "media.codec": "The stream's codec name.",
    "media.width": "Display width in pixels (after rotation).",
    "media.height": "Display height in pixels (after rotation).",
    "media.fps": "Frames per second of the stream.",
    "media.fallback.from": "The decoder that failed or stalled.",
    "media.fallback.to": "The decoder that served instead.",
    "media.fallback.reason": "Why the first one was given up.",
    "skipped_disabled[]": "A disabled entry's id.",
    "second_pass.status": "`ok` or `failed`.",
    "second_pass.sampling": "The second pass's sampling, in words.",
    "second_pass.frames_sampled": "Frames the second pass hashed.",
    "second_pass.frames_decoded": "Frames the second pass decoded.",
    "second_pass.error": "With status failed: type and message.",
    "truncated.frames_chosen": "Frames the sampling chose.",
    "truncated.frames_kept": "Frames kept within the budget.",
    "truncated.seconds_covered": "Seconds of the file the kept frames cover.",
    "truncated.max_gap_seconds": "The longest gap between kept frames.",
    "reasons[]": "One reason.",
    "matches[].bank_entry_id": "The bank entry's id (`vscan bank info`, `vscan bank history BANK ENTRY`).",
    "matches[].label": "The entry's label (`--label` at build, a list's category).",
    "matches[].kind": "`exact` (a SHA-256/SHA-1/MD5 digest on the list) or `perceptual` (PDQ frame hashes).",
    "matches[].is_match": "Whether it counts: an exact hit, or query_pct >= 80, compared_pct >= 80, or a time-aligned "
                          "run (decided_by). False: a partial match, listed for review.",
    "matches[].query_pct": "Share (%) of the file's distinct frame hashes that match the entry.",
    "matches[].compared_pct": "Share (%) of the entry's distinct frame hashes that the file matches.",
    "matches[].matched_seconds": "Seconds of the file covered by matched samples: each matched sample counts until "
                                 "the next sample (the last one until the file's end); never more than "
                                 "duration_seconds. An exact match: the whole duration. A still: 0 (a still has no duration).",
    "matches[].query_span_seconds": "[first, last] timestamp (seconds into the file) of the matched samples.",
    "matches[].reference_span_seconds": "[first, last] timestamp (seconds into the bank entry) of the bank frames matched.",
    "matches[].distance_min": "The smallest Hamming distance (bits of 256) between a matched pair.",
    "matches[].algorithm": "The signal: `pdq`, or the digest (`sha256`, `sha1`, `md5`).",
    "matches[].path": "How it was found: `original` (as it is), a dihedral variant (`flip_h`, `rot90`, ...), `crop`, "
                      "`letterbox-removed`, `overlay-removed`, `region`, `window`, `window-916`, `rotated`, "
                      "`off-centre`, `grid-window`.",
    "matches[].dihedral": "Which of the 8 rotations/flips of the file's frames matched.",
    "matches[].decided_by": "`vpdq` (the percentage rule), `alignment` (an aligned run of >= 5 s), "
                            "`short-alignment` (an aligned run of >= 2.5 s, every pair close), `short-file` (a file of "
                            "<= 6 s: at least 2 and half of its frames within 20 bits at one offset), `aligned-frames` "
                            "(query% >= 80 counting whole frames within 40 bits of the row at the time an aligned hit "
                            "predicts: a bank of rows sparse in time, --rows sparse), `crop-rows` (the scan's own "
                            "centre crop met >= 80% of a sparse entry's rows of one crop scale, at least 2, within 20 "
                            "bits at one offset) or `list-rows` (a sparse hash list's entry, vPDQ at about a hash a "
                            "second or PDQ per image: at least 3 of its rows met in its order, each by its own frame "
                            "within 20 bits, median 16).",
    "matches[].region": "Where in the file's frame the known picture was found, as fractions of the frame.",
    "matches[].region.top": "Top edge, fraction of the height.",
    "matches[].region.bottom": "Bottom edge, fraction of the height.",
    "matches[].region.left": "Left edge, fraction of the width.",
    "matches[].region.right": "Right edge, fraction of the width.",
    "matches[].alignment": "The time alignment of matched frames (`vscan.bank.align`): one rate and one offset.",
    "matches[].alignment.rate": "Reference seconds per file second (0.5-2).",
    "matches[].alignment.offset_seconds": "Reference time at the file's time 0.",
    "matches[].alignment.seconds": "Seconds of the file the aligned run covers.",
    "matches[].alignment.frames": "Matched samples on the aligned line.",
    "matches[].alignment.query_span_seconds": "[first, last] file timestamp of the aligned run.",
    "matches[].alignment.reference_span_seconds": "[first, last] reference timestamp of the aligned run.",
    "detections[].model": "The model's name (its manifest), e.g. `open_nsfw`, `blazeface`, `triage`.",
    "detections[].kind": "`classifier`, `detector`, `face`, `face-chain` (a model fed face crops) or `combined`.",
    "detections[].label": "The risk label.",
    "detections[].weight": "The label's weight in the risk policy (manifest `[risk] labels`).",
    "detections[].frames": "Frames the model saw.",
    "detections[].max_score": "The highest score over those frames.",
    "detections[].top_k": "k of top_k_mean.",
    "detections[].top_k_mean": "Mean of the k highest scores.",
    "detections[].threshold": "The score at which a frame counts (manifest `[risk] threshold`).",
    "detections[].frames_above": "Frames scoring >= threshold.",
    "detections[].share_above": "frames_above / frames.",
    "detections[].strongest": "The highest-scoring frames, highest first.",
    "detections[].strongest[].timestamp_seconds": "The frame's time in the file.",
    "detections[].strongest[].score": "Its score.",
    "detections[].strongest[].box": "A detector's box in source pixels [x0, y0, x1, y1]; null for a classifier.",
    "detection_timeline.timestamps_seconds": "The sampled frames' times.",
    "detection_timeline.series": "Per `model/label`, one score per timestamp.",
    "versions.bank_sha256": "The bank's content digest (changes with every import, disable, enable).",
    "versions.model_sha256": "Digest over every model file and manifest the scan used.",
    "versions.risk_policy_sha256": "Digest of the risk policy's class and values.",
    "versions.vscan_version": "The vscan version.",
    "versions.config_sha256": "Digest of the `[sampling] [matching] [models] [archives]` configuration.",
    "ran_on.decode_node": "Ray node id that decoded the file (null in a small scan run without Ray, vscan.runtime.embedded).",
    "ran_on.model_node": "Ray node id of the model actor (null without Ray).",
    "ran_on.model_actor": "Ray actor id of the model actor (null without Ray).",
}


def _error_types() -> str:
    """error.type's meaning, from the exception classes a file's record can name (vscan.errors)."""
    import vscan.errors as errors

    per_file = [name for name in errors.__all__
                if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), errors.VscanError)
                and getattr(errors, name).kind != "internal"]  # fmt: skip
    return ("The error's class in `vscan.errors`: " + ", ".join(f"`{n}`" for n in per_file)
            + "; `InternalError:<type>` for an unexpected exception (a bug in vscan, tried again by the next run).")


def _branches(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in node.get("oneOf", [node]) if b.get("type") != "null"] or [node]


def _type(node: dict[str, Any]) -> str:
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    kinds: list[str] = []
    for branch in node.get("oneOf", [node]):
        t = branch.get("type", "any")
        kinds += t if isinstance(t, list) else [t]
    return " or ".join(dict.fromkeys(kinds))


def schema_fields(node: dict[str, Any] | None = None, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of the schema, depth first: ``("matches[].query_pct", node)``."""
    node = result_schema() if node is None else node
    for branch in _branches(node):
        for name, child in (branch.get("properties") or {}).items():
            path = f"{prefix}{name}"
            yield path, child
            yield from schema_fields(child, path + ".")
            for item_branch in _branches(child):
                items = item_branch.get("items")
                if isinstance(items, dict):
                    if items.get("properties"):
                        yield from schema_fields(items, path + "[].")


def _description(path: str, node: dict[str, Any]) -> str:
    if path == "error.type":
        return _error_types()
    return DESCRIPTIONS.get(path) or node.get("description") or ""


def records_reference() -> str:
    """docs/records.md's field table, generated from the schema."""
    schema = result_schema()
    required = set(schema.get("required", []))
    lines = [
        "# The result record",
        "",
        "<!-- Generated by `python3 -m vscan.cli.schema_docs > docs/records.md` from",
        "     scanner/verdict/schema/result.v1.json; tests/test_docs.py fails when they disagree. -->",
        "",
        "`vscan scan` writes one record per input file (an archive or disk-image member is a file) to",
        "`--out`: one JSON line in a `.jsonl` file, or a row of a Parquet/SQLite/PostgreSQL sink whose",
        "`record` column holds the same JSON. Every record validates against the JSON Schema (2020-12)",
        "`scanner/verdict/schema/result.v1.json` (`vscan.verdict.record.result_schema()`). Fields marked",
        "required are always present (null where the note says so); the others appear when they apply.",
        "",
        "A record from the demo (`vscan demo`), shortened:",
        "",
        "```json",
        '{"schema_version": 1, "path": "/home/me/vscan-demo/archive/upload-1-reencode.mp4",',
        ' "sha256": "…", "md5": "…", "sha1": "…", "size_bytes": 22500, "status": "ok", "error": null,',
        ' "media": {"kind": "video", "decoder": "pyav", "codec": "h264", "width": 320, "height": 240, "fps": 25.0, "fallback": null},',
        ' "duration_seconds": 6.0, "frames_decoded": 101, "frames_sampled": 14,',
        ' "sampling": "Adaptive(keyframes, then 1 fps near signals) + triage (1 frame / 3 s, >= 8 per file) + Windows(1 fps in 1 spans, 6.0 s)",',
        ' "risk": 1.0, "reasons": ["perceptual match with reported-1 (reported): query 100%, compared 74%, 6.0 s matched"],',
        ' "matches": [{"bank_entry_id": "reported-1", "label": "reported", "kind": "perceptual", "algorithm": "pdq",',
        '              "is_match": true, "query_pct": 100.0, "compared_pct": 73.5, "matched_seconds": 6.0,',
        '              "query_span_seconds": [0.0, 5.6], "reference_span_seconds": [0.0, 5.76], "distance_min": 6,',
        '              "path": ["original"], "dihedral": "original", "decided_by": "vpdq", "region": null,',
        '              "alignment": {"rate": 0.9474, "offset_seconds": 0.164, "seconds": 6.0, "frames": 14, "…": "…"}}],',
        ' "detections": ["…"], "detection_timeline": {"…": "…"},',
        ' "timings": {"digest": 0.0006, "decode": 0.22, "hash": 0.009, "match": 0.088, "detect": 0.68},',
        ' "versions": {"bank_sha256": "…", "model_sha256": "…", "risk_policy_sha256": "…", "vscan_version": "0.2.0", "config_sha256": "…"},',
        ' "ran_on": {"decode_node": "8c9c…", "model_node": "8c9c…", "model_actor": "5fb7…"}}',
        "```",
        "",
        "## Fields",
        "",
        "| field | type | meaning |",
        "|---|---|---|",
    ]
    for path, node in schema_fields():
        mark = " (required)" if path in required else ""
        text = _description(path, node).replace("|", "\\|")
        lines.append(f"| `{path}`{mark} | {_type(node)} | {text} |")
    lines += [
        "",
        "## How matching decides",
        "",
        "Matching follows vPDQ: both sides are filtered to PDQ quality >= `[matching] min_quality` (50), a",
        "frame matches at Hamming distance <= `[matching] distance_threshold` (31), `query_pct` is the share",
        "of the file's distinct hashes that match the entry and `compared_pct` the share of the entry's. A",
        "match counts (`is_match`) at query% >= 80 or compared% >= 80, or through time alignment",
        "(`decided_by`). Exact SHA-256/SHA-1/MD5 hits count too. The default risk policy",
        "(`vscan.verdict.risk.DefaultRiskPolicy`, replaceable, `--risk-policy FILE`): exact hit 1.0;",
        "perceptual match 0.7 + 0.3 x strength; partial matches up to 0.5; see [detectors](detectors.md)",
        "for the detector and triage parts.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(records_reference(), end="")
