//! The report's service network section: each unit's places against its demand,
//! the years it is short of places, and a chart per unit.

use super::*;

pub(super) fn network(c: &mut Ctx<'_>) -> Result<(), String> {
    let lang = c.lang;
    let units = list(c.summary, "units");
    let Some(f) = c.table("capacity").filter(|_| !units.is_empty()) else {
        return Ok(());
    };
    let _ = writeln!(
        c.out,
        "<section id=\"network\"><h2>{}</h2>",
        c.t("Palveluverkko", "Service network")
    );
    let (y0, y1) = (num(c.summary, "base_year"), num(c.summary, "end_year"));
    let quant = units
        .iter()
        .any(|u| u.get("p_shortage_last").is_some_and(|v| !v.is_null()));
    let d1 = format!("{} {y1}", c.t("kysyntä", "demand"));
    let u1 = format!("{} {y1}", c.t("käyttöaste", "use"));
    let p1 = format!("P({} {y1})", c.t("vaje", "shortage"));
    let mut cols = vec![
        c.t("Yksikkö", "Unit"),
        c.t("palvelu", "service"),
        c.t("paikat", "places"),
        c.t("vara", "kept spare"),
        &d1,
        &u1,
        c.t("ensimmäinen vajevuosi", "first shortage"),
        c.t("vajevuosia", "years short"),
        c.t("suurin vaje (vuosi)", "largest shortage (year)"),
    ];
    if quant {
        cols.push(&p1);
    }
    let _ = writeln!(c.out, "<table class=\"units\">\n{}<tbody>", header(&cols));
    let service_name = |id: &str| -> String {
        c.summary["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| txt(s, "service") == id))
            .map_or(id.to_string(), |s| txt(s, "name").to_string())
    };
    for u in &units {
        let mut cells = vec![
            esc(txt(u, "unit")),
            esc(&service_name(txt(u, "service"))),
            lang.num(num(u, "capacity_last"), 0),
            lang.pct(num(u, "spare_target"), 0),
            lang.num(num(u, "demand_last"), 0),
            lang.pct(num(u, "utilisation_last"), 0),
            u.get("first_shortage_year")
                .and_then(Value::as_i64)
                .map_or("–".into(), |y| y.to_string()),
        ];
        // When and how much: the years short of places, and the largest shortage.
        let short = Rows::all(f)
            .eq("scenario", &c.base)
            .eq("unit", txt(u, "unit"))
            .by_year("shortage");
        let years = short.values().filter(|v| **v > 0.0).count();
        let largest =
            short
                .iter()
                .filter(|(_, v)| **v > 0.0)
                .fold(None, |m: Option<(i32, f64)>, (y, v)| match m {
                    Some((_, b)) if b >= *v => m,
                    _ => Some((*y, *v)),
                });
        cells.push(years.to_string());
        cells.push(largest.map_or("–".into(), |(y, v)| format!("{} ({y})", lang.num(v, 0))));
        if quant {
            cells.push(lang.chance(num(u, "p_shortage_last")));
        }
        c.out.push_str(&row(&cells));
    }
    c.out.push_str("</tbody></table>\n");
    let _ = writeln!(
        c.out,
        "<p class=\"note\">{}</p>",
        c.t(
            "Vaje on kysyntä, joka ylittää paikat vähennettynä vapaaksi jätettävällä varalla (sarake ”vara”): yksikkö voi siksi olla vajeessa jo ennen kuin käyttöaste on 100 %. Ensimmäinen vajevuosi on ensimmäinen vuosi, jona vaje on yli nolla.",
            "A shortage is demand above the places less the share kept spare (column “kept spare”), so a unit can be short of places below 100 % use. The first shortage year is the first year with a shortage above zero."
        )
    );
    // Charts: units short of places first, then by use in the last year.
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|a, b| {
        let key = |u: &Value| {
            (
                u.get("first_shortage_year")
                    .and_then(Value::as_i64)
                    .unwrap_or(i64::MAX),
                -num(u, "utilisation_last"),
            )
        };
        key(&units[*a])
            .partial_cmp(&key(&units[*b]))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if units.len() > UNIT_CHARTS {
        let _ = writeln!(
            c.out,
            "<p class=\"note\">{} {UNIT_CHARTS} {}</p>",
            c.t("Kuvioina", "Charts for the"),
            c.t("yksikköä, joilla vaje tulee ensimmäisenä tai käyttöaste on suurin; kaikki taulukossa.", "units short of places first or most used; every unit is in the table.")
        );
    }
    for &k in order.iter().take(UNIT_CHARTS) {
        let u = &units[k];
        let (unit, service) = (txt(u, "unit"), txt(u, "service"));
        let rows = Rows::all(f)
            .eq("scenario", &c.base)
            .eq("unit", unit)
            .eq("service", service);
        let unit_of = c.summary["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| txt(s, "service") == service))
            .map_or("", |s| txt(s, "unit"));
        let mut ch = c.yc(unit.to_string(), unit_of.to_string(), UNIT);
        if let Some(q) = c.table("capacity_quantiles") {
            let r = Rows::all(q)
                .eq("scenario", &c.base)
                .eq("unit", unit)
                .eq("service", service)
                .eq("quantity", "demand");
            if r.any() {
                ch.bands.push(Band {
                    label: "p05–p95".into(),
                    points: r.band("p05", "p95", 1.0),
                    color: 0,
                    alpha: 0.2,
                });
            }
        }
        ch.lines.push(Line {
            label: c.t("kysyntä", "demand").into(),
            points: points(&rows.by_year("demand"), 1.0),
            color: 0,
            width: 2,
        });
        ch.lines.push(Line {
            label: c.t("paikat", "places").into(),
            points: points(&rows.by_year("capacity"), 1.0),
            color: 7,
            width: 2,
        });
        let first = u.get("first_shortage_year").and_then(Value::as_i64);
        if let Some(y) = first {
            ch.marker = Some((y as i32, format!("{} {y}", c.t("vaje", "shortage"))));
        }
        let mut caption = format!("{}. ", esc(&service_name(service)));
        match first {
            Some(y) => {
                let _ = write!(
                    caption,
                    "{} {y}.",
                    c.t("Ensimmäinen vajevuosi", "First shortage in")
                );
            }
            None => {
                let _ = write!(
                    caption,
                    "{} {y0}–{y1}.",
                    c.t("Ei vajetta vuosina", "No shortage in")
                );
            }
        }
        if quant {
            let _ = write!(
                caption,
                " P({} {y1}) = {}.",
                c.t("vaje", "shortage"),
                lang.chance(num(u, "p_shortage_last"))
            );
        }
        c.figure("unit", chart::years(&ch, lang), &caption)?;
    }
    c.out.push_str("</section>\n");
    Ok(())
}
