//! Units of the service network: their demand, capacity and shortage against the
//! deterministic capacity, and the demand-only pass against the full one.

use super::*;

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
            // Each summary names its unit.
            assert_eq!(sm.id, net.units()[u].id);
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

/// A unit's utilisation and shortage, whose quantiles come from the demand's order
/// statistics, are to the bit those of their own values summarised: demand spread
/// across the shortage threshold, constant, all below it, in a year the unit is
/// closed, and with a value that is not finite.
#[test]
fn unit_quantiles_from_the_demands_order_statistics_are_their_own() {
    let mut unit = Unit::new("U", 0, 400.0);
    unit.spare_target = 0.1;
    unit.closes = Some(2026);
    let years = [2024, 2025, 2026, 2027];
    let nt = 1001;
    let mut r = Rng::new(&[5]);
    let mut d = Vec::new();
    for k in 0..years.len() {
        for t in 0..nt {
            d.push(match k {
                // Across the threshold of 360, with ties.
                0 => (360.0 + 40.0 * r.normal()).round(),
                // Constant.
                1 => 355.5,
                // Spread, all below the threshold but for a value that is not finite.
                2 if t == 17 => f64::INFINITY,
                2 => 100.0 + r.normal(),
                // Closed: no places.
                _ => 50.0 + r.normal(),
            });
        }
    }
    let levels = [0.05, 0.25, 0.5, 0.75, 0.95, 0.999];
    let got = unit_summary(&unit, false, d.clone(), Vec::new(), &years, nt, &levels);
    let own = |g: &dyn Fn(f64, i32) -> f64| -> Summary {
        let v: Vec<f64> = d
            .chunks_exact(nt)
            .zip(&years)
            .flat_map(|(row, y)| row.iter().map(move |x| g(*x, *y)))
            .collect();
        summarise_rows(&v, nt, &levels)
    };
    let bits = |s: &Summary| -> Vec<u64> {
        s.mean
            .iter()
            .chain(s.q.iter().flatten())
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(bits(&got.demand), bits(&own(&|x, _| x)));
    assert_eq!(
        bits(&got.utilisation),
        bits(&own(&|x, y| unit.utilisation(x, y)))
    );
    assert_eq!(bits(&got.shortage), bits(&own(&|x, y| unit.shortage(x, y))));
    // The cases are the ones meant: a shortage in some trajectories of the first
    // year, in none of the second, in the one not finite of the third, and in every
    // one of the last (no places), with no utilisation.
    assert!(got.p_shortage[0] > 0.2 && got.p_shortage[0] < 0.8);
    assert_eq!(&got.p_shortage[1..], &[0.0, 1.0 / nt as f64, 1.0]);
    assert!(got.utilisation.q[2][3].is_nan());
    assert!(got.shortage.q[0][0] == 0.0 && got.shortage.q[4][0] > 0.0);
}
