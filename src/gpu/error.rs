use crate::quant::GgmlType;

/// Errors of the GPU layer and of the ops built on it.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no WebGPU adapter found{0}")]
    NoAdapter(String),
    #[error("the adapter refused the device: {0}")]
    RequestDevice(String),
    #[error("the GPU device was lost: {0}; create the engine again to continue")]
    DeviceLost(String),
    #[error("GPU validation error in {what}: {message}")]
    Validation { what: String, message: String },
    #[error("reading a buffer back from the GPU failed: {0}")]
    Readback(String),
    #[error("block type {ty} of tensor '{tensor}' is not supported on the GPU")]
    UnsupportedType { tensor: String, ty: GgmlType },
    #[error(
        "tensor '{tensor}' is too large: one row needs {row_bytes} bytes but a binding holds at most {limit} bytes"
    )]
    TensorTooLarge {
        tensor: String,
        row_bytes: u64,
        limit: u64,
    },
    #[error("buffer '{what}' needs {bytes} bytes but a binding holds at most {limit} bytes")]
    BindingTooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("shape mismatch for '{tensor}': {detail}")]
    Shape { tensor: String, detail: String },
    #[error("invalid setting {name}={value}: {reason}")]
    BadSetting {
        name: String,
        value: String,
        reason: String,
    },
}
