"""Writes the hostile HDF5 fixtures of package/src/hdf5.rs's tests with libhdf5 (h5py).
Run: python3 make_hostile_h5.py

- cycle.h5: groups that link back to themselves and to the root (hard-link cycles are legal
  HDF5), so listing its datasets must not follow links for ever.
- huge.h5: a 1.4 kB file declaring a dataset of 2^40 floats (chunks are allocated lazily, so
  reading it would mean 4 TiB of fill values): a reader must refuse it, not abort.
"""
import h5py
import numpy as np

with h5py.File("cycle.h5", "w") as f:
    entry = f.create_group("entry")
    entry.create_dataset("data", data=np.zeros((3, 4), dtype="f4"))
    entry["loop"] = entry  # /entry/loop/loop/... is /entry
    entry["back"] = f["/"]  # /entry/back/entry/... is / again

with h5py.File("huge.h5", "w") as f:
    f.create_dataset("huge", shape=(1 << 40,), dtype="f4", chunks=(1 << 16,))
