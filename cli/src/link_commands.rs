//! The link commands of `latentlink`: receive codes from front-ends, decode and keep them
//! (the bridge), and drive front-ends (the rig: emulate, feed, QEMU, demo).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use latentlink_bridge::accounting::LinkCounters;
use latentlink_bridge::decode::DecoderKind;
use latentlink_bridge::key;
use latentlink_bridge::link::{self, LinkSpec, Sender};
use latentlink_bridge::listen::{self, ListenConfig, Status};
use latentlink_bridge::replay;
use latentlink_bridge::sink::ChunkFormat;
use latentlink_package::Package;
use latentlink_rig::emulate::{self, EmulateConfig, Faults};
use latentlink_rig::{demo, feed, qemu};
use latentlink_runtime::wire::FrameKey;
use latentlink_trainer::data::{DataSource, Events};
use latentlink_trainer::sim::Simulator;

/// The subcommands of this family.
#[derive(Subcommand)]
pub(crate) enum LinkCommand {
    /// Listen on a link, decode the codes of one model, archive them and write reconstructions.
    ///
    /// Example: latentlink listen --link tcp-listen:7000 --model models/opis-b128 --archive run42.llca --out run42-reco --status run42-status.json
    Listen {
        /// The link: serial:/dev/ttyUSB0?baud=921600, tcp-listen:[host:]port, tcp:host:port, udp:[host:]port.
        #[arg(long)]
        link: LinkSpec,
        /// Take TCP connections and UDP datagrams only from these peer addresses (comma
        /// separated, e.g. 10.0.3.17,10.0.3.18); others are refused and counted. Default: any.
        #[arg(long, value_delimiter = ',')]
        allow_peer: Vec<std::net::IpAddr>,
        /// The deployment's frame key (from `latentlink keygen`): only frames sealed with it
        /// are taken. Required when the link listens beyond loopback.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Take unauthenticated frames on a link beyond loopback, where anyone on the
        /// network can inject codes.
        #[arg(long, conflicts_with = "key_file")]
        unauthenticated: bool,
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Decoder backend.
        #[arg(long, default_value = "flex")]
        decoder: DecoderKind,
        /// Codes per decoded batch.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 256)]
        batch_size: usize,
        /// Longest a code waits for its batch (ms).
        #[arg(long, default_value_t = 50)]
        max_wait_ms: u64,
        /// Code archive to append to.
        #[arg(long)]
        archive: Option<PathBuf>,
        /// Also write the codes, with their stream and event ids and the model id, to this new
        /// HDF5 file (one growing dataset, /codes; read it with h5py).
        #[arg(long)]
        codes_h5: Option<PathBuf>,
        /// Folder for reconstruction chunks.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Chunk file format.
        #[arg(long, default_value = "npy")]
        format: ChunkFormat,
        /// Status file (JSON), rewritten every second; read it with `stats`.
        #[arg(long)]
        status: Option<PathBuf>,
        /// Stop after this many seconds without data (default: run until Ctrl-C).
        #[arg(long, value_parser = crate::ranges::positive_seconds)]
        idle_exit: Option<f64>,
        /// Stop once this many events are accounted for.
        #[arg(long)]
        until_events: Option<u64>,
    },
    /// Encode events with the runtime's int8 encoder as a front-end would, and send them.
    ///
    /// Example: latentlink emulate --model models/opis-b128 --sim opis --events 5000 --link tcp:127.0.0.1:7000 --codes-per-frame 16 --faults drop=0.01,flip=0.01
    Emulate {
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Simulate the events.
        #[arg(long, conflicts_with = "data")]
        sim: Option<Simulator>,
        /// Or read them: FILE.npy or FILE.h5:/dataset.
        #[arg(long)]
        data: Option<DataSource>,
        /// Events to simulate (or the most to send from --data).
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 1000)]
        events: usize,
        /// The link to send on.
        #[arg(long)]
        link: LinkSpec,
        /// Events per second (0: as fast as possible).
        #[arg(long, value_parser = crate::ranges::events_per_second, default_value_t = 0.0)]
        rate: f64,
        /// Codes per frame.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 16)]
        codes_per_frame: usize,
        /// Faults per frame: drop, flip, truncate, duplicate, reorder, garbage (e.g. drop=0.01,flip=0.02).
        #[arg(long, default_value = "")]
        faults: Faults,
        /// Stream id.
        #[arg(long, default_value_t = 0)]
        stream: u16,
        /// Seed of the simulation and the faults.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seal every frame with the deployment's key (from `latentlink keygen`).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Make a deployment's frame key: 128 random bits in a new file only its owner can read.
    /// Give the file to `listen --key-file` on the host and to the firmware build
    /// (LATENTLINK_KEY_FILE) or `emulate --key-file` on the front-ends.
    ///
    /// Example: latentlink keygen --out /etc/latentlink/beamline7.key
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Decode a code archive again, with the same or a newer decoder of the same model.
    ///
    /// Example: latentlink decode --archive run42.llca --model models/opis-b128 --out run42-reco
    Decode {
        /// The archive.
        #[arg(long)]
        archive: PathBuf,
        /// Model package folder.
        #[arg(long)]
        model: PathBuf,
        /// Folder for reconstruction chunks.
        #[arg(long)]
        out: PathBuf,
        /// Chunk file format.
        #[arg(long, default_value = "npy")]
        format: ChunkFormat,
        /// Decoder backend.
        #[arg(long, default_value = "flex")]
        decoder: DecoderKind,
        /// Codes per batch.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 1024)]
        batch_size: usize,
        /// Also write the archive's codes, with their stream and event ids and the model id,
        /// to this new HDF5 file (one dataset, /codes; read it with h5py).
        #[arg(long)]
        codes_h5: Option<PathBuf>,
    },
    /// Feed raw events to a front-end (a board running the latentlink firmware) over a serial
    /// or TCP link, and check that every code it sends back equals the host runtime's, bit for
    /// bit. The package's golden events go first, so their codes are checked against the
    /// package too.
    ///
    /// Example: latentlink feed --link serial:/dev/ttyACM0?baud=921600 --model models/opis-b128 --sim opis --events 300
    Feed {
        /// The link to the front-end: serial:PATH?baud=N, tcp:host:port or tcp-listen:[host:]port.
        #[arg(long)]
        link: LinkSpec,
        #[command(flatten)]
        feed: FeedArgs,
    },
    /// Boot the front-end firmware in QEMU (mps2-an386, Cortex-M4F), feed it events over its
    /// UART, and report bit-exactness against the host runtime and the package, instructions
    /// per event (exact, from -icount), MAC per instruction, flash and RAM.
    ///
    /// Example: (cd firmware-bridge/firmware && cargo build --release) && latentlink qemu --firmware firmware-bridge/firmware/target/thumbv7em-none-eabihf/release/latentlink-firmware
    Qemu {
        /// The firmware ELF image (built in firmware-bridge/firmware).
        #[arg(long)]
        firmware: PathBuf,
        #[command(flatten)]
        feed: FeedArgs,
    },
    /// Run the whole path on the shipped model: simulate OPIS events, encode them with the
    /// int8 runtime as a front-end would, stream the codes to the bridge over loopback TCP and
    /// a pseudo-terminal serial line, decode, and summarise (plots and summary.json in --out).
    ///
    /// Example: latentlink demo --out demo-output
    Demo {
        /// Model package folder.
        #[arg(long, default_value = "models/opis-b128")]
        model: PathBuf,
        /// Use these events instead of simulated ones: FILE.npy or FILE.h5:/dataset.
        #[arg(long, conflicts_with = "sim")]
        data: Option<DataSource>,
        /// Simulator of the events when no --data is given (showers for a point-cloud model).
        #[arg(long, default_value = "opis")]
        sim: Simulator,
        /// Events to simulate (or the most to send from --data).
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 2000)]
        events: usize,
        /// Output folder.
        #[arg(long, default_value = "demo-output")]
        out: PathBuf,
        /// Decoder backend.
        #[arg(long, default_value = "flex")]
        decoder: DecoderKind,
        /// Codes per frame.
        #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 16)]
        codes_per_frame: usize,
        /// Faults to inject on every link (e.g. drop=0.01,flip=0.01); none by default.
        #[arg(long, default_value = "")]
        faults: Faults,
        /// Also stream over this link (tcp-listen:[host:]port or udp:[host:]port).
        #[arg(long)]
        link: Option<LinkSpec>,
        /// Seed of the simulation.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Print the counters of a running or finished `listen` from its status file.
    ///
    /// Example: latentlink stats --status run42-status.json
    Stats {
        /// The status file.
        #[arg(long)]
        status: PathBuf,
    },
}

fn print_counters(counters: &LinkCounters) {
    let t = counters.totals();
    println!(
        "frames {} ({} lost by sequence), bytes {}",
        counters.frames, t.frames_lost, counters.bytes
    );
    println!(
        "events: decoded {}, lost {}, rejected {}, duplicated {}, late {}, restarts {}, jumps {}",
        t.decoded, t.lost, t.rejected, t.duplicated, t.late, t.restarts, t.jumps
    );
    if !counters.rejected_frames.is_empty() {
        let reasons: Vec<String> = counters
            .rejected_frames
            .iter()
            .map(|(reason, n)| format!("{reason:?} {n}"))
            .collect();
        println!("rejected frames: {}", reasons.join(", "));
    }
    if counters.refused_peers > 0 {
        println!(
            "refused (peer not on --allow-peer): {}",
            counters.refused_peers
        );
    }
    if counters.dropped_by_decoder > 0 {
        println!(
            "reconstructions dropped (decoder behind; codes archived): {}",
            counters.dropped_by_decoder
        );
    }
    for (stream, s) in &counters.streams {
        println!(
            "  stream {stream}: decoded {}, lost {}, rejected {}, duplicated {}",
            s.decoded, s.lost, s.rejected, s.duplicated
        );
    }
}

fn print_status(status: &Status) {
    println!(
        "{} on {}, model {}, decoder {}, {:.1} s{}",
        if status.running { "running" } else { "stopped" },
        status.link,
        status.model_id,
        status.decoder,
        status.seconds,
        if status.archived > 0 {
            format!(", {} codes archived", status.archived)
        } else {
            String::new()
        }
    );
    print_counters(&status.counters);
    println!("reconstructions: {}", status.reconstructions);
}

/// What to feed a front-end, shared by `feed` and `qemu`.
#[derive(clap::Args)]
pub(crate) struct FeedArgs {
    /// Model package folder (the one the firmware was built with).
    #[arg(long, default_value = "models/opis-b128")]
    model: PathBuf,
    /// Read the events: FILE.npy or FILE.h5:/dataset (default: simulate them with --sim).
    #[arg(long, conflicts_with = "sim")]
    data: Option<DataSource>,
    /// Simulator of the events when no --data is given (showers for a point-cloud model).
    #[arg(long, default_value = "opis")]
    sim: Simulator,
    /// Events after the golden ones.
    #[arg(long, value_parser = crate::ranges::at_least_one(), default_value_t = 300)]
    events: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Decoder for the reconstruction error.
    #[arg(long, default_value = "flex")]
    decoder: DecoderKind,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Write summary.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The deployment's frame key the firmware was built with (LATENTLINK_KEY_FILE).
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl FeedArgs {
    /// The package; the golden events, then the chosen ones; and the golden int8 code bits.
    fn open(&self) -> Result<(Package, ndarray::Array2<f32>, ndarray::Array2<f32>)> {
        let sim = self.data.is_none().then_some(self.sim);
        let events = load_events(sim, self.data.as_ref(), self.events, self.seed)?;
        let package = Package::open(&self.model)?;
        events.expect_shape(package.manifest.input.shape(), "the events")?;
        let (events, golden) = feed::golden_first(&package, &events.data)?;
        Ok((package, events, golden))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    fn key(&self) -> Result<Option<FrameKey>> {
        read_key(self.key_file.as_deref())
    }

    fn write_summary(&self, summary: &impl serde::Serialize) -> Result<()> {
        if let Some(out) = &self.out {
            std::fs::create_dir_all(out)?;
            let path = out.join("summary.json");
            std::fs::write(&path, serde_json::to_string_pretty(summary)?)?;
            println!("summary: {}", path.display());
        }
        Ok(())
    }
}

/// Prints what came back and fails unless every code came back bit-exact.
fn check_feed(summary: &feed::FeedSummary, golden: usize, golden_total: usize) -> Result<()> {
    println!(
        "codes: {} of {} events came back, {} bit-exact with the host runtime ({} bits differ)",
        summary.received, summary.events, summary.bit_exact, summary.differing_bits
    );
    println!("golden: {golden} of {golden_total} codes equal the package's golden int8 codes");
    if let Some(chamfer) = summary.chamfer {
        println!(
            "reconstruction Chamfer distance of the returned codes (scaled units): {chamfer:.4}"
        );
    } else if let Some(nmse) = summary.nmse {
        println!("reconstruction nMSE of the returned codes: {nmse:.4}");
    }
    print_counters(&summary.counters);
    if summary.bit_exact != summary.events || golden != golden_total {
        bail!(
            "{} of {} codes are missing or differ (first differing events: {:?})",
            summary.events - summary.bit_exact,
            summary.events,
            summary.mismatched
        );
    }
    Ok(())
}

/// The key in `path`, if one is given.
fn read_key(path: Option<&Path>) -> Result<Option<FrameKey>> {
    Ok(path.map(key::read).transpose()?)
}

/// `count` events: simulated with `seed`, or the first `count` of `data`.
pub(crate) fn load_events(
    sim: Option<Simulator>,
    data: Option<&DataSource>,
    count: usize,
    seed: u64,
) -> Result<Events> {
    let events = match (sim, data) {
        (Some(sim), _) => Events::from_array(sim.try_simulate(count, seed)?.events, "simulator")?,
        (None, Some(source)) => {
            let events = source.load()?;
            let n = events.len().min(count);
            events.select(&(0..n).collect::<Vec<_>>())
        }
        (None, None) => bail!("give events with --sim opis or --data FILE.npy"),
    };
    Ok(events)
}

fn emulate_command(
    model_dir: &Path,
    events: &Events,
    link: &LinkSpec,
    config: EmulateConfig,
) -> Result<()> {
    let opened = Package::open(model_dir)?;
    events.expect_shape(opened.manifest.input.shape(), "the events")?;
    let codes = emulate::encode_events(&opened.blob, &events.data)?;
    let mut sender = Sender::open(link, Duration::from_secs(10))
        .with_context(|| format!("cannot open link {link}"))?;
    let config = EmulateConfig {
        model_id: opened.model_id().get(),
        ..config
    };
    let log = emulate::send_codes(&codes, opened.manifest.code.bytes, &config, &mut sender)?;
    println!("{}", serde_json::to_string_pretty(&log)?);
    Ok(())
}

fn decode_command(
    archive: &Path,
    model_dir: &Path,
    out: &Path,
    kind: DecoderKind,
    batch_size: usize,
    format: ChunkFormat,
    codes_h5: Option<&Path>,
) -> Result<()> {
    let package = Package::open(model_dir)?;
    if let Some(path) = codes_h5 {
        let (written, _) = replay::codes_to_h5(archive, &package, path)?;
        println!(
            "wrote {written} codes from {} to {} (dataset /codes)",
            archive.display(),
            path.display()
        );
    }
    let done = replay::decode_archive(archive, &package, kind, out, batch_size, format)?;
    if done.scan.corrupt > 0 {
        println!(
            "{}: skipped {} corrupt records (damaged on disk: they fail their CRC)",
            archive.display(),
            done.scan.corrupt
        );
    }
    if done.scan.torn_tail_bytes > 0 {
        println!(
            "{}: skipped an incomplete final record of {} bytes (the writer stopped mid-write)",
            archive.display(),
            done.scan.torn_tail_bytes
        );
    }
    println!(
        "decoded {} codes from {} with {} into {}",
        done.written,
        archive.display(),
        done.decoder,
        out.display()
    );
    Ok(())
}

pub(crate) fn run(command: LinkCommand) -> Result<()> {
    match command {
        LinkCommand::Listen {
            link,
            allow_peer,
            key_file,
            unauthenticated,
            model,
            decoder,
            batch_size,
            max_wait_ms,
            archive,
            codes_h5,
            out,
            format,
            status,
            idle_exit,
            until_events,
        } => {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
                .context("cannot install the Ctrl-C handler")?;
            let config = ListenConfig {
                decoder,
                batch_size,
                max_wait: Duration::from_millis(max_wait_ms),
                archive,
                codes_h5,
                out,
                format,
                status,
                idle_exit: idle_exit.map(Duration::from_secs_f64),
                until_events,
                allowed_peers: allow_peer,
                key: read_key(key_file.as_deref())?,
                unauthenticated,
                ..ListenConfig::new(link, Arc::new(Package::open(&model)?))
            };
            let status = listen::listen(&config, &stop)?;
            print_status(&status);
            Ok(())
        }
        LinkCommand::Emulate {
            model,
            sim,
            data,
            events,
            link,
            rate,
            codes_per_frame,
            faults,
            stream,
            seed,
            key_file,
        } => {
            let events = load_events(sim, data.as_ref(), events, seed)?;
            let config = EmulateConfig {
                stream,
                codes_per_frame,
                rate,
                faults,
                seed,
                key: read_key(key_file.as_deref())?,
                // The model id is filled in from the package.
                ..EmulateConfig::new(0)?
            };
            emulate_command(&model, &events, &link, config)
        }
        LinkCommand::Keygen { out } => {
            key::generate(&out)?;
            println!(
                "wrote a new frame key to {} (readable by you only); give it to listen --key-file \
                 and to the front-ends",
                out.display()
            );
            Ok(())
        }
        LinkCommand::Decode {
            archive,
            model,
            out,
            format,
            decoder,
            batch_size,
            codes_h5,
        } => decode_command(
            &archive,
            &model,
            &out,
            decoder,
            batch_size,
            format,
            codes_h5.as_deref(),
        ),
        LinkCommand::Demo {
            model,
            data,
            sim,
            events,
            out,
            decoder,
            codes_per_frame,
            faults,
            link,
            seed,
        } => {
            let sim = data.is_none().then_some(sim);
            let config = demo::DemoConfig {
                events: load_events(sim, data.as_ref(), events, seed)?,
                package: Arc::new(Package::open(&model)?),
                out,
                decoder,
                codes_per_frame,
                faults,
                extra_link: link,
            };
            let summary = demo::run(&config)?;
            println!("{}", demo::table(&summary));
            let missing: u64 = summary.links.iter().map(|l| l.lost + l.rejected).sum();
            if config.faults == Faults::default() && missing > 0 {
                bail!("{missing} events were lost or rejected on links without injected faults");
            }
            println!(
                "plots (reconstructions.png, errors.png per link) and summary.json in {}",
                config.out.display()
            );
            Ok(())
        }
        LinkCommand::Feed { link, feed: args } => {
            let (package, events, golden) = args.open()?;
            let (reader, writer) = link::open_duplex(&link, Duration::from_millis(200))
                .with_context(|| format!("cannot open link {link}"))?;
            let (codes, summary) = feed::feed(
                reader,
                writer,
                &package,
                &events,
                args.key()?.as_ref(),
                Some(args.decoder),
                args.timeout(),
            )?;
            args.write_summary(&summary)?;
            check_feed(
                &summary,
                feed::golden_matches(&codes, &golden),
                golden.nrows(),
            )
        }
        LinkCommand::Qemu {
            firmware,
            feed: args,
        } => {
            let (package, events, golden) = args.open()?;
            let run = qemu::run(
                &firmware,
                &package,
                &events,
                args.key()?.as_ref(),
                Some(args.decoder),
                args.timeout(),
            )?;
            println!("{}", qemu::table(&run));
            args.write_summary(&run)?;
            check_feed(
                &run.feed,
                feed::golden_matches(&run.codes, &golden),
                golden.nrows(),
            )
        }
        LinkCommand::Stats { status } => {
            let text = std::fs::read_to_string(&status)
                .with_context(|| format!("cannot read {}", status.display()))?;
            let status: Status = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a bridge status file", status.display()))?;
            print_status(&status);
            Ok(())
        }
    }
}
