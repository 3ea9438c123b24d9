#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The front-end firmware, built for `thumbv7em-none-eabihf` with the shipped model, runs on
//! QEMU's Cortex-M4 board: every code it sends back over its emulated UART must equal the
//! host runtime's and the package's golden codes, bit for bit, in frames sealed with the
//! deployment key it was built with (`LATENTLINK_KEY_FILE`). So must a point-cloud package
//! (PointNet encoder) picked with `LATENTLINK_MODEL`. And the build's memory budget check must
//! stop a build whose model does not fit.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` Rust target (`.ci/run` installs
//! both). Where either is missing the tests say so and pass, unless
//! `LATENTLINK_FIRMWARE_TEST=1` (set in CI), which makes them required.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use latentlink_bridge::decode::DecoderKind;
use latentlink_package::Package;
use latentlink_rig::{feed, qemu};
use latentlink_runtime::wire::FrameKey;
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::train::{Likelihood, Scaling, TrainConfig};

/// Simulated events after the package's golden ones.
const EVENTS: usize = 300;

/// The tests build into one target folder with different budgets: one at a time.
static FIRMWARE: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn firmware_dir() -> PathBuf {
    root().join("firmware-bridge/firmware")
}

/// The firmware's own target folder, beside the workspace's (never the same folder: the
/// outer `cargo test` may hold the workspace's build lock).
fn firmware_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("firmware")
}

fn required() -> bool {
    std::env::var("LATENTLINK_FIRMWARE_TEST").is_ok_and(|v| v == "1")
}

/// Whether the tools are here; panics if they are not but the test is required.
fn tools_present() -> bool {
    let qemu = Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let target = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .is_ok_and(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib/thumbv7em-none-eabihf")
                .is_dir()
        });
    if qemu && target {
        return true;
    }
    let missing = "qemu-system-arm (apt-get install qemu-system-arm) or the thumbv7em-none-eabihf \
                   target (rustup target add thumbv7em-none-eabihf)";
    assert!(
        !required(),
        "LATENTLINK_FIRMWARE_TEST=1 but {missing} is missing"
    );
    eprintln!("skipped: {missing} is missing");
    false
}

/// The key the test images are built with, in a key file in the firmware's target folder
/// (one fixed path, so consecutive builds reuse each other).
fn test_key() -> (FrameKey, PathBuf) {
    let bytes = [0xa5; 16];
    let path = firmware_target().join("test-frame.key");
    std::fs::create_dir_all(firmware_target()).unwrap();
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&path, &text).unwrap();
    }
    (FrameKey::from_bytes(&bytes), path)
}

/// `cargo build --release` of the firmware with the test key, and extra environment.
fn build_firmware(env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(firmware_dir())
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "thumbv7em-none-eabihf",
        ])
        .env("CARGO_TARGET_DIR", firmware_target())
        .env_remove("LATENTLINK_FLASH_BUDGET")
        .env_remove("LATENTLINK_RAM_BUDGET")
        .env_remove("LATENTLINK_MODEL")
        .env("LATENTLINK_KEY_FILE", test_key().1);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("cargo runs")
}

#[test]
fn firmware_in_qemu_sends_codes_bit_exact_with_the_host() {
    if !tools_present() {
        return;
    }
    let _one_at_a_time = FIRMWARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let build = build_firmware(&[]);
    assert!(
        build.status.success(),
        "firmware build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let image = firmware_target().join("thumbv7em-none-eabihf/release/latentlink-firmware");
    let model = Package::open(&root().join("models/opis-b128")).unwrap();
    let simulated = Simulator::Opis.simulate(EVENTS, 11).events;
    let simulated = simulated
        .into_shape_with_order((EVENTS, 1024))
        .expect("OPIS events are 4 × 256 samples");
    let (events, golden) = feed::golden_first(&model, &simulated).unwrap();

    let run = qemu::run(
        &image,
        &model,
        &events,
        Some(&test_key().0),
        Some(DecoderKind::Tract),
        Duration::from_secs(400),
    )
    .unwrap();
    eprintln!("{}", qemu::table(&run));

    let total = EVENTS + golden.nrows();
    assert_eq!(run.feed.received, total, "every code came back");
    assert_eq!(run.feed.bit_exact, total, "{:?}", run.feed.mismatched);
    assert_eq!(feed::golden_matches(&run.codes, &golden), golden.nrows());
    let totals = run.feed.counters.totals();
    assert_eq!(
        (totals.decoded, totals.lost, totals.rejected),
        (total as u64, 0, 0)
    );

    // The board's own account agrees, and its figures are physically sensible.
    let report = &run.report;
    assert_eq!((report.events, report.rejected), (total as u64, 0));
    assert_eq!(report.frames, run.feed.counters.frames);
    // Every frame was sealed (the bridge took them under the key) and had its cost timed.
    assert_eq!(report.sealed, 1);
    assert!(report.instructions_per_frame() > 0.0);
    assert!(report.ticks_min > 0 && report.ticks_min <= report.ticks_max);
    // SMLAD does two MACs, so no encoder can beat 2 MAC per instruction.
    assert!(report.macs_per_instruction() < 2.0);
    assert!(
        run.footprint.rodata >= report.blob,
        "the weights are in flash"
    );
    assert!(run.footprint.flash() <= report.flash_budget);
    assert!(run.footprint.static_ram() + report.stack_peak <= report.ram_budget);
    assert!(run.footprint.static_ram() >= report.scratch);
    let nmse = run.feed.nmse.unwrap();
    assert!(nmse < 0.3, "decoded codes from the board: nMSE {nmse}");
    assert_eq!(run.feed.chamfer, None, "spectra are not point clouds");
}

#[test]
fn a_pointnet_package_runs_bit_exact_on_the_board() {
    if !tools_present() {
        return;
    }
    // A tiny point-cloud package, trained in seconds: the path, not the quality, is tested.
    let dir = tempfile::tempdir().unwrap();
    let package_dir = dir.path().join("showers");
    let events = latentlink_trainer::data::Events::from_array(
        Simulator::Showers.simulate(300, 4).events,
        "sim",
    )
    .unwrap();
    let shape = events.shape;
    latentlink_trainer::pipeline::train_package(&latentlink_trainer::pipeline::TrainRequest {
        events,
        data_description: "simulator".into(),
        config: latentlink_model::vae::VaeConfig::new(shape.channels, shape.length, 32, vec![16])
            .with_encoder("pointnet".into())
            .with_point_widths(Some(vec![8, 16])),
        train_config: TrainConfig {
            epochs: 2,
            warmup_epochs: 1,
            batch_size: 32,
            scaling: Scaling::Points,
            likelihood: Likelihood::Chamfer,
            ..TrainConfig::default()
        },
        backend: latentlink_model::Backend::Flex,
        out: package_dir.clone(),
        name: "showers".into(),
        command: "firmware test".into(),
        progress: false,
    })
    .unwrap();

    let _one_at_a_time = FIRMWARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let build = build_firmware(&[("LATENTLINK_MODEL", package_dir.to_str().unwrap())]);
    assert!(
        build.status.success(),
        "firmware build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let image = firmware_target().join("thumbv7em-none-eabihf/release/latentlink-firmware");
    let package = Package::open(&package_dir).unwrap();
    let showers = Simulator::Showers.simulate(40, 12).events;
    let showers = showers
        .into_shape_with_order((40, shape.features()))
        .unwrap();
    let (events, golden) = feed::golden_first(&package, &showers).unwrap();
    let run = qemu::run(
        &image,
        &package,
        &events,
        Some(&test_key().0),
        Some(DecoderKind::Flex),
        Duration::from_secs(400),
    )
    .unwrap();
    eprintln!("{}", qemu::table(&run));
    let total = events.nrows();
    assert_eq!(run.feed.received, total, "every code came back");
    assert_eq!(run.feed.bit_exact, total, "{:?}", run.feed.mismatched);
    assert_eq!(feed::golden_matches(&run.codes, &golden), golden.nrows());
    // A cloud's error is its Chamfer distance, in the units of the package's report.
    let chamfer = run.feed.chamfer.unwrap();
    assert!(chamfer.is_finite() && chamfer > 0.0, "{chamfer}");
}

#[test]
fn a_build_over_the_memory_budget_fails_with_a_clear_message() {
    if !tools_present() {
        return;
    }
    let _one_at_a_time = FIRMWARE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // The shipped encoder's 337 KB of weights do not fit 256 KiB of flash ...
    let flash = build_firmware(&[("LATENTLINK_FLASH_BUDGET", "256K")]);
    let stderr = String::from_utf8_lossy(&flash.stderr);
    assert!(!flash.status.success(), "built over budget:\n{stderr}");
    assert!(
        stderr.contains("does not fit the memory budget"),
        "{stderr}"
    );
    assert!(stderr.contains("flash: weights 337032 B"), "{stderr}");
    assert!(stderr.contains("over by"), "{stderr}");
    // ... and its scratch, buffers and stack do not fit 16 KiB of RAM.
    let ram = build_firmware(&[("LATENTLINK_RAM_BUDGET", "16K")]);
    let stderr = String::from_utf8_lossy(&ram.stderr);
    assert!(!ram.status.success(), "built over budget:\n{stderr}");
    assert!(stderr.contains("RAM:   scratch 1280 B"), "{stderr}");
    // The default budget builds (and the next build of the first test reuses it).
    assert!(build_firmware(&[]).status.success());
}
