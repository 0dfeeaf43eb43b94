//! Output tables and how they are written: CSV or Parquet, always atomically.
//!
//! A table is first written to a temporary file beside its destination
//! (`.name.kunta-tmp-PID-N`) and renamed into place only when complete, so a failed run never
//! leaves a half-written table.

use super::error::IoError;
use super::table::LongTable;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The values of one output column.
#[derive(Debug, Clone)]
pub enum ColumnData {
    /// Text.
    Text(Vec<String>),
    /// Whole numbers.
    Int(Vec<i64>),
    /// Real numbers; NaN is a missing value (written as an empty cell or a null).
    Float(Vec<f64>),
    /// Text stored once per distinct value: row `i` is `levels[codes[i]]`. Long tables
    /// repeat a few area and sex names millions of times; this keeps them cheap.
    Coded {
        /// The distinct values.
        levels: Vec<String>,
        /// Per row, the index of its value.
        codes: Vec<u32>,
    },
    /// A key column that follows a pattern, which costs no memory per row: row `i` is
    /// row `(i / each) % n` of `values` (`n` its rows; a `Text`, `Int` or `Coded`
    /// column), for `len` rows. A long table's key columns (scenario, area, sex, age,
    /// year) are such patterns. [`ColumnData::expanded`] writes one out row by row.
    Repeat {
        /// The rows the pattern goes through.
        values: Box<ColumnData>,
        /// How many rows in a row each of them takes.
        each: usize,
        /// The column's number of rows.
        len: usize,
    },
}

impl ColumnData {
    /// A column of `len` rows going through `values`, each value `each` times in a row
    /// and the whole run repeated (see [`ColumnData::Repeat`]).
    pub fn repeat(values: ColumnData, each: usize, len: usize) -> ColumnData {
        // Text is kept coded, so that writing the pattern out costs a code a row, not
        // a string.
        let values = match values.expanded().into_owned() {
            ColumnData::Text(v) => {
                let mut levels: Vec<String> = Vec::new();
                let codes = v.iter().map(|x| level_code(&mut levels, x)).collect();
                ColumnData::Coded { levels, codes }
            }
            other => other,
        };
        ColumnData::Repeat {
            values: Box::new(values),
            each: each.max(1),
            len,
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Text(v) => v.len(),
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Coded { codes, .. } => codes.len(),
            // A pattern through no values has no rows.
            ColumnData::Repeat { values, len, .. } => {
                if values.is_empty() {
                    0
                } else {
                    *len
                }
            }
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column with one value per row: a [`ColumnData::Repeat`] written out, any
    /// other column borrowed as it is.
    pub fn expanded(&self) -> std::borrow::Cow<'_, ColumnData> {
        use std::borrow::Cow;
        match self {
            ColumnData::Repeat { values, each, .. } => {
                let rows: Vec<usize> = repeat_rows(values.len(), *each, 0..self.len()).collect();
                Cow::Owned(values.pick(&rows))
            }
            other => Cow::Borrowed(other),
        }
    }

    /// The rows `rows` of the column, in that order.
    pub(crate) fn pick(&self, rows: &[usize]) -> ColumnData {
        match self {
            ColumnData::Text(v) => ColumnData::Text(rows.iter().map(|&r| v[r].clone()).collect()),
            ColumnData::Int(v) => ColumnData::Int(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Float(v) => ColumnData::Float(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Coded { levels, codes } => ColumnData::Coded {
                levels: levels.clone(),
                codes: rows.iter().map(|&r| codes[r]).collect(),
            },
            ColumnData::Repeat { values, each, .. } => {
                let n = values.len().max(1);
                let own: Vec<usize> = rows.iter().map(|&r| (r / each.max(&1)) % n).collect();
                values.pick(&own)
            }
        }
    }

    /// The rows where `keep` is true.
    pub(crate) fn filter_rows(&self, keep: &[bool]) -> ColumnData {
        debug_assert_eq!(keep.len(), self.len(), "a keep flag a row");
        let rows: Vec<usize> = keep
            .iter()
            .enumerate()
            .filter(|(_, k)| **k)
            .map(|(i, _)| i)
            .collect();
        self.pick(&rows)
    }
}

/// Columns are equal when they hold the same rows: a pattern equals the column it
/// writes out, coded text equals the same text however it is coded, and a missing
/// value equals a missing value.
impl PartialEq for ColumnData {
    fn eq(&self, other: &ColumnData) -> bool {
        fn text_at(c: &ColumnData, i: usize) -> &str {
            match c {
                ColumnData::Text(v) => &v[i],
                ColumnData::Coded { levels, codes } => &levels[codes[i] as usize],
                _ => "",
            }
        }
        let (a, b) = (self.expanded(), other.expanded());
        match (a.as_ref(), b.as_ref()) {
            (
                x @ (ColumnData::Text(_) | ColumnData::Coded { .. }),
                y @ (ColumnData::Text(_) | ColumnData::Coded { .. }),
            ) => x.len() == y.len() && (0..x.len()).all(|i| text_at(x, i) == text_at(y, i)),
            (ColumnData::Int(x), ColumnData::Int(y)) => x == y,
            (ColumnData::Float(x), ColumnData::Float(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
            }
            _ => false,
        }
    }
}

/// The code of `v` among `levels` (a few distinct values), added at the end if new.
pub(crate) fn level_code(levels: &mut Vec<String>, v: &str) -> u32 {
    match levels.iter().position(|l| l == v) {
        Some(i) => i as u32,
        None => {
            levels.push(v.to_string());
            (levels.len() - 1) as u32
        }
    }
}

/// The rows of a pattern's `n` values that the rows `rows` of a
/// [`ColumnData::Repeat`] with `each` take, without a division a row.
pub(crate) fn repeat_rows(
    n: usize,
    each: usize,
    rows: std::ops::Range<usize>,
) -> impl Iterator<Item = usize> + Clone {
    let (n, each) = (n.max(1), each.max(1));
    let mut j = (rows.start / each) % n;
    let mut left = each - rows.start % each;
    rows.map(move |_| {
        let here = j;
        left -= 1;
        if left == 0 {
            left = each;
            j += 1;
            if j == n {
                j = 0;
            }
        }
        here
    })
}

/// A table to write: named columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    /// Columns in output order.
    pub columns: Vec<(String, ColumnData)>,
}

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Apache Parquet (Snappy-compressed where that pays), read by polars, pandas and
    /// arrow.
    #[default]
    Parquet,
    /// UTF-8 CSV with a header, `,`-separated.
    Csv,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }

    /// The format a file name asks for by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

impl Frame {
    /// Number of rows (0 for a table without columns).
    pub fn height(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// A rough measure of the work of writing the frame: its numbers (which are
    /// encoded and compressed value by value) and a tenth of its other cells.
    pub fn write_weight(&self) -> usize {
        self.columns
            .iter()
            .map(|(_, c)| match c {
                ColumnData::Float(v) => 10 * v.len(),
                other => other.len(),
            })
            .sum()
    }

    /// The frame with every [`ColumnData::Repeat`] written out row by row (borrowed
    /// as it is when it has none), for code that reads rows by index.
    pub fn expanded(&self) -> std::borrow::Cow<'_, Frame> {
        use std::borrow::Cow;
        if !self
            .columns
            .iter()
            .any(|(_, c)| matches!(c, ColumnData::Repeat { .. }))
        {
            return Cow::Borrowed(self);
        }
        Cow::Owned(Frame {
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.expanded().into_owned()))
                .collect(),
        })
    }

    /// Adds `other`'s rows after this frame's (an empty frame takes `other` whole).
    ///
    /// # Errors
    /// A sentence when the two do not have the same columns of the same kinds.
    pub fn append(&mut self, other: &Frame) -> Result<(), String> {
        if self.columns.is_empty() {
            *self = other.clone();
            return Ok(());
        }
        let names = |f: &Frame| f.columns.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        if names(self) != names(other) {
            return Err(format!(
                "tables with columns {:?} and {:?} cannot be put together",
                names(self),
                names(other)
            ));
        }
        for ((name, mine), (_, theirs)) in self.columns.iter_mut().zip(&other.columns) {
            // A pattern is written out before rows are added to it.
            if matches!(mine, ColumnData::Repeat { .. }) {
                *mine = mine.expanded().into_owned();
            }
            let theirs = theirs.expanded();
            match (mine, theirs.as_ref()) {
                (ColumnData::Text(a), ColumnData::Text(b)) => a.extend_from_slice(b),
                (ColumnData::Int(a), ColumnData::Int(b)) => a.extend_from_slice(b),
                (ColumnData::Float(a), ColumnData::Float(b)) => a.extend_from_slice(b),
                (
                    ColumnData::Coded { levels, codes },
                    ColumnData::Coded {
                        levels: l2,
                        codes: c2,
                    },
                ) => {
                    // The other's levels mapped onto ours, new ones added at the end.
                    let map: Vec<u32> = l2.iter().map(|l| level_code(levels, l)).collect();
                    codes.extend(c2.iter().map(|c| map[*c as usize]));
                }
                _ => return Err(format!("column `{name}` has different kinds of values")),
            }
        }
        Ok(())
    }

    /// A long table as a frame: its dimension columns as text, then its value column.
    pub fn from_long_table(t: &LongTable) -> Frame {
        let mut columns: Vec<(String, ColumnData)> = t
            .columns
            .iter()
            .map(|c| {
                let v = (0..t.len()).map(|r| c.get(r).to_string()).collect();
                (c.name.clone(), ColumnData::Text(v))
            })
            .collect();
        let values = t.values.iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        columns.push((t.value_name.clone(), ColumnData::Float(values)));
        if let Some(status) = &t.status {
            let v = status
                .iter()
                .map(|s| s.clone().unwrap_or_default())
                .collect();
            columns.push(("status".into(), ColumnData::Text(v)));
        }
        Frame { columns }
    }

    /// Writes the frame to `path` in `format`, atomically.
    ///
    /// # Errors
    /// [`IoError::File`] if the file cannot be created or renamed, [`IoError::Write`]
    /// if the writer fails. On error nothing is left at `path` or at the temporary name.
    pub fn write(&self, path: &Path, format: Format) -> Result<(), IoError> {
        write_atomically(path, |file| match format {
            Format::Csv => self.write_csv(file).map_err(|e| e.to_string()),
            Format::Parquet => self.write_parquet(file),
        })
    }

    fn write_csv(&self, file: File) -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let names: Vec<String> = self.columns.iter().map(|(n, _)| csv_field(n)).collect();
        writeln!(w, "{}", names.join(","))?;
        let mut line = String::new();
        for r in 0..self.height() {
            line.clear();
            for (k, (_, c)) in self.columns.iter().enumerate() {
                if k > 0 {
                    line.push(',');
                }
                csv_cell(c, r, &mut line);
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    #[cfg(not(feature = "parquet"))]
    fn write_parquet(&self, _file: File) -> Result<(), String> {
        Err("this build of kunta writes no Parquet (the `parquet` feature is off)".into())
    }

    #[cfg(feature = "parquet")]
    fn write_parquet(&self, file: File) -> Result<(), String> {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        super::parquet::write_frame(self, &mut w)?;
        w.into_inner()
            .map_err(|e| e.into_error().to_string())?
            .sync_all()
            .map_err(|e| e.to_string())
    }
}

/// Adds row `r` of `c` to a CSV line (a missing value as nothing).
fn csv_cell(c: &ColumnData, r: usize, line: &mut String) {
    use std::fmt::Write as _;
    match c {
        ColumnData::Text(v) => line.push_str(&csv_field(&v[r])),
        ColumnData::Coded { levels, codes } => {
            line.push_str(&csv_field(&levels[codes[r] as usize]))
        }
        ColumnData::Int(v) => {
            let _ = write!(line, "{}", v[r]);
        }
        ColumnData::Float(v) => {
            if !v[r].is_nan() {
                let _ = write!(line, "{}", v[r]);
            }
        }
        ColumnData::Repeat { values, each, .. } => {
            csv_cell(values, (r / each.max(&1)) % values.len().max(1), line)
        }
    }
}

/// Quotes a CSV field where it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The temporary name a file is written under before it is renamed into place.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique to the process and the call, so that runs at once never share one.
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(".{name}.kunta-tmp-{}-{n}", std::process::id()))
}

/// Writes a file through `write` under a temporary name and renames it into place.
/// On failure the temporary file is removed and `path` is untouched.
///
/// # Errors
/// [`IoError::File`] if the file cannot be created or renamed, [`IoError::Write`] with
/// the message `write` returned.
pub fn write_atomically<F>(path: &Path, write: F) -> Result<(), IoError>
where
    F: FnOnce(File) -> Result<(), String>,
{
    let tmp = temporary_path(path);
    let file = File::create(&tmp).map_err(|source| IoError::File {
        path: path.to_path_buf(),
        action: "create",
        source,
    })?;
    if let Err(message) = write(file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(IoError::Write {
            path: path.to_path_buf(),
            message,
        });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        IoError::File {
            path: path.to_path_buf(),
            action: "rename into place",
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_floats() {
        let f = Frame {
            columns: vec![
                (
                    "area".into(),
                    ColumnData::Text(vec!["a,b".into(), "c".into()]),
                ),
                ("n".into(), ColumnData::Int(vec![1, 2])),
                ("v".into(), ColumnData::Float(vec![0.1, f64::NAN])),
            ],
        };
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        f.write(&p, Format::Csv).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "area,n,v\n\"a,b\",1,0.1\nc,2,\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let e = write_atomically(&p, |_| Err("boom".into())).unwrap_err();
        assert!(e.to_string().contains("boom"));
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
