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
