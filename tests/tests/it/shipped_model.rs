#![allow(clippy::unwrap_used)]
//! The shipped packages `models/opis-b128` (spectra) and `models/showers-b128` (point clouds)
//! are consistent: the model id matches the files, the golden vectors and manifest are
//! pinned, the golden vectors reproduce in the int8 runtime, in tract (the float and the int8
//! ONNX encoders) and in burn, and each
//! beats the classical codec at its bits on events it never saw (PCA for spectra, the
//! heaviest points for showers).

use std::path::{Path, PathBuf};

use latentlink_bridge::decode::{self, DecoderKind};
use latentlink_model::Backend;
use latentlink_package::files;
use latentlink_trainer::data::{self, Events};
use latentlink_trainer::evaluate;
use latentlink_trainer::export::{int8_onnx, verify};
use latentlink_trainer::ptq;
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::train::TrainConfig;

/// The shipped packages.
const SHIPPED: [&str; 2] = ["opis-b128", "showers-b128"];

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

/// Each shipped package's name, model id, and the SHA-256 of its four golden files and its
/// manifest (in that order). The model id covers only the blob and the record; this pins
/// the rest, so that re-blessed goldens (`quantize` and `golden` rewrite them in place) or
/// an edited normalisation fail here until the line changes on purpose, in the same commit
/// as the package. (opis-b128 last changed when the golden set grew from 16 to 256 events.)
const PINNED: [(&str, &str, &str); 2] = [
    (
        "opis-b128",
        "02047e225cc06d67",
        "6cbd82f04d042e80787de1afb5ed6255cdb51512eacc6141e86bec07e28b678c",
    ),
    (
        "showers-b128",
        "ec758dd657d85cc1",
        "5e025b8ee2ad95dddcd524899be2db4d815da777e81aaa363790b162da8f547b",
    ),
];

#[test]
fn golden_vectors_and_manifest_change_only_with_the_pinned_line() {
    for (name, model_id, digest) in PINNED {
        assert_eq!(
            pinned(name),
            (model_id.to_owned(), digest.to_owned()),
            "the shipped package {name} changed: update PINNED only if that was meant"
        );
    }
}

/// The model id and the digest of the golden files and manifest of the package `name`.
fn pinned(name: &str) -> (String, String) {
    use sha2::{Digest, Sha256};
    let dir = shipped(name);
    let opened = latentlink_package::Package::open(&dir).unwrap();
    let mut hasher = Sha256::new();
    let golden = dir.join(files::GOLDEN);
    for name in [
        "inputs.npy",
        "float_codes.npy",
        "int8_codes.npy",
        "reconstructions.npy",
    ] {
        hasher.update(std::fs::read(golden.join(name)).unwrap());
    }
    hasher.update(std::fs::read(dir.join(files::MANIFEST)).unwrap());
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (opened.model_id().to_string(), digest)
}

#[test]
fn shipped_packages_reproduce_their_golden_vectors_everywhere() {
    for name in SHIPPED {
        reproduces_golden_vectors(name);
    }
}

fn reproduces_golden_vectors(name: &str) {
    let dir = shipped(name);
    // `open` recomputes the model id from the blob and the burn record.
    let opened = latentlink_package::Package::open(&dir).unwrap();
    let manifest = &opened.manifest;
    assert_eq!(manifest.code.bits, 128);
    // The command that made it (the CLI was once named latentlink-trainer).
    assert_eq!(
        manifest.command.split_whitespace().nth(1),
        Some("train"),
        "{name}"
    );
    let golden = latentlink_package::Golden::read(&dir).unwrap();

    // Runtime: the int8 codes, bit for bit.
    let codes = ptq::runtime_codes(&opened.blob, &golden.inputs).unwrap();
    assert_eq!(codes, golden.int8_codes, "{name}");

    // burn: the float codes from the encoder, and the reconstructions from the int8 codes.
    let device = Backend::Flex.device();
    let model = latentlink_model::load_vae(&opened, &device).unwrap();
    let normalisation = manifest.input.normalisation();
    let float = ptq::float_codes(&model, &normalisation, &golden.inputs, &device).unwrap();
    assert_eq!(float, golden.float_codes, "{name}");
    for kind in [DecoderKind::Flex, DecoderKind::Tract] {
        let ours = decode::open(&latentlink_package::Package::open(&dir).unwrap(), kind)
            .unwrap()
            .decode(&golden.int8_codes)
            .unwrap();
        let error = verify::relative_error(&golden.reconstructions, &ours);
        assert!(error <= verify::TOLERANCE, "{name}, {kind:?}: {error:e}");
    }

    // tract: encoder.onnx gives the float code bits.
    let encoder = std::fs::read(dir.join(files::ENCODER_ONNX)).unwrap();
    let outputs = verify::run("encoder.onnx", &encoder, &golden.inputs).unwrap();
    assert_eq!(outputs[2], golden.float_codes, "{name}");

    // tract: encoder-int8.onnx gives the int8 code bits, and is the blob's, byte for byte as
    // the exporter writes it today.
    let int8 = std::fs::read(dir.join(files::ENCODER_INT8_ONNX)).unwrap();
    int8_onnx::check(&int8, &golden.inputs, &golden.int8_codes).unwrap();
    let blob = std::fs::read(dir.join(files::ENCODER_BLOB)).unwrap();
    assert!(
        int8_onnx::encoder(&blob).unwrap() == int8,
        "{name}: re-export encoder-int8.onnx"
    );
}

/// The report of the shipped package `name` on `events` new events of `simulator` (seed 7),
/// half of them held out as validation, as `latentlink eval` runs it.
fn evaluate_on_new_events(name: &str, simulator: Simulator, events: usize) -> evaluate::Report {
    let opened = latentlink_package::Package::open(&shipped(name)).unwrap();
    let manifest = &opened.manifest;
    let device = Backend::Flex.device();
    let model = latentlink_model::load_vae(&opened, &device).unwrap();
    let events = Events::from_array(simulator.simulate(events, 7).events, "sim").unwrap();
    let split = data::split(&events, 0.5, 0.01, 1).unwrap();
    evaluate::evaluate(
        &model,
        &opened.blob,
        &manifest.input.normalisation(),
        &split,
        &manifest.training_config::<TrainConfig>().unwrap(),
        &device,
    )
    .unwrap()
    .report
}

/// The claims the README makes of the shipped model, measured now rather than read from its
/// manifest: on OPIS events it never saw (as `latentlink eval` runs it), its int8 codes beat
/// PCA at the same bits, and the int8 runtime agrees with the float encoder on 99.5 % of bits.
#[test]
fn shipped_model_beats_pca_on_new_events_as_eval_measures_it() {
    let report = &evaluate_on_new_events("opis-b128", Simulator::Opis, 2000);
    assert!(
        report.nmse_runtime_codes < report.pca.nmse,
        "int8 codes {} against PCA {}",
        report.nmse_runtime_codes,
        report.pca.nmse
    );
    assert!(
        report.agreement.bit_agreement >= 0.995,
        "{:?}",
        report.agreement
    );
}

/// The claims the README makes of the shipped shower model, measured now on showers it never
/// saw: its int8 codes reconstruct the clouds with a Chamfer distance at most half the
/// classical baseline's at the same 128 bits (the 8 heaviest points, 4 bits a feature), and
/// the int8 runtime agrees with the float encoder on 99 % of bits.
#[test]
fn shipped_shower_model_beats_the_heaviest_points_on_new_showers() {
    let report = &evaluate_on_new_events("showers-b128", Simulator::Showers, 1000);
    let clouds = report.point_cloud.as_ref().unwrap();
    let (_, baseline) = clouds.baseline.as_ref().unwrap();
    assert!(
        2.0 * clouds.runtime_codes.chamfer < baseline.chamfer,
        "int8 codes {} against the heaviest points {}",
        clouds.runtime_codes.chamfer,
        baseline.chamfer
    );
    assert!(
        report.agreement.bit_agreement >= 0.99,
        "{:?}",
        report.agreement
    );
}
