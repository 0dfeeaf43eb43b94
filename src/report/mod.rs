//! The HTML report and the Excel workbook: a run's tables as a council and a planner
//! read them.
//!
//! [`html`] builds one self-contained HTML file (inline SVG charts drawn with plotters,
//! inline CSS, no scripts or fonts fetched) from a run's tables, `summary.json` and
//! `manifest.json`, whether just computed ([`RunTables`] borrowing a run's frames) or
//! read back from an output directory ([`RunDir::read`]). [`xlsx::write`] writes the
//! workbook. Both sit behind the `report` feature.

mod chart;
pub mod console;
mod data;
mod network;
mod text;
mod variants;
pub mod xlsx;

pub use text::{shown_chance, Lang};

use crate::io::{Frame, IoError};
use chart::{Band, Line, Pyramid, YearChart, HALF, UNIT, WIDE};
use data::{floats, ints, key, points, series_of, Rows};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use text::{component_label, esc, group_label, resource_label, segment_label};

/// A run's output as the report reads it: its tables by name, `summary.json` and
/// `manifest.json`.
#[derive(Debug, Clone, Copy)]
pub struct RunTables<'a> {
    /// The tables by name (`population`, `demand_quantiles`, …), each holding every
    /// scenario's rows.
    pub tables: &'a [(&'a str, &'a Frame)],
    /// `summary.json`.
    pub summary: &'a Value,
    /// `manifest.json`.
    pub manifest: &'a Value,
}

/// A run's output read back from its directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The tables by name.
    pub tables: Vec<(String, Frame)>,
    /// `summary.json`.
    pub summary: Value,
    /// `manifest.json`.
    pub manifest: Value,
}

impl RunDir {
    /// Reads the tables, `summary.json` and `manifest.json` a run wrote into `dir`
    /// (Parquet or CSV tables; a workbook is not read back).
    ///
    /// # Errors
    /// [`IoError`] naming the file when `dir` is not a run's output, a file is missing
    /// or cannot be read.
    pub fn read(dir: &Path) -> Result<RunDir, IoError> {
        let json = |name: &str| -> Result<Value, IoError> {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(IoError::Output {
                    path: dir.to_path_buf(),
                    message: format!("no {name} here: not the output directory of `kunta run`"),
                });
            }
            let bytes = crate::io::read_input(&path)?;
            serde_json::from_slice(&bytes).map_err(|e| IoError::Output {
                path: path.clone(),
                message: format!("not the JSON `kunta run` writes ({e})"),
            })
        };
        let manifest = json("manifest.json")?;
        let summary = json("summary.json")?;
        let listed: Vec<String> = manifest["tables"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut tables = Vec::new();
        for file in &listed {
            let Some((name, ext)) = file.rsplit_once('.') else {
                continue;
            };
            if ext == "parquet" || ext == "csv" {
                tables.push((
                    name.to_string(),
                    crate::io::readback::read_frame(&dir.join(file))?,
                ));
            }
        }
        if tables.is_empty() {
            let message = if listed.iter().any(|f| f.ends_with(".xlsx")) {
                "the run wrote a workbook (--format xlsx), and the report reads Parquet or CSV tables: run again with --report, or with --format parquet"
            } else {
                "manifest.json lists no tables"
            };
            return Err(IoError::Output {
                path: dir.to_path_buf(),
                message: message.into(),
            });
        }
        Ok(RunDir {
            tables,
            summary,
            manifest,
        })
    }

    /// The tables as [`html`] takes them.
    pub fn frames(&self) -> Vec<(&str, &Frame)> {
        self.tables.iter().map(|(n, f)| (n.as_str(), f)).collect()
    }
}

/// A number of `summary.json` (not a number when absent or null).
fn num(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// A list of `summary.json` (empty when absent).
pub(crate) fn list(v: &Value, k: &str) -> Vec<Value> {
    v.get(k)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A text of `summary.json` (empty when absent).
fn txt<'v>(v: &'v Value, k: &str) -> &'v str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The planning age groups (MODEL.md §5), for the population charts.
const GROUPS: [(&str, u32, u32); 7] = [
    ("0-6", 0, 6),
    ("7-12", 7, 12),
    ("13-15", 13, 15),
    ("16-18", 16, 18),
    ("19-64", 19, 64),
    ("65-74", 65, 74),
    ("75+", 75, u32::MAX),
];

/// At most this many units get a chart of their own; the rest are in the table.
const UNIT_CHARTS: usize = 40;

struct Ctx<'a> {
    lang: Lang,
    tables: HashMap<&'a str, &'a Frame>,
    summary: &'a Value,
    manifest: &'a Value,
    base: String,
    areas: BTreeMap<String, String>,
    out: String,
    charts: usize,
}

impl<'a> Ctx<'a> {
    fn t(&self, fi: &'static str, en: &'static str) -> &'static str {
        self.lang.t(fi, en)
    }

    fn table(&self, name: &str) -> Option<&'a Frame> {
        self.tables.get(name).copied()
    }

    fn area_name(&self, code: &str) -> String {
        self.areas
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    }

    fn figure(
        &mut self,
        kind: &str,
        svg: Result<String, String>,
        caption: &str,
    ) -> Result<(), String> {
        // A chart with nothing to draw (a variant's costs in a scenario without
        // any) is left out rather than stopping the report.
        let svg = match svg {
            Err(e) if e == chart::EMPTY => return Ok(()),
            other => other?,
        };
        self.charts += 1;
        let _ = writeln!(
            self.out,
            "<figure class=\"chart\" data-chart=\"{}\">{}<figcaption>{}</figcaption></figure>",
            esc(kind),
            svg,
            caption
        );
        Ok(())
    }

    fn yc(&self, title: String, y_desc: String, size: (u32, u32)) -> YearChart {
        YearChart {
            title,
            y_desc,
            x_desc: self.t("vuosi", "year").into(),
            size,
            ..YearChart::default()
        }
    }
}

/// Builds the report: one HTML document with every chart inline.
///
/// # Errors
/// A sentence when the tables lack what the report needs (a run's `population` table)
/// or a chart cannot be drawn.
pub fn html(run: &RunTables<'_>, lang: Lang) -> Result<String, String> {
    // Rows are read by index: patterns written out.
    let expanded: Vec<(&str, std::borrow::Cow<'_, Frame>)> =
        run.tables.iter().map(|(n, f)| (*n, f.expanded())).collect();
    let tables: HashMap<&str, &Frame> = expanded.iter().map(|(n, f)| (*n, f.as_ref())).collect();
    if !tables.contains_key("population") {
        return Err("the run's tables have no `population` table".into());
    }
    let mut areas = BTreeMap::new();
    if let Some(f) = tables.get("areas") {
        if let (Some(a), Some(n)) = (key(f, "area"), key(f, "name")) {
            for i in 0..f.height() {
                areas.insert(a.get(i).to_string(), n.get(i).to_string());
            }
        }
    }
    let mut c = Ctx {
        lang,
        tables,
        summary: run.summary,
        manifest: run.manifest,
        base: txt(run.summary, "scenario").to_string(),
        areas,
        out: String::new(),
        charts: 0,
    };
    let title = format!(
        "{} — {}",
        c.t(
            "Väestö- ja palveluennuste",
            "Population and service forecast"
        ),
        c.base
    );
    headline(&mut c)?;
    population(&mut c)?;
    services(&mut c)?;
    network::network(&mut c)?;
    variants::variants(&mut c)?;
    inputs(&mut c);
    let body = std::mem::take(&mut c.out);
    let s = c.summary;
    let mut head = String::new();
    let _ = writeln!(
        head,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"kunta {}\">\n<title>{}</title>\n<style>{}</style>\n<script>addEventListener('load',()=>{{document.documentElement.dataset.height=document.documentElement.scrollHeight}})</script>\n</head>\n<body>\n<main>\n<header><h1>{}</h1><p class=\"meta\">{}</p></header>",
        lang.code(),
        env!("CARGO_PKG_VERSION"),
        esc(&title),
        CSS,
        esc(&title),
        meta_line(&c, s)
    );
    if s.get("trajectories").and_then(Value::as_u64).is_some() {
        // The run's own lowest and highest levels (p05 and p95 unless the scenario
        // sets others), and the share of trajectories between them.
        let (lo, hi) = outer_levels(s);
        let level = |n: &str| n.strip_prefix('p')?.replace('_', ".").parse::<f64>().ok();
        let held = match (level(lo), level(hi)) {
            (Some(a), Some(b)) if b > a => {
                lang.num(b - a, if (b - a).fract() == 0.0 { 0 } else { 1 })
            }
            _ => "–".into(),
        };
        let text = match lang {
            Lang::Fi => format!(
                "Vaihteluvälit ({lo}–{hi}) rajaavat {held} % simuloiduista poluista: ne kuvaavat syntyvyyden, kuolleisuuden ja muuton satunnaista vaihtelua skenaarion [uncertainty]-hajonnoilla, eivät muita epävarmuuksia. Luvut ilman väliä ovat perusennusteen lukuja, eivät polkujen mediaaneja."
            ),
            Lang::En => format!(
                "Ranges ({lo}–{hi}) hold {held} % of the simulated trajectories: they show random variation in births, deaths and migration with the spreads of the scenario's [uncertainty] settings, no other uncertainty. Figures without a range are the projection itself, not the trajectories' median."
            ),
        };
        let _ = writeln!(head, "<p class=\"meta\">{}</p>", esc(&text));
    }
    // Links to the sections the report has.
    let links: Vec<String> = [
        ("headline", c.t("Avainluvut", "Headline figures")),
        ("population", c.t("Väestö", "Population")),
        ("services", c.t("Palvelut", "Services")),
        ("network", c.t("Palveluverkko", "Service network")),
        ("variants", c.t("Vaihtoehdot", "Variants")),
        (
            "inputs",
            c.t("Lähtötiedot ja oletukset", "Inputs and assumptions"),
        ),
    ]
    .iter()
    .filter(|(id, _)| body.contains(&format!("<section id=\"{id}\">")))
    .map(|(id, label)| format!("<a href=\"#{id}\">{label}</a>"))
    .collect();
    let _ = writeln!(head, "<nav>{}</nav>", links.join(" · "));
    let mut doc = head + &body;
    let _ = writeln!(
        doc,
        "<footer>{} kunta {} · {} {}</footer>\n</main>\n</body>\n</html>",
        c.t("Tehty ohjelmalla", "Made with"),
        esc(txt(c.manifest, "kunta_version")),
        c.charts,
        c.t("kuviota", "charts"),
    );
    Ok(doc)
}

fn meta_line(c: &Ctx<'_>, s: &Value) -> String {
    let lang = c.lang;
    let mut m = format!(
        "{} {}, {} {}–{}",
        c.t("Lähtövuosi", "Base year"),
        num(s, "base_year"),
        c.t("ennuste", "projected"),
        num(s, "base_year") + 1.0,
        num(s, "end_year")
    );
    if let Some(n) = s.get("trajectories").and_then(Value::as_u64) {
        let _ = write!(
            m,
            " · {} {} ({} {})",
            lang.num(n as f64, 0),
            c.t("polkua", "trajectories"),
            c.t("siemenluku", "seed"),
            s.get("seed").and_then(Value::as_u64).unwrap_or(0)
        );
    }
    let dr = num(s, "discount_rate");
    if dr.is_finite() {
        let _ = write!(
            m,
            " · {} {}",
            c.t("diskonttokorko", "discount rate"),
            lang.pct(dr, 1)
        );
    }
    esc(&m)
}

/// The run's lowest and highest quantile levels' names from `summary.json` (`p05` and
/// `p95` unless the scenario sets others).
fn outer_levels(s: &Value) -> (&str, &str) {
    let levels = s["quantiles"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    (
        levels.first().and_then(Value::as_str).unwrap_or("p05"),
        levels.last().and_then(Value::as_str).unwrap_or("p95"),
    )
}

/// A whole number with its sign (`+3 431`, `−120`; 0 without one).
fn signed(lang: Lang, x: f64) -> String {
    let n = lang.num(x, 0);
    if x.round() > 0.0 {
        format!("+{n}")
    } else {
        n
    }
}

/// A row of a table: the first cell is text, the rest are numbers (right-aligned).
fn row(cells: &[String]) -> String {
    let mut r = String::from("<tr>");
    for (k, cell) in cells.iter().enumerate() {
        if k == 0 {
            let _ = write!(r, "<th scope=\"row\">{cell}</th>");
        } else {
            let _ = write!(r, "<td>{cell}</td>");
        }
    }
    r + "</tr>\n"
}

fn header(cells: &[&str]) -> String {
    let mut r = String::from("<thead><tr>");
    for cell in cells {
        let _ = write!(r, "<th scope=\"col\">{}</th>", esc(cell));
    }
    r + "</tr></thead>\n"
}

fn headline(c: &mut Ctx<'_>) -> Result<(), String> {
    let (s, lang) = (c.summary, c.lang);
    let (y0, y1) = (num(s, "base_year"), num(s, "end_year"));
    let _ = writeln!(
        c.out,
        "<section id=\"headline\"><h2>{}</h2>",
        c.t("Avainluvut", "Headline figures")
    );
    let p0 = num(s, "population_first");
    let p1 = num(s, "population_last");
    let _ = writeln!(c.out, "<table class=\"figures\">\n<tbody>");
    let mut lines = vec![
        (
            format!("{} {y0}", c.t("Väestö", "Population")),
            lang.num(p0, 0),
        ),
        (
            format!("{} {y1}", c.t("Väestö", "Population")),
            format!("{} ({})", lang.num(p1, 0), lang.change(p1 / p0 - 1.0, 1)),
        ),
        (
            format!("{} {}–{y1}", c.t("Syntyneet", "Births"), y0 + 1.0),
            lang.num(num(s, "births"), 0),
        ),
        (
            format!("{} {}–{y1}", c.t("Kuolleet", "Deaths"), y0 + 1.0),
            lang.num(num(s, "deaths"), 0),
        ),
        (
            format!("{} {}–{y1}", c.t("Nettomuutto", "Net migration"), y0 + 1.0),
            signed(lang, num(s, "net_migration")),
        ),
    ];
    let pv = num(s, "present_value_eur");
    if pv.is_finite() && pv != 0.0 {
        lines.push((
            format!(
                "{} {y0}–{y1}",
                c.t(
                    "Palvelujen kustannusten nykyarvo",
                    "Present value of the services' costs"
                )
            ),
            lang.meur(pv),
        ));
    }
    for (k, v) in lines {
        c.out.push_str(&row(&[esc(&k), v]));
    }
    c.out.push_str("</tbody></table>\n");
    let services = list(s, "services");
    if !services.is_empty() {
        let quant = services
            .iter()
            .any(|sv| sv.get("demand_last_quantiles").is_some());
        let (lo, hi) = outer_levels(s);
        let d0 = format!("{} {y0}", c.t("kysyntä", "demand"));
        let d1 = format!("{} {y1}", c.t("kysyntä", "demand"));
        let e0 = format!("{} {y0}", c.t("kustannus", "cost"));
        let e1 = format!("{} {y1}", c.t("kustannus", "cost"));
        let q = format!("{} {y1} {lo}–{hi}", c.t("kysyntä", "demand"));
        let qpv = format!("{} {lo}–{hi}", c.t("nykyarvo", "present value"));
        let mut cols = vec![
            c.t("Palvelu", "Service"),
            c.t("yksikkö", "unit"),
            &d0,
            &d1,
            c.t("muutos", "change"),
            &e0,
            &e1,
            c.t("nykyarvo", "present value"),
        ];
        if quant {
            cols.push(&q);
            cols.push(&qpv);
        }
        let _ = writeln!(
            c.out,
            "<table class=\"services\">\n{}<tbody>",
            header(&cols)
        );
        for sv in &services {
            let mut cells = vec![
                esc(txt(sv, "name")),
                esc(txt(sv, "unit")),
                lang.num(num(sv, "demand_first"), 0),
                lang.num(num(sv, "demand_last"), 0),
                lang.change(num(sv, "demand_change_pct") / 100.0, 1),
                lang.meur(num(sv, "cost_first_eur")),
                lang.meur(num(sv, "cost_last_eur")),
                lang.meur(num(sv, "present_value_eur")),
            ];
            if quant {
                let qv = &sv["demand_last_quantiles"];
                cells.push(format!(
                    "{} – {}",
                    lang.num(num(qv, lo), 0),
                    lang.num(num(qv, hi), 0)
                ));
                let pv = &sv["present_value_quantiles_eur"];
                cells.push(if pv.is_object() {
                    format!("{} – {}", lang.meur(num(pv, lo)), lang.meur(num(pv, hi)))
                } else {
                    "–".into()
                });
            }
            c.out.push_str(&row(&cells));
        }
        c.out.push_str("</tbody></table>\n");
    }
    c.out.push_str("</section>\n");
    Ok(())
}

fn population(c: &mut Ctx<'_>) -> Result<(), String> {
    let lang = c.lang;
    let f = c.table("population").ok_or("no population table")?;
    let base = Rows::all(f).eq("scenario", &c.base);
    let _ = writeln!(
        c.out,
        "<section id=\"population\"><h2>{}</h2>",
        c.t("Väestö", "Population")
    );
    let (Some(years), Some(ages), Some(sex), Some(pop)) = (
        ints(f, "year"),
        ints(f, "age"),
        key(f, "sex"),
        floats(f, "population"),
    ) else {
        return Err("the population table lacks year, age, sex or population".into());
    };
    let (y0, y1) = base
        .keep
        .iter()
        .zip(years)
        .filter(|(k, _)| **k)
        .fold((i64::MAX, i64::MIN), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
    let top = ages.iter().copied().max().unwrap_or(0).max(0) as usize;
    let (mut first, mut last) = (vec![(0.0, 0.0); top + 1], vec![(0.0, 0.0); top + 1]);
    let male = sex.code("male");
    let mut groups: BTreeMap<(usize, i32), f64> = BTreeMap::new();
    for i in 0..f.height() {
        if !base.keep[i] {
            continue;
        }
        let a = ages[i].max(0) as usize;
        let v = pop[i];
        let is_male = Some(sex.codes[i]) == male;
        let cell = if years[i] == y0 {
            Some(&mut first[a])
        } else if years[i] == y1 {
            Some(&mut last[a])
        } else {
            None
        };
        if let Some(cell) = cell {
            if is_male {
                cell.0 += v;
            } else {
                cell.1 += v;
            }
        }
        let g = GROUPS
            .iter()
            .position(|(_, lo, hi)| (*lo..=*hi).contains(&(a as u32)))
            .unwrap_or(0);
        *groups.entry((g, years[i] as i32)).or_insert(0.0) += v;
    }
    let pyr = Pyramid {
        title: format!(
            "{} {y0} {} {y1}",
            c.t("Ikärakenne", "Age structure"),
            c.t("ja", "and")
        ),
        first,
        last,
        labels: (y0.to_string(), y1.to_string()),
    };
    let caption = format!(
        "{} {y0} ({}) {} {y1} ({}).",
        c.t(
            "Väestö iän ja sukupuolen mukaan, kaikki alueet:",
            "Population by age and sex, all areas:"
        ),
        c.t("pylväät", "bars"),
        c.t("ja", "and"),
        c.t("viiva", "line"),
    );
    c.figure("pyramid", chart::pyramid(&pyr, lang), &esc(&caption))?;
    // Planning age groups over the years: the small groups and the large ones apart.
    let single_area = c
        .table("population_quantiles")
        .map(|q| Rows::all(q).eq("scenario", &c.base).levels("area").len() == 1)
        .unwrap_or(false);
    for (kind, range, title) in [
        (
            "age-groups-young",
            0..4,
            c.t(
                "Lapset ja nuoret ikäryhmittäin",
                "Children and young people by age group",
            ),
        ),
        (
            "age-groups-adult",
            4..7,
            c.t(
                "Aikuiset ja ikääntyneet ikäryhmittäin",
                "Adults and older people by age group",
            ),
        ),
    ] {
        let mut ch = c.yc(title.into(), c.t("henkilöä", "persons").into(), WIDE);
        for g in range {
            let pts: Vec<(i32, f64)> = groups
                .iter()
                .filter(|((k, _), _)| *k == g)
                .map(|((_, y), v)| (*y, *v))
                .collect();
            let label = format!("{} {}", group_label(GROUPS[g].0, lang), c.t("v", "y"));
            if single_area {
                if let Some(q) = c.table("population_quantiles") {
                    let rows = Rows::all(q)
                        .eq("scenario", &c.base)
                        .eq("sex", "all")
                        .eq("age_group", GROUPS[g].0);
                    ch.bands.push(Band {
                        label: String::new(),
                        points: rows.band("p05", "p95", 1.0),
                        color: g,
                        alpha: 0.18,
                    });
                }
            }
            ch.lines.push(Line {
                label,
                points: pts,
                color: g,
                width: 2,
            });
        }
        let caption = if single_area {
            c.t(
                "Viivat: ennuste; varjostus: 90 %:n väli (p05–p95).",
                "Lines: the projection; shading: the 90% interval (p05–p95).",
            )
        } else {
            c.t("kaikkien alueiden summa.", "sum of all areas.")
        };
        // Each chart's caption names it: the two would otherwise read the same.
        let caption = if single_area {
            format!("{title}. {caption}")
        } else {
            format!("{title}, {caption}")
        };
        c.figure(kind, chart::years(&ch, lang), &esc(&caption))?;
    }
    // Areas.
    if let Some(areas) = c
        .summary
        .get("areas")
        .and_then(Value::as_array)
        .filter(|a| a.len() > 1)
    {
        let y0s = y0.to_string();
        let y1s = y1.to_string();
        // The code column only where the areas have names of their own.
        let named = areas.iter().any(|a| {
            let code = txt(a, "area");
            c.area_name(code) != code
        });
        let mut cols = vec![c.t("Alue", "Area")];
        if named {
            cols.push(c.t("koodi", "code"));
        }
        cols.extend([y0s.as_str(), y1s.as_str(), c.t("muutos", "change")]);
        let _ = writeln!(c.out, "<table class=\"areas\">\n{}<tbody>", header(&cols));
        for a in areas {
            let code = txt(a, "area");
            let (p0, p1) = (num(a, "population_first"), num(a, "population_last"));
            let mut cells = vec![esc(&c.area_name(code))];
            if named {
                cells.push(esc(code));
            }
            cells.extend([
                lang.num(p0, 0),
                lang.num(p1, 0),
                lang.change(p1 / p0 - 1.0, 1),
            ]);
            c.out.push_str(&row(&cells));
        }
        c.out.push_str("</tbody></table>\n");
    }
    c.out.push_str("</section>\n");
    Ok(())
}

fn services(c: &mut Ctx<'_>) -> Result<(), String> {
    let lang = c.lang;
    let list = list(c.summary, "services");
    if list.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        c.out,
        "<section id=\"services\"><h2>{}</h2>",
        c.t("Palvelut", "Services")
    );
    for sv in &list {
        let id = txt(sv, "service");
        let name = txt(sv, "name");
        let unit = txt(sv, "unit");
        let _ = writeln!(
            c.out,
            "<article class=\"service\" id=\"service-{}\"><h3>{}</h3>",
            esc(id),
            esc(name)
        );
        let _ = writeln!(
            c.out,
            "<p>{}: {} → {} {} ({}). {}: {}.</p>",
            c.t("Kysyntä", "Demand"),
            lang.num(num(sv, "demand_first"), 0),
            lang.num(num(sv, "demand_last"), 0),
            esc(unit),
            lang.change(num(sv, "demand_change_pct") / 100.0, 1),
            c.t("Kustannusten nykyarvo", "Present value of the costs"),
            lang.meur(num(sv, "present_value_eur")),
        );
        // Demand by segment, with the whole municipality's fan.
        if let Some(f) = c.table("demand") {
            let rows = Rows::all(f).eq("scenario", &c.base).eq("service", id);
            let by = rows.by_key_year("segment", "demand");
            let segs = rows.levels("segment");
            let mut ch = c.yc(
                format!("{}: {}", c.t("Kysyntä", "Demand"), name),
                unit.to_string(),
                WIDE,
            );
            let mut fan = false;
            if let Some(q) = c.table("totals_quantiles") {
                let r = Rows::all(q)
                    .eq("scenario", &c.base)
                    .eq("service", id)
                    .eq("quantity", "demand");
                if r.any() {
                    fan = true;
                    for (lo, hi, alpha, label) in [
                        ("p05", "p95", 0.15, "p05–p95"),
                        ("p25", "p75", 0.3, "p25–p75"),
                    ] {
                        ch.bands.push(Band {
                            label: label.into(),
                            points: r.band(lo, hi, 1.0),
                            color: 6,
                            alpha,
                        });
                    }
                }
            }
            if segs.len() > 1 {
                let total = rows.by_year("demand");
                ch.lines.push(Line {
                    label: c.t("yhteensä", "total").into(),
                    points: points(&total, 1.0),
                    color: 7,
                    width: 2,
                });
            }
            for (k, s) in segs.iter().enumerate() {
                let label = if segs.len() > 1 {
                    segment_label(s, lang)
                } else {
                    c.t("kysyntä", "demand").into()
                };
                ch.lines.push(Line {
                    label,
                    points: series_of(&by, s, 1.0),
                    color: k,
                    width: 2,
                });
            }
            let caption = if fan {
                c.t(
                    "Kaikki alueet. Varjostus: kokonaiskysynnän 50 %:n ja 90 %:n välit.",
                    "All areas. Shading: the 50% and 90% intervals of the total demand.",
                )
            } else {
                c.t("Kaikki alueet.", "All areas.")
            };
            c.figure("demand", chart::years(&ch, lang), caption)?;
        }
        // Resources, two in a row.
        let mut grid = Vec::new();
        if let Some(f) = c.table("resources") {
            let rows = Rows::all(f).eq("scenario", &c.base).eq("service", id);
            let by = rows.by_key_year("resource", "value");
            for r in rows.levels("resource") {
                let (label, runit) = resource_label(&r, lang);
                let mut ch = c.yc(label.to_string(), runit.to_string(), HALF);
                ch.lines.push(Line {
                    label: String::new(),
                    points: series_of(&by, &r, 1.0),
                    color: 2,
                    width: 2,
                });
                grid.push((r, chart::years(&ch, lang)));
            }
        }
        if !grid.is_empty() {
            c.out.push_str("<div class=\"grid\">\n");
            for (r, svg) in grid {
                c.figure(&format!("resource-{r}"), svg, "")?;
            }
            let _ = writeln!(
                c.out,
                "</div>\n<p class=\"note\">{}</p>",
                c.t("Resurssit, kaikki alueet.", "Resources, all areas.")
            );
        }
        // Costs by component, stacked.
        if let Some(f) = c.table("costs") {
            let rows = Rows::all(f)
                .eq("scenario", &c.base)
                .eq("service", id)
                .ne("component", "total");
            let by = rows.by_key_year("component", "cost_eur");
            let mut ch = c.yc(
                format!("{}: {}", c.t("Kustannukset", "Costs"), name),
                match c.lang {
                    Lang::Fi => format!("M€, vuoden {} hinnoin", num(c.summary, "base_year")),
                    Lang::En => format!("M€ at {} prices", num(c.summary, "base_year")),
                },
                WIDE,
            );
            for (k, comp) in ["units", "premises", "staff", "fixed", "overhead"]
                .iter()
                .enumerate()
            {
                let pts = series_of(&by, comp, 1e6);
                if pts.iter().any(|p| p.1 != 0.0) {
                    ch.stacked.push(Line {
                        label: component_label(comp, lang),
                        points: pts,
                        color: k,
                        width: 1,
                    });
                }
            }
            if !ch.stacked.is_empty() {
                let caption = format!(
                    "{} {}.",
                    c.t(
                        "Osatekijöittäin, kaikki alueet. Nykyarvo",
                        "By component, all areas. Present value"
                    ),
                    lang.meur(num(sv, "present_value_eur"))
                );
                c.figure("costs", chart::years(&ch, lang), &esc(&caption))?;
            }
        }
        c.out.push_str("</article>\n");
    }
    c.out.push_str("</section>\n");
    Ok(())
}

fn inputs(c: &mut Ctx<'_>) {
    let m = c.manifest;
    let _ = writeln!(
        c.out,
        "<section id=\"inputs\"><h2>{}</h2>",
        c.t("Lähtötiedot ja oletukset", "Inputs and assumptions")
    );
    if let Some(a) = m.get("assumptions") {
        assumptions(c, a);
    }
    let _ = writeln!(
        c.out,
        "<p>{}: {}</p>",
        c.t("Skenaario", "Scenario"),
        esc(txt(m, "scenario_file"))
    );
    let _ = writeln!(
        c.out,
        "<table class=\"inputs\">\n{}<tbody>",
        header(&[c.t("Tiedosto", "File"), "SHA-256"])
    );
    for i in m
        .get("inputs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let sha = txt(i, "sha256");
        c.out.push_str(&row(&[
            esc(txt(i, "path")),
            format!("<code>{}</code>", esc(&sha[..sha.len().min(16)])),
        ]));
    }
    c.out.push_str("</tbody></table>\n");
    let warnings: Vec<&str> = m
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let _ = writeln!(c.out, "<h3>{}</h3>", c.t("Varoitukset", "Warnings"));
    if warnings.is_empty() {
        let _ = writeln!(c.out, "<p>{}</p>", c.t("Ei varoituksia.", "None."));
    } else {
        c.out.push_str("<ul class=\"warnings\">\n");
        for w in warnings {
            let _ = writeln!(c.out, "<li>{}</li>", esc(w));
        }
        c.out.push_str("</ul>\n");
    }
    c.out.push_str("</section>\n");
}

/// The run's assumptions (`manifest.json`'s `assumptions`) in words: the years, the
/// price level and the discounting, the population's levers and flows, the real cost
/// growth, and the spreads of the trajectories.
fn assumptions(c: &mut Ctx<'_>, a: &Value) {
    let lang = c.lang;
    let pct = |v: f64| lang.pct(v, 1);
    let (base, end) = (num(a, "base_year"), num(a, "end_year"));
    let mut items: Vec<(&str, String)> = Vec::new();
    items.push((
        c.t("Ajanjakso", "Period"),
        match lang {
            Lang::Fi => format!("lähtövuosi {base}, ennuste vuosille {}–{end}", base + 1.0),
            Lang::En => format!("base year {base}, projected {}–{end}", base + 1.0),
        },
    ));
    let price = num(a, "price_year");
    let dr = pct(num(a, "discount_rate"));
    items.push((
        c.t("Hinnat ja nykyarvo", "Prices and present value"),
        match lang {
            Lang::Fi => format!("kustannukset euroina vuoden {price} hinnoin; nykyarvo on vuosien {base}–{end} kustannusten summa diskontattuna vuoteen {base} korolla {dr} vuodessa (lähtövuoden kustannus diskonttaamatta)"),
            Lang::En => format!("costs in euros at {price} prices; the present value is the sum of the costs of {base}–{end} discounted to {base} at {dr} a year (the base year's cost undiscounted)"),
        },
    ));
    let path = |v: &Value| -> String {
        match (v.as_f64(), v.get("from"), v.get("to")) {
            (Some(x), _, _) => lang.num(x, 2),
            (None, Some(f), Some(t)) => format!(
                "{} ({}) → {} ({})",
                lang.num(f[1].as_f64().unwrap_or(f64::NAN), 2),
                f[0],
                lang.num(t[1].as_f64().unwrap_or(f64::NAN), 2),
                t[0]
            ),
            _ => "–".into(),
        }
    };
    if let Some(p) = a.get("population").filter(|p| !p.is_null()) {
        let tfr = match (p.get("tfr").filter(|t| !t.is_null()), p.get("tfr_of_table")) {
            (Some(t), _) => match lang {
                Lang::Fi => format!("kokonaishedelmällisyys {}", path(t)),
                Lang::En => format!("total fertility {}", path(t)),
            },
            (None, Some(t)) if !t.is_null() => {
                let (lo, hi) = (num(t, "lowest"), num(t, "highest"));
                let range = if (hi - lo).abs() < 0.005 {
                    lang.num(lo, 2)
                } else {
                    format!("{}–{}", lang.num(lo, 2), lang.num(hi, 2))
                };
                match lang {
                    Lang::Fi => format!("ikäkohtaiset hedelmällisyysluvut taulukosta (kokonaishedelmällisyys {range} vuonna {})", num(t, "year")),
                    Lang::En => format!("age-specific rates from the table (total fertility {range} in {})", num(t, "year")),
                }
            }
            _ => c.t("taulukosta", "from the table").into(),
        };
        let boys = pct(num(p, "boys_share"));
        items.push((
            c.t("Syntyvyys", "Fertility"),
            match lang {
                Lang::Fi => format!("{tfr}; poikien osuus syntyneistä {boys}"),
                Lang::En => format!("{tfr}; boys {boys} of births"),
            },
        ));
        let imp = num(p, "mortality_improvement");
        items.push((
            c.t("Kuolleisuus", "Mortality"),
            if imp.is_finite() && imp != 0.0 {
                match lang {
                    Lang::Fi => format!(
                        "taulukon kuolemanvaarat, jotka alenevat {} vuodessa",
                        pct(imp)
                    ),
                    Lang::En => format!(
                        "the table's probabilities of dying, falling by {} a year",
                        pct(imp)
                    ),
                }
            } else {
                c.t(
                    "taulukon kuolemanvaarat sellaisinaan",
                    "the table's probabilities of dying as they are",
                )
                .into()
            },
        ));
        let flows: Vec<String> = list(p, "migration")
            .iter()
            .map(|f| {
                let dir = match (txt(f, "direction"), lang) {
                    ("in", Lang::Fi) => "tulomuutto",
                    ("out", Lang::Fi) => "lähtömuutto",
                    ("net", Lang::Fi) => "nettomuutto",
                    ("in", Lang::En) => "in",
                    ("out", Lang::En) => "out",
                    (_, _) => "net",
                };
                let form = match (txt(f, "form"), lang) {
                    ("counts", Lang::Fi) => "määrinä",
                    ("rates", Lang::Fi) => "lähtöosuuksina",
                    ("counts", Lang::En) => "as counts",
                    ("rates", Lang::En) => "as rates",
                    (_, Lang::Fi) => "vuosimäärä × ikäprofiili",
                    (_, Lang::En) => "as a yearly total × an age profile",
                };
                let mut s = format!("{} ({dir}, {form}", txt(f, "name"));
                if f.get("closed_system").and_then(Value::as_bool) == Some(true) {
                    s.push_str(c.t(", alueiden välillä", ", between the areas"));
                }
                if let Some(mul) = f.get("multiplier").filter(|v| !v.is_null()) {
                    let _ = write!(s, ", {} {}", c.t("kerroin", "multiplier"), path(mul));
                }
                s.push(')');
                s
            })
            .collect();
        if !flows.is_empty() {
            items.push((c.t("Muuttoliike", "Migration"), flows.join("; ")));
        }
    }
    let names: HashMap<String, String> = list(c.summary, "services")
        .iter()
        .map(|s| (txt(s, "service").to_string(), txt(s, "name").to_string()))
        .collect();
    let components = ["units", "premises", "staff", "fixed"].map(|k| (k, component_label(k, lang)));
    let growth: Vec<String> = list(a, "cost_growth")
        .iter()
        .filter_map(|g| {
            let parts: Vec<String> = components
                .iter()
                .filter(|(k, _)| num(g, k) != 0.0 && num(g, k).is_finite())
                .map(|(k, label)| format!("{label} {}", lang.change(num(g, k), 1)))
                .collect();
            let id = txt(g, "service");
            let name = names.get(id).map_or(id, String::as_str);
            (!parts.is_empty()).then(|| format!("{name}: {}", parts.join(", ")))
        })
        .collect();
    items.push((
        c.t(
            "Kustannusten reaalikasvu vuodessa",
            "Real cost growth a year",
        ),
        if growth.is_empty() {
            c.t("ei kasvua", "none").into()
        } else {
            growth.join("; ")
        },
    ));
    if let Some(u) = a.get("uncertainty").filter(|u| !u.is_null()) {
        let ar1 = |k: &str| {
            let v = &u[k];
            match lang {
                Lang::Fi => format!(
                    "hajonta {} vuodessa, pysyvyys {}",
                    pct(num(v, "sd")),
                    lang.num(num(v, "ar"), 2)
                ),
                Lang::En => format!(
                    "spread {} a year, persistence {}",
                    pct(num(v, "sd")),
                    lang.num(num(v, "ar"), 2)
                ),
            }
        };
        let noise = u.get("process_noise").and_then(Value::as_bool) == Some(true);
        items.push((
            c.t("Epävarmuus", "Uncertainty"),
            match lang {
                Lang::Fi => format!(
                    "{} polkua (siemenluku {}); hedelmällisyyden taso: {}; kuolleisuuden taso: {}; kukin muuttovirta: {}; {}",
                    num(u, "trajectories"),
                    num(u, "seed"),
                    ar1("fertility"),
                    ar1("mortality"),
                    ar1("migration"),
                    if noise { "syntymät, kuolemat ja muutot lisäksi satunnaisina (Poisson)" } else { "ei satunnaisvaihtelua määrien ympärillä" }
                ),
                Lang::En => format!(
                    "{} trajectories (seed {}); fertility level: {}; mortality level: {}; each migration flow: {}; {}",
                    num(u, "trajectories"),
                    num(u, "seed"),
                    ar1("fertility"),
                    ar1("mortality"),
                    ar1("migration"),
                    if noise { "births, deaths and moves also drawn as Poisson counts" } else { "no process noise around the counts" }
                ),
            },
        ));
    }
    c.out.push_str("<table class=\"assumptions\"><tbody>\n");
    for (k, v) in items {
        let _ = writeln!(
            c.out,
            "<tr><th scope=\"row\">{}</th><td class=\"text\">{}</td></tr>",
            esc(k),
            esc(&v)
        );
    }
    c.out.push_str("</tbody></table>\n");
}

const CSS: &str = "
body{margin:0;background:#f6f6f4;color:#1c1c1c;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;line-height:1.45}
main{max-width:900px;margin:0 auto;padding:16px 20px 40px;background:#fff}
h1{font-size:1.6em;margin:.4em 0 .1em}h2{margin-top:1.8em;border-bottom:2px solid #0072b2;padding-bottom:.2em}
h3{margin-top:1.4em}.meta{color:#555;margin-top:0}nav{margin:.6em 0 1em;font-size:.95em}
a{color:#0060a0}table{border-collapse:collapse;margin:.8em 0;font-size:.92em;font-variant-numeric:tabular-nums}
th,td{padding:.25em .6em;border-bottom:1px solid #e2e2e2;text-align:right}
th[scope=row],thead th:first-child{text-align:left}thead th{border-bottom:2px solid #bbb;vertical-align:bottom}
figure.chart{margin:1em 0}figure.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-size:.88em;color:#444}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
.note{font-size:.9em;color:#444}ul.warnings li{margin:.2em 0}code{font-size:.9em}
table.assumptions td.text{text-align:left}table.assumptions th{vertical-align:top}
footer{margin-top:2em;color:#777;font-size:.85em}
@media print{body{background:#fff}main{max-width:none}figure.chart{break-inside:avoid}}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_are_named_by_their_codes() {
        assert_eq!(Lang::from_code("FI"), Some(Lang::Fi));
        assert_eq!(Lang::from_code("en"), Some(Lang::En));
        assert_eq!(Lang::from_code("sv"), None);
    }
}
