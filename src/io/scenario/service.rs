//! `[[service]]`s: each service's segments, coverage, teaching model and costs.

use super::file::{self, parse_service_sex, Param, ScenarioFile, ServiceSection};
use super::{linear, Loader};
use crate::io::rates::{rate_rows, Shape};
use crate::population::Population;
use crate::rates::RateTable;
use crate::services::{self, Cost, FixedPer, Segment, Service, ServiceError, Teaching, Value};

/// Builds every `[[service]]` and checks it against the population: its ages, its
/// parameter tables, and segment shares summing to 1 in every area, year and age.
pub(super) fn load_services(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
) -> Vec<Service> {
    let years: Vec<i32> = (file.scenario.base_year..=file.scenario.end_year).collect();
    let omega = pop.n_ages() - 1;
    let mut out = Vec::new();
    for sv in &file.service {
        let Some(s) = build_service(l, sv, pop.areas()) else {
            continue;
        };
        let key = |k: &str| format!("service[{}].{k}", sv.id);
        match services::check(&s, pop.areas().len(), &years, omega) {
            Ok(()) => out.push(s),
            Err(ServiceError::Ages { lo, hi, omega, .. }) => l.key_problem(
                &key("ages"),
                format!("[{lo}, {hi}] goes past the population's oldest age {omega}"),
            ),
            Err(ServiceError::Shares {
                sum,
                area,
                year,
                age,
                ..
            }) => l.key_problem(
                &key("segment.share"),
                format!(
                    "the segments' shares sum to {sum} in area `{}`, year {year}, age {age}; they must sum to 1",
                    pop.areas()[area]
                ),
            ),
            Err(ServiceError::Value {
                key: k,
                source: services::ValueError::Cell { area, year, age },
                ..
            }) => l.key_problem(
                &key(&k),
                format!(
                    "the table has no value for area `{}`, year {year}, age {age}",
                    pop.areas()[area]
                ),
            ),
            Err(ServiceError::Value {
                key: k, source, ..
            }) => l.key_problem(&key(&k), source),
            Err(other) => l.problem(format!("{}: {other}", l.source.name())),
        }
    }
    out
}

/// A `[[service]]` section as a [`Service`]; its tables are read and range-checked.
pub(super) fn build_service(
    l: &mut Loader<'_>,
    sv: &ServiceSection,
    areas: &[String],
) -> Option<Service> {
    let key = |k: &str| format!("service[{}].{k}", sv.id);
    let mut ok = true;
    let mut value = |l: &mut Loader<'_>, k: &str, p: &Option<Param>| -> Value {
        match p {
            None => Value::Constant(1.0),
            Some(Param::Constant(v)) => Value::Constant(*v),
            Some(Param::Path { from, to }) => match linear(*from, *to) {
                Ok(p) => Value::Path(p),
                Err(m) => {
                    l.key_problem(&key(k), m);
                    ok = false;
                    Value::Constant(1.0)
                }
            },
            Some(Param::Table(rel)) => match param_table(l, rel, areas) {
                Some(t) => {
                    let v = Value::Table(t);
                    let (lo, hi) = v.range();
                    if lo < 0.0 || hi > 1.0 {
                        l.key_problem(
                            &key(k),
                            format!(
                                "{} has values from {lo} to {hi}; a share lies between 0 and 1",
                                l.source.resolve(rel).display()
                            ),
                        );
                        ok = false;
                    }
                    v
                }
                None => {
                    ok = false;
                    Value::Constant(1.0)
                }
            },
        }
    };
    let coverage = value(l, "coverage", &sv.coverage);
    let teaching = sv.teaching.as_ref().map(|t| Teaching {
        lesson_hours: t.lesson_hours.clone(),
        teaching_obligation: t.teaching_obligation,
    });
    let default_group = sv.teaching.as_ref().and_then(|t| t.max_group_size);
    let mut fixed_per = FixedPer::Area;
    let mut segment = |l: &mut Loader<'_>, seg: Option<&file::SegmentSection>| {
        let c = seg.and_then(|g| g.cost.as_ref()).map_or_else(
            || sv.cost.clone().unwrap_or_default(),
            |c| c.or(sv.cost.as_ref()),
        );
        if c.fixed_per.as_deref() == Some("service") {
            fixed_per = FixedPer::Service;
        }
        let g = c.growth.unwrap_or(0.0);
        Segment {
            id: seg.map_or_else(|| "all".to_string(), |g| g.id.clone()),
            share: match seg {
                Some(g) => value(l, &format!("segment[{}].share", g.id), &g.share),
                None => Value::Constant(1.0),
            },
            floor_area_per_unit: seg
                .and_then(|g| g.floor_area_per_unit)
                .or(sv.floor_area_per_unit),
            units_per_fte: seg.and_then(|g| g.units_per_fte).or(sv.units_per_fte),
            max_group_size: seg.and_then(|g| g.max_group_size).or(default_group),
            hours_factor: seg.and_then(|g| g.hours_factor).unwrap_or(1.0),
            support_hours_per_unit: seg.and_then(|g| g.support_hours_per_unit).unwrap_or(0.0),
            cost: Cost {
                per_unit: c.per_unit.unwrap_or(0.0),
                per_m2: c.per_m2.unwrap_or(0.0),
                per_fte: c.per_fte.unwrap_or(0.0),
                fixed: c.fixed.unwrap_or(0.0),
                overhead: c.overhead.unwrap_or(0.0),
                growth: [
                    c.growth_per_unit.unwrap_or(g),
                    c.growth_per_m2.unwrap_or(g),
                    c.growth_per_fte.unwrap_or(g),
                    c.growth_fixed.unwrap_or(g),
                ],
            },
        }
    };
    let segments: Vec<Segment> = if sv.segment.is_empty() {
        vec![segment(l, None)]
    } else {
        sv.segment.iter().map(|g| segment(l, Some(g))).collect()
    };
    ok.then(|| Service {
        id: sv.id.clone(),
        name: sv.name.clone().unwrap_or_else(|| sv.id.clone()),
        unit: sv.unit.clone().unwrap_or_else(|| "unit".into()),
        ages: sv.ages,
        sex: sv.sex.as_deref().and_then(parse_service_sex),
        coverage,
        segments,
        teaching,
        fixed_per,
    })
}

/// A parameter table by any of `area`, `year`, `sex` and `age`, with one value column.
pub(super) fn param_table(l: &mut Loader<'_>, rel: &str, areas: &[String]) -> Option<RateTable> {
    use crate::io::labels::Role;
    let t = l.table(rel, None)?;
    let shape = Shape {
        sex: crate::io::rates::has_role(&t, Role::Sex),
        age: crate::io::rates::has_role(&t, Role::Age),
        signed: false,
    };
    let rows = match rate_rows(&t, shape, "parameter") {
        Ok(r) => r,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    match RateTable::from_rows(&rows, 1.0, areas) {
        Ok(r) => Some(r),
        Err(e) => {
            l.problem(format!("{}: {e}", t.source));
            None
        }
    }
}
