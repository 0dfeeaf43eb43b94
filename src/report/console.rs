//! The summary `kunta run` and `kunta backtest` print: plain text for a terminal, in
//! English, from a run's [`RunSummary`] (and its population) or a backtest's scores.

use crate::io::scenario::LoadedScenario;
use crate::projection::Projection;
use crate::run::{Interval, RunSummary, ServiceFigures};

/// MAPE and MALPE by group and horizon for kunta and the baselines.
pub fn backtest(scores: &[crate::estimate::backtest::Score]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mut horizons: Vec<u32> = scores.iter().map(|x| x.horizon).collect();
    horizons.dedup();
    for h in horizons {
        let _ = writeln!(
            s,
            "\nhorizon {h} years: MAPE % (MALPE %) over areas and jump-offs"
        );
        let _ = writeln!(
            s,
            "{:<8}{:>18}{:>18}{:>18}{:>8}",
            "group", "kunta", "naive", "linear", "cells"
        );
        let mut groups: Vec<&str> = scores
            .iter()
            .filter(|x| x.horizon == h)
            .map(|x| x.group)
            .collect();
        groups.dedup();
        for g in groups {
            let _ = write!(s, "{g:<8}");
            let mut cells = 0;
            for m in crate::estimate::backtest::METHODS {
                match scores
                    .iter()
                    .find(|x| x.horizon == h && x.group == g && x.method == m)
                {
                    Some(x) => {
                        cells = x.cells;
                        let _ = write!(s, "{:>18}", format!("{:.2} ({:+.2})", x.mape, x.malpe));
                    }
                    None => {
                        let _ = write!(s, "{:>18}", "–");
                    }
                }
            }
            let _ = writeln!(s, "{cells:>8}");
        }
    }
    s
}

/// The per-service table of the printed summary.
pub fn services(summary: &RunSummary) -> String {
    use std::fmt::Write;
    let list = &summary.services;
    if list.is_empty() {
        return String::new();
    }
    let (y0, y1) = (list[0].first_year, list[0].last_year);
    // A scenario without any cost gets no cost columns.
    let costs = list
        .iter()
        .any(|v| v.cost_first_eur != 0.0 || v.cost_last_eur != 0.0 || v.present_value_eur != 0.0)
        || summary.unit_costs_present_value_eur != 0.0;
    let mut s = String::new();
    if costs {
        let _ = writeln!(
            s,
            "\nServices, all areas (costs in million euros of {y0}; present value at {:.1} %)",
            100.0 * summary.discount_rate
        );
    } else {
        let _ = writeln!(s, "\nServices, all areas (no costs given)");
    }
    // The service and unit columns as wide as their longest text, with a gap.
    let width = |text: &dyn Fn(&ServiceFigures) -> &str, gap: usize, least: usize| {
        let most = list.iter().map(|v| text(v).chars().count() + gap).max();
        most.unwrap_or(0).clamp(least, 3 * least)
    };
    let (w, wu) = (width(&|v| &v.name, 2, 40), width(&|v| &v.unit, 1, 8));
    let _ = write!(
        s,
        "{:<w$}{:<wu$}{:>9}{:>9}{:>9}",
        "service", "unit", y0, y1, "change"
    );
    if costs {
        let _ = write!(
            s,
            "{:>10}{:>10}{:>10}",
            format!("€ {y0}"),
            format!("€ {y1}"),
            "PV €"
        );
    }
    s.push('\n');
    for v in list {
        let name: String = v.name.chars().take(w - 2).collect();
        let change = v
            .demand_change_pct
            .map_or_else(|| "–".to_string(), |c| format!("{c:+.1} %"));
        let _ = write!(
            s,
            "{:<w$}{:<wu$}{:>9.0}{:>9.0}{:>9}",
            name, v.unit, v.demand_first, v.demand_last, change
        );
        if costs {
            let _ = write!(
                s,
                "{:>10.2}{:>10.2}{:>10.1}",
                v.cost_first_eur / 1e6,
                v.cost_last_eur / 1e6,
                v.present_value_eur / 1e6
            );
        }
        s.push('\n');
    }
    if costs {
        let services: f64 = list.iter().map(|v| v.present_value_eur).sum();
        let _ = writeln!(
            s,
            "{:<wide$}{:>10.1}",
            "all services",
            services / 1e6,
            wide = w + wu + 47
        );
        if summary.unit_costs_present_value_eur != 0.0 {
            let _ = writeln!(
                s,
                "{:<wide$}{:>10.1}",
                "units' own costs (premises, fixed, investments)",
                summary.unit_costs_present_value_eur / 1e6,
                wide = w + wu + 47
            );
            let _ = writeln!(
                s,
                "{:<wide$}{:>10.1}",
                "total",
                summary.present_value_eur / 1e6,
                wide = w + wu + 47
            );
        }
    }
    if let Some(u) = &summary.uncertainty {
        // The lowest and highest quantile levels of the run (p05 and p95 by default).
        let (lo_name, hi_name) = u.outer();
        let lo_hi = |v: &Interval, scale: f64, digits: usize| -> String {
            match (v.get(lo_name), v.get(hi_name)) {
                (Some(lo), Some(hi)) => {
                    format!("{:.d$} – {:.d$}", lo / scale, hi / scale, d = digits)
                }
                _ => "–".into(),
            }
        };
        let _ = writeln!(
            s,
            "\n{} trajectories (seed {}): quantiles {lo_name} – {hi_name} for the whole municipality",
            u.trajectories, u.seed
        );
        let _ = write!(s, "{:<w$}{:>20}", "service", format!("demand {y1}"));
        if costs {
            let _ = write!(s, "{:>20}{:>20}", format!("€ {y1} (M€)"), "PV (M€)");
        }
        s.push('\n');
        for v in list {
            let Some(q) = &v.uncertainty else { continue };
            let name: String = v.name.chars().take(w - 2).collect();
            let _ = write!(
                s,
                "{:<w$}{:>20}",
                name,
                lo_hi(&q.demand_last_quantiles, 1.0, 0)
            );
            if costs {
                let _ = write!(
                    s,
                    "{:>20}{:>20}",
                    lo_hi(&q.cost_last_quantiles_eur, 1e6, 2),
                    lo_hi(&q.present_value_quantiles_eur, 1e6, 1)
                );
            }
            s.push('\n');
        }
    }
    s
}

/// The service network's part of the printed summary: places, demand and
/// utilisation in the last year, the first year of shortage and, under uncertainty,
/// the probability of a shortage in the last year.
pub fn units(summary: &RunSummary) -> String {
    use std::fmt::Write;
    let list = &summary.units;
    if list.is_empty() {
        return String::new();
    }
    let y1 = summary.end_year;
    let mc = list[0].uncertainty.is_some();
    let mut s = String::new();
    let y0 = summary.base_year;
    let _ = writeln!(s, "\nService network (places against demand)");
    let _ = write!(
        s,
        "{:<28}{:<16}{:>8}{:>12}{:>12}{:>10}{:>16}",
        "unit",
        "service",
        "places",
        format!("demand {y0}"),
        format!("demand {y1}"),
        format!("use {y1}"),
        "first shortage"
    );
    if mc {
        let _ = write!(s, "{:>18}", format!("P(shortage {y1})"));
    }
    s.push('\n');
    let mut notes = Vec::new();
    // A national network's hundreds of units: those short of places first (then the
    // most used), the rest left to the capacity table and the report.
    const MAX_UNITS: usize = 20;
    let mut order: Vec<&crate::run::UnitFigures> = list.iter().collect();
    if list.len() > MAX_UNITS {
        order.sort_by(|a, b| {
            let key = |u: &crate::run::UnitFigures| {
                (
                    u.first_shortage_year.unwrap_or(i32::MAX),
                    -u.utilisation_last.unwrap_or(0.0),
                )
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        order.truncate(MAX_UNITS);
    }
    for v in order {
        let text = |t: &str, w: usize| -> String { t.chars().take(w).collect() };
        // No utilisation: the unit has no places that year (closed, or none given).
        let util = v.utilisation_last.map_or_else(
            || "no places".to_string(),
            |u| format!("{:.0} %", 100.0 * u),
        );
        let first = v
            .first_shortage_year
            .map_or_else(|| "–".to_string(), |y| y.to_string());
        let _ = write!(
            s,
            "{:<28}{:<16}{:>8.0}{:>12.0}{:>12.0}{:>10}{:>16}",
            text(&v.unit, 26),
            text(&v.service, 14),
            v.capacity_last,
            v.demand_first,
            v.demand_last,
            util,
            first
        );
        if let Some(c) = &v.uncertainty {
            let _ = write!(s, "{:>18}", percent(c.p_shortage_last));
        }
        s.push('\n');
        // A shortage below full use comes from the spare target: say so.
        if let (Some(y), Some(u)) = (v.first_shortage_year, v.utilisation_at_first_shortage) {
            if v.spare_target > 0.0 && u <= 1.0 {
                notes.push(format!(
                    "  {} keeps {:.0} % of its places spare, so a shortage starts above {:.0} % use: {:.0} % in {y}",
                    v.unit,
                    100.0 * v.spare_target,
                    100.0 * (1.0 - v.spare_target),
                    100.0 * u
                ));
            }
        }
    }
    if list.len() > MAX_UNITS {
        let _ = writeln!(
            s,
            "({} units: the {MAX_UNITS} short of places first shown; every unit in the capacity table and the report)",
            list.len()
        );
    }
    for n in notes {
        let _ = writeln!(s, "{n}");
    }
    s
}

/// The variants' part of the printed summary: each against its baseline.
pub fn variants(summary: &RunSummary) -> String {
    use std::fmt::Write;
    if summary.variants.is_empty() {
        return String::new();
    }
    let (y0, y1) = (summary.base_year, summary.end_year);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nVariants against their baseline (total cost of all services, million euros of {y0}; present value at {:.1} %)",
        100.0 * summary.discount_rate
    );
    let _ = writeln!(
        s,
        "{:<28}{:<28}{:>12}{:>12}{:>12}{:>14}",
        "variant",
        "baseline",
        format!("Δ€ {y0}"),
        format!("Δ€ {y1}"),
        "Δ PV",
        "break-even"
    );
    for v in &summary.variants {
        let text = |t: &str| -> String { t.chars().take(26).collect() };
        let even = v
            .break_even_year
            .map_or_else(|| format!("not by {y1}"), |y| y.to_string());
        let _ = writeln!(
            s,
            "{:<28}{:<28}{:>12.2}{:>12.2}{:>12.1}{:>14}",
            text(&v.name),
            text(&v.baseline),
            v.cost_diff_first_eur / 1e6,
            v.cost_diff_last_eur / 1e6,
            v.present_value_diff_eur / 1e6,
            even
        );
    }
    // Under uncertainty: each difference's spread and how often it pays back.
    if let Some(u) = &summary.uncertainty {
        let (lo_name, hi_name) = u.outer();
        let mut lines = Vec::new();
        for v in &summary.variants {
            let Some(c) = &v.uncertainty else { continue };
            let pv = &c.present_value_diff_quantiles_eur;
            if let (Some(lo), Some(hi)) = (pv.get(lo_name), pv.get(hi_name)) {
                let text: String = v.name.chars().take(26).collect();
                lines.push(format!(
                    "{text:<28}{:>24}{:>22}",
                    format!("{:.1} – {:.1}", lo / 1e6, hi / 1e6),
                    percent(c.p_pays_back)
                ));
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<28}{:>24}{:>22}",
                format!("{} trajectories", u.trajectories),
                format!("Δ PV {lo_name} – {hi_name} (M€)"),
                format!("P(pays back by {y1})")
            );
            for l in lines {
                let _ = writeln!(s, "{l}");
            }
        }
    }
    // Where a variant moves a unit's first shortage (a new school, a closure).
    for v in &summary.variants {
        // Against its baseline: the base scenario or another variant.
        let other = summary.variants.iter().find(|o| o.name == v.baseline);
        let baseline = other.map_or(&summary.units, |o| &o.summary.units);
        for u in &v.summary.units {
            let before = baseline
                .iter()
                .find(|b| b.unit == u.unit)
                .map(|b| b.first_shortage_year);
            let now = u.first_shortage_year.map_or_else(
                || "never short of places".to_string(),
                |y| format!("first short of places in {y}"),
            );
            match before {
                Some(b) if b == u.first_shortage_year => {}
                Some(b) => {
                    let _ = writeln!(
                        s,
                        "  {}: {} {now} ({}: {})",
                        v.name,
                        u.unit,
                        if other.is_none() {
                            "base"
                        } else {
                            v.baseline.as_str()
                        },
                        b.map_or_else(|| "never".to_string(), |y| y.to_string())
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "  {}: new unit {}, {:.0} places, {now}",
                        v.name, u.unit, u.capacity_last,
                    );
                }
            }
        }
    }
    s
}

/// A probability as a percentage, by the report's rule for chances
/// ([`super::shown_chance`]: never 0 % or 100 % when it is not).
fn percent(p: f64) -> String {
    let (v, d) = crate::report::shown_chance(p);
    format!("{v:.d$} %")
}

/// Age groups that matter to municipal services.
const GROUPS: [(&str, usize, usize); 7] = [
    ("0–6", 0, 6),
    ("7–12", 7, 12),
    ("13–15", 13, 15),
    ("16–18", 16, 18),
    ("19–64", 19, 64),
    ("65–74", 65, 74),
    ("75+", 75, usize::MAX),
];

/// Persons aged `from..=to` in year slot `k`, area `a` (all areas if `None`).
fn group(p: &Projection, k: usize, a: Option<usize>, from: usize, to: usize) -> f64 {
    let nx = p.population.dim().3;
    let hi = to.min(nx - 1);
    if from > hi {
        return 0.0;
    }
    let areas: Vec<usize> = a.map_or_else(|| (0..p.areas.len()).collect(), |a| vec![a]);
    areas
        .iter()
        .map(|&a| p.population.slice(ndarray::s![k, a, .., from..=hi]).sum())
        .sum()
}

/// The scenario's heading (its name, years and areas), its population in the first
/// and last year by planning age group, all areas and (for a few areas) each, and the
/// births, deaths and net migration over the projected years.
pub fn population(l: &LoadedScenario, p: &Projection) -> String {
    use std::fmt::Write;
    let last = p.years.len() - 1;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — population {}–{} ({})",
        l.file.scenario.name,
        p.years[0],
        p.years[last],
        l.source.name()
    );
    let projected = p.components.iter().filter(|c| c.is_some()).count();
    let na = p.areas.len();
    let _ = writeln!(
        s,
        "{na} area{}, ages 0–{} ({} = open top group); {} years projected, {} taken as given\n",
        if na == 1 { "" } else { "s" },
        p.population.dim().3 - 1,
        p.population.dim().3 - 1,
        projected,
        last - projected
    );
    // Areas by their own names (from `[areas] file`), cut to the column; a national
    // run's hundreds of areas are left to the tables and the report.
    const MAX_AREAS: usize = 20;
    let width = p
        .areas
        .iter()
        .map(|a| l.area_name(a).chars().count().min(24))
        .max()
        .unwrap_or(0)
        .max(11)
        + 1;
    for k in [0, last] {
        let _ = write!(s, "{:<width$}{:>10}", p.years[k], "total");
        for (g, _, _) in GROUPS {
            let _ = write!(s, "{g:>9}");
        }
        s.push('\n');
        let by_area = if na > 1 && na <= MAX_AREAS { na } else { 0 };
        let rows: Vec<(String, Option<usize>)> = p
            .areas
            .iter()
            .enumerate()
            .take(by_area)
            .map(|(a, code)| (l.area_name(code).chars().take(24).collect(), Some(a)))
            .chain(std::iter::once(("all".to_string(), None)))
            .collect();
        for (name, a) in rows {
            let _ = write!(s, "{name:<width$}{:>10.0}", group(p, k, a, 0, usize::MAX));
            for (_, from, to) in GROUPS {
                let _ = write!(s, "{:>9.0}", group(p, k, a, from, to));
            }
            s.push('\n');
        }
        if na > MAX_AREAS {
            let _ = writeln!(
                s,
                "({na} areas: each in the population table and the report)"
            );
        }
        s.push('\n');
        if last == 0 {
            break;
        }
    }
    let comp = |f: &dyn Fn(&crate::projection::YearComponents) -> f64| -> f64 {
        p.components.iter().flatten().map(f).sum()
    };
    if projected > 0 {
        let _ = writeln!(
            s,
            "{}–{}: births {:.0}, deaths {:.0}, net migration {:+.0}",
            p.years[0] + 1,
            p.years[last],
            comp(&|c| c.births.sum()),
            comp(&|c| c.deaths.sum()),
            comp(&|c| c.net_migration().sum())
        );
    }
    s
}
