//! Export: ONNX files of the float model, checked in tract.

pub mod onnx;
pub mod verify;
