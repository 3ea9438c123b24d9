"""Writes cycle.h5, a fixture of trainer/src/data/hdf5.rs's tests, with libhdf5 (h5py): a file
whose groups link back to themselves and to the root (hard-link cycles are legal HDF5), so that
listing its datasets must not follow links for ever. Run: python3 make_cycle_h5.py
"""
import h5py
import numpy as np

with h5py.File("cycle.h5", "w") as f:
    entry = f.create_group("entry")
    entry.create_dataset("data", data=np.zeros((3, 4), dtype="f4"))
    entry["loop"] = entry  # /entry/loop/loop/... is /entry
    entry["back"] = f["/"]  # /entry/back/entry/... is / again
