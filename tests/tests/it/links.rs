#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One test per real link (pseudo-terminal serial, TCP, UDP): the emulator encodes a few
//! thousand OPIS events with the shipped model's int8 encoder and sends them with injected
//! faults; the bridge's counters must match the faults exactly, and its reconstructions of
//! the golden inputs must match the package's golden reconstructions. Frames are sealed with
//! a deployment key, as beyond loopback they must be; forged frames, restarts and a listener
//! beyond loopback without a key are tested on the real links too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use latentlink_bridge::accounting::RejectReason;
use latentlink_bridge::codes_h5;
use latentlink_bridge::link::{LinkSpec, Sender};
use latentlink_bridge::listen::ListenError;
use latentlink_bridge::listen::{self, ListenConfig, Status};
use latentlink_bridge::sink::read_chunks;
use latentlink_package::{Golden, Package};
use latentlink_rig::emulate::{self, EmulateConfig, FaultLog, Faults};
use latentlink_runtime::wire::FrameKey;
use latentlink_trainer::data::Events;
use latentlink_trainer::export::verify;
use latentlink_trainer::sim::Simulator;
use ndarray::{Axis, concatenate};

const EVENTS: usize = 3000;
const CODES_PER_FRAME: usize = 16;

fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128")
}

/// The deployment key of these tests.
fn key() -> FrameKey {
    FrameKey::from_bytes(&[0x3c; 16])
}

fn faults() -> Faults {
    "drop=0.03,flip=0.03,truncate=0.02,duplicate=0.03,reorder=0.03,garbage=0.03"
        .parse()
        .unwrap()
}

/// The package's golden vectors of the events that go first: as many as frame 0 holds, the
/// one frame the emulator never faults.
fn first_frame_golden() -> Golden {
    let golden = Golden::read(&shipped_model()).unwrap();
    let first = |a: &ndarray::Array2<f32>| a.slice(ndarray::s![..CODES_PER_FRAME, ..]).to_owned();
    Golden {
        inputs: first(&golden.inputs),
        float_codes: first(&golden.float_codes),
        int8_codes: first(&golden.int8_codes),
        reconstructions: first(&golden.reconstructions),
    }
}

/// The first golden inputs first (so frame 0 holds them), then simulated events.
fn codes_to_send() -> (Vec<u8>, usize, u64) {
    let model = shipped_model();
    let opened = Package::open(&model).unwrap();
    let golden = first_frame_golden();
    let simulated = Events::from_array(
        Simulator::Opis.simulate(EVENTS - CODES_PER_FRAME, 5).events,
        "sim",
    )
    .unwrap();
    let events = concatenate(Axis(0), &[golden.inputs.view(), simulated.data.view()]).unwrap();
    let codes = emulate::encode_events(&opened.blob, &events).unwrap();
    (codes, opened.manifest.code.bytes, opened.model_id().get())
}

/// Runs the bridge with `config` while `send` sends, once the bridge has opened its link;
/// returns its status and the faults.
fn listen_while(config: ListenConfig, send: impl FnOnce() -> FaultLog) -> (Status, FaultLog) {
    let (ready, bound) = std::sync::mpsc::sync_channel(1);
    let config = ListenConfig {
        ready: Some(ready),
        ..config
    };
    let stop = Arc::new(AtomicBool::new(false));
    let listener = thread::spawn(move || listen::listen(&config, &stop));
    bound
        .recv_timeout(Duration::from_secs(30))
        .expect("the bridge opens its link");
    let log = send();
    let status = listener.join().unwrap().unwrap();
    (status, log)
}

/// Waits until the bridge's status file accounts for `events` events of stream 9: a front-end
/// that reboots does so after its last frames were taken, and on TCP, the connection of its
/// earlier run must not still be delivering when the new one starts (its frames would then
/// be stale).
fn wait_for_accounted(status: &Path, events: u64) {
    if events == 0 {
        return;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let accounted = std::fs::read_to_string(status)
            .ok()
            .and_then(|text| serde_json::from_str::<Status>(&text).ok())
            .and_then(|status| {
                let s = status.counters.streams.get(&9)?.clone();
                Some(s.decoded + s.lost + s.rejected)
            });
        if accounted >= Some(events) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge accounted for {accounted:?} of {events} events"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the bridge on `listen_spec` while `send` sends; returns its status and the faults.
fn run(
    listen_spec: LinkSpec,
    send: impl FnOnce(&[u8], usize, &EmulateConfig, &Path) -> FaultLog,
) -> (Status, FaultLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = ListenConfig {
        archive: Some(dir.path().join("codes.llca")),
        codes_h5: Some(dir.path().join("codes.h5")),
        out: Some(dir.path().join("reco")),
        status: Some(dir.path().join("status.json")),
        until_events: Some(EVENTS as u64),
        idle_exit: Some(Duration::from_secs(30)),
        batch_size: 64,
        key: Some(key()),
        ..ListenConfig::new(
            listen_spec,
            Arc::new(Package::open(&shipped_model()).unwrap()),
        )
    };
    let (codes, width, model_id) = codes_to_send();
    let emulate_config = EmulateConfig {
        stream: 9,
        codes_per_frame: CODES_PER_FRAME,
        faults: faults(),
        seed: 11,
        key: Some(key()),
        ..EmulateConfig::new(model_id).unwrap()
    };
    let status_file = dir.path().join("status.json");
    let (status, log) = listen_while(config, || {
        send(&codes, width, &emulate_config, &status_file)
    });
    (status, log, dir)
}

/// The bridge's counters against the faults the emulator injected, exactly.
fn check_counts(status: &Status, log: &FaultLog) {
    let c = &status.counters;
    let s = &c.streams[&9];
    assert!(
        log.dropped[0] > 0 && log.flipped[0] > 0 && log.truncated[0] > 0,
        "{log:?}"
    );
    assert!(
        log.duplicated[0] > 0 && log.reordered[0] > 0 && log.garbage > 0,
        "{log:?}"
    );
    assert_eq!(
        s.decoded,
        log.events - log.dropped[1] - log.flipped[1] - log.truncated[1]
    );
    assert_eq!(s.lost, log.dropped[1]);
    assert_eq!(s.rejected, log.flipped[1] + log.truncated[1]);
    assert_eq!(s.duplicated, log.duplicated[1]);
    assert_eq!(s.decoded + s.lost + s.rejected, log.events);
    assert_eq!(
        s.frames_lost,
        log.dropped[0] + log.flipped[0] + log.truncated[0]
    );
    assert_eq!(
        c.rejected_frames
            .get(&RejectReason::Crc)
            .copied()
            .unwrap_or(0),
        log.flipped[0]
    );
    assert_eq!(
        c.rejected_frames
            .get(&RejectReason::Malformed)
            .copied()
            .unwrap_or(0),
        log.truncated[0] + log.garbage
    );
    assert_eq!(status.archived, s.decoded);
    // A decoder that falls behind drops reconstructions, counted; every code is archived.
    assert_eq!(status.reconstructions + c.dropped_by_decoder, s.decoded);
}

fn check(status: &Status, log: &FaultLog, dir: &Path) {
    assert_eq!(log.events, EVENTS as u64);
    check_counts(status, log);
    let (c, s) = (&status.counters, &status.counters.streams[&9]);
    assert_eq!(c.dropped_by_decoder, 0);

    // The golden events came back as the package's golden reconstructions.
    let (reconstructions, ids) = read_chunks(&dir.join("reco")).unwrap();
    assert_eq!(reconstructions.nrows() as u64, s.decoded);
    let golden = first_frame_golden();
    let rows: Vec<usize> = (0..CODES_PER_FRAME as u64)
        .map(|event| {
            ids.rows()
                .into_iter()
                .position(|r| r[0] == 9 && r[1] == event)
                .unwrap()
        })
        .collect();
    let ours = reconstructions.select(Axis(0), &rows);
    assert!(verify::relative_error(&golden.reconstructions, &ours) <= verify::TOLERANCE);
    // The status file holds the same final counters.
    let text = std::fs::read_to_string(dir.join("status.json")).unwrap();
    let from_file: Status = serde_json::from_str(&text).unwrap();
    assert_eq!(&from_file.counters, c);
    assert!(!from_file.running);
    check_codes_h5(&dir.join("codes.h5"), s.decoded);
}

/// The codes HDF5 file holds every decoded event once, the golden events' codes among them,
/// and h5py reads the same (where Python has h5py).
fn check_codes_h5(path: &Path, decoded: u64) {
    let file = codes_h5::read(path).unwrap();
    assert_eq!(file.events.len() as u64, decoded);
    assert_eq!(
        file.model_id,
        Package::open(&shipped_model())
            .unwrap()
            .model_id()
            .to_string()
    );
    let golden = first_frame_golden();
    for event in 0..CODES_PER_FRAME {
        let row = file
            .events
            .iter()
            .zip(&file.streams)
            .position(|(&e, &s)| (s, e) == (9, event as u64))
            .unwrap();
        let bits: Vec<f32> = (0..128)
            .map(|i| f32::from((file.codes[[row, i / 8]] >> (i % 8)) & 1))
            .collect();
        assert_eq!(bits, golden.int8_codes.row(event).to_vec(), "event {event}");
    }
    let Some(python) = h5py_python() else {
        return;
    };
    let script = r#"
import sys, json, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    d = f["codes"]
    assert d.dtype.names == ("event", "stream", "code"), d.dtype
    assert d.maxshape == (None,) and d.chunks is not None
    a = d[...]
    bits = np.unpackbits(a["code"], axis=1, bitorder="little")
    model_id = d.attrs["model_id"]  # a fixed-length string: bytes in h5py
    model_id = model_id.decode() if isinstance(model_id, bytes) else str(model_id)
    print(json.dumps({
        "n": len(a), "model_id": model_id, "code_bits": int(d.attrs["code_bits"]),
        "events": a["event"][:5].tolist(), "streams": a["stream"][:5].tolist(),
        "bits": bits[:2].tolist(), "width": a["code"].shape[1],
    }))
"#;
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["n"], file.events.len());
    assert_eq!(seen["model_id"], file.model_id);
    assert_eq!(
        (seen["code_bits"].clone(), seen["width"].clone()),
        (128.into(), 16.into())
    );
    assert_eq!(seen["events"], serde_json::json!(file.events[..5]));
    assert_eq!(seen["streams"], serde_json::json!(file.streams[..5]));
    for (row, bits) in seen["bits"].as_array().unwrap().iter().enumerate() {
        let ours: Vec<u8> = (0..128)
            .map(|i| (file.codes[[row, i / 8]] >> (i % 8)) & 1)
            .collect();
        assert_eq!(bits, &serde_json::json!(ours));
    }
}

/// The Python that has h5py: `LATENTLINK_PYTHON` (default `python3`), or `None` (the check
/// is left out) where it cannot import h5py, unless `LATENTLINK_REQUIRE_H5PY=1` (CI sets it
/// once its venv has h5py).
fn h5py_python() -> Option<String> {
    let python = std::env::var("LATENTLINK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let available = std::process::Command::new(&python)
        .args(["-c", "import h5py"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        available || std::env::var_os("LATENTLINK_REQUIRE_H5PY").is_none(),
        "LATENTLINK_REQUIRE_H5PY is set but {python} cannot import h5py"
    );
    available.then_some(python)
}

/// A long run with every fault at once, over UDP and then TCP, with the front-end restarting
/// halfway (a new boot nonce, event ids from 0 again): every event sent is decoded, lost or
/// rejected, exactly as the faults say, with the archive written throughout. 48,000 events
/// here; `LATENTLINK_SOAK_EVENTS=1000000 cargo test --release -p latentlink-tests -- soak` is
/// the long soak BENCHMARKS reports. (The codes of 3000 events, sent over and over with new
/// event ids.)
#[test]
fn soak_every_fault_at_once_over_udp_and_tcp() {
    let events: usize = std::env::var("LATENTLINK_SOAK_EVENTS").map_or(48_000, |n| {
        n.parse().expect("LATENTLINK_SOAK_EVENTS is a count")
    });
    let (codes, width, model_id) = codes_to_send();
    let codes: Vec<u8> = codes.iter().copied().cycle().take(events * width).collect();
    let package = Arc::new(Package::open(&shipped_model()).unwrap());
    for (listen_spec, send_spec, rate) in [
        ("udp:{port}", "udp:{port}", 30_000.0),
        ("tcp-listen:{port}", "tcp:127.0.0.1:{port}", 0.0),
    ] {
        let port = free_port().to_string();
        let listen_spec: LinkSpec = listen_spec.replace("{port}", &port).parse().unwrap();
        let send_spec: LinkSpec = send_spec.replace("{port}", &port).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let status_file = dir.path().join("status.json");
        let config = ListenConfig {
            archive: Some(dir.path().join("codes.llca")),
            status: Some(status_file.clone()),
            until_events: Some(events as u64),
            idle_exit: Some(Duration::from_secs(30)),
            key: Some(key()),
            ..ListenConfig::new(listen_spec, Arc::clone(&package))
        };
        let emulate_config = EmulateConfig {
            stream: 9,
            codes_per_frame: CODES_PER_FRAME,
            rate,
            faults: faults(),
            seed: 23,
            key: Some(key()),
            ..EmulateConfig::new(model_id).unwrap()
        };
        let (status, log) = listen_while(config, || {
            // Two runs of the front-end, each on a fresh link with its own nonce.
            let half = events / 2 * width;
            let logs: Vec<FaultLog> = [&codes[..half], &codes[half..]]
                .into_iter()
                .enumerate()
                .map(|(boot, run)| {
                    wait_for_accounted(&status_file, (boot * events / 2) as u64);
                    let config = EmulateConfig {
                        boot: emulate::new_boot_nonce().unwrap(),
                        ..emulate_config.clone()
                    };
                    let mut sender = Sender::open(&send_spec, Duration::from_secs(10)).unwrap();
                    emulate::send_codes(run, width, &config, &mut sender).unwrap()
                })
                .collect();
            logs.iter()
                .fold(FaultLog::default(), |all, log| all.merged(log))
        });
        assert_eq!(log.events, events as u64);
        assert_eq!(status.counters.streams[&9].restarts, 1);
        check_counts(&status, &log);
    }
}

#[test]
fn tcp_link_accounts_for_every_event() {
    let port = free_port();
    let spec: LinkSpec = format!("tcp-listen:{port}").parse().unwrap();
    let (status, log, dir) = run(spec, |codes, width, config, _status| {
        let mut sender = Sender::open(
            &format!("tcp:127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(10),
        )
        .unwrap();
        emulate::send_codes(codes, width, config, &mut sender).unwrap()
    });
    check(&status, &log, dir.path());
}

#[test]
fn tcp_serves_front_ends_at_once_and_an_idle_one_blocks_none() {
    let port = free_port();
    let spec: LinkSpec = format!("tcp-listen:{port}").parse().unwrap();
    let (status, _, _dir) = run(spec, |codes, width, config, _status| {
        // Connected first and silent throughout: a one-client server would serve only it.
        let _idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let half = codes.len() / width / 2 * width;
        let (first, second) = codes.split_at(half);
        let link: LinkSpec = format!("tcp:127.0.0.1:{port}").parse().unwrap();
        thread::scope(|scope| {
            let senders: Vec<_> = [(1u16, first, 0u64), (2, second, (half / width) as u64)]
                .into_iter()
                .map(|(stream, codes, first_event)| {
                    let link = link.clone();
                    let config = EmulateConfig {
                        stream,
                        faults: Faults::default(),
                        ..config.clone()
                    };
                    scope.spawn(move || {
                        let mut sender = Sender::open(&link, Duration::from_secs(10)).unwrap();
                        emulate::send_codes_from(
                            codes,
                            width,
                            &config,
                            (0, first_event),
                            &mut sender,
                        )
                        .unwrap()
                    })
                })
                .collect();
            let logs: Vec<FaultLog> = senders.into_iter().map(|s| s.join().unwrap()).collect();
            FaultLog {
                events: logs.iter().map(|l| l.events).sum(),
                ..FaultLog::default()
            }
        })
    });
    let c = &status.counters;
    assert!(c.rejected_frames.is_empty(), "{c:?}");
    let decoded: Vec<u64> = [1, 2].iter().map(|s| c.streams[s].decoded).collect();
    assert_eq!(decoded.iter().sum::<u64>(), EVENTS as u64, "{c:?}");
    assert_eq!(c.totals().lost, 0, "{c:?}");
}

#[test]
fn tcp_client_reconnects_when_the_front_end_goes_away() {
    // The front-end is the TCP server here; it serves two connections, the frames split
    // between them, and the bridge (the client) must reconnect in between.
    let port = free_port();
    let spec: LinkSpec = format!("tcp:127.0.0.1:{port}").parse().unwrap();
    let (status, log, dir) = run(spec, |codes, width, config, _status| {
        let server: LinkSpec = format!("tcp-listen:{port}").parse().unwrap();
        let half = codes.len() / width / CODES_PER_FRAME / 2 * CODES_PER_FRAME * width;
        let first = EmulateConfig {
            faults: Faults::default(),
            ..config.clone()
        };
        let mut sender = Sender::open(&server, Duration::from_secs(10)).unwrap();
        let log = emulate::send_codes(&codes[..half], width, &first, &mut sender).unwrap();
        drop(sender);
        // The rest, as frames that continue the same stream after the first connection.
        let mut sender = Sender::open(&server, Duration::from_secs(10)).unwrap();
        // Twice the fault rates on the half that carries them, so every kind still occurs.
        let faulty = EmulateConfig {
            faults: "drop=0.06,flip=0.06,truncate=0.04,duplicate=0.06,reorder=0.06,garbage=0.06"
                .parse()
                .unwrap(),
            ..config.clone()
        };
        let rest = emulate::send_codes_from(
            &codes[half..],
            width,
            &faulty,
            (log.frames as u32, (half / width) as u64),
            &mut sender,
        )
        .unwrap();
        FaultLog {
            frames: log.frames + rest.frames,
            events: log.events + rest.events,
            ..rest
        }
    });
    check(&status, &log, dir.path());
}

/// A front-end that restarts sends event ids from 0 again, with a new boot nonce: the second
/// run must be decoded and archived as a new run, not counted as duplicates of the first.
/// `open_sender` opens the front-end's link for each boot.
fn a_restarted_front_end_starts_a_new_run(
    listen: LinkSpec,
    open_sender: impl Fn() -> Sender + Send + 'static,
) {
    let (status, _, dir) = run(listen, move |codes, width, config, status_file| {
        let half = codes.len() / width / 2 * width;
        let config = EmulateConfig {
            faults: Faults::default(),
            // Paced, so a UDP socket buffer never overflows on a busy CI machine.
            rate: 30_000.0,
            ..config.clone()
        };
        let mut events = 0;
        for _boot in 0..2 {
            wait_for_accounted(status_file, events);
            let config = EmulateConfig {
                boot: emulate::new_boot_nonce().unwrap(),
                ..config.clone()
            };
            let mut sender = open_sender();
            events += emulate::send_codes(&codes[..half], width, &config, &mut sender)
                .unwrap()
                .events;
        }
        FaultLog {
            events,
            ..FaultLog::default()
        }
    });
    let s = &status.counters.streams[&9];
    assert_eq!(
        (s.decoded, s.duplicated, s.restarts, s.lost),
        (EVENTS as u64, 0, 1, 0),
        "{s:?}"
    );
    let (records, _) =
        latentlink_bridge::archive::ArchiveReader::open(&dir.path().join("codes.llca"))
            .unwrap()
            .read_all()
            .unwrap();
    assert_eq!(records.len(), EVENTS);
}

fn open(spec: String) -> impl Fn() -> Sender + Send + 'static {
    move || Sender::open(&spec.parse().unwrap(), Duration::from_secs(10)).unwrap()
}

#[test]
fn a_restarted_front_end_starts_a_new_run_over_tcp() {
    let port = free_port();
    a_restarted_front_end_starts_a_new_run(
        format!("tcp-listen:{port}").parse().unwrap(),
        open(format!("tcp:127.0.0.1:{port}")),
    );
}

#[test]
fn a_restarted_front_end_starts_a_new_run_over_udp() {
    let port = free_port();
    a_restarted_front_end_starts_a_new_run(
        format!("udp:{port}").parse().unwrap(),
        open(format!("udp:{port}")),
    );
}

#[test]
fn a_restarted_front_end_starts_a_new_run_over_one_serial_line() {
    // No reconnect shows on a serial line: only the boot nonce tells the new run.
    let (master, slave) = pseudo_terminal();
    let path = serialport::SerialPort::name(&slave).unwrap();
    let writer = std::sync::Mutex::new(Some(master.try_clone_native().unwrap()));
    let second = std::sync::Mutex::new(Some(master.try_clone_native().unwrap()));
    a_restarted_front_end_starts_a_new_run(
        format!("serial:{path}?baud=921600").parse().unwrap(),
        move || {
            let port = writer
                .lock()
                .unwrap()
                .take()
                .or_else(|| second.lock().unwrap().take())
                .unwrap();
            Sender::from_writer(port)
        },
    );
    drop((master, slave));
}

#[test]
fn forged_frames_over_udp_never_displace_the_honest_run() {
    // Issue 15's attack: 16 frames claiming event ids 0..1423, sealed with the wrong key
    // or not at all, then an honest run of 320 events. Before frames were authenticated
    // the honest events counted as duplicates and the forged codes were archived.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let package = Arc::new(Package::open(&shipped_model()).unwrap());
    let config = ListenConfig {
        archive: Some(dir.path().join("codes.llca")),
        until_events: Some(320),
        idle_exit: Some(Duration::from_secs(30)),
        key: Some(key()),
        ..ListenConfig::new(format!("udp:{port}").parse().unwrap(), Arc::clone(&package))
    };
    let (codes, width, model_id) = codes_to_send();
    let (status, _) = listen_while(config, || {
        let mut sender = Sender::open(
            &format!("udp:{port}").parse().unwrap(),
            Duration::from_secs(10),
        )
        .unwrap();
        let forger = EmulateConfig {
            stream: 9,
            codes_per_frame: 89,
            key: Some(FrameKey::from_bytes(&[0x99; 16])),
            ..EmulateConfig::new(model_id).unwrap()
        };
        let forged = vec![0xee; 16 * 89 * width];
        // Half sealed with another key, half unsealed; the CRC is right on every one.
        let half = forged.len() / 2;
        emulate::send_codes(&forged[..half], width, &forger, &mut sender).unwrap();
        let unsealed = EmulateConfig {
            key: None,
            ..forger
        };
        emulate::send_codes_from(&forged[half..], width, &unsealed, (8, 712), &mut sender).unwrap();
        let honest = EmulateConfig {
            stream: 9,
            rate: 30_000.0,
            key: Some(key()),
            ..EmulateConfig::new(model_id).unwrap()
        };
        emulate::send_codes(&codes[..320 * width], width, &honest, &mut sender).unwrap()
    });
    let c = &status.counters;
    let s = &c.streams[&9];
    assert_eq!(
        (s.decoded, s.duplicated, s.lost, s.rejected),
        (320, 0, 0, 0),
        "{c:?}"
    );
    assert_eq!(c.rejected_frames[&RejectReason::Forged], 8, "{c:?}");
    assert_eq!(
        c.rejected_frames[&RejectReason::Unauthenticated],
        8,
        "{c:?}"
    );
    let (records, _) =
        latentlink_bridge::archive::ArchiveReader::open(&dir.path().join("codes.llca"))
            .unwrap()
            .read_all()
            .unwrap();
    assert_eq!(records.len(), 320);
    assert!(
        records.iter().all(|r| r.code != [0xee; 16]),
        "no forged code is archived"
    );
}

#[test]
fn a_listener_beyond_loopback_needs_a_key_or_an_explicit_opt_out() {
    let package = Arc::new(Package::open(&shipped_model()).unwrap());
    let spec: LinkSpec = format!("udp:0.0.0.0:{}", free_port()).parse().unwrap();
    let config = ListenConfig {
        idle_exit: Some(Duration::from_millis(100)),
        ..ListenConfig::new(spec, package)
    };
    let stop = Arc::new(AtomicBool::new(false));
    let error = listen::listen(&config, &stop).unwrap_err();
    assert!(matches!(error, ListenError::KeyRequired { .. }), "{error}");
    assert!(error.to_string().contains("--key-file"), "{error}");
    for config in [
        ListenConfig {
            key: Some(key()),
            ..config.clone()
        },
        ListenConfig {
            unauthenticated: true,
            ..config
        },
    ] {
        listen::listen(&config, &stop).unwrap();
    }
}

#[test]
fn udp_link_accounts_for_every_event() {
    let port = free_port();
    let spec: LinkSpec = format!("udp:{port}").parse().unwrap();
    let (status, log, dir) = run(spec, |codes, width, config, _status| {
        let mut sender = Sender::open(
            &format!("udp:{port}").parse().unwrap(),
            Duration::from_secs(10),
        )
        .unwrap();
        // Paced, so the kernel's socket buffer never overflows on a busy CI machine.
        let paced = EmulateConfig {
            rate: 30_000.0,
            ..config.clone()
        };
        emulate::send_codes(codes, width, &paced, &mut sender).unwrap()
    });
    check(&status, &log, dir.path());
}

#[test]
fn serial_link_over_a_pseudo_terminal_accounts_for_every_event() {
    let (master, slave) = pseudo_terminal();
    let path = serialport::SerialPort::name(&slave).unwrap();
    let spec: LinkSpec = format!("serial:{path}?baud=921600").parse().unwrap();
    // The emulator writes the master side; the bridge opens the slave by its path, as it
    // would open /dev/ttyUSB0. Closing the master would hang up the slave and discard what
    // the bridge has not read yet, so both ends stay open until the bridge is done.
    let writer = master.try_clone_native().unwrap();
    let (status, log, dir) = run(spec, move |codes, width, config, _status| {
        let mut sender = Sender::from_writer(writer);
        emulate::send_codes(codes, width, config, &mut sender).unwrap()
    });
    drop((master, slave));
    check(&status, &log, dir.path());
}

/// A pseudo-terminal pair whose master side, where the emulator writes, waits as long as a
/// UART would for the line to drain: the default 100 ms write timeout fails a test whenever
/// a loaded machine keeps the bridge from reading for that long.
fn pseudo_terminal() -> (serialport::TTYPort, serialport::TTYPort) {
    let (mut master, slave) = serialport::TTYPort::pair().unwrap();
    serialport::SerialPort::set_timeout(&mut master, Duration::from_secs(60)).unwrap();
    (master, slave)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
