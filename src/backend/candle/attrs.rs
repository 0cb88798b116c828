//! Typed, whitelisted access to a node's attributes. An op lists the attributes it
//! implements for the node's opset; any other attribute present on the node is refused,
//! so that an attribute whose meaning this backend ignores can never change the answer
//! unnoticed.

use super::error::{unsupported, OpResult};
use crate::formats::onnx_pb::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, NodeProto, TensorProto,
};

/// The attributes of one node, checked against a whitelist.
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

impl<'a> Attrs<'a> {
    /// Checks that every attribute on `node` is in `allowed`, and that none is a
    /// reference to a function attribute (only meaningful inside FunctionProtos).
    pub(crate) fn new(node: &'a NodeProto, allowed: &[&str]) -> OpResult<Self> {
        for a in &node.attribute {
            let name = a.name();
            if !allowed.contains(&name) {
                return Err(unsupported!("attribute `{name}` is not supported"));
            }
            if a.ref_attr_name.as_deref().is_some_and(|r| !r.is_empty()) {
                return Err(unsupported!(
                    "attribute `{name}` refers to a function attribute"
                ));
            }
        }
        Ok(Attrs { node })
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name() == name)
    }

    /// Whether the node sets `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn typed(&self, name: &str, want: AttributeType) -> OpResult<Option<&'a AttributeProto>> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        let ty = a.r#type();
        // Very old exporters leave `type` unset; then the wanted field must be the one
        // that is filled (an unset scalar field would otherwise read as 0).
        let filled = match want {
            AttributeType::Int => a.i.is_some(),
            AttributeType::Float => a.f.is_some(),
            AttributeType::String => a.s.is_some(),
            AttributeType::Tensor => a.t.is_some(),
            AttributeType::Graph => a.g.is_some(),
            AttributeType::Ints => {
                !a.ints.is_empty() || (a.i.is_none() && a.floats.is_empty() && a.f.is_none())
            }
            AttributeType::Floats => {
                !a.floats.is_empty() || (a.f.is_none() && a.ints.is_empty() && a.i.is_none())
            }
            _ => false,
        };
        if ty != want && !(ty == AttributeType::Undefined && filled) {
            return Err(unsupported!(
                "attribute `{name}` has type {}, expected {}",
                ty.as_str_name(),
                want.as_str_name()
            ));
        }
        Ok(Some(a))
    }

    /// An INT attribute.
    pub(crate) fn opt_int(&self, name: &str) -> OpResult<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i()))
    }

    /// An INT attribute with a default.
    pub(crate) fn int(&self, name: &str, default: i64) -> OpResult<i64> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }

    /// A FLOAT attribute.
    pub(crate) fn opt_float(&self, name: &str) -> OpResult<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f()))
    }

    /// A FLOAT attribute with a default.
    pub(crate) fn float(&self, name: &str, default: f32) -> OpResult<f32> {
        Ok(self.opt_float(name)?.unwrap_or(default))
    }

    /// An INTS attribute.
    pub(crate) fn ints(&self, name: &str) -> OpResult<Option<Vec<i64>>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    /// A FLOATS attribute.
    pub(crate) fn floats(&self, name: &str) -> OpResult<Option<Vec<f32>>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    /// A STRING attribute (UTF-8).
    pub(crate) fn string(&self, name: &str) -> OpResult<Option<String>> {
        match self.typed(name, AttributeType::String)? {
            None => Ok(None),
            Some(a) => String::from_utf8(a.s().to_vec())
                .map(Some)
                .map_err(|_| unsupported!("attribute `{name}` is not valid UTF-8")),
        }
    }

    /// A STRINGS attribute (each UTF-8).
    pub(crate) fn strings(&self, name: &str) -> OpResult<Option<Vec<String>>> {
        match self.typed(name, AttributeType::Strings)? {
            None => Ok(None),
            Some(a) => a
                .strings
                .iter()
                .map(|s| {
                    String::from_utf8(s.clone())
                        .map_err(|_| unsupported!("attribute `{name}` is not valid UTF-8"))
                })
                .collect::<OpResult<Vec<_>>>()
                .map(Some),
        }
    }

    /// A GRAPH attribute (If's branches, Loop's and Scan's body).
    pub(crate) fn graph(&self, name: &str) -> OpResult<Option<&'a GraphProto>> {
        Ok(self
            .typed(name, AttributeType::Graph)?
            .and_then(|a| a.g.as_ref()))
    }

    /// A TENSOR attribute.
    pub(crate) fn tensor(&self, name: &str) -> OpResult<Option<&'a TensorProto>> {
        Ok(self
            .typed(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    /// Refuses `name` when it is set to anything but `expected`.
    pub(crate) fn require_int(&self, name: &str, default: i64, expected: i64) -> OpResult<()> {
        let v = self.int(name, default)?;
        if v != expected {
            return Err(unsupported!("attribute `{name}` = {v} is not supported"));
        }
        Ok(())
    }
}
