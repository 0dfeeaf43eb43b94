//! The tables of a deterministic run, built from its results: population,
//! components, migration, demand, resources, totals, costs and capacity. Their key
//! columns are patterns ([`ColumnData::Repeat`]) where they repeat in a fixed rhythm.
//! [`super::run`] puts them together, with the Monte Carlo's quantile twins, and
//! writes them.

use super::frame::{ColumnData, Frame};
use super::scenario::LoadedScenario;
use crate::population::Sex;
use crate::projection::Projection;
use crate::services::{discount_factor, ServiceResult, COST_COMPONENTS, RESOURCES};

/// A column of `n` rows of `v`.
pub(super) fn text(n: usize, v: &str) -> ColumnData {
    ColumnData::repeat(ColumnData::Text(vec![v.to_string()]), n.max(1), n)
}

fn sex_levels() -> Vec<String> {
    Sex::ALL.iter().map(|s| s.as_str().to_string()).collect()
}

/// The `population` table: scenario, area, sex, age, year, population.
pub fn population_table(scenario: &str, p: &Projection) -> Frame {
    use rayon::prelude::*;
    let (ny, na, _, nx) = p.population.dim();
    let n = ny * na * 2 * nx;
    // Rows by (area, sex, age, year): every key column is a pattern, and the values are
    // the projection's array read with the year innermost, one (area, sex) block of
    // ages by years at a time, transposed within the cache, blocks side by side.
    let mut value = vec![0.0; n];
    let pop = &p.population;
    value
        .par_chunks_mut((nx * ny).max(1))
        .enumerate()
        .for_each(|(b, block)| {
            let (a, s) = (b / 2, b % 2);
            for k in 0..ny {
                let row = pop.slice(ndarray::s![k, a, s, ..]);
                for (x, v) in row.iter().enumerate() {
                    block[x * ny + k] = *v;
                }
            }
        });
    let years = p.years.iter().map(|y| i64::from(*y)).collect();
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            (
                "area".into(),
                ColumnData::repeat(ColumnData::Text(p.areas.clone()), 2 * nx * ny, n),
            ),
            (
                "sex".into(),
                ColumnData::repeat(ColumnData::Text(sex_levels()), nx * ny, n),
            ),
            (
                "age".into(),
                ColumnData::repeat(ColumnData::Int((0..nx as i64).collect()), ny, n),
            ),
            (
                "year".into(),
                ColumnData::repeat(ColumnData::Int(years), 1, n),
            ),
            ("population".into(), ColumnData::Float(value)),
        ],
    }
}

/// The `components` table of the projected years.
pub fn components_table(scenario: &str, p: &Projection) -> Frame {
    let mut keys = (Vec::new(), Vec::new(), Vec::new());
    let mut cols: [Vec<f64>; 6] = Default::default();
    for a in 0..p.areas.len() {
        for s in Sex::ALL {
            for (k, c) in p.components.iter().enumerate() {
                let Some(c) = c else { continue };
                let i = [a, s.index()];
                keys.0.push(a as u32);
                keys.1.push(s.index() as u32);
                keys.2.push(i64::from(p.years[k]));
                let (inm, outm) = (c.in_migration[i], c.out_migration[i]);
                for (col, v) in cols.iter_mut().zip([
                    c.births[i],
                    c.deaths[i],
                    inm,
                    outm,
                    inm - outm + c.net_flows[i],
                    c.unmet_out_migration[i],
                ]) {
                    col.push(v);
                }
            }
        }
    }
    let n = keys.0.len();
    let mut columns = vec![
        ("scenario".into(), text(n, scenario)),
        (
            "area".into(),
            ColumnData::Coded {
                levels: p.areas.clone(),
                codes: keys.0,
            },
        ),
        (
            "sex".into(),
            ColumnData::Coded {
                levels: sex_levels(),
                codes: keys.1,
            },
        ),
        ("year".into(), ColumnData::Int(keys.2)),
    ];
    let names = [
        "births",
        "deaths",
        "in_migration",
        "out_migration",
        "net_migration",
        "unmet_out_migration",
    ];
    for (name, col) in names.iter().zip(cols) {
        columns.push((name.to_string(), ColumnData::Float(col)));
    }
    Frame { columns }
}

/// The `migration` table: movers of each flow by area, sex and year. A closed
/// internal system's arrivals appear as the flow's `in` rows.
pub fn migration_table(scenario: &str, p: &Projection) -> Frame {
    // Text columns coded: each flow's name and direction once.
    let mut flows: Vec<String> = Vec::new();
    let mut directions: Vec<String> = Vec::new();
    use super::frame::level_code as code_of;
    let flow_codes: Vec<(u32, u32, Option<u32>)> = p
        .flows
        .iter()
        .map(|info| {
            let f = code_of(&mut flows, &info.name);
            let d = code_of(&mut directions, info.direction.as_str());
            let arrivals = info.closed.then(|| code_of(&mut directions, "in"));
            (f, d, arrivals)
        })
        .collect();
    let (mut area, mut sex, mut year, mut flow, mut dir, mut count) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for a in 0..p.areas.len() {
        for s in Sex::ALL {
            for (k, c) in p.components.iter().enumerate() {
                let Some(c) = c else { continue };
                for (f, &(fc, dc, arrivals)) in flow_codes.iter().enumerate() {
                    let mut push = |direction: u32, v: f64| {
                        area.push(a as u32);
                        sex.push(s.index() as u32);
                        year.push(i64::from(p.years[k]));
                        flow.push(fc);
                        dir.push(direction);
                        count.push(v);
                    };
                    push(dc, c.flow_movers[[f, a, s.index()]]);
                    if let Some(ac) = arrivals {
                        push(ac, c.flow_arrivals[[f, a, s.index()]]);
                    }
                }
            }
        }
    }
    let n = area.len();
    let coded = |levels: Vec<String>, codes: Vec<u32>| ColumnData::Coded { levels, codes };
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            ("area".into(), coded(p.areas.clone(), area)),
            ("sex".into(), coded(sex_levels(), sex)),
            ("year".into(), ColumnData::Int(year)),
            ("flow".into(), coded(flows, flow)),
            ("direction".into(), coded(directions, dir)),
            ("count".into(), ColumnData::Float(count)),
        ],
    }
}

/// `scenario, service, area, year` of a table with `inner` rows for each service (in
/// the scenario's order), area and year, in that order: `n` rows, every column a
/// pattern.
fn grid_keys(
    l: &LoadedScenario,
    p: &Projection,
    n: usize,
    inner: usize,
) -> Vec<(String, ColumnData)> {
    let (na, ny) = (p.areas.len(), p.years.len());
    let services = l.scenario.services.iter().map(|s| s.id.clone()).collect();
    let years = p.years.iter().map(|y| i64::from(*y)).collect();
    vec![
        ("scenario".into(), text(n, &l.file.scenario.name)),
        (
            "service".into(),
            ColumnData::repeat(ColumnData::Text(services), na * ny * inner, n),
        ),
        (
            "area".into(),
            ColumnData::repeat(ColumnData::Text(p.areas.clone()), ny * inner, n),
        ),
        (
            "year".into(),
            ColumnData::repeat(ColumnData::Int(years), inner, n),
        ),
    ]
}

/// Keys of the service tables, in row order.
struct Keys {
    service: Vec<u32>,
    area: Vec<u32>,
    year: Vec<i64>,
}

impl Keys {
    fn new() -> Keys {
        Keys::with_capacity(0)
    }

    fn with_capacity(n: usize) -> Keys {
        Keys {
            service: Vec::with_capacity(n),
            area: Vec::with_capacity(n),
            year: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, service: usize, area: usize, year: i32) {
        self.service.push(service as u32);
        self.area.push(area as u32);
        self.year.push(i64::from(year));
    }

    /// `scenario, service, [extra], area, year` columns.
    fn columns(
        self,
        l: &LoadedScenario,
        p: &Projection,
        extra: Option<(&str, ColumnData)>,
    ) -> Vec<(String, ColumnData)> {
        let n = self.year.len();
        let mut cols = vec![
            ("scenario".into(), text(n, &l.file.scenario.name)),
            (
                "service".into(),
                ColumnData::Coded {
                    levels: l.scenario.services.iter().map(|s| s.id.clone()).collect(),
                    codes: self.service,
                },
            ),
        ];
        if let Some((name, c)) = extra {
            cols.push((name.into(), c));
        }
        cols.push((
            "area".into(),
            ColumnData::Coded {
                levels: p.areas.clone(),
                codes: self.area,
            },
        ));
        cols.push(("year".into(), ColumnData::Int(self.year)));
        cols
    }
}

/// The `capacity` table: scenario, unit, service, year, demand, capacity,
/// utilisation, shortage, floor_area_need_m2, floor_area_m2; a unit's rows in year
/// order, units in the scenario's order. Utilisation is empty where the unit has no
/// places, the floor areas where the service has no floor area or the unit none given.
pub fn capacity_table(
    l: &LoadedScenario,
    net: &crate::network::Network,
    p: &Projection,
    c: &[crate::network::UnitCapacity],
) -> Frame {
    let ny = p.years.len();
    let mut cols: [Vec<f64>; 6] = Default::default();
    for uc in c {
        for k in 0..ny {
            let row = [
                uc.demand[k],
                uc.capacity[k],
                uc.utilisation[k],
                uc.shortage[k],
                uc.floor_area_need_m2.as_ref().map_or(f64::NAN, |f| f[k]),
                uc.floor_area_m2.as_ref().map_or(f64::NAN, |f| f[k]),
            ];
            for (col, v) in cols.iter_mut().zip(row) {
                col.push(v);
            }
        }
    }
    let mut columns = capacity_keys(l, net, p, 1);
    for (name, col) in CAPACITY_VALUES.iter().zip(cols) {
        columns.push(((*name).into(), ColumnData::Float(col)));
    }
    Frame { columns }
}

/// The value columns of the `capacity` table, in order.
const CAPACITY_VALUES: [&str; 6] = [
    "demand",
    "capacity",
    "utilisation",
    "shortage",
    "floor_area_need_m2",
    "floor_area_m2",
];

/// The keys `scenario, unit, service, year` of the capacity tables: units in order,
/// each year's row repeated `k` times.
pub(super) fn capacity_keys(
    l: &LoadedScenario,
    net: &crate::network::Network,
    p: &Projection,
    k: usize,
) -> Vec<(String, ColumnData)> {
    let ny = p.years.len();
    let units = net.units();
    let n = units.len() * ny * k;
    let unit_codes = (0..n).map(|i| (i / (ny * k)) as u32).collect();
    let service_codes = (0..n).map(|i| units[i / (ny * k)].service as u32).collect();
    let years = (0..n).map(|i| i64::from(p.years[(i / k) % ny])).collect();
    vec![
        ("scenario".into(), text(n, &l.file.scenario.name)),
        (
            "unit".into(),
            ColumnData::Coded {
                levels: units.iter().map(|u| u.id.clone()).collect(),
                codes: unit_codes,
            },
        ),
        (
            "service".into(),
            ColumnData::Coded {
                levels: l.scenario.services.iter().map(|s| s.id.clone()).collect(),
                codes: service_codes,
            },
        ),
        ("year".into(), ColumnData::Int(years)),
    ]
}

/// The `demand` table: scenario, service, segment, area, year, demand.
pub fn demand_table(l: &LoadedScenario, p: &Projection, r: &[ServiceResult]) -> Frame {
    let mut keys = Keys::new();
    let (mut segment, mut value) = (Vec::new(), Vec::new());
    let mut levels: Vec<String> = Vec::new();
    for (i, (sv, res)) in l.scenario.services.iter().zip(r).enumerate() {
        for (g, seg) in sv.segments.iter().enumerate() {
            let code = levels.iter().position(|s| *s == seg.id).unwrap_or_else(|| {
                levels.push(seg.id.clone());
                levels.len() - 1
            });
            for a in 0..p.areas.len() {
                for (k, y) in p.years.iter().enumerate() {
                    keys.push(i, a, *y);
                    segment.push(code as u32);
                    value.push(res.demand[[g, a, k]]);
                }
            }
        }
    }
    let mut columns = keys.columns(
        l,
        p,
        Some((
            "segment",
            ColumnData::Coded {
                levels,
                codes: segment,
            },
        )),
    );
    columns.push(("demand".into(), ColumnData::Float(value)));
    Frame { columns }
}

/// The `resources` table: scenario, service, area, year, resource, value. A service
/// has the rows of the resources it defines.
pub fn resources_table(l: &LoadedScenario, p: &Projection, r: &[ServiceResult]) -> Frame {
    let mut keys = Keys::new();
    let (mut resource, mut value) = (Vec::new(), Vec::new());
    for (i, res) in r.iter().enumerate() {
        for a in 0..p.areas.len() {
            for (k, y) in p.years.iter().enumerate() {
                for (name, v) in res.resources() {
                    keys.push(i, a, *y);
                    resource.push(RESOURCES.iter().position(|n| *n == name).unwrap_or(0) as u32);
                    value.push(v[[a, k]]);
                }
            }
        }
    }
    let mut columns = keys.columns(l, p, None);
    columns.push((
        "resource".into(),
        ColumnData::Coded {
            levels: RESOURCES.iter().map(ToString::to_string).collect(),
            codes: resource,
        },
    ));
    columns.push(("value".into(), ColumnData::Float(value)));
    Frame { columns }
}

/// The `totals` table: scenario, service, year, demand, cost_eur: each service's
/// demand (all segments) and total cost summed over the areas, what the report draws
/// and `totals_quantiles` gives the spread of under uncertainty.
pub fn totals_table(l: &LoadedScenario, p: &Projection, r: &[ServiceResult]) -> Frame {
    let ny = p.years.len();
    let rows = r.len() * ny;
    let total = COST_COMPONENTS.len() - 1;
    let (mut demand, mut cost) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    for res in r {
        for k in 0..ny {
            demand.push(res.demand.slice(ndarray::s![.., .., k]).sum());
            cost.push(res.costs[total].column(k).sum());
        }
    }
    Frame {
        columns: vec![
            ("scenario".into(), text(rows, &l.file.scenario.name)),
            (
                "service".into(),
                ColumnData::Coded {
                    levels: l.scenario.services.iter().map(|s| s.id.clone()).collect(),
                    codes: (0..rows).map(|i| (i / ny) as u32).collect(),
                },
            ),
            (
                "year".into(),
                ColumnData::Int((0..rows).map(|i| i64::from(p.years[i % ny])).collect()),
            ),
            ("demand".into(), ColumnData::Float(demand)),
            ("cost_eur".into(), ColumnData::Float(cost)),
        ],
    }
}

/// The `costs` table: scenario, service, area, year, component, cost_eur, then
/// unit_cost_eur (cost per unit of demand; empty where demand is 0) and
/// discounted_cost_eur (discounted to the base year: summed over years, the present
/// value).
pub fn costs_table(
    l: &LoadedScenario,
    p: &Projection,
    r: &[ServiceResult],
    discount_rate: f64,
) -> Frame {
    let base = l.file.scenario.base_year;
    let nc = COST_COMPONENTS.len();
    let n = r.len() * p.areas.len() * p.years.len() * nc;
    let (mut cost, mut unit, mut discounted) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let factors: Vec<f64> = p
        .years
        .iter()
        .map(|y| discount_factor(discount_rate, *y, base))
        .collect();
    for res in r {
        // Each area's and year's demand over its segments.
        let demand = res.demand.sum_axis(ndarray::Axis(0));
        for a in 0..p.areas.len() {
            for k in 0..p.years.len() {
                let d = demand[[a, k]];
                let f = factors[k];
                for costs in &res.costs {
                    let v = costs[[a, k]];
                    cost.push(v);
                    unit.push(if d > 0.0 { v / d } else { f64::NAN });
                    discounted.push(v * f);
                }
            }
        }
    }
    // Every service, area, year and component: the keys are patterns.
    let mut columns = grid_keys(l, p, n, nc);
    columns.push((
        "component".into(),
        ColumnData::repeat(
            ColumnData::Text(COST_COMPONENTS.iter().map(ToString::to_string).collect()),
            1,
            n,
        ),
    ));
    columns.push(("cost_eur".into(), ColumnData::Float(cost)));
    columns.push(("unit_cost_eur".into(), ColumnData::Float(unit)));
    columns.push(("discounted_cost_eur".into(), ColumnData::Float(discounted)));
    Frame { columns }
}
