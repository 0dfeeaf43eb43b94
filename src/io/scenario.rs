//! Loading a scenario: its TOML file and the tables it names, from a directory or from
//! the example compiled into kunta.
//!
//! Loading never stops at the first problem: every input is read and checked, and all
//! problems are returned together, so that `kunta validate` can list them at once.

use super::error::{DataError, IoError};
use super::rates::{rate_rows, total_rows, Shape};
use super::text::TextEncoding;
use super::{read_table_bytes, to_population, CsvOptions, LongTable};
use crate::network::{Network, Unit, UnitCost};
use crate::population::{Population, Sex, Year};
use crate::projection::{Direction, Flow, FlowForm, ProjectionInputs, YearPath};
use crate::rates::{AgeIndex, RateError, RateRow, RateTable};
use crate::run::{CohortEffect, ControlTotals, Scenario, ValidScenario};
use crate::scenario::variant::Variant;
use crate::scenario::{
    parse_service_sex, MigrationSection, NumberOrTable, Param, ScenarioFile, ServiceSection,
};
use crate::services::{self, Cost, FixedPer, Segment, Service, ServiceError, Teaching, Value};
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
            Source::File(_) => super::read_input(&path),
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

    fn read_scenario(&self) -> Result<Vec<u8>, IoError> {
        match self {
            Source::File(p) => super::read_input(p),
            Source::Example => self.read("scenario.toml"),
        }
    }
}

/// Why a scenario could not be loaded: every problem found, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct LoadError {
    /// Every problem found.
    pub problems: Vec<String>,
}

/// One input file: its path as shown to the user and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path (relative to the working directory, or `example:…`).
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A scenario with its inputs read and checked.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Where it came from.
    pub source: Source,
    /// The scenario file.
    pub file: ScenarioFile,
    /// The scenario it describes, checked: the population table (base year, and any
    /// published forecast years after it), the rates, the alignment, the services and
    /// the service network, ready for [`crate::run::run`].
    pub scenario: ValidScenario,
    /// Every file read, with its hash.
    pub files: Vec<InputFile>,
    /// Things the user should know (skipped total rows, …).
    pub notes: Vec<String>,
    /// The areas' own names from `[areas] file`, in the population's order of areas
    /// (empty without one).
    pub area_names: Vec<AreaName>,
    /// The variants (MODEL.md §10), each merged onto this scenario and loaded, in the
    /// order given (the scenario file's, then those of `--variant` files).
    pub variants: Vec<LoadedVariant>,
    /// `[uncertainty] migration_rate_sd` by `(area, sex, age)`, when given.
    pub migration_rate_sd: Option<ndarray::Array3<f64>>,
}

/// An area's own name (and the area it belongs to), from `[areas] file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaName {
    /// The area's code as the population table gives it.
    pub area: String,
    /// Its name (the code when the table does not name it).
    pub name: String,
    /// The larger area it belongs to, if the table says.
    pub parent: Option<String>,
}

impl LoadedScenario {
    /// The name of an area (its code when it has none).
    pub fn area_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.area_names
            .iter()
            .find(|a| a.area == code)
            .map_or(code, |a| a.name.as_str())
    }
}

/// A variant of a scenario, loaded.
#[derive(Debug, Clone)]
pub struct LoadedVariant {
    /// The variant as written (name, description, baseline, effects).
    pub variant: Variant,
    /// The base merged with its overrides, loaded: its `scenario.name` is the
    /// variant's name.
    pub loaded: LoadedScenario,
}

impl LoadedScenario {
    /// The name of the scenario a variant is compared with: its `baseline`, or the
    /// base's name.
    pub fn baseline_of<'a>(&'a self, v: &'a LoadedVariant) -> &'a str {
        v.variant.baseline.as_deref().unwrap_or(&self.scenario.name)
    }

    /// The scenario named `name`: the base or one of its variants.
    pub fn named(&self, name: &str) -> Option<&LoadedScenario> {
        if self.scenario.name == name {
            return Some(self);
        }
        self.variants
            .iter()
            .find(|v| v.variant.name == name)
            .map(|v| &v.loaded)
    }
}

struct Loader<'a> {
    source: &'a Source,
    encoding: TextEncoding,
    problems: Vec<String>,
    files: Vec<InputFile>,
    notes: Vec<String>,
}

impl Loader<'_> {
    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn key_problem(&mut self, key: &str, message: impl std::fmt::Display) {
        let name = self.source.name();
        self.problem(format!("{name}: `{key}`: {message}"));
    }

    fn table(&mut self, rel: &str, value_column: Option<&str>) -> Option<LongTable> {
        let path = self.source.resolve(rel);
        let bytes = match self.source.read(rel) {
            Ok(b) => b,
            Err(e) => {
                self.problem(e.to_string());
                return None;
            }
        };
        self.files.push(InputFile {
            path: path.display().to_string(),
            sha256: super::sha256_hex(&bytes),
        });
        let options = CsvOptions {
            encoding: self.encoding,
            delimiter: None,
            value_column: value_column.map(str::to_string),
        };
        match read_table_bytes(bytes, &path, &options) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(e.to_string());
                None
            }
        }
    }

    /// Reads a rate table and builds it against the population's areas.
    fn rates(
        &mut self,
        rel: &str,
        column: Option<&str>,
        shape: Shape,
        what: &str,
        scale: f64,
        areas: &[String],
    ) -> Option<RateTable> {
        let t = self.table(rel, column)?;
        let rows = if shape.age || shape.sex {
            rate_rows(&t, shape, what)
        } else {
            total_rows(&t, what)
        };
        let rows: Vec<RateRow> = match rows {
            Ok(r) => r,
            Err(e) => {
                self.problem(e.to_string());
                return None;
            }
        };
        match RateTable::from_rows(&rows, scale, areas) {
            Ok(r) => Some(r),
            Err(e) => {
                let place = |row: usize| t.place(row).to_string();
                self.problem(match e {
                    RateError::Duplicate { first, second } => format!(
                        "{}: {}: the same cell is given again (first at {})",
                        t.source,
                        place(second),
                        place(first)
                    ),
                    other => format!("{}: {other}", t.source),
                });
                None
            }
        }
    }
}

/// A `tfr` or `multiplier` parameter as a year path; a table file is not a path.
fn year_path(p: &Param) -> Result<YearPath, String> {
    match p {
        Param::Constant(v) => Ok(YearPath::Constant(*v)),
        Param::Path { from, to } => linear(*from, *to),
        Param::Table(f) => Err(format!(
            "a table (`{f}`) is not accepted here; give a constant or {{ from = [year, value], to = [year, value] }}"
        )),
    }
}

/// A path from `from` to `to`: its first year must not be after its last.
fn linear(from: (i32, f64), to: (i32, f64)) -> Result<YearPath, String> {
    if from.0 > to.0 {
        return Err(format!(
            "{{ from = [{}, {}], to = [{}, {}] }}: the path's first year is after its last",
            from.0, from.1, to.0, to.1
        ));
    }
    Ok(YearPath::Linear { from, to })
}

/// Loads a scenario and every input it names, checking them all.
///
/// # Errors
/// [`LoadError`] with every problem found: in the scenario file (unknown keys, bad
/// values), in reading a file, or in a table's content.
pub fn load(source: Source) -> Result<LoadedScenario, LoadError> {
    load_with_variants(source, &[])
}

/// Loads a scenario as [`load`] does, with the variants of `variant_files` (files
/// holding `[[variant]]` tables, as `kunta run --variant FILE` names them) after the
/// scenario file's own. Every variant is merged onto the base and loaded as a
/// scenario; its problems are named with the variant.
///
/// # Errors
/// [`LoadError`] with every problem found in the base and in every variant.
pub fn load_with_variants(
    source: Source,
    variant_files: &[PathBuf],
) -> Result<LoadedScenario, LoadError> {
    let name = source.name();
    let text = source
        .read_scenario()
        .map_err(|e| LoadError {
            problems: vec![e.to_string()],
        })
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| LoadError {
                problems: vec![
                    DataError::file(&name, "the scenario file is not UTF-8 text").to_string(),
                ],
            })
        })?;
    let file = ScenarioFile::parse(&text).map_err(|problems| LoadError {
        problems: problems.iter().map(|p| format!("{name}: {p}")).collect(),
    })?;
    let mut problems = Vec::new();
    // The `[[variant]]` tables as the scenario's parse read them (the text is not
    // parsed again).
    let mut doc = toml::Table::new();
    if !file.variant.is_empty() {
        let tables = file.variant.iter().cloned().map(toml::Value::Table);
        doc.insert("variant".into(), toml::Value::Array(tables.collect()));
    }
    let mut variants = Variant::split(&doc).unwrap_or_else(|p| {
        problems.extend(p.into_iter().map(|m| format!("{name}: {m}")));
        Vec::new()
    });
    for path in variant_files {
        match read_variant_file(path) {
            Ok(v) => variants.extend(v),
            Err(p) => problems.extend(p),
        }
    }
    let base = load_file(&source, file, &[]);
    let base = match base {
        Ok(b) => Some(b),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    let loaded_variants = load_variants(&source, &text, variants, &mut problems);
    match base {
        Some(mut b) if problems.is_empty() => {
            b.variants = loaded_variants;
            Ok(b)
        }
        _ => Err(LoadError { problems }),
    }
}

/// The variants of a file given with `--variant`: a TOML document of `[[variant]]`
/// tables and nothing else.
fn read_variant_file(path: &Path) -> Result<Vec<Variant>, Vec<String>> {
    let shown = path.display().to_string();
    let bytes = super::read_input(path).map_err(|e| vec![e.to_string()])?;
    let text = String::from_utf8(bytes).map_err(|_| {
        vec![DataError::file(&shown, "the variant file is not UTF-8 text").to_string()]
    })?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
        vec![match line {
            Some(l) => format!("{shown}: line {l}: {}", e.message().trim()),
            None => format!("{shown}: {}", e.message().trim()),
        }]
    })?;
    let others: Vec<&String> = doc.keys().filter(|k| *k != "variant").collect();
    if !others.is_empty() {
        return Err(vec![format!(
            "{shown}: a variant file holds only [[variant]] tables, not `{}`",
            others[0]
        )]);
    }
    if !doc.contains_key("variant") {
        return Err(vec![format!("{shown}: the file holds no [[variant]]")]);
    }
    Variant::split(&doc).map_err(|p| p.into_iter().map(|m| format!("{shown}: {m}")).collect())
}

/// Merges each variant onto the base document `text` and loads it; problems go to
/// `problems`, each named with its variant.
fn load_variants(
    source: &Source,
    text: &str,
    variants: Vec<Variant>,
    problems: &mut Vec<String>,
) -> Vec<LoadedVariant> {
    if variants.is_empty() {
        return Vec::new();
    }
    let mut doc: toml::Table = toml::from_str(text).unwrap_or_default();
    doc.remove("variant");
    let base_name = doc
        .get("scenario")
        .and_then(|s| s.get("name"))
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let mut out = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        let tag = format!("variant `{}`", v.name);
        if v.name == base_name || names[..k].contains(&v.name.as_str()) {
            problems.push(format!(
                "{tag}: the name is taken (by the base scenario or another variant): every scenario needs its own"
            ));
            continue;
        }
        if let Some(b) = &v.baseline {
            if *b != base_name && !names.contains(&b.as_str()) {
                problems.push(format!(
                    "{tag}: `baseline` `{b}` is neither the base scenario `{base_name}` nor a variant"
                ));
            } else if baseline_cycle(&variants, k) {
                problems.push(format!(
                    "{tag}: `baseline` `{b}` leads back to the variant itself"
                ));
            }
        }
        if let Some(s) = v.overrides.get("scenario").and_then(toml::Value::as_table) {
            for key in ["base_year", "end_year", "discount_rate", "name"] {
                if s.contains_key(key) {
                    problems.push(format!(
                        "{tag}: `scenario.{key}` cannot change in a variant (variants are compared year by year with their baseline)"
                    ));
                }
            }
        }
        let mut effects = Vec::new();
        for (j, e) in v.effects.iter().enumerate() {
            match parse_effect(e) {
                Ok(e) => effects.push(e),
                Err(m) => problems.push(format!("{tag}: `effect[{j}]`: {m}")),
            }
        }
        let merged = match super::super::scenario::variant::merge(&doc, &v.overrides) {
            Ok(mut m) => {
                if let Some(toml::Value::Table(s)) = m.get_mut("scenario") {
                    s.insert("name".into(), toml::Value::String(v.name.clone()));
                }
                m
            }
            Err(e) => {
                problems.push(format!("{tag}: {e}"));
                continue;
            }
        };
        let file = match ScenarioFile::from_table(merged) {
            Ok(f) => f,
            Err(p) => {
                problems.extend(p.iter().map(|p| format!("{tag}: {p}")));
                continue;
            }
        };
        match load_file(source, file, &effects) {
            Ok(l) => out.push(LoadedVariant {
                variant: v.clone(),
                loaded: l,
            }),
            Err(e) => problems.extend(e.problems.iter().map(|p| format!("{tag}: {p}"))),
        }
    }
    out
}

/// A `[[variant.effect]]` table: `exposure = { service, years = [e0, e1] }`,
/// `outcome` and `factor`.
fn parse_effect(t: &toml::Table) -> Result<CohortEffect, String> {
    for k in t.keys() {
        if !matches!(k.as_str(), "exposure" | "outcome" | "factor") {
            return Err(format!(
                "`{k}` is an unknown key (an effect has exposure, outcome and factor)"
            ));
        }
    }
    let exposure = t
        .get("exposure")
        .and_then(toml::Value::as_table)
        .ok_or("needs `exposure = { service = \"…\", years = [first, last] }`")?;
    for k in exposure.keys() {
        if !matches!(k.as_str(), "service" | "years") {
            return Err(format!("`exposure.{k}` is an unknown key"));
        }
    }
    let service = exposure
        .get("service")
        .and_then(toml::Value::as_str)
        .ok_or("`exposure.service` must name a service")?;
    let years: Vec<i64> = exposure
        .get("years")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_integer).collect())
        .unwrap_or_default();
    let [e0, e1] = years[..] else {
        return Err("`exposure.years` must be two years: [first, last]".into());
    };
    let year =
        |y: i64| i32::try_from(y).map_err(|_| format!("`exposure.years`: {y} is not a year"));
    let outcome = t
        .get("outcome")
        .and_then(toml::Value::as_str)
        .ok_or("`outcome` must name a service")?;
    let factor = match t.get("factor") {
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        _ => return Err("`factor` must be a number (0.85: 15 % fewer)".into()),
    };
    Ok(CohortEffect {
        exposure: service.to_string(),
        years: (year(e0)?, year(e1)?),
        outcome: outcome.to_string(),
        factor,
    })
}

/// Whether following the baselines from variant `k` comes back to it.
fn baseline_cycle(variants: &[Variant], k: usize) -> bool {
    let mut at = k;
    for _ in 0..=variants.len() {
        let Some(b) = &variants[at].baseline else {
            return false;
        };
        match variants.iter().position(|v| v.name == *b) {
            Some(next) if next == k => return true,
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

/// Loads the inputs a parsed scenario file names and checks them.
fn load_file(
    source: &Source,
    file: ScenarioFile,
    effects: &[CohortEffect],
) -> Result<LoadedScenario, LoadError> {
    let source = source.clone();
    let name = source.name();
    let mut l = Loader {
        source: &source,
        encoding: TextEncoding::Detect,
        problems: Vec::new(),
        files: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(e) = &file.population.encoding {
        match e.parse() {
            Ok(enc) => l.encoding = enc,
            Err(m) => l.key_problem("population.encoding", m),
        }
    }
    let keep = file.population.areas.as_deref();
    let population =
        l.table(&file.population.file, None).and_then(
            |t| match super::population::to_population_of(&t, keep) {
                Ok((p, skipped)) => {
                    l.notes.extend(skipped.message(&t.source));
                    Some(p)
                }
                Err(e) => {
                    l.problem(e.to_string());
                    None
                }
            },
        );
    let Some(population) = population else {
        // Without a population nothing else can be checked against it; still list the
        // files that cannot be read at all.
        for rel in other_files(&file) {
            if let Err(e) = source.read(rel) {
                l.problem(e.to_string());
            }
        }
        return Err(LoadError {
            problems: l.problems,
        });
    };
    let base = file.scenario.base_year;
    if population.year_index(Year(base)).is_none() {
        let years: Vec<String> = population.years().iter().map(ToString::to_string).collect();
        l.key_problem(
            "scenario.base_year",
            format!(
                "{base} is not a year of {} (it has {})",
                source.resolve(&file.population.file).display(),
                years.join(", ")
            ),
        );
    }
    let area_names = file
        .areas
        .as_ref()
        .map(|a| load_area_names(&mut l, &a.file, &population))
        .unwrap_or_default();
    if population.year_index(Year(base)).is_some() {
        let notes = aggregate_notes(&population, Year(base), &area_names, &file.population.file);
        l.notes.extend(notes);
    }
    let inputs = load_inputs(&mut l, &file, &population);
    let services = load_services(&mut l, &file, &population);
    let alignment = file
        .alignment
        .as_ref()
        .and_then(|a| load_alignment(&mut l, a, &population));
    let network = load_network(&mut l, &file, &population);
    let migration_rate_sd = file
        .uncertainty
        .as_ref()
        .and_then(|u| u.migration_rate_sd.clone())
        .and_then(|k| load_migration_rate_sd(&mut l, &k, &population));
    if inputs.is_none() && l.problems.is_empty() {
        let missing =
            (base + 1..=file.scenario.end_year).find(|y| population.year_index(Year(*y)).is_none());
        if let Some(y) = missing {
            l.key_problem(
                "scenario.end_year",
                format!(
                    "year {y} is not in the population table, and without [fertility] and [mortality] it cannot be projected"
                ),
            );
        }
    }
    if !l.problems.is_empty() {
        return Err(LoadError {
            problems: l.problems,
        });
    }
    let s = &file.scenario;
    let mut scenario = Scenario {
        name: s.name.clone(),
        base_year: s.base_year,
        end_year: s.end_year,
        discount_rate: s.discount_rate.unwrap_or(0.0),
        population,
        inputs,
        alignment,
        services,
        network,
    };
    for (j, e) in effects.iter().enumerate() {
        if let Err(err) = scenario.apply_effect(e) {
            return Err(LoadError {
                problems: vec![format!("{name}: `effect[{j}]`: {err}")],
            });
        }
    }
    let scenario = scenario.validate().map_err(|e| LoadError {
        problems: vec![format!("{name}: {e}")],
    })?;
    Ok(LoadedScenario {
        files: l.files,
        notes: l.notes,
        source,
        file,
        scenario,
        area_names,
        variants: Vec::new(),
        migration_rate_sd,
    })
}

/// A table `[area], [sex], age, value` that holds for every year (an improvement,
/// a migration rate spread): read, each value checked by `valid` (a bad one named
/// by line, column and value with `invalid`), and a year column refused. Returns the
/// table's source and its values; every problem goes to the loader.
fn yearless_age_table(
    l: &mut Loader<'_>,
    rel: &str,
    what: &str,
    values: &str,
    valid: fn(f64) -> bool,
    invalid: &str,
    areas: &[String],
) -> Option<(String, RateTable)> {
    let t = l.table(rel, None)?;
    let shape = Shape {
        sex: super::rates::has_role(&t, super::labels::Role::Sex),
        age: true,
        signed: false,
    };
    let rows = match rate_rows(&t, shape, what) {
        Ok(r) => r,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    if super::rates::has_role(&t, super::labels::Role::Year) {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        l.problem(format!(
            "{}: {article} {what} table is by `[area], [sex], age`; its {values} hold every year, so it takes no year column",
            t.source
        ));
        return None;
    }
    if let Some(i) = rows.iter().position(|r| !valid(r.value)) {
        l.problem(
            DataError::at(&t.source, t.place(i), invalid)
                .column(t.value_column(i).to_string())
                .value(rows[i].value.to_string())
                .to_string(),
        );
        return None;
    }
    match RateTable::from_rows(&rows, 1.0, areas) {
        Ok(r) => Some((t.source.clone(), r)),
        Err(e) => {
            l.problem(format!("{}: {e}", t.source));
            None
        }
    }
}

/// `[uncertainty] migration_rate_sd`, a number or a table `[area], [sex], age, sd`,
/// by `(area, sex, age)` of the population (ages the table leaves out get 0).
fn load_migration_rate_sd(
    l: &mut Loader<'_>,
    key: &NumberOrTable,
    pop: &Population,
) -> Option<ndarray::Array3<f64>> {
    let dim = (pop.areas().len(), 2, pop.n_ages());
    let rel = match key {
        // A number is checked with the other keys.
        NumberOrTable::Rate(r) => return Some(ndarray::Array3::from_elem(dim, *r)),
        NumberOrTable::Table(rel) => rel,
    };
    let what = "migration rate spread";
    let (source, table) = yearless_age_table(
        l,
        rel,
        what,
        "spreads",
        |v| v >= 0.0 && v.is_finite(),
        "a spread must be a number, 0 or more",
        pop.areas(),
    )?;
    // An area-keyed table names every area: a missing one would silently get no
    // spread.
    if let Some(a) = (0..dim.0).find(|a| !table.covers_area(*a)) {
        l.problem(format!(
            "{source}: the {what} table has no rows for area `{}` (give every area, or a table without an area column)",
            pop.areas()[a]
        ));
        return None;
    }
    // Ages above the table's top take the top's value (a table up to `85` serves
    // a population to 100); ages below its first are 0.
    let top = table.age_range().map_or(0, |(_, hi)| usize::from(hi));
    Some(ndarray::Array3::from_shape_fn(dim, |(a, s, x)| {
        table
            .get(a, 0, Sex::ALL[s], AgeIndex::Age(x.min(top) as u16))
            .unwrap_or(0.0)
    }))
}

/// `[mortality] improvement` as a table `[area], [sex], age, rate`: the mortality
/// table becomes one of every year from the base year to the end year with
/// `q_y = q · (1 − r)^(y − base_year)`, `r` by area, sex and age (MODEL.md §2).
fn improved_by_table(
    l: &mut Loader<'_>,
    rel: &str,
    m: &RateTable,
    file: &ScenarioFile,
    areas: &[String],
) -> Option<RateTable> {
    let (_, imp) = yearless_age_table(
        l,
        rel,
        "improvement",
        "rates",
        |v| (0.0..1.0).contains(&v),
        "a yearly improvement must be at least 0 and below 1",
        areas,
    )?;
    let (base, end) = (file.scenario.base_year, file.scenario.end_year);
    let Some((lo, hi)) = m.age_range() else {
        return Some(m.clone());
    };
    let ages: Vec<AgeIndex> = (lo..=hi)
        .map(AgeIndex::Age)
        .chain(m.has_birth().then_some(AgeIndex::Birth))
        .collect();
    let mut out = Vec::new();
    for (a, area) in areas.iter().enumerate() {
        for y in base..=end {
            let Ok(ys) = m.year_slot(y) else { continue };
            for sex in crate::population::Sex::ALL {
                for &age in &ages {
                    let Some(q) = m.get(a, ys, sex, age) else {
                        continue;
                    };
                    // Ages the improvement table leaves out do not improve.
                    let r = imp.get(a, 0, sex, age).unwrap_or(0.0);
                    out.push(RateRow {
                        area: Some(area.clone()),
                        year: Some(y),
                        sex: Some(sex),
                        age: Some(age),
                        value: q * (1.0 - r).powi(y - base),
                    });
                }
            }
        }
    }
    match RateTable::from_rows(&out, 1.0, areas) {
        Ok(t) => Some(t),
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.resolve(rel).display()));
            None
        }
    }
}

/// Reads `[areas] file` (`area, name[, parent]`): every area of the population gets a
/// name (its code where the table has none); rows for areas the population does not
/// have are left out (a national table of names serves one municipality's run).
fn load_area_names(l: &mut Loader<'_>, rel: &str, pop: &Population) -> Vec<AreaName> {
    let path = l.source.resolve(rel);
    let bytes = match l.source.read(rel) {
        Ok(b) => b,
        Err(e) => {
            l.problem(e.to_string());
            return Vec::new();
        }
    };
    l.files.push(InputFile {
        path: path.display().to_string(),
        sha256: super::sha256_hex(&bytes),
    });
    let file = path.display().to_string();
    let names = match super::csv::read_pairs(&bytes, &file, "area", "name") {
        Ok(p) => p,
        Err(e) => {
            l.problem(e.to_string());
            return Vec::new();
        }
    };
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let has_parent = String::from_utf8_lossy(header)
        .split([',', ';', '\t'])
        .any(|h| h.trim().trim_matches('"').eq_ignore_ascii_case("parent"));
    let parents = if has_parent {
        match super::csv::read_pairs(&bytes, &file, "area", "parent") {
            Ok(p) => p,
            Err(e) => {
                l.problem(e.to_string());
                return Vec::new();
            }
        }
    } else {
        Vec::new()
    };
    let mut out: Vec<AreaName> = pop
        .areas()
        .iter()
        .map(|a| AreaName {
            area: a.clone(),
            name: a.clone(),
            parent: None,
        })
        .collect();
    let mut seen: std::collections::HashMap<String, u64> = Default::default();
    for (k, (area, name, line)) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(area.clone(), line) {
            l.problem(format!(
                "{file}: line {line}: area `{area}` is named twice (first on line {first})"
            ));
            continue;
        }
        if name.is_empty() {
            l.problem(format!(
                "{file}: line {line}, column `name`: area `{area}` has an empty name"
            ));
            continue;
        }
        if let Some(i) = pop.area_index(&area) {
            out[i.0].name = name;
            if let Some((_, p, _)) = parents.get(k) {
                out[i.0].parent = (!p.is_empty()).then(|| p.clone());
            }
        }
    }
    out
}

/// Warnings for a population table that holds aggregates beside the areas they sum:
/// an area that is the sum of all the others in the base year (a whole country or
/// region fed with its municipalities), an area whose children by `[areas]` parent are
/// all there and sum to it, and region (`MK…`) or sub-region (`SK…`) codes beside
/// municipality (`KU…`) codes. Such a table counts people twice.
fn aggregate_notes(pop: &Population, base: Year, names: &[AreaName], file: &str) -> Vec<String> {
    let Some(y) = pop.year_index(base) else {
        return Vec::new();
    };
    let v = pop.values();
    let cells = |a: usize| v.slice(ndarray::s![y.0, a, .., ..]);
    let na = pop.areas().len();
    let mut out = Vec::new();
    let advice = "it would be counted twice: keep only the areas wanted with `population.areas`";
    // The sum of each sex and age over all areas.
    if na >= 3 {
        let mut total = cells(0).to_owned();
        for a in 1..na {
            total += &cells(a);
        }
        for a in 0..na {
            let c = cells(a);
            let sum: f64 = c.sum();
            let same = sum > 0.0
                && c.iter()
                    .zip(total.iter())
                    .all(|(x, t)| (t - 2.0 * x).abs() <= 0.5 + 1e-9 * t.abs());
            if same {
                out.push(format!(
                    "{file}: area `{}` is the sum of all the other areas in {base} (a whole country or region?): {advice}",
                    pop.areas()[a]
                ));
            }
        }
    }
    // Parents from the names table.
    let by_code: std::collections::HashMap<&str, usize> = pop
        .areas()
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    let mut children: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for n in names {
        if let (Some(p), Some(&i)) = (n.parent.as_deref(), by_code.get(n.area.as_str())) {
            children.entry(p).or_default().push(i);
        }
    }
    for (parent, kids) in children {
        let Some(&p) = by_code.get(parent) else {
            continue;
        };
        let mut sum = cells(kids[0]).to_owned();
        for k in &kids[1..] {
            sum += &cells(*k);
        }
        let same = cells(p)
            .iter()
            .zip(sum.iter())
            .all(|(x, s)| (x - s).abs() <= 0.5 + 1e-9 * s.abs());
        if same {
            out.push(format!(
                "{file}: area `{parent}` is the sum of its {} areas in the table (by `[areas]` parent): {advice}",
                kids.len()
            ));
        }
    }
    // Statistics Finland's region codes beside municipality codes.
    let upper = |a: &str| a.get(..2).map(str::to_ascii_uppercase);
    let has_ku = pop
        .areas()
        .iter()
        .any(|a| upper(a).as_deref() == Some("KU"));
    if has_ku {
        let regions: Vec<&str> = pop
            .areas()
            .iter()
            .filter(|a| {
                matches!(upper(a).as_deref(), Some("MK" | "SK"))
                    && a[2..].chars().all(|c| c.is_ascii_digit())
            })
            .map(String::as_str)
            .collect();
        if !regions.is_empty() {
            out.push(format!(
                "{file}: {} (`{}`) beside municipalities (`KU…`): {advice}",
                if regions.len() == 1 {
                    "a region code".to_string()
                } else {
                    format!("{} region codes", regions.len())
                },
                regions[..regions.len().min(5)].join("`, `")
            ));
        }
    }
    out
}

/// A catchment redrawn from a year: the year, the shares by unit and area, and the
/// (service, area)s its rows give.
type Period = (
    i32,
    Vec<Vec<f64>>,
    std::collections::HashSet<(usize, usize)>,
);

/// Builds the service network from the `[[unit]]`s and the `[catchment]` table, and
/// checks the table: known areas and units, shares between 0 and 1, no cell given
/// twice, and each area's shares of a service's units summing to 1. A service with a
/// single unit and no catchment rows sends every area's demand to that unit.
fn load_network(l: &mut Loader<'_>, file: &ScenarioFile, pop: &Population) -> Option<Network> {
    if file.unit.is_empty() {
        return None;
    }
    let na = pop.areas().len();
    let units: Vec<Unit> = file
        .unit
        .iter()
        .map(|u| Unit {
            id: u.id.clone(),
            service: file
                .service
                .iter()
                .position(|s| s.id == u.service)
                .unwrap_or(usize::MAX),
            capacity: u.capacity,
            floor_area_m2: u.floor_area,
            opens: u.opens,
            closes: u.closes,
            spare_target: u.spare_target.unwrap_or(0.0),
            cost: u.cost.as_ref().map_or_else(Default::default, |c| UnitCost {
                per_m2: c.per_m2.unwrap_or(0.0),
                fixed: c.fixed.unwrap_or(0.0),
                investment: c.investment.unwrap_or(0.0),
                investment_year: c.investment_year,
                growth: c.growth.unwrap_or(0.0),
            }),
        })
        .collect();
    let mut shares = vec![vec![0.0; na]; units.len()];
    let mut ok = true;
    let mut source = String::new();
    // Per (service, area): the lines of its rows, and whether a row of it was refused
    // (its sum is then not checked; the row is reported instead). An area with a row
    // of an unknown unit is left unchecked for every service.
    let mut lines: std::collections::HashMap<(usize, usize), Vec<String>> =
        std::collections::HashMap::new();
    let mut refused: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    let mut unchecked_areas: std::collections::HashSet<usize> = std::collections::HashSet::new();
    // Catchments redrawn from a year after the base year (rows with a `year`): per
    // period its year, its shares, and the (service, area)s it gives; the lines and
    // refusals of a later period are keyed by its year.
    let mut later: Vec<Period> = Vec::new();
    let mut later_lines: std::collections::HashMap<(i32, usize, usize), Vec<String>> =
        std::collections::HashMap::new();
    let mut later_refused: std::collections::HashSet<(i32, usize, usize)> =
        std::collections::HashSet::new();
    let base_year = file.scenario.base_year;
    if let Some(c) = &file.catchment {
        let t = l.table(&c.file, Some("share"))?;
        source.clone_from(&t.source);
        let column = |name: &str| {
            t.columns
                .iter()
                .find(|c| c.name.trim().eq_ignore_ascii_case(name))
        };
        let (Some(area_col), Some(unit_col)) = (column("area"), column("unit")) else {
            let found: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("`{}`", c.name))
                .chain(std::iter::once(format!("`{}`", t.value_name)))
                .collect();
            let missing: Vec<&str> = ["area", "unit"]
                .into_iter()
                .filter(|n| column(n).is_none())
                .collect();
            l.problem(format!(
                "{}: the catchment table has no `{}` column (it has {}); it needs `area, unit, share`",
                t.source,
                missing.join("` or `"),
                found.join(", ")
            ));
            return None;
        };
        let year_col = column("year");
        let mut row_year = vec![None; t.len()];
        if let Some(yc) = year_col {
            for (row, y) in row_year.iter_mut().enumerate() {
                match crate::io::labels::parse_year(yc.get(row)) {
                    Some(v) if v > base_year => *y = Some(v),
                    Some(_) => {}
                    None => {
                        l.problem(
                            DataError::at(
                                &t.source,
                                t.place(row),
                                "not a year (expected four digits such as 2030)",
                            )
                            .column(yc.name.clone())
                            .value(yc.get(row).to_string())
                            .to_string(),
                        );
                        return None;
                    }
                }
            }
            let mut ys: Vec<i32> = row_year.iter().flatten().copied().collect();
            ys.sort_unstable();
            ys.dedup();
            later = ys
                .into_iter()
                .map(|y| (y, vec![vec![0.0; na]; units.len()], Default::default()))
                .collect();
        }
        let mut first_at: std::collections::HashMap<(Option<i32>, usize, usize), usize> =
            std::collections::HashMap::new();
        for (row, &year) in row_year.iter().enumerate() {
            let at = |problem: String, column: &str, value: &str| {
                DataError::at(&t.source, t.place(row), problem)
                    .column(column.to_string())
                    .value(value.to_string())
                    .to_string()
            };
            let (area, unit) = (area_col.get(row), unit_col.get(row));
            let Some(a) = pop.area_index(area) else {
                l.problem(at(
                    "the area has no population".into(),
                    &area_col.name,
                    area,
                ));
                ok = false;
                continue;
            };
            let Some(u) = units.iter().position(|x| x.id == unit) else {
                l.problem(at("no [[unit]] has this id".into(), &unit_col.name, unit));
                ok = false;
                unchecked_areas.insert(a.0);
                continue;
            };
            let key = (units[u].service, a.0);
            let period = year.and_then(|y| later.iter().position(|p| p.0 == y));
            match period {
                None => lines.entry(key).or_default().push(t.place(row).to_string()),
                Some(p) => {
                    later[p].2.insert(key);
                    later_lines
                        .entry((later[p].0, key.0, key.1))
                        .or_default()
                        .push(t.place(row).to_string());
                }
            }
            let mut refuse = |key: (usize, usize)| match period {
                None => {
                    refused.insert(key);
                }
                Some(p) => {
                    later_refused.insert((later[p].0, key.0, key.1));
                }
            };
            let share = match t.values[row] {
                Some(v) if (0.0..=1.0).contains(&v) => v,
                v => {
                    l.problem(at(
                        "a share must be a number between 0 and 1".into(),
                        t.value_column(row),
                        &v.map_or_else(|| "(missing)".into(), |v| v.to_string()),
                    ));
                    ok = false;
                    refuse(key);
                    continue;
                }
            };
            if let Some(first) = first_at.insert((year, a.0, u), row) {
                l.problem(format!(
                    "{}: {}: area `{area}` and unit `{unit}` are given again (first at {})",
                    t.source,
                    t.place(row),
                    t.place(first)
                ));
                ok = false;
                refuse(key);
            }
            match period {
                None => shares[u][a.0] = share,
                Some(p) => later[p].1[u][a.0] = share,
            }
        }
    }
    if units.iter().any(|u| u.service == usize::MAX) {
        // Reported by the scenario file's own checks.
        return None;
    }
    for (s, sv) in file.service.iter().enumerate() {
        let of: Vec<usize> = (0..units.len())
            .filter(|u| units[*u].service == s)
            .collect();
        // Whether any catchment row names a unit of the service.
        let has_rows = lines.keys().any(|(sv, _)| *sv == s);
        match (of.as_slice(), has_rows) {
            ([], _) => {}
            ([only], false) => shares[*only].fill(1.0),
            (_, false) => {
                l.key_problem(
                    "catchment.file",
                    format!(
                        "service `{}` has {} units: a catchment table must share each area's demand among them",
                        sv.id,
                        of.len()
                    ),
                );
                ok = false;
            }
            (_, true) => {
                for (a, code) in pop.areas().iter().enumerate() {
                    if refused.contains(&(s, a)) || unchecked_areas.contains(&a) {
                        continue;
                    }
                    let sum: f64 = of.iter().map(|u| shares[*u][a]).sum();
                    if (sum - 1.0).abs() > crate::network::SUM_TOLERANCE {
                        l.problem(match lines.get(&(s, a)) {
                            Some(at) => format!(
                                "{source}: {}, column `share`: area `{code}`'s shares of service `{}`'s units sum to {sum}; they must sum to 1",
                                at.join(", "),
                                sv.id
                            ),
                            None => format!(
                                "{source}: area `{code}` has no row for service `{}`'s units; its shares must sum to 1",
                                sv.id
                            ),
                        });
                        ok = false;
                    }
                }
            }
        }
    }
    // Each later period: an (area, service) it gives must sum to 1; one it does not
    // give keeps the shares it had before.
    for p in 0..later.len() {
        let (year, given) = (later[p].0, later[p].2.clone());
        for (s, sv) in file.service.iter().enumerate() {
            let of: Vec<usize> = (0..units.len())
                .filter(|u| units[*u].service == s)
                .collect();
            for (a, code) in pop.areas().iter().enumerate() {
                if !given.contains(&(s, a)) {
                    for &u in &of {
                        later[p].1[u][a] = if p == 0 {
                            shares[u][a]
                        } else {
                            later[p - 1].1[u][a]
                        };
                    }
                    continue;
                }
                if later_refused.contains(&(year, s, a)) || unchecked_areas.contains(&a) {
                    continue;
                }
                let sum: f64 = of.iter().map(|u| later[p].1[*u][a]).sum();
                if (sum - 1.0).abs() > crate::network::SUM_TOLERANCE {
                    let at = later_lines
                        .get(&(year, s, a))
                        .map_or(String::new(), |l| l.join(", "));
                    l.problem(format!(
                        "{source}: {at}, column `share`: area `{code}`'s shares of service `{}`'s units from {year} sum to {sum}; they must sum to 1",
                        sv.id
                    ));
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return None;
    }
    let mut network = match Network::new(units.clone(), shares, na) {
        Ok(n) => n,
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.name()));
            return None;
        }
    };
    for (year, sh, _) in later {
        if let Err(e) = network.redraw_from(year, sh) {
            l.problem(format!("{}: {e}", l.source.name()));
            return None;
        }
    }
    // A unit outside its opening years that its catchment still sends demand to:
    // that demand is all shortage.
    let years = file.scenario.base_year..=file.scenario.end_year;
    for (u, unit) in units.iter().enumerate() {
        let shut: Vec<i32> = years
            .clone()
            .filter(|y| !unit.is_open(*y) && network.shares_in(u, *y).iter().any(|s| *s > 0.0))
            .collect();
        if let (Some(first), Some(last)) = (shut.first(), shut.last()) {
            l.notes.push(format!(
                "unit `{}` is not open in {} of the years {first}–{last}, but its catchment still sends it demand: that demand counts as shortage there (change the catchment for those years to move it)",
                unit.id,
                shut.len()
            ));
        }
    }
    Some(network)
}

/// Builds every `[[service]]` and checks it against the population: its ages, its
/// parameter tables, and segment shares summing to 1 in every area, year and age.
fn load_services(l: &mut Loader<'_>, file: &ScenarioFile, pop: &Population) -> Vec<Service> {
    let years: Vec<i32> = (file.scenario.base_year..=file.scenario.end_year).collect();
    let omega = pop.n_ages() - 1;
    let mut out = Vec::new();
    for sv in &file.service {
        let Some(s) = build_service(l, sv, pop.areas()) else {
            continue;
        };
        let key = |k: &str| format!("service[{}].{k}", sv.id);
        match services::check(&s, pop.areas().len(), &years, omega) {
            Ok(()) => out.push(s),
            Err(ServiceError::Ages { lo, hi, omega, .. }) => l.key_problem(
                &key("ages"),
                format!("[{lo}, {hi}] goes past the population's oldest age {omega}"),
            ),
            Err(ServiceError::Shares {
                sum,
                area,
                year,
                age,
                ..
            }) => l.key_problem(
                &key("segment.share"),
                format!(
                    "the segments' shares sum to {sum} in area `{}`, year {year}, age {age}; they must sum to 1",
                    pop.areas()[area]
                ),
            ),
            Err(ServiceError::Value {
                key: k,
                source: services::ValueError::Cell { area, year, age },
                ..
            }) => l.key_problem(
                &key(&k),
                format!(
                    "the table has no value for area `{}`, year {year}, age {age}",
                    pop.areas()[area]
                ),
            ),
            Err(ServiceError::Value {
                key: k, source, ..
            }) => l.key_problem(&key(&k), source),
            Err(other) => l.problem(format!("{}: {other}", l.source.name())),
        }
    }
    out
}

/// A `[[service]]` section as a [`Service`]; its tables are read and range-checked.
fn build_service(l: &mut Loader<'_>, sv: &ServiceSection, areas: &[String]) -> Option<Service> {
    let key = |k: &str| format!("service[{}].{k}", sv.id);
    let mut ok = true;
    let mut value = |l: &mut Loader<'_>, k: &str, p: &Option<Param>| -> Value {
        match p {
            None => Value::Constant(1.0),
            Some(Param::Constant(v)) => Value::Constant(*v),
            Some(Param::Path { from, to }) => match linear(*from, *to) {
                Ok(p) => Value::Path(p),
                Err(m) => {
                    l.key_problem(&key(k), m);
                    ok = false;
                    Value::Constant(1.0)
                }
            },
            Some(Param::Table(rel)) => match param_table(l, rel, areas) {
                Some(t) => {
                    let v = Value::Table(t);
                    let (lo, hi) = v.range();
                    if lo < 0.0 || hi > 1.0 {
                        l.key_problem(
                            &key(k),
                            format!(
                                "{} has values from {lo} to {hi}; a share lies between 0 and 1",
                                l.source.resolve(rel).display()
                            ),
                        );
                        ok = false;
                    }
                    v
                }
                None => {
                    ok = false;
                    Value::Constant(1.0)
                }
            },
        }
    };
    let coverage = value(l, "coverage", &sv.coverage);
    let teaching = sv.teaching.as_ref().map(|t| Teaching {
        lesson_hours: t.lesson_hours.clone(),
        teaching_obligation: t.teaching_obligation,
    });
    let default_group = sv.teaching.as_ref().and_then(|t| t.max_group_size);
    let mut fixed_per = FixedPer::Area;
    let mut segment = |l: &mut Loader<'_>, seg: Option<&crate::scenario::SegmentSection>| {
        let c = seg.and_then(|g| g.cost.as_ref()).map_or_else(
            || sv.cost.clone().unwrap_or_default(),
            |c| c.or(sv.cost.as_ref()),
        );
        if c.fixed_per.as_deref() == Some("service") {
            fixed_per = FixedPer::Service;
        }
        let g = c.growth.unwrap_or(0.0);
        Segment {
            id: seg.map_or_else(|| "all".to_string(), |g| g.id.clone()),
            share: match seg {
                Some(g) => value(l, &format!("segment[{}].share", g.id), &g.share),
                None => Value::Constant(1.0),
            },
            floor_area_per_unit: seg
                .and_then(|g| g.floor_area_per_unit)
                .or(sv.floor_area_per_unit),
            units_per_fte: seg.and_then(|g| g.units_per_fte).or(sv.units_per_fte),
            max_group_size: seg.and_then(|g| g.max_group_size).or(default_group),
            hours_factor: seg.and_then(|g| g.hours_factor).unwrap_or(1.0),
            support_hours_per_unit: seg.and_then(|g| g.support_hours_per_unit).unwrap_or(0.0),
            cost: Cost {
                per_unit: c.per_unit.unwrap_or(0.0),
                per_m2: c.per_m2.unwrap_or(0.0),
                per_fte: c.per_fte.unwrap_or(0.0),
                fixed: c.fixed.unwrap_or(0.0),
                overhead: c.overhead.unwrap_or(0.0),
                growth: [
                    c.growth_per_unit.unwrap_or(g),
                    c.growth_per_m2.unwrap_or(g),
                    c.growth_per_fte.unwrap_or(g),
                    c.growth_fixed.unwrap_or(g),
                ],
            },
        }
    };
    let segments: Vec<Segment> = if sv.segment.is_empty() {
        vec![segment(l, None)]
    } else {
        sv.segment.iter().map(|g| segment(l, Some(g))).collect()
    };
    ok.then(|| Service {
        id: sv.id.clone(),
        name: sv.name.clone().unwrap_or_else(|| sv.id.clone()),
        unit: sv.unit.clone().unwrap_or_else(|| "unit".into()),
        ages: sv.ages,
        sex: sv.sex.as_deref().and_then(parse_service_sex),
        coverage,
        segments,
        teaching,
        fixed_per,
    })
}

/// A parameter table by any of `area`, `year`, `sex` and `age`, with one value column.
fn param_table(l: &mut Loader<'_>, rel: &str, areas: &[String]) -> Option<RateTable> {
    use super::labels::Role;
    let t = l.table(rel, None)?;
    let shape = Shape {
        sex: super::rates::has_role(&t, Role::Sex),
        age: super::rates::has_role(&t, Role::Age),
        signed: false,
    };
    let rows = match rate_rows(&t, shape, "parameter") {
        Ok(r) => r,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    match RateTable::from_rows(&rows, 1.0, areas) {
        Ok(r) => Some(r),
        Err(e) => {
            l.problem(format!("{}: {e}", t.source));
            None
        }
    }
}

fn load_alignment(
    l: &mut Loader<'_>,
    a: &crate::scenario::AlignmentSection,
    pop: &Population,
) -> Option<ControlTotals> {
    let control = l
        .table(&a.control, None)
        .and_then(|t| match to_population(&t) {
            Ok((p, skipped)) => {
                l.notes.extend(skipped.message(&t.source));
                Some(p)
            }
            Err(e) => {
                l.problem(e.to_string());
                None
            }
        })?;
    if control.omega() != pop.omega() {
        l.problem(format!(
            "{}: the control population's top age is {}, the population's {}",
            l.source.resolve(&a.control).display(),
            control.omega(),
            pop.omega()
        ));
        return None;
    }
    let path = l.source.resolve(&a.parents);
    let bytes = match l.source.read(&a.parents) {
        Ok(b) => b,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    l.files.push(InputFile {
        path: path.display().to_string(),
        sha256: super::sha256_hex(&bytes),
    });
    let name = path.display().to_string();
    let pairs = match super::csv::read_pairs(&bytes, &name, "area", "parent") {
        Ok(p) => p,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    let mut parent_of = vec![usize::MAX; pop.areas().len()];
    for (area, parent, line) in pairs {
        let Some(ai) = pop.area_index(&area) else {
            l.problem(format!(
                "{name}: line {line}: area `{area}` has no population"
            ));
            continue;
        };
        let Some(pi) = control.area_index(&parent) else {
            l.problem(format!(
                "{name}: line {line}: parent `{parent}` is not an area of the control population"
            ));
            continue;
        };
        parent_of[ai.0] = pi.0;
    }
    if let Some(a) = parent_of.iter().position(|p| *p == usize::MAX) {
        l.problem(format!("{name}: area `{}` has no parent", pop.areas()[a]));
    }
    if parent_of.contains(&usize::MAX) {
        return None;
    }
    Some(ControlTotals { parent_of, control })
}

/// Reads fertility, mortality and migration; `None` (with problems recorded) if any of
/// them is wrong or if the scenario has neither fertility nor mortality.
fn load_inputs(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
) -> Option<ProjectionInputs> {
    let areas = pop.areas();
    let (fert, mort) = match (&file.fertility, &file.mortality) {
        (None, None) => {
            if !file.migration.is_empty() {
                l.key_problem(
                    "migration",
                    "migration needs [fertility] and [mortality] too",
                );
            }
            return None;
        }
        (Some(f), Some(m)) => (f, m),
        (Some(f), None) => {
            l.key_problem("mortality", "[fertility] is given but [mortality] is not");
            l.table(&f.file, f.column.as_deref());
            return None;
        }
        (None, Some(m)) => {
            l.key_problem("fertility", "[mortality] is given but [fertility] is not");
            l.table(&m.file, m.column.as_deref());
            return None;
        }
    };
    let base = file.scenario.base_year;
    let first_year = base + 1;
    let fertility = l.rates(
        &fert.file,
        fert.column.as_deref(),
        Shape {
            sex: false,
            age: true,
            signed: false,
        },
        "fertility",
        fert.scale.unwrap_or(1.0),
        areas,
    );
    if let Some(f) = &fertility {
        if let Some((lo, hi)) = f.age_range() {
            if lo < 10 || hi > 55 {
                l.problem(format!(
                    "{}: fertility is given for mothers aged {lo}–{hi}; a mother's age must be within 10–55",
                    l.source.resolve(&fert.file).display()
                ));
            }
        }
        check_first_year(l, f, first_year, &fert.file);
    }
    let mortality = l.rates(
        &mort.file,
        mort.column.as_deref(),
        Shape {
            sex: true,
            age: true,
            signed: false,
        },
        "mortality",
        mort.scale.unwrap_or(1.0),
        areas,
    );
    if let Some(m) = &mortality {
        if let Some(v) = m.scaled_values().find(|v| *v > 1.0) {
            l.problem(format!(
                "{}: a probability of dying is {v} after scaling (scale {}); it must be at most 1 — is `scale = 1000` missing?",
                l.source.resolve(&mort.file).display(),
                mort.scale.unwrap_or(1.0)
            ));
        }
        match m.age_range() {
            Some((0, hi)) if hi >= pop.omega().0 => {}
            range => l.problem(format!(
                "{}: mortality must cover ages 0 to the population's top age {} (it covers {})",
                l.source.resolve(&mort.file).display(),
                pop.omega(),
                range.map_or("no ages".to_string(), |(lo, hi)| format!("{lo}–{hi}"))
            )),
        }
        check_first_year(l, m, first_year, &mort.file);
    }
    let tfr = fert.tfr.as_ref().and_then(|p| match year_path(p) {
        Ok(p) => Some(p),
        Err(m) => {
            l.key_problem("fertility.tfr", m);
            None
        }
    });
    let mut flows = Vec::new();
    for (k, m) in file.migration.iter().enumerate() {
        flows.extend(load_flow(l, k, m, areas, first_year));
    }
    let boys = fert.boys_share.unwrap_or(0.512);
    if !l.problems.is_empty() || flows.len() != file.migration.len() {
        // Every year's rates are checked below only when every table loaded; what
        // the improvement does to mortality alone is checked here, so that the
        // problem is listed with the others.
        if let (Some(m), Some(NumberOrTable::Rate(r))) = (&mortality, mort.improvement.clone()) {
            let s = &file.scenario;
            let worst = m.scaled_values().fold(0.0f64, f64::max);
            let year = (s.base_year + 1..=s.end_year.min(s.base_year + 200))
                .find(|y| worst * (1.0 - r).powi(y - s.base_year) > 1.0);
            if let Some(y) = year {
                l.key_problem(
                    "mortality.improvement",
                    format!(
                        "{r} makes the largest probability of dying in {} ({worst}) {} in {y}: it must be at most 1",
                        l.source.resolve(&mort.file).display(),
                        worst * (1.0 - r).powi(y - s.base_year)
                    ),
                );
            }
        }
        return None;
    }
    let (mortality, improvement) = match mort.improvement.clone() {
        None => (mortality?, None),
        Some(NumberOrTable::Rate(r)) => (mortality?, Some(r)),
        Some(NumberOrTable::Table(rel)) => {
            let m = mortality?;
            (improved_by_table(l, &rel, &m, file, areas)?, None)
        }
    };
    let inputs = ProjectionInputs {
        fertility: fertility?,
        mortality,
        boys_share: boys,
        tfr,
        improvement,
        flows,
    };
    check_year_rates(l, file, pop, &inputs);
    Some(inputs)
}

/// Checks the rates of every projected year as the projection takes them, after
/// scaling, improvement and multipliers: a probability of dying at most 1, and the
/// probability of dying plus the out-migration rates at most 1 in every cell (more
/// would take out more people than there are). The first cell at fault is named.
fn check_year_rates(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
    inputs: &ProjectionInputs,
) {
    use crate::projection::{FlowValues, InputError, ProjectionError};
    let s = &file.scenario;
    let r = match crate::projection::resolve(pop, s.base_year, s.end_year, Some(inputs)) {
        Ok(r) => r,
        Err(ProjectionError::Input {
            year,
            source:
                InputError::Probability {
                    area,
                    sex,
                    age,
                    value,
                    ..
                },
        }) => {
            l.key_problem(
                "mortality.improvement",
                format!(
                    "{} makes the probability of dying {value} for area `{area}`, {sex}, age {age} in {year}: it must be at most 1",
                    inputs.improvement.unwrap_or(0.0)
                ),
            );
            return;
        }
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.name()));
            return;
        }
    };
    let n = pop.n_ages();
    for (k, rates) in r.year_rates.iter().enumerate() {
        let Some(rates) = rates else { continue };
        let out: Vec<(&ndarray::Array3<f64>, f64)> = rates
            .flows
            .iter()
            .filter_map(|f| match &f.values {
                FlowValues::OutRates(v) => Some((&**v, f.multiplier)),
                FlowValues::Counts(_) => None,
            })
            .collect();
        if out.is_empty() {
            continue;
        }
        let rows = out
            .iter()
            .map(|(v, _)| v.dim().0)
            .chain([rates.q.dim().0])
            .max()
            .unwrap_or(1);
        for a in 0..rows {
            for sx in 0..2 {
                for i in 0..=n {
                    let row = |arr: &ndarray::Array3<f64>| if arr.dim().0 == 1 { 0 } else { a };
                    let q = rates.q[[row(&rates.q), sx, i]] * rates.q_factor;
                    let total = out.iter().fold(q, |t, (v, m)| t + m * v[[row(v), sx, i]]);
                    if total > 1.0 + 1e-12 {
                        let area = if rows == 1 {
                            "every area".to_string()
                        } else {
                            format!("area `{}`", pop.areas()[a])
                        };
                        l.problem(format!(
                            "{}: in {}, {area}, {}, age {}: the probability of dying {q} plus the out-migration rates make {total}; together they must be at most 1",
                            l.source.name(),
                            r.years[k],
                            Sex::ALL[sx],
                            crate::rates::AgeIndex::of_slot(i, n),
                        ));
                        return;
                    }
                }
            }
        }
    }
}

fn check_first_year(l: &mut Loader<'_>, t: &RateTable, first_year: i32, rel: &str) {
    if let Err(e) = t.year_slot(first_year) {
        l.problem(format!("{}: {e}", l.source.resolve(rel).display()));
    }
}

fn load_flow(
    l: &mut Loader<'_>,
    k: usize,
    m: &MigrationSection,
    areas: &[String],
    first_year: i32,
) -> Option<Flow> {
    let key = |s: &str| format!("migration[{k}].{s}");
    let what = format!("migration {} {}", m.name, m.direction);
    let scale = m.scale.unwrap_or(1.0);
    let age_sex = Shape {
        sex: true,
        age: true,
        signed: false,
    };
    let direction = match m.direction.as_str() {
        "in" => Direction::In,
        "net" => Direction::Net,
        _ => Direction::Out,
    };
    let form = if let Some(c) = &m.counts {
        let shape = Shape {
            signed: direction == Direction::Net,
            ..age_sex
        };
        let t = l.rates(c, m.column.as_deref(), shape, &what, scale, areas)?;
        check_first_year(l, &t, first_year, c);
        FlowForm::Counts(t)
    } else if let Some(r) = &m.rates {
        let t = l.rates(r, m.column.as_deref(), age_sex, &what, scale, areas)?;
        if let Some(v) = t.scaled_values().find(|v| *v > 1.0) {
            l.problem(format!(
                "{}: an out-migration rate is {v} after scaling; it must be at most 1",
                l.source.resolve(r).display()
            ));
        }
        check_first_year(l, &t, first_year, r);
        FlowForm::OutRates(t)
    } else {
        let (tf, pf) = (m.total.as_deref()?, m.profile.as_deref()?);
        let total = l.rates(
            tf,
            m.total_column.as_deref(),
            Shape {
                sex: false,
                age: false,
                signed: false,
            },
            &what,
            scale,
            areas,
        );
        let profile = l.rates(pf, m.share_column.as_deref(), age_sex, &what, 1.0, areas);
        if let Some(p) = &profile {
            check_first_year(l, p, first_year, pf);
            check_profile(l, p, areas, pf);
        }
        let (total, profile) = (total?, profile?);
        check_first_year(l, &total, first_year, tf);
        FlowForm::TotalProfile { total, profile }
    };
    let multiplier = m.multiplier.as_ref().and_then(|p| match year_path(p) {
        Ok(p) => Some(p),
        Err(msg) => {
            l.key_problem(&key("multiplier"), msg);
            None
        }
    });
    let destinations = match &m.destinations {
        None => None,
        Some(d) => {
            let t = l.rates(d, Some("share"), age_sex, &what, 1.0, areas)?;
            check_destinations(l, &t, areas, d);
            Some(t)
        }
    };
    Some(Flow {
        name: m.name.clone(),
        direction,
        form,
        multiplier,
        destinations,
    })
}

/// Shares of a profile must sum to 1 over sex and age, per area and year.
fn check_profile(l: &mut Loader<'_>, t: &RateTable, areas: &[String], rel: &str) {
    let slots = t.year_range().map_or(1, |(a, b)| (b - a + 1) as usize);
    let first = t.year_range().map_or(0, |r| r.0);
    for (a, code) in areas.iter().enumerate() {
        for y in 0..slots {
            let Ok(slot) = t.year_slot(first + y as i32) else {
                continue;
            };
            let sum: f64 = Sex::ALL
                .iter()
                .flat_map(|s| ages_of(t).map(move |i| (*s, i)))
                .filter_map(|(s, i)| t.get(a, slot, s, i))
                .sum();
            if (sum - 1.0).abs() > 1e-6 {
                l.problem(format!(
                    "{}: the profile's shares for area `{code}` sum to {sum}, not 1",
                    l.source.resolve(rel).display()
                ));
                return;
            }
        }
    }
}

/// Destination shares must sum to 1 over areas, per sex and age.
fn check_destinations(l: &mut Loader<'_>, t: &RateTable, areas: &[String], rel: &str) {
    for s in Sex::ALL {
        for i in ages_of(t) {
            let sum: f64 = (0..areas.len()).filter_map(|a| t.get(a, 0, s, i)).sum();
            if (sum - 1.0).abs() > 1e-6 {
                l.problem(format!(
                    "{}: destination shares for {s}, age {i} sum to {sum} over the areas, not 1",
                    l.source.resolve(rel).display()
                ));
                return;
            }
        }
    }
}

fn ages_of(t: &RateTable) -> impl Iterator<Item = AgeIndex> + Clone {
    let (lo, hi) = t.age_range().unwrap_or((1, 0));
    (lo..=hi)
        .map(AgeIndex::Age)
        .chain(t.has_birth().then_some(AgeIndex::Birth))
}

/// Every file a scenario names besides the population.
fn other_files(f: &ScenarioFile) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    v.extend(f.fertility.as_ref().map(|s| s.file.as_str()));
    v.extend(f.mortality.as_ref().map(|s| s.file.as_str()));
    if let Some(Some(NumberOrTable::Table(t))) = f.mortality.as_ref().map(|m| &m.improvement) {
        v.push(t.as_str());
    }
    if let Some(Some(NumberOrTable::Table(t))) =
        f.uncertainty.as_ref().map(|u| &u.migration_rate_sd)
    {
        v.push(t.as_str());
    }
    for m in &f.migration {
        v.extend(
            [&m.counts, &m.total, &m.profile, &m.rates, &m.destinations]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
    }
    v.extend(f.catchment.as_ref().map(|c| c.file.as_str()));
    v.extend(f.areas.as_ref().map(|c| c.file.as_str()));
    if let Some(a) = &f.alignment {
        v.extend([a.parents.as_str(), a.control.as_str()]);
    }
    v
}

/// Checks a scenario and every input it names without running anything, and returns
/// every problem found (an empty list means the scenario is valid).
pub fn validate(source: &Source) -> Vec<String> {
    validate_with_variants(source, &[])
}

/// As [`validate`], with the variants of `variant_files` (see
/// [`load_with_variants`]).
pub fn validate_with_variants(source: &Source, variant_files: &[PathBuf]) -> Vec<String> {
    match load_with_variants(source.clone(), variant_files) {
        Ok(l) => super::run::check_trajectories(&l, None)
            .err()
            .into_iter()
            .collect(),
        Err(e) => e.problems,
    }
}
