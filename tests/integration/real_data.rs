//! Tests against real Statistics Finland data and real PX / JSON-stat files.
//!
//! They read the folder `KUNTA_REAL_DATA` points at (`../shared/data` in CI) and are
//! skipped, with a message, where it is unset.

use kunta::io::{
    checked_records, read_population, read_table, to_population, CsvOptions, LongTable,
};
use kunta::population::{Age, Sex, Year};
use std::path::PathBuf;

fn data(rel: &str) -> Option<PathBuf> {
    match std::env::var_os("KUNTA_REAL_DATA") {
        Some(dir) => {
            let p = PathBuf::from(dir).join(rel);
            assert!(
                p.exists(),
                "KUNTA_REAL_DATA is set but {} is missing",
                p.display()
            );
            Some(p)
        }
        None => {
            eprintln!("skipped: set KUNTA_REAL_DATA to the shared data folder to run this test");
            None
        }
    }
}

fn table(rel: &str) -> Option<LongTable> {
    let p = data(rel)?;
    Some(read_table(&p, &CsvOptions::default()).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn constructed_px_and_jsonstat_give_the_same_cube() {
    let (Some(px), Some(js)) = (
        table("px_fixtures/CONSTRUCTED_11re_style_3munis_2019.px"),
        table("jsonstat_fixtures/CONSTRUCTED_11re_style_3munis_age_sex_2019.json"),
    ) else {
        return;
    };
    let (a, skipped_a) = to_population(&px).unwrap();
    let (b, skipped_b) = to_population(&js).unwrap();
    assert_eq!(skipped_a.rows() + skipped_b.rows(), 0);
    assert_eq!(a.values().len(), 606);
    assert_eq!(a, b, "the PX and JSON-stat readers disagree");
    assert_eq!(a.omega(), Age(100));
    assert_eq!(a.areas(), ["KU638", "KU235", "KU890"]);
    assert_eq!(a.total(Year(2019)), Some(61_389.0));
    let total = |code: &str| {
        let i = a.area_index(code).unwrap();
        Sex::ALL
            .iter()
            .map(|s| a.ages(i, *s, a.year_index(Year(2019)).unwrap()).sum())
            .sum::<f64>()
    };
    assert_eq!(total("KU638"), 50_380.0);
    assert_eq!(total("KU235"), 9_797.0);
    assert_eq!(total("KU890"), 1_212.0);
    // First DATA line of the PX: Porvoo, age 0: men 215, women 182.
    let porvoo = a.area_index("KU638").unwrap();
    assert_eq!(a.get(porvoo, Sex::Male, Age(0), Year(2019)), Some(215.0));
    assert_eq!(a.get(porvoo, Sex::Female, Age(0), Year(2019)), Some(182.0));
}

#[test]
fn swiss_multilingual_px() {
    let Some(t) = table("px_fixtures/px-x-0602000000_107.px") else {
        return;
    };
    assert_eq!(t.len(), 60_800);
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Wirtschaftsabteilung",
            "Ausbildungsniveau",
            "Schwierigkeiten",
            "Gewichtung",
            "Quartal"
        ]
    );
    // DECIMALS=4: values as written; their sum, computed independently of kunta.
    assert!((t.sum() - 1_215_999.991_3).abs() < 1e-3, "{}", t.sum());
    assert_eq!(t.columns[0].get(0), "5-96");
    assert_eq!(t.columns[0].level_label(0), "5-96 Total");
    assert_eq!(t.columns[4].get(0), "2004Q1");
    assert!(t.values.iter().all(Option::is_some));
}

#[test]
fn px_with_multiline_note_and_missing_values() {
    let Some(t) = table("px_fixtures/27067.px") else {
        return;
    };
    assert_eq!(t.len(), 29 * 4 * 7);
    let sizes: Vec<usize> = t.columns.iter().map(|c| c.levels.len()).collect();
    assert_eq!(sizes.iter().product::<usize>(), 812);
    assert_eq!(t.values.iter().filter(|v| v.is_none()).count(), 460);
    // One VALUES entry holds a `;` inside its quotes.
    assert!(t.columns.iter().any(|c| c
        .level_labels
        .as_ref()
        .unwrap_or(&c.levels)
        .iter()
        .any(|l| l.contains(';'))));
}

#[test]
fn px_with_semicolons_ending_data_lines() {
    let Some(t) = table("px_fixtures/14001.px") else {
        return;
    };
    assert_eq!(t.len(), 8_064);
    assert_eq!(t.values.iter().filter(|v| v.is_none()).count(), 2_260);
}

#[test]
fn pxweb_csv_exports_give_the_national_totals() {
    for (file, year, total) in [
        (
            "fi_statfin_11re/005_11re_2019_raw_iso8859.csv",
            2019,
            5_525_292.0,
        ),
        (
            "fi_statfin_11re/005_11re_2018_raw_iso8859.csv",
            2018,
            5_517_919.0,
        ),
    ] {
        let Some(p) = data(file) else { return };
        let (pop, skipped) = read_population(&p, &CsvOptions::default()).unwrap();
        assert_eq!(pop.total(Year(year)), Some(total), "{file}");
        assert_eq!(pop.omega(), Age(100));
        assert!(!pop.areas().iter().any(|a| a == "KOKO MAA"));
        assert!(skipped.rows() > 0);
    }
}

#[test]
fn pxweb_export_matches_the_long_table_cell_by_cell() {
    let (Some(raw), Some(long)) = (
        data("fi_statfin_11re/005_11re_2019_raw_iso8859.csv"),
        data("fi_statfin_11re/11re_2018_2019_municipality_age_sex_long.csv"),
    ) else {
        return;
    };
    let (raw, _) = read_population(&raw, &CsvOptions::default()).unwrap();
    // The long table holds 2018 and 2019, and a municipality merged in 2019 has no 2019
    // rows: read it as records, not as a full grid.
    let long = read_table(&long, &CsvOptions::default()).unwrap();
    let (records, _) = checked_records(&long).unwrap();
    let y = Year(2019);
    let mut compared = 0;
    for r in records.iter().filter(|r| r.year == y) {
        let i = raw
            .area_index(&r.area)
            .unwrap_or_else(|| panic!("{} missing", r.area));
        assert_eq!(raw.get(i, r.sex, r.age, y), Some(r.value), "{r:?}");
        compared += 1;
    }
    assert_eq!(compared, raw.values().len());
    assert!(raw.areas().len() >= 310);
}

#[test]
fn statfin_jsonstat_responses_with_new_dimension_ids() {
    let Some(t) = table("jsonstat_fixtures/statfin_11re_helsinki_total_2021_2025.json") else {
        return;
    };
    assert_eq!(
        t.values,
        [
            Some(658_457.0),
            Some(664_028.0),
            Some(674_500.0),
            Some(684_018.0),
            Some(694_392.0)
        ]
    );
    assert_eq!(t.columns[3].name, "timeperiod_y");
    assert_eq!(t.columns[3].get(4), "2025");
    // Every row is a total over age and sex: nothing is left for a population table.
    assert!(to_population(&t).is_err());
}

/// Rows of a small CSV as maps from column name to value (test helper, std only).
fn csv_rows(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

#[test]
fn helsinki_region_model_projection() {
    let Some(dir) = data("fi_helsinki_region_porvoo_model") else {
        return;
    };
    // The scenario runs in a temporary directory: name the data absolutely.
    let dir = std::fs::canonicalize(dir).unwrap();
    let scenario = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/helsinki_region/scenario.toml"),
    )
    .unwrap()
    .replace(
        "../../../shared/data/fi_helsinki_region_porvoo_model",
        &dir.display().to_string(),
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.toml"), scenario).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kunta"))
        .args(["run", "s.toml", "--format", "csv", "--out", "out"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = tmp.path().join("out");

    // Population: every cell, never negative, the base year as given.
    let pop = csv_rows(&out.join("population.csv"));
    assert_eq!(pop.len(), 5 * 2 * 100 * 22);
    let key = |r: &std::collections::HashMap<String, String>| {
        (
            r["area"].clone(),
            r["sex"].clone(),
            r["age"].parse::<u16>().unwrap(),
            r["year"].parse::<i32>().unwrap(),
        )
    };
    let mut p = std::collections::HashMap::new();
    for r in &pop {
        let v: f64 = r["population"].parse().unwrap();
        assert!(v >= 0.0, "negative population {r:?}");
        p.insert(key(r), v);
    }
    let sex_name = |code: &str| if code == "1" { "male" } else { "female" }.to_string();
    for r in csv_rows(&dir.join("base_population_2019_5areas_age_sex.csv")) {
        let k = (
            r["area"].clone(),
            sex_name(&r["sex"]),
            r["age"].parse().unwrap(),
            2019,
        );
        assert_eq!(p[&k], r["population"].parse::<f64>().unwrap());
    }
    let total = |y: i32| {
        p.iter()
            .filter(|(k, _)| k.3 == y)
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    assert_eq!(total(2019), 1_511_337.0);
    assert!((1.7e6..2.0e6).contains(&total(2040)), "{}", total(2040));

    // One cell by hand, from the input files: Helsinki (2) men aged 1 at the end of
    // 2020 were aged 0 at its start: P(0)·(1 − q(0)/1000) + Σ in − Σ out (total × share).
    let q0: f64 = csv_rows(&dir.join("mortality_rates_per1000_2020_2040.csv"))
        .iter()
        .find(|r| r["year"] == "2020" && r["area"] == "2" && r["sex"] == "1" && r["age"] == "0")
        .unwrap()["deaths_per_1000"]
        .parse()
        .unwrap();
    let mut expected = p[&("2".into(), "male".into(), 0, 2019)] * (1.0 - q0 / 1000.0);
    for flow in ["hs_internal", "labour_area", "international"] {
        for (dir_name, sign) in [("in", 1.0), ("out", -1.0)] {
            let rows = csv_rows(&dir.join(format!(
                "migration_{flow}_{dir_name}_age_sex_distribution.csv"
            )));
            let r = rows
                .iter()
                .find(|r| r["area"] == "2" && r["sex"] == "1" && r["age"] == "0")
                .unwrap();
            let t: f64 = r["total_moves_per_year"].parse().unwrap();
            let share: f64 = r["age_share"].parse().unwrap();
            expected += sign * t * share;
        }
    }
    let got = p[&("2".into(), "male".into(), 1, 2020)];
    assert!(
        (got - expected).abs() <= 1e-9 * expected,
        "{got} vs {expected}"
    );

    // Components: the balancing equation for every area, sex and year; and the one
    // small cohort the published model lets go negative is reported as unmet here.
    let mut unmet = 0.0;
    for c in csv_rows(&out.join("components.csv")) {
        let y: i32 = c["year"].parse().unwrap();
        let sum = |year: i32| -> f64 {
            (0..100)
                .map(|x| p[&(c["area"].clone(), c["sex"].clone(), x, year)])
                .sum()
        };
        let f = |k: &str| c[k].parse::<f64>().unwrap();
        let rhs = sum(y - 1) + f("births") - f("deaths") + f("in_migration") - f("out_migration")
            + f("unmet_out_migration");
        assert!((sum(y) - rhs).abs() <= 1e-9 * rhs, "{c:?}");
        assert!((f("net_migration") - (f("in_migration") - f("out_migration"))).abs() < 1e-6);
        unmet += f("unmet_out_migration");
    }
    assert!(unmet > 0.0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("unmet")));
}

/// The 19 regions' series (`fi_regions_bayespop`) as long tables in `dir`, as a user
/// converts them: `history.csv` (area, sex, age, year, population; 1972–2025),
/// `fertility_rates.csv` (area, year, age, rate: births per woman by the mother's age,
/// the total fertility × the percentage schedule) and `death_rates.csv` (area, year,
/// sex, age, rate). Finland as a whole (code 246) is left out: it is their sum.
fn regions(dir: &std::path::Path) -> Option<()> {
    use std::fmt::Write as _;
    let src = data("fi_regions_bayespop")?;
    let read = |name: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(src.join(name))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('\t').map(|f| f.trim().to_string()).collect())
            .collect()
    };
    // Columns from `first` on are the years of the header.
    let years = |rows: &[Vec<String>], first: usize| -> Vec<String> { rows[0][first..].to_vec() };
    let region = |code: &str| code != "246" && code != "0";
    let mut hist = String::from("area,sex,age,year,population\n");
    for (file, sex) in [("popF.txt", "female"), ("popM.txt", "male")] {
        let rows = read(file);
        let ys = years(&rows, 3);
        for r in rows[1..].iter().filter(|r| region(&r[0])) {
            for (y, v) in ys.iter().zip(&r[3..]) {
                let _ = writeln!(hist, "{},{sex},{},{y},{v}", r[0], r[2]);
            }
        }
    }
    std::fs::write(dir.join("history.csv"), hist).unwrap();
    let tfr_rows = read("tfr.txt");
    let tfr_years = years(&tfr_rows, 4);
    let tfr: std::collections::HashMap<(String, String), f64> = tfr_rows[1..]
        .iter()
        .flat_map(|r| {
            tfr_years
                .iter()
                .zip(&r[4..])
                .map(|(y, v)| ((r[1].clone(), y.clone()), v.parse::<f64>().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut fert = String::from("area,year,age,rate\n");
    let rows = read("pasfr.txt");
    let ys = years(&rows, 3);
    for r in rows[1..].iter().filter(|r| region(&r[0])) {
        for (y, v) in ys.iter().zip(&r[3..]) {
            let pct: f64 = v.parse().unwrap();
            let _ = writeln!(
                fert,
                "{},{y},{},{}",
                r[0],
                r[2],
                tfr[&(r[0].clone(), y.clone())] * pct / 100.0
            );
        }
    }
    std::fs::write(dir.join("fertility_rates.csv"), fert).unwrap();
    let mut deaths = String::from("area,year,sex,age,rate\n");
    for (file, sex) in [("mxF.txt", "female"), ("mxM.txt", "male")] {
        let rows = read(file);
        let ys = years(&rows, 3);
        for r in rows[1..].iter().filter(|r| region(&r[0])) {
            for (y, v) in ys.iter().zip(&r[3..]) {
                let _ = writeln!(deaths, "{},{y},{sex},{},{v}", r[0], r[1]);
            }
        }
    }
    std::fs::write(dir.join("death_rates.csv"), deaths).unwrap();
    Some(())
}

/// MAPE by (group, horizon, method) from a `backtest.csv`.
fn mape(
    path: &std::path::Path,
) -> std::collections::BTreeMap<(String, u32, String), (f64, f64, usize)> {
    let mut acc: std::collections::BTreeMap<(String, u32, String), (f64, f64, usize)> =
        Default::default();
    for r in csv_rows(path) {
        let e: f64 = r["error_pct"].parse().unwrap();
        let k = (
            r["group"].clone(),
            r["horizon"].parse().unwrap(),
            r["method"].clone(),
        );
        let v = acc.entry(k).or_default();
        v.0 += e.abs();
        v.1 += e;
        v.2 += 1;
    }
    for v in acc.values_mut() {
        v.0 /= v.2 as f64;
        v.1 /= v.2 as f64;
    }
    acc
}

#[test]
fn regions_estimate_run_and_backtest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    if regions(dir).is_none() {
        return;
    }
    let kunta = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_kunta"))
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let rates = [
        "--fertility-rates",
        "fertility_rates.csv",
        "--death-rates",
        "death_rates.csv",
    ];
    // Estimate from 2020–2024 and run the scenario it writes.
    let mut args = vec![
        "estimate",
        "history.csv",
        "--base-year",
        "2024",
        "--out",
        "est",
    ];
    args.extend(rates);
    let out = kunta(&args);
    assert!(out.contains("rates for 19 areas from 2020–2024"), "{out}");
    let out = kunta(&[
        "run",
        "est/scenario.toml",
        "--out",
        "run",
        "--format",
        "csv",
        "--trajectories",
        "200",
    ]);
    assert!(out.contains("19 areas"), "{out}");
    // The first projected year against what happened in 2025: within 0.5 % for every
    // region's total.
    let hist = read_population(&dir.join("history.csv"), &CsvOptions::default())
        .unwrap()
        .0;
    let run = csv_rows(&dir.join("run/population.csv"));
    let mut projected: std::collections::HashMap<String, f64> = Default::default();
    for r in run.iter().filter(|r| r["year"] == "2025") {
        *projected.entry(r["area"].clone()).or_default() += r["population"].parse::<f64>().unwrap();
    }
    let y = hist.year_index(Year(2025)).unwrap();
    for (a, area) in hist.areas().iter().enumerate() {
        let observed: f64 = Sex::ALL
            .iter()
            .map(|s| hist.ages(kunta::population::AreaIndex(a), *s, y).sum())
            .sum();
        let err = (projected[area] - observed) / observed;
        assert!(
            err.abs() < 0.005,
            "{area}: {projected:?} against {observed}",
            projected = projected[area]
        );
    }

    // The backtest from 2010, 2015 and 2020 at 5 and 10 years.
    let mut args = vec![
        "backtest",
        "history.csv",
        "--jump-off",
        "2010,2015,2020",
        "--horizon",
        "5,10",
        "--format",
        "csv",
        "--out",
        "bt",
    ];
    args.extend(rates);
    let printed = kunta(&args);
    eprintln!("{printed}");
    let m = mape(&dir.join("bt/backtest.csv"));
    // 2010 and 2015 reach 10 years, all three reach 5: 19 regions each.
    assert_eq!(m[&("total".to_string(), 5, "kunta".to_string())].2, 3 * 19);
    assert_eq!(m[&("total".to_string(), 10, "kunta".to_string())].2, 2 * 19);
    let get = |g: &str, h: u32, method: &str| m[&(g.to_string(), h, method.to_string())].0;
    // kunta beats both baselines in every group at both horizons (ACCURACY.md).
    for h in [5, 10] {
        for g in [
            "total", "0-6", "7-12", "13-15", "16-18", "19-64", "65-74", "75+",
        ] {
            for base in ["naive", "linear"] {
                assert!(
                    get(g, h, "kunta") < get(g, h, base),
                    "{g} at {h} years against {base}: {m:?}"
                );
            }
        }
    }
    // The figures ACCURACY.md records for the default choices, as bounds that catch a
    // change for the worse (the targets, 1.2 % and 5 %, are not met yet).
    assert!(get("total", 5, "kunta") < 1.34, "{m:?}");
    assert!(get("total", 10, "kunta") < 1.78, "{m:?}");
    assert!(get("0-6", 5, "kunta") < 6.1, "{m:?}");
    // With trajectories: kunta's intervals and their coverage at 5 years, which the
    // issue asks to lie within 80–97 % for the 90 % interval (ACCURACY.md: 85 %).
    let mut args = vec![
        "backtest",
        "history.csv",
        "--jump-off",
        "2010,2015,2020",
        "--horizon",
        "5",
        "--trajectories",
        "200",
        "--format",
        "csv",
        "--out",
        "btmc",
    ];
    args.extend(rates);
    let printed = kunta(&args);
    assert!(printed.contains("the 90 % interval holds"), "{printed}");
    let rows: Vec<_> = csv_rows(&dir.join("btmc/backtest.csv"))
        .into_iter()
        .filter(|r| r["method"] == "kunta")
        .collect();
    assert_eq!(rows.len(), 3 * 19 * 8);
    let inside = |lo: &str, hi: &str| {
        rows.iter()
            .filter(|r| {
                let v = |k: &str| r[k].parse::<f64>().unwrap();
                v(lo) <= v("observed") && v("observed") <= v(hi)
            })
            .count() as f64
            / rows.len() as f64
    };
    let (c50, c90) = (inside("p25", "p75"), inside("p05", "p95"));
    assert!((0.80..=0.97).contains(&c90), "90 % interval: {c90}");
    assert!((0.40..=0.65).contains(&c50), "50 % interval: {c50}");
    for r in &rows {
        let v = |k: &str| r[k].parse::<f64>().unwrap();
        assert!(
            v("p05") <= v("predicted") && v("predicted") <= v("p95"),
            "{r:?}"
        );
    }
    // The spreads `estimate` calibrated went into the scenario.
    let toml = std::fs::read_to_string(dir.join("est/scenario.toml")).unwrap();
    assert!(
        toml.contains("fertility_sd = 0.")
            && toml.contains("migration_sd = 0.")
            && toml.contains("migration_rate_sd = \"migration_rate_sd.csv\""),
        "{toml}"
    );
    assert!(dir.join("est/improvement.csv").exists());
}
