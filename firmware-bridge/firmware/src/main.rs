//! latentlink front-end firmware for QEMU's `mps2-an386` (Cortex-M4F, 25 MHz).
//!
//! Boots, sets up UART0 (interrupt-fed receive) and timer 0, and runs the front-end loop
//! ([`frontend::run`]): raw events arrive as event packets on the UART, each is encoded by the
//! runtime's int8 [`Encoder`] over a compile-time-sized scratch, and the codes go back in
//! wire frames. At the end of the stream it prints one `LATENTLINK-REPORT` line through
//! semihosting (the host's log) and exits QEMU with status 0.
//!
//! No allocator is linked: every buffer is a static sized by `build.rs` from the model.
#![no_std]
#![no_main]

mod frontend;
mod mmio;
mod timer;
mod uart;

/// The model, sized at build time (`build.rs` writes it from the package).
mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

use core::panic::PanicInfo;

use cortex_m::peripheral::NVIC;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use latentlink_runtime::wire::Accumulator;
use latentlink_runtime::{BlobError, EncodeError, Encoder, Model, Scratch};

use crate::frontend::{Buffers, Stats};
use crate::model::{
    BLOB, FLASH_BUDGET, INPUT_LEN, MACS, MODEL_ID, PARAMETER_BYTES, RAM_BUDGET, SCRATCH_BYTES,
};

/// The UART RX interrupt, for the NVIC.
#[derive(Debug, Clone, Copy)]
struct UartRx;

// SAFETY: 0 is UART0's RX interrupt line on mps2-an386 (QEMU hw/arm/mps2.c).
#[allow(unsafe_code)]
unsafe impl cortex_m::interrupt::InterruptNumber for UartRx {
    fn number(self) -> u16 {
        uart::RX_IRQ
    }
}

#[entry]
fn main() -> ! {
    let stack = stack::paint();
    let status = match serve() {
        Ok(stats) => {
            report(&stats, stack.peak());
            debug::EXIT_SUCCESS
        }
        Err(message) => {
            hprintln!("latentlink firmware: {}", message);
            debug::EXIT_FAILURE
        }
    };
    debug::exit(status);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Why the firmware stopped serving. Printed over semihosting with the runtime's own
/// messages, so a bad blob says which layer and field.
#[derive(Debug)]
enum Failure {
    /// A static buffer was already taken (a bug: `serve` runs once).
    Taken(&'static str),
    /// The blob linked into flash does not validate.
    Blob(BlobError),
    /// The encoder refused the scratch or the model.
    Encoder(EncodeError),
    /// The UART failed.
    Link,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Taken(what) => write!(f, "{what} already taken"),
            Self::Blob(error) => write!(f, "the model blob is invalid: {error}"),
            Self::Encoder(error) => write!(f, "the encoder cannot start: {error}"),
            Self::Link => f.write_str("the link failed"),
        }
    }
}

fn serve() -> Result<Stats, Failure> {
    let scratch = cortex_m::singleton!(: Scratch<SCRATCH_BYTES> = Scratch::new())
        .ok_or(Failure::Taken("scratch"))?;
    let buffers = cortex_m::singleton!(: Buffers = Buffers {
        accumulator: Accumulator::new(),
        samples: [0.0; INPUT_LEN],
    })
    .ok_or(Failure::Taken("buffers"))?;
    let model = Model::from_bytes(BLOB).map_err(Failure::Blob)?;
    let mut encoder = Encoder::new(model, scratch).map_err(Failure::Encoder)?;
    let timer = timer::Timer::take();
    let mut uart = uart::Uart::take();
    // SAFETY: the handler only touches the queue through a critical section.
    #[allow(unsafe_code)]
    unsafe {
        NVIC::unmask(UartRx);
    }
    frontend::run(&mut uart, &mut encoder, buffers, &timer).map_err(|_| Failure::Link)
}

/// One line the host parses (`key=value` pairs).
fn report(stats: &Stats, stack_peak: usize) {
    hprintln!(
        "LATENTLINK-REPORT events={} rejected={} frames={} frame_ticks={} sealed={} boot={:08x} \
         ticks_total={} ticks_min={} ticks_max={} macs={} model_id={:016x} scratch={} parameters={} \
         blob={} stack_peak={} flash_budget={} ram_budget={}",
        stats.events,
        stats.rejected,
        stats.frames,
        stats.frame_ticks,
        u8::from(crate::model::FRAME_KEY.is_some()),
        stats.boot,
        stats.ticks_total,
        if stats.events > 0 { stats.ticks_min } else { 0 },
        stats.ticks_max,
        MACS,
        MODEL_ID,
        SCRATCH_BYTES,
        PARAMETER_BYTES,
        BLOB.len(),
        stack_peak,
        FLASH_BUDGET,
        RAM_BUDGET,
    );
}

/// All interrupts land here (no device crate); only UART0 RX is enabled.
///
/// cortex-m-rt requires this handler to be declared `unsafe`; it does nothing unsafe.
#[allow(unsafe_code)]
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == uart::RX_IRQ as i16 {
        uart::on_rx_interrupt();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    hprintln!("latentlink firmware panicked: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Stack high-water mark: the free RAM between the statics and the stack is painted at boot
/// and the untouched part measured at the end.
mod stack {
    #![allow(unsafe_code)]

    const PAINT: u32 = 0x5a5a_5a5a;

    unsafe extern "C" {
        /// End of the statics (cortex-m-rt).
        static __sheap: u32;
        /// Top of the stack (cortex-m-rt).
        static _stack_start: u32;
    }

    /// The painted region.
    pub struct Painted {
        bottom: usize,
        top: usize,
    }

    /// Paints from the end of the statics up to just below the current stack pointer.
    pub fn paint() -> Painted {
        let bottom = core::ptr::addr_of!(__sheap) as usize;
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let sp = cortex_m::register::msp::read() as usize;
        let mut at = bottom;
        while at + 4 <= sp.saturating_sub(256) {
            // SAFETY: [bottom, sp - 256) lies between the statics and the live stack: RAM
            // that nothing uses yet.
            unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
            at += 4;
        }
        Painted { bottom, top }
    }

    impl Painted {
        /// The deepest the stack has been, in bytes.
        pub fn peak(&self) -> usize {
            let mut at = self.bottom;
            // SAFETY: reads within the painted region, which stays mapped RAM.
            while at < self.top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
                at += 4;
            }
            self.top - at
        }
    }
}
