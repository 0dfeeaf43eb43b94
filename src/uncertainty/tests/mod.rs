//! Monte Carlo against the deterministic projection: the shared cases and checks;
//! the tests in `zero_spread`, `spreads`, `alignment` and `units`.

mod alignment;
mod spreads;
mod units;
mod zero_spread;

use super::*;
use crate::network::Unit;
use crate::population::{Age, Record, Sex, Year};
use crate::projection::{project, Direction, Flow, FlowForm};
use crate::rates::{AgeIndex, RateRow, RateTable};
use crate::services::{evaluate, Cost, FixedPer, Segment, Teaching, Value};

const NX: u16 = 21;

fn rows(f: &dyn Fn(Option<&str>, Sex, u16) -> f64, areas: &[&str], birth: bool) -> Vec<RateRow> {
    let mut out = Vec::new();
    let area_keys: Vec<Option<&str>> = if areas.is_empty() {
        vec![None]
    } else {
        areas.iter().map(|a| Some(*a)).collect()
    };
    for a in area_keys {
        for s in Sex::ALL {
            let ages = (0..NX)
                .map(AgeIndex::Age)
                .chain(birth.then_some(AgeIndex::Birth));
            for x in ages {
                let xv = match x {
                    AgeIndex::Age(x) => x,
                    AgeIndex::Birth => NX,
                };
                out.push(RateRow {
                    area: a.map(str::to_string),
                    year: None,
                    sex: Some(s),
                    age: Some(x),
                    value: f(a, s, xv),
                });
            }
        }
    }
    out
}

/// Three areas, ages 0–20, fertility, mortality, counts in, rates out, a net flow
/// and (with `closed`) a closed internal system.
fn setup(closed: bool, size: f64) -> (Population, ProjectionInputs) {
    setup_areas(&["A", "B", "C"], closed, size)
}

/// [`setup`] with the areas `codes`.
fn setup_areas(codes: &[&str], closed: bool, size: f64) -> (Population, ProjectionInputs) {
    let mut recs = Vec::new();
    for (i, a) in codes.iter().enumerate() {
        for s in Sex::ALL {
            for x in 0..NX {
                recs.push(Record {
                    area: (*a).to_string(),
                    sex: s,
                    age: Age(x),
                    year: Year(2024),
                    value: size * (1.0 + 0.3 * i as f64) * (1.0 + 0.01 * f64::from(x)),
                });
            }
        }
    }
    let pop = Population::from_records(recs).unwrap();
    let areas = pop.areas().to_vec();
    let t = |r: &[RateRow]| RateTable::from_rows(r, 1.0, &areas).unwrap();
    let fert: Vec<RateRow> = (8..=15)
        .map(|x| RateRow {
            area: None,
            year: None,
            sex: None,
            age: Some(AgeIndex::Age(x)),
            value: 0.12,
        })
        .collect();
    let mut flows = vec![
        Flow {
            name: "in".into(),
            direction: Direction::In,
            form: FlowForm::Counts(t(&rows(
                &|_, _, x| 0.02 * size * f64::from(x % 5),
                &[],
                true,
            ))),
            multiplier: None,
            destinations: None,
        },
        Flow {
            name: "out".into(),
            direction: Direction::Out,
            form: FlowForm::OutRates(t(&rows(&|_, _, x| 0.01 + 0.002 * f64::from(x), &[], true))),
            multiplier: None,
            destinations: None,
        },
        // Signed counts: a residual estimate's net flow.
        Flow {
            name: "net".into(),
            direction: Direction::Net,
            form: FlowForm::Counts(t(&rows(
                &|_, _, x| 0.01 * size * (f64::from(x % 7) - 3.5),
                &[],
                true,
            ))),
            multiplier: None,
            destinations: None,
        },
    ];
    if closed {
        flows.push(Flow {
            name: "within".into(),
            direction: Direction::Out,
            form: FlowForm::OutRates(t(&rows(&|_, _, _| 0.05, &[], true))),
            multiplier: None,
            destinations: Some(t(&rows(
                &|a, _, _| match a {
                    Some("A") => 0.5,
                    Some("B") => 0.3,
                    _ => 0.2,
                },
                codes,
                true,
            ))),
        });
    }
    let inputs = ProjectionInputs {
        fertility: t(&fert),
        mortality: t(&rows(&|_, _, x| 0.001 + 0.002 * f64::from(x), &[], true)),
        boys_share: 0.512,
        tfr: None,
        improvement: Some(0.01),
        flows,
    };
    (pop, inputs)
}

fn school() -> Service {
    let seg = |id: &str, share: f64, max: f64| Segment {
        share: Value::Constant(share),
        max_group_size: Some(max),
        floor_area_per_unit: Some(10.0),
        cost: Cost {
            per_unit: 1000.0,
            per_m2: 100.0,
            per_fte: 60_000.0,
            overhead: 0.1,
            growth: [0.0, 0.0, 0.01, 0.0],
            fixed: 2000.0,
        },
        ..Segment::new(id)
    };
    Service {
        segments: vec![seg("general", 0.8, 20.0), seg("special", 0.2, 8.0)],
        teaching: Some(Teaching {
            lesson_hours: vec![20.0, 21.0, 22.0],
            teaching_obligation: 24.0,
        }),
        ..Service::new("school", (7, 9))
    }
}

fn spec(n: usize) -> Spec {
    Spec {
        trajectories: n,
        seed: 7,
        fertility: Ar1::NONE,
        mortality: Ar1::NONE,
        migration: Ar1::NONE,
        process_noise: false,
        quantiles: QUANTILES.to_vec(),
        age_groups: AgeGroups::default(),
        migration_rate: None,
    }
}

/// The default spreads with process noise, `n` trajectories.
fn noisy(n: usize) -> Spec {
    Spec {
        trajectories: n,
        process_noise: true,
        ..Spec::default()
    }
}

/// A service with no per-service fixed cost shares and no discounting.
fn input(service: &Service) -> ServiceInput<'_> {
    ServiceInput {
        service,
        fixed_shares: None,
        discount_rate: 0.0,
        units: Vec::new(),
    }
}

const ALL: Want = Want {
    population: true,
    components: true,
    migration: true,
    demand: true,
    costs: true,
};

/// Nine trajectories without spreads or noise from 2024 to 2034, aligned when
/// `align` is given.
fn without_spreads(
    pop: &Population,
    inp: &ProjectionInputs,
    services: &[ServiceInput<'_>],
    want: Want,
    align: Option<&AlignTo<'_>>,
) -> McResult {
    without_spreads_as(pop, inp, services, want, align, &spec(9))
}

/// [`without_spreads`] with the spec `sp`.
fn without_spreads_as(
    pop: &Population,
    inp: &ProjectionInputs,
    services: &[ServiceInput<'_>],
    want: Want,
    align: Option<&AlignTo<'_>>,
    sp: &Spec,
) -> McResult {
    run_aligned(
        pop,
        2024,
        2034,
        Some(inp),
        sp,
        services,
        want,
        align,
        &|_, _| {},
        &mut Workspace::default(),
    )
    .unwrap()
}

/// The p05 of every segment's demand is `want` by `(segment, area, year)` to 1e-12.
fn assert_p05_demand_is(s: &ServiceSummary, want: &ndarray::Array3<f64>) {
    let (ng, na, ny) = want.dim();
    for a in 0..na {
        for k in 0..ny {
            for g in 0..ng {
                let cell = (g * na + a) * ny + k;
                assert!(close(s.demand.q[0][cell], want[[g, a, k]], 1e-12));
            }
        }
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// A population by `(year, area, sex, age)` summed into the default age groups, by
/// `(year, area, sex, group)` with the sexes female, male and both.
fn grouped(pop: &ndarray::Array4<f64>) -> ndarray::Array4<f64> {
    let (ny, na, _, nx) = pop.dim();
    let groups = AgeGroups::default().resolve(nx);
    let mut out = ndarray::Array4::zeros((ny, na, 3, groups.len()));
    for ((k, a, s, g), v) in out.indexed_iter_mut() {
        let sexes = if s == 2 { 0..2 } else { s..s + 1 };
        *v = sexes
            .map(|s| groups[g].0.clone().map(|x| pop[[k, a, s, x]]).sum::<f64>())
            .sum();
    }
    out
}

/// Every statistic of the population summaries is `want` (by `(year, area, sex,
/// age)`) summed into the default age groups, to 1e-12.
fn assert_population_is(mc: &McResult, want: &ndarray::Array4<f64>, closed: bool) {
    let want = grouped(want);
    let (ny, na, _, ng) = want.dim();
    assert_eq!(mc.age_groups.len(), ng);
    assert_eq!(mc.age_groups[0], "0-6");
    assert_eq!(mc.age_groups[ng - 1], "all");
    let p = mc.population.as_ref().unwrap();
    assert_eq!(p.mean.len(), na * 3 * ng * ny);
    for a in 0..na {
        for s in 0..3 {
            for g in 0..ng {
                for k in 0..ny {
                    let cell = ((a * 3 + s) * ng + g) * ny + k;
                    let want = want[[k, a, s, g]];
                    for v in std::iter::once(p.mean[cell]).chain(p.q.iter().map(|q| q[cell])) {
                        assert!(
                            close(v, want, 1e-12),
                            "closed {closed} cell {a} {s} {g} {k}: {v} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

/// Every statistic of a run without spreads (`mc`, every summary asked for, the
/// service [`school`]) is the deterministic run's: the population, the components,
/// each flow's movers (and a closed system's arrivals), the demand, groups and costs.
fn assert_is_deterministic(
    mc: &McResult,
    det: &crate::projection::Projection,
    ev: &crate::services::ServiceResult,
    flows: usize,
    closed: bool,
) {
    {
        let (ny, na, _, _) = det.population.dim();
        assert_population_is(mc, &det.population, closed);
        let comps = mc.components.as_ref().unwrap();
        for (kp, &k) in mc.projected.iter().enumerate() {
            let c = det.components[k].as_ref().unwrap();
            for a in 0..na {
                for s in 0..2 {
                    let cell = (a * 2 + s) * mc.projected.len() + kp;
                    let want = [
                        c.births[[a, s]],
                        c.deaths[[a, s]],
                        c.in_migration[[a, s]],
                        c.out_migration[[a, s]],
                        c.unmet_out_migration[[a, s]],
                        c.net_migration()[[a, s]],
                    ];
                    for (j, w) in want.iter().enumerate() {
                        assert!(
                            close(comps[j].q[2][cell], *w, 1e-12),
                            "component {j}: {} vs {w}",
                            comps[j].q[2][cell]
                        );
                    }
                }
            }
        }
        // Movers of every flow, and the closed system's arrivals.
        let mig = mc.migration.as_ref().unwrap();
        assert_eq!(mig.len(), mc.migration_rows.len());
        assert_eq!(mc.migration_rows.len(), flows + usize::from(closed));
        for (kp, &k) in mc.projected.iter().enumerate() {
            let c = det.components[k].as_ref().unwrap();
            for a in 0..na {
                for s in 0..2 {
                    let cell = (a * 2 + s) * mc.projected.len() + kp;
                    for (row, &(f, arrivals)) in mc.migration_rows.iter().enumerate() {
                        let want = if arrivals {
                            c.flow_arrivals[[f, a, s]]
                        } else {
                            c.flow_movers[[f, a, s]]
                        };
                        for v in std::iter::once(mig[row].mean[cell])
                            .chain(mig[row].q.iter().map(|q| q[cell]))
                        {
                            assert!(
                                close(v, want, 1e-12),
                                "closed {closed} flow {f} arrivals {arrivals} area {a} sex {s} year {k}: {v} vs {want}"
                            );
                        }
                    }
                }
            }
        }
        let s = &mc.services[0];
        assert_p05_demand_is(s, &ev.demand);
        for a in 0..na {
            for k in 0..ny {
                let cell = a * ny + k;
                let groups = &s.resources.iter().find(|r| r.0 == "groups").unwrap().1;
                assert_eq!(groups.q[4][cell], ev.groups.as_ref().unwrap()[[a, k]]);
                for c in 0..6 {
                    assert!(
                        close(s.costs[c].mean[cell], ev.costs[c][[a, k]], 1e-12),
                        "cost {c}: {} vs {}",
                        s.costs[c].mean[cell],
                        ev.costs[c][[a, k]]
                    );
                }
            }
        }
    }
}

/// How a flow of the test matrix is given.
#[derive(Debug, Clone, Copy)]
enum Form {
    Counts,
    TotalProfile,
    OutRates,
    Net,
}

/// The three areas of [`setup`] with one flow of each of `forms`, a closed internal
/// system with `closed`, and with `forecast` a published forecast for 2026 (the base
/// population plus 1 %) that the projection takes as given and extends.
fn matrix_case(forms: &[Form], closed: bool, forecast: bool) -> (Population, ProjectionInputs) {
    let (pop, mut inp) = setup(closed, 50.0);
    let areas = pop.areas().to_vec();
    let t = |r: &[RateRow]| RateTable::from_rows(r, 1.0, &areas).unwrap();
    let keep: Vec<Flow> = inp
        .flows
        .drain(..)
        .filter(|f| f.destinations.is_some())
        .collect();
    for (i, form) in forms.iter().enumerate() {
        let name = format!("f{i}");
        let (direction, form) = match form {
            Form::Counts => (
                Direction::In,
                FlowForm::Counts(t(&rows(&|_, _, x| 1.0 + f64::from(x % 3), &[], true))),
            ),
            Form::TotalProfile => {
                let total: Vec<RateRow> = ["A", "B", "C"]
                    .iter()
                    .enumerate()
                    .map(|(i, a)| RateRow {
                        area: Some((*a).to_string()),
                        year: None,
                        sex: None,
                        age: None,
                        value: 30.0 + 10.0 * i as f64,
                    })
                    .collect();
                let w = f64::from(2 * (NX + 1));
                (
                    Direction::Out,
                    FlowForm::TotalProfile {
                        total: t(&total),
                        profile: t(&rows(&|_, _, _| 1.0 / w, &[], true)),
                    },
                )
            }
            Form::OutRates => (
                Direction::Out,
                FlowForm::OutRates(t(&rows(&|_, _, x| 0.02 + 0.001 * f64::from(x), &[], true))),
            ),
            Form::Net => (
                Direction::Net,
                FlowForm::Counts(t(&rows(
                    &|_, _, x| 0.5 * (f64::from(x % 7) - 3.5),
                    &[],
                    true,
                ))),
            ),
        };
        inp.flows.push(Flow {
            name,
            direction,
            form,
            multiplier: Some(crate::projection::YearPath::Linear {
                from: (2025, 1.0),
                to: (2030, 1.2),
            }),
            destinations: None,
        });
    }
    inp.flows.extend(keep);
    if !forecast {
        return (pop, inp);
    }
    let mut recs = Vec::new();
    for (a, code) in pop.areas().iter().enumerate() {
        for s in Sex::ALL {
            for x in 0..NX {
                let v = pop.values()[[0, a, s.index(), usize::from(x)]];
                for (y, f) in [(2024, 1.0), (2026, 1.01)] {
                    recs.push(Record {
                        area: code.clone(),
                        sex: s,
                        age: Age(x),
                        year: Year(y),
                        value: f * v,
                    });
                }
            }
        }
    }
    (Population::from_records(recs).unwrap(), inp)
}

/// The network of the unit tests: two schools sharing the middle area, the second
/// closed after 2029 with a spare target; every other service one unit for all.
fn test_units(n_services: usize) -> Vec<(Unit, Vec<f64>)> {
    let mut b = Unit::new("B", 0, 800.0);
    b.spare_target = 0.05;
    b.closes = Some(2029);
    let mut v = vec![
        (Unit::new("A", 0, 490.0), vec![1.0, 0.4, 0.0]),
        (b, vec![0.0, 0.6, 1.0]),
    ];
    for s in 1..n_services {
        v.push((Unit::new(&format!("S{s}"), s, 100.0), vec![1.0; 3]));
    }
    v
}

/// Services of every shape of demand: segments with fixed shares, shares by age,
/// women only, a service half another's, and coverage by sex and area.
fn demand_services(areas: &[String]) -> Vec<Service> {
    let table = |f: &dyn Fn(Sex, u16) -> f64| {
        Value::Table(
            RateTable::from_rows(&rows(&|_, s, x| f(s, x), &[], false), 1.0, areas).unwrap(),
        )
    };
    let by_area = |f: &dyn Fn(Option<&str>, Sex) -> f64| {
        let r = rows(&|a, s, _| f(a, s), &["A", "B", "C"], false);
        Value::Table(RateTable::from_rows(&r, 1.0, areas).unwrap())
    };
    let by_age = |id: &str, share: Value| Segment {
        share,
        ..Segment::new(id)
    };
    vec![
        school(),
        Service {
            segments: vec![
                by_age("young", table(&|_, x| 0.9 - 0.05 * f64::from(x))),
                by_age("old", table(&|_, x| 0.1 + 0.05 * f64::from(x))),
            ],
            coverage: Value::Constant(0.8),
            ..Service::new("by_age", (3, 12))
        },
        Service {
            sex: Some(Sex::Female),
            coverage: Value::Constant(0.3),
            ..Service::new("women", (15, 20))
        },
        // A constant coverage over ages overlapping the school's.
        Service {
            coverage: Value::Constant(0.6),
            ..Service::new("around", (5, 12))
        },
        // Half of `around`'s coverage over the same ages, in two segments.
        Service {
            segments: vec![
                by_age("x", Value::Constant(0.4)),
                by_age("y", Value::Constant(0.6)),
            ],
            coverage: Value::Constant(0.3),
            ..Service::new("half_around", (5, 12))
        },
        // Fixed shares with a coverage by age.
        Service {
            segments: vec![
                by_age("a", Value::Constant(0.25)),
                by_age("b", Value::Constant(0.75)),
            ],
            coverage: table(&|_, x| 0.5 + 0.02 * f64::from(x)),
            ..Service::new("split_by_age", (5, 14))
        },
        Service {
            coverage: by_area(&|a, s| {
                let by_sex = if s == Sex::Female { 0.5 } else { 0.7 };
                by_sex + if a == Some("B") { 0.1 } else { 0.0 }
            }),
            ..Service::new("by_sex", (0, 6))
        },
    ]
}

/// Areas A and B under parent 0, C alone under parent 1; controls in year slots 2 and
/// 5 at 1.1 and 0.9 times the deterministic sums, with one cell's control 0.
fn alignment_case(det: &crate::projection::Projection) -> (Vec<usize>, ndarray::Array4<f64>) {
    let parent_of = vec![0, 0, 1];
    let (ny, _, _, nx) = det.population.dim();
    let mut control = ndarray::Array4::zeros((ny, 2, 2, nx));
    for (k, f) in [(2, 1.1), (5, 0.9)] {
        for (a, p) in parent_of.iter().enumerate() {
            for s in 0..2 {
                for x in 0..nx {
                    control[[k, *p, s, x]] += f * det.population[[k, a, s, x]];
                }
            }
        }
    }
    control[[5, 1, 0, 3]] = 0.0;
    (parent_of, control)
}
