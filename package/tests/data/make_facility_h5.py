"""Writes facility.h5, the HDF5 fixture of package/src/hdf5.rs's and trainer/src/data/hdf5.rs's tests, with libhdf5 (h5py).

It is laid out the way facility files are: NeXus-style groups, chunked and gzip-compressed
ADC counts, and a float dataset with the shuffle filter. Run: python3 make_facility_h5.py
"""
import h5py
import numpy as np

n, channels, length = 6, 2, 8
counts = (np.arange(n * channels * length, dtype=np.uint16) * 7).reshape(n, channels, length)
with h5py.File("facility.h5", "w") as f:
    data = f.create_group("entry").create_group("data")
    data.create_dataset("spectra", data=counts, chunks=(2, channels, length), compression="gzip")
    data.create_dataset(
        "calibrated", data=counts.reshape(n, -1).astype(np.float64) * 0.5,
        chunks=(3, channels * length), shuffle=True, compression="gzip",
    )
    data.create_dataset("labels", data=np.array([b"a", b"b"]))
