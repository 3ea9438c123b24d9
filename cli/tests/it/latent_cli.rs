#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! `latentlink latent …` on the shipped packages: traversals rank every bit, interpolation
//! walks from one code to the other, arithmetic follows its rule, bad event indices are
//! refused.

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
