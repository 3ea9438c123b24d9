#![allow(clippy::unwrap_used)]
//! The whole path in one test: train a tiny model for a few seconds into a package, check
//! the runtime reproduces its golden int8 codes, stream its codes over a pseudo-terminal and
//! over TCP with injected faults, decode, and check the accounting and the reconstruction
//! error against the same events decoded directly.

use latentlink_bridge::decode::DecoderKind;
use latentlink_model::Backend;
use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::vae::VaeConfig;
use latentlink_rig::demo::{self, DemoConfig};
use latentlink_trainer::data::Events;
use latentlink_trainer::pipeline::{self, TrainRequest};
use latentlink_trainer::ptq;
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::train::{TrainConfig, nmse};

#[test]
fn train_encode_stream_with_faults_decode() {
    let dir = tempfile::tempdir().unwrap();
    let model_dir = dir.path().join("tiny");
    let events = Events::from_array(Simulator::Opis.simulate(400, 3).events, "sim").unwrap();
    let outcome = pipeline::train_package(&TrainRequest {
        config: VaeConfig::new(4, 256, 16, vec![16]),
        train_config: TrainConfig {
            // Enough steps for a 16-unit model to learn something of 400 events in
            // seconds; the path, not the quality, is under test here.
            epochs: 8,
            warmup_epochs: 1,
            batch_size: 16,
            learning_rate: 3e-3,
            ..TrainConfig::default()
        },
        events,
        data_description: "simulator".into(),
        backend: Backend::Flex,
        out: model_dir.clone(),
        name: "tiny".into(),
        command: "whole_path test".into(),
        progress: false,
    })
    .unwrap();
    assert_eq!(outcome.manifest.code.bits, 16);

    // The package's runtime blob reproduces its golden int8 codes.
    let opened = latentlink_package::Package::open(&model_dir).unwrap();
    let golden = latentlink_package::Golden::read(&model_dir).unwrap();
    assert_eq!(
        ptq::runtime_codes(&opened.blob, &golden.inputs).unwrap(),
        golden.int8_codes
    );

    // Stream 600 new events over a pty and TCP, with every kind of fault.
    let events = Events::from_array(Simulator::Opis.simulate(600, 9).events, "sim").unwrap();
    let config = DemoConfig {
        package: std::sync::Arc::new(opened.clone()),
        events: events.clone(),
        out: dir.path().join("demo"),
        decoder: DecoderKind::Tract,
        codes_per_frame: 8,
        faults: "drop=0.05,flip=0.05,truncate=0.05,duplicate=0.05,reorder=0.05,garbage=0.05"
            .parse()
            .unwrap(),
        extra_link: None,
    };
    let summary = demo::run(&config).unwrap();
    assert_eq!(summary.links.len(), 2);

    // What the bridge decoded is exactly what the runtime codes decode to directly.
    let device = Backend::Flex.device();
    let model = latentlink_model::load_vae(&opened, &device).unwrap();
    let normalisation = &opened.manifest.input.normalisation();
    for link in &summary.links {
        let f = &link.faults;
        assert!(f.dropped[0] + f.flipped[0] + f.truncated[0] > 0, "{f:?}");
        assert_eq!(link.decoded + link.lost + link.rejected, 600, "{link:?}");
        assert_eq!(link.lost, f.dropped[1], "{link:?}");
        assert_eq!(link.rejected, f.flipped[1] + f.truncated[1], "{link:?}");
        assert_eq!(
            link.decoded,
            600 - f.dropped[1] - f.flipped[1] - f.truncated[1]
        );
        assert!(link.compression_ratio > 100.0, "{link:?}");

        let (reconstructions, ids) = latentlink_bridge::sink::read_chunks(
            &config
                .out
                .join(if link.link.starts_with("serial") {
                    "serial"
                } else {
                    "tcp"
                })
                .join("reconstructions"),
        )
        .unwrap();
        let rows: Vec<usize> = ids.column(1).iter().map(|&e| e as usize).collect();
        let raw = events.data.select(ndarray::Axis(0), &rows);
        let codes = ptq::runtime_codes(&opened.blob, &raw).unwrap();
        let direct =
            normalisation.invert(&to_array(model.decode(to_tensor(&codes, &device))).unwrap());
        let bridge_error = nmse(
            &normalisation.apply(&raw),
            &normalisation.apply(&reconstructions),
        );
        let direct_error = nmse(&normalisation.apply(&raw), &normalisation.apply(&direct));
        assert!((bridge_error - link.nmse).abs() < 1e-9);
        assert!(
            (bridge_error - direct_error).abs() <= 1e-4 * direct_error,
            "{bridge_error} vs {direct_error}"
        );
        // New events of the same simulator: about the error the package's report states.
        let reported = outcome.evaluation.report.nmse_runtime_codes;
        assert!(
            bridge_error < 1.0 && (bridge_error - reported).abs() < 0.25 * reported,
            "bridge nMSE {bridge_error}, package report {reported}"
        );
    }
}
