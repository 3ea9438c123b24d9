//! Integration tests of the trainer library, in one binary (one link of burn and tract).

mod export;
mod point_clouds;
mod train_tiny;
