//! Scratch memory layout shared by the encoder and the point-set block.
//!
//! Activations ping-pong between the two ends of one buffer: a layer reads its input from
//! one end and writes its output at the other, so a layer needs `in + out` bytes, and a whole
//! network needs the largest such sum over its layers rather than twice its widest tensor.
//! The bytes between the two ends are free for per-layer temporaries.

/// Which end of the scratch buffer holds the current activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Front,
    Back,
}

impl End {
    pub(crate) const fn other(self) -> Self {
        match self {
            Self::Front => Self::Back,
            Self::Back => Self::Front,
        }
    }
}

/// Splits `buf` into the input (`in_len` elements at `input_end`), the output (`out_len`
/// elements at the other end) and the free middle. `None` if they do not fit.
pub(crate) fn split_ends(
    buf: &mut [i8],
    input_end: End,
    in_len: usize,
    out_len: usize,
) -> Option<(&[i8], &mut [i8], &mut [i8])> {
    let free = buf.len().checked_sub(in_len)?.checked_sub(out_len)?;
    match input_end {
        End::Front => {
            let (input, rest) = buf.split_at_mut_checked(in_len)?;
            let (middle, output) = rest.split_at_mut_checked(free)?;
            Some((input, output, middle))
        }
        End::Back => {
            let (output, rest) = buf.split_at_mut_checked(out_len)?;
            let (middle, input) = rest.split_at_mut_checked(free)?;
            Some((input, output, middle))
        }
    }
}

/// The `len` elements at `end` of `buf`, mutably.
pub(crate) fn at_end(buf: &mut [i8], end: End, len: usize) -> Option<&mut [i8]> {
    let start = match end {
        End::Front => 0,
        End::Back => buf.len().checked_sub(len)?,
    };
    buf.get_mut(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_do_not_overlap() {
        let mut buf = [0i8, 1, 2, 3, 4, 5];
        let (input, output, middle) = split_ends(&mut buf, End::Front, 2, 3).unwrap();
        assert_eq!(
            (input, &*output, &*middle),
            (&[0, 1][..], &[3, 4, 5][..], &[2][..])
        );
        let (input, output, _) = split_ends(&mut buf, End::Back, 2, 3).unwrap();
        assert_eq!((input, &*output), (&[4, 5][..], &[0, 1, 2][..]));
        assert!(split_ends(&mut buf, End::Back, 4, 3).is_none());
        assert_eq!(at_end(&mut buf, End::Back, 2).unwrap(), &[4, 5]);
        assert!(at_end(&mut buf, End::Back, 7).is_none());
    }
}
