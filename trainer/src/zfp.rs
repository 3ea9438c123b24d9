//! ZFP in fixed-rate mode (Lindstrom 2014), the classical lossy codec for floating-point
//! arrays, as a baseline: each event is one field (`channels × length`, 2-D when it has more
//! than one channel), compressed at a given number of bits per sample and decompressed.
//!
//! ZFP codes blocks of 4 (1-D) or 4 × 4 (2-D) samples and spends at least 9 bits on a
//! block, so an event has a smallest size below which ZFP cannot go, whatever rate is asked:
//! for a 4 × 256 spectrum that is 64 blocks, 576 bits, more than a 128-bit code.

use ndarray::Array2;
use zfp_rs::{
    ZfpBitStream, ZfpConfig, ZfpDimensionality, ZfpDims, ZfpField, ZfpFieldMut, ZfpScalarType,
    ZfpStreamAlignment,
};

use crate::data::EventShape;

/// Why ZFP failed on an event.
#[derive(Debug, thiserror::Error)]
#[error("ZFP at {rate} bits per sample: {reason}")]
pub struct ZfpError {
    /// The rate asked for.
    pub rate: f64,
    /// ZFP's own error, as text (its error types differ by step).
    pub reason: String,
}

/// ZFP at its smallest size, as a report states it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ZfpSmallest {
    /// Bits per event at ZFP's smallest rate.
    pub bits: usize,
    /// nMSE of its reconstructions, detector units.
    pub nmse: f64,
}

/// ZFP at the smallest size it can write events of `shape` in.
///
/// # Errors
/// [`ZfpError`] if ZFP refuses an event.
pub fn smallest(events: &Array2<f32>, shape: EventShape) -> Result<ZfpSmallest, ZfpError> {
    // Any rate under 9 bits a block is raised to it.
    let result = round_trip(events, shape, 0.1)?;
    Ok(ZfpSmallest {
        bits: result.bits,
        nmse: crate::train::nmse(events, &result.reconstructions),
    })
}

/// Events compressed and decompressed by ZFP at one rate.
#[derive(Debug, Clone)]
pub struct ZfpResult {
    /// Bits per event (ZFP rounds the rate to whole bits per block, at least 9).
    pub bits: usize,
    /// The reconstructions, `[N, D]`.
    pub reconstructions: Array2<f32>,
}

/// Compresses each event of `events` at `rate` bits per sample and decompresses it.
///
/// # Errors
/// [`ZfpError`] if ZFP refuses the rate or an event.
pub fn round_trip(
    events: &Array2<f32>,
    shape: EventShape,
    rate: f64,
) -> Result<ZfpResult, ZfpError> {
    let blocks_along = |n: usize| n.div_ceil(4);
    if shape.channels > 1 {
        // Row-major events: the length runs fastest, so it is ZFP's x.
        round_trip_as(
            events,
            ZfpDimensionality::D2,
            [shape.length, shape.channels],
            blocks_along(shape.length) * blocks_along(shape.channels),
            rate,
        )
    } else {
        round_trip_as(
            events,
            ZfpDimensionality::D1,
            [shape.length],
            blocks_along(shape.length),
            rate,
        )
    }
}

fn round_trip_as<D: ZfpDims + Copy>(
    events: &Array2<f32>,
    dimensionality: ZfpDimensionality,
    dims: D,
    blocks: usize,
    rate: f64,
) -> Result<ZfpResult, ZfpError> {
    let fail = |reason: String| ZfpError { rate, reason };
    let config = ZfpConfig::fixed_rate(
        rate,
        ZfpScalarType::F32,
        dimensionality,
        ZfpStreamAlignment::Unaligned,
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut reconstructions = Array2::zeros(events.dim());
    for (event, mut out) in events.rows().into_iter().zip(reconstructions.rows_mut()) {
        let samples = event.to_vec();
        let field = ZfpField::new(&samples, dims).map_err(|e| fail(e.to_string()))?;
        let capacity = config
            .maximum_size(ZfpScalarType::F32, field.dims())
            .ok_or_else(|| fail("no bound on the compressed size".into()))?;
        let mut stream = ZfpBitStream::new(capacity).map_err(|e| fail(e.to_string()))?;
        stream
            .compress(&config, &field)
            .map_err(|e| fail(e.to_string()))?;
        let mut decoded = vec![0f32; samples.len()];
        let mut target = ZfpFieldMut::new(&mut decoded, dims).map_err(|e| fail(e.to_string()))?;
        stream.rewind();
        stream
            .decompress(&config, &mut target)
            .map_err(|e| fail(e.to_string()))?;
        out.iter_mut().zip(&decoded).for_each(|(o, d)| *o = *d);
    }
    Ok(ZfpResult {
        // Fixed rate: every block takes the same bits; a stream of many events needs no
        // per-event padding to whole words.
        bits: blocks * config.max_bits() as usize,
        reconstructions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::nmse;

    #[test]
    fn more_bits_per_sample_cost_more_and_err_less() {
        let shape = EventShape {
            channels: 4,
            length: 64,
        };
        let events = Array2::from_shape_fn((20, 256), |(n, i)| {
            ((i % 64) as f32 * 0.1 + n as f32).sin() * 50.0 + (i / 64) as f32
        });
        let coarse = round_trip(&events, shape, 2.0).unwrap();
        let fine = round_trip(&events, shape, 8.0).unwrap();
        assert_eq!(coarse.bits, 2 * 256);
        assert_eq!(fine.bits, 8 * 256);
        let (coarse, fine) = (
            nmse(&events, &coarse.reconstructions),
            nmse(&events, &fine.reconstructions),
        );
        assert!(fine < coarse && fine < 1e-3, "{coarse} {fine}");
        // A 1-D event of 64 samples is 16 blocks of at least 9 bits however low the rate.
        let flat = EventShape {
            channels: 1,
            length: 64,
        };
        let smallest = round_trip(&events.slice(ndarray::s![.., ..64]).to_owned(), flat, 0.1);
        assert_eq!(smallest.unwrap().bits, 16 * 9);
    }
}
