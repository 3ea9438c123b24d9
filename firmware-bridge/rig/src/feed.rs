//! Feeding a front-end: raw events go out as event packets, codes come back as frames, and
//! every code is checked against the host runtime's code for the same event, bit for bit.
//!
//! This is how a board (or QEMU, see [`crate::qemu`]) is tested against the host: the same
//! link carries both directions. Sending runs on its own thread so a front-end that holds
//! the sender back (a full receive queue) never blocks reading its codes.

use std::io::{self, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use latentlink_bridge::accounting::LinkCounters;
use latentlink_bridge::decode::{self, DecoderKind};
use latentlink_bridge::ingest::{Accepted, Ingest};
use latentlink_bridge::replay::{ReplayError, codes_to_bits};
use latentlink_package::{Package, PackageError};
use latentlink_runtime::wire::FrameKey;
use latentlink_runtime::wire::event::{EventRepr, event_packet_len, event_stream_len};
use latentlink_trainer::{cloud, train};
use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::emulate;

/// Why feeding failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The link failed.
    #[error("link: {0}")]
    Link(#[from] io::Error),
    /// The events do not fit the model, or the host encoder failed.
    #[error(transparent)]
    Encode(#[from] emulate::EmulateError),
    /// Decoding failed.
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    /// Returned codes could not be turned into bits.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The golden vectors could not be read.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The golden inputs and the events have different widths.
    #[error("the package's golden inputs do not fit these events: {0}")]
    Golden(#[source] ndarray::ShapeError),
    /// The package's code width does not fit a frame's one-byte width field.
    #[error("the package's codes are {bytes} bytes wide; frames carry at most 255")]
    CodeWidth {
        /// Bytes per code.
        bytes: usize,
    },
}

/// The code of each event sent, by event id, if it came back.
pub type ReturnedCodes = Vec<Option<Vec<u8>>>;

/// What came back, against what the host runtime computes.
#[derive(Debug, Clone, Serialize)]
pub struct FeedSummary {
    /// Events sent.
    pub events: usize,
    /// Events whose code came back.
    pub received: usize,
    /// Of those, codes equal to the host runtime's, bit for bit.
    pub bit_exact: usize,
    /// Event ids whose code differs (at most the first 20).
    pub mismatched: Vec<u64>,
    /// Bits that differ over all received codes.
    pub differing_bits: u64,
    /// Bytes of event packets sent.
    pub bytes_sent: u64,
    /// The link counters of the returned frames.
    pub counters: LinkCounters,
    /// nMSE of the decoded codes against the events sent (None without a decoder).
    pub nmse: Option<f64>,
    /// For a point-cloud package, the mean Chamfer distance of the decoded clouds in the
    /// report's scaled units (the nMSE compares point slots in order, which means little
    /// for a cloud); None without a decoder or for other packages.
    pub chamfer: Option<f64>,
    /// Seconds from the first event sent to the last code received.
    pub seconds: f64,
}

/// Sends `events` (one per row, ids 0, 1, ...) to a front-end on `writer`, then an end of
/// stream, and reads its code frames from `reader` until every code came back, the reader
/// ends, or `timeout` passes. Codes are compared with the host runtime's; with a `decoder`
/// they are decoded and the error reported. With a `key`, only frames sealed with it count
/// (the front-end must have been built with the same key).
///
/// # Errors
/// [`FeedError`] if the events do not fit the model or the link fails.
pub fn feed(
    mut reader: impl Read,
    writer: impl Write + Send + 'static,
    package: &Package,
    events: &Array2<f32>,
    key: Option<&FrameKey>,
    decoder: Option<DecoderKind>,
    timeout: Duration,
) -> Result<(ReturnedCodes, FeedSummary), FeedError> {
    let expected = emulate::encode_events(&package.blob, events)?;
    let width = package.manifest.code.bytes;
    let width_byte = u8::try_from(width).map_err(|_| FeedError::CodeWidth { bytes: width })?;
    let model_id = package.model_id().get();

    let started = Instant::now();
    let sender = {
        let events = events.clone();
        thread::spawn(move || send_events(writer, &events))
    };
    let mut ingest = Ingest::new(model_id, width_byte, key.cloned());
    let mut codes: ReturnedCodes = vec![None; events.nrows()];
    let mut received = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut accepted = Vec::new();
    while received < codes.len() && started.elapsed() < timeout {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        accepted.clear();
        // One connection to one front-end for the whole run.
        ingest.bytes(0, buffer.get(..n).unwrap_or(&[]), &mut accepted);
        for Accepted {
            first_event,
            codes: batch,
            ..
        } in &accepted
        {
            for (k, code) in batch.chunks_exact(width).enumerate() {
                let slot = usize::try_from(first_event + k as u64)
                    .ok()
                    .and_then(|id| codes.get_mut(id));
                if let Some(slot @ None) = slot {
                    *slot = Some(code.to_vec());
                    received += 1;
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let bytes_sent = sender
        .join()
        .map_err(|_| io::Error::other("the sending thread panicked"))??;

    let mut summary = FeedSummary {
        events: events.nrows(),
        received,
        bit_exact: 0,
        mismatched: Vec::new(),
        differing_bits: 0,
        bytes_sent,
        counters: ingest.accounting().counters().clone(),
        nmse: None,
        chamfer: None,
        seconds,
    };
    for (id, (code, host)) in codes.iter().zip(expected.chunks_exact(width)).enumerate() {
        let Some(code) = code else { continue };
        let bits: u32 = code
            .iter()
            .zip(host)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        summary.differing_bits += u64::from(bits);
        if bits == 0 {
            summary.bit_exact += 1;
        } else if summary.mismatched.len() < 20 {
            summary.mismatched.push(id as u64);
        }
    }
    if let Some(kind) = decoder
        && let Some((nmse, chamfer)) = decode_error(package, kind, events, &codes)?
    {
        summary.nmse = Some(nmse);
        summary.chamfer = chamfer;
    }
    Ok((codes, summary))
}

/// The package's golden inputs followed by `events`, and the golden int8 code bits: the
/// first codes can then also be checked against the codes the package was shipped with.
///
/// # Errors
/// [`FeedError`] if the golden vectors cannot be read or do not fit the events.
pub fn golden_first(
    package: &Package,
    events: &Array2<f32>,
) -> Result<(Array2<f32>, Array2<f32>), FeedError> {
    let golden = package.golden()?;
    let all = ndarray::concatenate(Axis(0), &[golden.inputs.view(), events.view()])
        .map_err(FeedError::Golden)?;
    Ok((all, golden.int8_codes))
}

/// How many of the first codes equal the golden int8 code bits (rows of 0/1).
pub fn golden_matches(codes: &[Option<Vec<u8>>], golden_bits: &Array2<f32>) -> usize {
    golden_bits
        .rows()
        .into_iter()
        .zip(codes)
        .filter(|(bits, code)| {
            code.as_ref().is_some_and(|code| {
                codes_to_bits(code, code.len(), bits.len())
                    .is_ok_and(|ours| ours.nrows() == 1 && ours.row(0) == *bits)
            })
        })
        .count()
}

/// nMSE of the received codes' reconstructions against their events, and for a point-cloud
/// package their Chamfer distance.
fn decode_error(
    package: &Package,
    kind: DecoderKind,
    events: &Array2<f32>,
    codes: &[Option<Vec<u8>>],
) -> Result<Option<(f64, Option<f64>)>, FeedError> {
    let rows: Vec<usize> = (0..codes.len()).filter(|&i| codes[i].is_some()).collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let bytes: Vec<u8> = codes.iter().flatten().flatten().copied().collect();
    let manifest = &package.manifest;
    let bits = codes_to_bits(&bytes, manifest.code.bytes, manifest.code.bits)?;
    let mut decoder = decode::open(package, kind)?;
    let reconstructions = decoder.decode(&bits)?;
    let truth = events.select(Axis(0), &rows);
    Ok(Some((
        train::nmse(&truth, &reconstructions),
        cloud::package_chamfer(manifest, &truth, &reconstructions)?,
    )))
}

/// Writes a delimiter, every event as a packet, and the end of stream; returns the bytes sent.
fn send_events(mut writer: impl Write, events: &Array2<f32>) -> io::Result<u64> {
    let samples = events.ncols();
    let mut raw = vec![0u8; event_packet_len(samples)];
    let mut wire = vec![0u8; event_stream_len(samples)];
    let mut sent = 0u64;
    writer.write_all(&[0])?;
    let rows = events.rows().into_iter().map(Some).chain([None]);
    for (id, row) in rows.enumerate() {
        let values: Option<Vec<f32>> = row.map(|r| r.to_vec());
        let len = EventRepr::for_samples(id as u64, values.as_deref())
            .and_then(|repr| repr.emit_with_samples(values.as_deref().unwrap_or(&[]), &mut raw))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let encoded = cobs::encode(raw.get(..len).unwrap_or(&[]), &mut wire);
        let frame = wire.get_mut(..=encoded).unwrap_or(&mut []);
        if let Some(delimiter) = frame.last_mut() {
            *delimiter = 0;
        }
        writer.write_all(frame)?;
        sent += frame.len() as u64;
    }
    writer.flush()?;
    Ok(sent)
}
