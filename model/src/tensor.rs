//! `ndarray` ⇄ burn tensors. A tensor that cannot be read back as `f32` is an error, never a
//! matrix of zeros.

use burn::prelude::*;
use ndarray::Array2;

/// Why a tensor could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The tensor's data is not readable as `f32`.
    #[error("cannot read a tensor back as f32: {source}")]
    Data {
        /// burn's error.
        #[source]
        source: burn::tensor::DataError,
    },
    /// The data has another number of values than the tensor's shape says.
    #[error("a [{rows}, {cols}] tensor returned {values} values")]
    Shape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Values returned.
        values: usize,
    },
}

/// Converts rows of `data` to a tensor on `device`.
///
/// # Shapes
/// `[N, D]` → `[N, D]`.
pub fn to_tensor(data: &Array2<f32>, device: &Device) -> Tensor<2> {
    let (rows, cols) = data.dim();
    let values: Vec<f32> = data.iter().copied().collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

/// Converts a tensor back to an array.
///
/// # Shapes
/// `[N, D]` → `[N, D]`.
///
/// # Errors
/// [`TensorError`] if the backend returns data that is not `N·D` `f32` values.
pub fn to_array(tensor: Tensor<2>) -> Result<Array2<f32>, TensorError> {
    let [rows, cols] = tensor.dims();
    let values = tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|source| TensorError::Data { source })?;
    let count = values.len();
    Array2::from_shape_vec((rows, cols), values).map_err(|_| TensorError::Shape {
        rows,
        cols,
        values: count,
    })
}
