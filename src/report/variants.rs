//! The report's variants section: each variant's cost against its baseline (in
//! words, a table and charts) and what it does to the service network.

use super::*;

/// Total cost of a scenario by year: its services' totals and its units' own costs.
fn total_costs(c: &Ctx<'_>, scenario: &str) -> BTreeMap<i32, f64> {
    let mut out = BTreeMap::new();
    if let Some(f) = c.table("costs") {
        out = Rows::all(f)
            .eq("scenario", scenario)
            .eq("component", "total")
            .by_year("cost_eur");
    }
    if let Some(f) = c.table("unit_costs") {
        for (y, v) in Rows::all(f)
            .eq("scenario", scenario)
            .eq("component", "total")
            .by_year("cost_eur")
        {
            *out.entry(y).or_insert(0.0) += v;
        }
    }
    out
}

/// Where variant `v` moves a unit's first year short of places against its baseline
/// (the base scenario or another variant: a new school relieving an old one, a
/// closure), and each unit it adds with its places and its own first shortage: list
/// items, empty where nothing moves.
fn network_moves(c: &Ctx<'_>, v: &Value) -> Vec<String> {
    let y1 = num(c.summary, "end_year");
    let first = |u: &Value| u.get("first_shortage_year").and_then(Value::as_i64);
    let short = |y: Option<i64>| match y {
        Some(y) => format!("{} {y}", c.t("vaje vuodesta", "short of places from")),
        None => match c.lang {
            Lang::Fi => format!("ei vajetta vuoteen {y1} mennessä"),
            Lang::En => format!("never short of places up to {y1}"),
        },
    };
    // Against the variant's baseline: the base scenario or another variant.
    let baseline = txt(v, "baseline");
    let (base, against) = if baseline == c.base {
        (
            list(c.summary, "units"),
            c.t("perusurassa", "in the base").to_string(),
        )
    } else {
        let other = list(c.summary, "variants")
            .into_iter()
            .find(|o| txt(o, "name") == baseline);
        (
            other.map_or_else(Vec::new, |o| list(&o["summary"], "units")),
            format!("{} {}", c.t("vaihtoehdossa", "in"), esc(baseline)),
        )
    };
    let mut out = Vec::new();
    for u in list(&v["summary"], "units") {
        let name = txt(&u, "unit");
        match base.iter().find(|b| txt(b, "unit") == name) {
            Some(b) if first(b) == first(&u) => {}
            Some(b) => out.push(format!(
                "<li>{}: {} ({against}: {})</li>",
                esc(name),
                short(first(&u)),
                short(first(b))
            )),
            None => out.push(format!(
                "<li>{} {}, {} {}: {}</li>",
                c.t("Uusi yksikkö", "New unit"),
                esc(name),
                c.lang.num(num(&u, "capacity_last"), 0),
                c.t("paikkaa", "places"),
                short(first(&u))
            )),
        }
    }
    out
}

pub(super) fn variants(c: &mut Ctx<'_>) -> Result<(), String> {
    let lang = c.lang;
    let list = list(c.summary, "variants");
    if list.is_empty() {
        return Ok(());
    }
    let y1 = num(c.summary, "end_year");
    let _ = writeln!(
        c.out,
        "<section id=\"variants\"><h2>{}</h2>",
        c.t("Vaihtoehdot", "Variants")
    );
    for v in &list {
        let (name, baseline) = (txt(v, "name"), txt(v, "baseline"));
        let _ = writeln!(c.out, "<article class=\"variant\"><h3>{}</h3>", esc(name));
        if !txt(v, "description").is_empty() {
            let _ = writeln!(c.out, "<p>{}</p>", esc(txt(v, "description")));
        }
        let be = v.get("break_even_year").and_then(Value::as_i64);
        // Which way the difference goes, in words: a sign alone is easy to misread.
        // The direction as the amount reads (to the cent of a million euros).
        let diff = (num(v, "present_value_diff_eur") / 1e4).round() * 1e4;
        let (more, less, same) = match lang {
            Lang::Fi => ("enemmän kuin", "vähemmän kuin", "saman verran kuin"),
            Lang::En => ("more than", "less than", "the same as"),
        };
        let way = if diff > 0.0 {
            more
        } else if diff < 0.0 {
            less
        } else {
            same
        };
        let y0 = num(c.summary, "base_year");
        let amount = if diff == 0.0 || !diff.is_finite() {
            String::new()
        } else {
            lang.meur(diff.abs()) + " "
        };
        let mut p = if diff.is_finite() {
            format!(
                "{} {} {amount}{} {} ({} {y0}–{y1}). {}: ",
                esc(name),
                c.t("maksaa", "costs"),
                way,
                esc(baseline),
                c.t("kustannusten nykyarvo", "present value of the costs"),
                c.t("Takaisinmaksu", "Break-even"),
            )
        } else {
            // No difference to tell (not a number): said as such, not as "the same".
            format!(
                "{} {} {}: –. {}: ",
                c.t(
                    "Kustannusten nykyarvon ero vaihtoehtoon",
                    "Difference in the present value of the costs against"
                ),
                esc(baseline),
                esc(name),
                c.t("Takaisinmaksu", "Break-even"),
            )
        };
        match be {
            Some(y) => {
                let _ = write!(p, "{y}");
            }
            None => {
                p.push_str(&c.lang.not_by(y1));
            }
        }
        let pp = num(v, "p_pays_back");
        if pp.is_finite() {
            let _ = write!(
                p,
                ", P({}) = {}",
                c.t("maksaa itsensä takaisin", "pays back"),
                lang.chance(pp)
            );
        }
        p.push('.');
        let _ = writeln!(c.out, "<p>{p}</p>");
        let moved = network_moves(c, v);
        if !moved.is_empty() {
            let _ = writeln!(c.out, "<ul>{}</ul>", moved.join(""));
        }
        let mut ch = c.yc(
            format!("{}: {}", c.t("Kustannukset yhteensä", "Total cost"), name),
            "M€".into(),
            WIDE,
        );
        ch.tight = true;
        ch.lines.push(Line {
            label: baseline.to_string(),
            points: points(&total_costs(c, baseline), 1e6),
            color: 6,
            width: 2,
        });
        ch.lines.push(Line {
            label: name.to_string(),
            points: points(&total_costs(c, name), 1e6),
            color: 0,
            width: 2,
        });
        c.figure(
            "variant-costs",
            chart::years(&ch, lang),
            c.t(
                "Kaikki palvelut ja yksiköt, kaikki alueet. Pystyakseli ei ala nollasta, jotta ero näkyy; sen koko on alla.",
                "All services and units, all areas. The vertical axis does not start at zero, so that the gap shows; its size is below.",
            ),
        )?;
        if let Some(f) = c.table("impact") {
            let rows = Rows::all(f)
                .eq("scenario", name)
                .eq("baseline", baseline)
                .eq("service", "all");
            let mut ch = c.yc(
                format!(
                    "{}: {}",
                    c.t(
                        "Diskontattu kumulatiivinen ero",
                        "Discounted cumulative difference"
                    ),
                    name
                ),
                "M€".into(),
                WIDE,
            );
            if let Some(q) = c.table("impact_quantiles") {
                let r = Rows::all(q)
                    .eq("scenario", name)
                    .eq("baseline", baseline)
                    .eq("service", "all")
                    .eq("quantity", "discounted_cumulative_eur");
                if r.any() {
                    for (lo, hi, alpha, label) in [
                        ("p05", "p95", 0.15, "p05–p95"),
                        ("p25", "p75", 0.3, "p25–p75"),
                    ] {
                        ch.bands.push(Band {
                            label: label.into(),
                            points: r.band(lo, hi, 1e6),
                            color: 0,
                            alpha,
                        });
                    }
                }
            }
            ch.lines.push(Line {
                label: c.t("ero", "difference").into(),
                points: points(&rows.by_year("discounted_cumulative_eur"), 1e6),
                color: 0,
                width: 2,
            });
            if let Some(y) = be {
                ch.marker = Some((
                    y as i32,
                    format!("{} {y}", c.t("takaisinmaksu", "break-even")),
                ));
            }
            c.figure(
                "variant-impact",
                chart::years(&ch, lang),
                c.t(
                    "Yli nollan: vaihtoehto maksaa enemmän kuin vertailukohta; alle nollan: se säästää.",
                    "Above zero the variant costs more than its baseline; below zero it saves.",
                ),
            )?;
        }
        c.out.push_str("</article>\n");
    }
    c.out.push_str("</section>\n");
    Ok(())
}
