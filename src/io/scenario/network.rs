//! `[[unit]]`s: the service network (palveluverkko), its catchments and the units'
//! own costs.

use super::file::ScenarioFile;
use super::Loader;
use crate::io::error::DataError;
use crate::network::{Network, Unit, UnitCost};
use crate::population::Population;

/// A catchment redrawn from a year: the year, the shares by unit and area, and the
/// (service, area)s its rows give.
type Period = (
    i32,
    Vec<Vec<f64>>,
    std::collections::HashSet<(usize, usize)>,
);

/// Builds the service network from the `[[unit]]`s and the `[catchment]` table, and
/// checks the table: known areas and units, shares between 0 and 1, no cell given
/// twice, and each area's shares of a service's units summing to 1. A service with a
/// single unit and no catchment rows sends every area's demand to that unit.
pub(super) fn load_network(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
) -> Option<Network> {
    if file.unit.is_empty() {
        return None;
    }
    let na = pop.areas().len();
    let units: Vec<Unit> = file
        .unit
        .iter()
        .map(|u| Unit {
            id: u.id.clone(),
            service: file
                .service
                .iter()
                .position(|s| s.id == u.service)
                .unwrap_or(usize::MAX),
            capacity: u.capacity,
            floor_area_m2: u.floor_area,
            opens: u.opens,
            closes: u.closes,
            spare_target: u.spare_target.unwrap_or(0.0),
            cost: u.cost.as_ref().map_or_else(Default::default, |c| UnitCost {
                per_m2: c.per_m2.unwrap_or(0.0),
                fixed: c.fixed.unwrap_or(0.0),
                investment: c.investment.unwrap_or(0.0),
                investment_year: c.investment_year,
                growth: c.growth.unwrap_or(0.0),
            }),
        })
        .collect();
    let mut shares = vec![vec![0.0; na]; units.len()];
    let mut ok = true;
    let mut source = String::new();
    // Per (service, area): the lines of its rows, and whether a row of it was refused
    // (its sum is then not checked; the row is reported instead). An area with a row
    // of an unknown unit is left unchecked for every service.
    let mut lines: std::collections::HashMap<(usize, usize), Vec<String>> =
        std::collections::HashMap::new();
    let mut refused: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    let mut unchecked_areas: std::collections::HashSet<usize> = std::collections::HashSet::new();
    // Catchments redrawn from a year after the base year (rows with a `year`): per
    // period its year, its shares, and the (service, area)s it gives; the lines and
    // refusals of a later period are keyed by its year.
    let mut later: Vec<Period> = Vec::new();
    let mut later_lines: std::collections::HashMap<(i32, usize, usize), Vec<String>> =
        std::collections::HashMap::new();
    let mut later_refused: std::collections::HashSet<(i32, usize, usize)> =
        std::collections::HashSet::new();
    let base_year = file.scenario.base_year;
    if let Some(c) = &file.catchment {
        let t = l.table(&c.file, Some("share"))?;
        source.clone_from(&t.source);
        let column = |name: &str| {
            t.columns
                .iter()
                .find(|c| c.name.trim().eq_ignore_ascii_case(name))
        };
        let (Some(area_col), Some(unit_col)) = (column("area"), column("unit")) else {
            let found: Vec<String> = t
                .columns
                .iter()
                .map(|c| format!("`{}`", c.name))
                .chain(std::iter::once(format!("`{}`", t.value_name)))
                .collect();
            let missing: Vec<&str> = ["area", "unit"]
                .into_iter()
                .filter(|n| column(n).is_none())
                .collect();
            l.problem(format!(
                "{}: the catchment table has no `{}` column (it has {}); it needs `area, unit, share`",
                t.source,
                missing.join("` or `"),
                found.join(", ")
            ));
            return None;
        };
        let year_col = column("year");
        let mut row_year = vec![None; t.len()];
        if let Some(yc) = year_col {
            for (row, y) in row_year.iter_mut().enumerate() {
                match crate::io::labels::parse_year(yc.get(row)) {
                    Some(v) if v > base_year => *y = Some(v),
                    Some(_) => {}
                    None => {
                        l.problem(
                            DataError::at(
                                &t.source,
                                t.place(row),
                                "not a year (expected four digits such as 2030)",
                            )
                            .column(yc.name.clone())
                            .value(yc.get(row).to_string())
                            .to_string(),
                        );
                        return None;
                    }
                }
            }
            // Shares from a year after the last one projected never apply: said, as a
            // mistyped year would otherwise pass unseen.
            let end_year = file.scenario.end_year;
            let mut past: Vec<i32> = Vec::new();
            for (row, y) in row_year.iter().enumerate() {
                if let Some(y) = y.filter(|y| *y > end_year && !past.contains(y)) {
                    past.push(y);
                    l.notes.push(
                        DataError::at(
                            &t.source,
                            t.place(row),
                            format!(
                                "the shares from {y} are never used: the scenario ends in {end_year}"
                            ),
                        )
                        .column(yc.name.clone())
                        .value(yc.get(row).to_string())
                        .to_string(),
                    );
                }
            }
            let mut ys: Vec<i32> = row_year.iter().flatten().copied().collect();
            ys.sort_unstable();
            ys.dedup();
            later = ys
                .into_iter()
                .map(|y| (y, vec![vec![0.0; na]; units.len()], Default::default()))
                .collect();
        }
        let mut first_at: std::collections::HashMap<(Option<i32>, usize, usize), usize> =
            std::collections::HashMap::new();
        for (row, &year) in row_year.iter().enumerate() {
            let at = |problem: String, column: &str, value: &str| {
                DataError::at(&t.source, t.place(row), problem)
                    .column(column.to_string())
                    .value(value.to_string())
                    .to_string()
            };
            let (area, unit) = (area_col.get(row), unit_col.get(row));
            let Some(a) = pop.area_index(area) else {
                l.problem(at(
                    "the area has no population".into(),
                    &area_col.name,
                    area,
                ));
                ok = false;
                continue;
            };
            let Some(u) = units.iter().position(|x| x.id == unit) else {
                l.problem(at("no [[unit]] has this id".into(), &unit_col.name, unit));
                ok = false;
                unchecked_areas.insert(a.0);
                continue;
            };
            let key = (units[u].service, a.0);
            let period = year.and_then(|y| later.iter().position(|p| p.0 == y));
            match period {
                None => lines.entry(key).or_default().push(t.place(row).to_string()),
                Some(p) => {
                    later[p].2.insert(key);
                    later_lines
                        .entry((later[p].0, key.0, key.1))
                        .or_default()
                        .push(t.place(row).to_string());
                }
            }
            let mut refuse = |key: (usize, usize)| match period {
                None => {
                    refused.insert(key);
                }
                Some(p) => {
                    later_refused.insert((later[p].0, key.0, key.1));
                }
            };
            let share = match t.values[row] {
                Some(v) if (0.0..=1.0).contains(&v) => v,
                v => {
                    l.problem(at(
                        "a share must be a number between 0 and 1".into(),
                        t.value_column(row),
                        &v.map_or_else(|| "(missing)".into(), |v| v.to_string()),
                    ));
                    ok = false;
                    refuse(key);
                    continue;
                }
            };
            if let Some(first) = first_at.insert((year, a.0, u), row) {
                l.problem(format!(
                    "{}: {}: area `{area}` and unit `{unit}` are given again (first at {})",
                    t.source,
                    t.place(row),
                    t.place(first)
                ));
                ok = false;
                refuse(key);
            }
            match period {
                None => shares[u][a.0] = share,
                Some(p) => later[p].1[u][a.0] = share,
            }
        }
    }
    if units.iter().any(|u| u.service == usize::MAX) {
        // Reported by the scenario file's own checks.
        return None;
    }
    for (s, sv) in file.service.iter().enumerate() {
        let of: Vec<usize> = (0..units.len())
            .filter(|u| units[*u].service == s)
            .collect();
        // Whether any catchment row names a unit of the service.
        let has_rows = lines.keys().any(|(sv, _)| *sv == s);
        match (of.as_slice(), has_rows) {
            ([], _) => {}
            ([only], false) => shares[*only].fill(1.0),
            (_, false) => {
                l.key_problem(
                    "catchment.file",
                    format!(
                        "service `{}` has {} units: a catchment table must share each area's demand among them",
                        sv.id,
                        of.len()
                    ),
                );
                ok = false;
            }
            (_, true) => {
                for (a, code) in pop.areas().iter().enumerate() {
                    if refused.contains(&(s, a)) || unchecked_areas.contains(&a) {
                        continue;
                    }
                    let sum: f64 = of.iter().map(|u| shares[*u][a]).sum();
                    if (sum - 1.0).abs() > crate::network::SUM_TOLERANCE {
                        l.problem(match lines.get(&(s, a)) {
                            Some(at) => format!(
                                "{source}: {}, column `share`: area `{code}`'s shares of service `{}`'s units sum to {sum}; they must sum to 1",
                                at.join(", "),
                                sv.id
                            ),
                            None => format!(
                                "{source}: area `{code}` has no row for service `{}`'s units; its shares must sum to 1",
                                sv.id
                            ),
                        });
                        ok = false;
                    }
                }
            }
        }
    }
    // Each later period: an (area, service) it gives must sum to 1; one it does not
    // give keeps the shares it had before.
    for p in 0..later.len() {
        let (year, given) = (later[p].0, later[p].2.clone());
        for (s, sv) in file.service.iter().enumerate() {
            let of: Vec<usize> = (0..units.len())
                .filter(|u| units[*u].service == s)
                .collect();
            for (a, code) in pop.areas().iter().enumerate() {
                if !given.contains(&(s, a)) {
                    for &u in &of {
                        later[p].1[u][a] = if p == 0 {
                            shares[u][a]
                        } else {
                            later[p - 1].1[u][a]
                        };
                    }
                    continue;
                }
                if later_refused.contains(&(year, s, a)) || unchecked_areas.contains(&a) {
                    continue;
                }
                let sum: f64 = of.iter().map(|u| later[p].1[*u][a]).sum();
                if (sum - 1.0).abs() > crate::network::SUM_TOLERANCE {
                    let at = later_lines
                        .get(&(year, s, a))
                        .map_or(String::new(), |l| l.join(", "));
                    l.problem(format!(
                        "{source}: {at}, column `share`: area `{code}`'s shares of service `{}`'s units from {year} sum to {sum}; they must sum to 1",
                        sv.id
                    ));
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return None;
    }
    let mut network = match Network::new(units.clone(), shares, na) {
        Ok(n) => n,
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.name()));
            return None;
        }
    };
    for (year, sh, _) in later {
        if let Err(e) = network.redraw_from(year, sh) {
            l.problem(format!("{}: {e}", l.source.name()));
            return None;
        }
    }
    // A unit outside its opening years that its catchment still sends demand to:
    // that demand is all shortage.
    let years = file.scenario.base_year..=file.scenario.end_year;
    for (u, unit) in units.iter().enumerate() {
        let shut: Vec<i32> = years
            .clone()
            .filter(|y| !unit.is_open(*y) && network.shares_in(u, *y).iter().any(|s| *s > 0.0))
            .collect();
        if let (Some(first), Some(last)) = (shut.first(), shut.last()) {
            l.notes.push(format!(
                "unit `{}` is not open in {} of the years {first}–{last}, but its catchment still sends it demand: that demand counts as shortage there (change the catchment for those years to move it)",
                unit.id,
                shut.len()
            ));
        }
    }
    Some(network)
}
