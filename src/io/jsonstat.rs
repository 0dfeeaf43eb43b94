//! JSON-stat 2.0 datasets, as the PxWeb API of Statistics Finland returns them.
//!
//! Handled: `id` and `size`; `category.index` as an array or an object (and a single
//! category given by `label` alone); `category.label`; dense (`[…]`) and sparse
//! (`{"7": …}`) `value`; `status` as a string, an array or an object; `null` values
//! as missing. Dimension ids are kept as they are, so the new-style ids Statistics
//! Finland uses since June 2026 (`alue_23_20260101`, `ikaryhma_10_20180101`,
//! `timeperiod_y`) work as well as the old ones (`Alue`, `Vuosi`). Values are stored
//! row-major: the last dimension varies fastest.

use super::error::{DataError, Place};
use super::px::checked_cells;
use super::table::{cube_columns, CubeDim, LongTable, Origin};
use serde_json::{Map, Value};

/// The most cells a sparse (`"value": {…}`) cube may declare (10⁷).
pub const MAX_SPARSE_CELLS: u64 = 10_000_000;

/// Reads a JSON-stat 2.0 dataset from its bytes. `file` names it in errors.
///
/// # Errors
/// A [`DataError`] for text that is not JSON (with its line), a document that is not a
/// JSON-stat dataset, a negative or non-integer `size`, a dimension whose categories do
/// not match its size, a `value` array of the wrong length, a sparse index outside the
/// cube, or a value that is neither a number nor `null`.
pub fn read(bytes: &[u8], file: &str) -> Result<LongTable, DataError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        DataError::at(
            file,
            Place::Line(e.line() as u64),
            format!("not valid JSON ({e})"),
        )
    })?;
    let ds = dataset(&doc).ok_or_else(|| {
        DataError::file(
            file,
            "not a JSON-stat 2.0 dataset (expected an object with `id`, `size`, `dimension` and `value`)",
        )
    })?;
    let key = |k: &str| Place::Key(k.to_string());
    let ids: Vec<String> = field(ds, "id")
        .as_array()
        .ok_or_else(|| DataError::at(file, key("id"), "`id` is not an array"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                DataError::at(
                    file,
                    key(&format!("id[{i}]")),
                    "a dimension id is not a string",
                )
                .value(v.to_string())
            })
        })
        .collect::<Result<_, _>>()?;
    let sizes: Vec<u64> = field(ds, "size")
        .as_array()
        .ok_or_else(|| DataError::at(file, key("size"), "`size` is not an array"))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64().ok_or_else(|| {
                DataError::at(
                    file,
                    key(&format!("size[{i}]")),
                    "a size is not a non-negative whole number",
                )
                .value(v.to_string())
            })
        })
        .collect::<Result<_, _>>()?;
    if ids.len() != sizes.len() {
        return Err(DataError::at(
            file,
            key("size"),
            format!(
                "`id` names {} dimensions but `size` has {}",
                ids.len(),
                sizes.len()
            ),
        ));
    }
    if ids.is_empty() {
        return Err(DataError::at(
            file,
            key("id"),
            "the dataset has no dimensions",
        ));
    }
    let dimension = field(ds, "dimension")
        .as_object()
        .ok_or_else(|| DataError::at(file, key("dimension"), "`dimension` is not an object"))?;
    let (values, status_raw, payload) = match &field(ds, "value") {
        // A dense array is checked against its length below; a sparse object could
        // declare a vast cube in a few bytes, so its cube is capped.
        Value::Array(a) => (Some(a), None, u64::MAX),
        Value::Object(o) => (None, Some(o), 2 * MAX_SPARSE_CELLS),
        _ => {
            return Err(DataError::at(
                file,
                key("value"),
                "`value` is neither an array nor an object",
            ))
        }
    };
    let cells = checked_cells(sizes.iter().copied(), payload)
        .map_err(|p| DataError::at(file, key("size"), p))?;
    let mut dims = Vec::with_capacity(ids.len());
    for (id, &size) in ids.iter().zip(&sizes) {
        dims.push(read_dimension(file, id, size as usize, dimension.get(id))?);
    }
    let values = match (values, status_raw) {
        (Some(arr), _) => {
            if arr.len() != cells {
                return Err(DataError::at(
                    file,
                    key("value"),
                    format!(
                        "`value` has {} entries but `size` promises {cells}",
                        arr.len()
                    ),
                ));
            }
            arr.iter()
                .enumerate()
                .map(|(i, v)| number(file, i, v))
                .collect::<Result<Vec<_>, _>>()?
        }
        (None, Some(obj)) => {
            let mut out = vec![None; cells];
            for (k, v) in obj {
                let i = sparse_index(file, "value", k, cells)?;
                out[i] = number(file, i, v)?;
            }
            out
        }
        (None, None) => unreachable!("value is an array or an object"),
    };
    let status = read_status(file, field(ds, "status"), cells)?;
    Ok(LongTable {
        source: file.to_string(),
        columns: cube_columns(dims, cells),
        value_name: "value".into(),
        values,
        status,
        origin: Origin::Cells,
    })
}

/// A member of an object, `null` where absent.
fn field<'a>(o: &'a Map<String, Value>, key: &str) -> &'a Value {
    o.get(key).unwrap_or(&Value::Null)
}

/// The dataset object: the document itself, or the one dataset of a bundle.
fn dataset(doc: &Value) -> Option<&Map<String, Value>> {
    let o = doc.as_object()?;
    if o.contains_key("id") && o.contains_key("size") {
        return Some(o);
    }
    let mut inner = o
        .values()
        .filter_map(Value::as_object)
        .filter(|d| d.contains_key("id") && d.contains_key("size") && d.contains_key("dimension"));
    match (inner.next(), inner.next()) {
        (Some(d), None) => Some(d),
        _ => None,
    }
}

fn read_dimension(
    file: &str,
    id: &str,
    size: usize,
    dim: Option<&Value>,
) -> Result<CubeDim, DataError> {
    let here = |sub: &str| Place::Key(format!("dimension.{id}{sub}"));
    let dim = dim.and_then(Value::as_object).ok_or_else(|| {
        DataError::at(
            file,
            here(""),
            "the dimension named in `id` is not described",
        )
    })?;
    let category = dim
        .get("category")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            DataError::at(
                file,
                here(".category"),
                "the dimension has no `category` object",
            )
        })?;
    let labels = category.get("label").and_then(Value::as_object);
    let mut codes: Vec<Option<String>> = vec![None; size];
    match category.get("index") {
        Some(Value::Array(a)) => {
            if a.len() != size {
                return Err(DataError::at(
                    file,
                    here(".category.index"),
                    format!("{} categories but `size` says {size}", a.len()),
                ));
            }
            for (i, c) in a.iter().enumerate() {
                let c = c.as_str().ok_or_else(|| {
                    DataError::at(
                        file,
                        here(".category.index"),
                        "a category code is not a string",
                    )
                    .value(c.to_string())
                })?;
                codes[i] = Some(c.to_string());
            }
        }
        Some(Value::Object(o)) => {
            if o.len() != size {
                return Err(DataError::at(
                    file,
                    here(".category.index"),
                    format!("{} categories but `size` says {size}", o.len()),
                ));
            }
            for (c, pos) in o {
                let p = pos
                    .as_u64()
                    .map(|p| p as usize)
                    .filter(|p| *p < size && codes[*p].is_none())
                    .ok_or_else(|| {
                        DataError::at(
                            file,
                            here(&format!(".category.index.{c}")),
                            format!("the position is not a free whole number below {size}"),
                        )
                        .value(pos.to_string())
                    })?;
                codes[p] = Some(c.clone());
            }
        }
        None => {
            // Without an index the dimension must have a single category, named by label.
            let only = labels
                .filter(|l| l.len() == 1 && size == 1)
                .ok_or_else(|| {
                    DataError::at(
                        file,
                        here(".category"),
                        "no `index`, and `label` does not name exactly one category",
                    )
                })?;
            codes[0] = only.keys().next().cloned();
        }
        Some(other) => {
            return Err(DataError::at(
                file,
                here(".category.index"),
                "`index` is neither an array nor an object",
            )
            .value(other.to_string()))
        }
    }
    let codes: Vec<String> = codes.into_iter().map(Option::unwrap_or_default).collect();
    let level_labels = labels.map(|l| {
        codes
            .iter()
            .map(|c| {
                l.get(c)
                    .and_then(Value::as_str)
                    .map_or_else(|| c.clone(), str::to_string)
            })
            .collect()
    });
    Ok(CubeDim {
        name: id.to_string(),
        label: dim.get("label").and_then(Value::as_str).map(str::to_string),
        codes,
        labels: level_labels,
    })
}

fn number(file: &str, i: usize, v: &Value) -> Result<Option<f64>, DataError> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(DataError::at(
            file,
            Place::Key(format!("value[{i}]")),
            "a value is neither a number nor null",
        )
        .value(other.to_string())),
    }
}

fn sparse_index(file: &str, what: &str, k: &str, cells: usize) -> Result<usize, DataError> {
    k.parse::<usize>()
        .ok()
        .filter(|i| *i < cells)
        .ok_or_else(|| {
            DataError::at(
                file,
                Place::Key(format!("{what}.{k}")),
                format!("the key is not a cell index below {cells}"),
            )
            .value(k.to_string())
        })
}

fn read_status(
    file: &str,
    status: &Value,
    cells: usize,
) -> Result<Option<Vec<Option<String>>>, DataError> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    Ok(match status {
        Value::Null => None,
        Value::String(s) => Some(vec![Some(s.clone()); cells]),
        Value::Array(a) if a.len() == 1 => Some(vec![text(&a[0]); cells]),
        Value::Array(a) if a.len() == cells => Some(a.iter().map(text).collect()),
        Value::Array(a) => {
            return Err(DataError::at(
                file,
                Place::Key("status".into()),
                format!(
                    "`status` has {} entries but the cube has {cells} cells",
                    a.len()
                ),
            ))
        }
        Value::Object(o) => {
            let mut out = vec![None; cells];
            for (k, v) in o {
                out[sparse_index(file, "status", k, cells)?] = text(v);
            }
            Some(out)
        }
        other => {
            return Err(DataError::at(
                file,
                Place::Key("status".into()),
                "`status` is neither a string, an array nor an object",
            )
            .value(other.to_string()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"version":"2.0","class":"dataset",
        "id":["alue","vuosi"],"size":[2,2],
        "dimension":{
          "alue":{"label":"Alue","category":{"index":{"KU091":0,"KU049":1},"label":{"KU091":"Helsinki","KU049":"Espoo"}}},
          "vuosi":{"category":{"index":["2024","2025"]}}},
        "value":[1,2,null,4],"status":{"2":".."}}"#;

    #[test]
    fn dense_with_object_and_array_index() {
        let t = read(DOC.as_bytes(), "d.json").unwrap();
        assert_eq!(t.values, [Some(1.0), Some(2.0), None, Some(4.0)]);
        assert_eq!(t.columns[0].get(2), "KU049");
        assert_eq!(t.columns[0].level_label(0), "Helsinki");
        assert_eq!(t.columns[1].get(1), "2025");
        assert_eq!(t.status.as_ref().unwrap()[2].as_deref(), Some(".."));
    }

    #[test]
    fn sparse_values() {
        let doc = DOC.replace("[1,2,null,4]", r#"{"0":1,"3":4}"#);
        let t = read(doc.as_bytes(), "d.json").unwrap();
        assert_eq!(t.values, [Some(1.0), None, None, Some(4.0)]);
        let doc = DOC.replace("[1,2,null,4]", r#"{"9":1}"#);
        assert!(read(doc.as_bytes(), "d.json").is_err());
    }

    #[test]
    fn too_few_values_and_negative_size_are_named() {
        let doc = DOC.replace("[1,2,null,4]", "[1,2,3]");
        let e = read(doc.as_bytes(), "d.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.json: value: `value` has 3 entries but `size` promises 4"
        );
        let doc = DOC.replace("[2,2]", "[2,-2]");
        let e = read(doc.as_bytes(), "d.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d.json: size[1], value `-2`: a size is not a non-negative whole number"
        );
    }
}
