#![allow(clippy::unwrap_used)]
//! The optional decoders reproduce the golden reconstructions like the default ones do:
//! burn-ndarray, and wgpu on a GPU (or on Mesa's software Vulkan driver, as in CI).
//!
//! This package turns on the bridge's `ndarray` and `wgpu` features, so `cargo test
//! --workspace` builds burn once with every backend. The wgpu check needs a Vulkan driver:
//! it runs where one is installed (an ICD file under `/usr/share/vulkan/icd.d` or
//! `/etc/vulkan/icd.d`; `apt-get install mesa-vulkan-drivers` gives a software one) or when
//! `LATENTLINK_GPU_TEST=1`, and says so when it does not.

use std::path::{Path, PathBuf};

use latentlink_bridge::decode::{self, DecoderKind};
use latentlink_trainer::export::verify;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128")
}

fn check(kind: DecoderKind) {
    let golden = latentlink_package::Golden::read(&shipped()).unwrap();
    let mut decoder = decode::open(
        &latentlink_package::Package::open(&shipped()).unwrap(),
        kind,
    )
    .unwrap();
    let ours = decoder.decode(&golden.int8_codes).unwrap();
    let error = verify::relative_error(&golden.reconstructions, &ours);
    assert!(error <= verify::TOLERANCE, "{kind:?}: {error:e}");
}

fn vulkan_driver_installed() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"]
        .iter()
        .any(|dir| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()))
}

#[test]
fn ndarray_decoder_reproduces_the_golden_reconstructions() {
    check(DecoderKind::Ndarray);
}

#[test]
fn wgpu_decoder_reproduces_the_golden_reconstructions() {
    if !vulkan_driver_installed() && std::env::var_os("LATENTLINK_GPU_TEST").is_none() {
        eprintln!(
            "no Vulkan driver installed: wgpu decoder check not run (apt-get install mesa-vulkan-drivers)"
        );
        return;
    }
    check(DecoderKind::Wgpu);
}
