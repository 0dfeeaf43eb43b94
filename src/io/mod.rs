//! Reading and writing files: the only part of kunta that touches the file system.
//!
//! Every reader produces the same tidy [`LongTable`]: one column per dimension and one
//! value column. Formats read:
//! - CSV, UTF-8 or ISO-8859-1/15 (detected, or set with [`CsvOptions::encoding`]),
//!   separated by `,`, `;` or tab (detected);
//! - PxWeb CSV exports as downloaded from Statistics Finland (quoted title line, blank
//!   line, wide value columns such as `"Miehet 2019 Väestö 31.12."`), turned long;
//! - PC-Axis `.px` ([`px`]);
//! - JSON-stat 2.0 ([`jsonstat`]);
//! - Parquet.
//!
//! [`read_population`] turns any of them into a [`Population`]: it finds the area, sex,
//! age and year columns by name (`area`/`Alue`/`alue_23_20260101`, …), normalises sex
//! codes and open top-age labels, and skips total rows (`SSS`, `Yhteensä`, `KOKO MAA`,
//! sex `0`), reporting what it skipped.
//!
//! This module sits behind the default-on `io` feature; a build without it has no file
//! access. Parquet comes with the `parquet` feature (also on by default), the only
//! one that pulls in polars.

pub mod csv;
mod error;
pub mod estimate;
pub mod frame;
pub mod jsonstat;
pub mod labels;
pub mod output;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod population;
pub mod px;
pub mod rates;
pub mod readback;
pub mod run;
pub mod scenario;
pub mod table;
pub mod tables;
pub mod text;

pub use self::csv::CsvOptions;
pub use error::{DataError, IoError, Place};
pub use frame::{ColumnData, Format, Frame};
pub use population::{checked_records, is_population_shaped, to_population, Skipped};
pub use table::{Column, LongTable, Origin};
pub use text::TextEncoding;

use crate::population::{Population, Record};
use std::path::Path;

/// The formats kunta reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputFormat {
    /// CSV (tidy, or a PxWeb export).
    Csv,
    /// PC-Axis.
    Px,
    /// JSON-stat 2.0.
    JsonStat,
    /// Apache Parquet.
    Parquet,
}

impl InputFormat {
    /// The format of a file, by its extension, else by its first bytes.
    pub fn detect(path: &Path, head: &[u8]) -> InputFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("px") => InputFormat::Px,
            Some("json") => InputFormat::JsonStat,
            Some("parquet" | "pq") => InputFormat::Parquet,
            Some("csv" | "tsv" | "txt") => InputFormat::Csv,
            _ => {
                let start = head
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map_or(&[][..], |i| &head[i..]);
                if head.starts_with(b"PAR1") {
                    InputFormat::Parquet
                } else if start.starts_with(b"{") {
                    InputFormat::JsonStat
                } else if contains(head, b"DATA=")
                    || contains(head, b"STUB=")
                    || contains(head, b"HEADING=")
                {
                    InputFormat::Px
                } else {
                    InputFormat::Csv
                }
            }
        }
    }
}

/// Hex SHA-256 of bytes, for the manifest's input hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The largest input file kunta reads: far above any real table (Statistics
/// Finland's whole 11re series by municipality, sex and single year of age is a few
/// hundred MB as CSV), so that `/dev/zero` or a runaway file is refused at once.
pub const MAX_INPUT_BYTES: u64 = 2 << 30;

/// Reads an input file whole: only a regular file (a directory, a pipe or a device
/// is refused before it is opened, so a FIFO never blocks) of at most
/// [`MAX_INPUT_BYTES`].
///
/// # Errors
/// [`IoError::Input`] for what is not a regular file or too large; [`IoError::File`]
/// if it cannot be read.
pub fn read_input(path: &Path) -> Result<Vec<u8>, IoError> {
    use std::io::Read;
    let file_err = |source| IoError::File {
        path: path.to_path_buf(),
        action: "read",
        source,
    };
    let input_err = |message: String| IoError::Input {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(file_err)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a pipe, a socket or a device)"
        };
        return Err(input_err(format!(
            "is {what}: kunta reads its inputs from files"
        )));
    }
    let too_large = || {
        input_err(format!(
            "is larger than {} GiB, more than any table kunta reads",
            MAX_INPUT_BYTES >> 30
        ))
    };
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::fs::File::open(path)
        .map_err(file_err)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(file_err)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Reads a file of any supported format into a long table.
///
/// # Errors
/// [`IoError::File`] or [`IoError::Input`] if the file cannot be read (see
/// [`read_input`]); [`IoError::Data`] naming the line, column and value if its
/// content is wrong.
pub fn read_table(path: &Path, options: &CsvOptions) -> Result<LongTable, IoError> {
    read_table_bytes(read_input(path)?, path, options)
}

/// Reads a table from bytes already in memory; `path` names it in errors and its
/// extension chooses the format.
///
/// # Errors
/// As [`read_table`].
pub fn read_table_bytes(
    bytes: Vec<u8>,
    path: &Path,
    options: &CsvOptions,
) -> Result<LongTable, IoError> {
    let name = path.display().to_string();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::file(&name, "the file is empty").into());
    }
    Ok(
        match InputFormat::detect(path, &bytes[..bytes.len().min(4096)]) {
            InputFormat::Csv => csv::read(&bytes, &name, options)?,
            InputFormat::Px => px::read(&bytes, &name)?,
            InputFormat::JsonStat => jsonstat::read(&bytes, &name)?,
            #[cfg(feature = "parquet")]
            InputFormat::Parquet => parquet::read(bytes, &name)?,
            #[cfg(not(feature = "parquet"))]
            InputFormat::Parquet => {
                return Err(DataError::file(
                    &name,
                    "this build of kunta reads no Parquet (the `parquet` feature is off)",
                )
                .into())
            }
        },
    )
}

/// Reads a population table (any supported format) into a [`Population`].
///
/// # Errors
/// As [`read_table`], and a [`DataError`] naming the row, column and value for a
/// missing column, an unknown sex code, an unreadable age or year, a missing, negative
/// or non-finite population, or a cell given twice or not at all.
pub fn read_population(
    path: &Path,
    options: &CsvOptions,
) -> Result<(Population, Skipped), IoError> {
    let table = read_table(path, options)?;
    Ok(to_population(&table)?)
}

/// Population records as the tidy output table `area, sex, age, year, population`,
/// sorted by area (in order of first appearance), sex, year and age.
pub fn records_frame(records: &[Record]) -> Frame {
    let mut order: Vec<usize> = (0..records.len()).collect();
    let mut first_seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for r in records {
        let n = first_seen.len();
        first_seen.entry(r.area.as_str()).or_insert(n);
    }
    order.sort_by_key(|&i| {
        let r = &records[i];
        (first_seen[r.area.as_str()], r.sex, r.year, r.age)
    });
    Frame {
        columns: vec![
            (
                "area".into(),
                ColumnData::Text(order.iter().map(|&i| records[i].area.clone()).collect()),
            ),
            (
                "sex".into(),
                ColumnData::Text(
                    order
                        .iter()
                        .map(|&i| records[i].sex.as_str().to_string())
                        .collect(),
                ),
            ),
            (
                "age".into(),
                ColumnData::Int(order.iter().map(|&i| i64::from(records[i].age.0)).collect()),
            ),
            (
                "year".into(),
                ColumnData::Int(
                    order
                        .iter()
                        .map(|&i| i64::from(records[i].year.0))
                        .collect(),
                ),
            ),
            (
                "population".into(),
                ColumnData::Float(order.iter().map(|&i| records[i].value).collect()),
            ),
        ],
    }
}
