//! The `kunta` command line: a thin layer over the library.
//!
//! Exit status: 0 on success, 1 on a data or run error, 2 on a usage error.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kunta::io::scenario::{load, validate, LoadedScenario, Source};
use kunta::io::{
    checked_records, is_population_shaped, population_frame, read_table, records_frame, ColumnData,
    CsvOptions, Format, Frame, TextEncoding,
};
use kunta::population::{Population, Sex, Year};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "kunta",
    version,
    about = "Population projections and the demand, resources and costs of municipal services",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (the bundled example when no file is given) and print a summary.
    Run {
        /// The scenario file (TOML).
        scenario: Option<PathBuf>,
        /// Directory for the output tables.
        #[arg(long, default_value = "kunta-out")]
        out: PathBuf,
        /// Format of the output tables.
        #[arg(long, value_enum, default_value_t = OutFormat::Parquet)]
        format: OutFormat,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Read and check a scenario and every input it names; list every problem found.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Turn a PX, JSON-stat, CSV or Parquet table into a tidy long table.
    Convert {
        /// The input file (.px, .json, .csv, .parquet).
        input: PathBuf,
        /// The output file (.csv or .parquet).
        #[arg(long)]
        out: PathBuf,
        /// Text encoding of a CSV input (utf-8, iso-8859-1, iso-8859-15, windows-1252);
        /// detected when not given.
        #[arg(long)]
        encoding: Option<String>,
    },
    /// Write the bundled example scenario and its data files into a directory.
    Example {
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Parquet,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            format,
            json,
        } => run(scenario, &out, format, json),
        Command::Validate { scenario } => {
            let problems = validate(&Source::File(scenario.clone()));
            if problems.is_empty() {
                println!("{}: valid", scenario.display());
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!(
                    "{}: {} problem{} found",
                    scenario.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Convert {
            input,
            out,
            encoding,
        } => convert(&input, &out, encoding.as_deref()),
        Command::Example { out } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create the directory", out.display()))?;
            for (name, content) in kunta::example::FILES {
                let path = out.join(name);
                kunta::io::frame::write_atomically(&path, |mut f| {
                    use std::io::Write;
                    f.write_all(content.as_bytes()).map_err(|e| e.to_string())
                })?;
            }
            println!(
                "wrote the example to {}; run it with: kunta run {}",
                out.display(),
                out.join("scenario.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn convert(input: &Path, out: &Path, encoding: Option<&str>) -> Result<ExitCode> {
    let Some(format) = Format::from_path(out) else {
        bail!("{}: the output must end in .csv or .parquet", out.display());
    };
    let encoding = match encoding {
        None => TextEncoding::Detect,
        Some(e) => e.parse::<TextEncoding>().map_err(anyhow::Error::msg)?,
    };
    let table = read_table(
        input,
        &CsvOptions {
            encoding,
            delimiter: None,
        },
    )?;
    let population = if is_population_shaped(&table) {
        let (records, skipped) = checked_records(&table)?;
        if records.is_empty() {
            // Nothing but totals (e.g. a whole-municipality series): keep it as it is.
            eprintln!(
                "note: {}: every row is a total over area, sex or age; written as a plain table",
                input.display()
            );
            None
        } else {
            if let Some(m) = skipped.message(&input.display().to_string()) {
                eprintln!("note: {m}");
            }
            Some(records_frame(&records))
        }
    } else {
        None
    };
    let frame = population.unwrap_or_else(|| Frame::from_long_table(&table));
    frame.write(out, format)?;
    eprintln!(
        "{}: {} rows written to {}",
        input.display(),
        frame.height(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run(scenario: Option<PathBuf>, out: &Path, format: OutFormat, json: bool) -> Result<ExitCode> {
    let source = scenario.map_or(Source::Example, Source::File);
    let loaded = load(source)?;
    for n in &loaded.notes {
        eprintln!("note: {n}");
    }
    let format = match format {
        OutFormat::Parquet => Format::Parquet,
        OutFormat::Csv => Format::Csv,
    };
    let s = &loaded.file.scenario;
    let mut table = population_frame(&loaded.population, s.base_year..=s.end_year);
    let n = table.height();
    table.columns.insert(
        0,
        ("scenario".into(), ColumnData::Text(vec![s.name.clone(); n])),
    );
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the output directory", out.display()))?;
    table.write(
        &out.join(format!("population.{}", format.extension())),
        format,
    )?;
    if json {
        println!("{}", summary_json(&loaded));
    } else {
        print!("{}", summary_text(&loaded));
    }
    Ok(ExitCode::SUCCESS)
}

/// Age groups that matter to municipal services.
const GROUPS: [(&str, u16, u16); 7] = [
    ("0–6", 0, 6),
    ("7–12", 7, 12),
    ("13–15", 13, 15),
    ("16–18", 16, 18),
    ("19–64", 19, 64),
    ("65–74", 65, 74),
    ("75+", 75, u16::MAX),
];

fn area_group(p: &Population, area: usize, year: Year, from: u16, to: u16) -> f64 {
    let Some(y) = p.year_index(year) else {
        return 0.0;
    };
    let hi = usize::from(to).min(p.omega().index());
    Sex::ALL
        .iter()
        .map(|s| {
            p.ages(kunta::population::AreaIndex(area), *s, y)
                .iter()
                .skip(usize::from(from))
                .take((hi + 1).saturating_sub(usize::from(from)))
                .sum::<f64>()
        })
        .sum()
}

fn summary_text(l: &LoadedScenario) -> String {
    use std::fmt::Write;
    let p = &l.population;
    let base = Year(l.file.scenario.base_year);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — population at 31 Dec {} ({})",
        l.file.scenario.name,
        base,
        l.source.name()
    );
    let years: Vec<String> = p.years().iter().map(ToString::to_string).collect();
    let _ = writeln!(
        s,
        "{} areas, ages 0–{} ({} = open top group), years in the table: {}\n",
        p.areas().len(),
        p.omega(),
        p.omega(),
        years.join(", ")
    );
    let _ = write!(s, "{:<12}{:>10}", "area", "total");
    for (g, _, _) in GROUPS {
        let _ = write!(s, "{g:>9}");
    }
    s.push('\n');
    let mut totals = [0.0; GROUPS.len() + 1];
    for (i, a) in p.areas().iter().enumerate() {
        let total = area_group(p, i, base, 0, u16::MAX);
        totals[0] += total;
        let _ = write!(s, "{a:<12}{total:>10.0}");
        for (k, (_, from, to)) in GROUPS.iter().enumerate() {
            let v = area_group(p, i, base, *from, *to);
            totals[k + 1] += v;
            let _ = write!(s, "{v:>9.0}");
        }
        s.push('\n');
    }
    let _ = write!(s, "{:<12}{:>10.0}", "all", totals[0]);
    for v in &totals[1..] {
        let _ = write!(s, "{v:>9.0}");
    }
    s.push('\n');
    s
}

fn summary_json(l: &LoadedScenario) -> String {
    let p = &l.population;
    let base = Year(l.file.scenario.base_year);
    let areas: Vec<serde_json::Value> = p
        .areas()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut groups = serde_json::Map::new();
            for (g, from, to) in GROUPS {
                groups.insert(g.to_string(), area_group(p, i, base, from, to).into());
            }
            serde_json::json!({
                "area": a,
                "population": area_group(p, i, base, 0, u16::MAX),
                "age_groups": groups,
            })
        })
        .collect();
    serde_json::json!({
        "scenario": l.file.scenario.name,
        "base_year": base.0,
        "end_year": l.file.scenario.end_year,
        "omega": p.omega().0,
        "years": p.years().iter().map(|y| y.0).collect::<Vec<_>>(),
        "population": p.total(base),
        "areas": areas,
        "notes": l.notes,
    })
    .to_string()
}
