//! Monte Carlo against the deterministic projection.

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

/// Trajectories without spreads are the deterministic run for every combination of
/// flow forms (counts, totals × profile, out-rates, net, and all four), a closed
/// internal system or none, alignment or none, and a published forecast year or
/// none: the one place where the engine's paths are held against each other.
#[test]
fn without_spreads_every_path_is_the_deterministic_run() {
    use Form::*;
    let form_sets: [&[Form]; 5] = [
        &[Counts],
        &[TotalProfile],
        &[OutRates],
        &[Net],
        &[Counts, TotalProfile, OutRates, Net],
    ];
    for forms in form_sets {
        for closed in [false, true] {
            for aligned in [false, true] {
                for forecast in [false, true] {
                    let case =
                        format!("{forms:?} closed {closed} aligned {aligned} forecast {forecast}");
                    let (pop, inp) = matrix_case(forms, closed, forecast);
                    let mut det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
                    let (parent_of, control) = alignment_case(&det);
                    let slots = [2, 5];
                    if aligned {
                        crate::projection::align(
                            &mut det.population,
                            &parent_of,
                            control.view(),
                            &slots,
                        );
                    }
                    let sv = school();
                    let ev = evaluate(&sv, det.population.view(), &det.years, 2024, 0.03).unwrap();
                    let services = [input(&sv)];
                    let to = AlignTo {
                        parent_of: &parent_of,
                        control: control.view(),
                        slots: &slots,
                    };
                    let mc = without_spreads(&pop, &inp, &services, ALL, aligned.then_some(&to));
                    assert_eq!(mc.projected.len(), if forecast { 9 } else { 10 }, "{case}");
                    // Named on stderr, so that a failing assertion shows its case.
                    eprintln!("{case}");
                    assert_is_deterministic(&mc, &det, &ev, inp.flows.len(), closed);
                }
            }
        }
    }
}

/// A net migration rate spread of 0 leaves every trajectory the deterministic run,
/// through the shock's own pass (every flow form, closed, aligned, a forecast year).
#[test]
fn a_zero_migration_rate_spread_is_the_deterministic_run() {
    use Form::*;
    let (pop, inp) = matrix_case(&[Counts, TotalProfile, OutRates, Net], true, true);
    let mut det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
    let (parent_of, control) = alignment_case(&det);
    let slots = [2, 5];
    crate::projection::align(&mut det.population, &parent_of, control.view(), &slots);
    let sv = school();
    let ev = evaluate(&sv, det.population.view(), &det.years, 2024, 0.03).unwrap();
    let services = [input(&sv)];
    let to = AlignTo {
        parent_of: &parent_of,
        control: control.view(),
        slots: &slots,
    };
    let sp = Spec {
        migration_rate: Some(MigrationRate {
            sd: ndarray::Array3::zeros((pop.areas().len(), 2, pop.n_ages())),
            ar: 1.0,
        }),
        ..spec(9)
    };
    let mc = without_spreads_as(&pop, &inp, &services, ALL, Some(&to), &sp);
    assert_is_deterministic(&mc, &det, &ev, inp.flows.len(), true);
    // A table of the wrong shape is refused.
    let bad = Spec {
        migration_rate: Some(MigrationRate {
            sd: ndarray::Array3::zeros((1, 2, 3)),
            ar: 1.0,
        }),
        ..spec(9)
    };
    let e = run_aligned(
        &pop,
        2024,
        2034,
        Some(&inp),
        &bad,
        &[],
        ALL,
        None,
        &|_, _| {},
        &mut Workspace::default(),
    );
    assert!(matches!(e, Err(McError::Spec(_))));
}

/// With a net migration rate spread, the population's intervals widen while the
/// median stays near the deterministic run, and a trajectory's net migration carries
/// what the spread adds: the population's change is its components' sum.
#[test]
fn a_migration_rate_spread_widens_the_intervals_and_counts_as_net_migration() {
    use Form::*;
    let (pop, inp) = matrix_case(&[Counts, OutRates], false, false);
    let det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
    let sp = Spec {
        migration_rate: Some(MigrationRate {
            sd: ndarray::Array3::from_elem((pop.areas().len(), 2, pop.n_ages()), 0.01),
            ar: 0.5,
        }),
        age_groups: AgeGroups::SingleYears,
        ..spec(1)
    };
    let want = Want {
        population: true,
        components: true,
        migration: false,
        demand: false,
        costs: false,
    };
    let go = |sp: &Spec| {
        run_aligned(
            &pop,
            2024,
            2034,
            Some(&inp),
            sp,
            &[],
            want,
            None,
            &|_, _| {},
            &mut Workspace::default(),
        )
        .unwrap()
    };
    // One trajectory: its quantiles are its values.
    let mc = go(&sp);
    let p = mc.population.as_ref().unwrap();
    let c = mc.components.as_ref().unwrap();
    let ny = mc.years.len();
    let ng = mc.age_groups.len();
    let nyp = mc.projected.len();
    let mut moved = 0.0;
    for a in 0..pop.areas().len() {
        for s in 0..2 {
            // The "all" group of (area, sex), each year.
            let total = |k: usize| p.q[2][((a * 3 + s) * ng + ng - 1) * ny + k];
            for (kp, k) in mc.projected.iter().enumerate() {
                let comp = |j: usize| c[j].q[2][(a * 2 + s) * nyp + kp];
                let change = comp(0) - comp(1) + comp(5);
                let want = total(*k) - total(*k - 1);
                assert!(
                    (change - want).abs() < 1e-6 * total(*k).max(1.0),
                    "{change} against {want}"
                );
                let expected = det.components[*k].as_ref().unwrap().net_migration()[[a, s]];
                moved += (comp(5) - expected).abs();
            }
        }
    }
    assert!(moved > 1.0, "the spread moved {moved} persons");
    // Many trajectories: the 90 % interval of every area's population in the last
    // year is wider than 2 % of it.
    let mc = go(&Spec {
        trajectories: 200,
        age_groups: AgeGroups::default(),
        ..sp
    });
    let p = mc.population.as_ref().unwrap();
    let ng = mc.age_groups.len();
    for a in 0..pop.areas().len() {
        let cell = ((a * 3 + 2) * ng + ng - 1) * ny + ny - 1;
        let total: f64 = det.population.slice(ndarray::s![ny - 1, a, .., ..]).sum();
        assert!(p.q[4][cell] - p.q[0][cell] > 0.02 * total, "area {a}");
        assert!((p.q[2][cell] - total).abs() < 0.02 * total, "area {a}");
    }
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

/// Demand asked for alone (`Want::DEMAND`, summarised from the services' full pass)
/// equals the deterministic demand for every shape of service.
#[test]
fn without_spreads_demand_alone_is_the_deterministic_demand() {
    let (pop, _) = setup(false, 50.0);
    let svcs = demand_services(pop.areas());
    let inputs: Vec<ServiceInput<'_>> = svcs.iter().map(input).collect();
    // Areas run one by one, and as one group (a closed internal system).
    for closed in [false, true] {
        let (pop, inp) = setup(closed, 50.0);
        let det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
        let mc = without_spreads(&pop, &inp, &inputs, Want::DEMAND, None);
        let (ny, na, _, _) = det.population.dim();
        for (sv, s) in svcs.iter().zip(&mc.services) {
            let ev = evaluate(sv, det.population.view(), &det.years, 2024, 0.0).unwrap();
            let ng = sv.segments.len();
            for k in 0..ny {
                let mut total = 0.0;
                for a in 0..na {
                    for g in 0..ng {
                        let (cell, want) = ((g * na + a) * ny + k, ev.demand[[g, a, k]]);
                        total += want;
                        for v in std::iter::once(s.demand.mean[cell])
                            .chain(s.demand.q.iter().map(|q| q[cell]))
                        {
                            assert!(
                                close(v, want, 1e-12),
                                "closed {closed}: {} segment {g} area {a} year {k}: {v} vs {want}",
                                sv.id
                            );
                        }
                    }
                }
                let t = &s.total_demand;
                for v in std::iter::once(t.mean[k]).chain(t.q.iter().map(|q| q[k])) {
                    assert!(
                        close(v, total, 1e-12),
                        "closed {closed}: {} year {k}: total {v} vs {total}",
                        sv.id
                    );
                }
            }
        }
    }
}

#[test]
fn quantiles_are_monotone_and_spread_with_uncertainty() {
    let (pop, inp) = setup(true, 50.0);
    let sp = noisy(101);
    let sv = school();
    let units = test_units(1);
    let services = [ServiceInput {
        units: units
            .iter()
            .map(|(unit, shares)| UnitInput {
                unit,
                shares,
                by_year: &[],
            })
            .collect(),
        ..input(&sv)
    }];
    let mc = run(
        &pop,
        2024,
        2040,
        Some(&inp),
        &sp,
        &services,
        ALL,
        &|_, _| {},
    )
    .unwrap();
    let check = |s: &Summary| {
        for c in 0..s.mean.len() {
            for w in s.q.windows(2) {
                assert!(w[0][c] <= w[1][c], "{} > {}", w[0][c], w[1][c]);
            }
        }
    };
    let p = mc.population.as_ref().unwrap();
    check(p);
    mc.components.as_ref().unwrap().iter().for_each(check);
    check(&mc.services[0].demand);
    mc.services[0].costs.iter().for_each(check);
    // Units: monotone quantiles, and the probability of a shortage agrees with the
    // shortage's quantiles (with 101 trajectories p05 and p95 are the 6th and the
    // 96th value).
    let mut uncertain = 0;
    for u in &mc.services[0].units {
        check(&u.demand);
        check(&u.shortage);
        check(u.floor_area_need_m2.as_ref().unwrap());
        for (k, p) in u.p_shortage.iter().enumerate() {
            assert!((0.0..=1.0).contains(p));
            if u.shortage.q[0][k] > 0.0 {
                assert!(*p >= 96.0 / 101.0, "{p}");
            }
            if u.shortage.q[4][k] == 0.0 {
                assert!(*p <= 5.0 / 101.0, "{p}");
            }
            if *p > 0.0 && *p < 1.0 {
                uncertain += 1;
            }
        }
    }
    assert!(uncertain > 0, "no year has an uncertain shortage");
    // The last year's spread is wide: p95 above p05 in most cells that hold people
    // (the groups 65–74 and 75+ are empty with ages 0–20).
    let ny = mc.years.len();
    let last: Vec<usize> = (0..p.mean.len())
        .filter(|c| c % ny == ny - 1 && p.mean[*c] > 0.0)
        .collect();
    let wide = last.iter().filter(|c| p.q[4][**c] > p.q[0][**c]).count();
    assert!(last.len() >= p.mean.len() / ny * 3 / 4, "{}", last.len());
    assert!(wide > last.len() * 9 / 10, "{wide} of {}", last.len());
    assert!(p.mean.iter().all(|v| *v >= 0.0));
}

#[test]
fn with_process_noise_only_the_mean_converges_to_the_deterministic_run() {
    // Large cells (hundreds of persons) so that truncating a draw at the cell's
    // population never binds; 2000 trajectories.
    let (pop, inp) = setup(false, 400.0);
    let det = project(&pop, 2024, 2030, Some(&inp)).unwrap();
    let n = 2000;
    let sp = Spec {
        process_noise: true,
        age_groups: AgeGroups::SingleYears,
        ..spec(n)
    };
    let want = Want {
        population: true,
        components: false,
        migration: true,
        demand: false,
        costs: false,
    };
    let mc = run(&pop, 2024, 2030, Some(&inp), &sp, &[], want, &|_, _| {}).unwrap();
    // The first year's movers of each flow are drawn around the projection's.
    let (mig, c0) = (
        mc.migration.as_ref().unwrap(),
        det.components[1].as_ref().unwrap(),
    );
    let nyp = mc.projected.len();
    for (row, &(f, arrivals)) in mc.migration_rows.iter().enumerate() {
        for a in 0..det.population.dim().1 {
            for s in 0..2 {
                let cell = (a * 2 + s) * nyp;
                let d = if arrivals {
                    c0.flow_arrivals[[f, a, s]]
                } else {
                    c0.flow_movers[[f, a, s]]
                };
                let m = &mig[row];
                let sd = (m.q[3][cell] - m.q[1][cell]) / 1.349;
                let tol = 5.0 * sd / (n as f64).sqrt() + 1.0 / (n as f64).sqrt();
                assert!(
                    (m.mean[cell] - d).abs() <= tol,
                    "flow {f} arrivals {arrivals} area {a} sex {s}: mean {} vs {d} (sd {sd})",
                    m.mean[cell]
                );
            }
        }
    }
    let p = mc.population.as_ref().unwrap();
    let (ny, na, _, nx) = det.population.dim();
    let mut worst: f64 = 0.0;
    for a in 0..na {
        for s in 0..2 {
            for x in 0..nx {
                let k = ny - 1;
                // Single years, then all ages: nx + 1 groups.
                let cell = ((a * 3 + s) * (nx + 1) + x) * ny + k;
                let d = det.population[[k, a, s, x]];
                // The standard deviation from the interquartile range (normal: IQR =
                // 1.349 σ); the mean of n draws is within 5 standard errors, plus one
                // person for the rounding of the quartiles of integer counts.
                let sd = (p.q[3][cell] - p.q[1][cell]) / 1.349;
                let tol = 5.0 * sd / (n as f64).sqrt() + 1.0 / (n as f64).sqrt();
                let z = (p.mean[cell] - d).abs() / tol;
                worst = worst.max(z);
                assert!(
                    (p.mean[cell] - d).abs() <= tol,
                    "cell {a} {s} {x}: mean {} vs {d} (sd {sd})",
                    p.mean[cell]
                );
            }
        }
    }
    assert!(worst > 0.0);
}

/// `f` run on a pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn the_same_seed_gives_the_same_numbers_whatever_the_threads() {
    let (pop, inp) = setup(true, 20.0);
    let sp = noisy(37);
    let sv = school();
    let services = [input(&sv)];
    let go = |threads: usize, seed: u64| {
        let sp = Spec { seed, ..sp.clone() };
        on_threads(threads, || {
            run(
                &pop,
                2024,
                2034,
                Some(&inp),
                &sp,
                &services,
                ALL,
                &|_, _| {},
            )
            .unwrap()
        })
    };
    let one = go(1, 5);
    assert_eq!(one, go(2, 5));
    assert_eq!(one, go(3, 5));
    assert_ne!(one.population, go(2, 6).population);
}

/// Areas without internal migration run as groups side by side, a batch at a time as
/// many as there are threads; more groups than running sums of the totals (eight),
/// and units whose areas lie in one group and in several: the same numbers with 1, 2,
/// 3 and 9 threads (9: more threads than slots, so a slot's blocks run in parallel).
#[test]
fn separate_areas_give_the_same_numbers_whatever_the_threads() {
    let codes: Vec<String> = (0..11).map(|a| format!("K{a:02}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let (pop, inp) = setup_areas(&codes, false, 20.0);
    let sp = noisy(21);
    let sv = school();
    let one_area: Vec<f64> = (0..11).map(|a| if a == 0 { 1.0 } else { 0.0 }).collect();
    let spread: Vec<f64> = (0..11).map(|a| [0.0, 1.0, 0.5][a % 3]).collect();
    let (ua, ub) = (Unit::new("A", 0, 300.0), Unit::new("B", 0, 900.0));
    let services = [ServiceInput {
        units: vec![
            UnitInput {
                unit: &ua,
                shares: &one_area,
                by_year: &[],
            },
            UnitInput {
                unit: &ub,
                shares: &spread,
                by_year: &[],
            },
        ],
        ..input(&sv)
    }];
    let go = |threads: usize| {
        on_threads(threads, || {
            to_2030(&pop, &inp, &sp, &services, &mut Workspace::default())
        })
    };
    let one = go(1);
    assert_eq!(one.services[0].units.len(), 2);
    for threads in [2, 3, 9] {
        assert_eq!(one, go(threads), "{threads} threads");
    }
}

/// Every output of a run from 2024 to 2030 with the buffers of `ws`.
fn to_2030(
    pop: &Population,
    inp: &ProjectionInputs,
    sp: &Spec,
    services: &[ServiceInput<'_>],
    ws: &mut Workspace,
) -> McResult {
    run_aligned(
        pop,
        2024,
        2030,
        Some(inp),
        sp,
        services,
        ALL,
        None,
        &|_, _| {},
        ws,
    )
    .unwrap()
}

/// A workspace carried from run to run (coupled areas, separate areas, coupled again,
/// with other trajectory counts) gives each run the result it has on its own.
#[test]
fn a_workspace_from_earlier_runs_changes_no_result() {
    let codes: Vec<String> = (0..5).map(|a| format!("K{a}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let sv = school();
    let services = [input(&sv)];
    let mut ws = Workspace::default();
    for (closed, n) in [(true, 40), (false, 17), (true, 9)] {
        let (pop, inp) = setup_areas(&codes, closed, 30.0);
        let sp = noisy(n);
        let go = |ws: &mut Workspace| to_2030(&pop, &inp, &sp, &services, ws);
        assert_eq!(
            go(&mut ws),
            go(&mut Workspace::default()),
            "closed {closed}, {n} trajectories"
        );
    }
    assert!(format!("{ws:?}").starts_with("Workspace"));
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

#[test]
fn without_spreads_aligned_trajectories_are_the_aligned_deterministic_run() {
    for closed in [false, true] {
        let (pop, inp) = setup(closed, 50.0);
        let mut det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
        let (parent_of, control) = alignment_case(&det);
        let slots = [2, 5];
        let factors =
            crate::projection::align(&mut det.population, &parent_of, control.view(), &slots)
                .factors;
        let sv = school();
        let ev = evaluate(&sv, det.population.view(), &det.years, 2024, 0.03).unwrap();
        let services = [input(&sv)];
        let to = AlignTo {
            parent_of: &parent_of,
            control: control.view(),
            slots: &slots,
        };
        let mc = without_spreads(&pop, &inp, &services, ALL, Some(&to));
        let (_, _, _, nx) = det.population.dim();
        assert_population_is(&mc, &det.population, closed);
        let f = mc.alignment.as_ref().unwrap();
        assert_eq!(f.mean.len(), 2 * 2 * nx * slots.len());
        for pa in 0..2 {
            for s in 0..2 {
                for x in 0..nx {
                    for (j, k) in slots.iter().enumerate() {
                        let cell = ((pa * 2 + s) * nx + x) * slots.len() + j;
                        let want = factors[[*k, pa, s, x]];
                        assert!(
                            close(f.q[2][cell], want, 1e-12),
                            "{want} vs {}",
                            f.q[2][cell]
                        );
                    }
                }
            }
        }
        // The zero control (parent 1, female, age 3, the second slot): a factor of 0.
        let (parent, female) = (1, 0);
        assert_eq!(
            f.mean[((parent * 2 + female) * nx + 3) * slots.len() + 1],
            0.0
        );
        assert_p05_demand_is(&mc.services[0], &ev.demand);
        // Components are the projection's own, before alignment: the next year is
        // projected from the unaligned population.
        let plain = without_spreads(&pop, &inp, &services, ALL, None);
        assert_eq!(mc.components, plain.components);
        assert_eq!(mc.migration, plain.migration);
    }
}

/// Eight lanes align each as the deterministic run aligns one population (the same
/// year alignment with one lane): a lane's numbers do not depend on the others, with
/// the control shared out where the children are all 0 (by their totals that year, or
/// the base year's).
#[test]
fn lanes_align_as_the_deterministic_alignment_does() {
    let n = 2;
    // Two areas under one parent; year slots 0 (base) and 1 (aligned).
    let base = [[3.0, 1.0, 2.0, 2.0], [1.0, 1.0, 0.0, 2.0]];
    let mut control = ndarray::Array4::zeros((2, 1, 2, n));
    control[[1, 0, 0, 0]] = 12.0;
    control[[1, 0, 0, 1]] = 5.0;
    control[[1, 0, 1, 0]] = 0.0;
    control[[1, 0, 1, 1]] = 7.0;
    let parent_of = [0, 0];
    let slots = [1];
    let mut base_pop = ndarray::Array3::zeros((2, 2, n));
    for a in 0..2 {
        for s in 0..2 {
            for x in 0..n {
                base_pop[[a, s, x]] = base[a][s * n + x];
            }
        }
    }
    let parents = Parents::new(&parent_of, 1, base_pop.view());
    let mut cur = vec![[0.0; LANES]; 2 * 2 * n];
    for l in 0..LANES {
        for (i, c) in cur.iter_mut().enumerate() {
            // Age 1 of both areas is 0 in the even lanes: shared out by this
            // year's totals; lane 7 is all 0: by the base year's.
            let zero = (l + i) % 3 == 0 || l == 7 || (i % n == 1 && l % 2 == 0);
            c[l] = if zero { 0.0 } else { (1 + l + i) as f64 };
        }
    }
    let mut aligned = cur.clone();
    let mut factors = vec![[0.0; LANES]; 2 * n];
    align_year(
        &parents,
        control.index_axis(ndarray::Axis(0), 1),
        &cur,
        &mut aligned,
        &mut factors,
    );
    for l in 0..LANES {
        let mut pop = ndarray::Array4::zeros((2, 2, 2, n));
        for a in 0..2 {
            for s in 0..2 {
                for x in 0..n {
                    pop[[0, a, s, x]] = base[a][s * n + x];
                    pop[[1, a, s, x]] = cur[(a * 2 + s) * n + x][l];
                }
            }
        }
        let f = crate::projection::align(&mut pop, &parent_of, control.view(), &slots).factors;
        for a in 0..2 {
            for s in 0..2 {
                for x in 0..n {
                    let got = aligned[(a * 2 + s) * n + x][l];
                    let want = pop[[1, a, s, x]];
                    assert!(
                        close(got, want, 1e-14),
                        "lane {l} {a} {s} {x}: {got} vs {want}"
                    );
                }
            }
        }
        for s in 0..2 {
            for x in 0..n {
                let got = factors[s * n + x][l];
                let want = f[[1, 0, s, x]];
                assert!(
                    (got.is_nan() && want.is_nan()) || got == want,
                    "lane {l} factor {s} {x}: {got} vs {want}"
                );
            }
        }
    }
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

/// With every spread at 0, each unit's summaries are its deterministic capacity
/// comparison to 1e-12 (utilisation not a number where the unit is closed), and the
/// probability of a shortage is 1 where the deterministic run has one and 0
/// elsewhere; with costs asked for and with demand alone.
#[test]
fn without_spreads_units_are_the_deterministic_capacity() {
    let (pop, inp) = setup(false, 50.0);
    let det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
    let mut mixed = 0;
    for (want, svcs) in [
        (ALL, vec![school()]),
        (Want::DEMAND, demand_services(pop.areas())),
    ] {
        let units = test_units(svcs.len());
        let net = crate::network::Network::new(
            units.iter().map(|(u, _)| u.clone()).collect(),
            units.iter().map(|(_, s)| s.clone()).collect(),
            3,
        )
        .unwrap();
        let inputs: Vec<ServiceInput<'_>> = svcs
            .iter()
            .enumerate()
            .map(|(i, sv)| ServiceInput {
                units: net
                    .units_of(i)
                    .into_iter()
                    .map(|u| UnitInput {
                        unit: &net.units()[u],
                        shares: net.shares(u),
                        by_year: &[],
                    })
                    .collect(),
                ..input(sv)
            })
            .collect();
        let mc = without_spreads(&pop, &inp, &inputs, want, None);
        let ev: Vec<_> = svcs
            .iter()
            .map(|sv| evaluate(sv, det.population.view(), &det.years, 2024, 0.0).unwrap())
            .collect();
        let demand: Vec<_> = ev
            .iter()
            .map(|e| e.demand.sum_axis(ndarray::Axis(0)))
            .collect();
        let floor: Vec<_> = ev
            .iter()
            .map(|e| e.floor_area_m2.as_ref().map(ndarray::Array2::view))
            .collect();
        let views: Vec<_> = demand.iter().map(ndarray::Array2::view).collect();
        let cap = crate::network::capacity(&net, &views, &floor, &det.years);
        let summaries: Vec<&UnitSummary> = mc.services.iter().flat_map(|s| &s.units).collect();
        assert_eq!(summaries.len(), units.len());
        for (u, (sm, c)) in summaries.iter().zip(&cap).enumerate() {
            let same = |s: &Summary, want: &[f64], what: &str| {
                for (k, w) in want.iter().enumerate() {
                    for v in std::iter::once(s.mean[k]).chain(s.q.iter().map(|q| q[k])) {
                        assert!(
                            (v.is_nan() && w.is_nan()) || close(v, *w, 1e-12),
                            "unit {u} {what} year {k}: {v} vs {w}"
                        );
                    }
                }
            };
            same(&sm.demand, &c.demand, "demand");
            same(&sm.utilisation, &c.utilisation, "utilisation");
            same(&sm.shortage, &c.shortage, "shortage");
            match (&sm.floor_area_need_m2, &c.floor_area_need_m2) {
                (Some(s), Some(w)) => same(s, w, "floor area"),
                (None, None) => {}
                other => panic!("unit {u}: floor area {other:?}"),
            }
            let p: Vec<f64> = c
                .shortage
                .iter()
                .map(|s| if *s > 0.0 { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(sm.p_shortage, p, "unit {u}");
            if p.contains(&0.0) && p.contains(&1.0) {
                mixed += 1;
            }
        }
    }
    // Some units are short in some years and not in others.
    assert!(mixed >= 2, "{mixed}");
}

/// Demand asked for alone gives what the services' full pass gives: the same
/// summaries of demand, resources, costs and units (one pass serves both).
#[test]
fn demand_alone_is_the_full_pass() {
    let (pop, inp) = setup(false, 50.0);
    let sv = school();
    let units = test_units(1);
    let services = [ServiceInput {
        units: units
            .iter()
            .map(|(unit, shares)| UnitInput {
                unit,
                shares,
                by_year: &[],
            })
            .collect(),
        ..input(&sv)
    }];
    let sp = noisy(17);
    let go = |want: Want| {
        run_aligned(
            &pop,
            2024,
            2034,
            Some(&inp),
            &sp,
            &services,
            want,
            None,
            &|_, _| {},
            &mut Workspace::default(),
        )
        .unwrap()
    };
    let alone = go(Want::DEMAND);
    let full = go(Want {
        costs: true,
        ..Want::DEMAND
    });
    // Compared as text: a closed unit's utilisation is not a number, which `==` never
    // equals.
    let text = |m: &McResult| format!("{:?}", m.services);
    assert!(
        text(&alone) == text(&full),
        "demand alone differs from the full pass"
    );
    assert!(alone.services[0].units[0].floor_area_need_m2.is_some());
}

/// Destinations go with an out-flow given as rates: a flow of counts with them is
/// refused by name, in the deterministic run and under uncertainty alike.
#[test]
fn a_closed_system_of_counts_is_refused() {
    let (pop, mut inp) = setup(true, 50.0);
    let within = inp
        .flows
        .iter_mut()
        .find(|f| f.destinations.is_some())
        .unwrap();
    let FlowForm::OutRates(t) = &within.form else {
        panic!("the closed system is given as rates")
    };
    within.form = FlowForm::Counts(t.clone());
    let err = project(&pop, 2024, 2030, Some(&inp)).unwrap_err();
    assert!(
        err.to_string().contains("migration flow `within`") && err.to_string().contains("rates"),
        "{err}"
    );
    let mc = run(&pop, 2024, 2030, Some(&inp), &spec(8), &[], ALL, &|_, _| {});
    assert!(matches!(mc, Err(McError::Projection(_))));
}

/// A service of one segment without a teaching model has its resources and costs
/// summarised from its demand's summary (`Ctx::affine`); the same service with a
/// second, empty segment takes the per-trajectory path. With spreads and process
/// noise, both give the same resources, costs, totals, present value, costs by
/// trajectory and units' floor area need, to 1e-12: with a fixed cost per area and
/// one per service (carried in shares), areas one by one and coupled.
#[test]
fn an_affine_service_is_summarised_as_its_cells_would_be() {
    let care = |empty: bool, per: FixedPer| {
        let mut segments = vec![Segment {
            share: Value::Constant(1.0),
            floor_area_per_unit: Some(12.5),
            units_per_fte: Some(3.0),
            cost: Cost {
                per_unit: 800.0,
                per_m2: 150.0,
                per_fte: 52_000.0,
                overhead: 0.07,
                growth: [0.01, 0.02, 0.015, 0.005],
                fixed: 40_000.0,
            },
            ..Segment::new("all")
        }];
        if empty {
            segments.push(Segment {
                share: Value::Constant(0.0),
                ..Segment::new("none")
            });
        }
        Service {
            segments,
            coverage: Value::Constant(0.4),
            fixed_per: per,
            ..Service::new("care", (12, 20))
        }
    };
    let units = test_units(1);
    let shares =
        ndarray::Array2::from_shape_fn((3, 11), |(a, k)| (1.0 + a as f64) / 6.0 + 0.001 * k as f64);
    for closed in [false, true] {
        let (pop, inp) = setup(closed, 50.0);
        for per in [FixedPer::Area, FixedPer::Service] {
            let runs: Vec<McResult> = [false, true]
                .iter()
                .map(|empty| {
                    let sv = care(*empty, per);
                    let services = [ServiceInput {
                        fixed_shares: (per == FixedPer::Service).then_some(&shares),
                        discount_rate: 0.03,
                        units: units
                            .iter()
                            .map(|(unit, sh)| UnitInput {
                                unit,
                                shares: sh,
                                by_year: &[],
                            })
                            .collect(),
                        ..input(&sv)
                    }];
                    run(
                        &pop,
                        2024,
                        2034,
                        Some(&inp),
                        &noisy(101),
                        &services,
                        ALL,
                        &|_, _| {},
                    )
                    .unwrap()
                })
                .collect();
            let (a, b) = (&runs[0].services[0], &runs[1].services[0]);
            let same = |x: &Summary, y: &Summary, what: &str| {
                for (u, v) in x
                    .mean
                    .iter()
                    .chain(x.q.iter().flatten())
                    .zip(y.mean.iter().chain(y.q.iter().flatten()))
                {
                    assert!(
                        close(*u, *v, 1e-12),
                        "closed {closed} {per:?} {what}: {u} vs {v}"
                    );
                }
            };
            assert_eq!(a.resources.len(), 2);
            for ((na, x), (nb, y)) in a.resources.iter().zip(&b.resources) {
                assert_eq!(na, nb);
                same(x, y, na);
            }
            assert_eq!(a.costs.len(), 6);
            for (x, y) in a.costs.iter().zip(&b.costs) {
                same(x, y, "cost");
            }
            same(&a.total_cost, &b.total_cost, "total cost");
            same(&a.present_value, &b.present_value, "present value");
            same(&a.total_demand, &b.total_demand, "total demand");
            for (u, v) in a
                .total_cost_by_trajectory
                .iter()
                .zip(&b.total_cost_by_trajectory)
            {
                assert!(close(*u, *v, 1e-12), "{u} vs {v}");
            }
            for (x, y) in a.units.iter().zip(&b.units) {
                same(
                    x.floor_area_need_m2.as_ref().unwrap(),
                    y.floor_area_need_m2.as_ref().unwrap(),
                    "floor area need",
                );
            }
            // The intervals are not degenerate: the test compares spread values.
            let total = &a.costs[5];
            assert!((0..total.mean.len()).any(|c| total.q[4][c] > total.q[0][c] * 1.01));
        }
    }
}

#[test]
fn an_age_group_split_by_earlier_groups_is_summed_from_them() {
    let default = [0..7, 7..13, 13..16, 16..19, 19..65, 65..75, 75..101, 0..101];
    let parts = group_parts(&default);
    assert_eq!(parts[7], (0..7).collect::<Vec<_>>());
    assert!(parts[..7].iter().all(Vec::is_empty));
    // Single years and their total; a later group over two earlier ones.
    let singles: Vec<_> = (0..5).map(|a| a..a + 1).chain([0..5, 2..4]).collect();
    let parts = group_parts(&singles);
    assert_eq!(parts[5], vec![0, 1, 2, 3, 4]);
    assert_eq!(parts[6], vec![2, 3]);
    // Groups that overlap, leave a gap or are one earlier group are summed by age.
    for groups in [
        vec![0..7, 5..10, 0..10],
        vec![0..7, 8..10, 0..10],
        vec![0..7, 0..7],
        vec![0..7, 7..13, 0..12],
        // A split that needs a second choice at age 0 (`0..3`, not `0..5`).
        vec![0..5, 0..3, 3..10, 0..10],
    ] {
        let parts = group_parts(&groups);
        assert!(parts.iter().all(Vec::is_empty), "{groups:?}: {parts:?}");
    }
}
