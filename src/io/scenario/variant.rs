//! Variants of a scenario (MODEL.md §10): the base document plus overrides, merged
//! key by key.
//!
//! A variant is a partial scenario document. Tables merge key by key; the arrays of
//! tables `service`, `segment` and `unit` merge element by element by `id`, and
//! `migration` by `name` + `direction`: an element with a new key is added, one with
//! `remove = true` is dropped, one with a known key is merged into the base's. Any
//! other value replaces the base's. A variant's own keys — `name`, `description`,
//! `baseline` and `effect` — are not merged.
//!
//! ```
//! use kunta::io::scenario::variant::{merge, Variant};
//!
//! let base: toml::Table = toml::from_str(r#"
//! [scenario]
//! name = "Base"
//! base_year = 2024
//! end_year = 2030
//! [[service]]
//! id = "school"
//! ages = [7, 12]
//!   [[service.segment]]
//!   id = "general"
//!   share = 0.8
//!   [[service.segment]]
//!   id = "intensified"
//!   share = 0.2
//! "#).unwrap();
//! let variants = Variant::split(&toml::from_str(r#"
//! [[variant]]
//! name = "More support"
//!   [[variant.service]]
//!   id = "school"
//!     [[variant.service.segment]]
//!     id = "general"
//!     share = 0.7
//!     [[variant.service.segment]]
//!     id = "intensified"
//!     share = 0.3
//! "#).unwrap()).unwrap();
//! let merged = merge(&base, &variants[0].overrides).unwrap();
//! let segments = merged["service"][0]["segment"].as_array().unwrap();
//! assert_eq!(segments[1]["share"].as_float(), Some(0.3));
//! assert_eq!(merged["service"][0]["ages"][1].as_integer(), Some(12));
//! ```

use toml::{Table, Value};

/// One variant as written: its own keys and the overrides merged onto the base.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Its name (the `scenario` column of its rows).
    pub name: String,
    /// What it changes, in words.
    pub description: Option<String>,
    /// The scenario it is compared with: another variant's name, or the base (none).
    pub baseline: Option<String>,
    /// Cohort-linked effects (`[[variant.effect]]`), as written.
    pub effects: Vec<Table>,
    /// Everything else: the partial scenario merged onto the base.
    pub overrides: Table,
}

impl Variant {
    /// The variants of a document's `[[variant]]` array (none when it has none).
    ///
    /// # Errors
    /// Every problem found: a `variant` that is not an array of tables, a variant
    /// without a name, or own keys of the wrong type.
    pub fn split(doc: &Table) -> Result<Vec<Variant>, Vec<String>> {
        let Some(list) = doc.get("variant") else {
            return Ok(Vec::new());
        };
        let Some(list) = list.as_array() else {
            return Err(vec![
                "`variant` must be an array of tables: [[variant]]".into()
            ]);
        };
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (k, v) in list.iter().enumerate() {
            let Some(t) = v.as_table() else {
                problems.push(format!("`variant[{k}]` must be a table"));
                continue;
            };
            let mut overrides = t.clone();
            let text = |key: &str, o: &mut Table, problems: &mut Vec<String>| -> Option<String> {
                match o.remove(key) {
                    None => None,
                    Some(Value::String(s)) => Some(s),
                    Some(other) => {
                        problems.push(format!(
                            "`variant[{k}].{key}` must be text, not {}",
                            other.type_str()
                        ));
                        None
                    }
                }
            };
            let name = text("name", &mut overrides, &mut problems);
            let description = text("description", &mut overrides, &mut problems);
            let baseline = text("baseline", &mut overrides, &mut problems);
            let effects = match overrides.remove("effect") {
                None => Vec::new(),
                Some(Value::Array(a)) if a.iter().all(Value::is_table) => a
                    .into_iter()
                    .filter_map(|e| match e {
                        Value::Table(t) => Some(t),
                        _ => None,
                    })
                    .collect(),
                Some(_) => {
                    problems.push(format!(
                        "`variant[{k}].effect` must be an array of tables: [[variant.effect]]"
                    ));
                    Vec::new()
                }
            };
            match name {
                Some(name) if !name.trim().is_empty() => out.push(Variant {
                    name,
                    description,
                    baseline,
                    effects,
                    overrides,
                }),
                _ => problems.push(format!("`variant[{k}]` needs a `name`")),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// The key an element of an array of tables is merged by, for the arrays that merge
/// element by element (`None` for any other array: it replaces the base's).
fn element_key(array: &str, t: &Table) -> Option<String> {
    let text = |k: &str| t.get(k).and_then(Value::as_str).map(str::to_string);
    match array {
        "service" | "segment" | "unit" => text("id"),
        "migration" => Some(format!("{}/{}", text("name")?, text("direction")?)),
        _ => None,
    }
}

/// The ids of the elements of the base document's keyed array `array` (`service`,
/// `unit`, …), in order.
pub(super) fn ids(base: &Table, array: &str) -> Vec<String> {
    base.get(array)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| element_key(array, e.as_table()?))
                .collect()
        })
        .unwrap_or_default()
}

/// The ids that `overrides` gives in its keyed array `array` and the base does not
/// have (elements it adds, or mistyped ids), in order.
pub(super) fn added_ids(base: &Table, overrides: &Table, array: &str) -> Vec<String> {
    let known = ids(base, array);
    ids(overrides, array)
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect()
}

/// A key path of `doc` such as `unit[0].capasity` with each keyed array's index
/// replaced by its element's id, `unit[Keskustan koulu].capasity`; left as it is
/// where a step is not found.
pub(super) fn name_elements(path: &str, doc: &Table) -> String {
    let mut at: Option<&Table> = Some(doc);
    let mut out = Vec::new();
    for step in path.split('.') {
        let named = step
            .strip_suffix(']')
            .and_then(|s| s.split_once('['))
            .and_then(|(array, index)| {
                let i: usize = index.parse().ok()?;
                let element = at?.get(array)?.as_array()?.get(i)?.as_table()?;
                let id = element_key(array, element)?;
                Some((format!("{array}[{id}]"), element))
            });
        match named {
            Some((text, element)) => {
                out.push(text);
                at = Some(element);
            }
            None => {
                out.push(step.to_string());
                at = at.and_then(|t| t.get(step)).and_then(Value::as_table);
            }
        }
    }
    out.join(".")
}

/// Whether `array` merges element by element.
fn keyed(array: &str) -> bool {
    matches!(array, "service" | "segment" | "unit" | "migration")
}

/// `overrides` merged onto `base` (MODEL.md §10); `path` names the table in messages.
///
/// # Errors
/// A sentence naming the key, for an element of a keyed array without its key or
/// one to remove that the base does not have.
pub fn merge(base: &Table, overrides: &Table) -> Result<Table, String> {
    merge_at(base, overrides, "")
}

fn merge_at(base: &Table, overrides: &Table, path: &str) -> Result<Table, String> {
    let mut out = base.clone();
    for (key, o) in overrides {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let merged = match (out.get(key), o) {
            (Some(Value::Table(b)), Value::Table(o)) => Value::Table(merge_at(b, o, &here)?),
            (b, Value::Array(o)) if keyed(key) => {
                let b = match b {
                    Some(Value::Array(b)) => b.clone(),
                    _ => Vec::new(),
                };
                Value::Array(merge_array(key, &b, o, &here)?)
            }
            _ => o.clone(),
        };
        out.insert(key.clone(), merged);
    }
    Ok(out)
}

fn merge_array(
    name: &str,
    base: &[Value],
    overrides: &[Value],
    path: &str,
) -> Result<Vec<Value>, String> {
    let what = if name == "migration" {
        "`name` and `direction`"
    } else {
        "`id`"
    };
    let mut out: Vec<Value> = base.to_vec();
    for (k, o) in overrides.iter().enumerate() {
        let Some(o) = o.as_table() else {
            return Err(format!("`{path}[{k}]` must be a table"));
        };
        let Some(key) = element_key(name, o) else {
            return Err(format!("`{path}[{k}]` needs its {what} to be merged by"));
        };
        let at = out
            .iter()
            .position(|b| b.as_table().and_then(|b| element_key(name, b)).as_deref() == Some(&key));
        let remove = match o.get("remove") {
            None => false,
            Some(Value::Boolean(r)) => *r,
            Some(_) => return Err(format!("`{path}[{k}].remove` must be true or false")),
        };
        let mut o = o.clone();
        o.remove("remove");
        match (at, remove) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {
                return Err(format!(
                    "`{path}[{k}]` removes `{}`, which the scenario does not have",
                    key.replace('/', " ")
                ))
            }
            (Some(i), false) => {
                let b = out[i].as_table().cloned().unwrap_or_default();
                out[i] = Value::Table(merge_at(&b, &o, &format!("{path}[{k}]"))?);
            }
            (None, false) => out.push(Value::Table(o)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Table {
        toml::from_str(text).unwrap()
    }

    const BASE: &str = r#"
[scenario]
name = "Base"
base_year = 2024
end_year = 2030
discount_rate = 0.03

[[migration]]
name = "domestic"
direction = "in"
counts = "in.csv"

[[migration]]
name = "domestic"
direction = "out"
rates = "out.csv"

[[service]]
id = "school"
ages = [7, 12]
coverage = 1.0
  [[service.segment]]
  id = "general"
  share = 0.8
  [[service.segment]]
  id = "special"
  share = 0.2
  [service.cost]
  per_unit = 100.0
  per_m2 = 50.0

[[unit]]
id = "A"
service = "school"
capacity = 100

[[unit]]
id = "B"
service = "school"
capacity = 200

[catchment]
file = "c.csv"
"#;

    fn merged(variant: &str) -> Result<Table, String> {
        let v = Variant::split(&doc(variant)).unwrap();
        merge(&doc(BASE), &v[0].overrides)
    }

    #[test]
    fn tables_merge_key_by_key_and_values_replace() {
        let m = merged(
            "[[variant]]\nname = \"v\"\n[variant.scenario]\ndiscount_rate = 0.0\n[variant.catchment]\nfile = \"new.csv\"\n",
        )
        .unwrap();
        assert_eq!(m["scenario"]["discount_rate"].as_float(), Some(0.0));
        assert_eq!(m["scenario"]["end_year"].as_integer(), Some(2030));
        assert_eq!(m["catchment"]["file"].as_str(), Some("new.csv"));
    }

    #[test]
    fn services_segments_and_units_merge_by_id() {
        let m = merged(
            r#"
[[variant]]
name = "v"
  [[variant.service]]
  id = "school"
  coverage = { from = [2025, 1.0], to = [2027, 0.9] }
    [[variant.service.segment]]
    id = "special"
    share = 0.3
    [[variant.service.segment]]
    id = "intensified"
    share = 0.1
    [variant.service.cost]
    per_unit = 120.0
  [[variant.unit]]
  id = "B"
  capacity = 250
  [[variant.unit]]
  id = "C"
  service = "school"
  capacity = 50
"#,
        )
        .unwrap();
        let school = &m["service"][0];
        assert!(school["coverage"].is_table());
        assert_eq!(school["ages"][0].as_integer(), Some(7));
        let seg = school["segment"].as_array().unwrap();
        assert_eq!(seg.len(), 3);
        assert_eq!(seg[0]["share"].as_float(), Some(0.8));
        assert_eq!(seg[1]["share"].as_float(), Some(0.3));
        assert_eq!(seg[2]["id"].as_str(), Some("intensified"));
        assert_eq!(school["cost"]["per_unit"].as_float(), Some(120.0));
        assert_eq!(school["cost"]["per_m2"].as_float(), Some(50.0));
        let units = m["unit"].as_array().unwrap();
        assert_eq!(units.len(), 3);
        assert_eq!(units[1]["capacity"].as_integer(), Some(250));
        assert_eq!(units[1]["service"].as_str(), Some("school"));
        assert_eq!(units[2]["id"].as_str(), Some("C"));
    }

    #[test]
    fn flows_merge_by_name_and_direction_and_remove_drops() {
        let m = merged(
            r#"
[[variant]]
name = "v"
  [[variant.migration]]
  name = "domestic"
  direction = "out"
  multiplier = 0.9
  [[variant.migration]]
  name = "domestic"
  direction = "in"
  remove = true
  [[variant.unit]]
  id = "A"
  remove = true
"#,
        )
        .unwrap();
        let flows = m["migration"].as_array().unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0]["direction"].as_str(), Some("out"));
        assert_eq!(flows[0]["multiplier"].as_float(), Some(0.9));
        assert_eq!(flows[0]["rates"].as_str(), Some("out.csv"));
        let units = m["unit"].as_array().unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0]["id"].as_str(), Some("B"));
    }

    #[test]
    fn bad_variants_are_named() {
        let e = merged("[[variant]]\nname = \"v\"\n[[variant.unit]]\nid = \"X\"\nremove = true\n")
            .unwrap_err();
        assert!(e.contains("`unit[0]` removes `X`"), "{e}");
        let e =
            merged("[[variant]]\nname = \"v\"\n[[variant.migration]]\nname = \"x\"\n").unwrap_err();
        assert!(
            e.contains("`migration[0]` needs its `name` and `direction`"),
            "{e}"
        );
        let e = Variant::split(&doc("[[variant]]\ndescription = \"d\"\n")).unwrap_err();
        assert!(e[0].contains("`variant[0]` needs a `name`"), "{e:?}");
        let v = Variant::split(&doc(
            "[[variant]]\nname = \"v\"\nbaseline = \"w\"\n[[variant.effect]]\noutcome = \"neet\"\n",
        ))
        .unwrap();
        assert_eq!(v[0].baseline.as_deref(), Some("w"));
        assert_eq!(v[0].effects.len(), 1);
        assert!(v[0].overrides.is_empty());
    }
}
