//! The tidy long table every reader produces: dimension columns of text and one value
//! column, one row per cell.

use super::error::Place;
use crate::FastMap as HashMap;

/// A dimension column, dictionary-encoded: each row holds an index into `levels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name as the source gives it (a CSV header, a PX variable, a JSON-stat id).
    pub name: String,
    /// A second name for the column, e.g. a JSON-stat dimension's label (`Alue` for
    /// `alue_23_20260101`).
    pub label: Option<String>,
    /// The distinct values (codes) of the column.
    pub levels: Vec<String>,
    /// Human-readable labels of the levels where the source has them (PX `VALUES` next
    /// to `CODES`, JSON-stat `category.label`).
    pub level_labels: Option<Vec<String>>,
    /// Per row, the index of its level.
    pub codes: Vec<u32>,
}

impl Column {
    /// The value (code) of a row.
    pub fn get(&self, row: usize) -> &str {
        &self.levels[self.codes[row] as usize]
    }

    /// The label of a level, falling back to its code.
    pub fn level_label(&self, level: usize) -> &str {
        self.level_labels
            .as_ref()
            .and_then(|l| l.get(level))
            .map_or(self.levels[level].as_str(), |s| s.as_str())
    }
}

/// Where each row of a table came from, for error messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// Row `i` is cell `i` of a cube (PX, JSON-stat).
    Cells,
    /// Row `i` comes from the given text line (CSV), and, for a PxWeb wide export, from
    /// the given value column.
    Lines {
        /// Line of each row, counted from 1.
        lines: Vec<u64>,
        /// For melted wide tables: the header of each row's value column.
        value_columns: Option<(Vec<String>, Vec<u16>)>,
    },
    /// Row `i` is data row `i + 1` of a table without lines (Parquet).
    Rows,
}

/// A tidy long table: dimension columns and one value column (`None` = missing).
#[derive(Debug, Clone, PartialEq)]
pub struct LongTable {
    /// The file the table was read from, for messages.
    pub source: String,
    /// Dimension columns, in source order.
    pub columns: Vec<Column>,
    /// Name of the value column.
    pub value_name: String,
    /// Values, one per row; `None` where the source marks the value missing.
    pub values: Vec<Option<f64>>,
    /// Per-cell status flags (JSON-stat `status`), if the source has them.
    pub status: Option<Vec<Option<String>>>,
    /// Where each row came from.
    pub origin: Origin,
}

impl LongTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Where row `row` is in the source file.
    pub fn place(&self, row: usize) -> Place {
        match &self.origin {
            Origin::Cells => Place::Cell(row as u64),
            Origin::Lines { lines, .. } => Place::Line(lines[row]),
            Origin::Rows => Place::Row(row as u64 + 1),
        }
    }

    /// The source column holding row `row`'s value: the value column, or the header of
    /// a PxWeb wide export's value column.
    pub fn value_column(&self, row: usize) -> &str {
        match &self.origin {
            Origin::Lines {
                value_columns: Some((names, idx)),
                ..
            } => &names[usize::from(idx[row])],
            _ => &self.value_name,
        }
    }

    /// Sum of the non-missing values.
    pub fn sum(&self) -> f64 {
        self.values.iter().flatten().sum()
    }
}

/// Builds a dictionary-encoded column row by row without allocating for repeats.
#[derive(Debug, Default)]
pub(crate) struct ColumnBuilder {
    name: String,
    index: HashMap<String, u32>,
    levels: Vec<String>,
    codes: Vec<u32>,
}

impl ColumnBuilder {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        ColumnBuilder {
            name: name.into(),
            ..Default::default()
        }
    }

    pub(crate) fn push(&mut self, value: &str) {
        let code = self.code(value);
        self.codes.push(code);
    }

    /// Adds a row of the value whose code [`ColumnBuilder::code`] gave.
    pub(crate) fn push_code(&mut self, code: u32) {
        self.codes.push(code);
    }

    /// The code of `value`, a new level if it is new (no row is added).
    pub(crate) fn code(&mut self, value: &str) -> u32 {
        // Long tables repeat a value row after row: the last code first.
        if let Some(&last) = self.codes.last() {
            if self.levels[last as usize] == value {
                return last;
            }
        }
        match self.index.get(value) {
            Some(c) => *c,
            None => {
                let c = self.levels.len() as u32;
                self.index.insert(value.to_string(), c);
                self.levels.push(value.to_string());
                c
            }
        }
    }

    pub(crate) fn finish(self) -> Column {
        Column {
            name: self.name,
            label: None,
            levels: self.levels,
            level_labels: None,
            codes: self.codes,
        }
    }
}

/// Builds the columns of a cube stored in row-major order (last dimension fastest), as
/// PX and JSON-stat store them. `dims` gives each dimension's name, label, codes and
/// labels; the caller has checked that the product of the sizes is small enough.
pub(crate) fn cube_columns(dims: Vec<CubeDim>, cells: usize) -> Vec<Column> {
    let sizes: Vec<usize> = dims.iter().map(|d| d.codes.len()).collect();
    let mut columns = Vec::with_capacity(dims.len());
    for (k, d) in dims.into_iter().enumerate() {
        let inner: usize = sizes[k + 1..].iter().product();
        let n = sizes[k].max(1) as u32;
        let codes = (0..cells)
            .map(|i| ((i / inner.max(1)) as u32) % n)
            .collect();
        columns.push(Column {
            name: d.name,
            label: d.label,
            levels: d.codes,
            level_labels: d.labels,
            codes,
        });
    }
    columns
}

/// One dimension of a cube: name, optional label, codes and optional labels.
pub(crate) struct CubeDim {
    pub(crate) name: String,
    pub(crate) label: Option<String>,
    pub(crate) codes: Vec<String>,
    pub(crate) labels: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cube_columns_are_row_major_with_last_fastest() {
        let dim = |n: &str, c: &[&str]| CubeDim {
            name: n.into(),
            label: None,
            codes: c.iter().map(|s| s.to_string()).collect(),
            labels: None,
        };
        let cols = cube_columns(vec![dim("a", &["x", "y"]), dim("b", &["1", "2", "3"])], 6);
        let a: Vec<&str> = (0..6).map(|i| cols[0].get(i)).collect();
        let b: Vec<&str> = (0..6).map(|i| cols[1].get(i)).collect();
        assert_eq!(a, ["x", "x", "x", "y", "y", "y"]);
        assert_eq!(b, ["1", "2", "3", "1", "2", "3"]);
    }

    #[test]
    fn column_builder_interns_repeats() {
        let mut b = ColumnBuilder::new("area");
        for v in ["091", "049", "091"] {
            b.push(v);
        }
        let c = b.finish();
        assert_eq!(c.levels, ["091", "049"]);
        assert_eq!(c.codes, [0, 1, 0]);
    }
}
