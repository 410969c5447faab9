"""bench/gpu_check.py's capacity line: what the measured rates predict for
scanning 1080p video on the machine (vscan.bench.capacity.predict)."""

from __future__ import annotations

from typing import Any

from .gpu_check_plan import QUERIES_PER_FRAME, VIDEO_FPS, VIDEO_GOP_SECONDS, Plan


def capacity_line(parts: dict[str, Any], plan: Plan, cores: int) -> dict[str, Any]:
    """What the measured rates predict for 1080p video on this machine, via
    vscan.bench.capacity.predict (decode on the CPU decode slots, the model on
    the GPU actor: hashing at ModelWorker's rate, then the search of the
    largest bank through the CPU index, as a scan does, 8 dihedral queries a
    frame), and with decode on NVDEC instead (the lesser of decode and that
    actor); the actor's rate with the search on the device, a file's 64
    queries at a time, beside them. Assumes ``VIDEO_FPS`` fps and a keyframe every
    ``VIDEO_GOP_SECONDS`` s; adaptive's first pass decodes keyframes only
    (its second pass, near matches, is not counted: nothing matches in a
    sweep of unrelated video), ``--fps 1`` decodes every frame and keeps one a
    second (PyAV's non-reference skipping, which halves that, is not counted).
    Nor are the decode tasks' digest and resize: the decode rates are the decoder's."""
    from vscan.bench.capacity import StageRates, format_prediction, predict

    decode = parts.get("decode", {}).get("decoders", {})
    model = parts.get("pdq", {}).get("model_worker", {})
    rows = parts.get("hamming", {}).get("rows", {})
    if not model or not decode.get("cpu", {}).get("keyframes"):
        return {"status": "skipped", "reason": "needs the pdq part's model_worker and the decode part's cpu rates"}
    batch = "512" if "512" in model else max(model, key=int)
    model_fps = model[batch]["frames_sampled_per_second"]
    bank_rows = max((int(k) for k, r in rows.items() if r.get("status") == "ok" and "exact" in r), default=None)
    device_lookups = rows[str(bank_rows)]["per_file"]["lookups_per_second"] if bank_rows else None
    cpu_lookups = rows[str(bank_rows)]["exact"]["cpu_index_lookups_per_second"] if bank_rows else None
    keys_per_vs = 1.0 / max(VIDEO_GOP_SECONDS, 1.0)  # Adaptive keeps keyframes >= 1 s apart
    policies = {"adaptive": ("keyframes", keys_per_vs, keys_per_vs), "fps1": ("every_frame", 1.0, float(VIDEO_FPS))}
    gpus = 1 if plan.device == "cuda" else 0
    out: dict[str, Any] = {"status": "ok", "assumptions": {"fps": VIDEO_FPS, "gop_seconds": VIDEO_GOP_SECONDS, "model_batch": int(batch),
                           "bank_rows": bank_rows, "queries_per_frame": QUERIES_PER_FRAME, "cores": cores, "gpus": gpus,
                           "sink_and_driver": "not measured here (inf in the model, null in this file)"}}  # fmt: skip
    for name, (mode, sampled_per_vs, decoded_per_vs) in policies.items():
        if "1" not in decode["cpu"].get(mode, {}):
            out[name] = {"status": "skipped", "reason": f"no single-stream CPU decode rate for {mode} (out of time share)"}
            continue
        cpu_fps = decode["cpu"][mode]["1"]["frames_per_second"]
        model_vs = model_fps / sampled_per_vs
        inf = float("inf")
        cpu_match = cpu_lookups / QUERIES_PER_FRAME if cpu_lookups else inf  # the CPU index (a CPU model actor's search)
        rates = StageRates(files=1, video_seconds_per_file=plan.video_seconds, decode_per_slot=cpu_fps / decoded_per_vs,
                           decode_in_task=cpu_fps / decoded_per_vs, decode_frames_per_second=cpu_fps, model_per_actor=model_vs,
                           model_frames_per_actor=model_fps, model_threads=0, model_first_file_seconds=0.0,
                           match_per_second=cpu_match / sampled_per_vs, match_frames_per_second=cpu_match,
                           sink_records_per_second=inf,
                           driver_records_per_second=inf, driver_seconds_per_video_second=0.0)  # fmt: skip
        # The GPU actor hashes, then searches the bank, one after the other: its rate is the two
        # combined. A scan searches a bank of over 50,000 hashes with the CPU index (method "auto").
        search_vs = cpu_match / sampled_per_vs
        on_device_vs = device_lookups / (QUERIES_PER_FRAME * sampled_per_vs) if device_lookups else None
        actor_vs = 1 / (1 / model_vs + 1 / search_vs)
        pred = predict(rates, 1, cores, gpus, physical_cores=cores, gpu_actor_rate=actor_vs if gpus else None, device=plan.device)
        row: dict[str, Any] = {
            "hash_video_seconds_per_second": model_vs, "search_video_seconds_per_second": search_vs,
            "search_on_device_video_seconds_per_second": on_device_vs, "actor_video_seconds_per_second": actor_vs,
            "actor_with_search_on_device_video_seconds_per_second": 1 / (1 / model_vs + 1 / on_device_vs) if on_device_vs else None,
            "cpu_decode": {**pred.as_dict(), "line": format_prediction(pred).strip()},
        }  # fmt: skip
        gpu_decode = decode.get("cuda", {}).get(mode)
        if gpu_decode:
            nvdec = max(r["frames_per_second"] for r in gpu_decode.values())
            stages = {"decode (NVDEC)": nvdec / decoded_per_vs, "model": actor_vs if gpus else model_vs}
            bound = min(stages, key=stages.get)
            row["gpu_decode"] = {"stages": stages, "video_seconds_per_second": stages[bound], "bound": bound}
        else:
            row["gpu_decode"] = {"status": "skipped", "reason": decode.get("cuda", {}).get("reason", "no GPU decode rate")}
        out[name] = row
    return out
