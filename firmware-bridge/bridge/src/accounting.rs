//! Every event accounted for: per stream, how many were decoded, lost, rejected or duplicated.
//!
//! # Rules
//!
//! A stream's events carry consecutive ids (`first_event + i` in a frame). The tracker keeps
//! the next id it expects and the *holes*: ranges of ids it has not seen yet.
//!
//! - A good frame at the expected id: its events are **decoded**.
//! - A good frame past the expected id: the skipped ids become a hole, counted **lost**.
//! - A frame that was **rejected** (bad CRC, unknown model, malformed...) but whose header
//!   still names a stream and a range of events *claims* that range: ids of it that are or
//!   become holes move from lost to rejected. A header too damaged to read cannot claim, and
//!   its events stay lost; the sum below stays exact either way.
//! - A good frame inside a hole (it arrived late, e.g. reordered): its events move from the
//!   hole's kind to decoded and count as **late** too.
//! - A good frame over ids already decoded: **duplicated**, not decoded again.
//! - A frame with another **boot nonce** than the stream's current run: the front-end started
//!   again (rebooted, or its emulator was restarted). The tracker starts afresh from this
//!   frame and counts a **restart**; the earlier run's nonce is retired, and a frame that
//!   still carries a retired nonce (a late straggler of the earlier run, or a replay) is
//!   refused as [`RejectReason::Stale`], never counted as new events. The last
//!   [`RETIRED_BOOTS`] nonces of each stream are remembered.
//! - Senders without a nonce source send nonce 0; for them the restart is inferred. A frame
//!   far behind the expected id (more than [`RESTART_WINDOW`]) and outside every hole: the
//!   front-end restarted its ids; the tracker follows it and counts a **restart**. So does
//!   the first frame from a new origin (a new connection or UDP source address, as
//!   `crate::ingest` tells) that starts at sequence 0 and event 0, or whose ids were all
//!   passed already while its sequence number is more than one behind: a front-end that
//!   rebooted (its first frame may have been lost), however near its ids are. These guesses
//!   are not made for a sender with a nonce: there, an old frame is a duplicate, however old,
//!   so a replayed frame cannot reset the stream.
//! - A frame whose ids or sequence number jump ahead by more than [`RESTART_WINDOW`]: not
//!   believed to be a loss of millions (one forged or corrupted-yet-valid header would
//!   otherwise make `lost` 4.6·10^18 and hide every later real gap); the tracker follows it
//!   from there and counts a **jump**, the skipped ids counted nowhere.
//!
//! Invariant (tested): for every stream without restarts or jumps, `decoded + lost +
//! rejected` equals the number of distinct event ids from the stream's first id to the last
//! id seen. Losses after the last frame received cannot be known until a later frame arrives.
//! No frame adds more than [`RESTART_WINDOW`] to `lost` or `frames_lost` (tested with
//! arbitrary headers).
//!
//! Memory is bounded whatever arrives: a tracker is created only by a good frame (valid CRC,
//! our model and code width), never by a rejected one; at most [`MAX_STREAMS`] streams are
//! tracked, frames of further streams are refused as [`RejectReason::StreamLimit`]; each
//! tracker keeps at most `MAX_HOLES` holes and `MAX_PENDING_CLAIMS` claims.
//!
//! Sequence numbers (`u32`, one per frame) wrap; gaps in them count **frames lost**, measured
//! with wrapping arithmetic so the wrap from `u32::MAX` to 0 is not a gap; a frame that fills
//! a hole late takes its frame back out of that count.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use latentlink_runtime::wire::{AccumulatorError, FrameError, FrameRepr};
use serde::{Deserialize, Serialize};

/// Ids this far behind the expected one, outside every hole, mean the sender restarted;
/// ids or sequence numbers this far ahead in one frame are a jump, not a loss.
pub const RESTART_WINDOW: u64 = 1 << 24;

/// Streams tracked on one link; frames of further streams are refused and counted.
pub const MAX_STREAMS: usize = 256;

/// Holes kept per stream; past this the oldest hole is forgotten (its count stays).
const MAX_HOLES: usize = 1024;

/// Claims of rejected frames ahead of the expected id kept per stream.
const MAX_PENDING_CLAIMS: usize = 256;

/// Boot nonces of a stream's earlier runs remembered, to refuse their frames as stale.
pub const RETIRED_BOOTS: usize = 16;

/// Why a frame (or a run of bytes) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The CRC-32C does not match: corrupted in transit.
    Crc,
    /// A wire-format version this bridge does not read.
    Version,
    /// A model id other than the loaded package's.
    UnknownModel,
    /// Not a well-formed frame (bad COBS, truncated, lengths that do not add up, or a code
    /// width other than the model's).
    Malformed,
    /// Longer than the largest frame.
    Oversize,
    /// A good frame of a new stream when [`MAX_STREAMS`] streams are already tracked.
    StreamLimit,
    /// The listener has a key and the frame carries no authentication tag.
    Unauthenticated,
    /// The frame's tag is wrong: forged, or sealed with another deployment's key.
    Forged,
    /// The frame carries a tag and the listener was given no key to check it.
    Unverifiable,
    /// A frame of an earlier run of its stream (a retired boot nonce): late, or replayed.
    Stale,
    /// A compact frame before any full frame on its connection: nothing to read it in (the
    /// listener joined mid-stream; the sender's next full frame ends this).
    NoContext,
}

impl RejectReason {
    /// The reason for a frame the runtime's parser refused.
    pub fn of_frame_error(error: FrameError) -> Self {
        match error {
            FrameError::Checksum { .. } => Self::Crc,
            FrameError::UnsupportedVersion { .. } => Self::Version,
            FrameError::Oversize { .. } => Self::Oversize,
            FrameError::Unauthenticated => Self::Unauthenticated,
            FrameError::Forged => Self::Forged,
            FrameError::Unverifiable => Self::Unverifiable,
            _ => Self::Malformed,
        }
    }

    /// The reason for bytes the accumulator dropped.
    pub fn of_accumulator_error(error: AccumulatorError) -> Self {
        match error {
            AccumulatorError::Oversize { .. } => Self::Oversize,
            _ => Self::Malformed,
        }
    }
}

/// Counters of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounters {
    /// Good frames received (duplicates included).
    pub frames: u64,
    /// Frames missing by sequence number.
    pub frames_lost: u64,
    /// Events decoded (each id once).
    pub decoded: u64,
    /// Events not received (holes not claimed by a rejected frame).
    pub lost: u64,
    /// Events in rejected frames.
    pub rejected: u64,
    /// Events received again after they were decoded.
    pub duplicated: u64,
    /// Events decoded after a later event (reordered); included in `decoded`.
    pub late: u64,
    /// Times the sender restarted its event ids.
    pub restarts: u64,
    /// Frames whose event ids or sequence number jumped ahead by more than
    /// [`RESTART_WINDOW`] (the ids skipped are not counted lost).
    #[serde(default)]
    pub jumps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoleKind {
    Lost,
    Rejected,
}

/// The tracker of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamTracker {
    counters: StreamCounters,
    next_event: Option<u64>,
    next_sequence: Option<u32>,
    /// Boot nonce of the current run (0: the sender has none).
    boot: u32,
    /// Nonces of earlier runs, newest last.
    retired_boots: VecDeque<u32>,
    /// Non-overlapping holes below `next_event`, by start.
    holes: BTreeMap<u64, (u64, HoleKind)>,
    /// Ranges claimed by rejected frames at or past `next_event`.
    pending_claims: Vec<Range<u64>>,
}

/// What to do with the events of a good frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Sub-ranges (offsets into the frame's codes) to decode; the rest were duplicates.
    pub decode: Vec<Range<usize>>,
}

impl StreamTracker {
    /// The counters so far.
    pub fn counters(&self) -> &StreamCounters {
        &self.counters
    }

    /// Removes the part of `range` that lies in holes and returns it, piece by piece.
    fn carve(&mut self, range: &Range<u64>) -> Vec<(Range<u64>, HoleKind)> {
        let overlapping: Vec<(u64, u64, HoleKind)> = self
            .holes
            .range(..range.end)
            .rev()
            .take_while(|(_, (end, _))| *end > range.start)
            .map(|(&start, &(end, kind))| (start, end, kind))
            .collect();
        let mut pieces = Vec::new();
        for (start, end, kind) in overlapping {
            self.holes.remove(&start);
            let (cut_start, cut_end) = (start.max(range.start), end.min(range.end));
            if start < cut_start {
                self.holes.insert(start, (cut_start, kind));
            }
            if cut_end < end {
                self.holes.insert(cut_end, (end, kind));
            }
            pieces.push((cut_start..cut_end, kind));
        }
        pieces
    }

    fn add_hole(&mut self, range: Range<u64>, kind: HoleKind) {
        if range.is_empty() {
            return;
        }
        match kind {
            HoleKind::Lost => self.counters.lost += range.end - range.start,
            HoleKind::Rejected => self.counters.rejected += range.end - range.start,
        }
        self.holes.insert(range.start, (range.end, kind));
        while self.holes.len() > MAX_HOLES {
            self.holes.pop_first();
        }
    }

    /// Moves the lost ids of `range` to rejected.
    fn mark_rejected(&mut self, range: &Range<u64>) {
        for (piece, kind) in self.carve(range) {
            if kind == HoleKind::Lost {
                self.counters.lost -= piece.end - piece.start;
            } else {
                self.counters.rejected -= piece.end - piece.start;
            }
            self.add_hole(piece, HoleKind::Rejected);
        }
    }

    /// Records a rejected frame whose header names `first_event` and `count` events.
    pub fn claim_rejected(&mut self, first_event: u64, count: u16) {
        let range = first_event..first_event.saturating_add(u64::from(count));
        match self.next_event {
            Some(next) if range.start < next => self.mark_rejected(&range),
            _ => {
                if self.pending_claims.len() < MAX_PENDING_CLAIMS {
                    self.pending_claims.push(range);
                }
            }
        }
    }

    /// What a frame's boot nonce says: the current run, a new run, or an earlier one.
    fn run_of(&self, boot: u32) -> Run {
        if boot == self.boot {
            Run::Current
        } else if self.retired_boots.contains(&boot) {
            Run::Earlier
        } else {
            Run::New
        }
    }

    /// Starts the run of nonce `boot`: the current one is retired, the tracker starts afresh
    /// and counts a restart.
    fn start_run(&mut self, boot: u32) {
        self.retired_boots.push_back(self.boot);
        while self.retired_boots.len() > RETIRED_BOOTS {
            self.retired_boots.pop_front();
        }
        self.boot = boot;
        self.restart();
    }

    /// Whether a frame of a sender without a nonce, arriving from a new origin, is the start
    /// of a new run of the stream (the rule in the [module docs](self)).
    fn starts_again(&self, sequence: u32, first_event: u64, count: u16) -> bool {
        if self.boot != 0 {
            return false;
        }
        let from_zero = sequence == 0 && first_event == 0;
        let ids_passed = self
            .next_event
            .is_some_and(|next| first_event.saturating_add(u64::from(count)) <= next);
        let sequence_behind = self
            .next_sequence
            .is_some_and(|expected| expected.wrapping_sub(sequence) as i32 > 1);
        from_zero || (ids_passed && sequence_behind)
    }

    /// The front-end started a new run of the stream: what was expected is forgotten, the
    /// next frame starts afresh, and a restart is counted.
    pub fn restart(&mut self) {
        self.counters.restarts += 1;
        self.forget();
    }

    /// Forgets what was expected, so the next frame starts the stream afresh.
    fn forget(&mut self) {
        self.holes.clear();
        self.pending_claims.clear();
        self.next_event = None;
        self.next_sequence = None;
    }

    /// Accounts for a good frame of `count` events from `first_event` with sequence number
    /// `sequence`, and says which of its events to decode.
    pub fn accept(&mut self, sequence: u32, first_event: u64, count: u16) -> Verdict {
        self.counters.frames += 1;
        let count_u64 = u64::from(count);
        let range = first_event..first_event.saturating_add(count_u64);
        if let Some(next) = self.next_event {
            if self.boot == 0
                && next.saturating_sub(range.start) > RESTART_WINDOW
                && self.carve_peek(&range) == 0
            {
                self.restart();
            } else if range.start.saturating_sub(next) > RESTART_WINDOW {
                tracing::warn!(
                    first_event,
                    expected = next,
                    "event ids jumped ahead; following the stream from here"
                );
                self.counters.jumps += 1;
                self.forget();
            }
        }
        // After a restart or a jump, as for a stream's first frame, this frame starts afresh.
        let next = *self.next_event.get_or_insert(first_event);
        self.track_sequence(sequence);
        let mut decode = Vec::new();
        // The part below `next`: late (in a hole) or duplicated.
        let old = range.start..range.end.min(next);
        if !old.is_empty() {
            let mut late: Vec<Range<u64>> = Vec::new();
            for (piece, kind) in self.carve(&old) {
                let n = piece.end - piece.start;
                match kind {
                    HoleKind::Lost => self.counters.lost -= n,
                    HoleKind::Rejected => self.counters.rejected -= n,
                }
                self.counters.decoded += n;
                self.counters.late += n;
                late.push(piece);
            }
            let late_total: u64 = late.iter().map(|r| r.end - r.start).sum();
            if late_total > 0 && self.counters.frames_lost > 0 {
                // The sequence gap this frame left was counted lost; it only came late.
                self.counters.frames_lost -= 1;
            }
            self.counters.duplicated += (old.end - old.start) - late_total;
            late.sort_by_key(|r| r.start);
            decode.extend(
                late.into_iter()
                    .map(|r| offset(r.start, first_event)..offset(r.end, first_event)),
            );
        }
        if range.end > next {
            let new_start = range.start.max(next);
            decode.push(self.accept_new(new_start..range.end, offset(new_start, first_event)));
        }
        Verdict { decode }
    }

    /// Ids of `range` that are holes, without changing anything.
    fn carve_peek(&self, range: &Range<u64>) -> u64 {
        self.holes
            .range(..range.end)
            .rev()
            .take_while(|(_, (end, _))| *end > range.start)
            .map(|(&start, &(end, _))| end.min(range.end) - start.max(range.start))
            .sum()
    }

    /// Accepts `range`, all at or past the expected id; `skip` is its offset in the frame.
    /// Returns the offsets to decode.
    fn accept_new(&mut self, range: Range<u64>, skip: usize) -> Range<usize> {
        let next = self.next_event.unwrap_or(range.start);
        self.add_hole(next..range.start, HoleKind::Lost);
        self.counters.decoded += range.end - range.start;
        self.next_event = Some(range.end);
        let claims = std::mem::take(&mut self.pending_claims);
        for claim in claims {
            if claim.start < range.end {
                self.mark_rejected(&claim);
            } else {
                self.pending_claims.push(claim);
            }
        }
        let len = (range.end - range.start) as usize;
        skip..skip + len
    }

    fn track_sequence(&mut self, sequence: u32) {
        if let Some(expected) = self.next_sequence {
            let ahead = sequence.wrapping_sub(expected) as i32;
            if ahead < 0 {
                // A late or repeated frame; the sequence already moved past it.
                return;
            }
            if u64::from(ahead.unsigned_abs()) > RESTART_WINDOW {
                tracing::warn!(sequence, expected, "sequence number jumped ahead");
                self.counters.jumps += 1;
            } else {
                self.counters.frames_lost += u64::from(ahead.unsigned_abs());
            }
        }
        self.next_sequence = Some(sequence.wrapping_add(1));
    }
}

fn offset(id: u64, first_event: u64) -> usize {
    (id - first_event) as usize
}

/// Which run of its stream a frame belongs to, by its boot nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Current,
    New,
    Earlier,
}

/// Counters of a whole link: bytes, rejections and each stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Bytes (or datagram bytes) received.
    pub bytes: u64,
    /// Good frames.
    pub frames: u64,
    /// Frames or byte runs refused, by reason.
    pub rejected_frames: BTreeMap<RejectReason, u64>,
    /// TCP connections and UDP datagrams refused unread: their peer is not on the allow-list.
    #[serde(default)]
    pub refused_peers: u64,
    /// Decoded events the decoder could not take in time and dropped (see the listen
    /// policy); they are counted decoded by the streams, but have no reconstruction.
    pub dropped_by_decoder: u64,
    /// Per stream id.
    pub streams: BTreeMap<u16, StreamCounters>,
}

impl LinkCounters {
    /// Totals over all streams.
    pub fn totals(&self) -> StreamCounters {
        let mut total = StreamCounters::default();
        for s in self.streams.values() {
            total.frames += s.frames;
            total.frames_lost += s.frames_lost;
            total.decoded += s.decoded;
            total.lost += s.lost;
            total.rejected += s.rejected;
            total.duplicated += s.duplicated;
            total.late += s.late;
            total.restarts += s.restarts;
            total.jumps += s.jumps;
        }
        total
    }

    /// Rejected frames over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_frames.values().sum()
    }
}

/// Trackers of every stream on a link, and its counters.
#[derive(Debug, Default)]
pub struct Accounting {
    trackers: BTreeMap<u16, StreamTracker>,
    counters: LinkCounters,
}

impl Accounting {
    /// Counts received bytes.
    pub fn bytes(&mut self, n: usize) {
        self.counters.bytes += n as u64;
    }

    /// Counts a refused frame; `claim` is `(stream, first_event, count)` when its header is
    /// still readable. A claim counts only against a stream a good frame already started:
    /// junk never creates a tracker.
    pub fn reject(&mut self, reason: RejectReason, claim: Option<(u16, u64, u16)>) {
        *self.counters.rejected_frames.entry(reason).or_default() += 1;
        if let Some((stream, first_event, count)) = claim
            && let Some(tracker) = self.trackers.get_mut(&stream)
        {
            tracker.claim_rejected(first_event, count);
            self.counters
                .streams
                .insert(stream, tracker.counters().clone());
        }
    }

    /// Counts a good frame and says which of its events to decode (none when it would start
    /// a stream past [`MAX_STREAMS`], counted as [`RejectReason::StreamLimit`], or when it
    /// belongs to an earlier run, counted as [`RejectReason::Stale`]).
    /// `from_new_origin`: the stream's last good frame came by another connection or source
    /// address, so this one may start a new run (see the module docs).
    pub fn accept(&mut self, frame: &FrameRepr, from_new_origin: bool) -> Verdict {
        let FrameRepr {
            stream_id: stream,
            sequence,
            first_event,
            code_count: count,
            boot,
            ..
        } = *frame;
        if !self.trackers.contains_key(&stream) && self.trackers.len() >= MAX_STREAMS {
            if !self
                .counters
                .rejected_frames
                .contains_key(&RejectReason::StreamLimit)
            {
                tracing::warn!(stream, "more than {MAX_STREAMS} streams; refusing new ones");
            }
            // No claim: the stream is not tracked, and must not become so.
            self.reject(RejectReason::StreamLimit, None);
            return Verdict { decode: Vec::new() };
        }
        let tracker = self
            .trackers
            .entry(stream)
            .or_insert_with(|| StreamTracker {
                boot,
                ..StreamTracker::default()
            });
        match tracker.run_of(boot) {
            Run::Earlier => {
                // No claim: the frame's events belong to a run that is over.
                self.reject(RejectReason::Stale, None);
                return Verdict { decode: Vec::new() };
            }
            Run::New => tracker.start_run(boot),
            Run::Current => {
                if from_new_origin && tracker.starts_again(sequence, first_event, count) {
                    tracker.restart();
                }
            }
        }
        self.counters.frames += 1;
        let verdict = tracker.accept(sequence, first_event, count);
        self.counters
            .streams
            .insert(stream, tracker.counters().clone());
        verdict
    }

    /// Counts a connection or datagram refused for its peer.
    pub fn refused_peer(&mut self) {
        self.counters.refused_peers += 1;
    }

    /// Counts events the decoder dropped.
    pub fn dropped_by_decoder(&mut self, n: usize) {
        self.counters.dropped_by_decoder += n as u64;
    }

    /// The counters so far.
    pub fn counters(&self) -> &LinkCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn totals(t: &StreamTracker) -> u64 {
        let c = t.counters();
        c.decoded + c.lost + c.rejected
    }

    #[test]
    fn in_order_frames_are_decoded() {
        let mut t = StreamTracker::default();
        for f in 0..10u32 {
            let v = t.accept(f, u64::from(f) * 4, 4);
            assert_eq!(v.decode, vec![0..4]);
        }
        assert_eq!(t.counters().decoded, 40);
        assert_eq!(t.counters().frames_lost, 0);
    }

    #[test]
    fn gaps_are_lost_and_claims_make_them_rejected() {
        let mut t = StreamTracker::default();
        t.accept(0, 100, 4);
        // Frame 1 (ids 104..108) arrives with a bad CRC, frame 2 (108..112) never arrives.
        t.claim_rejected(104, 4);
        t.accept(3, 112, 4);
        let c = t.counters().clone();
        assert_eq!((c.decoded, c.lost, c.rejected, c.frames_lost), (8, 4, 4, 2));
        // Frame 2 arrives late after all: it fills its hole.
        assert_eq!(t.accept(2, 108, 4).decode, vec![0..4]);
        let c = t.counters().clone();
        assert_eq!((c.decoded, c.lost, c.rejected, c.late), (12, 0, 4, 4));
        assert_eq!(c.frames_lost, 1);
        // A claim arriving after the gap was found also works.
        t.accept(5, 120, 4);
        t.claim_rejected(116, 4);
        let c = t.counters().clone();
        assert_eq!((c.lost, c.rejected), (0, 8));
        assert_eq!(totals(&t), 124 - 100);
    }

    #[test]
    fn duplicates_are_counted_not_decoded() {
        let mut t = StreamTracker::default();
        t.accept(0, 0, 4);
        t.accept(1, 4, 4);
        assert!(t.accept(1, 4, 4).decode.is_empty());
        // Half old, half new.
        assert_eq!(t.accept(2, 6, 4).decode, vec![2..4]);
        let c = t.counters();
        assert_eq!((c.decoded, c.duplicated), (10, 6));
    }

    #[test]
    fn sequence_numbers_wrap_without_a_gap() {
        let mut t = StreamTracker::default();
        t.accept(u32::MAX - 1, 0, 1);
        t.accept(u32::MAX, 1, 1);
        t.accept(0, 2, 1);
        t.accept(2, 4, 1);
        assert_eq!(t.counters().frames_lost, 1);
        assert_eq!(t.counters().lost, 1);
    }

    #[test]
    fn a_restarted_sender_is_followed() {
        let mut t = StreamTracker::default();
        t.accept(0, RESTART_WINDOW * 3, 4);
        assert_eq!(t.accept(0, 0, 4).decode, vec![0..4]);
        assert_eq!(t.counters().restarts, 1);
        assert_eq!(t.accept(1, 4, 4).decode, vec![0..4]);
    }

    #[test]
    fn a_forged_jump_is_a_jump_not_a_loss_and_later_gaps_still_count() {
        let mut t = StreamTracker::default();
        t.accept(0, 0, 4);
        // A header claiming ids near 2^62 and a sequence number 2^31 ahead.
        assert_eq!(t.accept(1 << 31, 1 << 62, 4).decode, vec![0..4]);
        assert_eq!((t.counters().lost, t.counters().jumps), (0, 1));
        // The honest stream goes on: followed again (a restart), and its real gap of one
        // frame is counted.
        t.accept(1, 4, 4);
        t.accept(3, 12, 4);
        let c = t.counters();
        assert_eq!((c.lost, c.frames_lost, c.restarts, c.jumps), (4, 1, 1, 1));
        // A sequence number alone jumping is a jump too, not 2^31 frames lost.
        t.accept(3 + (1 << 30), 16, 4);
        assert_eq!((t.counters().frames_lost, t.counters().jumps), (1, 2));
    }

    #[test]
    fn rejected_frames_never_create_streams_and_streams_are_capped() {
        let mut accounting = Accounting::default();
        for stream in 0..30_000u16 {
            accounting.reject(RejectReason::Crc, Some((stream, 0, 4)));
        }
        assert!(accounting.counters().streams.is_empty());
        for stream in 0..MAX_STREAMS as u16 + 10 {
            accounting.accept(&frame(stream, 0, 0, 0), false);
        }
        let counters = accounting.counters();
        assert_eq!(counters.streams.len(), MAX_STREAMS);
        assert_eq!(counters.rejected_frames[&RejectReason::StreamLimit], 10);
        assert_eq!(counters.frames, MAX_STREAMS as u64);
        // A stream already tracked keeps going.
        assert_eq!(
            accounting.accept(&frame(0, 0, 1, 4), false).decode,
            vec![0..4]
        );
        // And a rejected frame's claim counts against it.
        accounting.reject(RejectReason::Crc, Some((0, 8, 4)));
        accounting.accept(&frame(0, 0, 3, 12), false);
        assert_eq!(accounting.counters().streams[&0].rejected, 4);
    }

    /// A frame of four events of `stream` in the run of nonce `boot`.
    fn frame(stream: u16, boot: u32, sequence: u32, first_event: u64) -> FrameRepr {
        FrameRepr {
            model_id: 1,
            stream_id: stream,
            sequence,
            first_event,
            code_bytes: 16,
            code_count: 4,
            boot,
        }
    }

    #[test]
    fn a_new_boot_nonce_starts_a_new_run_and_old_ones_are_stale() {
        let mut accounting = Accounting::default();
        for seq in 0..10 {
            accounting.accept(&frame(3, 0xaaaa, seq, u64::from(seq) * 4), false);
        }
        // The front-end reboots on the same link (no new origin): ids start at 0 again.
        for seq in 0..5 {
            let verdict = accounting.accept(&frame(3, 0xbbbb, seq, u64::from(seq) * 4), false);
            assert_eq!(verdict.decode, vec![0..4]);
        }
        // A straggler, or a replay, of the first run: refused, not decoded.
        let stale = accounting.accept(&frame(3, 0xaaaa, 10, 40), false);
        assert!(stale.decode.is_empty());
        let counters = accounting.counters();
        let stream = &counters.streams[&3];
        assert_eq!(
            (stream.decoded, stream.duplicated, stream.restarts),
            (60, 0, 1)
        );
        assert_eq!(counters.rejected_frames[&RejectReason::Stale], 1);
        // With a nonce, a replayed frame of the current run from elsewhere is a duplicate;
        // it does not reset the stream the way a nonce-less sender's restart would.
        assert!(
            accounting
                .accept(&frame(3, 0xbbbb, 0, 0), true)
                .decode
                .is_empty()
        );
        assert_eq!(accounting.counters().streams[&3].restarts, 1);
        assert_eq!(accounting.counters().streams[&3].duplicated, 4);
    }

    #[test]
    fn only_the_last_retired_nonces_are_remembered() {
        let mut accounting = Accounting::default();
        for boot in 1..=RETIRED_BOOTS as u32 + 2 {
            accounting.accept(&frame(0, boot, 0, 0), false);
        }
        // Nonce 1 was retired longest ago and forgotten: it reads as a new run again.
        assert_eq!(
            accounting.accept(&frame(0, 1, 0, 0), false).decode,
            vec![0..4]
        );
        // Nonce 3 is still remembered.
        assert!(
            accounting
                .accept(&frame(0, 3, 1, 4), false)
                .decode
                .is_empty()
        );
    }

    proptest! {
        /// No header, however forged, adds more than the window to the loss counters, and
        /// none panics.
        #[test]
        fn one_frame_cannot_wreck_the_counters(
            frames in proptest::collection::vec((any::<u32>(), any::<u64>(), any::<u16>()), 1..50),
        ) {
            let mut t = StreamTracker::default();
            let mut frames_seen = 0u64;
            for (sequence, first_event, count) in frames {
                t.accept(sequence, first_event, count);
                frames_seen += 1;
                let c = t.counters();
                prop_assert!(c.lost <= frames_seen * RESTART_WINDOW);
                prop_assert!(c.frames_lost <= frames_seen * RESTART_WINDOW);
            }
        }

        /// Whatever is dropped, duplicated, rejected or reordered, every id from the first
        /// to the last seen is decoded, lost or rejected exactly once, and decoded ids are
        /// exactly those of good frames.
        #[test]
        fn every_event_is_accounted_for(
            fates in proptest::collection::vec(0u8..6, 1..200),
            swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            // Frame i holds ids 3i..3i+3. Fates: 0..=2 good, 3 dropped, 4 rejected, 5 duplicated.
            let mut frames: Vec<(u32, bool)> = Vec::new();
            for (i, &fate) in fates.iter().enumerate() {
                let seq = i as u32;
                match fate {
                    3 => {}
                    4 => frames.push((seq, false)),
                    5 => { frames.push((seq, true)); frames.push((seq, true)); }
                    _ => frames.push((seq, true)),
                }
            }
            // The last frame always arrives, first of all, so the end is known.
            let last = fates.len() as u32 - 1;
            frames.retain(|&(s, _)| s != last);
            for swap in swaps {
                if frames.len() > 1 {
                    let i = swap.index(frames.len() - 1);
                    frames.swap(i, i + 1);
                }
            }
            frames.push((last, true));
            let mut t = StreamTracker::default();
            // Start from frame 0 so the first id is known.
            t.accept(0, 0, 3);
            let mut good = std::collections::BTreeSet::from([0u32]);
            for (seq, ok) in frames {
                if ok {
                    t.accept(seq, u64::from(seq) * 3, 3);
                    good.insert(seq);
                } else {
                    t.claim_rejected(u64::from(seq) * 3, 3);
                }
            }
            let c = t.counters();
            prop_assert_eq!(c.decoded + c.lost + c.rejected, u64::from(last + 1) * 3);
            prop_assert_eq!(c.decoded, good.len() as u64 * 3);
            let rejected_frames = fates.iter().enumerate()
                .filter(|&(i, &f)| f == 4 && i != 0 && i as u32 != last).count() as u64;
            prop_assert_eq!(c.rejected, rejected_frames * 3);
        }
    }
}
