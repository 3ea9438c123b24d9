//! The kind byte of a layer record.

use core::fmt;

#[allow(unused_imports)] // named in the docs
use crate::layers::{
    BinaryHead, Conv1d, Dense, Flatten, InputQuant, LeakyRelu, PointSet, Pool1d, Relu,
};

/// The kind byte of a layer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum LayerKind {
    /// [`InputQuant`].
    Input = 1,
    /// [`Dense`].
    Dense = 2,
    /// [`Conv1d`].
    Conv1d = 3,
    /// [`Pool1d`] taking the maximum.
    MaxPool1d = 4,
    /// [`Pool1d`] taking the mean.
    AvgPool1d = 5,
    /// [`Relu`].
    Relu = 6,
    /// [`LeakyRelu`].
    LeakyRelu = 7,
    /// [`Flatten`].
    Flatten = 8,
    /// [`PointSet`].
    PointSet = 9,
    /// [`BinaryHead`].
    BinaryHead = 10,
}

impl LayerKind {
    /// The kind for a record's kind byte.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Input,
            2 => Self::Dense,
            3 => Self::Conv1d,
            4 => Self::MaxPool1d,
            5 => Self::AvgPool1d,
            6 => Self::Relu,
            7 => Self::LeakyRelu,
            8 => Self::Flatten,
            9 => Self::PointSet,
            10 => Self::BinaryHead,
            _ => return None,
        })
    }

    /// A short lowercase name, as printed in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Dense => "dense",
            Self::Conv1d => "conv1d",
            Self::MaxPool1d => "maxpool1d",
            Self::AvgPool1d => "avgpool1d",
            Self::Relu => "relu",
            Self::LeakyRelu => "leaky_relu",
            Self::Flatten => "flatten",
            Self::PointSet => "point_set",
            Self::BinaryHead => "binary_head",
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
