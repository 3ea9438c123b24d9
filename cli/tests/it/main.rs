//! The `latentlink` command as a user runs it, in one binary.

mod latent_cli;
mod link_cli;
mod model_cli;
