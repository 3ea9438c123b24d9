#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! The command line as a user runs it: simulate, train a tiny model into a package, check
//! the package holds everything contract 2 lists and that its golden vectors reproduce.

use std::path::Path;
use std::process::{Command, Output};

use latentlink_package::files;
use latentlink_trainer::data::npy;
use latentlink_trainer::export::verify;

pub(crate) fn latentlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latentlink"))
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `latentlink simulate --sim SIM --events EVENTS --out OUT EXTRA...`, which must succeed.
pub(crate) fn simulate(sim: &str, events: usize, out: &Path, extra: &[&str]) {
    let events = events.to_string();
    let mut args = vec![
        "simulate",
        "--sim",
        sim,
        "--events",
        &events,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = latentlink(&args);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn simulate_writes_events_and_factors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sprites");
    simulate("sprites", 30, &out, &[]);
    assert_eq!(
        npy::read_f32(&out.join("events.npy")).unwrap().shape(),
        &[30, 32, 32]
    );
    assert_eq!(
        npy::read_f32(&out.join("factors.npy")).unwrap().shape(),
        &[30, 5]
    );
    let names: Vec<String> =
        serde_json::from_slice(&std::fs::read(out.join("factors.json")).unwrap()).unwrap();
    assert_eq!(names[1], "scale");
}

#[test]
fn bad_input_exits_non_zero_naming_the_file() {
    let output = latentlink(&[
        "train",
        "--data",
        "/nonexistent/run7.npy",
        "--out",
        "/tmp/never",
    ]);
    assert!(!output.status.success());
    assert!(text(&output).contains("run7.npy"), "{}", text(&output));
    let output = latentlink(&["train", "--out", "/tmp/never"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--data"), "{}", text(&output));
}

/// Runs `args`, which must fail with exit code 1 or 2 (an error, not a panic's 101 or an
/// abort's signal) and a message containing `expected`.
fn refused(args: &[&str], expected: &str) {
    let output = latentlink(args);
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "{args:?}: {:?}\n{}",
        output.status,
        text(&output)
    );
    assert!(
        text(&output).contains(expected),
        "{args:?}: {}",
        text(&output)
    );
}

#[test]
fn nonsense_inputs_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    // A file whose header claims far more than it holds (the package's npy tests claim 2^60
    // elements; here a real array is cut to 144 bytes).
    let huge = dir.path().join("huge.npy");
    npy::write_f32(&huge, &ndarray::Array2::<f32>::zeros((1000, 64))).unwrap();
    let bytes = std::fs::read(&huge).unwrap();
    std::fs::write(&huge, &bytes[..144]).unwrap();
    let out = dir.path().join("never");
    let out = out.to_str().unwrap();
    refused(
        &["train", "--data", huge.to_str().unwrap(), "--out", out],
        "huge.npy",
    );
    refused(
        &["simulate", "--events", "100000000000000", "--out", out],
        "simulate fewer",
    );
    for (option, value) in [
        ("--batch-size", "0"),
        ("--epochs", "0"),
        ("--learning-rate", "nan"),
        ("--beta", "-1"),
    ] {
        let option_value = format!("{option}={value}");
        refused(
            &["train", "--sim", "opis", &option_value, "--out", out],
            option,
        );
    }
    refused(
        &[
            "listen",
            "--link",
            "udp:0",
            "--model",
            out,
            "--idle-exit=-1",
        ],
        "--idle-exit",
    );
    refused(
        &[
            "emulate",
            "--model",
            out,
            "--link",
            "udp:127.0.0.1:9",
            "--rate",
            "1e-30",
        ],
        "--rate",
    );
}

fn check_package(dir: &Path, command: &str) {
    for name in [
        files::MANIFEST,
        files::ENCODER_BLOB,
        files::ENCODER_ONNX,
        files::ENCODER_INT8_ONNX,
        files::DECODER_ONNX,
        files::MODEL_RECORD,
        files::REPORT,
        files::SUMMARY,
        files::RECONSTRUCTIONS_PNG,
        files::ERRORS_PNG,
        files::TRAINING_PNG,
    ] {
        assert!(dir.join(name).is_file(), "missing {name}");
    }
    let manifest = latentlink_package::Package::open(dir)
        .map(|p| p.manifest)
        .unwrap();
    assert_eq!(manifest.code.bits, 16);
    assert_eq!((manifest.input.channels, manifest.input.length), (4, 256));
    // The manifest records the command that last wrote it, as a user would type it.
    assert!(
        manifest
            .command
            .starts_with(&format!("latentlink {command} ")),
        "{}",
        manifest.command
    );
    let golden = latentlink_package::Golden::read(dir).unwrap();
    // The runtime reproduces the golden int8 codes from the golden inputs, bit for bit.
    let blob = std::fs::read(dir.join(files::ENCODER_BLOB)).unwrap();
    let codes = latentlink_trainer::ptq::runtime_codes(&blob, &golden.inputs).unwrap();
    assert_eq!(codes, golden.int8_codes);
    // So does the int8 ONNX encoder in tract: it was written from this blob (quantize rewrites
    // it with the blob).
    let int8 = std::fs::read(dir.join(files::ENCODER_INT8_ONNX)).unwrap();
    latentlink_trainer::export::int8_onnx::check(&int8, &golden.inputs, &golden.int8_codes)
        .unwrap();
    // tract runs the decoder on the golden int8 codes and gives the golden reconstructions.
    let decoder = std::fs::read(dir.join(files::DECODER_ONNX)).unwrap();
    let out = verify::run("decoder.onnx", &decoder, &golden.int8_codes).unwrap();
    assert!(verify::relative_error(&golden.reconstructions, &out[0]) <= verify::TOLERANCE);
}

#[test]
fn train_writes_a_complete_package() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tiny");
    let output = latentlink(&[
        "train",
        "--sim",
        "opis",
        "--events",
        "300",
        "--bits",
        "16",
        "--hidden",
        "16",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("model id"), "{}", text(&output));
    check_package(&out, "train");
    assert!(
        !out.join("checkpoint.bpk").exists(),
        "the training checkpoint is not part of the package"
    );
    // The golden set is re-written from other events on request; the model id stays, and
    // every side still reproduces it.
    let id = latentlink_package::Package::open(&out).unwrap().model_id();
    let output = latentlink(&[
        "golden",
        "--model",
        out.to_str().unwrap(),
        "--sim",
        "opis",
        "--events",
        "40",
        "--seed",
        "9",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        latentlink_package::Golden::read(&out)
            .unwrap()
            .inputs
            .nrows(),
        40
    );
    assert_eq!(
        latentlink_package::Package::open(&out).unwrap().model_id(),
        id
    );
    check_package(&out, "train");
    // Training into it again is refused up front, before any training.
    refused(
        &["train", "--sim", "opis", "--out", out.to_str().unwrap()],
        "holds a model package already",
    );

    // eval reads the package back (burn record included) and evaluates new events, here
    // from a dataset of an HDF5 file.
    let data = dir.path().join("new");
    simulate("opis", 60, &data, &["--seed", "77", "--format", "hdf5"]);
    refused(
        &[
            "simulate",
            "--format",
            "hdf5",
            "--out",
            data.to_str().unwrap(),
        ],
        "events.h5 of an earlier simulation",
    );
    let events = format!("{}:/events", data.join("events.h5").display());
    let eval_dir = dir.path().join("eval");
    let output = latentlink(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        &events,
        "--out",
        eval_dir.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("int8 runtime codes"),
        "{}",
        text(&output)
    );
    // The epochs come from the training log the package keeps (it was trained for two).
    assert!(
        text(&output).contains("training: 2 epochs, best epoch"),
        "{}",
        text(&output)
    );
    let report = std::fs::read(eval_dir.join(files::REPORT)).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(json["events"].as_u64(), Some(30));
    assert!(json["nmse_runtime_codes"].as_f64().unwrap().is_finite());
    assert!(json["mse_runtime_codes_detector_units"].as_f64().unwrap() > 0.0);
    for name in [
        files::SUMMARY,
        files::RECONSTRUCTIONS_PNG,
        files::ERRORS_PNG,
        files::TRAINING_PNG,
    ] {
        assert!(eval_dir.join(name).is_file(), "eval wrote no {name}");
    }
    // With the factors behind the events (npy, names from factors.json beside them), the
    // report probes how well the codes predict each one.
    // (Into a new folder: the first evaluation's report is not overwritten.)
    let truth = dir.path().join("truth");
    simulate("opis", 80, &truth, &["--seed", "78"]);
    let eval_args = |eval_dir: &Path| {
        [
            "eval",
            "--model",
            out.to_str().unwrap(),
            "--data",
            truth.join("events.npy").to_str().unwrap(),
            "--factors",
            truth.join("factors.npy").to_str().unwrap(),
            "--out",
            eval_dir.to_str().unwrap(),
        ]
        .map(str::to_owned)
    };
    refused(
        &eval_args(&eval_dir).each_ref().map(String::as_str),
        "report.json of an earlier evaluation",
    );
    let eval_dir = dir.path().join("eval-factors");
    let output = latentlink(&eval_args(&eval_dir).each_ref().map(String::as_str));
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("photon_energy_ev"),
        "{}",
        text(&output)
    );
    let report = std::fs::read(eval_dir.join(files::REPORT)).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&report).unwrap();
    let probes = json["factor_probe"].as_array().unwrap();
    assert_eq!(probes.len(), 6, "{json}");
    assert!(probes.iter().all(|p| p["r2"].as_f64().unwrap().is_finite()));
    // Factors of other events are refused.
    let output = latentlink(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        &events,
        "--factors",
        truth.join("factors.npy").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("must describe the same events"),
        "{}",
        text(&output)
    );

    // quantize re-calibrates: the blob and the model id change, the package stays consistent.
    let before = latentlink_package::Package::open(&out)
        .map(|p| p.manifest)
        .unwrap()
        .model_id;
    let output = latentlink(&[
        "quantize",
        "--model",
        out.to_str().unwrap(),
        "--calibration",
        &events,
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert_ne!(
        latentlink_package::Package::open(&out)
            .map(|p| p.manifest)
            .unwrap()
            .model_id,
        before
    );
    check_package(&out, "quantize");
    // export rewrites the ONNX files and verifies them.
    std::fs::remove_file(out.join(files::DECODER_ONNX)).unwrap();
    std::fs::remove_file(out.join(files::ENCODER_INT8_ONNX)).unwrap();
    let output = latentlink(&["export", "--model", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("verified in tract")
            && text(&output).contains("equal the runtime's int8 codes"),
        "{}",
        text(&output)
    );
    check_package(&out, "quantize");

    // Events of another layout are refused with both layouts named.
    let sprites = dir.path().join("sprites");
    simulate("sprites", 5, &sprites, &[]);
    let output = latentlink(&[
        "eval",
        "--model",
        out.to_str().unwrap(),
        "--data",
        sprites.join("events.npy").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("32×32 but the model takes 4×256"),
        "{}",
        text(&output)
    );

    // Change one byte of the blob: the package no longer matches its model id.
    let blob_path = out.join(files::ENCODER_BLOB);
    let mut blob = std::fs::read(&blob_path).unwrap();
    blob[40] ^= 1;
    std::fs::write(&blob_path, blob).unwrap();
    let err = latentlink_package::Package::open(&out)
        .map(|p| p.manifest)
        .unwrap_err();
    assert!(
        matches!(err, latentlink_package::PackageError::ModelId { .. }),
        "{err}"
    );
}

#[test]
fn bernoulli_training_gives_probabilities_through_every_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sprites");
    let out_arg = out.to_str().unwrap();
    let tiny = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec![
            "train",
            "--events",
            "200",
            "--bits",
            "16",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--likelihood",
            "bernoulli",
            "--out",
            out_arg,
        ];
        args.extend_from_slice(extra);
        args
    };
    // Counts are not probabilities, and the 0/1 targets must stay unscaled.
    refused(&tiny(&["--sim", "opis"]), "needs events in [0, 1]");
    refused(
        &tiny(&["--sim", "sprites", "--scaling", "global"]),
        "--likelihood bernoulli takes the events unscaled",
    );
    let output = latentlink(&tiny(&["--sim", "sprites"]));
    assert!(output.status.success(), "{}", text(&output));
    let manifest = latentlink_package::Package::open(&out).unwrap().manifest;
    assert!(manifest.input.mean.iter().all(|&m| m == 0.0));
    assert!(manifest.input.std.iter().all(|&s| s == 1.0));
    // burn made the golden reconstructions, tract runs decoder.onnx: both end in the sigmoid,
    // so they agree and every pixel is a probability.
    let golden = latentlink_package::Golden::read(&out).unwrap();
    let decoder = std::fs::read(out.join(files::DECODER_ONNX)).unwrap();
    let decoded = verify::run("decoder.onnx", &decoder, &golden.int8_codes).unwrap();
    assert!(verify::relative_error(&golden.reconstructions, &decoded[0]) <= verify::TOLERANCE);
    assert!(decoded[0].iter().all(|p| (0.0..=1.0).contains(p)));
}
