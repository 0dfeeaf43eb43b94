//! `kunta run` through the binary on a national scenario, as a user runs it: every
//! Finnish municipality's real population at the end of 2019 (Statistics Finland
//! 11re, read from its PxWeb CSV export), projected 30 years, with the bundled
//! example's eight services (coverage tables by age, support segments, teaching, floor
//! area, staff, costs) and a service network of a school and a care home in every
//! municipality; every table written as Parquet. Deterministic, and with 1000
//! trajectories.
//!
//! The real data is read from `KUNTA_REAL_DATA` (or `../shared/data`); without it the
//! bench says so and does nothing. The scenario is written to
//! `target/national-bench/` outside the timed closure, so that it can also be run by
//! hand: `kunta run target/national-bench/scenario.toml --trajectories 1000`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BASE_YEAR: i32 = 2019;
const YEARS: i32 = 30;

/// The shared data folder, if present.
fn real_data() -> Option<PathBuf> {
    let dir = std::env::var_os("KUNTA_REAL_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    dir.join("fi_statfin_11re").is_dir().then_some(dir)
}

/// Writes the national scenario into `dir` from the real data in `data`.
fn write_scenario(data: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/esimerkkila");
    for f in [
        "fertility.csv",
        "mortality.csv",
        "migration_domestic_in_profile.csv",
        "migration_domestic_out_rates.csv",
        "ecec_coverage.csv",
        "ecec_share_under_3.csv",
        "ecec_share_from_3.csv",
        "home_care_coverage.csv",
        "care_24h_coverage.csv",
    ] {
        std::fs::copy(example.join(f), dir.join(f))?;
    }
    // Each municipality's population, its 7–12-year-olds and its over-75s in 2019,
    // from the long table (the same figures as the PxWeb export the run reads).
    let long = std::fs::read_to_string(
        data.join("fi_statfin_11re/11re_2018_2019_municipality_age_sex_long.csv"),
    )?;
    let mut areas: BTreeMap<String, [f64; 3]> = BTreeMap::new();
    for line in long.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        // Municipalities only: the whole country's rows are a total.
        if f.len() != 5 || f[0] != "2019" || f[1] == "KOKO MAA" {
            continue;
        }
        let (age, v): (u32, f64) = (f[2].parse().unwrap_or(0), f[4].parse().unwrap_or(0.0));
        let e = areas.entry(f[1].to_string()).or_default();
        e[0] += v;
        if (7..=12).contains(&age) {
            e[1] += v;
        }
        if age >= 75 {
            e[2] += v;
        }
    }
    // Moves in from other municipalities: 4.5 % of the population a year.
    let mut totals = String::from("area,total\n");
    let mut catchment = String::from("area,unit,share\n");
    let mut units = String::new();
    for (i, (name, [pop, pupils, old])) in areas.iter().enumerate() {
        let _ = writeln!(totals, "{name},{:.0}", 0.045 * pop);
        let _ = writeln!(
            catchment,
            "{name},{name} school,1\n{name},{name} care home,1"
        );
        // A school with room for 2019's pupils and a little more, every other one
        // rather less; a care home for 9 % of the over-75s.
        let school = (pupils * if i % 2 == 0 { 1.05 } else { 0.97 })
            .ceil()
            .max(10.0);
        let care = (0.09 * old).ceil().max(5.0);
        let _ = write!(
            units,
            "\n[[unit]]\nid = \"{name} school\"\nservice = \"basic_1_6\"\ncapacity = {school}\nfloor_area = {:.0}\n\n[[unit]]\nid = \"{name} care home\"\nservice = \"care_24h\"\ncapacity = {care}\nfloor_area = {:.0}\n",
            school * 10.0,
            care * 40.0
        );
    }
    std::fs::write(dir.join("in_total.csv"), totals)?;
    std::fs::write(dir.join("catchment.csv"), catchment)?;
    // The example's eight municipal services, as its scenario file gives them (not
    // the outcome service its variants use, which comes after them).
    let example_toml = std::fs::read_to_string(example.join("scenario.toml"))?;
    let end = example_toml
        .find("[[service]]\nid = \"neet_18_29\"")
        .or_else(|| example_toml.find("[[unit]]"));
    let services = example_toml
        .find("[[service]]")
        .zip(end)
        .map(|(a, b)| &example_toml[a..b])
        .unwrap_or_default();
    let population =
        std::fs::canonicalize(data.join("fi_statfin_11re/005_11re_2019_raw_iso8859.csv"))?;
    let scenario = format!(
        r#"# A national scenario for benchmarks: every municipality, 2019–{end}.
[scenario]
name = "Suomi"
base_year = {BASE_YEAR}
end_year = {end}
discount_rate = 0.035

[population]
file = "{population}"

[fertility]
file = "fertility.csv"
scale = 1000

[mortality]
file = "mortality.csv"
scale = 1000
improvement = 0.01

[[migration]]
name = "domestic"
direction = "in"
total = "in_total.csv"
profile = "migration_domestic_in_profile.csv"

[[migration]]
name = "domestic"
direction = "out"
rates = "migration_domestic_out_rates.csv"
scale = 1000

{services}
[catchment]
file = "catchment.csv"
{units}"#,
        end = BASE_YEAR + YEARS,
        population = population.display(),
    );
    std::fs::write(dir.join("scenario.toml"), scenario)
}

fn national(c: &mut Criterion) {
    let Some(data) = real_data() else {
        eprintln!(
            "national: no real data (set KUNTA_REAL_DATA to the shared data folder): skipped"
        );
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/national-bench");
    write_scenario(&data, &dir).expect("write the national scenario");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kunta"))
            .args(["run", "scenario.toml", "--quiet", "--json"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("kunta runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let mut g = c.benchmark_group("kunta_run_national");
    g.sample_size(10);
    g.bench_function(
        format!("310areas_x{YEARS}years_8services_deterministic"),
        |b| b.iter(|| run(&["--out", "out-det"])),
    );
    g.bench_function(format!("310areas_x{YEARS}years_8services_1000traj"), |b| {
        b.iter(|| run(&["--out", "out-mc", "--trajectories", "1000"]))
    });
    g.finish();
}

criterion_group!(benches, national);
criterion_main!(benches);
