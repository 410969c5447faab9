"""Symbolic links in evidence (vscan.inputs.discover): on a mounted disk image an absolute link names this
machine's own files, and a relative one can climb out of the folder; followed, their content was scanned and
matched under the evidence's path. A link in a folder to a file outside the folder given now gets its own
FileAccessError record naming where it leads, unless ``--follow-links``; links that stay inside are read (and a
file reached twice is still scanned once)."""

from __future__ import annotations

import os
import subprocess
import sys

from vscan.inputs.discover import Refused, discover


def _tree(tmp_path):
    host, ev = tmp_path / "host", tmp_path / "ev"
    (ev / "sub").mkdir(parents=True)
    host.mkdir()
    (host / "private.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    (ev / "sub" / "real.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    os.symlink(host / "private.mp4", ev / "abs.mp4")  # absolute: this machine's file
    os.symlink("../host/private.mp4", ev / "climb.mp4")  # relative, out of the folder
    os.symlink("/nonexistent/x.mp4", ev / "broken.mp4")
    os.symlink("sub/real.mp4", ev / "inside.mp4")
    return ev


def test_links_out_of_the_folder_get_their_own_record_and_are_not_read(tmp_path):
    ev = _tree(tmp_path)
    found = list(discover([ev]))
    refused = {os.path.basename(p): p.error["message"] for p in found if isinstance(p, Refused)}
    assert sorted(refused) == ["abs.mp4", "broken.mp4", "climb.mp4"], found  # each its own record, none folded
    assert f"a symbolic link to {tmp_path / 'host' / 'private.mp4'}, outside the inputs given: not followed" in refused["abs.mp4"]
    assert "--follow-links" in refused["climb.mp4"] and "/nonexistent/x.mp4" in refused["broken.mp4"]
    read = [os.path.relpath(p, ev) for p in found if not isinstance(p, Refused)]
    assert read == ["inside.mp4"]  # the link inside is read; sub/real.mp4 is the same file, scanned once


def test_follow_links_reads_them(tmp_path):
    ev = _tree(tmp_path)
    found = list(discover([ev], follow_links=True))
    read = sorted(os.path.basename(p) for p in found if not isinstance(p, Refused))
    assert read == ["abs.mp4", "broken.mp4", "inside.mp4"]  # climb.mp4 is abs.mp4's file: once; broken: its own error later
    assert list(discover([ev / "abs.mp4"])) == [str(ev / "abs.mp4")]  # a file named on the command line is always read


def test_the_flag_reaches_the_scan_config():
    out = subprocess.run([sys.executable, "-m", "vscan.cli", "config", "show", "--follow-links"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0 and "follow_links = true" in out.stdout, out.stderr


def test_a_link_into_another_input_is_read_once(tmp_path):
    ev = _tree(tmp_path)
    found = list(discover([ev, tmp_path / "host"]))  # the host folder is an input too: abs.mp4 leads into it
    read = sorted(os.path.relpath(p, tmp_path) for p in found if not isinstance(p, Refused))
    assert read == ["ev/abs.mp4", "ev/inside.mp4"], found  # private.mp4 reached first through abs.mp4: once
    assert [os.path.basename(p) for p in found if isinstance(p, Refused)] == ["broken.mp4"]
