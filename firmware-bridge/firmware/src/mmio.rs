//! Memory-mapped registers of the board's peripherals: the only `unsafe` code of the firmware.

#![allow(unsafe_code)]

/// One 32-bit peripheral register at a fixed address.
#[derive(Debug, Clone, Copy)]
pub struct Register(usize);

impl Register {
    /// The register at `address`: must be a 32-bit register of a peripheral of this board.
    pub const fn at(address: usize) -> Self {
        Self(address)
    }

    /// Volatile read.
    pub fn read(self) -> u32 {
        // SAFETY: `at` is only called with the documented, aligned addresses of this board's
        // UART and timer registers, which are always mapped and readable.
        unsafe { core::ptr::read_volatile(self.0 as *const u32) }
    }

    /// Volatile write.
    pub fn write(self, value: u32) {
        // SAFETY: as for `read`; these registers have no memory-safety side effects.
        unsafe { core::ptr::write_volatile(self.0 as *mut u32, value) }
    }
}
