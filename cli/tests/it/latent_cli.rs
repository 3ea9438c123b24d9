#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! `latentlink latent …` on the shipped packages: traversals rank every bit, interpolation
//! walks from one code to the other, arithmetic follows its rule, generation writes its
//! events, bad event indices are refused; Polarix lasing-off references are created and
//! scored; and on an archive, neighbours and anomaly scores.

use std::path::{Path, PathBuf};

use latentlink_trainer::data::npy;

use crate::model_cli::{latentlink, simulate, text};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models")
        .join(name)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn as_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn run(args: &[&str]) -> String {
    let output = latentlink(args);
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

#[test]
fn traversal_interpolation_and_arithmetic_on_the_shipped_shower_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("showers");
    simulate("showers", 40, &data, &[]);
    let events = data.join("events.npy");
    let (model, events) = (shipped("showers-b128"), events.to_str().unwrap());
    let out = |name: &str| dir.path().join(name);
    let common = |out: &Path| {
        vec![
            "--model".to_owned(),
            model.to_str().unwrap().to_owned(),
            "--data".to_owned(),
            events.to_owned(),
            "--events".to_owned(),
            "16".to_owned(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
        ]
    };
    let with = |command: &str, out: &Path, extra: &[&str]| {
        let mut args = vec!["latent".to_owned(), command.to_owned()];
        args.extend(common(out));
        args.extend(extra.iter().map(|&a| a.to_owned()));
        args
    };

    // Every bit is ranked, largest effect first; flipping some bit moves the clouds.
    let traverse = out("traverse");
    run(&as_str(&with("traverse", &traverse, &["--rows", "2"])));
    let effects = json(&traverse.join("effects.json"));
    let effects = effects["effects"].as_array().unwrap();
    assert_eq!(effects.len(), 128);
    let changes: Vec<f64> = effects
        .iter()
        .map(|e| e["mean_change"].as_f64().unwrap())
        .collect();
    assert!(changes.windows(2).all(|w| w[0] >= w[1]) && changes[0] > 0.0);
    for name in ["traversal.png", "effects.png"] {
        assert!(
            traverse.join(name).metadata().unwrap().len() > 1000,
            "{name}"
        );
    }
    // A second run into the same folder would overwrite it: refused.
    let again = latentlink(&as_str(&with("traverse", &traverse, &[])));
    assert!(!again.status.success());
    assert!(text(&again).contains("earlier run"), "{}", text(&again));

    // One step per differing bit, both ends included.
    let path = out("path");
    let said = run(&as_str(&with(
        "interpolate",
        &path,
        &["--from", "0", "--to", "1"],
    )));
    let differing: usize = said
        .split("differ in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let steps = npy::read_f32(&path.join("interpolation.npy")).unwrap();
    assert_eq!(steps.shape(), &[differing + 1, 32 * 4]);

    // A − A + C is C: no bit of C changes.
    let sum = out("sum");
    run(&as_str(&with(
        "arithmetic",
        &sum,
        &["--a", "0", "--b", "0", "--c", "2"],
    )));
    assert_eq!(json(&sum.join("arithmetic.json"))["bits_changed"], 0);

    // Generation: the tree describes the codes at least as well as independent bits, and
    // every generated event is written.
    let generated = out("generate");
    run(&as_str(&with("generate", &generated, &["--count", "50"])));
    let report = json(&generated.join("generate.json"));
    let [independent, tree] = [0, 1].map(|m| report["log_likelihood"][m].as_f64().unwrap());
    assert!(tree >= independent - 1e-9, "{report}");
    assert_eq!(report["statistics"].as_array().unwrap().len(), 4);
    let events = npy::read_f32(&generated.join("generated.npy")).unwrap();
    assert_eq!(events.shape(), &[50, 32 * 4]);

    // An event the data do not hold is named in the error.
    let refused = latentlink(&as_str(&with(
        "arithmetic",
        &out("bad"),
        &["--a", "0", "--b", "1", "--c", "40"],
    )));
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("--c 40: the data hold 40 events"),
        "{}",
        text(&refused)
    );
}

#[test]
fn neighbours_and_anomaly_work_on_an_archive_without_a_model() {
    use latentlink_bridge::archive::ArchiveWriter;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("run.llca");
    let mut writer = ArchiveWriter::open(&archive, 0xabc, 16).unwrap();
    // Stream 1: events 0..40, each code one of four patterns with event-dependent noise in
    // byte 5; event 17 of stream 2 sets every bit.
    for event in 0..40u64 {
        let mut code = [0u8; 16];
        code[(event % 4) as usize] = 0x0f;
        code[5] = (event % 3) as u8;
        writer.append(1, event, &code).unwrap();
    }
    writer.append(2, 17, &[0xff; 16]).unwrap();
    drop(writer);
    let archive = archive.to_str().unwrap();

    let said = run(&[
        "latent",
        "neighbours",
        "--archive",
        archive,
        "--event",
        "4",
        "--stream",
        "1",
        "-k",
        "3",
    ]);
    // Event 4's nearest share its pattern (events 8, 12, 16 …, event % 4 == 0) and differ
    // at most in byte 5.
    let rows: Vec<&str> = said.lines().filter(|l| l.starts_with("| 1 |")).collect();
    assert_eq!(rows.len(), 3, "{said}");
    for row in rows {
        let cells: Vec<u64> = row
            .split('|')
            .filter_map(|c| c.trim().parse().ok())
            .collect();
        assert_eq!(cells[1] % 4, 0, "{row}");
        assert!(cells[2] <= 2, "{row}");
    }
    // Event 17 is in both streams: the command asks which.
    let ambiguous = latentlink(&[
        "latent",
        "neighbours",
        "--archive",
        archive,
        "--event",
        "17",
    ]);
    assert!(!ambiguous.status.success());
    assert!(
        text(&ambiguous).contains("choose with --stream"),
        "{}",
        text(&ambiguous)
    );

    let scores = dir.path().join("surprise.csv");
    let said = run(&[
        "latent",
        "anomaly",
        "--archive",
        archive,
        "--out",
        scores.to_str().unwrap(),
        "--top",
        "1",
    ]);
    assert!(said.contains("| 2 | 17 |"), "{said}");
    let csv = std::fs::read_to_string(&scores).unwrap();
    assert_eq!(csv.lines().count(), 42);
    assert!(csv.starts_with("stream,event,surprise_bits\n1,0,"));
    // The scores file is never overwritten.
    let again = latentlink(&[
        "latent",
        "anomaly",
        "--archive",
        archive,
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
}

#[test]
fn a_beta_sweep_keeps_less_information_at_larger_beta() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("beta");
    let said = run(&[
        "latent",
        "beta-sweep",
        "--sim",
        "opis",
        "--events",
        "400",
        "--betas",
        "1000,0.0001",
        "--latents",
        "4",
        "--hidden",
        "16",
        "--epochs",
        "10",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(said.contains("D = −dKL/d ln β"), "{said}");
    let points = json(&out.join("beta.json"));
    let points = points.as_array().unwrap();
    // Sorted by β; the KL falls as β rises, so D is positive.
    let kl = |i: usize| points[i]["kl_nats"].as_f64().unwrap();
    assert_eq!(points[0]["beta"].as_f64(), Some(0.0001));
    assert!(kl(0) > 2.0 * kl(1), "{points:?}");
    assert!(points[0]["dimension_rate"].as_f64().unwrap() > 0.0);
    assert!(out.join("beta.png").metadata().unwrap().len() > 1000);
    let bad = latentlink(&[
        "latent",
        "beta-sweep",
        "--sim",
        "opis",
        "--betas",
        "0",
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("above 0"), "{}", text(&bad));
}

/// Polarix end to end on a tiny model: simulate (with the truths), train a Gaussian VAE,
/// find the lasing latent, create the references and score them against the truth.
#[test]
fn lasing_off_creates_references_and_scores_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("polarix");
    simulate("polarix", 500, &data, &[]);
    for name in ["events.npy", "factors.npy", "power.npy", "lasing_off.npy"] {
        assert!(data.join(name).exists(), "{name}");
    }
    let model = dir.path().join("model");
    let file = |name: &str| data.join(name).to_str().unwrap().to_owned();
    run(&[
        "train",
        "--data",
        &file("events.npy"),
        "--head",
        "gaussian",
        "--bits",
        "8",
        "--hidden",
        "32",
        "--epochs",
        "6",
        "--out",
        model.to_str().unwrap(),
    ]);
    let out = dir.path().join("lasing-off");
    let (events, factors, power, twins) = (
        file("events.npy"),
        file("factors.npy"),
        file("power.npy"),
        file("lasing_off.npy"),
    );
    let args = |factor: &str, out: &Path| {
        vec![
            "latent".to_owned(),
            "lasing-off".to_owned(),
            "--model".to_owned(),
            model.to_str().unwrap().to_owned(),
            "--data".to_owned(),
            events.clone(),
            "--factors".to_owned(),
            factors.clone(),
            "--factor".to_owned(),
            factor.to_owned(),
            "--power".to_owned(),
            power.clone(),
            "--lasing-off".to_owned(),
            twins.clone(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
        ]
    };
    let said = run(&as_str(&args("lasing", &out)));
    assert!(said.contains("lasing lives in latent"), "{said}");
    let report = json(&out.join("lasing-off.json"));
    let information = report["lasing_latent"]["information"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&information), "{report}");
    let scores = report["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3, "created, closest shot, same bunch");
    let error = |i: usize| scores[i]["profile_error"].as_f64().unwrap();
    // The same bunch without lasing is the best reference there can be.
    assert!(error(2) < error(1) && error(2) < error(0), "{report}");
    assert!(out.join("lasing-off.png").metadata().unwrap().len() > 1000);
    let references = npy::read_f32(&out.join("references.npy")).unwrap();
    assert_eq!(references.shape(), &[500, 32, 32]);
    let measured = npy::read_f32(&out.join("power.npy")).unwrap();
    assert_eq!(measured.shape(), &[500, 32]);

    // A factor the file does not have is named in the error, with the ones it has.
    let wrong = latentlink(&as_str(&args("lazing", &dir.path().join("wrong"))));
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("no factor \"lazing\"") && text(&wrong).contains("pulse_energy_uj"),
        "{}",
        text(&wrong)
    );
}
