//! `kunta estimate` and `kunta backtest` as a user runs them on a small history.

use super::{kunta, stderr};

/// Two areas, ages 0–60, 2015–2024: 100 persons a cell, 2 more each year in area A;
/// births at the mother's ages 25–34 and deaths by a Gompertz curve.
fn history_dir() -> tempfile::TempDir {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut h = String::from("area,sex,age,year,population\n");
    let mut b = String::from("area,year,age,count\n");
    let mut d = String::from("area,year,sex,age,count\n");
    for area in ["A", "B"] {
        for year in 2015..=2024 {
            for sex in ["female", "male"] {
                for age in 0..=60 {
                    let extra = if area == "A" { 2 * (year - 2015) } else { 0 };
                    let _ = writeln!(h, "{area},{sex},{age},{year},{}", 100 + extra);
                    let deaths = (0.5 * (0.07 * f64::from(age)).exp() / 10.0).round();
                    let _ = writeln!(d, "{area},{year},{sex},{age},{deaths}");
                }
            }
            for age in 25..=34 {
                let _ = writeln!(b, "{area},{year},{age},12");
            }
        }
    }
    std::fs::write(dir.path().join("history.csv"), h).unwrap();
    std::fs::write(dir.path().join("births.csv"), b).unwrap();
    std::fs::write(dir.path().join("deaths.csv"), d).unwrap();
    dir
}

/// [`history_dir`] with the default estimate for 2024 written into `est`.
fn estimated_dir() -> tempfile::TempDir {
    let dir = history_dir();
    let o = kunta(
        &[
            "estimate",
            "history.csv",
            "--base-year",
            "2024",
            "--births",
            "births.csv",
            "--deaths",
            "deaths.csv",
            "--out",
            "est",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    dir
}

#[test]
fn an_estimated_scenario_runs_as_written() {
    let dir = history_dir();
    let args = [
        "estimate",
        "history.csv",
        "--base-year",
        "2024",
        "--births",
        "births.csv",
        "--deaths",
        "deaths.csv",
        "--end-year",
        "2030",
        "--out",
        "est",
    ];
    let o = kunta(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("rates for 2 areas from 2020–2024"), "{out}");
    for f in [
        "scenario.toml",
        "population.csv",
        "fertility.csv",
        "mortality.csv",
        "improvement.csv",
        "migration_net.csv",
        "migration_rate_sd.csv",
    ] {
        assert!(dir.path().join("est").join(f).exists(), "{f}");
    }
    let toml = std::fs::read_to_string(dir.path().join("est/scenario.toml")).unwrap();
    assert!(
        toml.contains("migration_rate_sd = \"migration_rate_sd.csv\"")
            && toml.contains("migration_rate_ar = 1.0"),
        "{toml}"
    );
    let sd = std::fs::read_to_string(dir.path().join("est/migration_rate_sd.csv")).unwrap();
    assert!(sd.starts_with("area,age,sd\n"), "{sd}");
    // Area A grew by 2 persons a cell a year with no change in B: the net flow is
    // what the births and deaths leave, and the scenario runs.
    let net = std::fs::read_to_string(dir.path().join("est/migration_net.csv")).unwrap();
    assert!(net.starts_with("area,sex,age,count\n"));
    assert!(net.lines().any(|l| l.starts_with("A,female,s,")));
    let o = kunta(
        &[
            "run",
            "est/scenario.toml",
            "--out",
            "o",
            "--trajectories",
            "20",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Estimating again into the same directory replaces it.
    let o = kunta(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // A backtest from 2020 at 2 and 4 years.
    let o = kunta(
        &[
            "backtest",
            "history.csv",
            "--jump-off",
            "2020",
            "--horizon",
            "2,4",
            "--births",
            "births.csv",
            "--deaths",
            "deaths.csv",
            "--years",
            "3",
            "--format",
            "csv",
            "--out",
            "bt",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let table = std::fs::read_to_string(dir.path().join("bt/backtest.csv")).unwrap();
    assert!(table.starts_with("jump_off,horizon,area,group,method,predicted,observed,error_pct\n"));
    // 2 horizons × 2 areas × 8 groups × 3 methods.
    assert_eq!(table.lines().count(), 1 + 2 * 2 * 8 * 3);
    assert!(String::from_utf8_lossy(&o.stdout).contains("horizon 4 years"));
    // The manifest says what it was run from and with, to run it again.
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bt/manifest.json")).unwrap(),
    )
    .unwrap();
    let inputs: Vec<(&str, &str)> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["role"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        inputs,
        [
            ("history", "history.csv"),
            ("births", "births.csv"),
            ("deaths", "deaths.csv")
        ]
    );
    assert!(m["inputs"][0]["sha256"].as_str().unwrap().len() == 64);
    assert_eq!(m["jump_offs"], serde_json::json!([2020]));
    assert_eq!(m["horizons"], serde_json::json!([2, 4]));
    assert_eq!(m["options"]["years"], 3);
    assert!(m.get("seed").is_none(), "no trajectories, no seed: {m}");
}

#[test]
fn bad_estimate_inputs_get_one_sentence() {
    let dir = history_dir();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "estimate",
                "history.csv",
                "--base-year",
                "2024",
                "--deaths",
                "deaths.csv",
                "--out",
                "e",
            ],
            "give either --births or --fertility-rates",
        ),
        (
            &[
                "estimate",
                "history.csv",
                "--base-year",
                "2018",
                "--births",
                "births.csv",
                "--deaths",
                "deaths.csv",
                "--out",
                "e",
            ],
            "the population history has no year 2013",
        ),
        (
            &[
                "estimate",
                "history.csv",
                "--base-year",
                "2024",
                "--births",
                "births.csv",
                "--deaths",
                "deaths.csv",
                "--fertility-level",
                "up",
                "--out",
                "e",
            ],
            "--fertility-level `up`",
        ),
        (
            &[
                "estimate",
                "history.csv",
                "--base-year",
                "2024",
                "--births",
                "births.csv",
                "--deaths",
                "births.csv",
                "--out",
                "e",
            ],
            "a deaths table needs a sex column",
        ),
        (
            &[
                "backtest",
                "history.csv",
                "--jump-off",
                "2022",
                "--horizon",
                "5",
                "--births",
                "births.csv",
                "--deaths",
                "deaths.csv",
                "--out",
                "b",
            ],
            "no jump-off year has an observed population 5 years later",
        ),
    ];
    for (args, expected) in cases {
        let o = kunta(args, dir.path());
        // A bad option or choice of options is a usage error (2), a bad input 1.
        let usage = expected.starts_with("give either") || expected.starts_with("--");
        let code = if usage { 2 } else { 1 };
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(expected), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!dir.path().join("e").exists() && !dir.path().join("b").exists());
    }
}

#[test]
fn a_run_never_writes_over_its_own_inputs_and_events_must_match_the_history() {
    let dir = estimated_dir();
    let before = std::fs::read(dir.path().join("est/scenario.toml")).unwrap();
    // Running the estimated scenario into its own directory is refused: nothing lost.
    let o = kunta(&["run", "est/scenario.toml", "--out", "est"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("an input of this run"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(dir.path().join("est/scenario.toml")).unwrap(),
        before
    );
    // Estimating into the directory that holds the history is refused too.
    let o = kunta(
        &[
            "estimate",
            "history.csv",
            "--base-year",
            "2024",
            "--births",
            "births.csv",
            "--deaths",
            "deaths.csv",
            "--out",
            ".",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("an input of this run"),
        "{}",
        stderr(&o)
    );
    // Births coded differently from the history, and a row given twice.
    let births = std::fs::read_to_string(dir.path().join("births.csv")).unwrap();
    std::fs::write(
        dir.path().join("coded.csv"),
        births.replace("\nA,", "\nKU001,"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("twice.csv"),
        format!("{births}A,2024,30,1\n"),
    )
    .unwrap();
    for (file, expected) in [
        ("coded.csv", "area `A` of the history has no rows"),
        (
            "twice.csv",
            "the same area, year, sex and age is given again",
        ),
    ] {
        let o = kunta(
            &[
                "estimate",
                "history.csv",
                "--base-year",
                "2024",
                "--births",
                file,
                "--deaths",
                "deaths.csv",
                "--out",
                "e2",
            ],
            dir.path(),
        );
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(file) && e.contains(expected), "{e}");
    }
}

#[test]
fn an_improvement_table_is_checked_row_by_row() {
    let dir = estimated_dir();
    let imp = std::fs::read_to_string(dir.path().join("est/improvement.csv")).unwrap();
    // Line 3 is female, age 1.
    let mut lines: Vec<String> = imp.lines().map(str::to_string).collect();
    lines[2] = "female,1,1.5".into();
    std::fs::write(
        dir.path().join("est/improvement.csv"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let o = kunta(&["validate", "est/scenario.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("improvement.csv: line 3, column `rate`, value `1.5`: a yearly improvement must be at least 0 and below 1"), "{e}");
}

#[test]
fn a_migration_rate_spread_widens_the_intervals_and_is_checked() {
    let dir = estimated_dir();
    let toml = std::fs::read_to_string(dir.path().join("est/scenario.toml")).unwrap();
    // The 90 % interval of area A's 7–12-year-olds in the last year, with the
    // scenario's uncertainty section as `rate_sd` leaves it.
    let width = |rate_sd: &str| -> f64 {
        let mut t: Vec<String> = toml
            .lines()
            .filter(|l| !l.starts_with("migration_rate_sd") && !l.starts_with("migration_rate_ar"))
            .map(str::to_string)
            .collect();
        t.push(rate_sd.to_string());
        std::fs::write(dir.path().join("est/s.toml"), t.join("\n") + "\n").unwrap();
        let _ = std::fs::remove_dir_all(dir.path().join("o"));
        let o = kunta(
            &[
                "run",
                "est/s.toml",
                "--out",
                "o",
                "--format",
                "csv",
                "--trajectories",
                "200",
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let q = std::fs::read_to_string(dir.path().join("o/population_quantiles.csv")).unwrap();
        let row = q
            .lines()
            .rfind(|l| l.contains(",A,all,7-12,"))
            .unwrap()
            .to_string();
        let f: Vec<f64> = row.split(',').skip(5).map(|v| v.parse().unwrap()).collect();
        // mean, p05, p25, p50, p75, p95
        assert!(f[1] <= f[3] && f[3] <= f[5], "{row}");
        f[5] - f[1]
    };
    let without = width("migration_rate_sd = 0.0");
    let with = width("migration_rate_sd = 0.02\nmigration_rate_ar = 0.5");
    assert!(with > 2.0 * without.max(1e-9), "{with} against {without}");
    // As a table, checked row by row; a negative number is refused by its key.
    std::fs::write(
        dir.path().join("est/sd.csv"),
        "area,age,sd\nA,0,0.01\nA,1,-0.5\n",
    )
    .unwrap();
    width("migration_rate_sd = 0.0");
    let t = std::fs::read_to_string(dir.path().join("est/s.toml"))
        .unwrap()
        .replace("migration_rate_sd = 0.0", "migration_rate_sd = \"sd.csv\"");
    std::fs::write(dir.path().join("est/s.toml"), &t).unwrap();
    let o = kunta(&["validate", "est/s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("sd.csv: line 3, column `sd`, value `-0.5`: a migration rate spread value must be a non-negative number"),
        "{e}"
    );
    // A table by area gives every area.
    std::fs::write(dir.path().join("est/sd.csv"), "area,age,sd\nA,0,0.01\n").unwrap();
    let o = kunta(&["validate", "est/s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("sd.csv: the migration rate spread table has no rows for area `B`"),
        "{}",
        stderr(&o)
    );
    std::fs::write(
        dir.path().join("est/s.toml"),
        t.replace("migration_rate_sd = \"sd.csv\"", "migration_rate_sd = -0.1"),
    )
    .unwrap();
    let o = kunta(&["validate", "est/s.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("uncertainty.migration_rate_sd"),
        "{}",
        stderr(&o)
    );
}
