//! The board's free-running timer (ARM CMSDK APB timer 0 of mps2-an386), used to time each
//! encode. It counts the 25 MHz peripheral clock down; under QEMU's `-icount shift=N` that
//! clock runs on instruction count, so a tick is exactly `40 / 2^N` instructions.

use crate::mmio::Register;

const BASE: usize = 0x4000_0000;
const CTRL: Register = Register::at(BASE);
const VALUE: Register = Register::at(BASE + 0x4);
const RELOAD: Register = Register::at(BASE + 0x8);
const CTRL_ENABLE: u32 = 1;

/// Timer 0, running from its largest value and wrapping.
#[derive(Debug)]
pub struct Timer(());

impl Timer {
    /// Starts timer 0; call once.
    pub fn take() -> Self {
        RELOAD.write(u32::MAX);
        VALUE.write(u32::MAX);
        CTRL.write(CTRL_ENABLE);
        Self(())
    }

    /// The current count (it counts down).
    pub fn now(&self) -> u32 {
        VALUE.read()
    }

    /// Ticks from `start` (a [`Timer::now`]) to now; exact across one wrap.
    pub fn since(&self, start: u32) -> u32 {
        start.wrapping_sub(self.now())
    }
}
