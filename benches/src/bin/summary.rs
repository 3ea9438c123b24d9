//! Prints the last `cargo bench` run as Markdown: per group, each benchmark's median time with
//! its 95 % confidence interval, its throughput, and its speed relative to the group's
//! baseline (tract where it ran, else the first benchmark).
//!
//! Run: `cargo run --release -p latentlink-benches --bin summary` (reads
//! `$CARGO_TARGET_DIR/criterion`, else `target/criterion`).
#![allow(clippy::print_stdout)] // it prints a report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// One benchmark's result.
struct Result1 {
    function: String,
    median_ns: f64,
    low_ns: f64,
    high_ns: f64,
    elements: Option<f64>,
    bytes: Option<f64>,
}

fn main() -> Result<()> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion");
    let mut groups: BTreeMap<String, Vec<Result1>> = BTreeMap::new();
    collect(&root, &mut groups)
        .with_context(|| format!("no criterion results under {}", root.display()))?;
    for (group, results) in &groups {
        let baseline = results
            .iter()
            .find(|r| r.function == "tract")
            .or_else(|| results.first());
        println!("\n**{group}**\n");
        println!(
            "| benchmark | median | 95 % CI | throughput | speed vs {} |",
            baseline.map_or("–", |b| b.function.as_str())
        );
        println!("|---|---|---|---|---|");
        for r in results {
            let throughput = match (r.elements, r.bytes) {
                (Some(n), _) => format!("{} /s", si(n / (r.median_ns * 1e-9))),
                (_, Some(n)) => format!("{}B/s", si(n / (r.median_ns * 1e-9))),
                _ => "–".into(),
            };
            let ratio = baseline.map_or(1.0, |b| b.median_ns / r.median_ns);
            println!(
                "| {} | {} | {} – {} | {throughput} | {ratio:.2}× |",
                r.function,
                time(r.median_ns),
                time(r.low_ns),
                time(r.high_ns)
            );
        }
    }
    Ok(())
}

fn collect(dir: &Path, groups: &mut BTreeMap<String, Vec<Result1>>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        let benchmark = path.join("new/benchmark.json");
        if benchmark.exists() {
            let meta: Value = serde_json::from_str(&std::fs::read_to_string(&benchmark)?)?;
            let estimates: Value =
                serde_json::from_str(&std::fs::read_to_string(path.join("new/estimates.json"))?)?;
            let median = &estimates["median"];
            groups
                .entry(meta["group_id"].as_str().unwrap_or("?").to_string())
                .or_default()
                .push(Result1 {
                    function: meta["function_id"].as_str().unwrap_or("?").to_string(),
                    median_ns: median["point_estimate"].as_f64().unwrap_or(f64::NAN),
                    low_ns: median["confidence_interval"]["lower_bound"]
                        .as_f64()
                        .unwrap_or(f64::NAN),
                    high_ns: median["confidence_interval"]["upper_bound"]
                        .as_f64()
                        .unwrap_or(f64::NAN),
                    elements: meta["throughput"]["Elements"].as_f64(),
                    bytes: meta["throughput"]["Bytes"].as_f64(),
                });
        } else {
            collect(&path, groups)?;
        }
    }
    Ok(())
}

fn time(ns: f64) -> String {
    match ns {
        n if n >= 1e9 => format!("{:.2} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn si(value: f64) -> String {
    match value {
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.1} "),
    }
}
