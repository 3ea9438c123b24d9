//! The `latent` commands of `latentlink`: read what a model's codes mean and use them
//! ([`latentlink_trainer::explore`]): which bits change what (traversals), paths between two
//! events one bit at a time, code arithmetic, generation, β as resolution and Polarix
//! lasing-off references ([`latentlink_trainer::lasing`]), each writing PNG plots and JSON
//! into `--out`; and, on a bridge's code archive without decoding
//! ([`latentlink_bridge::archive::search`]), the nearest codes of an event and the most
//! surprising events.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use latentlink_bridge::archive::search::CodeIndex;
use latentlink_model::Backend;
use latentlink_model::latent::HeadKind;
use latentlink_package::open::write_file;
use latentlink_trainer::cloud;
use latentlink_trainer::data::{DataSource, Events, npy};
use latentlink_trainer::explore::{self, Effect, Explorer, SWEEP};
use latentlink_trainer::generate::{self, BitModel};
use latentlink_trainer::lasing::{self, LasingLatent, ReferenceScore};
use latentlink_trainer::plot::{self, Comparison, ImagesAndCurves};
use latentlink_trainer::ptq;
use latentlink_trainer::resolution::{self, BetaSweepConfig};
use latentlink_trainer::sim::{Simulator, polarix};
use latentlink_trainer::train::{Scaling, TrainConfig};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::model_commands::{
    LoadedPackage, load_factors, load_matching_events, load_package, refuse_earlier_run,
    sweep_events,
};

/// The subcommands of this family.
#[derive(Subcommand)]
pub(crate) enum LatentCommand {
    /// Which bits (or float latents) change what: flip each bit of an event's code (sweep
    /// each Gaussian latent from −2 to +2) and decode; rank them by how far they move the
    /// reconstructions of many events. Writes traversal.png (the top latents on one event),
    /// effects.png and effects.json (every latent, ranked).
    ///
    /// Example: latentlink latent traverse --model models/opis-b128 --data data/opis/events.npy --event 0 --out runs/traverse
    Traverse {
        #[command(flatten)]
        common: Common,
        /// The event whose code is traversed (its index in --data).
        #[arg(long, default_value_t = 0)]
        event: usize,
        /// Latents drawn in traversal.png, most effective first.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 6)]
        rows: usize,
    },
    /// From one event's code to another's, flipping the bits where they differ one at a
    /// time, the bits that move the reconstruction most first (a straight line for float
    /// latents). Writes interpolation.png (some of the steps) and interpolation.npy (every
    /// step's reconstruction).
    ///
    /// Example: latentlink latent interpolate --model models/opis-b128 --data data/opis/events.npy --from 0 --to 1 --out runs/path
    Interpolate {
        #[command(flatten)]
        common: Common,
        /// The event the path starts from.
        #[arg(long)]
        from: usize,
        /// The event it ends at.
        #[arg(long)]
        to: usize,
        /// Steps drawn in interpolation.png, evenly spread, both ends included.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 6)]
        rows: usize,
        /// Steps of a float-latent path (a bit path has one per differing bit).
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 16)]
        steps: usize,
    },
    /// New events: sample codes from the bits' frequencies in --data's codes and from a
    /// Chow–Liu tree of their dependencies, decode them, and compare summary statistics of
    /// the generated and the real events. Writes generate.png, generate.json and
    /// generated.npy (the tree's events, detector units). Binary models only.
    ///
    /// Example: latentlink latent generate --model models/showers-b128 --data test-showers/events.npy --count 2000 --out runs/generate
    Generate {
        #[command(flatten)]
        common: Common,
        /// Events to generate from each model.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 2000)]
        count: usize,
        /// Seed of the sampling.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// β as a resolution scale: train a Gaussian VAE at each β, and report the KL it keeps,
    /// D = −dKL/d ln β (about half the number of dimensions the data have at that
    /// resolution), the latents in use and the error. Writes beta.json, beta.md and beta.png.
    ///
    /// Example: latentlink latent beta-sweep --sim opis --events 5000 --out runs/beta
    BetaSweep {
        /// Simulate the events.
        #[arg(long, conflicts_with = "data")]
        sim: Option<Simulator>,
        /// Or read them: FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        data: Option<DataSource>,
        /// Events to simulate.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 5_000)]
        events: usize,
        /// KL weights, comma separated: with the unit likelihood these models use, each is
        /// the variance (in scaled units) below which structure is dropped.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "0.01,0.03,0.1,0.3,1,3,10"
        )]
        betas: Vec<f64>,
        /// How events are scaled (as `train --scaling`): global (one scale for all
        /// features) or poisson (each feature by its shot noise, so β = 1 is the noise).
        #[arg(long, default_value = "global")]
        scaling: Scaling,
        /// Latents of the Gaussian head (enough to hold what the smallest β keeps).
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 32)]
        latents: usize,
        /// Hidden widths of every model.
        #[arg(long, value_parser = crate::ranges::at_least_one(), value_delimiter = ',', default_value = "256,128")]
        hidden: Vec<usize>,
        /// Most epochs per model.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 30)]
        epochs: usize,
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
    /// "Just create it": a lasing-off reference for each Polarix image from the image
    /// itself. Finds the latent with the most mutual information with the lasing label of
    /// --factors, sets it to its lasing-off value, decodes, and measures each lasing shot's
    /// X-ray power profile against that reference by the energy-loss method. With --power
    /// (the true profiles) it scores the created references against a facility's way (the
    /// lasing-off shot of --data closest to the image) and, with --lasing-off,
    /// against the same bunch without lasing. Writes references.npy and power.npy (the
    /// profiles measured against the created references, GW); with --power also
    /// lasing-off.png and lasing-off.json (the scores).
    ///
    /// Example: latentlink latent lasing-off --model runs/polarix --data test-polarix/events.npy --factors test-polarix/factors.npy --power test-polarix/power.npy --lasing-off test-polarix/lasing_off.npy --out runs/lasing-off
    LasingOff(LasingOffArgs),
    /// The codes of an archive nearest to one event's in Hamming distance (a popcount scan,
    /// no decoding).
    ///
    /// Example: latentlink latent neighbours --archive run.llca --event 1234 -k 10
    Neighbours {
        /// Code archive written by `listen`.
        #[arg(long)]
        archive: PathBuf,
        /// The event whose neighbours are listed.
        #[arg(long)]
        event: u64,
        /// Its stream (needed when several streams have an event of that id).
        #[arg(long)]
        stream: Option<u16>,
        /// How many neighbours.
        #[arg(short, long, value_parser = crate::ranges::at_least_one(), default_value_t = 10)]
        k: usize,
    },
    /// Every event of an archive scored by how surprising its code is under independent bit
    /// frequencies fitted on the archive (bits of information; no decoding). Prints the most
    /// surprising and writes every score to a CSV file.
    ///
    /// Example: latentlink latent anomaly --archive run.llca --out run-surprise.csv
    Anomaly {
        /// Code archive written by `listen`.
        #[arg(long)]
        archive: PathBuf,
        /// CSV file of stream, event and surprise (bits) for every event; must not exist.
        #[arg(long)]
        out: PathBuf,
        /// How many of the most surprising events to print.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Code arithmetic A − B + C: on bits, the bits where A and B differ take A's value and
    /// the rest keep C's (C changed as B changes into A); on float latents, the sum itself.
    /// Writes arithmetic.png and arithmetic.json.
    ///
    /// Example: latentlink latent arithmetic --model models/opis-b128 --data data/opis/events.npy --a 0 --b 1 --c 2 --out runs/sum
    Arithmetic {
        #[command(flatten)]
        common: Common,
        /// Event A.
        #[arg(long)]
        a: usize,
        /// Event B.
        #[arg(long)]
        b: usize,
        /// Event C.
        #[arg(long)]
        c: usize,
    },
}

/// Options every `latent` command takes.
#[derive(Args)]
pub(crate) struct Common {
    /// Model package folder.
    #[arg(long)]
    model: PathBuf,
    /// Events in the model's layout: FILE.npy or FILE.h5:/dataset.
    #[arg(long)]
    data: DataSource,
    /// Events (the first of --data) over which each latent's effect is averaged (traverse,
    /// and the bit order of interpolate); generate and lasing-off use all of them.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 256)]
    events: usize,
    /// Output folder for the plots and files.
    #[arg(long)]
    out: PathBuf,
    /// Compute backend.
    #[arg(long, default_value = "flex")]
    backend: Backend,
}

/// A package, its events and their codes, ready to explore.
struct Session {
    package: LoadedPackage,
    events: Array2<f32>,
    codes: Array2<f32>,
    head: HeadKind,
    point_clouds: bool,
}

impl Session {
    fn open(common: &Common, products: &[&str]) -> Result<Self> {
        refuse_earlier_run(&common.out, products, "run of this command")?;
        let package = load_package(&common.model, common.backend)?;
        let manifest = &package.opened.manifest;
        let events = load_matching_events(&common.data, manifest)?.data;
        let head = manifest.training_config::<TrainConfig>()?.head;
        let point_clouds = cloud::codes_point_clouds(manifest)?;
        let mut session = Self {
            events,
            codes: Array2::zeros((0, 0)),
            head,
            point_clouds,
            package,
        };
        session.codes = match head {
            HeadKind::Binary => ptq::runtime_codes(&session.package.opened.blob, &session.events)?,
            HeadKind::Gaussian => session.explorer().float_latents(&session.events)?,
        };
        fs::create_dir_all(&common.out)
            .with_context(|| format!("cannot create {}", common.out.display()))?;
        Ok(session)
    }

    fn explorer(&self) -> Explorer<'_> {
        Explorer::new(
            &self.package.model,
            &self.package.normalisation,
            self.head,
            self.point_clouds,
            &self.events,
            &self.package.device,
        )
    }

    fn name(&self) -> &str {
        &self.package.opened.manifest.name
    }

    /// Refuses an event index (given as `option`) the data do not hold.
    fn check_event(&self, index: usize, option: &str) -> Result<()> {
        if index >= self.events.nrows() {
            bail!(
                "{option} {index}: the data hold {} events (0 to {})",
                self.events.nrows(),
                self.events.nrows().saturating_sub(1)
            );
        }
        Ok(())
    }

    /// Each latent's effect over the first `events` events, largest first.
    fn effects(&self, events: usize) -> Result<Vec<Effect>> {
        let codes = self
            .codes
            .slice(ndarray::s![..events.min(self.codes.nrows()), ..])
            .to_owned();
        Ok(self.explorer().effects(&codes)?)
    }

    /// What a change is measured in, for labels.
    fn change_unit(&self) -> &'static str {
        if self.point_clouds {
            "Chamfer distance between reconstructions"
        } else {
            "squared change / event spread"
        }
    }

    fn latent_name(&self) -> &'static str {
        match self.head {
            HeadKind::Binary => "bit",
            HeadKind::Gaussian => "latent",
        }
    }
}

/// What `traverse` writes to effects.json.
#[derive(Serialize)]
struct EffectsFile<'a> {
    model: &'a str,
    head: HeadKind,
    events: usize,
    change: &'static str,
    effects: &'a [Effect],
}

fn traverse(common: &Common, event: usize, rows: usize) -> Result<()> {
    let products = ["traversal.png", "effects.png", "effects.json"];
    let session = Session::open(common, &products)?;
    session.check_event(event, "--event")?;
    let explorer = session.explorer();
    let effects = session.effects(common.events)?;
    let traversal = explorer.traverse(session.codes.row(event))?;
    let top: Vec<usize> = effects.iter().take(rows).map(|e| e.latent).collect();
    let what = session.latent_name();
    let captions = top
        .iter()
        .map(|&k| match session.head {
            HeadKind::Binary => {
                let bit = session.codes[[event, k]];
                format!(
                    "{what} {k}: {bit} → {} (moves {:.3})",
                    1.0 - bit,
                    traversal.change[k]
                )
            }
            HeadKind::Gaussian => format!("{what} {k} (moves {:.3})", traversal.change[k]),
        })
        .collect();
    let series = match session.head {
        HeadKind::Binary => ["own code".to_owned(), format!("{what} flipped")],
        HeadKind::Gaussian => [format!("at −{SWEEP}"), format!("at +{SWEEP}")],
    };
    let out = &common.out;
    plot::pairs(
        &out.join(products[0]),
        [
            &traversal.before.select(Axis(0), &top),
            &traversal.after.select(Axis(0), &top),
        ],
        explorer.shape,
        session.point_clouds,
        &Comparison {
            rows: captions,
            series,
        },
        &format!(
            "{}: event {event}, the {} {what}s that move the reconstructions most",
            session.name(),
            top.len()
        ),
    )?;
    let events = common.events.min(session.events.nrows());
    plot::ranking(
        &out.join(products[1]),
        &effects
            .iter()
            .map(|e| e.latent.to_string())
            .collect::<Vec<_>>(),
        &effects.iter().map(|e| e.mean_change).collect::<Vec<_>>(),
        session.change_unit(),
        &format!(
            "{}: each {what}'s effect on the reconstructions, mean over {events} events",
            session.name()
        ),
    )?;
    let file = EffectsFile {
        model: session.name(),
        head: session.head,
        events,
        change: session.change_unit(),
        effects: &effects,
    };
    write_file(
        out,
        products[2],
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    println!(
        "{what}s ranked by their mean effect over {events} events ({}):",
        session.change_unit()
    );
    for effect in effects.iter().take(rows.max(10)) {
        let ones = effect
            .ones
            .map(|p| format!(", set in {:.0} % of events", 100.0 * p))
            .unwrap_or_default();
        println!(
            "  {what} {:>4}: {:.4}{ones}",
            effect.latent, effect.mean_change
        );
    }
    println!("plots and effects.json written to {}", out.display());
    Ok(())
}

fn interpolate(common: &Common, from: usize, to: usize, rows: usize, steps: usize) -> Result<()> {
    let products = ["interpolation.png", "interpolation.npy"];
    let session = Session::open(common, &products)?;
    session.check_event(from, "--from")?;
    session.check_event(to, "--to")?;
    let explorer = session.explorer();
    let ranking: Vec<usize> = match session.head {
        HeadKind::Binary => session
            .effects(common.events)?
            .iter()
            .map(|e| e.latent)
            .collect(),
        HeadKind::Gaussian => Vec::new(),
    };
    let (start, end) = (session.codes.row(from), session.codes.row(to));
    let path = explorer.interpolate(start, end, &ranking, steps);
    let decoded = explorer.decode(&path)?;
    let last = path.nrows() - 1;
    let shown: Vec<usize> = if last == 0 {
        vec![0]
    } else {
        let count = rows.clamp(2, last + 1);
        let mut shown: Vec<usize> = (0..count).map(|i| i * last / (count - 1)).collect();
        shown.dedup();
        shown
    };
    let target = session.events.row(to).to_owned().insert_axis(Axis(0));
    let targets = target
        .broadcast((shown.len(), target.ncols()))
        .context("cannot repeat the target event")?
        .to_owned();
    let distance = |step: usize| explore::hamming(path.row(step), end);
    let captions = shown
        .iter()
        .map(|&step| match session.head {
            HeadKind::Binary => format!(
                "step {step} of {last}: {} bits left to flip",
                distance(step)
            ),
            HeadKind::Gaussian => format!("step {step} of {last}"),
        })
        .collect();
    let out = &common.out;
    plot::pairs(
        &out.join(products[0]),
        [&targets, &decoded.select(Axis(0), &shown)],
        explorer.shape,
        session.point_clouds,
        &Comparison {
            rows: captions,
            series: [format!("event {to} as measured"), "decoded step".to_owned()],
        },
        &format!(
            "{}: from event {from}'s code to event {to}'s",
            session.name()
        ),
    )?;
    npy::write_f32(&out.join(products[1]), &decoded)?;
    match session.head {
        HeadKind::Binary => println!(
            "events {from} and {to}: codes differ in {last} bits, flipped one per step, the bits that move the reconstructions most first"
        ),
        HeadKind::Gaussian => {
            println!("events {from} and {to}: {} steps in latent space", last + 1)
        }
    }
    println!(
        "interpolation.png and interpolation.npy written to {}",
        out.display()
    );
    Ok(())
}

/// What `arithmetic` writes to arithmetic.json.
#[derive(Serialize)]
struct ArithmeticFile<'a> {
    model: &'a str,
    head: HeadKind,
    events: [usize; 3],
    /// The code of A − B + C.
    code: Vec<f32>,
    /// Bits where A and B differ (binary head).
    bits_changed: Option<usize>,
}

fn arithmetic(common: &Common, [a, b, c]: [usize; 3]) -> Result<()> {
    let products = ["arithmetic.png", "arithmetic.json"];
    let session = Session::open(common, &products)?;
    for (index, option) in [(a, "--a"), (b, "--b"), (c, "--c")] {
        session.check_event(index, option)?;
    }
    let explorer = session.explorer();
    let codes = &session.codes;
    let sum = explore::arithmetic(session.head, codes.row(a), codes.row(b), codes.row(c));
    let mut inputs = codes.select(Axis(0), &[a, b, c]);
    inputs.push_row(sum.view())?;
    let decoded = explorer.decode(&inputs)?;
    let raw = session.events.select(Axis(0), &[a, b, c, c]);
    let out = &common.out;
    plot::pairs(
        &out.join(products[0]),
        [&raw, &decoded],
        explorer.shape,
        session.point_clouds,
        &Comparison {
            rows: vec![
                format!("A = event {a}"),
                format!("B = event {b}"),
                format!("C = event {c}"),
                "A − B + C (black: C)".to_owned(),
            ],
            series: ["as measured".to_owned(), "decoded".to_owned()],
        },
        &format!("{}: code arithmetic A − B + C", session.name()),
    )?;
    let bits_changed =
        (session.head == HeadKind::Binary).then(|| explore::hamming(sum.view(), codes.row(c)));
    let file = ArithmeticFile {
        model: session.name(),
        head: session.head,
        events: [a, b, c],
        code: sum.to_vec(),
        bits_changed,
    };
    write_file(
        out,
        products[1],
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    if let Some(changed) = bits_changed {
        println!(
            "A − B + C: {changed} bits of C changed (A and B differ in {} bits)",
            explore::hamming(codes.row(a), codes.row(b))
        );
    }
    println!(
        "arithmetic.png and arithmetic.json written to {}",
        out.display()
    );
    Ok(())
}

/// What `generate` writes to generate.json.
#[derive(Serialize)]
struct GenerateFile<'a> {
    model: &'a str,
    /// Real events whose codes the bit models were fitted on.
    real_events: usize,
    generated_per_model: usize,
    /// Mean log-likelihood of the real codes, nats per code: independent bits, tree.
    log_likelihood: [f64; 2],
    /// Per statistic: its name and the distance from the real events (earth mover's
    /// distance over the real spread) of the real events' own codes decoded (the best any
    /// code sampler can do with this decoder), then of independent bits and of the tree.
    statistics: Vec<(String, [f64; 3])>,
}

fn generate(common: &Common, count: usize, seed: u64) -> Result<()> {
    let products = ["generate.png", "generate.json", "generated.npy"];
    let session = Session::open(common, &products)?;
    if session.head != HeadKind::Binary {
        bail!(
            "{}: latent generate samples bits; this model's latents are Gaussian floats",
            session.name()
        );
    }
    let explorer = session.explorer();
    let codes = &session.codes;
    let models = [BitModel::independent(codes), BitModel::chow_liu(codes)];
    let mut rng = StdRng::seed_from_u64(seed);
    let generated: Vec<Array2<f32>> = models
        .iter()
        .map(|model| explorer.decode(&model.sample(count, &mut rng)))
        .collect::<Result<_, _>>()?;
    let summarise =
        |events: &Array2<f32>| generate::summaries(events, explorer.shape, session.point_clouds);
    let (names, real) = summarise(&session.events);
    let decoded = summarise(&explorer.decode(codes)?).1;
    let stats: Vec<Array2<f64>> = generated.iter().map(|events| summarise(events).1).collect();
    let out = &common.out;
    plot::distributions(
        &out.join(products[0]),
        &names,
        &[
            ("real events", &real),
            ("their codes, decoded", &decoded),
            ("independent bits", &stats[0]),
            ("Chow–Liu tree", &stats[1]),
        ],
        &format!(
            "{}: {count} generated events from each bit model against {} real ones",
            session.name(),
            session.events.nrows()
        ),
    )?;
    let statistics: Vec<(String, [f64; 3])> = names
        .iter()
        .enumerate()
        .map(|(s, name)| {
            let distance = |generated: &Array2<f64>| {
                generate::distribution_distance(real.column(s), generated.column(s))
            };
            (
                name.clone(),
                [distance(&decoded), distance(&stats[0]), distance(&stats[1])],
            )
        })
        .collect();
    let log_likelihood = [
        models[0].log_likelihood(codes),
        models[1].log_likelihood(codes),
    ];
    let file = GenerateFile {
        model: session.name(),
        real_events: session.events.nrows(),
        generated_per_model: count,
        log_likelihood,
        statistics: statistics.clone(),
    };
    write_file(
        out,
        products[1],
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    npy::write_f32(&out.join(products[2]), &generated[1])?;
    println!(
        "bit models fitted on the codes of {} events; log-likelihood of those codes, nats per code: independent bits {:.1}, Chow–Liu tree {:.1}",
        session.events.nrows(),
        log_likelihood[0],
        log_likelihood[1]
    );
    println!(
        "distance of the generated events from the real ones (earth mover's distance over the real spread; 0 is the same distribution):\n"
    );
    println!(
        "| statistic | real codes, decoded | independent bits | Chow–Liu tree |\n|---|---|---|---|"
    );
    for (name, [own, independent, tree]) in &statistics {
        println!("| {name} | {own:.3} | {independent:.3} | {tree:.3} |");
    }
    println!("\nplots and files written to {}", out.display());
    Ok(())
}

/// The `lasing-off` options.
#[derive(Args)]
pub(crate) struct LasingOffArgs {
    #[command(flatten)]
    common: Common,
    /// Factors of --data (.npy); names from factors.json beside it.
    #[arg(long)]
    factors: PathBuf,
    /// The factor that says whether a shot lases (1) or not (0).
    #[arg(long, default_value = "lasing")]
    factor: String,
    /// True power profiles of --data (.npy, `[events, 32]`, GW), to score against.
    #[arg(long)]
    power: Option<PathBuf>,
    /// The same shots imaged without lasing (.npy, as --data), a reference no experiment
    /// can take, to score against.
    #[arg(long)]
    lasing_off: Option<PathBuf>,
    /// Lasing shots drawn in lasing-off.png.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 3)]
    rows: usize,
}

/// What `lasing-off` writes to lasing-off.json.
#[derive(Serialize)]
struct LasingOffFile<'a> {
    model: &'a str,
    head: HeadKind,
    shots: usize,
    lasing_latent: &'a LasingLatent,
    scores: &'a [ReferenceScore],
}

/// Images `[N, rows × columns]` from a .npy file of `[N, rows, columns]` images.
fn read_images(path: &Path, events: usize) -> Result<Array2<f32>> {
    let images = npy::read_f32(path)?;
    let shape = images.shape().to_vec();
    if shape.first() != Some(&events) {
        bail!(
            "{} holds {:?}; expected {events} images like --data's",
            path.display(),
            shape
        );
    }
    let features: usize = shape[1..].iter().product();
    Ok(images.into_shape_with_order((events, features))?)
}

fn lasing_off_references(args: &LasingOffArgs) -> Result<()> {
    let products = [
        "lasing-off.png",
        "lasing-off.json",
        "references.npy",
        "power.npy",
    ];
    let session = Session::open(&args.common, &products)?;
    let images = &session.events;
    lasing::check_images(images)?;
    let shots = images.nrows();
    let (factors, names) = load_factors(&args.factors)?;
    let Some(column) = names.iter().position(|name| *name == args.factor) else {
        bail!(
            "{} has no factor {:?}; it has {}",
            args.factors.display(),
            args.factor,
            names.join(", ")
        );
    };
    if factors.nrows() != shots {
        bail!(
            "{} holds factors of {} events, --data {shots}",
            args.factors.display(),
            factors.nrows()
        );
    }
    let lasing = factors.column(column);
    let latent = lasing::find_lasing_latent(&session.codes, lasing, session.head)?;
    let what = session.latent_name();
    println!(
        "lasing lives in {what} {} ({:.0} % of the lasing label's information; runner-up {}); \
         lasing-off value {}, lasing value {}",
        latent.latent,
        100.0 * latent.information,
        latent.runner_up.map_or_else(
            || "none".to_owned(),
            |(k, share)| format!("{what} {k}, {:.0} %", 100.0 * share)
        ),
        latent.off_value,
        latent.on_value
    );
    if latent.information < 0.5 {
        println!(
            "warning: no {what} carries lasing on its own (the best holds {:.0} % of the label's \
             information), so switching one off leaves most of the lasing in the reference",
            100.0 * latent.information
        );
    }
    let explorer = session.explorer();
    let created = explorer.decode(&lasing::switch_off(&session.codes, &latent))?;
    let out = &args.common.out;
    let image_shape = [shots, polarix::ROWS, polarix::COLUMNS];
    npy::write_f32(
        &out.join(products[2]),
        &created.clone().into_shape_with_order(image_shape)?,
    )?;
    let mut measured = vec![lasing::power_profiles(images, &created)?];
    npy::write_f32(&out.join(products[3]), &measured[0])?;
    let Some(power_path) = &args.power else {
        println!(
            "references and measured power profiles written to {} (give --power to score them)",
            out.display()
        );
        return Ok(());
    };
    // The references to compare with are only built when there is a truth to score them on.
    let power = read_images(power_path, shots)?;
    let mut references = vec![("created from the lasing image".to_owned(), created)];
    references.push((
        "closest lasing-off shot of the data".to_owned(),
        lasing::matched_references(images, lasing)?,
    ));
    if let Some(path) = &args.lasing_off {
        references.push((
            "same bunch without lasing (not measurable)".to_owned(),
            read_images(path, shots)?,
        ));
    }
    for (_, reference) in &references[1..] {
        measured.push(lasing::power_profiles(images, reference)?);
    }
    let scores = references
        .iter()
        .zip(&measured)
        .map(|((name, _), profiles)| lasing::score(name, profiles, &power, lasing))
        .collect::<Result<Vec<_>, _>>()?;
    let examples: Vec<usize> = (0..shots)
        .filter(|&n| lasing[n] > 0.5)
        .take(args.rows)
        .collect();
    let time = |c: usize| (c as f64 + 0.5) * f64::from(polarix::FS_PER_COLUMN);
    let curve = |profiles: &Array2<f32>, n: usize| -> Vec<(f64, f64)> {
        profiles
            .row(n)
            .iter()
            .enumerate()
            .map(|(c, &p)| (time(c), f64::from(p)))
            .collect()
    };
    let short = ["created", "closest shot", "same bunch"];
    let rows: Vec<ImagesAndCurves<'_>> = examples
        .iter()
        .map(|&n| {
            let mut images = vec![(format!("shot {n}: lasing"), images.row(n))];
            images.push(("created reference".to_owned(), references[0].1.row(n)));
            if let Some((_, twin)) = references.get(2) {
                images.push(("same bunch, no lasing".to_owned(), twin.row(n)));
            }
            let mut curves = vec![("true power", curve(&power, n))];
            curves.extend(
                short
                    .iter()
                    .zip(&measured)
                    .map(|(name, m)| (*name, curve(m, n))),
            );
            ImagesAndCurves { images, curves }
        })
        .collect();
    plot::images_and_curves(
        &out.join(products[0]),
        &rows,
        explorer.shape,
        ["time (fs)", "X-ray power (GW)"],
        &format!(
            "{}: lasing-off references and the power they measure (energy rows × time columns)",
            session.name()
        ),
    )?;
    let file = LasingOffFile {
        model: session.name(),
        head: session.head,
        shots,
        lasing_latent: &latent,
        scores: &scores,
    };
    write_file(
        out,
        products[1],
        serde_json::to_string_pretty(&file)?.as_bytes(),
    )?;
    println!(
        "\npower profiles of {} lasing shots against the truth:\n",
        scores[0].lasing_shots
    );
    println!(
        "| reference | profile error (rms / peak) | pulse energy error | pulse energy bias | power found in non-lasing shots (µJ) |\n|---|---|---|---|---|"
    );
    for score in &scores {
        println!(
            "| {} | {:.3} | {:.1} % | {:+.1} % | {:.1} |",
            score.reference,
            score.profile_error,
            100.0 * score.pulse_energy_error,
            100.0 * score.pulse_energy_bias,
            score.false_pulse_energy_uj
        );
    }
    println!("\nplots and files written to {}", out.display());
    Ok(())
}

/// The `beta-sweep` options.
struct BetaSweepArgs {
    dataset: String,
    events: Events,
    config: BetaSweepConfig,
    out: PathBuf,
}

fn beta_sweep(args: &BetaSweepArgs) -> Result<()> {
    let products = ["beta.json", "beta.md", "beta.png"];
    refuse_earlier_run(&args.out, &products, "β sweep")?;
    let points = resolution::beta_sweep(&args.events, &args.config)?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_file(
        &args.out,
        products[0],
        serde_json::to_string_pretty(&points)?.as_bytes(),
    )?;
    let table = resolution::markdown(&args.dataset, args.config.latents, &points);
    write_file(&args.out, products[1], table.as_bytes())?;
    let series = |value: fn(&resolution::BetaPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.beta, v)))
            .collect()
    };
    plot::log_x_panels(
        &args.out.join(products[2]),
        "β",
        &[
            (
                "nats, or dimensions",
                vec![
                    ("KL kept", series(|p| Some(p.kl_nats))),
                    (
                        "≈ dimensions, 2·D",
                        series(|p| p.dimension_rate.map(|d| 2.0 * d)),
                    ),
                ],
            ),
            (
                "nMSE, detector units",
                vec![("error from the posterior mean", series(|p| Some(p.nmse)))],
            ),
        ],
        &format!(
            "{}: β as resolution, Gaussian VAE with {} latents",
            args.dataset, args.config.latents
        ),
    )?;
    println!(
        "{table}\nbeta.json, beta.md and beta.png in {}",
        args.out.display()
    );
    Ok(())
}

/// The codes of the archive at `path`, refused if it holds none; says what was skipped.
fn read_index(path: &Path) -> Result<CodeIndex> {
    let (index, scan) = CodeIndex::read(path)?;
    if index.is_empty() {
        bail!("{} holds no intact code", path.display());
    }
    if scan.corrupt > 0 || scan.torn_tail_bytes > 0 {
        eprintln!(
            "{}: {} corrupt records skipped, {} bytes of a torn tail ignored",
            path.display(),
            scan.corrupt,
            scan.torn_tail_bytes
        );
    }
    Ok(index)
}

fn neighbours(archive: &Path, stream: Option<u16>, event: u64, k: usize) -> Result<()> {
    let index = read_index(archive)?;
    let positions = index.positions(stream, event);
    let position = match positions.as_slice() {
        [position] => *position,
        [] => bail!(
            "{}: no event {event}{} in its {} codes",
            archive.display(),
            stream
                .map(|s| format!(" in stream {s}"))
                .unwrap_or_default(),
            index.len()
        ),
        several => {
            let streams: Vec<String> = several
                .iter()
                .map(|&p| index.keys()[p].stream.to_string())
                .collect();
            bail!(
                "{}: event {event} is in streams {} (or twice in one); choose with --stream",
                archive.display(),
                streams.join(", ")
            )
        }
    };
    let key = index.keys()[position];
    println!(
        "the {k} codes nearest to stream {} event {} among {} codes of {} bits (model {:016x}):",
        key.stream,
        key.event,
        index.len(),
        index.bits(),
        index.model_id
    );
    println!("| stream | event | bits different |\n|---|---|---|");
    for neighbour in index.nearest(position, k) {
        println!(
            "| {} | {} | {} |",
            neighbour.key.stream, neighbour.key.event, neighbour.distance
        );
    }
    Ok(())
}

fn anomaly(archive: &Path, out: &Path, top: usize) -> Result<()> {
    if out.exists() {
        bail!("{} exists already; give a new --out file", out.display());
    }
    let index = read_index(archive)?;
    let surprise = index.surprise();
    let mut csv = String::from("stream,event,surprise_bits\n");
    for (key, bits) in index.keys().iter().zip(&surprise) {
        csv.push_str(&format!("{},{},{bits:.3}\n", key.stream, key.event));
    }
    fs::write(out, csv).with_context(|| format!("cannot write {}", out.display()))?;
    let mean = surprise.iter().sum::<f64>() / surprise.len() as f64;
    println!(
        "{} codes of {} bits; surprise (bits) mean {mean:.1}; the {top} most surprising:",
        index.len(),
        index.bits()
    );
    println!("| stream | event | surprise (bits) |\n|---|---|---|");
    for (key, bits) in index.most_surprising(top) {
        println!("| {} | {} | {bits:.1} |", key.stream, key.event);
    }
    println!("every score written to {}", out.display());
    Ok(())
}

pub(crate) fn run(command: LatentCommand) -> Result<()> {
    match command {
        LatentCommand::Traverse {
            common,
            event,
            rows,
        } => traverse(&common, event, rows),
        LatentCommand::Interpolate {
            common,
            from,
            to,
            rows,
            steps,
        } => interpolate(&common, from, to, rows, steps),
        LatentCommand::Arithmetic { common, a, b, c } => arithmetic(&common, [a, b, c]),
        LatentCommand::Generate {
            common,
            count,
            seed,
        } => generate(&common, count, seed),
        LatentCommand::BetaSweep {
            sim,
            data,
            events,
            betas,
            scaling,
            latents,
            hidden,
            epochs,
            seed,
            backend,
            out,
        } => {
            let (events, dataset) = sweep_events(data.as_ref(), sim, events, seed)?;
            beta_sweep(&BetaSweepArgs {
                dataset,
                events,
                config: BetaSweepConfig {
                    betas,
                    latents,
                    hidden,
                    train: TrainConfig {
                        epochs,
                        seed,
                        scaling,
                        ..TrainConfig::default()
                    },
                    backend,
                    progress: true,
                },
                out,
            })
        }
        LatentCommand::LasingOff(args) => lasing_off_references(&args),
        LatentCommand::Neighbours {
            archive,
            event,
            stream,
            k,
        } => neighbours(&archive, stream, event, k),
        LatentCommand::Anomaly { archive, out, top } => anomaly(&archive, &out, top),
    }
}
