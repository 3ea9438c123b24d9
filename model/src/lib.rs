//! # latentlink model
//!
//! The float model both sides of latentlink share: the trainer trains it, the bridge decodes
//! codes with its decoder. It holds only what that needs (burn and the package crate), so the
//! bridge's receive path compiles no training, export or plotting code.
//!
//! | module | what |
//! |---|---|
//! | [`backend`] | the one place that picks the burn device (flex CPU by default; ndarray, wgpu by feature) |
//! | [`vae`] | the VAE: MLP or conv encoder, latent head, MLP or conv decoder; [`VaeConfig`] |
//! | [`latent`] | the binary (logit-normal, Beta prior) and Gaussian heads and their KL terms |
//! | [`tensor`] | `ndarray` ⇄ burn tensors, with errors instead of silent zeros |
//! | [`load`] | a package's `model.bpk` into a [`Vae`] of its manifest's architecture |

pub mod backend;
pub mod latent;
pub mod load;
pub mod tensor;
pub mod vae;

pub use backend::Backend;
/// The burn device type every function here takes (re-exported so callers need not name burn).
pub use burn::tensor::Device;
pub use load::{ModelError, load_vae};
pub use vae::{ArchitectureError, DecoderKind, EncoderKind, Vae, VaeConfig};
