#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! Point clouds through the whole trainer: a tiny PointNet on simulated calorimeter showers
//! trains on the Chamfer distance, quantises to the runtime's point-set block (whose codes
//! do not depend on the order of the points), exports to ONNX that tract runs like burn, and
//! is reported against the leading-points baseline.

use latentlink_model::Backend;
use latentlink_model::vae::VaeConfig;
use latentlink_trainer::cloud::WeightScaling;
use latentlink_trainer::data::{self, Events};
use latentlink_trainer::export::{onnx, verify};
use latentlink_trainer::sim::{Simulator, showers};
use latentlink_trainer::train::{self, Likelihood, Scaling, TrainConfig};
use latentlink_trainer::{evaluate, ptq};
use ndarray::Array2;

/// Each event's points in reverse order, then the first two swapped.
fn shuffled(events: &Array2<f32>) -> Array2<f32> {
    let features = showers::HIT_FEATURES;
    let mut out = events.clone();
    for (mut row, source) in out.rows_mut().into_iter().zip(events.rows()) {
        let points: Vec<&[f32]> = source.as_slice().unwrap().chunks(features).collect();
        let mut order: Vec<usize> = (0..points.len()).rev().collect();
        order.swap(0, 1);
        for (slot, &p) in order.iter().enumerate() {
            for f in 0..features {
                row[slot * features + f] = points[p][f];
            }
        }
    }
    out
}

/// Exports `model` to ONNX and checks in tract that both files give what burn gives on 8
/// validation events.
fn onnx_runs_like_burn(
    model: &latentlink_model::Vae,
    normalisation: &data::Normalisation,
    split: &data::Split,
) {
    let shape = split.train.shape;
    let encoder = onnx::to_bytes(&onnx::encoder(model, normalisation, shape)).unwrap();
    let decoder = onnx::to_bytes(&onnx::decoder(model, normalisation)).unwrap();
    let inputs = split.validation.data.slice(ndarray::s![..8, ..]).to_owned();
    let inference = Backend::Flex.device();
    verify::check(
        model,
        normalisation,
        &encoder,
        &decoder,
        &inputs,
        &inference,
    )
    .unwrap();
}

struct Tiny {
    split: data::Split,
    normalisation: data::Normalisation,
    config: TrainConfig,
    model: latentlink_model::Vae,
    log: train::TrainingLog,
}

/// A tiny PointNet trained on 400 showers with `likelihood`; asserts that its validation
/// error from the codes (the Chamfer distance, the weighted transport for the weighted
/// loss) fell by at least `gain` (a fraction) from the first epoch's.
fn tiny(likelihood: Likelihood, epochs: usize, gain: f64) -> Tiny {
    let events = Events::from_array(Simulator::Showers.simulate(400, 2).events, "sim").unwrap();
    let split = data::split(&events, 0.2, 0.1, 2).unwrap();
    let shape = split.train.shape;
    assert_eq!((shape.channels, shape.length), (showers::HITS, 4));
    let normalisation = Scaling::Points.fit(&split.train.data, shape);
    let config = TrainConfig {
        epochs,
        warmup_epochs: 1,
        batch_size: 32,
        scaling: Scaling::Points,
        likelihood,
        point_weight: WeightScaling::of(&normalisation, shape.length),
        ..TrainConfig::default()
    };
    let device = Backend::Flex.training_device();
    device.seed(3);
    let floor = (likelihood == Likelihood::SinkhornWeighted)
        .then(|| config.point_weight.map(WeightScaling::floor))
        .flatten();
    let architecture = VaeConfig::new(shape.channels, shape.length, 16, vec![16])
        .with_encoder("pointnet".into())
        .with_point_widths(Some(vec![8, 16]))
        .with_point_weight_floor(floor);
    architecture.validate().unwrap();
    let (model, log) = train::train(
        architecture.init(&device),
        &config,
        &normalisation.apply(&split.train.data),
        &normalisation.apply(&split.validation.data),
        &device,
        None,
        false,
    )
    .unwrap();
    let (first, best) = (
        log.epochs[0].validation_code_nmse,
        log.epochs[log.best_epoch - 1].validation_code_nmse,
    );
    eprintln!("{likelihood:?}: validation error from codes {first:.3} → {best:.3}");
    assert!(
        best < (1.0 - gain) * first,
        "validation error from codes {first} → {best}"
    );
    Tiny {
        split,
        normalisation,
        config,
        model,
        log,
    }
}

#[test]
fn a_tiny_pointnet_learns_with_the_sinkhorn_loss_too() {
    // Measured: 3.59 → 3.04 (15 %) in these 6 epochs; without a gradient through the
    // transport plan it would not move.
    tiny(Likelihood::Sinkhorn, 6, 0.05);
}

#[test]
fn a_tiny_pointnet_learns_with_the_energy_weighted_sinkhorn_loss() {
    // Measured: weighted transport from the codes 6.67 → 5.67 in these 6 epochs.
    let Tiny {
        split,
        normalisation,
        model,
        ..
    } = tiny(Likelihood::SinkhornWeighted, 6, 0.05);
    let shape = split.train.shape;
    // No reconstructed point carries a negative weight (energy) in detector units, however
    // far below zero the decoder's linear output goes.
    let inference = Backend::Flex.device();
    let codes = Array2::from_shape_fn((64, 16), |(i, j)| {
        f32::from(u8::from((i * 7 + j * 3) % 5 < 2))
    });
    let decoded = latentlink_model::tensor::to_array(
        model.decode(latentlink_model::tensor::to_tensor(&codes, &inference)),
    )
    .unwrap();
    let weights: Vec<f32> = normalisation
        .invert(&decoded)
        .iter()
        .skip(shape.length - 1)
        .step_by(shape.length)
        .copied()
        .collect();
    assert!(weights.iter().all(|&w| w >= 0.0), "{weights:?}");
    // The ONNX decoder floors the weights as burn does.
    onnx_runs_like_burn(&model, &normalisation, &split);
}

#[test]
fn the_energy_weighted_loss_needs_the_weight_scaling() {
    let config = TrainConfig {
        likelihood: Likelihood::SinkhornWeighted,
        ..TrainConfig::default()
    };
    assert!(matches!(
        config.check(),
        Err(train::TrainError::MissingPointWeight)
    ));
    // With the scaling but a decoder that lets weights go below zero, training refuses too.
    let config = TrainConfig {
        point_weight: Some(WeightScaling {
            mean: 0.5,
            std: 1.0,
        }),
        ..config
    };
    let device = Backend::Flex.training_device();
    let model = VaeConfig::new(4, 4, 8, vec![8])
        .with_encoder("pointnet".into())
        .init(&device);
    let events = Array2::zeros((4, 16));
    assert!(matches!(
        train::train(model, &config, &events, &events, &device, None, false),
        Err(train::TrainError::MissingPointWeight)
    ));
}

#[test]
fn a_tiny_pointnet_trains_on_chamfer_and_its_int8_codes_ignore_the_point_order() {
    let Tiny {
        split,
        normalisation,
        config,
        model,
        log,
    } = tiny(Likelihood::Chamfer, 12, 0.1);
    let shape = split.train.shape;

    // The blob's point-set block pools with a max: the same codes in any order, exactly.
    let inference = Backend::Flex.device();
    let blob = ptq::quantize(&model, &normalisation, shape, &split.train.data, &inference).unwrap();
    let runtime = latentlink_runtime::Model::from_bytes(&blob).unwrap();
    assert!(
        runtime
            .layers()
            .any(|l| matches!(l, Ok(latentlink_runtime::blob::Layer::PointSet(_))))
    );
    let validation = &split.validation.data;
    let codes = ptq::runtime_codes(&blob, validation).unwrap();
    assert_eq!(
        codes,
        ptq::runtime_codes(&blob, &shuffled(validation)).unwrap()
    );

    let evaluation =
        evaluate::evaluate(&model, &blob, &normalisation, &split, &config, &inference).unwrap();
    let report = &evaluation.report;
    assert!(
        report.agreement.bit_agreement > 0.9,
        "{:?}",
        report.agreement
    );
    let cloud = report.point_cloud.as_ref().unwrap();
    let (baseline, baseline_score) = cloud.baseline.as_ref().unwrap();
    assert!(baseline.bits() <= 16 && baseline.points >= 1);
    for score in [&cloud.runtime_codes, baseline_score] {
        assert!(score.chamfer > 0.0 && score.emd > 0.0 && score.chamfer.is_finite());
        assert_eq!(score.observables.centroid_rms.len(), 3);
    }
    assert!(evaluate::markdown("tiny", report, &log).contains("heaviest points"));
    // errors.png shows each event's Chamfer distance; their mean is the report's.
    let per_event = evaluation.event_chamfer.as_ref().unwrap();
    let mean = per_event.iter().sum::<f64>() / per_event.len() as f64;
    assert!(
        (mean - cloud.runtime_codes.chamfer).abs() < 1e-3 * cloud.runtime_codes.chamfer,
        "{mean} vs {}",
        cloud.runtime_codes.chamfer
    );
    let dir = tempfile::tempdir().unwrap();
    let plots = evaluate::write_plots(dir.path(), "tiny", &evaluation, shape, &log).unwrap();
    assert!(
        plots.iter().all(|p| p.metadata().unwrap().len() > 1000),
        "{plots:?}"
    );

    // ONNX: a per-point MatMul and a ReduceMax, run by tract as burn runs it.
    onnx_runs_like_burn(&model, &normalisation, &split);
}
