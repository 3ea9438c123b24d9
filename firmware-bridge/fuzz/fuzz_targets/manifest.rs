//! The model package's manifest parser, on any text: TOML syntax, the schema, and the
//! consistency checks every reader relies on (code bits against bytes, normalisation lengths,
//! finite means and positive stds). Checked: no panic, and a manifest that parses is
//! consistent and survives its own writer.
#![no_main]

use std::path::Path;

use latentlink_package::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("manifest.toml");
    let Ok(manifest) = Manifest::from_toml(text, path) else {
        return;
    };
    assert_eq!(manifest.code.bytes, manifest.code.bits.div_ceil(8));
    let features = manifest.input.channels * manifest.input.length;
    assert_eq!(manifest.input.mean.len(), features);
    assert_eq!(manifest.input.std.len(), features);
    assert!(manifest.input.std.iter().all(|s| *s > 0.0 && s.is_finite()));
    let written = manifest
        .to_toml(path)
        .expect("a manifest that parses writes");
    Manifest::from_toml(&written, path).expect("and parses back");
});
