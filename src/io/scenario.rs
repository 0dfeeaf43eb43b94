//! Loading a scenario: its TOML file and the tables it names, from a directory or from
//! the example compiled into kunta.

use super::error::{DataError, IoError};
use super::text::TextEncoding;
use super::{read_table_bytes, to_population, CsvOptions};
use crate::population::{Population, Year};
use crate::scenario::{Problem, ScenarioFile};
use std::path::{Path, PathBuf};

/// Where a scenario's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A scenario file on disk; relative paths inside it are relative to its directory.
    File(PathBuf),
    /// The bundled example (see [`crate::example`]).
    Example,
}

impl Source {
    /// How the scenario file is named in messages.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Example => "example:scenario.toml".into(),
        }
    }

    /// The path a file named in the scenario is shown and read as.
    fn resolve(&self, rel: &str) -> PathBuf {
        match self {
            Source::File(p) => p.parent().unwrap_or(Path::new("")).join(rel),
            Source::Example => PathBuf::from(format!("example:{rel}")),
        }
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>, IoError> {
        let path = self.resolve(rel);
        match self {
            Source::File(_) => std::fs::read(&path).map_err(|source| IoError::File {
                path,
                action: "read",
                source,
            }),
            Source::Example => crate::example::FILES
                .iter()
                .find(|(n, _)| *n == rel)
                .map(|(_, c)| c.as_bytes().to_vec())
                .ok_or_else(|| IoError::File {
                    path,
                    action: "read",
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }),
        }
    }

    fn read_scenario_text(&self) -> Result<String, IoError> {
        let bytes = match self {
            Source::File(p) => std::fs::read(p).map_err(|source| IoError::File {
                path: p.clone(),
                action: "read",
                source,
            })?,
            Source::Example => self.read("scenario.toml")?,
        };
        String::from_utf8(bytes).map_err(|_| {
            IoError::Data(DataError::file(
                &self.name(),
                "the scenario file is not UTF-8 text",
            ))
        })
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The scenario file has problems (all of them are listed).
    #[error("{file}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Scenario {
        /// The scenario file.
        file: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// An input file could not be read or is wrong.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A scenario with its inputs read and checked.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Where it came from.
    pub source: Source,
    /// The scenario file.
    pub file: ScenarioFile,
    /// The population table (base year, and any published forecast years after it).
    pub population: Population,
    /// Things the user should know (skipped total rows, …).
    pub notes: Vec<String>,
}

fn csv_options(file: &ScenarioFile, scenario: &str) -> Result<CsvOptions, LoadError> {
    let encoding = match &file.population.encoding {
        None => TextEncoding::Detect,
        Some(e) => e.parse().map_err(|m: String| LoadError::Scenario {
            file: scenario.to_string(),
            problems: vec![Problem {
                line: None,
                key: Some("population.encoding".into()),
                message: m,
            }],
        })?,
    };
    Ok(CsvOptions {
        encoding,
        delimiter: None,
    })
}

/// Loads a scenario and its population, stopping at the first problem.
///
/// # Errors
/// [`LoadError::Scenario`] with every problem of the scenario file, or
/// [`LoadError::Io`] for the first input file that cannot be read or is wrong.
pub fn load(source: Source) -> Result<LoadedScenario, LoadError> {
    let name = source.name();
    let text = source.read_scenario_text()?;
    let file = ScenarioFile::parse(&text).map_err(|problems| LoadError::Scenario {
        file: name.clone(),
        problems,
    })?;
    let options = csv_options(&file, &name)?;
    let pop_path = source.resolve(&file.population.file);
    let table = read_table_bytes(source.read(&file.population.file)?, &pop_path, &options)?;
    let (population, skipped) = to_population(&table).map_err(IoError::from)?;
    check_base_year(&file, &population, &pop_path).map_err(|p| LoadError::Scenario {
        file: name.clone(),
        problems: vec![p],
    })?;
    let notes = skipped
        .message(&pop_path.display().to_string())
        .into_iter()
        .collect();
    Ok(LoadedScenario {
        source,
        file,
        population,
        notes,
    })
}

fn check_base_year(file: &ScenarioFile, p: &Population, path: &Path) -> Result<(), Problem> {
    let base = Year(file.scenario.base_year);
    if p.year_index(base).is_some() {
        return Ok(());
    }
    let years: Vec<String> = p.years().iter().map(ToString::to_string).collect();
    Err(Problem {
        line: None,
        key: Some("scenario.base_year".into()),
        message: format!(
            "{base} is not a year of {} (it has {})",
            path.display(),
            years.join(", ")
        ),
    })
}

/// Checks a scenario and every input it names without running anything, and returns
/// every problem found (an empty list means the scenario is valid).
pub fn validate(source: &Source) -> Vec<String> {
    let name = source.name();
    let text = match source.read_scenario_text() {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let file = match ScenarioFile::parse(&text) {
        Ok(f) => f,
        Err(problems) => return problems.iter().map(|p| format!("{name}: {p}")).collect(),
    };
    let mut out = Vec::new();
    match csv_options(&file, &name) {
        Err(e) => out.push(e.to_string()),
        Ok(options) => {
            let pop_path = source.resolve(&file.population.file);
            let pop = source
                .read(&file.population.file)
                .and_then(|b| read_table_bytes(b, &pop_path, &options))
                .and_then(|t| Ok(to_population(&t)?));
            match pop {
                Err(e) => out.push(e.to_string()),
                Ok((p, _)) => {
                    if let Err(p) = check_base_year(&file, &p, &pop_path) {
                        out.push(format!("{name}: {p}"));
                    }
                }
            }
            for rel in other_tables(&file) {
                let path = source.resolve(rel);
                if let Err(e) = source
                    .read(rel)
                    .and_then(|b| read_table_bytes(b, &path, &options))
                {
                    out.push(e.to_string());
                }
            }
        }
    }
    out
}

/// Every table file a scenario names besides the population.
fn other_tables(f: &ScenarioFile) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    v.extend(f.fertility.as_ref().map(|s| s.file.as_str()));
    v.extend(f.mortality.as_ref().map(|s| s.file.as_str()));
    for m in &f.migration {
        v.extend(
            [&m.counts, &m.total, &m.profile, &m.rates]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
    }
    v.extend(f.catchment.as_ref().map(|c| c.file.as_str()));
    v
}
