//! Reading a run's own output tables back (for `kunta report`): each column as kunta
//! wrote it, text as text, whole numbers as whole numbers, values as numbers.

use super::error::{DataError, IoError, Place};
use super::frame::{ColumnData, Format, Frame};
use std::collections::HashMap;
use std::path::Path;

/// Output columns that hold whole numbers.
const INT_COLUMNS: &[&str] = &["year", "age", "jump_off", "horizon"];

/// Output columns that hold numbers (every other column of an output table is a key of
/// text). A CSV table keeps `area` codes such as `01` as text this way.
fn is_value_column(name: &str) -> bool {
    !matches!(
        name,
        "scenario"
            | "baseline"
            | "area"
            | "name"
            | "parent"
            | "sex"
            | "age_group"
            | "service"
            | "segment"
            | "unit"
            | "resource"
            | "component"
            | "flow"
            | "direction"
            | "quantity"
            | "group"
            | "method"
    )
}

/// Reads one table a run wrote (`.parquet` or `.csv`).
///
/// # Errors
/// [`IoError`] if the file cannot be read, or a value column holds something that is not
/// a number (naming the line and column).
pub fn read_frame(path: &Path) -> Result<Frame, IoError> {
    let bytes = super::read_input(path)?;
    let name = path.display().to_string();
    match Format::from_path(path) {
        Some(Format::Csv) => csv_frame(&bytes, &name),
        Some(Format::Parquet) => parquet_frame(bytes, &name),
        None => Err(IoError::Data(DataError::file(
            &name,
            "not an output table (expected a .parquet or .csv file)",
        ))),
    }
}

fn csv_frame(bytes: &[u8], file: &str) -> Result<Frame, IoError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| DataError::file(file, "not UTF-8 text (kunta writes its tables in UTF-8)"))?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| DataError::file(file, format!("not a CSV table ({e})")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cols: Vec<ColumnData> = headers
        .iter()
        .map(|h| {
            if INT_COLUMNS.contains(&h.as_str()) {
                ColumnData::Int(Vec::new())
            } else if is_value_column(h) {
                ColumnData::Float(Vec::new())
            } else {
                ColumnData::Coded {
                    levels: Vec::new(),
                    codes: Vec::new(),
                }
            }
        })
        .collect();
    let mut index: Vec<HashMap<String, u32>> = vec![HashMap::new(); headers.len()];
    for (k, rec) in r.records().enumerate() {
        let line = k as u64 + 2;
        let rec = rec.map_err(|e| DataError::at(file, Place::Line(line), e.to_string()))?;
        for (j, c) in cols.iter_mut().enumerate() {
            let v = rec.get(j).unwrap_or("");
            let bad = |what: &str| {
                DataError::at(file, Place::Line(line), format!("not {what}"))
                    .column(headers[j].clone())
                    .value(v.to_string())
            };
            match c {
                ColumnData::Int(x) => x.push(v.parse().map_err(|_| bad("a whole number"))?),
                ColumnData::Float(x) => x.push(if v.is_empty() {
                    f64::NAN
                } else {
                    v.parse().map_err(|_| bad("a number"))?
                }),
                ColumnData::Coded { levels, codes } => {
                    let code = *index[j].entry(v.to_string()).or_insert_with(|| {
                        levels.push(v.to_string());
                        (levels.len() - 1) as u32
                    });
                    codes.push(code);
                }
                ColumnData::Text(x) => x.push(v.to_string()),
                // Columns are read as whole numbers, numbers or text only.
                ColumnData::Repeat { .. } => {}
            }
        }
    }
    Ok(Frame {
        columns: headers.into_iter().zip(cols).collect(),
    })
}

#[cfg(not(feature = "parquet"))]
fn parquet_frame(_bytes: Vec<u8>, file: &str) -> Result<Frame, IoError> {
    Err(IoError::Data(DataError::file(
        file,
        "this build of kunta reads no Parquet (the `parquet` feature is off)",
    )))
}

#[cfg(feature = "parquet")]
fn parquet_frame(bytes: Vec<u8>, file: &str) -> Result<Frame, IoError> {
    use polars::prelude::{DataType, ParquetReader, SerReader};
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| DataError::file(file, format!("not a readable Parquet file ({e})")))?;
    let bad = |name: &str, e: String| IoError::Data(DataError::file(file, e).column(name));
    let mut columns = Vec::new();
    for c in df.columns() {
        let name = c.name().to_string();
        let data = if c.dtype() == &DataType::String {
            let mut levels = Vec::new();
            let mut index: HashMap<&str, u32> = HashMap::new();
            let s = c.str().map_err(|e| bad(&name, e.to_string()))?;
            let codes = s
                .iter()
                .map(|v| {
                    let v = v.unwrap_or("");
                    *index.entry(v).or_insert_with(|| {
                        levels.push(v.to_string());
                        (levels.len() - 1) as u32
                    })
                })
                .collect();
            ColumnData::Coded { levels, codes }
        } else if c.dtype().is_integer() {
            let v = c
                .cast(&DataType::Int64)
                .map_err(|e| bad(&name, e.to_string()))?;
            let v = v.i64().map_err(|e| bad(&name, e.to_string()))?;
            ColumnData::Int(v.iter().map(|x| x.unwrap_or_default()).collect())
        } else if c.dtype().is_primitive_numeric() {
            let v = c
                .cast(&DataType::Float64)
                .map_err(|e| bad(&name, e.to_string()))?;
            let v = v.f64().map_err(|e| bad(&name, e.to_string()))?;
            ColumnData::Float(v.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
        } else {
            return Err(bad(
                &name,
                format!("a column of {}, not text or numbers", c.dtype()),
            ));
        };
        columns.push((name, data));
    }
    Ok(Frame { columns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Frame {
        Frame {
            columns: vec![
                (
                    "area".into(),
                    ColumnData::Coded {
                        levels: vec!["01".into(), "02".into()],
                        codes: vec![0, 1, 0],
                    },
                ),
                ("year".into(), ColumnData::Int(vec![2024, 2024, 2025])),
                (
                    "population".into(),
                    ColumnData::Float(vec![1.5, f64::NAN, 3.0]),
                ),
            ],
        }
    }

    #[test]
    fn tables_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Csv, Format::Parquet] {
            let path = dir.path().join(format!("t.{}", format.extension()));
            sample().write(&path, format).unwrap();
            assert_eq!(read_frame(&path).unwrap(), sample(), "{format:?}");
        }
    }

    #[test]
    fn a_bad_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "area,year,population\n01,2024,x\n").unwrap();
        let e = read_frame(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("population") && e.contains("`x`"),
            "{e}"
        );
    }
}
