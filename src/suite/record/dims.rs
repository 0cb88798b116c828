//! `--dim NAME=VALUE` and `--dim INPUT:AXIS=VALUE`, and the concrete shape of every
//! generated input: symbolic dims by name, any dynamic axis by position.

use super::MAX_TENSOR_BYTES;
use crate::schema::{Dim, IoSpec};
use crate::tensor::{checked_nbytes, DType};
use std::collections::BTreeMap;

/// `--dim NAME=VALUE`: the size of a symbolic dimension (`batch=4`), or of an unnamed
/// dynamic axis given by position (`INPUT:AXIS=VALUE`, e.g. `x:0=4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimValue {
    /// The symbolic dim's name, or `INPUT:AXIS`.
    pub name: String,
    /// Its size, at least 1.
    pub value: usize,
}

impl std::str::FromStr for DimValue {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, value) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE (e.g. batch=4)"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{s}` has no dim name before `=`"));
        }
        match value.trim().parse::<usize>() {
            Ok(v) if v >= 1 => Ok(DimValue {
                name: name.to_string(),
                value: v,
            }),
            _ => Err(format!("`{s}`: the size must be an integer ≥ 1")),
        }
    }
}

impl std::fmt::Display for DimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// The `--dim` sizes by name (`batch`, or `INPUT:AXIS`), each checked against the
/// model: a name no input has, an axis that is fixed or absent, or one name given two
/// sizes is an error naming it.
fn given_dims<'a>(
    specs: &[IoSpec],
    dims: &'a [DimValue],
) -> std::result::Result<BTreeMap<&'a str, usize>, String> {
    let mut given: BTreeMap<&str, usize> = BTreeMap::new();
    for d in dims {
        if let Some(old) = given.insert(&d.name, d.value) {
            if old != d.value {
                return Err(format!(
                    "--dim {} is given twice ({old} and {})",
                    d.name, d.value
                ));
            }
        }
    }
    // Every --dim must name something the model has.
    let symbolic: Vec<&str> = specs
        .iter()
        .flat_map(|s| s.dims.iter().flatten())
        .filter_map(|d| match d {
            Dim::Symbolic(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    for name in given.keys() {
        if symbolic.contains(name) {
            continue;
        }
        let positional = name.rsplit_once(':').and_then(|(input, axis)| {
            let axis: usize = axis.parse().ok()?;
            let spec = specs.iter().find(|s| s.name == input)?;
            Some((spec, axis))
        });
        match positional {
            // Any dynamic axis may be sized by position, whatever its dim_param (two
            // axes both named `?` are two different sizes).
            Some((spec, axis)) => match spec.dims.as_ref().and_then(|d| d.get(axis)) {
                Some(Dim::Unknown | Dim::Symbolic(_)) => {}
                Some(Dim::Fixed(f)) => {
                    return Err(format!(
                        "--dim {name}: axis {axis} of input `{}` is fixed at {f}",
                        spec.name
                    ))
                }
                None => {
                    return Err(format!(
                        "--dim {name}: input `{}` has no axis {axis}",
                        spec.name
                    ))
                }
            },
            None => {
                let mut known: Vec<&str> = symbolic.clone();
                known.sort_unstable();
                known.dedup();
                let known = if known.is_empty() {
                    "the model has no symbolic dims".to_string()
                } else {
                    format!("its symbolic dims: {}", known.join(", "))
                };
                return Err(format!("--dim {name}: the model has no such dim ({known})"));
            }
        }
    }
    Ok(given)
}

/// The size `given` sets for axis `axis` of input `spec` with dim `d`: by position
/// first (it names exactly this axis), then by the dim's name.
fn given_size(given: &BTreeMap<&str, usize>, spec: &IoSpec, axis: usize, d: &Dim) -> Option<usize> {
    let by_position = given.get(format!("{}:{axis}", spec.name).as_str()).copied();
    match d {
        Dim::Fixed(_) => None,
        Dim::Symbolic(s) => by_position.or_else(|| given.get(s.as_str()).copied()),
        Dim::Unknown => by_position,
    }
}

/// The input specs with every dim that `dims` sizes made fixed at that size (`fuzz
/// --dim`): the dims left free are the ones the caller varies.
pub fn pin_dims(specs: &[IoSpec], dims: &[DimValue]) -> std::result::Result<Vec<IoSpec>, String> {
    let given = given_dims(specs, dims)?;
    Ok(specs
        .iter()
        .map(|spec| IoSpec {
            dims: spec.dims.as_ref().map(|declared| {
                declared
                    .iter()
                    .enumerate()
                    .map(|(axis, d)| {
                        given_size(&given, spec, axis, d).map_or_else(|| d.clone(), Dim::Fixed)
                    })
                    .collect()
            }),
            ..spec.clone()
        })
        .collect())
}

/// The dtype and concrete shape of every input, or why one cannot be generated.
pub(super) fn resolve_shapes(
    specs: &[IoSpec],
    dims: &[DimValue],
) -> std::result::Result<Vec<(DType, Vec<usize>)>, String> {
    let given = given_dims(specs, dims)?;
    specs
        .iter()
        .map(|spec| {
            let dtype = spec.dtype.ok_or_else(|| {
                format!(
                    "input `{}` is not a numeric or bool tensor; give its data with --inputs",
                    spec.name
                )
            })?;
            let declared = spec.dims.as_ref().ok_or_else(|| {
                format!(
                    "input `{}` declares no shape (rank unknown); give its data with --inputs",
                    spec.name
                )
            })?;
            let mut shape = Vec::with_capacity(declared.len());
            for (axis, d) in declared.iter().enumerate() {
                let key = format!("{}:{axis}", spec.name);
                let size = given_size(&given, spec, axis, d);
                shape.push(match d {
                    Dim::Fixed(n) => *n,
                    Dim::Symbolic(s) => size
                        .ok_or_else(|| {
                            format!(
                                "input `{}` axis {axis} is the symbolic dim `{s}`; give --dim {s}=N (every axis named `{s}`) or --dim {key}=N (this axis)",
                                spec.name
                            )
                        })?,
                    Dim::Unknown => size.ok_or_else(|| {
                        format!(
                            "input `{}` axis {axis} is dynamic without a name; give --dim {key}=N",
                            spec.name
                        )
                    })?,
                });
            }
            match checked_nbytes(dtype, &shape) {
                Some(n) if n <= MAX_TENSOR_BYTES => Ok((dtype, shape)),
                _ => Err(format!(
                    "input `{}` of shape {shape:?} ({dtype}) is larger than the 2 GiB a .pb file holds",
                    spec.name
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dim_values_parse() {
        assert_eq!(
            "batch=4".parse::<DimValue>().unwrap(),
            DimValue {
                name: "batch".into(),
                value: 4
            }
        );
        assert_eq!("x:0=2".parse::<DimValue>().unwrap().name, "x:0");
        assert!("batch"
            .parse::<DimValue>()
            .unwrap_err()
            .contains("NAME=VALUE"));
        assert!("batch=0".parse::<DimValue>().unwrap_err().contains("≥ 1"));
        assert!("batch=-1".parse::<DimValue>().is_err());
        assert!("=3"
            .parse::<DimValue>()
            .unwrap_err()
            .contains("no dim name"));
    }
}
