//! HDF5 dataset reading (training data from facility files), on any bytes: the HDF5 parser
//! underneath, the bounded walk that lists datasets for an error message, the checks of a
//! declared shape and of the chunks against the file's length and memory, of every stored
//! run and chunk position, and the refusal of never-written storage. Checked: no panic, no stack overflow,
//! no allocation beyond libFuzzer's rss limit. Seed it with `package/tests/data/*.h5` (see
//! BENCHMARKS.md).
#![no_main]

use std::path::Path;

use latentlink_package::hdf5;
use libfuzzer_sys::fuzz_target;

/// Dataset names the target asks for: the fixtures' own, a missing one (which lists the
/// file's datasets), and a nested one.
const NAMES: [&str; 7] = [
    "/entry/data/spectra",
    "/huge",
    "/overflow",
    "/spectra",
    "/chunked",
    "/entry/missing",
    "/entry/loop/loop/data",
];

fuzz_target!(|data: &[u8]| {
    for name in NAMES {
        if let Ok(array) = hdf5::read_f32_from_bytes(data.to_vec(), Path::new("fuzz.h5"), name) {
            assert_eq!(array.len(), array.shape().iter().product::<usize>());
        }
    }
});
