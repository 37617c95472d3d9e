"""The grasp dataset never holds a partial sample: atomic writes, recovery, kills, full disk."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from perception_nodes.capture.grasp_dataset import (
    MANIFEST,
    SAMPLES,
    DatasetWriteError,
    GraspDatasetWriter,
    GraspSample,
    load_sample,
    read_manifest,
)


def _sample(seed: int, size: tuple[int, int] = (24, 32), success: bool = True) -> GraspSample:
    rng = np.random.default_rng(seed)
    h, w = size
    return GraspSample(rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                       rng.integers(0, 255, (h, w, 3), dtype=np.uint8),
                       (rng.random((h, w)) > 0.9).astype(np.uint8),
                       rng.random(5).astype(np.float32) * 60, np.eye(4), 1000 + seed,
                       success, 3)


def test_samples_round_trip_with_their_manifest(tmp_path):
    writer = GraspDatasetWriter(tmp_path)
    first, second = _sample(1), _sample(2, success=False)
    writer.append(first)
    writer.append(second)
    entries = read_manifest(tmp_path)
    assert [e["file"] for e in entries] == ["000000.npz", "000001.npz"]
    assert [e["success"] for e in entries] == [True, False]
    arrays = load_sample(tmp_path, entries[1])
    np.testing.assert_array_equal(arrays["before"], second.before)
    np.testing.assert_array_equal(arrays["grasp_mask"], second.grasp_mask)
    assert len(GraspDatasetWriter(tmp_path)) == 2  # reopening keeps both


def test_bad_samples_and_a_full_disk_leave_the_folder_as_it_was(tmp_path):
    writer = GraspDatasetWriter(tmp_path)
    writer.append(_sample(1))
    before = sorted(p.name for p in (tmp_path / SAMPLES).iterdir())
    bad = _sample(2)
    bad.after = bad.after[:10]
    with pytest.raises(ValueError):
        writer.append(bad)
    full = GraspDatasetWriter(tmp_path, min_free_mb=1e12)  # more than any disk has free
    with pytest.raises(DatasetWriteError):
        full.append(_sample(3))
    assert sorted(p.name for p in (tmp_path / SAMPLES).iterdir()) == before
    assert len(read_manifest(tmp_path)) == 1


def test_reopening_drops_half_written_files_and_adopts_unlisted_samples(tmp_path):
    writer = GraspDatasetWriter(tmp_path)
    writer.append(_sample(1))
    writer.append(_sample(2))
    # a kill between the sample's rename and the manifest's: roll the manifest back
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["samples"] = manifest["samples"][:1]
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / SAMPLES / "000002.npz.partial").write_bytes(b"PK\x03\x04 half")
    (tmp_path / "manifest.json.partial").write_text("{")
    reopened = GraspDatasetWriter(tmp_path)
    assert len(reopened) == 2 and not list(tmp_path.rglob("*.partial"))
    adopted = read_manifest(tmp_path)[1]
    assert adopted["file"] == "000001.npz" and adopted["stamp_ns"] == 1002
    load_sample(tmp_path, adopted)  # checksum verified
    (tmp_path / SAMPLES / "000001.npz").write_bytes(b"changed")
    with pytest.raises(ValueError):
        load_sample(tmp_path, adopted)


WRITER = """
import os, sys, time
sys.path.insert(0, {test_dir!r})
from test_grasp_dataset import _sample
from perception_nodes.capture.grasp_dataset import GraspDatasetWriter

# freeze inside the pause_at-th fsync: each sample fsyncs its file (then the rename),
# the folder, the manifest (then its rename), the folder
pause_at, real_fsync, calls = int(sys.argv[2]), os.fsync, [0]
def fsync(fd):
    calls[0] += 1
    if calls[0] == pause_at:
        print("in-write", flush=True)
        time.sleep(60)
    real_fsync(fd)
os.fsync = fsync
writer = GraspDatasetWriter(sys.argv[1], min_free_mb=0)
for i in range(100):
    writer.append(_sample(i, (120, 160)))
    print(len(writer), flush=True)
"""


@pytest.mark.parametrize("pause_at", [1, 3, 6, 8, 13])
def test_killing_the_writer_mid_write_never_leaves_a_partial_sample(tmp_path, pause_at):
    """SIGKILL a writing process while it is inside a write (after the data, before the
    rename; after a sample, before its manifest; ...): every sample it reported stored is
    listed and reads back whole, nothing half-written is listed, and reopening the folder
    drops the leftovers and adopts a whole sample the manifest missed."""
    script = WRITER.format(test_dir=os.path.dirname(__file__))
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(pause_at)],
                            stdout=subprocess.PIPE, text=True)
    reported = 0
    for line in proc.stdout:
        if line.strip() == "in-write":
            break
        reported = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    entries = read_manifest(tmp_path)  # the manifest always parses
    assert len(entries) >= reported
    for entry in entries:
        assert load_sample(tmp_path, entry)["before"].shape == (120, 160, 3)
    listed = {e["file"] for e in entries}
    on_disk = {p.name for p in (tmp_path / SAMPLES).glob("*.npz")}
    assert listed <= on_disk and len(on_disk - listed) <= 1
    reopened = GraspDatasetWriter(tmp_path)
    assert len(reopened) == len(on_disk) and not list(tmp_path.rglob("*.partial"))
    for entry in read_manifest(tmp_path):
        load_sample(tmp_path, entry)
    reopened.append(_sample(99, (120, 160)))  # and it goes on
    assert len(read_manifest(tmp_path)) == len(on_disk) + 1


def test_a_manifest_entry_cannot_read_outside_the_dataset(tmp_path):
    writer = GraspDatasetWriter(tmp_path / "ds")
    writer.append(_sample(1))
    entry = read_manifest(tmp_path / "ds")[0]
    outside = tmp_path / "secret.npz"
    outside.write_bytes((tmp_path / "ds" / SAMPLES / entry["file"]).read_bytes())
    for file in ("../../secret.npz", str(outside)):
        with pytest.raises(ValueError, match="outside"):
            load_sample(tmp_path / "ds", {**entry, "file": file})
    assert load_sample(tmp_path / "ds", entry)["before"].shape == (24, 32, 3)
