//! The whole path in one command: events → int8 front-end encoder → wire frames over real
//! links (loopback TCP and a pseudo-terminal serial line) → bridge → decoder →
//! reconstructions, with a summary of what it cost and plots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use latentlink_bridge::decode::DecoderKind;
use latentlink_bridge::link::{LinkSpec, Sender};
use latentlink_bridge::listen::{self, ListenConfig, ListenError};
use latentlink_bridge::sink::{SinkError, read_chunks};
use latentlink_package::{Manifest, Package};
use latentlink_runtime::wire::FrameKey;
use latentlink_trainer::cloud;
use latentlink_trainer::data::Events;
use latentlink_trainer::evaluate::{event_nmse, per_event_errors};
use latentlink_trainer::plot::{self, PlotError};
use latentlink_trainer::train::{mse, nmse};
use ndarray::Axis;
use serde::{Deserialize, Serialize};

use crate::emulate::{self, EmulateConfig, EmulateError, FaultLog, Faults};

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The events do not fit the model.
    #[error(transparent)]
    Data(#[from] latentlink_trainer::error::DataError),
    /// Encoding or sending failed.
    #[error(transparent)]
    Emulate(#[from] EmulateError),
    /// The bridge failed.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// Reconstructions could not be read back.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] PlotError),
    /// The package's manifest could not be read.
    #[error(transparent)]
    Package(#[from] latentlink_package::PackageError),
    /// A link could not be set up.
    #[error("link {link}: {source}")]
    Link {
        /// Which link.
        link: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The pseudo-terminal pair for the serial link could not be made.
    #[error("pseudo-terminal: {0}")]
    PseudoTerminal(#[from] serialport::Error),
    /// `--link` names a link the demo cannot also send to.
    #[error(
        "link {link}: the demo streams over a link it can also send to: tcp-listen:... or udp:..."
    )]
    UnsupportedLink {
        /// The link given.
        link: String,
    },
    /// The bridge stopped before it was ready, without an error of its own.
    #[error("link {link}: the bridge stopped before the front-end started")]
    BridgeStopped {
        /// The link.
        link: String,
    },
    /// The bridge did not get ready in time.
    #[error("link {link}: the bridge was not ready after {seconds} s")]
    BridgeNotReady {
        /// The link.
        link: String,
        /// Seconds waited.
        seconds: u64,
    },
    /// A file or folder could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The summary could not be serialised.
    #[error("cannot write summary.json: {0}")]
    Summary(#[from] serde_json::Error),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the demo measured on one link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkSummary {
    /// The link.
    pub link: String,
    /// Events sent by the front-end.
    pub events: u64,
    /// Events decoded by the bridge.
    pub decoded: u64,
    /// Events lost.
    pub lost: u64,
    /// Events rejected.
    pub rejected: u64,
    /// Raw event bytes (as f32 samples).
    pub raw_bytes: u64,
    /// Bytes put on the link (frames, framing and checksums).
    pub wire_bytes: u64,
    /// Raw bytes over wire bytes.
    pub compression_ratio: f64,
    /// Code bytes over wire bytes.
    pub payload_efficiency: f64,
    /// Normalised MSE of the reconstructions against the raw events, in the model's
    /// normalised units (the package report's figure).
    pub nmse: f64,
    /// Normalised MSE in detector units.
    pub nmse_detector_units: f64,
    /// Mean squared error per sample in detector units.
    pub mse_detector_units: f64,
    /// For a point-cloud model, the mean Chamfer distance in the model's scaled units (the
    /// report's figure); the nMSE compares point slots in order, which means little for a
    /// cloud.
    #[serde(default)]
    pub chamfer: Option<f64>,
    /// What the front-end injected.
    pub faults: FaultLog,
}

/// The demo's results, written as `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoSummary {
    /// Model package.
    pub model: String,
    /// Model id.
    pub model_id: String,
    /// Decoder backend.
    pub decoder: String,
    /// nMSE of the int8 codes in the package's own report, for comparison.
    pub report_nmse: f64,
    /// For a point-cloud model, the Chamfer distance of the int8 codes in its report.
    #[serde(default)]
    pub report_chamfer: Option<f64>,
    /// One entry per link.
    pub links: Vec<LinkSummary>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The model package, opened once.
    pub package: Arc<Package>,
    /// The events.
    pub events: Events,
    /// Output folder.
    pub out: PathBuf,
    /// Decoder.
    pub decoder: DecoderKind,
    /// Codes per frame.
    pub codes_per_frame: usize,
    /// Faults to inject on every link.
    pub faults: Faults,
    /// Also stream over this link: the bridge listens on it (`tcp-listen:...` or
    /// `udp:...`) and the emulator sends to it.
    pub extra_link: Option<LinkSpec>,
}

/// Runs the demo: for each link, the emulator sends every event's code and the bridge
/// decodes them; then the summary and plots go into `config.out`.
///
/// # Errors
/// [`DemoError`] naming what failed.
pub fn run(config: &DemoConfig) -> Result<DemoSummary, DemoError> {
    let package = &config.package;
    let manifest = &package.manifest;
    config
        .events
        .expect_shape(manifest.input.shape(), "the demo events")?;
    let model_id = manifest.model_id.get();
    let codes = emulate::encode_events(&package.blob, &config.events.data)?;
    // Frames sealed with a key made for this run, as a deployment beyond loopback must
    // seal them, so the demo's figures are those of the authenticated wire.
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(|e| EmulateError::Random(e.to_string()))?;
    let emulate_config = EmulateConfig {
        stream: 1,
        codes_per_frame: config.codes_per_frame,
        faults: config.faults,
        key: Some(FrameKey::from_bytes(&key)),
        ..EmulateConfig::new(model_id)?
    };
    std::fs::create_dir_all(&config.out).map_err(io_error(&config.out))?;

    let address = format!("127.0.0.1:{}", free_port()?);
    let (tcp_listen, tcp_send) = (LinkSpec::TcpListen(address.clone()), LinkSpec::Tcp(address));
    let mut summaries = vec![
        run_link(
            config,
            manifest,
            &config.out.join("tcp"),
            tcp_listen,
            &tcp_send,
            &codes,
            &emulate_config,
        )?,
        run_serial(
            config,
            manifest,
            &config.out.join("serial"),
            &codes,
            &emulate_config,
        )?,
    ];
    if let Some(listen_spec) = &config.extra_link {
        let send_spec = peer(listen_spec)?;
        summaries.push(run_link(
            config,
            manifest,
            &config.out.join("extra"),
            listen_spec.clone(),
            &send_spec,
            &codes,
            &emulate_config,
        )?);
    }
    let summary = DemoSummary {
        model: package.dir.display().to_string(),
        model_id: manifest.model_id.to_string(),
        decoder: format!("{:?}", config.decoder).to_lowercase(),
        report_nmse: manifest.metrics.nmse_runtime_codes,
        report_chamfer: manifest.metrics.chamfer_runtime_codes,
        links: summaries,
    };
    let json = serde_json::to_string_pretty(&summary)?;
    let path = config.out.join("summary.json");
    std::fs::write(&path, json).map_err(io_error(&path))?;
    Ok(summary)
}

/// The spec the emulator sends to, for a bridge listening on `spec`.
fn peer(spec: &LinkSpec) -> Result<LinkSpec, DemoError> {
    match spec {
        LinkSpec::TcpListen(address) => Ok(LinkSpec::Tcp(address.replace("0.0.0.0", "127.0.0.1"))),
        LinkSpec::Udp(address) => Ok(LinkSpec::Udp(address.replace("0.0.0.0", "127.0.0.1"))),
        other => Err(DemoError::UnsupportedLink {
            link: other.to_string(),
        }),
    }
}

/// Longest the demo waits for a bridge to open its link.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| DemoError::Link {
            link: "tcp".into(),
            source,
        })
}

fn run_serial(
    config: &DemoConfig,
    manifest: &Manifest,
    dir: &Path,
    codes: &[u8],
    emulate_config: &EmulateConfig,
) -> Result<LinkSummary, DemoError> {
    let (mut master, slave) = serialport::TTYPort::pair()?;
    // A UART transmitter waits for the line to drain; the pseudo-terminal's default 100 ms
    // write timeout would fail the run whenever a busy machine keeps the bridge from reading.
    serialport::SerialPort::set_timeout(&mut master, Duration::from_secs(60))?;
    let path = serialport::SerialPort::name(&slave).ok_or_else(|| DemoError::Link {
        link: "pseudo-terminal".into(),
        source: std::io::Error::other("the pseudo-terminal has no device path"),
    })?;
    let spec = LinkSpec::Serial {
        path,
        baud: latentlink_bridge::link::DEFAULT_BAUD,
    };
    let writer = master.try_clone_native()?;
    let summary = stream(
        config,
        manifest,
        dir,
        spec,
        codes,
        emulate_config,
        move || Ok(Sender::from_writer(writer)),
    );
    // Closing the master hangs up the slave; only once the bridge has read everything.
    drop((master, slave));
    summary
}

fn run_link(
    config: &DemoConfig,
    manifest: &Manifest,
    dir: &Path,
    listen_spec: LinkSpec,
    send_spec: &LinkSpec,
    codes: &[u8],
    emulate_config: &EmulateConfig,
) -> Result<LinkSummary, DemoError> {
    let send_spec = send_spec.clone();
    stream(
        config,
        manifest,
        dir,
        listen_spec,
        codes,
        emulate_config,
        move || {
            Sender::open(&send_spec, Duration::from_secs(10)).map_err(|source| DemoError::Link {
                link: send_spec.to_string(),
                source,
            })
        },
    )
}

fn stream(
    config: &DemoConfig,
    manifest: &Manifest,
    dir: &Path,
    listen_spec: LinkSpec,
    codes: &[u8],
    emulate_config: &EmulateConfig,
    open_sender: impl FnOnce() -> Result<Sender, DemoError>,
) -> Result<LinkSummary, DemoError> {
    let events = config.events.len() as u64;
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let listen_config = ListenConfig {
        decoder: config.decoder,
        out: Some(dir.join("reconstructions")),
        archive: Some(dir.join("codes.llca")),
        status: Some(dir.join("status.json")),
        until_events: Some(events),
        idle_exit: Some(Duration::from_secs(20)),
        ready: Some(ready_tx),
        key: emulate_config.key.clone(),
        ..ListenConfig::new(listen_spec.clone(), Arc::clone(&config.package))
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    // A fresh archive per run: the demo can be repeated into the same folder.
    std::fs::remove_file(dir.join("codes.llca")).ok();
    std::fs::remove_dir_all(dir.join("reconstructions")).ok();
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = thread::spawn(move || listen::listen(&listen_config, &stop));
    // Send only once the bridge's link is open: it says so on `ready`, or drops the
    // channel when it stops first (then its result says why).
    match ready_rx.recv_timeout(READY_TIMEOUT) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let early = bridge.join().map_err(|_| ListenError::DecoderPanicked)?;
            return Err(early.err().map_or_else(
                || DemoError::BridgeStopped {
                    link: listen_spec.to_string(),
                },
                DemoError::Listen,
            ));
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            return Err(DemoError::BridgeNotReady {
                link: listen_spec.to_string(),
                seconds: READY_TIMEOUT.as_secs(),
            });
        }
    }
    let mut sender = open_sender()?;
    let width = codes.len() / config.events.len().max(1);
    let log = emulate::send_codes(codes, width, emulate_config, &mut sender)?;
    drop(sender);
    let status = bridge.join().map_err(|_| ListenError::DecoderPanicked)??;
    let totals = status.counters.totals();

    let (reconstructions, ids) = read_chunks(&dir.join("reconstructions"))?;
    let rows: Vec<usize> = ids.column(1).iter().map(|&e| e as usize).collect();
    let raw = config.events.data.select(Axis(0), &rows);
    let normalisation = manifest.input.normalisation();
    let (raw_n, reco_n) = (
        normalisation.apply(&raw),
        normalisation.apply(&reconstructions),
    );
    let title = format!("{listen_spec}");
    let shape = manifest.input.shape();
    // Each event's Chamfer distance for a point-cloud model: the histogram and, averaged,
    // the link's error.
    let event_chamfer = cloud::codes_point_clouds(manifest)?
        .then(|| cloud::event_chamfers(&raw_n, &reco_n, shape.length));
    let chamfer = event_chamfer
        .as_ref()
        .map(|each| each.iter().sum::<f64>() / each.len().max(1) as f64);
    plot::examples(
        &dir.join("reconstructions.png"),
        &raw,
        &reconstructions,
        shape,
        chamfer.is_some(),
        &format!("{title}: raw events (black) and reconstructions from the bridge (red)"),
    )?;
    let nmse_of_each = event_nmse(&raw_n, &reco_n);
    let (errors, label) = per_event_errors(&nmse_of_each, event_chamfer.as_deref());
    plot::error_histogram(
        &dir.join("errors.png"),
        errors,
        label,
        &format!("{title}: reconstruction error"),
    )?;
    let raw_bytes = (config.events.data.len() * 4) as u64;
    let code_bytes = codes.len() as u64;
    Ok(LinkSummary {
        link: title,
        events,
        decoded: totals.decoded,
        lost: totals.lost,
        rejected: totals.rejected,
        raw_bytes,
        wire_bytes: log.bytes_sent,
        compression_ratio: raw_bytes as f64 / log.bytes_sent.max(1) as f64,
        payload_efficiency: code_bytes as f64 / log.bytes_sent.max(1) as f64,
        nmse: nmse(&raw_n, &reco_n),
        nmse_detector_units: nmse(&raw, &reconstructions),
        mse_detector_units: mse(&raw, &reconstructions),
        chamfer,
        faults: log,
    })
}

/// The summary as a table for the terminal.
pub fn table(summary: &DemoSummary) -> String {
    let report = match summary.report_chamfer {
        Some(chamfer) => format!("Chamfer distance {chamfer:.4}"),
        None => format!("nMSE {:.4}", summary.report_nmse),
    };
    let mut out = format!(
        "model {} ({}), decoder {}; the package's report gives {report} from int8 codes\n\n",
        summary.model, summary.model_id, summary.decoder
    );
    // A point cloud's error is its Chamfer distance; the nMSE would compare slots in order.
    let error = |l: &LinkSummary| match l.chamfer {
        Some(chamfer) => format!("Chamfer {chamfer:.4}"),
        None => format!("nMSE {:.4}", l.nmse),
    };
    out += "| link | events | decoded | lost | rejected | raw bytes | wire bytes | compression | payload efficiency | error | MSE (detector units) |\n";
    out += "|---|---|---|---|---|---|---|---|---|---|---|\n";
    for l in &summary.links {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0}× | {:.1} % | {} | {:.3e} |\n",
            l.link,
            l.events,
            l.decoded,
            l.lost,
            l.rejected,
            l.raw_bytes,
            l.wire_bytes,
            l.compression_ratio,
            100.0 * l.payload_efficiency,
            error(l),
            l.mse_detector_units
        );
    }
    out
}
