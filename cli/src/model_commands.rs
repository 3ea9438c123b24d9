//! The model commands of `latentlink`: simulate detector data, train a binary-code model,
//! quantise, export, evaluate, and sweep rate against distortion.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use latentlink_model::Backend;
use latentlink_model::latent::HeadKind;
use latentlink_model::load_vae;
use latentlink_model::vae::Vae;
use latentlink_model::vae::{DecoderKind, EncoderKind, VaeConfig};
use latentlink_package::manifest::Manifest;
use latentlink_package::open::write_file;
use latentlink_package::{ModelId, Package, files};
use latentlink_trainer::data::{self, DataSource, Events, Normalisation, hdf5, npy};
use latentlink_trainer::disentangle::{self, Disentanglement};
use latentlink_trainer::evaluate;
use latentlink_trainer::export::{int8_onnx, onnx, verify};
use latentlink_trainer::pipeline::{self, TrainRequest};
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::sweep;
use latentlink_trainer::train::{self, Likelihood, Scaling, TrainConfig};
use latentlink_trainer::{probe, ptq};
use ndarray::Array2;

/// The subcommands of this family.
#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Simulate events and their ground-truth factors as .npy files (or one HDF5 file).
    ///
    /// Example: latentlink simulate --sim opis --events 20000 --out data/opis
    Simulate {
        /// Which detector.
        #[arg(long, default_value = "opis")]
        sim: Simulator,
        /// Number of events.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 20_000)]
        events: usize,
        /// Seed (the same seed gives the same events).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder (events.npy, factors.npy, factors.json; or events.h5 with the
        /// datasets /events and /factors, and factors.json). Polarix adds its truths:
        /// power.npy (X-ray power per time column, GW) and lasing_off.npy (the same shots
        /// without lasing), or the datasets /power and /lasing_off.
        #[arg(long)]
        out: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value = "npy")]
        format: DataFormat,
    },
    /// Train a model and write its package: int8 blob, ONNX files (checked in tract),
    /// burn record, golden vectors, manifest and an evaluation against PCA.
    ///
    /// Example: latentlink train --data data/opis/events.npy --bits 128 --out runs/opis-b128
    Train(TrainArgs),
    /// Re-quantise a package's encoder to int8 with other calibration events, and update its
    /// blob, golden int8 codes, model id and bit agreement.
    ///
    /// Example: latentlink quantize --model runs/opis-b128 --calibration data/opis/events.npy
    Quantize {
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Calibration events in the model's layout: FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        calibration: DataSource,
        /// Compute backend.
        #[arg(long, default_value = "flex")]
        backend: Backend,
    },
    /// Re-write a package's golden vectors (inputs, float and int8 codes, reconstructions) from
    /// other events, e.g. more of them, or events of your detector; the ONNX files are checked
    /// in tract on the new inputs first. The model, and so its id, is unchanged: golden
    /// vectors are what every side must reproduce, and the shipped package's are pinned by a
    /// test, so re-writing them is a deliberate act.
    ///
    /// Example: latentlink golden --model runs/opis-b128 --sim opis --events 256
    Golden {
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Simulate the events.
        #[arg(long, conflicts_with = "data")]
        sim: Option<Simulator>,
        /// Or read them (the first --events of them): FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        data: Option<DataSource>,
        /// Golden events.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = pipeline::GOLDEN_EVENTS)]
        events: usize,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Compute backend.
        #[arg(long, default_value = "flex")]
        backend: Backend,
    },
    /// Re-write a package's encoder.onnx and decoder.onnx from its burn record, verified in
    /// tract against burn on the golden inputs, and its encoder-int8.onnx from its runtime
    /// blob, whose bits must equal the golden int8 codes in tract.
    ///
    /// Example: latentlink export --model runs/opis-b128
    Export {
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Compute backend.
        #[arg(long, default_value = "flex")]
        backend: Backend,
    },
    /// Evaluate a model package on events: reconstruction error from int8 codes, PCA at the
    /// same bits (fitted on half of the events), bit agreement and bit usage.
    ///
    /// Example: latentlink eval --model runs/opis-b128 --data data/opis-test/events.npy --out runs/opis-b128/eval-test
    Eval {
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Events in the model's layout: FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        data: DataSource,
        /// Write the report (report.json, report.md) and its plots (PNG) into this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Known factors behind the events, `[N, F]` .npy (as `simulate` writes): the report
        /// gains a linear probe from the int8 codes to each (R² on held-out events). Names
        /// come from factors.json beside it when there is one.
        #[arg(long)]
        factors: Option<PathBuf>,
        /// Compute backend.
        #[arg(long, default_value = "flex")]
        backend: Backend,
    },
    /// Rate–distortion sweep: for each code length, train the binary VAE (int8 runtime codes)
    /// and a Gaussian VAE with as many f32 latents, and compare them with PCA at the same bits
    /// and zstd's lossless size. Writes sweep.json, sweep.md and rate_distortion.png.
    ///
    /// Example: latentlink sweep --sim opis --events 10000 --bits 32,64,128,256 --out benches/results/sweep-opis
    Sweep {
        /// Simulate the events.
        #[arg(long, conflicts_with = "data")]
        sim: Option<Simulator>,
        /// Or read them: FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        data: Option<DataSource>,
        /// Events to simulate.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 10_000)]
        events: usize,
        /// Code lengths.
        #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',', default_value = "32,64,128,256")]
        bits: Vec<usize>,
        /// Hidden widths of every model.
        #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',', default_value = "256,128")]
        hidden: Vec<usize>,
        /// Most epochs per model.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 40)]
        epochs: usize,
        /// KL weight (both heads), as `train --beta`.
        #[arg(long, value_parser = crate::ranges::non_negative, default_value_t = TrainConfig::default().beta)]
        beta: f64,
        /// Seed of the simulation, split and training.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Compute backend.
        #[arg(long, default_value = "flex")]
        backend: Backend,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Events: FILE.npy, or a dataset of an HDF5 file as FILE.h5:/group/dataset ([N, D] or
    /// [N, C, L]; f32, f64, i16, u16 or u8).
    #[arg(long, conflicts_with = "sim")]
    data: Option<DataSource>,
    /// Or simulate the training events.
    #[arg(long)]
    sim: Option<Simulator>,
    /// Events to simulate with --sim.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 20_000)]
    events: usize,
    /// Code bits (latents).
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 128)]
    bits: usize,
    /// Encoder architecture.
    #[arg(long, default_value = "mlp")]
    encoder: EncoderKind,
    /// Decoder architecture (conv needs a length divisible by 4).
    #[arg(long, default_value = "mlp")]
    decoder: DecoderKind,
    /// Hidden layer widths of the encoder, comma separated. The default keeps the int8
    /// encoder at about 330 KB, small enough for the flash of a common Cortex-M4.
    #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',', default_value = "256,128")]
    hidden: Vec<usize>,
    /// Hidden layer widths of the decoder from the code outwards, comma separated (it runs
    /// on the host, so it may be larger). Default: the encoder's widths mirrored.
    #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',')]
    decoder_hidden: Option<Vec<usize>>,
    /// Widths of the pointnet encoder's per-point layers, comma separated (1 to 4 layers).
    /// The events are then point clouds: axis 1 indexes the points, axis 2 their features.
    #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',', default_value = "64,128")]
    point_widths: Vec<usize>,
    /// How events are scaled for the encoder and the loss: global (one scale, so the loss is
    /// the error in detector units), feature (each feature to unit variance), poisson
    /// (counts: each feature by its shot noise, √mean, so the loss is a χ²) or none (as they
    /// are; what --likelihood bernoulli uses). Default: global for the mlp decoder, feature
    /// for the conv decoder (which shares its weights along the event, and learned nothing
    /// under global scaling), points (each point feature scaled alike for every point) for
    /// the pointnet encoder, which needs it.
    #[arg(long)]
    scaling: Option<Scaling>,
    /// Reconstruction term: calibrated (a Gaussian whose variance follows the error reached,
    /// so the KL cannot outweigh what a bit buys), unit (unit variance in scaled units),
    /// bernoulli (binary events, pixels on or off: the decoder gives probabilities through a
    /// sigmoid, and the events stay unscaled), chamfer (point clouds: the Chamfer distance
    /// between the clouds, whatever the order of their points), sinkhorn (point clouds:
    /// entropic optimal transport, an approximation of the earth mover's distance; slower)
    /// or sinkhorn-weighted (as sinkhorn, each point's mass its share of the event's
    /// weight, the last feature, plus the total weight's squared log error: the energy mover's
    /// distance). Default: chamfer for the pointnet encoder, calibrated for the others.
    #[arg(long)]
    likelihood: Option<Likelihood>,
    /// Binary head: train the decoder on soft samples instead of the hard bits it decodes
    /// when deployed (the behaviour of older models).
    #[arg(long)]
    soft_latents: bool,
    /// Binary head: weight of the bit-usage term (balanced, certain, uncorrelated bits), in
    /// nats per event like the KL. Off by default: at weight 1 it collapsed codes on the
    /// data sets it was tried on.
    #[arg(long, value_parser = crate::ranges::non_negative, default_value_t = 0.0)]
    bit_usage_weight: f64,
    /// Binary head: most epochs of decoder fine-tuning on the int8 runtime's own codes after
    /// quantisation, the encoder (and so the blob) frozen; it stops when validation stops
    /// improving and keeps the untouched decoder if it never does. 0: off.
    #[arg(long, default_value_t = TrainConfig::default().fine_tune_epochs)]
    fine_tune_epochs: usize,
    /// Latent head.
    #[arg(long, default_value = "binary")]
    head: HeadKind,
    /// KL weight. With the calibrated likelihood it is per latent against the log-error per
    /// feature, so the default suits events of any size and codes of any length; with
    /// `--likelihood unit` it is absolute (older models used 0.02).
    #[arg(long, value_parser = crate::ranges::non_negative, default_value_t = TrainConfig::default().beta)]
    beta: f64,
    /// Capacity annealing for the Gaussian head: target KL per event (nats), reached over
    /// --capacity-epochs.
    #[arg(long, value_parser = crate::ranges::non_negative)]
    capacity: Option<f64>,
    /// Epochs over which the capacity rises.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 10)]
    capacity_epochs: usize,
    /// Most epochs (early stopping usually ends sooner).
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 400)]
    epochs: usize,
    /// Stop after this many epochs without a better validation error.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 16)]
    patience: usize,
    /// Halve the learning rate after this many epochs without a better validation error
    /// (0: constant learning rate).
    #[arg(long, default_value_t = 5)]
    plateau_epochs: usize,
    /// Batch size.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 128)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, value_parser = crate::ranges::positive, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Seed for the split, initialisation and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Compute backend.
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Output folder: the model package.
    #[arg(long)]
    out: PathBuf,
    /// Model name in the manifest (default: the output folder's name).
    #[arg(long)]
    name: Option<String>,
}

/// File formats `simulate` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum DataFormat {
    /// events.npy and factors.npy.
    Npy,
    /// events.h5 with the datasets /events and /factors.
    Hdf5,
}

/// Refuses an `--out` folder that holds any of `files` from an earlier run of `what`, so a
/// command never overwrites results silently (checked before the work, not after).
pub(crate) fn refuse_earlier_run(out: &Path, files: &[&str], what: &str) -> Result<()> {
    if let Some(name) = files.iter().find(|name| out.join(name).exists()) {
        bail!(
            "{} holds {name} of an earlier {what} already; give a new --out folder",
            out.display()
        );
    }
    Ok(())
}

fn simulate(
    sim: Simulator,
    events: usize,
    seed: u64,
    out: &Path,
    format: DataFormat,
) -> Result<()> {
    let truth_files: Vec<String> = sim
        .truth_names()
        .iter()
        .map(|name| format!("{name}.npy"))
        .collect();
    let mut products = vec!["events.npy", "factors.npy", "events.h5", "factors.json"];
    products.extend(truth_files.iter().map(String::as_str));
    refuse_earlier_run(out, &products, "simulation")?;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let simulation = sim.try_simulate(events, seed)?;
    match format {
        DataFormat::Npy => {
            npy::write_f32(&out.join("events.npy"), &simulation.events)?;
            npy::write_f32(&out.join("factors.npy"), &simulation.factors)?;
            for (truth, file) in simulation.truths.iter().zip(&truth_files) {
                npy::write_f32(&out.join(file), &truth.values)?;
            }
        }
        DataFormat::Hdf5 => {
            let factors = simulation.factors.clone().into_dyn();
            let mut datasets = vec![("events", &simulation.events), ("factors", &factors)];
            datasets.extend(simulation.truths.iter().map(|t| (t.name, &t.values)));
            hdf5::write_f32(&out.join("events.h5"), &datasets)?;
        }
    }
    let names = serde_json::to_string_pretty(&simulation.factor_names)?;
    fs::write(out.join("factors.json"), names)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "wrote {} events of shape {:?} to {}",
        events,
        &simulation.events.shape()[1..],
        out.display()
    );
    Ok(())
}

fn train_command(args: &TrainArgs) -> Result<()> {
    let (mut events, data_description) = match (&args.data, args.sim) {
        (Some(source), _) => (source.load()?, source.to_string()),
        (None, Some(sim)) => (
            Events::from_array(
                sim.try_simulate(args.events, args.seed)?.events,
                "simulator",
            )?,
            format!(
                "simulator {sim:?}, {} events, seed {}",
                args.events, args.seed
            ),
        ),
        (None, None) => {
            bail!(
                "give the training events with --data FILE.npy (or FILE.h5:/dataset), or simulate them with --sim opis"
            )
        }
    };
    if args.encoder == EncoderKind::PointNet {
        let padded = events.pad_clouds_with_copies(&data_description)?;
        if padded > 0 {
            println!(
                "{padded} of {} point slots were empty (all zeros) and now hold a copy of a real point of their event; pad the same way on the front-end",
                events.len() * events.shape.channels
            );
        }
    }
    let config = VaeConfig::new(
        events.shape.channels,
        events.shape.length,
        args.bits,
        args.hidden.clone(),
    )
    .with_encoder(match args.encoder {
        EncoderKind::Mlp => "mlp".into(),
        EncoderKind::Conv => "conv".into(),
        EncoderKind::PointNet => "pointnet".into(),
    })
    .with_decoder(match args.decoder {
        DecoderKind::Mlp => "mlp".into(),
        DecoderKind::Conv => "conv".into(),
    })
    .with_decoder_hidden(args.decoder_hidden.clone())
    .with_point_widths((args.encoder == EncoderKind::PointNet).then(|| args.point_widths.clone()));
    let likelihood = args.likelihood.unwrap_or(match args.encoder {
        EncoderKind::PointNet => Likelihood::Chamfer,
        EncoderKind::Mlp | EncoderKind::Conv => Likelihood::Calibrated,
    });
    let config = config.with_sigmoid_output(Some(likelihood == Likelihood::Bernoulli));
    let scaling = match (args.scaling, likelihood) {
        (None | Some(Scaling::None), Likelihood::Bernoulli) => Scaling::None,
        (Some(_), Likelihood::Bernoulli) => bail!(
            "--likelihood bernoulli takes the events unscaled (its targets are the 0/1 values themselves): drop --scaling or give --scaling none"
        ),
        (Some(scaling), _) => scaling,
        (None, _) => Scaling::suited_to(args.encoder, args.decoder),
    };
    let train_config = TrainConfig {
        head: args.head,
        beta: args.beta,
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.learning_rate,
        seed: args.seed,
        capacity: args.capacity.map(|max_nats| train::Capacity {
            max_nats,
            epochs: args.capacity_epochs,
        }),
        patience: args.patience,
        plateau_epochs: args.plateau_epochs,
        straight_through: !args.soft_latents,
        bit_usage_weight: args.bit_usage_weight,
        fine_tune_epochs: args.fine_tune_epochs,
        scaling,
        likelihood,
        ..TrainConfig::default()
    };
    let outcome = pipeline::train_package(&TrainRequest {
        events,
        data_description,
        config,
        train_config,
        backend: args.backend,
        out: args.out.clone(),
        name: args.name.clone().unwrap_or_else(|| {
            args.out
                .file_name()
                .map_or("model".into(), |n| n.to_string_lossy().into_owned())
        }),
        command: command_line(),
        progress: true,
    })?;
    let (manifest, report, out) = (&outcome.manifest, &outcome.evaluation.report, &args.out);
    println!(
        "model package {} (model id {}) written to {}",
        manifest.name,
        manifest.model_id,
        out.display()
    );
    // The same summary as the package's report.md: detector units first.
    println!(
        "{}",
        evaluate::markdown(&manifest.name, report, &outcome.log)
    );
    Ok(())
}

/// This invocation as a user would type it (program name without its path), for the
/// manifest.
fn command_line() -> String {
    std::iter::once("latentlink".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A package opened for a command: its files, float model and normalisation.
pub(crate) struct LoadedPackage {
    pub(crate) opened: Package,
    pub(crate) model: Vae,
    pub(crate) normalisation: Normalisation,
    pub(crate) device: latentlink_model::Device,
}

pub(crate) fn load_package(model_dir: &Path, backend: Backend) -> Result<LoadedPackage> {
    let opened = Package::open(model_dir)?;
    let device = backend.device();
    let model = load_vae(&opened, &device)?;
    let normalisation = opened.manifest.input.normalisation();
    Ok(LoadedPackage {
        opened,
        model,
        normalisation,
        device,
    })
}

/// The events a sweep trains on, read from `data` or simulated, with a name for them.
pub(crate) fn sweep_events(
    data: Option<&DataSource>,
    sim: Option<Simulator>,
    events: usize,
    seed: u64,
) -> Result<(Events, String)> {
    Ok(match (data, sim) {
        (Some(source), _) => (source.load()?, source.to_string()),
        (None, Some(sim)) => (
            Events::from_array(sim.try_simulate(events, seed)?.events, "simulator")?,
            format!("{sim:?}").to_lowercase(),
        ),
        (None, None) => bail!("give the events with --data FILE.npy or --sim opis"),
    })
}

/// Events from `source`, refused unless they have the package's layout.
pub(crate) fn load_matching_events(source: &DataSource, manifest: &Manifest) -> Result<Events> {
    let events = source.load()?;
    events.expect_shape(manifest.input.shape(), &source.to_string())?;
    Ok(events)
}

/// Factors `[events, factors]` from a .npy file, named by factors.json beside it when there
/// is one (as `simulate` writes them), else "factor 0", "factor 1"...
pub(crate) fn load_factors(path: &Path) -> Result<(Array2<f32>, Vec<String>)> {
    let factors = npy::read_f32(path)?;
    let factors = factors
        .into_dimensionality::<ndarray::Ix2>()
        .with_context(|| format!("{}: factors must be [events, factors]", path.display()))?;
    let names_path = path.with_file_name("factors.json");
    let names: Vec<String> = if names_path.exists() {
        let text = fs::read_to_string(&names_path)
            .with_context(|| format!("cannot read {}", names_path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: expected a list of names", names_path.display()))?
    } else {
        (0..factors.ncols())
            .map(|k| format!("factor {k}"))
            .collect()
    };
    if names.len() != factors.ncols() {
        bail!(
            "{} names {} factors, {} has {}",
            names_path.display(),
            names.len(),
            path.display(),
            factors.ncols()
        );
    }
    Ok((factors, names))
}

/// The linear probe from the int8 codes of every event to the factors in `path`, and how
/// disentangled the codes are against them.
fn factor_probe(
    blob: &[u8],
    events: &Events,
    path: &Path,
) -> Result<(Vec<probe::FactorProbe>, Disentanglement)> {
    let (factors, names) = load_factors(path)?;
    let codes = ptq::runtime_codes(blob, &events.data)?;
    let probe = probe::probe(&codes, &factors, &names)
        .with_context(|| format!("probe against {}", path.display()))?;
    let disentanglement = disentangle::measure(&codes, &factors, &names)
        .with_context(|| format!("disentanglement against {}", path.display()))?;
    Ok((probe, disentanglement))
}

fn quantize_command(
    model_dir: &Path,
    calibration_path: &DataSource,
    backend: Backend,
) -> Result<()> {
    let LoadedPackage {
        opened,
        model,
        normalisation,
        device,
    } = load_package(model_dir, backend)?;
    let mut manifest = opened.manifest.clone();
    let calibration = load_matching_events(calibration_path, &manifest)?;
    let blob = ptq::quantize(
        &model,
        &normalisation,
        calibration.shape,
        &calibration.data,
        &device,
    )?;
    let agreement = ptq::agreement(
        &ptq::float_codes(&model, &normalisation, &calibration.data, &device)?,
        &ptq::runtime_codes(&blob, &calibration.data)?,
    );
    let inputs = opened.golden()?.inputs;
    let golden = pipeline::golden(&model, &normalisation, &blob, inputs, &device)?;
    let int8 = int8_onnx::export_if_supported(&blob, &golden.inputs, &golden.int8_codes)
        .context("writing encoder-int8.onnx")?;
    golden.write(model_dir)?;
    write_file(model_dir, files::ENCODER_BLOB, &blob)?;
    write_int8_onnx(model_dir, int8)?;
    manifest.model_id = ModelId::of(&blob, &opened.record);
    manifest.runtime = pipeline::footprint(&blob)?;
    manifest.metrics.bit_agreement = agreement.bit_agreement;
    manifest.command = command_line();
    manifest.write(model_dir)?;
    println!(
        "re-quantised on {} events: int8/float bit agreement {:.4}, new model id {}",
        calibration.len(),
        agreement.bit_agreement,
        manifest.model_id
    );
    Ok(())
}

fn golden_command(model_dir: &Path, events: &Events, backend: Backend) -> Result<()> {
    let LoadedPackage {
        opened,
        model,
        normalisation,
        device,
    } = load_package(model_dir, backend)?;
    events.expect_shape(opened.manifest.input.shape(), "the golden events")?;
    let parity = verify::check(
        &model,
        &normalisation,
        &fs::read(model_dir.join(files::ENCODER_ONNX))?,
        &fs::read(model_dir.join(files::DECODER_ONNX))?,
        &events.data,
        &device,
    )?;
    let golden = pipeline::golden(
        &model,
        &normalisation,
        &opened.blob,
        events.data.clone(),
        &device,
    )?;
    golden.write(model_dir)?;
    println!(
        "wrote {} golden events to {} (ONNX checked in tract on them: mu {:.1e}, reconstruction {:.1e} relative error); model id {} unchanged",
        events.len(),
        model_dir.join("golden").display(),
        parity.mu,
        parity.reconstruction,
        opened.model_id()
    );
    Ok(())
}

fn export_command(model_dir: &Path, backend: Backend) -> Result<()> {
    let LoadedPackage {
        opened,
        model,
        normalisation,
        device,
    } = load_package(model_dir, backend)?;
    let encoder = onnx::to_bytes(&onnx::encoder(
        &model,
        &normalisation,
        opened.manifest.input.shape(),
    ))
    .context("encoding encoder.onnx")?;
    let decoder =
        onnx::to_bytes(&onnx::decoder(&model, &normalisation)).context("encoding decoder.onnx")?;
    let golden = opened.golden()?;
    let parity = verify::check(
        &model,
        &normalisation,
        &encoder,
        &decoder,
        &golden.inputs,
        &device,
    )?;
    let int8 = int8_onnx::export_if_supported(&opened.blob, &golden.inputs, &golden.int8_codes)
        .context("writing encoder-int8.onnx")?;
    write_file(model_dir, files::ENCODER_ONNX, &encoder)?;
    write_file(model_dir, files::DECODER_ONNX, &decoder)?;
    println!(
        "wrote encoder.onnx and decoder.onnx (opset {}), verified in tract: mu {:.1e}, reconstruction {:.1e} relative error",
        onnx::OPSET,
        parity.mu,
        parity.reconstruction
    );
    write_int8_onnx(model_dir, int8)
}

/// Writes a package's int8 ONNX encoder (checked by `int8_onnx::export_if_supported`), or
/// removes one left from an earlier blob when this blob has a layer the export cannot write:
/// a package never holds an int8 encoder of another blob.
fn write_int8_onnx(model_dir: &Path, int8: Option<(Vec<u8>, int8_onnx::Int8Parity)>) -> Result<()> {
    let path = model_dir.join(files::ENCODER_INT8_ONNX);
    let Some((bytes, parity)) = int8 else {
        if path.exists() {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            println!(
                "removed {}: it was made from an earlier blob",
                path.display()
            );
        }
        return Ok(());
    };
    write_file(model_dir, files::ENCODER_INT8_ONNX, &bytes)?;
    println!(
        "wrote {} (integer operators, opset {}): in tract its {} bits on the {} golden events equal the runtime's int8 codes",
        files::ENCODER_INT8_ONNX,
        int8_onnx::OPSET,
        parity.bits,
        parity.events
    );
    Ok(())
}

/// The epoch log the trainer left in the package's `report.json`, so that `eval` reports the
/// epochs run and draws the training curve. A package without a readable log (written by
/// hand, or cut down) is still evaluated: the summary then gives only the manifest's best
/// epoch, and a warning says why.
fn packaged_training_log(model_dir: &Path, best_epoch: usize) -> train::TrainingLog {
    #[derive(serde::Deserialize)]
    struct PackagedReport {
        training: train::TrainingLog,
    }
    let path = model_dir.join(files::REPORT);
    let read = fs::read(&path)
        .map_err(anyhow::Error::from)
        .and_then(|bytes| Ok(serde_json::from_slice::<PackagedReport>(&bytes)?));
    match read {
        Ok(report) => report.training,
        Err(error) => {
            eprintln!(
                "warning: no training log in {} ({error}); the summary gives only the best epoch",
                path.display()
            );
            train::TrainingLog {
                epochs: Vec::new(),
                best_epoch,
                stopped_early: false,
            }
        }
    }
}

fn eval_command(
    model_dir: &Path,
    data: &DataSource,
    out: Option<&Path>,
    factors: Option<&Path>,
    backend: Backend,
) -> Result<()> {
    if let Some(out) = out {
        refuse_earlier_run(out, &[files::REPORT], "evaluation")?;
    }
    let LoadedPackage {
        opened,
        model,
        normalisation,
        device,
    } = load_package(model_dir, backend)?;
    let manifest = &opened.manifest;
    let events = load_matching_events(data, manifest)?;
    // Half the events fit the PCA baseline, the other half are evaluated.
    let split = data::split(&events, 0.5, 0.01, 1)?;
    let mut evaluation = evaluate::evaluate(
        &model,
        &opened.blob,
        &normalisation,
        &split,
        &manifest.training_config::<TrainConfig>()?,
        &device,
    )?;
    if let Some(path) = factors {
        let (probe, disentanglement) = factor_probe(&opened.blob, &events, path)?;
        evaluation.report.factor_probe = probe;
        evaluation.report.disentanglement = Some(disentanglement);
    }
    let log = packaged_training_log(model_dir, manifest.training.best_epoch);
    let summary = evaluate::markdown(&manifest.name, &evaluation.report, &log);
    println!("{summary}");
    if let Some(out) = out {
        fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        write_file(
            out,
            files::REPORT,
            serde_json::to_string_pretty(&evaluation.report)?.as_bytes(),
        )?;
        write_file(out, files::SUMMARY, summary.as_bytes())?;
        let shape = manifest.input.shape();
        evaluate::write_plots(out, &manifest.name, &evaluation, shape, &log)?;
        println!("report and plots written to {}", out.display());
    }
    Ok(())
}

pub(crate) fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Simulate {
            sim,
            events,
            seed,
            out,
            format,
        } => simulate(sim, events, seed, &out, format),
        ModelCommand::Train(args) => train_command(&args),
        ModelCommand::Quantize {
            model,
            calibration,
            backend,
        } => quantize_command(&model, &calibration, backend),
        ModelCommand::Golden {
            model,
            sim,
            data,
            events,
            seed,
            backend,
        } => {
            let events = crate::link_commands::load_events(sim, data.as_ref(), events, seed)?;
            golden_command(&model, &events, backend)
        }
        ModelCommand::Export { model, backend } => export_command(&model, backend),
        ModelCommand::Eval {
            model,
            data,
            out,
            factors,
            backend,
        } => eval_command(&model, &data, out.as_deref(), factors.as_deref(), backend),
        ModelCommand::Sweep {
            sim,
            data,
            events,
            bits,
            hidden,
            epochs,
            beta,
            seed,
            backend,
            out,
        } => {
            let (events, dataset) = sweep_events(data.as_ref(), sim, events, seed)?;
            let config = sweep::SweepConfig {
                bits,
                hidden,
                train: TrainConfig {
                    epochs,
                    beta,
                    seed,
                    ..TrainConfig::default()
                },
                backend,
                progress: true,
            };
            refuse_earlier_run(&out, &["sweep.json"], "sweep")?;
            let result = sweep::sweep(&events, &dataset, &config)?;
            fs::create_dir_all(&out)?;
            fs::write(
                out.join("sweep.json"),
                serde_json::to_string_pretty(&result)?,
            )?;
            let table = sweep::markdown(&result);
            fs::write(out.join("sweep.md"), &table)?;
            sweep::plot(&out.join("rate_distortion.png"), &result)?;
            println!(
                "{table}\nsweep.json, sweep.md and rate_distortion.png in {}",
                out.display()
            );
            Ok(())
        }
    }
}
