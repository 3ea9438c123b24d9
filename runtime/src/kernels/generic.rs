//! The portable kernels: plain loops over the stored bytes. They are the reference: every
//! faster path in [`super`] must give the same `i32` sums bit for bit, and their property
//! tests compare against these functions.

/// Reinterprets stored weight bytes as `i8` (two's complement, the same bits).
#[inline]
pub(crate) fn weight(byte: u8) -> i32 {
    i32::from(byte as i8)
}

/// [`dot2`] by the portable loop.
#[inline]
pub(crate) fn dot2_reference(rows: &[u8], input: &[i8], zero: i32) -> [i32; 2] {
    let (first, second) = rows.split_at_checked(input.len()).unwrap_or((&[], &[]));
    [
        dot_reference(first, input, zero),
        dot_reference(second, input, zero),
    ]
}

/// The portable dot product: the reference every faster path must match bit for bit.
#[inline]
pub(crate) fn dot_reference(row: &[u8], input: &[i8], zero: i32) -> i32 {
    row.iter()
        .zip(input)
        .map(|(&w, &x)| weight(w) * (i32::from(x) - zero))
        .sum()
}
