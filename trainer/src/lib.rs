//! # latentlink trainer
//!
//! Where a physicist starts: bring recorded detector events (or simulate them), train a model
//! that turns each event into a short binary code, and export it so the runtime can run it
//! next to the sensor and the bridge can decode it on a host.
//!
//! | module | what |
//! |---|---|
//! | [`sim`] | built-in detector simulators with ground-truth factors (OPIS spectra, sprites, calorimeter showers, Polarix phase-space images) |
//! | [`data`] | `.npy` and HDF5 loading with clear errors, seeded splits, normalisation |
//! | [`train`] | the training loop: KL warm-up, validation, early stopping, checkpoints |
//! | [`cloud`] | point clouds: the Chamfer distance as a loss and as a metric |
//! | [`pca`] | the PCA baseline at the same bit budget |
//! | [`ptq`] | post-training int8 quantisation into a runtime blob, and int8-vs-float bit agreement |
//! | [`export`] | ONNX files of the float encoder and decoder, verified in tract against burn |
//! | [`pipeline`] | events → trained, quantised, exported, verified package (what `train` runs) |
//! | [`evaluate`] | the report: reconstruction error from float latents, float codes and int8 codes, PCA at equal bits, bit usage |
//! | [`probe`] | a linear probe from code bits to known factors (R² on held-out events) |
//! | [`disentangle`] | MIG and DCI disentanglement/completeness of code bits against known factors |
//! | [`generate`] | new events: codes sampled from per-bit frequencies or a Chow–Liu tree, decoded |
//! | [`lasing`] | Polarix: the lasing latent, a lasing-off reference created from the lasing image, the power profile against the truth |
//! | [`explore`] | reading codes: what each bit changes (traversals), bit-flip interpolation, code arithmetic |
//! | [`plot`] | PNG plots: example reconstructions, error distribution, training curve, rate–distortion |
//! | [`zfp`] | ZFP fixed-rate round trips of events, a classical baseline |
//! | [`resolution`] | β as a resolution scale: KL, error and D = −dKL/d ln β over a β sweep |
//! | [`sweep`] | rate–distortion sweep: binary VAE against a Gaussian VAE, PCA and zstd |
//!
//! The burn model itself (and its backends) is the `latentlink-model` crate; the package
//! format is `latentlink-package`.
//!
//! Data flow: events → [`data::Normalisation`] → [`latentlink_model::Vae`] trained by [`train::train`]
//! → [`ptq::quantize`] → runtime blob, checked against the float model.

pub mod cloud;
pub mod data;
pub mod disentangle;
pub mod error;
pub mod evaluate;
pub mod explore;
pub mod export;
pub mod generate;
pub mod lasing;
pub mod pca;
pub mod pipeline;
pub mod plot;
pub mod probe;
pub mod ptq;
pub mod resolution;
pub mod sim;
pub mod sweep;
pub mod train;
pub mod zfp;
