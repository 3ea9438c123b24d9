//! The board's UART (ARM CMSDK APB UART, UART0 of mps2-an386) behind `embedded-io`, with an
//! interrupt-fed receive queue.
//!
//! Received bytes are moved by the RX interrupt into a fixed-capacity queue, as an ADC or DMA
//! path would fill a buffer; [`Uart::read`] takes them out. When the queue is full the
//! interrupt pauses itself and leaves the byte in the UART, so the sender is held back
//! (QEMU does not deliver the next byte while one is waiting; a real board would assert RTS)
//! and nothing is lost; reading resumes it.
//!
//! A real board replaces this file with its HAL's UART: the front-end loop only needs
//! `embedded_io::{Read, Write}`.

use core::cell::RefCell;
use core::convert::Infallible;

use critical_section::Mutex;
use heapless::Deque;

use crate::mmio::Register;
use crate::model::RX_QUEUE;

/// UART0 of mps2-an386.
const BASE: usize = 0x4000_4000;
const DATA: Register = Register::at(BASE);
const STATE: Register = Register::at(BASE + 0x4);
const CTRL: Register = Register::at(BASE + 0x8);
const INTCLEAR: Register = Register::at(BASE + 0xc);
const BAUDDIV: Register = Register::at(BASE + 0x10);

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
const CTRL_RX_INTERRUPT: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// The UART0 RX interrupt's number on mps2-an386 (TX is 1).
pub const RX_IRQ: u16 = 0;

/// Bytes received and not yet read; filled by [`on_rx_interrupt`].
static RX: Mutex<RefCell<Deque<u8, RX_QUEUE>>> = Mutex::new(RefCell::new(Deque::new()));

/// Moves received bytes into the queue; pauses itself when the queue is full.
pub fn on_rx_interrupt() {
    critical_section::with(|cs| {
        INTCLEAR.write(INT_RX);
        let mut queue = RX.borrow_ref_mut(cs);
        drain_into(&mut queue);
    });
}

/// Moves bytes from the UART into `queue` while both allow; if the queue fills while a byte
/// waits, the RX interrupt is switched off until [`Uart::read`] makes room.
fn drain_into(queue: &mut Deque<u8, RX_QUEUE>) {
    while STATE.read() & STATE_RX_FULL != 0 {
        if queue.is_full() {
            CTRL.write(CTRL.read() & !CTRL_RX_INTERRUPT);
            return;
        }
        let _ = queue.push_back(DATA.read() as u8);
    }
}

/// UART0 as a byte stream.
#[derive(Debug)]
pub struct Uart(());

impl Uart {
    /// Configures UART0 (transmit, receive, RX interrupt) and returns it; call once.
    pub fn take() -> Self {
        // Any divisor ≥ 16 enables the QEMU model; on the board it sets the baud rate
        // (25 MHz / 217 ≈ 115200 baud).
        BAUDDIV.write(217);
        CTRL.write(CTRL_TX_ENABLE | CTRL_RX_ENABLE | CTRL_RX_INTERRUPT);
        Self(())
    }

    /// Re-enables the RX interrupt if it paused itself, and takes any byte held meanwhile.
    fn resume(queue: &mut Deque<u8, RX_QUEUE>) {
        if CTRL.read() & CTRL_RX_INTERRUPT == 0 && !queue.is_full() {
            // Enable first: a byte arriving after the drain below raises the interrupt.
            CTRL.write(CTRL.read() | CTRL_RX_INTERRUPT);
            drain_into(queue);
        }
    }
}

impl embedded_io::ErrorType for Uart {
    type Error = Infallible;
}

impl embedded_io::Read for Uart {
    /// Blocks (sleeping with `wfi`) until at least one byte is queued.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // The critical section masks interrupts from the check to the `wfi`, so a byte
            // arriving in between still wakes the core (a pending interrupt ends `wfi` even
            // while masked) and is taken on the next turn.
            let read = critical_section::with(|cs| {
                let mut queue = RX.borrow_ref_mut(cs);
                let mut n = 0;
                for slot in buf.iter_mut() {
                    let Some(byte) = queue.pop_front() else { break };
                    *slot = byte;
                    n += 1;
                }
                Self::resume(&mut queue);
                if n == 0 {
                    cortex_m::asm::wfi();
                }
                n
            });
            if read > 0 {
                return Ok(read);
            }
        }
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            while STATE.read() & STATE_TX_FULL != 0 {}
            DATA.write(u32::from(byte));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while STATE.read() & STATE_TX_FULL != 0 {}
        Ok(())
    }
}
