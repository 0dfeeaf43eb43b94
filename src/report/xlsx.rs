//! The Excel workbook (`kunta run --format xlsx`): a first sheet of headline figures,
//! then one sheet per table with its header row frozen and filtered, numbers stored as
//! numbers. A table longer than a sheet holds is split by year, one sheet per year
//! (`population 2030`), and the first sheet says so.

use super::data::column;
use super::text::Lang;
use super::{num, txt};
use crate::io::{ColumnData, Frame};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::Value;
use std::io::Write;

/// Rows a sheet holds below its header row.
pub const SHEET_ROWS: usize = 1_048_575;

/// Where a table went: its sheets and their rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The table.
    pub table: String,
    /// (sheet name, data rows).
    pub sheets: Vec<(String, usize)>,
}

fn x(e: XlsxError) -> String {
    format!("writing the workbook failed: {e}")
}

/// The number format of a value column.
fn format_of(name: &str, data: &ColumnData) -> Option<Format> {
    match data {
        ColumnData::Int(_) => Some(Format::new().set_num_format("0")),
        ColumnData::Float(_) => Some(Format::new().set_num_format(
            if matches!(name, "utilisation" | "p_shortage" | "p_pays_back" | "share") {
                "0.0%"
            } else if name.ends_with("_eur") {
                "#,##0"
            } else {
                "#,##0.00"
            },
        )),
        _ => None,
    }
}

/// Writes one sheet of `rows` of `frame`.
fn sheet(ws: &mut Worksheet, name: &str, frame: &Frame, rows: &[usize]) -> Result<(), String> {
    ws.set_name(name).map_err(x)?;
    let bold = Format::new().set_bold();
    let formats: Vec<Option<Format>> = frame.columns.iter().map(|(n, d)| format_of(n, d)).collect();
    for (j, (n, d)) in frame.columns.iter().enumerate() {
        let width = match d {
            ColumnData::Text(_) | ColumnData::Coded { .. } => 18.0,
            _ => (n.len() as f64 + 2.0).max(11.0),
        };
        ws.set_column_width(j as u16, width).map_err(x)?;
    }
    for (j, (n, _)) in frame.columns.iter().enumerate() {
        ws.write_string_with_format(0, j as u16, n, &bold)
            .map_err(x)?;
    }
    for (r, &i) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (j, (_, d)) in frame.columns.iter().enumerate() {
            let j = j as u16;
            match d {
                ColumnData::Text(v) => {
                    ws.write_string(r, j, &v[i]).map_err(x)?;
                }
                ColumnData::Coded { levels, codes } => {
                    ws.write_string(r, j, &levels[codes[i] as usize])
                        .map_err(x)?;
                }
                ColumnData::Int(v) => {
                    let f = formats[j as usize].as_ref().expect("a number format");
                    ws.write_number_with_format(r, j, v[i] as f64, f)
                        .map_err(x)?;
                }
                ColumnData::Float(v) => {
                    if v[i].is_finite() {
                        let f = formats[j as usize].as_ref().expect("a number format");
                        ws.write_number_with_format(r, j, v[i], f).map_err(x)?;
                    }
                }
                // `write_with_limit` writes patterns out before any sheet.
                ColumnData::Repeat { .. } => {
                    return Err(format!(
                        "column `{}` is a pattern",
                        frame.columns[j as usize].0
                    ))
                }
            }
        }
    }
    let last_col = frame.columns.len().saturating_sub(1) as u16;
    ws.set_freeze_panes(1, 0).map_err(x)?;
    ws.autofilter(0, 0, rows.len() as u32, last_col)
        .map_err(x)?;
    Ok(())
}

/// How a table's rows go onto sheets: whole, or by year when it is longer than a sheet
/// (`limit` rows).
fn split(name: &str, frame: &Frame, limit: usize) -> Result<Vec<(String, Vec<usize>)>, String> {
    let n = frame.height();
    if n <= limit {
        return Ok(vec![(sheet_name(name), (0..n).collect())]);
    }
    let Some(ColumnData::Int(years)) = column(frame, "year") else {
        return Err(format!(
            "table `{name}` has {n} rows, more than a sheet holds ({limit}), and no year to split it by"
        ));
    };
    let mut by: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
    for (i, y) in years.iter().enumerate() {
        by.entry(*y).or_default().push(i);
    }
    let mut out = Vec::new();
    for (y, rows) in by {
        if rows.len() > limit {
            return Err(format!(
                "table `{name}` has {} rows in {y}, more than a sheet holds ({limit}): write Parquet or CSV for it",
                rows.len()
            ));
        }
        out.push((sheet_name(&format!("{name} {y}")), rows));
    }
    Ok(out)
}

/// A sheet name as Excel takes it (at most 31 characters).
fn sheet_name(s: &str) -> String {
    s.chars().take(31).collect()
}

/// Writes the workbook of `tables` (with the headline figures of `summary` first) to
/// `out`.
///
/// # Errors
/// A sentence if a table cannot be placed on sheets or the workbook cannot be written.
pub fn write(
    tables: &[(&str, &Frame)],
    summary: &Value,
    lang: Lang,
    out: impl Write + Send,
) -> Result<Vec<Placed>, String> {
    write_with_limit(tables, summary, lang, out, SHEET_ROWS)
}

/// [`write`] with a given number of rows a sheet holds (for tests of the split).
#[doc(hidden)]
pub fn write_with_limit(
    tables: &[(&str, &Frame)],
    summary: &Value,
    lang: Lang,
    out: impl Write + Send,
    limit: usize,
) -> Result<Vec<Placed>, String> {
    // Rows are read by index: patterns written out.
    let expanded: Vec<(&str, std::borrow::Cow<'_, Frame>)> =
        tables.iter().map(|(n, f)| (*n, f.expanded())).collect();
    let tables: Vec<(&str, &Frame)> = expanded.iter().map(|(n, f)| (*n, f.as_ref())).collect();
    let mut placed = Vec::new();
    let mut plans = Vec::new();
    for (name, frame) in &tables {
        let plan = split(name, frame, limit)?;
        placed.push(Placed {
            table: name.to_string(),
            sheets: plan.iter().map(|(s, r)| (s.clone(), r.len())).collect(),
        });
        plans.push(plan);
    }
    let mut wb = Workbook::new();
    {
        let ws = wb.add_worksheet();
        first_sheet(ws, summary, lang, &placed)?;
    }
    for ((_, frame), plan) in tables.iter().zip(&plans) {
        for (name, rows) in plan {
            let ws = wb.add_worksheet_with_constant_memory().map_err(x)?;
            sheet(ws, name, frame, rows)?;
        }
    }
    wb.save_to_writer(out).map_err(x)?;
    Ok(placed)
}

/// The first sheet: headline figures, then where each table is.
fn first_sheet(ws: &mut Worksheet, s: &Value, lang: Lang, placed: &[Placed]) -> Result<(), String> {
    let t = |fi: &'static str, en: &'static str| lang.t(fi, en);
    ws.set_name(t("Yhteenveto", "Summary")).map_err(x)?;
    let bold = Format::new().set_bold();
    let title = Format::new().set_bold().set_font_size(14);
    let int = Format::new().set_num_format("#,##0");
    let eur = Format::new().set_num_format("#,##0");
    let pct = Format::new().set_num_format("0.0%");
    ws.set_column_width(0, 44).map_err(x)?;
    for c in 1..10 {
        ws.set_column_width(c, 16).map_err(x)?;
    }
    let mut r: u32 = 0;
    ws.write_string_with_format(
        r,
        0,
        format!(
            "{} — {}",
            t(
                "Väestö- ja palveluennuste",
                "Population and service forecast"
            ),
            txt(s, "scenario")
        ),
        &title,
    )
    .map_err(x)?;
    r += 2;
    let (y0, y1) = (num(s, "base_year"), num(s, "end_year"));
    let line = |ws: &mut Worksheet,
                r: &mut u32,
                label: String,
                v: f64,
                f: &Format|
     -> Result<(), String> {
        ws.write_string(*r, 0, label).map_err(x)?;
        if v.is_finite() {
            ws.write_number_with_format(*r, 1, v, f).map_err(x)?;
        }
        *r += 1;
        Ok(())
    };
    line(
        ws,
        &mut r,
        t("Perusvuosi", "Base year").into(),
        y0,
        &Format::new(),
    )?;
    line(
        ws,
        &mut r,
        t("Viimeinen vuosi", "Last year").into(),
        y1,
        &Format::new(),
    )?;
    if let Some(n) = s.get("trajectories").and_then(Value::as_f64) {
        line(ws, &mut r, t("Polkuja", "Trajectories").into(), n, &int)?;
    }
    line(
        ws,
        &mut r,
        format!("{} {y0}", t("Väestö", "Population")),
        num(s, "population_first"),
        &int,
    )?;
    line(
        ws,
        &mut r,
        format!("{} {y1}", t("Väestö", "Population")),
        num(s, "population_last"),
        &int,
    )?;
    line(
        ws,
        &mut r,
        t("Syntyneet", "Births").into(),
        num(s, "births"),
        &int,
    )?;
    line(
        ws,
        &mut r,
        t("Kuolleet", "Deaths").into(),
        num(s, "deaths"),
        &int,
    )?;
    line(
        ws,
        &mut r,
        t("Nettomuutto", "Net migration").into(),
        num(s, "net_migration"),
        &int,
    )?;
    line(
        ws,
        &mut r,
        t("Kustannusten nykyarvo, €", "Present value of the costs, €").into(),
        num(s, "present_value_eur"),
        &eur,
    )?;
    r += 1;
    let services = super::list(s, "services");
    if !services.is_empty() {
        let heads = [
            t("Palvelu", "Service").to_string(),
            t("yksikkö", "unit").into(),
            format!("{} {y0}", t("kysyntä", "demand")),
            format!("{} {y1}", t("kysyntä", "demand")),
            t("muutos", "change").into(),
            format!("€ {y0}"),
            format!("€ {y1}"),
            t("nykyarvo €", "present value €").into(),
        ];
        for (j, h) in heads.iter().enumerate() {
            ws.write_string_with_format(r, j as u16, h, &bold)
                .map_err(x)?;
        }
        r += 1;
        for sv in &services {
            ws.write_string(r, 0, txt(sv, "name")).map_err(x)?;
            ws.write_string(r, 1, txt(sv, "unit")).map_err(x)?;
            let vals = [
                (num(sv, "demand_first"), &int),
                (num(sv, "demand_last"), &int),
                (num(sv, "demand_change_pct") / 100.0, &pct),
                (num(sv, "cost_first_eur"), &eur),
                (num(sv, "cost_last_eur"), &eur),
                (num(sv, "present_value_eur"), &eur),
            ];
            for (j, (v, f)) in vals.iter().enumerate() {
                if v.is_finite() {
                    ws.write_number_with_format(r, j as u16 + 2, *v, f)
                        .map_err(x)?;
                }
            }
            r += 1;
        }
        r += 1;
    }
    let variants = super::list(s, "variants");
    if !variants.is_empty() {
        let heads = [
            t("Vaihtoehto", "Variant").to_string(),
            t("vertailukohta", "baseline").into(),
            format!("Δ€ {y1}"),
            t("nykyarvon ero €", "Δ present value €").into(),
            t("takaisinmaksuvuosi", "break-even year").into(),
        ];
        for (j, h) in heads.iter().enumerate() {
            ws.write_string_with_format(r, j as u16, h, &bold)
                .map_err(x)?;
        }
        r += 1;
        for v in &variants {
            ws.write_string(r, 0, txt(v, "name")).map_err(x)?;
            ws.write_string(r, 1, txt(v, "baseline")).map_err(x)?;
            ws.write_number_with_format(r, 2, num(v, "cost_diff_last_eur"), &eur)
                .map_err(x)?;
            ws.write_number_with_format(r, 3, num(v, "present_value_diff_eur"), &eur)
                .map_err(x)?;
            match v.get("break_even_year").and_then(Value::as_f64) {
                Some(y) => ws.write_number(r, 4, y).map_err(x)?,
                None => ws.write_string(r, 4, lang.not_by(y1)).map_err(x)?,
            };
            r += 1;
        }
        r += 1;
    }
    ws.write_string_with_format(r, 0, t("Taulukot", "Tables"), &bold)
        .map_err(x)?;
    ws.write_string_with_format(r, 1, t("välilehti", "sheet"), &bold)
        .map_err(x)?;
    ws.write_string_with_format(r, 2, t("rivejä", "rows"), &bold)
        .map_err(x)?;
    r += 1;
    for p in placed {
        for (k, (sheet, rows)) in p.sheets.iter().enumerate() {
            ws.write_string(r, 0, if k == 0 { p.table.as_str() } else { "" })
                .map_err(x)?;
            ws.write_string(r, 1, sheet).map_err(x)?;
            ws.write_number_with_format(r, 2, *rows as f64, &int)
                .map_err(x)?;
            r += 1;
        }
        if p.sheets.len() > 1 {
            let note = match lang {
                Lang::Fi => format!(
                    "{}: taulukko on pidempi kuin yksi välilehti ({} riviä), joten se on jaettu vuosittain {} välilehdelle.",
                    p.table,
                    lang.num(SHEET_ROWS as f64, 0),
                    p.sheets.len()
                ),
                Lang::En => format!(
                    "{}: longer than a sheet holds ({} rows), so split by year over {} sheets.",
                    p.table,
                    lang.num(SHEET_ROWS as f64, 0),
                    p.sheets.len()
                ),
            };
            ws.write_string(r, 0, note).map_err(x)?;
            r += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(years: &[i64]) -> Frame {
        Frame {
            columns: vec![
                (
                    "area".into(),
                    ColumnData::Text(years.iter().map(|_| "091".to_string()).collect()),
                ),
                ("year".into(), ColumnData::Int(years.to_vec())),
                (
                    "population".into(),
                    ColumnData::Float(years.iter().map(|y| *y as f64 / 2.0).collect()),
                ),
            ],
        }
    }

    #[test]
    fn a_table_longer_than_a_sheet_is_split_by_year() {
        let f = frame(&[2024, 2024, 2025, 2025, 2026]);
        let plan = split("population", &f, 3).unwrap();
        let names: Vec<&str> = plan.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["population 2024", "population 2025", "population 2026"]
        );
        assert_eq!(plan[2].1, vec![4]);
        assert_eq!(split("population", &f, 5).unwrap().len(), 1);
        let e = split("population", &frame(&[2024; 4]), 3).unwrap_err();
        assert!(e.contains("4 rows in 2024"), "{e}");
    }

    #[test]
    fn the_workbook_says_where_a_split_table_went() {
        let f = frame(&[2024, 2025]);
        let mut buf = Vec::new();
        let placed =
            write_with_limit(&[("population", &f)], &Value::Null, Lang::En, &mut buf, 1).unwrap();
        assert_eq!(
            placed[0].sheets,
            vec![
                ("population 2024".to_string(), 1),
                ("population 2025".to_string(), 1)
            ]
        );
        assert!(buf.starts_with(b"PK"));
    }
}
