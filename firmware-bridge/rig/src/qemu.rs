//! The firmware on an emulated board: QEMU's `mps2-an386` (Cortex-M4F) runs the firmware
//! image, its UART0 is a loopback TCP connection to this process, and [`crate::feed`] sends
//! the events and checks the codes.
//!
//! QEMU runs with `-icount shift=0`: virtual time counts instructions (1 ns each), so the
//! firmware's 25 MHz timer ticks once per 40 instructions and the cost per event it reports
//! is exact and the same on every run and machine. Its report comes through semihosting on
//! QEMU's standard output. The image's flash and RAM use are read from its ELF sections.

use std::io::{self, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ndarray::Array2;
use object::{Object, ObjectSection};
use serde::Serialize;

use crate::feed::{self, FeedError, FeedSummary};
use latentlink_bridge::decode::DecoderKind;
use latentlink_package::Package;
use latentlink_runtime::wire::FrameKey;

/// Instructions per timer tick at `-icount shift=0` (1 ns per instruction, 25 MHz timer).
const INSTRUCTIONS_PER_TICK: u64 = 40;
/// Where RAM starts on the board; sections below it are in flash.
const RAM_START: u64 = 0x2000_0000;

/// Why an emulated run failed.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// QEMU is not installed.
    #[error("cannot start qemu-system-arm ({0}); install it: apt-get install qemu-system-arm")]
    Missing(io::Error),
    /// The firmware image cannot be read.
    #[error("firmware image {path}: {source}")]
    Image {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ImageError,
    },
    /// The run failed.
    #[error("{failure}\nQEMU output:\n{output}")]
    Run {
        /// What went wrong.
        #[source]
        failure: RunFailure,
        /// What QEMU printed (its console and the firmware's semihosting output).
        output: String,
    },
    /// Feeding failed.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// Why a firmware image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file cannot be read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file is not an ELF image.
    #[error(transparent)]
    Elf(#[from] object::Error),
    /// The ELF file has no code.
    #[error("no .text section: not a firmware image")]
    NoCode,
}

/// Why an emulated run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// The UART socket failed.
    #[error("UART socket: {0}")]
    Socket(#[from] io::Error),
    /// QEMU exited before it connected its UART.
    #[error("QEMU exited ({0}) before connecting its UART")]
    ExitedEarly(ExitStatus),
    /// QEMU did not connect its UART in time.
    #[error("QEMU did not connect its UART within {0:?}")]
    NoConnection(Duration),
    /// QEMU exited with a failure.
    #[error("QEMU exited with {0}")]
    Exited(ExitStatus),
    /// QEMU ran past the time limit and was killed.
    #[error("QEMU still running after {0:?}, killed")]
    Killed(Duration),
    /// The firmware printed no `LATENTLINK-REPORT` line.
    #[error("the firmware printed no report")]
    NoReport,
}

impl RunFailure {
    /// The failure with no QEMU output attached yet.
    fn bare(self) -> QemuError {
        QemuError::Run {
            failure: self,
            output: String::new(),
        }
    }
}

/// Flash and RAM of a firmware image, from its ELF sections.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Footprint {
    /// Vector table and code.
    pub code: u64,
    /// Read-only data: the model blob and constants.
    pub rodata: u64,
    /// Initialised statics (their initial values also take flash).
    pub data: u64,
    /// Zeroed and uninitialised statics: scratch, buffers, queues.
    pub bss: u64,
}

impl Footprint {
    /// Reads the sections of the ELF image at `path`.
    ///
    /// # Errors
    /// [`QemuError::Image`] if it is not a readable ELF file.
    pub fn of_image(path: &Path) -> Result<Self, QemuError> {
        let image_error = |source: ImageError| QemuError::Image {
            path: path.to_path_buf(),
            source,
        };
        let bytes = std::fs::read(path).map_err(|e| image_error(e.into()))?;
        let file = object::File::parse(&*bytes).map_err(|e| image_error(e.into()))?;
        let mut footprint = Self::default();
        for section in file.sections() {
            let size = section.size();
            match section.name().unwrap_or_default() {
                ".vector_table" | ".text" => footprint.code += size,
                ".rodata" => footprint.rodata += size,
                ".data" => footprint.data += size,
                ".bss" | ".uninit" if section.address() >= RAM_START => footprint.bss += size,
                _ => {}
            }
        }
        if footprint.code == 0 {
            return Err(image_error(ImageError::NoCode));
        }
        Ok(footprint)
    }

    /// Flash bytes: code, read-only data and the initial values of `.data`.
    pub fn flash(&self) -> u64 {
        self.code + self.rodata + self.data
    }

    /// Static RAM bytes (the stack comes on top).
    pub fn static_ram(&self) -> u64 {
        self.data + self.bss
    }
}

/// The firmware's own report (its `LATENTLINK-REPORT` line), with the derived cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirmwareReport {
    /// Events encoded.
    pub events: u64,
    /// Packets it rejected.
    pub rejected: u64,
    /// Frames it sent.
    pub frames: u64,
    /// Timer ticks spent building frames (header, tag, CRC, COBS), in total.
    pub frame_ticks: u64,
    /// 1 if the image seals its frames with a key, 0 if not.
    pub sealed: u64,
    /// Timer ticks in the encoder: total, least and most per event.
    pub ticks_total: u64,
    /// See `ticks_total`.
    pub ticks_min: u64,
    /// See `ticks_total`.
    pub ticks_max: u64,
    /// Multiply-accumulates per event.
    pub macs: u64,
    /// Encoder scratch bytes.
    pub scratch: u64,
    /// Model blob bytes.
    pub blob: u64,
    /// Deepest stack use seen, bytes.
    pub stack_peak: u64,
    /// The budgets the image was built against.
    pub flash_budget: u64,
    /// See `flash_budget`.
    pub ram_budget: u64,
}

impl FirmwareReport {
    /// Parses the report line out of QEMU's output.
    pub fn parse(output: &str) -> Option<Self> {
        let line = output
            .lines()
            .find_map(|l| l.strip_prefix("LATENTLINK-REPORT "))?;
        let mut report = Self::default();
        for pair in line.split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let Ok(value) = value.parse::<u64>() else {
                continue; // the model id is hex; the host knows it
            };
            let slot = match key {
                "events" => &mut report.events,
                "rejected" => &mut report.rejected,
                "frames" => &mut report.frames,
                "frame_ticks" => &mut report.frame_ticks,
                "sealed" => &mut report.sealed,
                "ticks_total" => &mut report.ticks_total,
                "ticks_min" => &mut report.ticks_min,
                "ticks_max" => &mut report.ticks_max,
                "macs" => &mut report.macs,
                "scratch" => &mut report.scratch,
                "blob" => &mut report.blob,
                "stack_peak" => &mut report.stack_peak,
                "flash_budget" => &mut report.flash_budget,
                "ram_budget" => &mut report.ram_budget,
                _ => continue,
            };
            *slot = value;
        }
        Some(report)
    }

    /// Instructions per encoded event (exact under `-icount shift=0`, to 40 instructions).
    pub fn instructions_per_event(&self) -> f64 {
        (self.ticks_total * INSTRUCTIONS_PER_TICK) as f64 / self.events.max(1) as f64
    }

    /// Instructions per frame sent, building it: header, tag (if sealed), CRC and COBS
    /// (exact under `-icount shift=0`, to 40 instructions).
    pub fn instructions_per_frame(&self) -> f64 {
        (self.frame_ticks * INSTRUCTIONS_PER_TICK) as f64 / self.frames.max(1) as f64
    }

    /// Multiply-accumulates per instruction.
    pub fn macs_per_instruction(&self) -> f64 {
        self.macs as f64 / self.instructions_per_event().max(1.0)
    }
}

/// One emulated run.
#[derive(Debug, Clone, Serialize)]
pub struct QemuRun {
    /// The image's sections.
    pub footprint: Footprint,
    /// What the firmware reported.
    pub report: FirmwareReport,
    /// What came back over its UART.
    pub feed: FeedSummary,
    /// The codes, by event id.
    #[serde(skip)]
    pub codes: feed::ReturnedCodes,
}

/// Boots `firmware` in QEMU, feeds it `events` for `package`'s model, and collects
/// codes, report and footprint. QEMU is killed if it is still running after `timeout`.
///
/// # Errors
/// [`QemuError`] if QEMU is missing or fails, or feeding fails.
pub fn run(
    firmware: &Path,
    package: &Package,
    events: &Array2<f32>,
    key: Option<&FrameKey>,
    decoder: Option<DecoderKind>,
    timeout: Duration,
) -> Result<QemuRun, QemuError> {
    let footprint = Footprint::of_image(firmware)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| RunFailure::Socket(e).bare())?;
    let port = listener
        .local_addr()
        .map_err(|e| RunFailure::Socket(e).bare())?
        .port();
    let mut qemu = Command::new("qemu-system-arm")
        .args([
            "-machine",
            "mps2-an386",
            "-display",
            "none",
            "-monitor",
            "none",
        ])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(["-icount", "shift=0,align=off,sleep=off"])
        .arg("-serial")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg("-kernel")
        .arg(firmware)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(QemuError::Missing)?;
    let (stdout, stderr) = (
        read_to_end(qemu.stdout.take()),
        read_to_end(qemu.stderr.take()),
    );
    let result = accept(&listener, &mut qemu, timeout).and_then(|stream| {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| RunFailure::Socket(e).bare())?;
        let writer = stream
            .try_clone()
            .map_err(|e| RunFailure::Socket(e).bare())?;
        Ok(feed::feed(
            stream, writer, package, events, key, decoder, timeout,
        )?)
    });
    let status = wait(&mut qemu, timeout);
    let mut output = stdout.join().unwrap_or_default();
    output.push_str(&stderr.join().unwrap_or_default());
    let with_output = |failure| QemuError::Run {
        failure,
        output: output.clone(),
    };
    let (codes, feed) = result.map_err(|e| match e {
        QemuError::Run { failure, .. } => with_output(failure),
        other => other,
    })?;
    match status {
        Some(status) if status.success() => {}
        Some(status) => return Err(with_output(RunFailure::Exited(status))),
        None => return Err(with_output(RunFailure::Killed(timeout))),
    }
    let report = FirmwareReport::parse(&output).ok_or_else(|| with_output(RunFailure::NoReport))?;
    Ok(QemuRun {
        footprint,
        report,
        feed,
        codes,
    })
}

/// The run as a Markdown table: cost per event, memory, and what came back.
pub fn table(run: &QemuRun) -> String {
    let (r, f) = (&run.report, &run.footprint);
    let kib = |bytes: u64| format!("{:.1} KiB", bytes as f64 / 1024.0);
    let rows = [
        ("events encoded on the board", r.events.to_string()),
        (
            "instructions per event (QEMU -icount)",
            format!("{:.0}", r.instructions_per_event()),
        ),
        ("multiply-accumulates per event", r.macs.to_string()),
        (
            "MAC per instruction",
            format!("{:.3}", r.macs_per_instruction()),
        ),
        (
            "encode time at 1 instruction per cycle, 168 MHz",
            format!("{:.2} ms", r.instructions_per_event() / 168e3),
        ),
        (
            if r.sealed == 1 {
                "instructions per frame of 16 codes: header, SipHash tag, CRC, COBS"
            } else {
                "instructions per frame of 16 codes: header, CRC, COBS (unsealed)"
            },
            format!("{:.0}", r.instructions_per_frame()),
        ),
        (
            "flash: code + weights and constants",
            format!(
                "{} = {} + {} (budget {})",
                kib(f.flash()),
                kib(f.code),
                kib(f.rodata + f.data),
                kib(r.flash_budget)
            ),
        ),
        (
            "RAM: statics (scratch, buffers, queue) + stack peak",
            format!(
                "{} = {} + {} (scratch {} B; budget {})",
                kib(f.static_ram() + r.stack_peak),
                kib(f.static_ram()),
                kib(r.stack_peak),
                r.scratch,
                kib(r.ram_budget)
            ),
        ),
        (
            "codes bit-exact with the host runtime",
            format!("{} of {}", run.feed.bit_exact, run.feed.events),
        ),
    ];
    let mut text = String::from("| | |\n|---|---|\n");
    for (name, value) in rows {
        text.push_str(&format!("| {name} | {value} |\n"));
    }
    text
}

/// Waits for QEMU to connect to the UART socket, or to die.
fn accept(
    listener: &TcpListener,
    qemu: &mut Child,
    timeout: Duration,
) -> Result<std::net::TcpStream, QemuError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| RunFailure::Socket(e).bare())?;
    let started = Instant::now();
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream
                    .set_nonblocking(false)
                    .map_err(|e| RunFailure::Socket(e).bare())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(RunFailure::Socket(e).bare()),
        }
        if let Ok(Some(status)) = qemu.try_wait() {
            return Err(RunFailure::ExitedEarly(status).bare());
        }
        if started.elapsed() > timeout {
            return Err(RunFailure::NoConnection(timeout).bare());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one of QEMU's pipes to the end on its own thread, so neither pipe fills up.
fn read_to_end(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for QEMU to exit; kills it after `timeout`. `None` if it had to be killed.
fn wait(qemu: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(Some(status)) = qemu.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = qemu.kill();
    let _ = qemu.wait();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_line() {
        let output = "boot\nLATENTLINK-REPORT events=300 rejected=0 frames=19 frame_ticks=190 sealed=1 \
                      boot=1234abcd ticks_total=6000 \
                      ticks_min=19 ticks_max=21 macs=311296 model_id=02047e225cc06d67 scratch=1280 \
                      parameters=336896 blob=337032 stack_peak=2852 flash_budget=1048576 ram_budget=131072\n";
        let report = FirmwareReport::parse(output).unwrap();
        assert_eq!(report.events, 300);
        assert_eq!(report.frames, 19);
        assert_eq!(report.stack_peak, 2852);
        assert_eq!(report.instructions_per_event(), 800.0);
        assert_eq!(report.instructions_per_frame(), 400.0);
        assert_eq!(report.sealed, 1);
        assert!((report.macs_per_instruction() - 311_296.0 / 800.0).abs() < 1e-9);
        assert!(FirmwareReport::parse("no report here").is_none());
    }
}
