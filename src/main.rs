//! The `kunta` command line: a thin layer over the library.
//!
//! Exit status: 0 on success, 1 on a data or run error, 2 on a usage error.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use kunta::io::scenario::{check_trajectories, load_with_variants, LoadedScenario, Source};
use kunta::io::{
    checked_records, is_population_shaped, read_table, records_frame, CsvOptions, Format, Frame,
    TextEncoding,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// A mistake in the command line itself (an option's value, or a choice of options):
/// exit status 2, as for the errors clap finds.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Returns a [`Usage`] error from the enclosing function.
macro_rules! usage {
    ($($t:tt)*) => {
        return Err(anyhow::Error::new(Usage(format!($($t)*))))
    };
}

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
        /// Run this many Monte Carlo trajectories (overrides `[uncertainty]
        /// trajectories`) and write the `<table>_quantiles` tables.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        trajectories: Option<u32>,
        /// Seed of the random streams (overrides `[uncertainty] seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// No progress bar and no notes on stderr (errors and warnings still go
        /// there).
        #[arg(long)]
        quiet: bool,
        /// A file of `[[variant]]` tables to run beside the scenario's own variants
        /// (may be given more than once).
        #[arg(long = "variant", value_name = "FILE")]
        variants: Vec<PathBuf>,
        /// Also write `report.html`: charts and headline figures in one file.
        #[arg(long)]
        report: bool,
        /// Language of the report and of the workbook's summary sheet.
        #[arg(long, value_enum, default_value_t = ReportLang::Fi)]
        lang: ReportLang,
    },
    /// Write a self-contained HTML report with charts of a run's output directory.
    Report {
        /// The output directory of `kunta run` (Parquet or CSV tables).
        dir: PathBuf,
        /// The report file (default `DIR/report.html`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Language of the report.
        #[arg(long, value_enum, default_value_t = ReportLang::Fi)]
        lang: ReportLang,
    },
    /// Estimate fertility, mortality and net migration from a population history and
    /// write a scenario ready to run and edit (MODEL.md §11).
    Estimate {
        /// The population history: several years by area, sex and single-year age.
        history: PathBuf,
        /// The last year of the estimation window, and the scenario's base year.
        #[arg(long)]
        base_year: i32,
        /// The scenario's last year (default the base year + 20).
        #[arg(long)]
        end_year: Option<i32>,
        #[command(flatten)]
        rates: RateArgs,
        /// Directory for the scenario and its tables.
        #[arg(long)]
        out: PathBuf,
    },
    /// Project from past years with rates estimated from the years before them and
    /// compare with what happened, beside the naive and linear baselines (MODEL.md §12).
    Backtest {
        /// The population history: several years by area, sex and single-year age.
        history: PathBuf,
        /// Jump-off years, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        jump_off: Vec<i32>,
        /// Horizons in years, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        horizon: Vec<u32>,
        #[command(flatten)]
        rates: RateArgs,
        /// Run this many Monte Carlo trajectories from each jump-off and report how
        /// often kunta's 50 % and 90 % intervals held what happened.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        trajectories: Option<u32>,
        /// Seed of the trajectories.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Directory for the `backtest` table.
        #[arg(long, default_value = "kunta-backtest")]
        out: PathBuf,
        /// Format of the table.
        #[arg(long, value_enum, default_value_t = OutFormat::Parquet)]
        format: OutFormat,
    },
    /// Read and check a scenario and every input it names; list every problem found.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// A file of `[[variant]]` tables to check with the scenario (may be given
        /// more than once).
        #[arg(long = "variant", value_name = "FILE")]
        variants: Vec<PathBuf>,
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

/// The inputs and choices of `estimate` and `backtest`.
#[derive(clap::Args)]
struct RateArgs {
    /// Births by the mother's age at the birth: `[area], year, age, count`.
    #[arg(long, conflicts_with = "fertility_rates")]
    births: Option<PathBuf>,
    /// Births per woman by the mother's age at the birth: `[area], year, age, rate`.
    #[arg(long)]
    fertility_rates: Option<PathBuf>,
    /// Deaths by age at death: `[area], year, sex, age, count`.
    #[arg(long, conflicts_with = "death_rates")]
    deaths: Option<PathBuf>,
    /// Central death rates by age: `[area], year, sex, age, rate`.
    #[arg(long)]
    death_rates: Option<PathBuf>,
    /// Years before the base year the rates are averaged over.
    #[arg(long, default_value_t = 5)]
    years: usize,
    /// The fertility level: `last` (the last year's total fertility), `mean` (the
    /// window's), `trend` / `trend:N` (the window's linear trend for N years, 5 by
    /// default), or `damped:φ` (all areas' trend, damped by φ a year).
    #[arg(long, default_value = "last")]
    fertility_level: String,
    /// Mortality improvement: `trend` (by sex and age group from the death rates),
    /// `none`, or a yearly rate such as `0.01`.
    #[arg(long, default_value = "trend")]
    improvement: String,
    /// Years the improvement trend is fitted over.
    #[arg(long, default_value_t = 15)]
    improvement_years: usize,
    /// A multiplier on the estimated net migration.
    #[arg(long, default_value_t = 1.0)]
    migration_level: f64,
    /// Shrink each area's fertility and mortality toward all areas' together with
    /// this weight in person-years (0: no shrinkage).
    #[arg(long, default_value_t = 0.0)]
    shrink: f64,
}

impl RateArgs {
    /// The files read: the history, then the births' and the deaths' given.
    fn files<'a>(&'a self, history: &'a Path) -> impl Iterator<Item = &'a Path> {
        std::iter::once(history).chain(
            [
                &self.births,
                &self.fertility_rates,
                &self.deaths,
                &self.death_rates,
            ]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path),
        )
    }

    fn options(&self) -> Result<kunta::estimate::Options> {
        // One of each pair, as a usage error in one sentence (before any file is read).
        if self.births.is_none() && self.fertility_rates.is_none() {
            usage!("give either --births or --fertility-rates");
        }
        if self.deaths.is_none() && self.death_rates.is_none() {
            usage!("give either --deaths or --death-rates");
        }
        use kunta::estimate::{FertilityLevel, Improvement, Options};
        let fertility = match self.fertility_level.as_str() {
            "last" => FertilityLevel::Last,
            "mean" => FertilityLevel::Mean,
            "trend" => FertilityLevel::Trend { years: 5 },
            other if other.starts_with("damped:") => {
                match other["damped:".len()..].parse::<f64>() {
                    Ok(phi) if (0.0..=1.0).contains(&phi) => FertilityLevel::Damped { phi },
                    _ => usage!(
                        "--fertility-level `{other}`: the damping must be a number from 0 to 1"
                    ),
                }
            }
            other => match other.strip_prefix("trend:").and_then(|n| n.parse().ok()) {
                Some(years) => FertilityLevel::Trend { years },
                None => usage!(
                    "--fertility-level `{other}`: expected last, mean, trend, trend:N or damped:φ"
                ),
            },
        };
        let improvement = match self.improvement.as_str() {
            "trend" => Improvement::Trend,
            "none" => Improvement::None,
            other => match other.parse::<f64>() {
                Ok(r) if (0.0..1.0).contains(&r) => Improvement::Rate(r),
                _ => usage!("--improvement `{other}`: expected trend, none or a yearly rate between 0 and 1"),
            },
        };
        if self.years == 0 {
            usage!("--years must be at least 1");
        }
        if !(self.migration_level.is_finite() && self.shrink.is_finite() && self.shrink >= 0.0) {
            usage!("--migration-level must be a number and --shrink a number of at least 0");
        }
        Ok(Options {
            years: self.years,
            fertility,
            improvement,
            improvement_years: self.improvement_years,
            migration_level: self.migration_level,
            shrink: self.shrink,
            ..Options::default()
        })
    }

    fn read(
        &self,
        history: &kunta::Population,
    ) -> Result<(kunta::estimate::Events, kunta::estimate::Events)> {
        kunta::io::estimate::read_rates(
            history,
            self.births.as_deref(),
            self.fertility_rates.as_deref(),
            self.deaths.as_deref(),
            self.death_rates.as_deref(),
        )
        .map_err(anyhow::Error::msg)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OutFormat {
    Parquet,
    Csv,
    /// One Excel workbook, `kunta.xlsx`.
    Xlsx,
}

#[derive(Clone, Copy, ValueEnum)]
enum ReportLang {
    /// Finnish.
    Fi,
    /// English.
    En,
}

impl ReportLang {
    fn lang(self) -> kunta::report::Lang {
        match self {
            ReportLang::Fi => kunta::report::Lang::Fi,
            ReportLang::En => kunta::report::Lang::En,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            // A bad option is a usage error, as clap's own are.
            let usage = e.chain().any(|c| c.is::<Usage>());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// An error and its causes in one sentence, each cause left out where the text
/// before already says it (a file's error often repeats its source's words).
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            scenario,
            out,
            format,
            json,
            trajectories,
            seed,
            quiet,
            variants,
            report,
            lang,
        } => run(
            scenario,
            &out,
            format,
            RunOptions {
                json,
                trajectories,
                seed,
                quiet,
                variants,
                report,
                lang: lang.lang(),
            },
        ),
        Command::Report { dir, out, lang } => {
            let run = kunta::report::RunDir::read(&dir)?;
            let frames = run.frames();
            let html = kunta::report::html(
                &kunta::report::RunTables {
                    tables: &frames,
                    summary: &run.summary,
                    manifest: &run.manifest,
                },
                lang.lang(),
            )
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{}: cannot make a report", dir.display()))?;
            let path = out.unwrap_or_else(|| dir.join("report.html"));
            kunta::io::frame::write_atomically(&path, |mut f| {
                use std::io::Write;
                f.write_all(html.as_bytes()).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())
            })?;
            println!("report written to {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Estimate {
            history,
            base_year,
            end_year,
            rates,
            out,
        } => {
            let opts = rates.options()?;
            let end = end_year.unwrap_or(base_year + 20);
            if end <= base_year {
                usage!("--end-year {end} must come after the base year {base_year}");
            }
            let inputs: Vec<PathBuf> = rates.files(&history).map(Path::to_path_buf).collect();
            kunta::io::output::refuse_inputs_inside(&out, &inputs)?;
            let h = kunta::io::estimate::read_history(&history)?;
            let (births, deaths) = rates.read(&h)?;
            let e = kunta::estimate::estimate(&h, &births, &deaths, base_year, &opts)
                .with_context(|| history.display().to_string())?;
            let w = kunta::io::estimate::write(
                &out,
                &e,
                &h,
                &opts,
                end,
                &history.display().to_string(),
            )?;
            let tfr: Vec<f64> = e.tfr.iter().map(|t| t[0]).collect();
            println!(
                "rates for {} area{} from {}–{base_year}: total fertility {:.2}–{:.2}, net migration {:+.0} a year; spreads: fertility {:.3}, migration {:.3}",
                e.areas.len(),
                if e.areas.len() == 1 { "" } else { "s" },
                base_year - opts.years as i32 + 1,
                tfr.iter().copied().fold(f64::INFINITY, f64::min),
                tfr.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                e.net.sum(),
                w.spreads.0,
                w.spreads.1
            );
            let rate_sd = e.migration_rate_sd();
            if opts.years < 3 {
                eprintln!(
                    "note: a window of {} year{} has no year-to-year spread of net migration rates to measure: migration_rate_sd.csv holds 0 (give --years 3 or more)",
                    opts.years,
                    if opts.years == 1 { "" } else { "s" }
                );
            } else {
                let capped = rate_sd.iter().any(|v| *v >= kunta::estimate::MAX_RATE_SD);
                if capped {
                    eprintln!(
                        "note: some areas' net migration rates swing by more than {} % a year from year to year (small populations); their spread is capped there in migration_rate_sd.csv",
                        100.0 * kunta::estimate::MAX_RATE_SD
                    );
                }
            }
            println!(
                "{} written to {}: run it with `kunta run {}`",
                w.files.join(", "),
                out.display(),
                out.join("scenario.toml").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backtest {
            history,
            jump_off,
            horizon,
            rates,
            trajectories,
            seed,
            out,
            format,
        } => {
            let format = match format {
                OutFormat::Csv => Format::Csv,
                OutFormat::Parquet => Format::Parquet,
                OutFormat::Xlsx => {
                    usage!("--format xlsx: the backtest table is written as parquet or csv")
                }
            };
            let opts = rates.options()?;
            let h = kunta::io::estimate::read_history(&history)?;
            let (births, deaths) = rates.read(&h)?;
            let t = trajectories.map(|n| kunta::estimate::backtest::Trajectories {
                n: n as usize,
                seed,
            });
            // A jump-off and horizon that end past the history cannot be compared:
            // said, not dropped unseen.
            let last = h.years().last().map_or(0, |y| y.0);
            let (mut left_out, mut pairs_out) = (Vec::new(), 0);
            for &j in &jump_off {
                let past: Vec<String> = horizon
                    .iter()
                    .filter(|hz| j + **hz as i32 > last)
                    .map(ToString::to_string)
                    .collect();
                if !past.is_empty() {
                    pairs_out += past.len();
                    left_out.push(format!("jump-off {j} at horizon {}", past.join(", ")));
                }
            }
            // Where none is left, the backtest's own error says so.
            if pairs_out > 0 && pairs_out < jump_off.len() * horizon.len() {
                eprintln!(
                    "note: left out, as they end after the history's last year {last}: {}",
                    left_out.join("; ")
                );
            }
            let rows = kunta::estimate::backtest::backtest_with(
                &h, &births, &deaths, &jump_off, &horizon, &opts, t,
            )?;
            let about = backtest_about(&history, &rates, &jump_off, &horizon, trajectories, seed)?;
            kunta::io::estimate::write_backtest(&out, &rows, format, &about)?;
            print!(
                "{}",
                kunta::report::console::backtest(&kunta::estimate::backtest::scores(&rows))
            );
            let cov = kunta::estimate::backtest::coverage(&rows);
            if !cov.is_empty() {
                println!("\ncoverage of kunta's intervals (share of cells inside)");
                for (h, level, share, cells) in cov {
                    println!(
                        "horizon {h:>2} years: the {:.0} % interval holds {:>5.1} % of {cells} cells",
                        100.0 * level,
                        100.0 * share
                    );
                }
                println!("\nby group: the 50 % and the 90 % interval (share of cells inside)");
                println!(
                    "{:<8} {:>7} {:>10} {:>10} {:>6}",
                    "group", "horizon", "50 %", "90 %", "cells"
                );
                for c in kunta::estimate::backtest::coverage_by_group(&rows) {
                    println!(
                        "{:<8} {:>7} {:>9.1} % {:>8.1} % {:>6}",
                        c.group,
                        c.horizon,
                        100.0 * c.inside_50,
                        100.0 * c.inside_90,
                        c.cells
                    );
                }
            }
            println!("\nthe backtest table written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { scenario, variants } => {
            // The notes too: a scenario can be valid and still hold a slip worth a
            // look (shares from a year past the end, a unit not open yet).
            let problems = match load_with_variants(Source::File(scenario.clone()), &variants) {
                Ok(l) => {
                    print_notes(&l);
                    check_trajectories(&l, None).err().into_iter().collect()
                }
                Err(e) => e.problems,
            };
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
        usage!("{}: the output must end in .csv or .parquet", out.display());
    };
    let encoding = match encoding.map(str::parse::<TextEncoding>) {
        None => TextEncoding::Detect,
        Some(Ok(e)) => e,
        // A usage error, like any other bad option.
        Some(Err(m)) => {
            eprintln!("error: --encoding: {m}");
            return Ok(ExitCode::from(2));
        }
    };
    let table = read_table(
        input,
        &CsvOptions {
            encoding,
            delimiter: None,
            value_column: None,
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

/// The options of `kunta run` besides the scenario, directory and format.
struct RunOptions {
    json: bool,
    trajectories: Option<u32>,
    seed: Option<u64>,
    quiet: bool,
    variants: Vec<PathBuf>,
    report: bool,
    lang: kunta::report::Lang,
}

/// The notes of a loaded scenario on stderr, then each variant's own (a unit it opens
/// later than its catchment sends pupils, …), named; a note a variant shares with the
/// scenario is said once.
fn print_notes(loaded: &LoadedScenario) {
    for n in &loaded.notes {
        eprintln!("note: {n}");
    }
    for v in &loaded.variants {
        for n in v.loaded.notes.iter().filter(|n| !loaded.notes.contains(n)) {
            eprintln!("note: variant `{}`: {n}", v.variant.name);
        }
    }
}

fn run(
    scenario: Option<PathBuf>,
    out: &Path,
    format: OutFormat,
    o: RunOptions,
) -> Result<ExitCode> {
    let json = o.json;
    let started = Instant::now();
    let source = scenario.map_or(Source::Example, Source::File);
    let loaded = load_with_variants(source, &o.variants)?;
    if !o.quiet {
        print_notes(&loaded);
    }
    let options = kunta::io::run::WriteOptions {
        format: match format {
            OutFormat::Parquet => kunta::io::run::TableFormat::Parquet,
            OutFormat::Csv => kunta::io::run::TableFormat::Csv,
            OutFormat::Xlsx => kunta::io::run::TableFormat::Xlsx,
        },
        report: o.report.then_some(o.lang),
        lang: o.lang,
    };
    // Refused before the deterministic run, let alone the trajectories.
    check_trajectories(&loaded, o.trajectories).map_err(anyhow::Error::msg)?;
    let mut output = kunta::io::run::run(&loaded)?;
    let spec = kunta::io::run::uncertainty_spec(&loaded, o.trajectories, o.seed);
    if spec.is_none() && o.seed.is_some() && !o.quiet {
        eprintln!(
            "note: --seed applies to trajectories, and this run has none (give --trajectories N or [uncertainty] trajectories)"
        );
    }
    if let Some(spec) = spec {
        use std::io::IsTerminal;
        let bar = (!o.quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} trajectories [{bar:40}] {percent:>3} % {elapsed} (eta {eta})",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            b
        });
        let progress = |done: usize, total: usize| {
            if let Some(b) = &bar {
                b.set_length(total as u64);
                b.set_position(done as u64);
            }
        };
        kunta::io::run::run_uncertainty(&loaded, &mut output, &spec, &progress)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    let unmet: f64 = output
        .projection
        .components
        .iter()
        .flatten()
        .map(|c| c.unmet_out_migration.sum())
        .sum();
    if unmet > 0.0 {
        eprintln!(
            "warning: {unmet:.1} persons of out-migration could not leave because nobody was left (reported as unmet_out_migration; details in manifest.json)"
        );
    }
    kunta::io::run::write(&loaded, &output, out, options, started)?;
    if json {
        println!(
            "{}",
            serde_json::to_value(&output.summary).context("the summary as JSON")?
        );
    } else {
        print!(
            "{}",
            kunta::report::console::population(&loaded, &output.projection)
        );
        print!("{}", kunta::report::console::services(&output.summary));
        print!("{}", kunta::report::console::units(&output.summary));
        print!("{}", kunta::report::console::variants(&output.summary));
        println!("\ntables written to {}", out.display());
    }
    // The process ends here: its memory goes back whole, so the run's tables (a
    // national run's are hundreds of megabytes in millions of pieces) are not freed
    // one by one first.
    std::mem::forget(output);
    std::mem::forget(loaded);
    Ok(ExitCode::SUCCESS)
}

/// What a backtest was run from and with, for its manifest: each input file's path
/// and hash, the jump-offs and horizons, the rate options, and the trajectories with
/// their seed.
fn backtest_about(
    history: &Path,
    rates: &RateArgs,
    jump_off: &[i32],
    horizon: &[u32],
    trajectories: Option<u32>,
    seed: u64,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    use serde_json::json;
    let roles = [
        ("history", Some(history)),
        ("births", rates.births.as_deref()),
        ("fertility_rates", rates.fertility_rates.as_deref()),
        ("deaths", rates.deaths.as_deref()),
        ("death_rates", rates.death_rates.as_deref()),
    ];
    let files = roles
        .into_iter()
        .filter_map(|(role, p)| Some((role, p?)))
        .map(|(role, p)| {
            let bytes =
                std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            Ok(json!({
                "role": role,
                "path": p.display().to_string(),
                "sha256": kunta::io::sha256_hex(&bytes)
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut m = serde_json::Map::new();
    m.insert("inputs".into(), json!(files));
    m.insert("jump_offs".into(), json!(jump_off));
    m.insert("horizons".into(), json!(horizon));
    m.insert(
        "options".into(),
        json!({
            "years": rates.years,
            "fertility_level": rates.fertility_level,
            "improvement": rates.improvement,
            "improvement_years": rates.improvement_years,
            "migration_level": rates.migration_level,
            "shrink": rates.shrink,
        }),
    );
    if let Some(n) = trajectories {
        m.insert("trajectories".into(), json!(n));
        m.insert("seed".into(), json!(seed));
    }
    Ok(m)
}
