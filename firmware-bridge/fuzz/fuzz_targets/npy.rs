//! `.npy` reading (the one reader of training data, golden vectors and decoded chunks), on
//! any bytes. Checked: no panic, and no allocation beyond what the bytes hold: a header that
//! claims 2^60 elements, or a preamble that claims a 4 GiB header, must be refused before
//! anything is allocated (libFuzzer's rss limit catches an allocation that gets through; the
//! second was found this way). A header that nests brackets deeper than a numeric array's
//! must be refused before the backtracking literal parser sees it (this target found one of
//! 141 bytes that took 1.2 s; run with `-timeout` to catch another). An array that reads
//! holds what its shape says.
#![no_main]

use std::io::Cursor;

use latentlink_package::npy;
use libfuzzer_sys::fuzz_target;
use ndarray::{ArrayD, Ix2};

fuzz_target!(|data: &[u8]| {
    let len = data.len() as u64;
    if let Ok(array) = npy::read_from::<f32, _>(Cursor::new(data), len) {
        let array: ArrayD<f32> = array;
        assert_eq!(array.len(), array.shape().iter().product::<usize>());
        assert!(array.len() * 4 <= data.len());
    }
    let _ = npy::read_from::<f64, Ix2>(Cursor::new(data), len);
    let _ = npy::read_from::<u8, Ix2>(Cursor::new(data), len);
    let _ = npy::read_from::<i16, Ix2>(Cursor::new(data), len);
});
