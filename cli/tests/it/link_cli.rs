#![allow(clippy::unwrap_used)]
//! The bridge's command line as an operator runs it, with the shipped model: decoders agree
//! on the golden vectors, and a `listen` killed with SIGKILL mid-stream (frames sealed with a
//! key from `keygen`) leaves an archive that `decode` reads up to the last whole frame, and
//! `stats` reads its status file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latentlink_bridge::archive::{ArchiveReader, ArchiveWriter};
use latentlink_bridge::codes_h5;
use latentlink_bridge::decode::{self, DecoderKind};
use latentlink_bridge::sink::read_chunks;
use latentlink_trainer::export::verify;

fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128")
}

fn bridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latentlink"));
    command.env("RUST_LOG", "warn");
    command
}

/// Waits (up to a minute) until the listener's status file exists and `done` holds for it:
/// the listener rewrites it every second once its link is open, so tests wait on what the
/// listener says rather than on sleeps that a loaded machine can outlast.
fn wait_for_status(status: &Path, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read = std::fs::read_to_string(status).ok();
        // The file is replaced whole, but may be absent or (on a slow disk) not yet parsed.
        let parsed = read.and_then(|text| serde_json::from_str(&text).ok());
        if parsed.as_ref().is_some_and(&done) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the listener's status never got there"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn every_cpu_decoder_reproduces_the_golden_reconstructions() {
    let golden = latentlink_package::Golden::read(&shipped_model()).unwrap();
    for kind in [DecoderKind::Flex, DecoderKind::Tract] {
        let mut decoder = decode::open(
            &latentlink_package::Package::open(&shipped_model()).unwrap(),
            kind,
        )
        .unwrap();
        let ours = decoder.decode(&golden.int8_codes).unwrap();
        let error = verify::relative_error(&golden.reconstructions, &ours);
        assert!(error <= verify::TOLERANCE, "{kind:?}: {error:e}");
    }
}

#[test]
fn a_killed_listener_leaves_a_decodable_archive() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let archive = dir.path().join("run.llca");
    let status = dir.path().join("status.json");
    let key = dir.path().join("deployment.key");
    let keygen = bridge()
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{keygen:?}");
    let mut listener = bridge()
        .args(["listen", "--link", &format!("tcp-listen:{port}"), "--model"])
        .arg(shipped_model())
        .arg("--key-file")
        .arg(&key)
        .arg("--archive")
        .arg(&archive)
        .arg("--codes-h5")
        .arg(dir.path().join("live.h5"))
        .arg("--status")
        .arg(&status)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // A slow front-end: 400 events per second in frames of 4, for about 5 s.
    let mut emulator = bridge()
        .args([
            "emulate", "--sim", "opis", "--events", "2000", "--rate", "400",
        ])
        .args([
            "--codes-per-frame",
            "4",
            "--link",
            &format!("tcp:127.0.0.1:{port}"),
        ])
        .arg("--model")
        .arg(shipped_model())
        .arg("--key-file")
        .arg(&key)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the listener once it has archived a few hundred codes, mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&archive).map_or(0, |m| m.len()) < 300 * 30 || !status.exists() {
        assert!(Instant::now() < deadline, "the listener archived nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    listener.kill().unwrap();
    listener.wait().unwrap();
    emulator.kill().ok();
    emulator.wait().unwrap();

    let (records, _) = ArchiveReader::open(&archive).unwrap().read_all().unwrap();
    assert!(records.len() >= 300, "{}", records.len());
    // Whole frames: events 0, 1, 2, ... with no gap (the link was clean).
    assert!(records.iter().enumerate().all(|(i, r)| r.event == i as u64));
    // The codes HDF5 file the killed listener was growing is valid: a prefix of the archive
    // (it is flushed about once a second, each append crash-atomic).
    let live = codes_h5::read(&dir.path().join("live.h5")).unwrap();
    assert!(live.events.len() <= records.len());
    assert!(live.events.iter().enumerate().all(|(i, &e)| e == i as u64));

    let out = dir.path().join("reco");
    let all = dir.path().join("all.h5");
    let output = bridge()
        .args(["decode", "--archive"])
        .arg(&archive)
        .arg("--model")
        .arg(shipped_model())
        .arg("--out")
        .arg(&out)
        .args(["--decoder", "tract", "--format", "hdf5", "--codes-h5"])
        .arg(&all)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (reconstructions, ids) = read_chunks(&out).unwrap();
    assert_eq!(reconstructions.nrows(), records.len());
    assert_eq!(ids[[records.len() - 1, 1]], records.len() as u64 - 1);
    // decode --codes-h5 writes the archive's codes, all of them, as they are.
    let all = codes_h5::read(&all).unwrap();
    assert_eq!(all.events.len(), records.len());
    for (i, record) in records.iter().enumerate() {
        assert_eq!(
            (all.streams[i], all.events[i], all.codes.row(i).to_vec()),
            (record.stream, record.event, record.code.to_vec())
        );
    }

    // The status file the listener kept while running reads with `stats`.
    let output = bridge()
        .arg("stats")
        .arg("--status")
        .arg(&status)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("running on tcp-listen"),
        "{text}"
    );
    assert!(text.contains("events: decoded"), "{text}");

    // Codes of another model are refused, naming both models.
    let foreign = dir.path().join("foreign.llca");
    ArchiveWriter::open(&foreign, 0x0123_4567_89ab_cdef, 16)
        .unwrap()
        .append(0, 0, &[0; 16])
        .unwrap();
    let output = bridge()
        .args(["decode", "--archive"])
        .arg(&foreign)
        .arg("--model")
        .arg(shipped_model())
        .arg("--out")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("0123456789abcdef") && text.contains("package that made them"),
        "{text}"
    );
}

#[test]
fn ctrl_c_flushes_and_closes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let status = dir.path().join("status.json");
    let out = dir.path().join("reco");
    // Large batches and a long wait: without a clean shutdown nothing would be written.
    let listener = bridge()
        .args(["listen", "--link", &format!("udp:{port}"), "--model"])
        .arg(shipped_model())
        .args(["--batch-size", "100000", "--max-wait-ms", "600000", "--out"])
        .arg(&out)
        .arg("--status")
        .arg(&status)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The status file appears once the socket is bound.
    wait_for_status(&status, |_| true);
    let sent = bridge()
        .args([
            "emulate", "--sim", "opis", "--events", "300", "--rate", "20000",
        ])
        .args(["--link", &format!("udp:{port}"), "--model"])
        .arg(shipped_model())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // Every event accounted for, still waiting in the listener's unfinished batch.
    wait_for_status(&status, |status| {
        status["counters"]["streams"]["0"]["decoded"].as_u64() == Some(300)
    });
    let interrupted = Command::new("kill")
        .args(["-INT", &listener.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = listener.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("stopped") && text.contains("decoded 300"),
        "{text}"
    );
    let (reconstructions, _) = read_chunks(&out).unwrap();
    assert_eq!(reconstructions.nrows(), 300);
    let final_status = std::fs::read_to_string(&status).unwrap();
    assert!(
        final_status.contains("\"running\": false"),
        "{final_status}"
    );
}

#[test]
fn bad_links_are_clear_errors() {
    let output = bridge()
        .args(["listen", "--link", "pigeon:7", "--model"])
        .arg(shipped_model())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("expected serial:"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn keys_are_required_beyond_loopback_and_kept_private() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = |extra: &[&std::ffi::OsStr]| {
        bridge()
            .args([
                "listen",
                "--link",
                &format!("udp:0.0.0.0:{port}"),
                "--model",
            ])
            .arg(shipped_model())
            .args(["--idle-exit", "0.2"])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = listen(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("beyond loopback") && stderr.contains("--key-file"),
        "{stderr}"
    );

    let key = dir.path().join("beamline.key");
    assert!(
        bridge()
            .arg("keygen")
            .arg("--out")
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let again = bridge()
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success(), "a key file is never overwritten");
    assert!(
        listen(&["--key-file".as_ref(), key.as_os_str()])
            .status
            .success()
    );
    assert!(listen(&["--unauthenticated".as_ref()]).status.success());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = listen(&["--key-file".as_ref(), key.as_os_str()]);
        let stderr = String::from_utf8_lossy(&open.stderr);
        assert!(!open.status.success());
        assert!(stderr.contains("chmod 600"), "{stderr}");
    }
}
