//! `[areas]`: the areas' own names and parents, and the notes on areas that sum
//! to a parent.

use super::{AreaName, Loader};
use crate::population::{Population, Year};

/// Reads `[areas] file` (`area, name[, parent]`): every area of the population gets a
/// name (its code where the table has none); rows for areas the population does not
/// have are left out (a national table of names serves one municipality's run).
pub(super) fn load_area_names(l: &mut Loader<'_>, rel: &str, pop: &Population) -> Vec<AreaName> {
    let Some((path, bytes)) = l.read_input(rel) else {
        return Vec::new();
    };
    let file = path.display().to_string();
    let names = match crate::io::csv::read_pairs(&bytes, &file, "area", "name") {
        Ok(p) => p,
        Err(e) => {
            l.problem(e.to_string());
            return Vec::new();
        }
    };
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let has_parent = String::from_utf8_lossy(header)
        .split([',', ';', '\t'])
        .any(|h| h.trim().trim_matches('"').eq_ignore_ascii_case("parent"));
    let parents = if has_parent {
        match crate::io::csv::read_pairs(&bytes, &file, "area", "parent") {
            Ok(p) => p,
            Err(e) => {
                l.problem(e.to_string());
                return Vec::new();
            }
        }
    } else {
        Vec::new()
    };
    let mut out: Vec<AreaName> = pop
        .areas()
        .iter()
        .map(|a| AreaName {
            area: a.clone(),
            name: a.clone(),
            parent: None,
        })
        .collect();
    let mut seen: std::collections::HashMap<String, u64> = Default::default();
    for (k, (area, name, line)) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(area.clone(), line) {
            l.problem(format!(
                "{file}: line {line}: area `{area}` is named twice (first on line {first})"
            ));
            continue;
        }
        if name.is_empty() {
            l.problem(format!(
                "{file}: line {line}, column `name`: area `{area}` has an empty name"
            ));
            continue;
        }
        if let Some(i) = pop.area_index(&area) {
            out[i.0].name = name;
            if let Some((_, p, _)) = parents.get(k) {
                out[i.0].parent = (!p.is_empty()).then(|| p.clone());
            }
        }
    }
    out
}

/// Warnings for a population table that holds aggregates beside the areas they sum:
/// an area that is the sum of all the others in the base year (a whole country or
/// region fed with its municipalities), an area whose children by `[areas]` parent are
/// all there and sum to it, and region (`MK…`) or sub-region (`SK…`) codes beside
/// municipality (`KU…`) codes. Such a table counts people twice.
pub(super) fn aggregate_notes(
    pop: &Population,
    base: Year,
    names: &[AreaName],
    file: &str,
) -> Vec<String> {
    let Some(y) = pop.year_index(base) else {
        return Vec::new();
    };
    let v = pop.values();
    let cells = |a: usize| v.slice(ndarray::s![y.0, a, .., ..]);
    let na = pop.areas().len();
    let mut out = Vec::new();
    let advice = "it would be counted twice: keep only the areas wanted with `population.areas`";
    // The sum of each sex and age over all areas.
    if na >= 3 {
        let mut total = cells(0).to_owned();
        for a in 1..na {
            total += &cells(a);
        }
        for a in 0..na {
            let c = cells(a);
            let sum: f64 = c.sum();
            let same = sum > 0.0
                && c.iter()
                    .zip(total.iter())
                    .all(|(x, t)| (t - 2.0 * x).abs() <= 0.5 + 1e-9 * t.abs());
            if same {
                out.push(format!(
                    "{file}: area `{}` is the sum of all the other areas in {base} (a whole country or region?): {advice}",
                    pop.areas()[a]
                ));
            }
        }
    }
    // Parents from the names table.
    let by_code: std::collections::HashMap<&str, usize> = pop
        .areas()
        .iter()
        .enumerate()
        .map(|(i, a)| (a.as_str(), i))
        .collect();
    let mut children: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for n in names {
        if let (Some(p), Some(&i)) = (n.parent.as_deref(), by_code.get(n.area.as_str())) {
            children.entry(p).or_default().push(i);
        }
    }
    for (parent, kids) in children {
        let Some(&p) = by_code.get(parent) else {
            continue;
        };
        let mut sum = cells(kids[0]).to_owned();
        for k in &kids[1..] {
            sum += &cells(*k);
        }
        let same = cells(p)
            .iter()
            .zip(sum.iter())
            .all(|(x, s)| (x - s).abs() <= 0.5 + 1e-9 * s.abs());
        if same {
            out.push(format!(
                "{file}: area `{parent}` is the sum of its {} areas in the table (by `[areas]` parent): {advice}",
                kids.len()
            ));
        }
    }
    // Statistics Finland's region codes beside municipality codes.
    let upper = |a: &str| a.get(..2).map(str::to_ascii_uppercase);
    let has_ku = pop
        .areas()
        .iter()
        .any(|a| upper(a).as_deref() == Some("KU"));
    if has_ku {
        let regions: Vec<&str> = pop
            .areas()
            .iter()
            .filter(|a| {
                matches!(upper(a).as_deref(), Some("MK" | "SK"))
                    && a[2..].chars().all(|c| c.is_ascii_digit())
            })
            .map(String::as_str)
            .collect();
        if !regions.is_empty() {
            out.push(format!(
                "{file}: {} (`{}`) beside municipalities (`KU…`): {advice}",
                if regions.len() == 1 {
                    "a region code".to_string()
                } else {
                    format!("{} region codes", regions.len())
                },
                regions[..regions.len().min(5)].join("`, `")
            ));
        }
    }
    out
}
