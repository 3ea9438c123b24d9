//! Integration tests of the trainer library, in one binary (one link of burn and tract).

mod export;
mod train_tiny;
