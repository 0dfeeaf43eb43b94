//! Zero spreads: every path of the Monte Carlo run against the deterministic run —
//! each flow form, closed systems, published forecasts, demand, and affine services
//! summarised from their demand.

use super::*;

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
