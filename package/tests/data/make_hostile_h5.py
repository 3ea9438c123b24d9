"""Writes the hostile HDF5 fixtures of package/src/hdf5.rs's tests with libhdf5 (h5py).
Run: python3 make_hostile_h5.py

- cycle.h5: groups that link back to themselves and to the root (hard-link cycles are legal
  HDF5), so listing its datasets must not follow links for ever.
- huge.h5: a small file declaring a dataset of 2^40 floats (`/huge`; chunks are allocated
  lazily, so reading it would mean 4 TiB of fill values) and one of 2^80 (`/overflow`, more
  values than a 64-bit count holds): a reader must refuse both, not abort.
- truncated.h5: the first 4096 bytes of a file holding a 200 × 50 f32 dataset (40,000
  bytes): the header promises more than the file holds.
- unwritten.h5: datasets created and never written, one contiguous (`/contiguous`, no
  storage address) and one chunked (`/chunked`, no chunks): read, they would be fill values.

fuzzed_huge.h5 is not written here: the `hdf5` fuzz target (firmware-bridge/fuzz) made it
from huge.h5. Its 163 bytes declare 780 million values and a damaged element type; checking
that many values against the allocator once asked it for 6.2 GB. fuzzed_chunk.h5 is the
same target's mutation of facility.h5, cut to 5789 bytes: the chunk records of
/entry/data/spectra point past its end, one claiming 2.9 GB, which the reader allocated
before finding the file too short. fuzzed_offset.h5 is another of its mutations of
facility.h5 (6895 bytes): a chunk of /entry/data/spectra claims position 2^64 - 1, which
overflowed the reader's coordinate arithmetic. fuzzed_slow.h5 is a third (3688 bytes): its
three chunks declare shape [2, 2^27, 2], and the reader walked every row of each (93 s).
fuzzed_empty.h5 is a fourth (4264 bytes): its spectra declare a zero dimension beside huge
ones, and the reader placed a chunk at position 2^64 - 1 in that empty dataset (an overflow).
"""
import os

import h5py
import numpy as np

with h5py.File("cycle.h5", "w") as f:
    entry = f.create_group("entry")
    entry.create_dataset("data", data=np.zeros((3, 4), dtype="f4"))
    entry["loop"] = entry  # /entry/loop/loop/... is /entry
    entry["back"] = f["/"]  # /entry/back/entry/... is / again

with h5py.File("huge.h5", "w") as f:
    f.create_dataset("huge", shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))
    f.create_dataset("overflow", shape=(1 << 40, 1 << 40), dtype="f4", chunks=(1, 1 << 10))

with h5py.File("whole.h5", "w") as f:
    f.create_dataset("spectra", data=np.arange(200 * 50, dtype="f4").reshape(200, 50))
with open("whole.h5", "rb") as whole, open("truncated.h5", "wb") as truncated:
    truncated.write(whole.read(4096))
os.remove("whole.h5")

with h5py.File("unwritten.h5", "w") as f:
    f.create_dataset("contiguous", shape=(4, 3), dtype="f4")
    f.create_dataset("chunked", shape=(4, 3), dtype="f4", chunks=(2, 3))
