use super::{Age, Sex, Year};

/// Why a [`Population`](super::Population) could not be built.
///
/// `record` positions count from 0 in the order the records were given; readers turn
/// them into file lines.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PopulationError {
    /// No areas, years or records.
    #[error("the population table is empty")]
    Empty,
    /// The array does not match the axes.
    #[error("population array has shape {found}, expected {expected}")]
    Shape {
        /// The expected shape.
        expected: String,
        /// The shape given.
        found: String,
    },
    /// Years out of order or an area code given twice on an axis.
    #[error("invalid population axes: {0}")]
    Unordered(&'static str),
    /// A negative or non-finite number of persons.
    #[error("population {value} for area `{area}`, {sex}, age {age}, year {year} is not a non-negative number")]
    Invalid {
        /// Position of the record, when built from records.
        record: Option<usize>,
        /// Area code.
        area: String,
        /// Sex.
        sex: Sex,
        /// Age.
        age: Age,
        /// Year.
        year: Year,
        /// The value given.
        value: f64,
    },
    /// The same cell given twice.
    #[error("area `{area}`, {sex}, age {age}, year {year} is given twice (records {first} and {second})")]
    Duplicate {
        /// Position of the first record of the cell.
        first: usize,
        /// Position of the repeated record.
        second: usize,
        /// Area code.
        area: String,
        /// Sex.
        sex: Sex,
        /// Age.
        age: Age,
        /// Year.
        year: Year,
    },
    /// A cell of the grid that no record gives.
    #[error("no population is given for area `{area}`, {sex}, age {age}, year {year}")]
    Missing {
        /// Area code.
        area: String,
        /// Sex.
        sex: Sex,
        /// Age.
        age: Age,
        /// Year.
        year: Year,
    },
}
