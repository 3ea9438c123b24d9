//! Build script: takes the model package in, checks the memory budget, and lays out memory.
//!
//! - Reads the package in `LATENTLINK_MODEL` (default: the shipped `models/opis-b128`): its
//!   manifest with the package crate (a real TOML parser, model id checked against the
//!   files) and `encoder.blob` with the runtime's own blob parser, and writes
//!   `$OUT_DIR/model.rs`: the blob (`include_bytes!`) and its sizes as constants, so every
//!   buffer is sized at compile time.
//! - Fails the build, naming the numbers and the fix, when the weights do not fit the flash
//!   budget or the encoder's scratch plus the firmware's buffers and stack do not fit the
//!   RAM budget. The budgets default to a common Cortex-M4 part (STM32F407: 1 MiB flash,
//!   128 KiB SRAM) and are set with `LATENTLINK_FLASH_BUDGET` / `LATENTLINK_RAM_BUDGET`
//!   (bytes, or with a `K`/`M` suffix).
//! - Reads the deployment's frame key from the file in `LATENTLINK_KEY_FILE` (32 hex digits,
//!   as `latentlink keygen` writes them) with the runtime's own key parser, and writes it as
//!   `FRAME_KEY`, so every frame the board sends is sealed. Without the variable the frames
//!   go unauthenticated and the build says so (a bridge beyond loopback then refuses them
//!   unless run with `--unauthenticated`).
//! - Writes `memory.x` with exactly the budgets as the FLASH and RAM regions, so the linker
//!   enforces them for the whole image (code included) as well, and asserts that a stack
//!   reserve is left above the statics.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, process};

use latentlink_runtime::Model;
use latentlink_runtime::wire::{FrameKey, event::event_stream_len, stream_len};

/// Default budgets: STM32F407 (1 MiB flash, 128 KiB SRAM without the CCM).
const DEFAULT_FLASH: usize = 1024 * 1024;
const DEFAULT_RAM: usize = 128 * 1024;
/// Flash kept for the firmware's own code and constants (the release image's code is about
/// 20 KiB; the rest is headroom for a board support package).
const CODE_RESERVE: usize = 48 * 1024;
/// RAM kept for the stack (the measured peak is reported by every QEMU run).
const STACK_RESERVE: usize = 16 * 1024;
/// Bytes of the interrupt-fed receive queue.
const RX_QUEUE: usize = 1024;
/// Codes per frame sent back (16: 88.6 % payload efficiency on a byte stream).
const CODES_PER_FRAME: usize = 16;
/// The QEMU board's memories (mps2-an386: 4 MiB each); a budget cannot exceed them.
const BOARD_FLASH: usize = 4 * 1024 * 1024;
const BOARD_RAM: usize = 4 * 1024 * 1024;

fn main() {
    if let Err(message) = run() {
        eprintln!("\nerror: latentlink firmware: {message}\n");
        process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    for var in [
        "LATENTLINK_MODEL",
        "LATENTLINK_FLASH_BUDGET",
        "LATENTLINK_RAM_BUDGET",
        "LATENTLINK_KEY_FILE",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let package = env::var("LATENTLINK_MODEL").map_or_else(
        |_| manifest_dir.join("../../models/opis-b128"),
        PathBuf::from,
    );
    let blob_path = package.join("encoder.blob");
    let manifest_path = package.join("manifest.toml");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", blob_path.display());
    println!("cargo::rerun-if-changed={}", manifest_path.display());
    println!(
        "cargo::rerun-if-changed={}",
        package.join("model.bpk").display()
    );

    let blob = fs::read(&blob_path).map_err(|e| {
        format!(
            "cannot read the model blob {}: {e}; set LATENTLINK_MODEL to a package folder",
            blob_path.display()
        )
    })?;
    let model = Model::from_bytes(&blob)
        .map_err(|e| format!("{} is not a valid blob: {e}", blob_path.display()))?;
    // The manifest through the package crate's TOML parser, with the model id checked
    // against the blob and record it covers.
    let model_id = latentlink_package::Package::open(&package)
        .map_err(|e| format!("cannot open the model package: {e}"))?
        .model_id()
        .get();
    let frame_key = frame_key()?;
    let input_len = model.input_len();
    let code_bytes = (model.code_bits() as usize).div_ceil(8);

    let flash_budget = budget("LATENTLINK_FLASH_BUDGET", DEFAULT_FLASH, BOARD_FLASH)?;
    let ram_budget = budget("LATENTLINK_RAM_BUDGET", DEFAULT_RAM, BOARD_RAM)?;
    let buffers = Buffers::new(input_len, code_bytes);
    let flash_need = blob.len() + CODE_RESERVE;
    let ram_need = model.scratch_bytes() + buffers.total() + STACK_RESERVE;
    if flash_need > flash_budget || ram_need > ram_budget {
        return Err(format!(
            "the model does not fit the memory budget\n\
             \n  flash: weights {} B + code reserve {CODE_RESERVE} B = {flash_need} B, budget {flash_budget} B{}\
             \n  RAM:   scratch {} B + buffers {} B (event {} B, receive {} B, queue {RX_QUEUE} B, frame {} B) + stack {STACK_RESERVE} B = {ram_need} B, budget {ram_budget} B{}\
             \n\n  model {} ({input_len} inputs, {} bits)\
             \n  Train a smaller model (`latentlink train --hidden ...`) or, for a larger part,\
             \n  raise LATENTLINK_FLASH_BUDGET / LATENTLINK_RAM_BUDGET (bytes, or K/M suffix).",
            blob.len(),
            over(flash_need, flash_budget),
            model.scratch_bytes(),
            buffers.total(),
            buffers.samples,
            buffers.accumulator,
            buffers.frame,
            over(ram_need, ram_budget),
            package.display(),
            model.code_bits(),
        ));
    }

    let mut rust = String::new();
    let _ = writeln!(
        rust,
        "// Generated by build.rs from {}.\n\
         /// The int8 encoder blob, placed in flash.\n\
         pub static BLOB: &[u8] = include_bytes!({:?});\n\
         /// Model id of the package (frames carry it).\n\
         pub const MODEL_ID: u64 = {model_id:#018x};\n\
         /// Samples per event.\n\
         pub const INPUT_LEN: usize = {input_len};\n\
         /// Bytes per code.\n\
         pub const CODE_BYTES: usize = {code_bytes};\n\
         /// Encoder scratch bytes.\n\
         pub const SCRATCH_BYTES: usize = {};\n\
         /// Multiply-accumulates per event.\n\
         pub const MACS: u64 = {};\n\
         /// Parameter bytes (weights and per-channel records).\n\
         pub const PARAMETER_BYTES: usize = {};\n\
         /// Bytes of the receive buffer (largest COBS-encoded event packet).\n\
         pub const RECEIVE_BYTES: usize = {};\n\
         /// Bytes of the interrupt-fed receive queue.\n\
         pub const RX_QUEUE: usize = {RX_QUEUE};\n\
         /// Codes per frame sent back.\n\
         pub const CODES_PER_FRAME: usize = {CODES_PER_FRAME};\n\
         /// Bytes of one outgoing frame on the wire, at most.\n\
         pub const FRAME_BYTES: usize = {};\n\
         /// The deployment's frame key (None: frames go unauthenticated).\n\
         pub const FRAME_KEY: Option<[u8; 16]> = {frame_key:?};\n\
         /// The budgets this image was checked against.\n\
         pub const FLASH_BUDGET: usize = {flash_budget};\n\
         /// See [`FLASH_BUDGET`].\n\
         pub const RAM_BUDGET: usize = {ram_budget};",
        package.display(),
        blob_path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", blob_path.display()))?,
        model.scratch_bytes(),
        model.macs(),
        model.parameter_bytes(),
        buffers.accumulator,
        buffers.frame,
    );
    write(&out_dir.join("model.rs"), &rust)?;
    write(
        &out_dir.join("memory.x"),
        &format!(
            "/* Generated by build.rs: the memory budget is the memory the linker may use. */\n\
             MEMORY\n{{\n  FLASH : ORIGIN = 0x00000000, LENGTH = {flash_budget}\n  \
             RAM : ORIGIN = 0x20000000, LENGTH = {ram_budget}\n}}\n\
             ASSERT(ORIGIN(RAM) + LENGTH(RAM) - __sheap >= {STACK_RESERVE}, \"latentlink firmware: \
             the statics leave less than the {STACK_RESERVE}-byte stack reserve in the RAM budget \
             (LATENTLINK_RAM_BUDGET)\");\n"
        ),
    )?;
    println!("cargo::rustc-link-search={}", out_dir.display());
    println!("cargo::rustc-link-arg-bins=-Tlink.x");
    println!(
        "cargo::warning=memory budget: flash {flash_need} of {flash_budget} B planned (weights {} B), \
         RAM {ram_need} of {ram_budget} B planned (scratch {} B)",
        blob.len(),
        model.scratch_bytes()
    );
    Ok(())
}

/// RAM the firmware's buffers take besides the encoder's scratch.
struct Buffers {
    samples: usize,
    accumulator: usize,
    frame: usize,
}

impl Buffers {
    fn new(input_len: usize, code_bytes: usize) -> Self {
        Self {
            samples: input_len * 4,
            accumulator: event_stream_len(input_len),
            frame: stream_len(CODES_PER_FRAME, code_bytes, true) + CODES_PER_FRAME * code_bytes,
        }
    }

    fn total(&self) -> usize {
        self.samples + self.accumulator + RX_QUEUE + self.frame
    }
}

/// The key in the file `LATENTLINK_KEY_FILE` names, if it is set.
fn frame_key() -> Result<Option<[u8; 16]>, String> {
    let Some(path) = env::var_os("LATENTLINK_KEY_FILE") else {
        println!(
            "cargo::warning=LATENTLINK_KEY_FILE is not set: this image sends unauthenticated frames"
        );
        return Ok(None);
    };
    let path = PathBuf::from(path);
    println!("cargo::rerun-if-changed={}", path.display());
    let text =
        fs::read(&path).map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
    let key = FrameKey::from_hex(&text).map_err(|e| {
        format!(
            "{} is not a key file: {e}; make one with `latentlink keygen --out FILE`",
            path.display()
        )
    })?;
    Ok(Some(key.to_bytes()))
}

fn over(need: usize, budget: usize) -> String {
    if need > budget {
        format!("  <-- over by {} B", need - budget)
    } else {
        String::new()
    }
}

fn budget(var: &str, default: usize, board: usize) -> Result<usize, String> {
    let Ok(text) = env::var(var) else {
        return Ok(default);
    };
    let text = text.trim();
    let (digits, scale) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 1024),
        Some('M' | 'm') => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let bytes = digits
        .parse::<usize>()
        .map(|n| n * scale)
        .map_err(|_| format!("{var}={text} is not a size (bytes, or with a K or M suffix)"))?;
    if bytes > board {
        return Err(format!(
            "{var}={text} exceeds the board's {board} B (QEMU mps2-an386)"
        ));
    }
    Ok(bytes)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
