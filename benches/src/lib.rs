//! Shared set-up of the latentlink benchmarks (`benches/`): the shipped model, OPIS events,
//! tract plans, and the summary of a run (`summary` binary).
//!
//! Every speed figure is a ratio against a baseline measured in the same run; see
//! `BENCHMARKS.md` for the commands and results.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use latentlink_trainer::sim::Simulator;
use ndarray::Array2;
use tract_onnx::prelude::*;

/// The shipped model package.
pub fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/opis-b128")
}

/// `count` simulated OPIS events, one per row (4 × 256 samples).
pub fn opis_events(count: usize, seed: u64) -> Array2<f32> {
    let events = Simulator::Opis.simulate(count, seed).events;
    let width = events.len() / count.max(1);
    events
        .into_shape_with_order((count, width))
        .unwrap_or_else(|_| Array2::zeros((count, width)))
}

/// An ONNX file in tract, optimised for one batch size: the baseline engine.
#[derive(Debug, Clone)]
pub struct TractPlan {
    plan: Arc<TypedRunnableModel>,
    shape: [usize; 2],
}

impl TractPlan {
    /// Loads `path` with input `[rows, cols]` and optimises it.
    ///
    /// # Errors
    /// tract's error if the file cannot be loaded or optimised.
    pub fn new(path: &Path, rows: usize, cols: usize) -> Result<Self> {
        let plan = onnx()
            .model_for_path(path)?
            .with_input_fact(0, f32::fact([rows, cols]).into())?
            .into_optimized()?
            .into_runnable()?;
        Ok(Self {
            plan,
            shape: [rows, cols],
        })
    }

    /// Runs the plan on `input` (row-major `[rows, cols]`), returning its first output.
    ///
    /// # Errors
    /// tract's error.
    pub fn run(&self, input: &[f32]) -> Result<TValue> {
        let tensor = Tensor::from_shape(&self.shape, input)?;
        let mut outputs = self.plan.run(tvec!(tensor.into()))?;
        outputs.pop().context("the model has no output")
    }
}
