//! # latentlink rig
//!
//! The test rig around the receiver: everything that *produces* traffic for the bridge or
//! checks a front-end, kept apart from the receive path ([`latentlink_bridge`]) so that the
//! receiver a facility deploys carries none of it.
//!
//! | module | what |
//! |---|---|
//! | [`emulate`] | a front-end on the host: the runtime's int8 encoder, frames, injected faults |
//! | [`feed`] | raw events to a real front-end (a board or QEMU), its codes checked against the host |
//! | [`qemu`] | the Cortex-M4 firmware on QEMU's mps2-an386: run, cost per event, footprint |
//! | [`demo`] | the whole path in one command, over loopback TCP and a pseudo-terminal |

pub mod demo;
pub mod emulate;
pub mod feed;
pub mod qemu;
