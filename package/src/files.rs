//! File names inside a package.

/// Manifest.
pub const MANIFEST: &str = "manifest.toml";
/// int8 runtime blob.
pub const ENCODER_BLOB: &str = "encoder.blob";
/// Float encoder.
pub const ENCODER_ONNX: &str = "encoder.onnx";
/// int8 encoder as ONNX (integer operators, the runtime's arithmetic).
pub const ENCODER_INT8_ONNX: &str = "encoder-int8.onnx";
/// Float decoder.
pub const DECODER_ONNX: &str = "decoder.onnx";
/// burn record of the float model.
pub const MODEL_RECORD: &str = "model.bpk";
/// Evaluation report.
pub const REPORT: &str = "report.json";
/// Human-readable summary of the report.
pub const SUMMARY: &str = "report.md";
/// Example reconstructions (PNG).
pub const RECONSTRUCTIONS_PNG: &str = "reconstructions.png";
/// Distribution of per-event reconstruction error (PNG).
pub const ERRORS_PNG: &str = "errors.png";
/// Training curve (PNG).
pub const TRAINING_PNG: &str = "training.png";
/// Golden vectors folder.
pub const GOLDEN: &str = "golden";
