use std::fmt;
use std::path::PathBuf;

/// Where in a file a problem is: a text line, a data row, a cell of a cube or a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Place {
    /// Nowhere in particular (the file as a whole).
    File,
    /// A line of a text file, counted from 1.
    Line(u64),
    /// A row of a table without lines (Parquet), counted from 1.
    Row(u64),
    /// A cell of a cube in storage order (PX DATA, JSON-stat `value`), counted from 0 as
    /// JSON-stat counts them.
    Cell(u64),
    /// A keyword or JSON path (`VALUES("Alue")`, `size[2]`).
    Key(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File => Ok(()),
            Place::Line(n) => write!(f, "line {n}"),
            Place::Row(n) => write!(f, "row {n}"),
            Place::Cell(n) => write!(f, "cell {n}"),
            Place::Key(k) => write!(f, "{k}"),
        }
    }
}

/// A problem with the content of an input file, with everything needed to find it:
/// the file, the line or row, the column and the value.
///
/// It displays as one sentence, e.g.
/// `population.csv: line 5, column `age`, value `abc`: not an age (…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file (as the user named it).
    pub file: String,
    /// Line, row, cell or key.
    pub place: Place,
    /// The column or variable at fault, if any.
    pub column: Option<String>,
    /// The offending value as written, if any.
    pub value: Option<String>,
    /// What is wrong and, where it helps, what was expected.
    pub problem: String,
}

impl DataError {
    /// A problem with a file as a whole.
    pub fn file(file: &str, problem: impl Into<String>) -> Self {
        DataError {
            file: file.to_string(),
            place: Place::File,
            column: None,
            value: None,
            problem: problem.into(),
        }
    }

    /// A problem at a place in a file.
    pub fn at(file: &str, place: Place, problem: impl Into<String>) -> Self {
        DataError {
            place,
            ..DataError::file(file, problem)
        }
    }

    /// Names the column at fault.
    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Names the offending value.
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }
}

/// Shortens a value for an error message; binary junk should not flood a terminal.
fn shorten(v: &str) -> String {
    const MAX: usize = 60;
    let clean: String = v
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if clean.chars().count() > MAX {
        let s: String = clean.chars().take(MAX).collect();
        format!("{s}…")
    } else {
        clean
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        let mut parts = Vec::new();
        if self.place != Place::File {
            parts.push(self.place.to_string());
        }
        if let Some(c) = &self.column {
            parts.push(format!("column `{}`", shorten(c)));
        }
        if let Some(v) = &self.value {
            parts.push(format!("value `{}`", shorten(v)));
        }
        if parts.is_empty() {
            write!(f, ": {}", self.problem)
        } else {
            write!(f, ": {}: {}", parts.join(", "), self.problem)
        }
    }
}

impl std::error::Error for DataError {}

/// Errors of the `io` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused to read or write a file.
    #[error("{}: cannot {action}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done (`read`, `write`, `rename`).
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The content of an input file is wrong.
    #[error("{0}")]
    Data(#[from] DataError),
    /// An input that is not a file kunta reads.
    #[error("{}: {message}", path.display())]
    Input {
        /// The input.
        path: PathBuf,
        /// Why not.
        message: String,
    },
    /// The output directory cannot take a run's output.
    #[error("{}: {message}", path.display())]
    Output {
        /// The output directory.
        path: PathBuf,
        /// Why not.
        message: String,
    },
    /// Writing a table failed inside the Parquet or CSV writer.
    #[error("{}: cannot write the table: {message}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// What the writer reported.
        message: String,
    },
}
