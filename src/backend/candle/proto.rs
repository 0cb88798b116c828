//! ONNX `TensorProto`s embedded in the model (initializers, `Constant` values,
//! `ConstantOfShape` fill values) as interpreter values, decoded by parity's strict
//! reader in `formats::pb`.

use super::error::{failed, OpResult};
use super::value::{dtype_from_onnx, Value};
use crate::formats::onnx_pb::TensorProto;
use candle_core::Device;
use std::path::Path;

/// Decodes a tensor embedded in the model at `path` onto `dev`; unsupported element types
/// (strings, float8, u64...) are refused, malformed data fails.
pub(crate) fn value_from_proto(t: &TensorProto, path: &Path, dev: &Device) -> OpResult<Value> {
    dtype_from_onnx(t.data_type())?;
    let tensor = crate::formats::pb::tensor_from_proto(t, path).map_err(|e| failed!("{e}"))?;
    Value::from_tensor(&tensor, dev)
}
