//! The report, the workbook and the areas' own names, as a user gets them.

use super::{kunta, stderr};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example with its variants and 40 trajectories, as CSV tables with the report.
fn example(dir: &Path, out: &str, format: &str) {
    let o = kunta(
        &[
            "run",
            "--trajectories",
            "40",
            "--seed",
            "7",
            "--format",
            format,
            "--report",
            "--quiet",
            "--out",
            out,
        ],
        dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `x` with two decimals as the Finnish report writes it (a decimal comma, a minus
/// sign; no thousands here).
fn fi_2(x: f64) -> String {
    format!("{x:.2}").replace('.', ",").replace('-', "\u{2212}")
}

/// `x` as the Finnish report writes a whole number: a no-break space between
/// thousands from five digits on.
fn fi_int(x: f64) -> String {
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    if x < -0.5 {
        out.push('\u{2212}');
    }
    let n = s.len();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 && n >= 5 {
            out.push('\u{a0}');
        }
        out.push(ch);
    }
    out
}

/// The charts of a report by kind (`data-chart`), each checked to be one SVG with text
/// and something drawn.
fn charts(html: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for part in html.split("<figure class=\"chart\" data-chart=\"").skip(1) {
        let (kind, rest) = part.split_once('"').unwrap();
        let figure = &rest[..rest.find("</figure>").expect("a closed figure")];
        assert_eq!(figure.matches("<svg").count(), 1, "{kind}: one svg");
        assert!(figure.contains("</svg>"), "{kind}");
        assert!(
            figure.matches("<text").count() >= 5,
            "{kind}: title and axis labels"
        );
        assert!(
            figure.contains("<polyline") || figure.contains("<polygon") || figure.contains("<rect"),
            "{kind}: nothing drawn"
        );
        *out.entry(kind.to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn the_report_is_one_file_with_every_chart_and_the_tables_figures() {
    let dir = tempfile::tempdir().unwrap();
    example(dir.path(), "o", "csv");
    let html = std::fs::read_to_string(dir.path().join("o/report.html")).unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/summary.json")).unwrap()).unwrap();
    // Self-contained: nothing fetched.
    for bad in ["<link", "src=", "@import", "url(", "https://"] {
        assert!(!html.contains(bad), "the report fetches something: {bad}");
    }
    assert!(html.split("href=\"").skip(1).all(|h| h.starts_with('#')));
    let services = summary["services"].as_array().unwrap().len();
    let units = summary["units"].as_array().unwrap().len();
    let variants = summary["variants"].as_array().unwrap().len();
    assert_eq!((services, units, variants), (9, 6, 2));
    let c = charts(&html);
    for (kind, n) in [
        ("pyramid", 1),
        ("age-groups-young", 1),
        ("age-groups-adult", 1),
        ("demand", services),
        ("costs", services),
        ("unit", units),
        ("variant-costs", variants),
        ("variant-impact", variants),
    ] {
        assert_eq!(c.get(kind).copied().unwrap_or(0), n, "{kind}: {c:?}");
    }
    assert!(c.keys().any(|k| k.starts_with("resource-")), "{c:?}");
    // With trajectories: fans on the demand charts and the probabilities.
    assert!(html.contains("p05–p95\n</text>") && html.contains("P(vaje 2045)"));
    // Names as given and the headline figures as the summary has them.
    for name in [
        "Keskusta",
        "Harju",
        "Lampila",
        "Kylänpää",
        "Keskustan koulu",
        "Tehostettu tuki",
    ] {
        assert!(html.contains(name), "{name}");
    }
    for sv in summary["services"].as_array().unwrap() {
        assert!(html.contains(sv["name"].as_str().unwrap()));
        let cells = format!(
            "<td>{}</td><td>{}</td>",
            fi_int(sv["demand_first"].as_f64().unwrap()),
            fi_int(sv["demand_last"].as_f64().unwrap())
        );
        assert!(html.contains(&cells), "{cells}");
        // Its present value's p05–p95 beside its demand's.
        let pv = &sv["present_value_quantiles_eur"];
        let meur = |k: &str| format!("{}\u{a0}M€", fi_2(pv[k].as_f64().unwrap() / 1e6));
        let range = format!("<td>{} – {}</td>", meur("p05"), meur("p95"));
        assert!(html.contains(&range), "{range}");
    }
    // Net migration with its sign.
    let net = summary["net_migration"].as_f64().unwrap();
    assert!(net > 0.0);
    assert!(
        html.contains(&format!("<td>+{}</td>", fi_int(net))),
        "{net}"
    );
    let pop = fi_int(summary["population_last"].as_f64().unwrap());
    assert!(html.contains(&format!("<td>{pop} (")), "{pop}");
    assert!(html.contains("lang=\"fi\"") && html.contains("Väestö- ja palveluennuste"));
    // Each variant's difference said with its direction, and the ranges explained.
    for v in summary["variants"].as_array().unwrap() {
        let (name, diff) = (
            v["name"].as_str().unwrap(),
            v["present_value_diff_eur"].as_f64().unwrap(),
        );
        let way = if diff > 0.0 {
            "enemmän kuin"
        } else {
            "vähemmän kuin"
        };
        let said = format!(
            "{name} maksaa {}\u{a0}M€ {way} Esimerkkilä",
            fi_2(diff.abs() / 1e6)
        );
        assert!(html.contains(&said), "`{said}` not in the report");
    }
    assert!(html.contains("Vaihteluvälit (p05–p95) rajaavat 90 % simuloiduista poluista:"));
    // Each unit's years short of places and its largest shortage with its year, as
    // the capacity table has them.
    let cap = csv_rows(&dir.path().join("o/capacity.csv"));
    let col = |name: &str| cap[0].iter().position(|c| c == name).unwrap();
    let (sc, un, yr, sh) = (col("scenario"), col("unit"), col("year"), col("shortage"));
    let base = summary["scenario"].as_str().unwrap();
    let mut checked = 0;
    for u in summary["units"].as_array().unwrap() {
        let unit = u["unit"].as_str().unwrap();
        let short: Vec<(i64, f64)> = cap[1..]
            .iter()
            .filter(|r| r[sc] == base && r[un] == unit)
            .map(|r| (r[yr].parse().unwrap(), r[sh].parse().unwrap_or(0.0)))
            .filter(|(_, v): &(i64, f64)| *v > 0.0)
            .collect();
        let Some(&(y, v)) = short
            .iter()
            .fold(None, |m: Option<&(i64, f64)>, p| match m {
                Some(b) if b.1 >= p.1 => m,
                _ => Some(p),
            })
        else {
            continue;
        };
        let cells = format!("<td>{}</td><td>{} ({y})</td>", short.len(), fi_int(v));
        assert!(html.contains(&cells), "{unit}: `{cells}` not in the report");
        // Its places and the share kept spare, beside each other.
        let spare = u["spare_target"].as_f64().unwrap();
        let cells = format!(
            "<td>{}</td><td>{}\u{a0}%</td>",
            fi_int(u["capacity_last"].as_f64().unwrap()),
            fi_int(100.0 * spare)
        );
        assert!(html.contains(&cells), "{unit}: `{cells}` not in the report");
        checked += 1;
    }
    assert!(checked >= 2, "units short of places: {checked}");
    // A variant's new unit, and the unit it relieves, against the base.
    let base_first = summary["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "Keskustan koulu")
        .unwrap()["first_shortage_year"]
        .as_i64()
        .unwrap();
    for said in [
        format!("<li>Keskustan koulu: ei vajetta vuoteen 2045 mennessä (perusurassa: vaje vuodesta {base_first})</li>"),
        "<li>Uusi yksikkö Keskustan uusi koulu, 400 paikkaa: ".to_string(),
    ] {
        assert!(html.contains(&said), "`{said}` not in the report");
    }

    // The assumptions in words, from the scenario: the discounting, the example's
    // TFR of 1.30 (its fertility table), its 1 % mortality improvement and its
    // staff cost growth, and the scenario file among the inputs.
    for said in [
        "diskontattuna vuoteen 2024 korolla 3,5\u{a0}% vuodessa",
        "kokonaishedelmällisyys 1,30 vuonna 2025",
        "alenevat 1,0\u{a0}% vuodessa",
        "40 polkua (siemenluku 7); hedelmällisyyden taso: hajonta 4,0\u{a0}% vuodessa, pysyvyys 0,90",
        "Perusopetus, vuosiluokat 1–6: henkilöstö +1,0\u{a0}%",
        "<th scope=\"row\">example:scenario.toml</th>",
    ] {
        assert!(html.contains(said), "`{said}` not in the report");
    }

    // `kunta report` on the directory gives the same file; in English on request.
    let o = kunta(&["report", "o", "--out", "again.html"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.html")).unwrap(),
        html
    );
    let o = kunta(
        &["report", "o", "--lang", "en", "--out", "en.html"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let en = std::fs::read_to_string(dir.path().join("en.html")).unwrap();
    assert!(en.contains("lang=\"en\"") && en.contains("Population and service forecast"));
    assert_eq!(charts(&en), c);
    // Not a run's directory: one sentence, exit 1.
    let o = kunta(&["report", "."], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not the output directory of `kunta run`"),
        "{}",
        stderr(&o)
    );
}

/// Chromium, where the machine has it (`.ci/run` installs Debian's `chromium` and sets
/// `KUNTA_REQUIRE_BROWSER=1`, so there the test cannot pass without it).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("KUNTA_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        });
    if found.is_none() && std::env::var_os("KUNTA_REQUIRE_BROWSER").is_some() {
        panic!("KUNTA_REQUIRE_BROWSER is set and no Chromium was found (set KUNTA_CHROMIUM)");
    }
    found
}

fn headless(browser: &Path, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_report_opens_in_a_browser_without_errors() {
    let Some(browser) = chromium() else {
        eprintln!("no Chromium here: the browser test is skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    example(dir.path(), "o", "parquet");
    let report = dir.path().join("o/report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    let url = format!("file://{}", report.display());
    // The page as the browser built it, with every console message on stderr.
    let o = headless(&browser, &dir.path().join("profile1"))
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(&url)
        .output()
        .expect("Chromium runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let log = stderr(&o);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert_eq!(dom.matches("<svg").count(), html.matches("<svg").count());
    assert_eq!(charts(&dom), charts(&html));
    let height: u32 = dom
        .split("data-height=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("the page's height, set on load");
    assert!(height > 5000, "{height}");
    // A full-page screenshot, kept under target/ to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-example.png");
    let _ = std::fs::remove_file(&shot);
    let o = headless(&browser, &dir.path().join("profile2"))
        .arg(format!("--window-size=1100,{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .expect("Chromium runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    let png_height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!(png_height, height);
    eprintln!("screenshot: {}", shot.display());
}

/// A CSV table as rows of fields (kunta's tables quote no field of the example).
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn the_workbook_holds_every_table_as_the_csv_tables_do() {
    use calamine::{open_workbook, Data, DataType, Reader, Xlsx};
    let dir = tempfile::tempdir().unwrap();
    example(dir.path(), "c", "csv");
    example(dir.path(), "x", "xlsx");
    let files: Vec<String> = std::fs::read_dir(dir.path().join("x"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.contains(&"kunta.xlsx".to_string()) && files.contains(&"report.html".to_string())
    );
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with(".csv") || f.ends_with(".parquet")),
        "{files:?}"
    );
    let mut wb: Xlsx<_> = open_workbook(dir.path().join("x/kunta.xlsx")).unwrap();
    let sheets = wb.sheet_names();
    assert_eq!(sheets[0], "Yhteenveto");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("c/manifest.json")).unwrap())
            .unwrap();
    let tables: Vec<String> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str()?.strip_suffix(".csv").map(String::from))
        .collect();
    assert_eq!(sheets[1..].to_vec(), tables, "a sheet per table, in order");
    for t in &tables {
        let csv = csv_rows(&dir.path().join(format!("c/{t}.csv")));
        let range = wb.worksheet_range(t).unwrap();
        assert_eq!(range.height(), csv.len(), "{t}: rows");
        for (r, (row, want)) in range.rows().zip(&csv).enumerate() {
            assert_eq!(row.len(), want.len(), "{t}: row {r}");
            for (cell, w) in row.iter().zip(want) {
                let same = match cell {
                    Data::String(s) => s == w,
                    Data::Float(x) => w.parse::<f64>().is_ok_and(|y| y == *x),
                    Data::Int(x) => w.parse::<i64>().is_ok_and(|y| y == *x),
                    Data::Empty => w.is_empty(),
                    other => panic!("{t}: row {r}: unexpected {other:?}"),
                };
                assert!(same, "{t}: row {r}: {cell:?} against `{w}`");
            }
        }
    }
    // The summary sheet's headline figures are the summary's.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("x/summary.json")).unwrap()).unwrap();
    let first = wb.worksheet_range("Yhteenveto").unwrap();
    let value_of = |label: &str| {
        first
            .rows()
            .find(|r| r.first().and_then(|c| c.get_string()) == Some(label))
            .and_then(|r| r.get(1).and_then(|c| c.get_float()))
    };
    assert_eq!(value_of("Väestö 2045"), summary["population_last"].as_f64());
    assert_eq!(value_of("Syntyneet"), summary["births"].as_f64());
}

/// A national-style table: municipalities A, B, C and a whole-area row "Koko alue"
/// that is their sum, 2024 and 2025 given for ages 0–3.
fn national_dir(scenario_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut pop = String::from("area,sex,age,year,population\n");
    for year in [2024, 2025] {
        for sex in ["male", "female"] {
            for age in 0..=3 {
                let v = |k: u32| 10 * k + age + (year - 2024);
                for (k, area) in ["A", "B", "C"].iter().enumerate() {
                    pop.push_str(&format!("{area},{sex},{age},{year},{}\n", v(k as u32 + 1)));
                }
                pop.push_str(&format!(
                    "Koko alue,{sex},{age},{year},{}\n",
                    v(1) + v(2) + v(3)
                ));
            }
        }
    }
    std::fs::write(dir.path().join("pop.csv"), pop).unwrap();
    std::fs::write(
        dir.path().join("names.csv"),
        "area,name,parent\nA,Aalto,Koko alue\nB,Berg,Koko alue\nC,Corpi,Koko alue\nZ,Zeta,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        format!(
            "[scenario]\nname = \"N\"\nbase_year = 2024\nend_year = 2025\n\n[population]\nfile = \"pop.csv\"\n{scenario_extra}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_larger_table_keeps_the_listed_areas_and_warns_of_aggregates() {
    // Fed whole: the sum row is warned of, in the manifest and on stderr.
    let dir = national_dir("");
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("area `Koko alue` is the sum of all the other areas in 2024"),
        "{}",
        stderr(&o)
    );
    let manifest = std::fs::read_to_string(dir.path().join("o/manifest.json")).unwrap();
    assert!(manifest.contains("is the sum of all the other areas"));

    // Two areas kept, named from the areas table: no warning, their rows only.
    let dir = national_dir("areas = [\"A\", \"C\"]\n\n[areas]\nfile = \"names.csv\"");
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sum of"), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("2 areas") && out.contains("Aalto") && out.contains("Corpi"),
        "{out}"
    );
    let pop = csv_rows(&dir.path().join("o/population.csv"));
    let areas: std::collections::BTreeSet<&str> = pop[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(areas.into_iter().collect::<Vec<_>>(), ["A", "C"]);
    assert_eq!(
        csv_rows(&dir.path().join("o/areas.csv")),
        [
            ["area", "name", "parent"],
            ["A", "Aalto", "Koko alue"],
            ["C", "Corpi", "Koko alue"]
        ]
    );

    // All four with the parents named: the parent that sums its children is warned of.
    let dir = national_dir("\n[areas]\nfile = \"names.csv\"");
    let o = kunta(
        &["run", "s.toml", "--format", "csv", "--out", "o"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("area `Koko alue` is the sum of its 3 areas in the table"),
        "{}",
        stderr(&o)
    );

    // One area: "1 area".
    let dir = national_dir("areas = [\"B\"]");
    let o = kunta(&["run", "s.toml", "--out", "o"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 area,"));

    // An area the table does not have: one sentence naming it and the key.
    let dir = national_dir("areas = [\"A\", \"Q\"]");
    for cmd in [
        vec!["run", "s.toml", "--out", "o"],
        vec!["validate", "s.toml"],
    ] {
        let o = kunta(&cmd, dir.path());
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(
            e.contains("pop.csv")
                && e.contains("area `Q` of `population.areas` is not in the table"),
            "{e}"
        );
        assert!(!dir.path().join("o").exists());
    }
}
