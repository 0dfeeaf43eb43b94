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
