"""The hostile-evidence suite (issue 23): one folder mixing every case of
vscan.bench.hostile with ordinary files, scanned through the CLI on its own
local Ray. Exit 0, exactly one honest record per input, the ordinary files
matched as before, the memory of every process of the scan bounded
(measured from /proc while it runs), and a second run resumes without a
new record. On the old code the scan ended at the first Latin-1 name
(exit 1, no records); with that fixed alone, the PAX header bomb grew a
worker past 1 GiB, the deep tree raised RecursionError in discovery and
the grey video was "clear". Since: a tar in a folder named ``case.zip!`` and
a zip member named ``a.tar!/c.mp4`` (member paths escape ``!`` before
``/``), a reported clip behind a title card in animated WebP, APNG, GIF and a
several-image HEIF (found, not read as their first frame), and a reported
file on the ``--ignore`` list (matched, not skipped as known-benign).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema

from vscan.bench import synth
from vscan.bench.hostile import make_hostile, raw_path, remove_tree
from vscan.bench.hostile_media import animated_copies
from vscan.bank.hashers import media_hasher
from vscan.bank.store import build_bank
from vscan.decode import EveryFrame
from vscan.inputs.paths import record_key
from vscan.verdict.record import result_schema

#: Peak RSS allowed for any one process of the scan (driver, raylet, workers, model actor), MiB.
#: The old code's worker read the 1 GiB PAX header whole: past 1,024 MiB by itself.
PROCESS_RSS_MAX_MIB = 900


def _tree_rss_mib(root_pid: int) -> tuple[float, float]:
    """(largest process RSS, sum of RSS) over ``root_pid`` and its descendants, MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    todo, seen = [root_pid], []
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo.extend(children.get(pid, []))
    values = [rss.get(p, 0.0) for p in seen]
    return max(values, default=0.0), sum(values)


def _run_measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float, float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0.0, 0.0]

    def sample() -> None:
        while proc.poll() is None:
            one, total = _tree_rss_mib(proc.pid)
            peak[0], peak[1] = max(peak[0], one), max(peak[1], total)
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate(timeout=900)
    watcher.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak[0], peak[1]


def test_a_folder_of_hostile_evidence_scans_to_one_honest_record_each(tmp_path):
    folder = tmp_path / "evidence"
    clip = synth.make_clip(tmp_path / "clip.mp4", seed=5, seconds=1.0, size=(96, 64))
    cases = make_hostile(folder, clip)
    known = synth.make_clip(folder / "zz-known.mp4", seed=7, seconds=2.0, size=(160, 96))
    synth.make_clip(folder / "zz-other.mp4", seed=8, seconds=2.0, size=(160, 96))
    benign = synth.make_clip(folder / "zz-benign.mp4", seed=9, seconds=1.0, size=(96, 64))
    hidden_source = synth.make_clip(tmp_path / "hidden-source.mp4", seed=11, seconds=4.0, size=(160, 96))
    animated = animated_copies(hidden_source, folder / "animated")  # the clip behind a title card (vscan.bench.hostile_media)
    bank = tmp_path / "reported.bank"
    build_bank(bank, [known, hidden_source], hash_media=media_hasher(EveryFrame(), "cpu"))
    # A known-benign list that also holds the reported clip's MD5 (wrong, or poisoned): that file is matched, not skipped.
    benign_list = tmp_path / "benign.txt"
    benign_list.write_text("".join(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}\n" for p in (known, benign)))
    out = tmp_path / "r.jsonl"
    cmd = [sys.executable, "-m", "vscan.cli", "scan", str(folder), "--bank", str(bank), "--out", str(out), "--device", "cpu",
           "-q", "--fps", "1", "--archive-max-entries", "200", "--ignore", str(benign_list)]  # fmt: skip
    try:
        run, peak_one_mib, peak_all_mib = _run_measured(cmd)
        assert run.returncode == 0, run.stderr
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        by_raw = {record_key(r): r for r in records}
        assert len(records) == len(by_raw) == len(cases) + 3 + len(animated)  # one each, none twice
        for r in records:
            jsonschema.validate(r, result_schema())
        for case in cases:
            r = by_raw.pop(raw_path(folder, case))
            assert r["status"] == case.status, (case.name, r["error"])
            assert (r["error"] or {}).get("type") == case.error_type, (case.name, r["error"])
        blank = next(r for r in records if r["path"].endswith("blank-grey.mp4"))
        assert blank["risk"] is None and blank["frames_matchable"] == 0 and blank["unchecked"]
        rest = {Path(r["path"]).name: r for r in by_raw.values()}
        assert rest["zz-known.mp4"]["risk"] > 0.5 and any(m["is_match"] for m in rest["zz-known.mp4"]["matches"])
        assert "known_benign" not in rest["zz-known.mp4"]  # on the list, and reported: matched
        assert rest["zz-benign.mp4"]["skipped"] == "known-benign" and rest["zz-benign.mp4"]["frames_decoded"] == 0
        for name in animated:  # decoded as clips: the reported clip behind the title card is found
            r = rest[name]
            assert r["status"] == "ok" and r["media"]["kind"] == "video" and r["frames_sampled"] >= 4, (name, r["error"])
            hit = next(m for m in r["matches"] if m["bank_entry_id"] == "hidden-source")
            assert hit["query_span_seconds"][0] >= 1.0 and (hit["is_match"] or name.endswith(".gif")), (name, r["reasons"])
        assert rest["zz-other.mp4"]["status"] == "ok" and rest["zz-other.mp4"]["risk"] == 0.0
        assert rest["zz-other.mp4"]["frames_matchable"] >= 1
        print(f"peak RSS: one process {peak_one_mib:.0f} MiB, all processes {peak_all_mib:.0f} MiB")
        assert peak_one_mib < PROCESS_RSS_MAX_MIB, f"a process of the scan reached {peak_one_mib:.0f} MiB"

        again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)  # resume: nothing new
        assert again.returncode == 0, again.stderr
        assert len(out.read_text(encoding="utf-8").splitlines()) == len(records)
    finally:
        remove_tree(folder / "deep")  # os.walk over /tmp elsewhere must not meet it
