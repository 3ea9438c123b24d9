//! The bridge's main loop: receive, check and account, archive, batch, decode, write.
//!
//! Two threads. The receiving thread reads the link into one fixed buffer, runs [`Ingest`],
//! appends accepted codes to the archive at once (one write per frame) and collects them
//! into batches. A batch goes to the decoding thread when it holds `batch_size` codes or its
//! oldest code has waited `max_wait`.
//!
//! **When the decoder cannot keep up** the queue between the threads (`queue_batches`
//! batches) fills; the receiving thread then drops the new batch's reconstructions, counts
//! them in `dropped_by_decoder`, and goes on receiving, so the link is never stalled and no
//! code is lost: every code is already in the archive, and `decode` can reconstruct them
//! later. The status file and the final counters show how many were dropped.
//!
//! **Authentication.** With a deployment key (`key`), only frames sealed with it are taken.
//! A link whose local address is not loopback (a network interface, so anyone on that network
//! can send to it) refuses to start without a key, unless `unauthenticated` says so
//! explicitly; a serial line and loopback need none.
//!
//! A status file (JSON) is rewritten about once a second while running; `stats` prints it.
//! The counters also go to the log every 10 s and at the end.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use latentlink_package::Package;
use latentlink_runtime::wire::FrameKey;
use serde::{Deserialize, Serialize};

use crate::accounting::LinkCounters;
use crate::archive::{ArchiveError, ArchiveWriter};
use crate::codes_h5::{CodesH5Error, CodesH5Writer, Provenance};
use crate::decode::DecoderKind;
use crate::ingest::{Accepted, Ingest};
use crate::link::{LinkSpec, Received, Receiver};
use crate::replay::{Replay, ReplayError};
use crate::sink::{ChunkFormat, ReconstructionSink};

/// How to listen.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// The link.
    pub link: LinkSpec,
    /// Peers (TCP or UDP) whose data is taken; empty: any (see [`crate::link`]).
    pub allowed_peers: Vec<IpAddr>,
    /// The deployment's frame key: only frames sealed with it are taken.
    pub key: Option<FrameKey>,
    /// Take unauthenticated frames on a link beyond loopback (refused by default).
    pub unauthenticated: bool,
    /// The model package, opened once by the caller.
    pub package: Arc<Package>,
    /// Decoder backend.
    pub decoder: DecoderKind,
    /// Codes per decoded batch.
    pub batch_size: usize,
    /// Longest a code waits for its batch to fill.
    pub max_wait: Duration,
    /// Batches queued for the decoder before reconstructions are dropped.
    pub queue_batches: usize,
    /// Code archive file (appended to).
    pub archive: Option<PathBuf>,
    /// HDF5 file of the codes (a new file: one per run), see [`crate::codes_h5`].
    pub codes_h5: Option<PathBuf>,
    /// Folder for reconstruction chunks (none: decode only to count).
    pub out: Option<PathBuf>,
    /// Events per reconstruction chunk.
    pub chunk_events: usize,
    /// File format of the chunks.
    pub format: ChunkFormat,
    /// Status file, rewritten about once a second.
    pub status: Option<PathBuf>,
    /// Stop once this many events are accounted for (decoded, lost or rejected).
    pub until_events: Option<u64>,
    /// Stop after this long without data.
    pub idle_exit: Option<Duration>,
    /// Told once the link and archive are open and the decoder is loaded, so a caller that
    /// also sends (the demo, tests) starts only then; dropped unsent if that fails.
    pub ready: Option<SyncSender<()>>,
}

impl ListenConfig {
    /// Defaults for `link` and `package`: flex decoder, batches of 256 codes or 50 ms.
    pub fn new(link: LinkSpec, package: Arc<Package>) -> Self {
        Self {
            link,
            allowed_peers: Vec::new(),
            key: None,
            unauthenticated: false,
            package,
            decoder: DecoderKind::Flex,
            batch_size: 256,
            max_wait: Duration::from_millis(50),
            queue_batches: 64,
            archive: None,
            codes_h5: None,
            out: None,
            chunk_events: 65_536,
            format: ChunkFormat::Npy,
            status: None,
            until_events: None,
            idle_exit: None,
            ready: None,
        }
    }
}

/// Why listening stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The link could not be opened.
    #[error("cannot open link {link}: {source}")]
    Link {
        /// The link.
        link: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Decoding or writing reconstructions failed.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The archive failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The codes HDF5 file failed.
    #[error(transparent)]
    CodesH5(#[from] CodesH5Error),
    /// The link reaches beyond loopback and no key was given.
    #[error(
        "{link} listens on {local}, beyond loopback, where anyone on the network can inject codes; \
         give the deployment's key with --key-file (make one with `latentlink keygen`), or pass \
         --unauthenticated to take unauthenticated frames anyway"
    )]
    KeyRequired {
        /// The link.
        link: String,
        /// Its local address.
        local: std::net::SocketAddr,
    },
    /// The decoding thread panicked (a bug; the archive is intact).
    #[error(
        "the decoding thread stopped unexpectedly; the code archive is intact, replay it with decode"
    )]
    DecoderPanicked,
    /// The package's code width does not fit the wire's one-byte width field.
    #[error("the package's codes are {bytes} bytes wide; frames carry at most 255")]
    CodeWidth {
        /// Bytes per code in the manifest.
        bytes: usize,
    },
    /// The status file could not be written.
    #[error("{path}: {source}")]
    Status {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What the bridge did, as written to the status file and returned at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The link.
    pub link: String,
    /// Model id accepted, hex.
    pub model_id: String,
    /// Decoder backend.
    pub decoder: String,
    /// Seconds since start.
    pub seconds: f64,
    /// Whether the bridge is still running.
    pub running: bool,
    /// All counters.
    pub counters: LinkCounters,
    /// Reconstructions written (or decoded, without an output folder).
    pub reconstructions: u64,
    /// Codes in the archive.
    pub archived: u64,
}

struct Batch {
    codes: Vec<u8>,
    ids: Vec<[u64; 2]>,
    since: Option<Instant>,
}

impl Batch {
    fn new() -> Self {
        Self {
            codes: Vec::new(),
            ids: Vec::new(),
            since: None,
        }
    }
}

/// Listens until `stop` is set, the link has been idle for `idle_exit`, or `until_events`
/// are accounted for; then flushes everything and returns the final status.
///
/// # Errors
/// [`ListenError`] if the package, link, archive, decoder or output fails.
pub fn listen(config: &ListenConfig, stop: &Arc<AtomicBool>) -> Result<Status, ListenError> {
    let manifest = &config.package.manifest;
    let model_id = manifest.model_id.get();
    let width = manifest.code.bytes;
    let width_byte = u8::try_from(width).map_err(|_| ListenError::CodeWidth { bytes: width })?;
    let mut receiver = Receiver::open_allowing(
        &config.link,
        Duration::from_millis(20),
        &config.allowed_peers,
    )
    .map_err(|source| ListenError::Link {
        link: config.link.to_string(),
        source,
    })?;
    if let Some(local) = receiver.local_addr()
        && !local.ip().is_loopback()
        && config.key.is_none()
        && !config.unauthenticated
    {
        return Err(ListenError::KeyRequired {
            link: config.link.to_string(),
            local,
        });
    }
    tracing::info!(
        link = %config.link,
        local = ?receiver.local_addr(),
        authenticated = config.key.is_some(),
        "listening"
    );
    let mut archive = match &config.archive {
        Some(path) => Some(ArchiveWriter::open(path, model_id, width_byte)?),
        None => None,
    };
    let mut codes_h5 = match &config.codes_h5 {
        Some(path) => Some(CodesH5Writer::create(
            path,
            &Provenance {
                model_id: manifest.model_id.to_string(),
                code_bits: manifest.code.bits as u32,
                code_bytes: width,
                source: config.link.to_string(),
            },
        )?),
        None => None,
    };
    let (to_decoder, from_receiver) =
        sync_channel::<(Vec<u8>, Vec<[u64; 2]>)>(config.queue_batches.max(1));
    let decoder_config = config.clone();
    let decoded = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let decoded_count = Arc::clone(&decoded);
    let decoder_thread = thread::spawn(move || -> Result<u64, ListenError> {
        let sink = match &decoder_config.out {
            Some(dir) => Some(
                ReconstructionSink::new(dir, decoder_config.chunk_events, decoder_config.format)
                    .map_err(ReplayError::from)?,
            ),
            None => None,
        };
        let mut replay = Replay::new(&decoder_config.package, decoder_config.decoder, sink)?;
        // Link and archive are open and the decoder is loaded: a sender may start. (Sending
        // earlier works too, but a front-end with a short write timeout, such as a
        // pseudo-terminal's 100 ms, can time out while the decoder loads.)
        if let Some(ready) = &decoder_config.ready {
            // The caller may have stopped waiting; listening goes on regardless.
            let _ = ready.try_send(());
        }
        for (codes, ids) in from_receiver {
            replay.push(&codes, &ids)?;
            decoded_count.fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        Ok(replay.finish()?)
    });

    let decoder_name = format!("{:?}", config.decoder).to_lowercase();
    let start = Instant::now();
    let mut ingest = Ingest::new(model_id, width_byte, config.key.clone());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut batch = Batch::new();
    let mut last_data = Instant::now();
    let mut last_status = Instant::now();
    let mut last_log = Instant::now();
    let status = |ingest: &Ingest, archive: &Option<ArchiveWriter>, running: bool| Status {
        link: config.link.to_string(),
        model_id: manifest.model_id.to_string(),
        decoder: decoder_name.clone(),
        seconds: start.elapsed().as_secs_f64(),
        running,
        counters: ingest.accounting().counters().clone(),
        reconstructions: decoded.load(Ordering::Relaxed),
        archived: archive.as_ref().map_or(0, ArchiveWriter::records),
    };
    let mut result: Result<(), ListenError> = Ok(());
    let mut decoder_state = DecoderState::Running;
    while !stop.load(Ordering::Relaxed) {
        match receiver.receive(&mut buffer) {
            Received::Bytes { connection, n } => {
                ingest.bytes(connection, &buffer[..n], &mut accepted);
                last_data = Instant::now();
            }
            Received::Closed { connection } => ingest.closed(connection),
            Received::Refused { .. } => ingest.accounting_mut().refused_peer(),
            Received::Datagram { n, from } => {
                ingest.datagram(from, &buffer[..n], &mut accepted);
                last_data = Instant::now();
            }
            Received::Idle => {}
        }
        for a in accepted.drain(..) {
            if let Some(archive) = &mut archive
                && let Err(e) = archive.append(a.stream, a.first_event, &a.codes)
            {
                result = Err(e.into());
                break;
            }
            if let Some(codes_h5) = &mut codes_h5
                && let Err(e) = codes_h5.append(a.stream, a.first_event, &a.codes)
            {
                result = Err(e.into());
                break;
            }
            batch.since.get_or_insert_with(Instant::now);
            for (i, _) in a.codes.chunks_exact(width).enumerate() {
                batch
                    .ids
                    .push([u64::from(a.stream), a.first_event + i as u64]);
            }
            batch.codes.extend_from_slice(&a.codes);
            if batch.ids.len() >= config.batch_size {
                decoder_state = send_batch(&mut batch, &to_decoder, &mut ingest);
            }
        }
        if result.is_err() || decoder_state == DecoderState::Stopped {
            break;
        }
        if batch.since.is_some_and(|t| t.elapsed() >= config.max_wait) {
            decoder_state = send_batch(&mut batch, &to_decoder, &mut ingest);
        }
        if last_status.elapsed() >= Duration::from_secs(1) {
            // Errors end the loop rather than return, so the archive is still synced below.
            if let Some(archive) = &mut archive
                && let Err(e) = archive.sync_if_due()
            {
                result = Err(e.into());
                break;
            }
            if let Some(codes_h5) = &mut codes_h5
                && let Err(e) = codes_h5.flush()
            {
                result = Err(e.into());
                break;
            }
            if let Some(path) = &config.status
                && let Err(e) = write_status(path, &status(&ingest, &archive, true))
            {
                result = Err(e);
                break;
            }
            if last_log.elapsed() >= LOG_EVERY {
                log_counters(ingest.accounting().counters());
                last_log = Instant::now();
            }
            last_status = Instant::now();
        }
        let totals = ingest.accounting().counters().totals();
        if config
            .until_events
            .is_some_and(|n| totals.decoded + totals.lost + totals.rejected >= n)
            || config.idle_exit.is_some_and(|t| last_data.elapsed() >= t)
        {
            break;
        }
    }
    send_batch(&mut batch, &to_decoder, &mut ingest);
    drop(to_decoder);
    let written = decoder_thread
        .join()
        .map_err(|_| ListenError::DecoderPanicked)??;
    decoded.store(written, Ordering::Relaxed);
    if let Some(archive) = &mut archive {
        archive.sync()?;
    }
    if let Some(codes_h5) = &mut codes_h5 {
        codes_h5.flush()?;
    }
    result?;
    log_counters(ingest.accounting().counters());
    let final_status = status(&ingest, &archive, false);
    if let Some(path) = &config.status {
        write_status(path, &final_status)?;
    }
    Ok(final_status)
}

/// How often the counters go to the log while running.
const LOG_EVERY: Duration = Duration::from_secs(10);

fn log_counters(counters: &LinkCounters) {
    let t = counters.totals();
    tracing::info!(
        frames = counters.frames,
        decoded = t.decoded,
        lost = t.lost,
        rejected = t.rejected,
        duplicated = t.duplicated,
        rejected_frames = counters.rejected_total(),
        dropped_by_decoder = counters.dropped_by_decoder,
        "counters"
    );
}

fn send_batch(
    batch: &mut Batch,
    to_decoder: &SyncSender<(Vec<u8>, Vec<[u64; 2]>)>,
    ingest: &mut Ingest,
) -> DecoderState {
    if batch.ids.is_empty() {
        return DecoderState::Running;
    }
    let full = std::mem::replace(batch, Batch::new());
    let n = full.ids.len();
    match to_decoder.try_send((full.codes, full.ids)) {
        Ok(()) => DecoderState::Running,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(
                events = n,
                "decoder behind: reconstructions dropped (codes are archived)"
            );
            ingest.accounting_mut().dropped_by_decoder(n);
            DecoderState::Running
        }
        Err(TrySendError::Disconnected(_)) => {
            ingest.accounting_mut().dropped_by_decoder(n);
            DecoderState::Stopped
        }
    }
}

/// Whether the decoding thread still takes batches (it stops only on an error, which
/// `listen` then returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecoderState {
    Running,
    Stopped,
}

/// Writes `status` as JSON to `path` (via a temporary file, so readers never see half).
///
/// # Errors
/// [`ListenError::Status`] if it cannot be written.
pub fn write_status(path: &Path, status: &Status) -> Result<(), ListenError> {
    let error = |source| ListenError::Status {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(status)
        .map_err(std::io::Error::other)
        .map_err(error)?;
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).map_err(error)?;
    std::fs::rename(&partial, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(events: u64) -> Batch {
        Batch {
            codes: vec![0; 16 * events as usize],
            ids: (0..events).map(|event| [0, event]).collect(),
            since: Some(Instant::now()),
        }
    }

    #[test]
    fn a_decoder_that_falls_behind_drops_reconstructions_and_counts_them() {
        let mut ingest = Ingest::new(1, 16, None);
        let (to_decoder, from_receiver) = sync_channel(1);
        // The queue holds one batch; the second finds it full and is dropped, counted.
        let first = send_batch(&mut batch(5), &to_decoder, &mut ingest);
        let second = send_batch(&mut batch(7), &to_decoder, &mut ingest);
        assert_eq!(
            (first, second),
            (DecoderState::Running, DecoderState::Running)
        );
        assert_eq!(ingest.accounting().counters().dropped_by_decoder, 7);
        assert_eq!(from_receiver.recv().unwrap().1.len(), 5);
        // A decoder that stopped takes nothing more: counted, and the loop is told.
        drop(from_receiver);
        let third = send_batch(&mut batch(3), &to_decoder, &mut ingest);
        assert_eq!(third, DecoderState::Stopped);
        assert_eq!(ingest.accounting().counters().dropped_by_decoder, 10);
        // An empty batch sends nothing.
        let mut empty = Batch::new();
        assert_eq!(
            send_batch(&mut empty, &to_decoder, &mut ingest),
            DecoderState::Running
        );
        assert_eq!(ingest.accounting().counters().dropped_by_decoder, 10);
    }
}
