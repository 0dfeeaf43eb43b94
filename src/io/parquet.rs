//! Parquet tables: text and whole-number columns are dimensions, the value column is
//! the one named like a value (see [`super::csv::VALUE_NAMES`]) or else
//! the last floating-point column.

use super::csv::VALUE_NAMES;
use super::error::{DataError, IoError};
use super::labels::role_of;
use super::table::{ColumnBuilder, LongTable, Origin};
use polars::prelude::{DataType, ParquetReader, SerReader};

/// Reads a tidy long table from a Parquet file.
///
/// # Errors
/// [`IoError::Data`] if the bytes are not Parquet or the table has no value column.
pub fn read(bytes: Vec<u8>, file: &str) -> Result<LongTable, IoError> {
    let file = file.to_string();
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| DataError::file(&file, format!("not a readable Parquet file ({e})")))?;
    let cols = df.columns();
    let is_float = |c: &polars::prelude::Column| c.dtype().is_float();
    let value_pos = cols
        .iter()
        .position(|c| VALUE_NAMES.contains(&c.name().to_lowercase().as_str()))
        .or_else(|| {
            cols.iter()
                .rposition(|c| is_float(c) && role_of(c.name()).is_none())
        })
        .ok_or_else(|| {
            DataError::file(
                &file,
                "no value column: name one population, value, count, rate or share",
            )
        })?;
    let height = df.height();
    let bad =
        |name: &str, e: String| IoError::Data(DataError::file(&file, e).column(name.to_string()));
    let mut columns = Vec::new();
    for (k, c) in cols.iter().enumerate() {
        if k == value_pos {
            continue;
        }
        let mut b = ColumnBuilder::new(c.name().as_str());
        if c.dtype().is_integer() {
            let ints = c
                .cast(&DataType::Int64)
                .map_err(|e| bad(c.name(), e.to_string()))?;
            for v in ints.i64().map_err(|e| bad(c.name(), e.to_string()))?.iter() {
                b.push(&v.map(|x| x.to_string()).unwrap_or_default());
            }
        } else if c.dtype() == &DataType::String {
            for v in c.str().map_err(|e| bad(c.name(), e.to_string()))?.iter() {
                b.push(v.unwrap_or(""));
            }
        } else {
            return Err(bad(
                c.name(),
                format!(
                    "a dimension column must hold text or whole numbers, not {}",
                    c.dtype()
                ),
            ));
        }
        columns.push(b.finish());
    }
    let vcol = &cols[value_pos];
    if !vcol.dtype().is_primitive_numeric() {
        return Err(bad(
            vcol.name(),
            format!("the value column holds {}, not numbers", vcol.dtype()),
        ));
    }
    let floats = vcol
        .cast(&DataType::Float64)
        .map_err(|e| bad(vcol.name(), e.to_string()))?;
    let values: Vec<Option<f64>> = floats
        .f64()
        .map_err(|e| bad(vcol.name(), e.to_string()))?
        .iter()
        .collect();
    debug_assert_eq!(values.len(), height);
    Ok(LongTable {
        source: file,
        columns,
        value_name: vcol.name().to_string(),
        values,
        status: None,
        origin: Origin::Rows,
    })
}
