//! Export: ONNX files of the float model and of the int8 encoder, checked in tract.

pub mod int8_onnx;
pub mod onnx;
pub mod verify;
