#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! A tiny end-to-end training run (seconds): simulate, train, quantise, run the blob in the
//! runtime, evaluate. Checks the pieces fit, not the final quality (that is the shipped
//! model's report).

use latentlink_model::Backend;
use latentlink_model::latent::HeadKind;
use latentlink_model::vae::{Vae, VaeConfig};
use latentlink_trainer::data::{self, Events, Normalisation};
use latentlink_trainer::evaluate;
use latentlink_trainer::ptq;
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::train::{self, TrainConfig, TrainError, TrainingLog};

fn tiny_split() -> data::Split {
    let events = Events::from_array(Simulator::Opis.simulate(400, 3).events, "sim").unwrap();
    data::split(&events, 0.2, 0.1, 3).unwrap()
}

/// Trains `model` on the tiny split (seeded, no checkpoint, no progress bar).
fn train_tiny(
    split: &data::Split,
    normalisation: &Normalisation,
    model: VaeConfig,
    config: &TrainConfig,
) -> Result<(Vae, TrainingLog), TrainError> {
    let device = Backend::Flex.training_device();
    device.seed(5);
    let train_data = normalisation.apply(&split.train.data);
    let validation = normalisation.apply(&split.validation.data);
    train::train(
        model.init(&device),
        config,
        &train_data,
        &validation,
        &device,
        None,
        false,
    )
}

/// The int8 blob of `model`, calibrated on the split's training events (as the pipeline does).
fn quantize_on_train(model: &Vae, normalisation: &Normalisation, split: &data::Split) -> Vec<u8> {
    ptq::quantize(
        model,
        normalisation,
        split.train.shape,
        &split.train.data,
        &Backend::Flex.device(),
    )
    .unwrap()
}

fn tiny_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        warmup_epochs: 1,
        batch_size: 64,
        patience: 10,
        ..TrainConfig::default()
    }
}

#[test]
fn tiny_binary_model_trains_quantises_and_runs_in_the_runtime() {
    let split = tiny_split();
    let normalisation = Normalisation::fit(&split.train.data);
    let (model, log) = train_tiny(
        &split,
        &normalisation,
        VaeConfig::new(4, 256, 16, vec![32]),
        &tiny_config(25),
    )
    .unwrap();
    assert_eq!(log.epochs.len(), 25);
    let first = &log.epochs[0];
    let last = log.epochs.last().unwrap();
    assert!(
        last.train_reconstruction < first.train_reconstruction,
        "{log:?}"
    );
    // Measured: 0.76 after these 25 epochs; a learner ten times slower (learning rate 1e-4)
    // ends at 1.03, no better than predicting the mean, and fails here.
    assert!(
        last.validation_code_nmse < 0.85,
        "codes must beat predicting the mean clearly: {log:?}"
    );

    let inference = Backend::Flex.device();
    let blob = quantize_on_train(&model, &normalisation, &split);
    let evaluation = evaluate::evaluate(
        &model,
        &blob,
        &normalisation,
        &split,
        &tiny_config(25),
        &inference,
    )
    .unwrap();
    let report = &evaluation.report;
    assert_eq!(report.bits, 16);
    assert!(
        report.agreement.bit_agreement > 0.9,
        "{:?}",
        report.agreement
    );
    assert!(report.nmse_runtime_codes.is_finite() && report.pca.nmse.is_finite());
    assert_eq!(report.compression_ratio, 4.0 * 1024.0 / 2.0);
    assert_eq!(
        evaluation.reconstructions.dim(),
        split.validation.data.dim()
    );
    let mean_event_nmse =
        evaluation.event_nmse.iter().sum::<f64>() / evaluation.event_nmse.len() as f64;
    assert!((mean_event_nmse - report.nmse_runtime_codes).abs() < 1e-6);

    // Re-calibrated on other events (as `latentlink quantize` does) whose means differ, the
    // blob still subtracts the means the model was trained with: its first layer's arithmetic
    // must stay the model's.
    let shifted = &split.validation.data + 5.0;
    let blob = ptq::quantize(
        &model,
        &normalisation,
        split.train.shape,
        &shifted,
        &inference,
    )
    .unwrap();
    let runtime = latentlink_runtime::Model::from_bytes(&blob).unwrap();
    let Some(Ok(latentlink_runtime::blob::Layer::Input(input))) = runtime.layers().next() else {
        panic!("the blob starts with its input layer");
    };
    for (feature, mean) in normalisation.mean.iter().enumerate() {
        assert_eq!(
            input.feature(feature).unwrap().offset,
            *mean,
            "feature {feature}"
        );
    }
}

#[test]
fn conv_encoder_quantises_to_a_runnable_blob() {
    let split = tiny_split();
    let normalisation = Normalisation::fit(&split.train.data);
    let config = VaeConfig::new(4, 256, 8, vec![16]).with_encoder("conv".into());
    let (model, _) = train_tiny(&split, &normalisation, config, &tiny_config(1)).unwrap();
    let inference = Backend::Flex.device();
    let blob = quantize_on_train(&model, &normalisation, &split);
    let float =
        ptq::float_codes(&model, &normalisation, &split.validation.data, &inference).unwrap();
    let int8 = ptq::runtime_codes(&blob, &split.validation.data).unwrap();
    assert!(ptq::agreement(&float, &int8).bit_agreement > 0.85);
}

#[test]
fn exploding_loss_stops_with_a_clear_error() {
    let split = tiny_split();
    let normalisation = Normalisation::fit(&split.train.data);
    let config = TrainConfig {
        learning_rate: 1e12,
        head: HeadKind::Gaussian,
        ..tiny_config(5)
    };
    let model = VaeConfig::new(4, 256, 8, vec![16]);
    let err = train_tiny(&split, &normalisation, model, &config).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite { .. }), "{err}");
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
}

#[test]
fn decoder_fine_tuning_on_int8_codes_improves_the_decoder_and_leaves_the_blob() {
    let split = tiny_split();
    let normalisation = Normalisation::fit_global(&split.train.data);
    let architecture = VaeConfig::new(4, 256, 16, vec![32]);
    // Three epochs leave the decoder far from done, so fine-tuning has something to gain.
    let config = TrainConfig {
        fine_tune_epochs: 10,
        learning_rate: 3e-3,
        ..tiny_config(3)
    };
    let (model, _) = train_tiny(&split, &normalisation, architecture.clone(), &config).unwrap();
    let blob = quantize_on_train(&model, &normalisation, &split);
    let (train_events, validation_events) = (
        normalisation.apply(&split.train.data),
        normalisation.apply(&split.validation.data),
    );
    let (train_codes, validation_codes) = (
        ptq::runtime_codes(&blob, &split.train.data).unwrap(),
        ptq::runtime_codes(&blob, &split.validation.data).unwrap(),
    );
    let (tuned, log) = train::fine_tune_decoder(
        model,
        &architecture,
        &config,
        train::CodedEvents {
            codes: &train_codes,
            events: &train_events,
        },
        train::CodedEvents {
            codes: &validation_codes,
            events: &validation_events,
        },
        &Backend::Flex.training_device(),
    )
    .unwrap();
    // Gentle (a tenth of the learning rate) but real: validation on the int8 codes improves.
    let untouched = log.validation_code_nmse[0];
    assert!(log.best_epoch > 0, "{log:?}");
    assert!(
        log.validation_code_nmse[log.best_epoch] < untouched,
        "{log:?}"
    );
    // The encoder is frozen: the same blob, byte for byte.
    assert_eq!(quantize_on_train(&tuned, &normalisation, &split), blob);
}

#[test]
fn options_out_of_range_are_errors_that_name_them() {
    let split = tiny_split();
    let normalisation = Normalisation::fit_global(&split.train.data);
    let architecture = VaeConfig::new(4, 256, 16, vec![32]);
    let cases = [
        (
            "batch_size",
            TrainConfig {
                batch_size: 0,
                ..tiny_config(1)
            },
        ),
        (
            "learning_rate",
            TrainConfig {
                learning_rate: f64::NAN,
                ..tiny_config(1)
            },
        ),
        (
            "beta",
            TrainConfig {
                beta: -1.0,
                ..tiny_config(1)
            },
        ),
    ];
    for (option, config) in cases {
        let err = train_tiny(&split, &normalisation, architecture.clone(), &config).unwrap_err();
        assert!(
            matches!(err, TrainError::Option { option: o, .. } if o == option),
            "{err}"
        );
        assert!(err.to_string().contains(option), "{err}");
    }
}

#[test]
fn a_gaussian_head_is_reported_from_its_float_latents() {
    let split = tiny_split();
    let normalisation = Normalisation::fit_global(&split.train.data);
    let config = TrainConfig {
        head: HeadKind::Gaussian,
        ..tiny_config(3)
    };
    let architecture = VaeConfig::new(4, 256, 8, vec![16]);
    let (model, log) = train_tiny(&split, &normalisation, architecture, &config).unwrap();
    let inference = Backend::Flex.device();
    let blob = quantize_on_train(&model, &normalisation, &split);
    let evaluation =
        evaluate::evaluate(&model, &blob, &normalisation, &split, &config, &inference).unwrap();
    let report = &evaluation.report;
    assert_eq!(report.head, HeadKind::Gaussian);
    // The float row is the Gaussian head's own code, its posterior means, decoded: the
    // training loop's validation figure from the same means (normalised units).
    let latents = report.nmse_float_latents.unwrap();
    let from_means = log.epochs[log.best_epoch - 1].validation_code_nmse;
    assert!(
        (latents - from_means).abs() < 1e-4,
        "{latents} {from_means}"
    );
    assert!(report.binarisation_penalty.unwrap().is_finite());
    let md = evaluate::markdown("g", report, &log);
    assert!(
        md.contains("Gaussian head's own code") && md.contains("**Gaussian head**"),
        "{md}"
    );
}

/// With capacity annealing the KL may rise to its target only at the end of the schedule;
/// a model from before then spends less information than asked and would look better to a
/// metric that charges for KL, so the best model comes from an epoch at full capacity.
#[test]
fn a_capacity_run_keeps_a_model_trained_at_full_capacity() {
    let split = tiny_split();
    let normalisation = Normalisation::fit_global(&split.train.data);
    let config = TrainConfig {
        head: HeadKind::Gaussian,
        beta: 1.0,
        capacity: Some(train::Capacity {
            max_nats: 20.0,
            epochs: 3,
        }),
        ..tiny_config(4)
    };
    let architecture = VaeConfig::new(4, 256, 8, vec![16]);
    let (_, log) = train_tiny(&split, &normalisation, architecture, &config).unwrap();
    assert!(log.best_epoch >= 3, "best epoch {}", log.best_epoch);
}
