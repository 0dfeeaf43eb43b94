//! The year kernel against itself: its specialised ages pass against the general
//! step, for every shape of flows the specialised pass takes.

use super::*;
use crate::projection::{YearFlow, YearRates};
use crate::uncertainty::Rng;
use ndarray::{Array2, Array3};
use std::sync::Arc;

/// Three areas, eight ages: two flows of counts (one in, one net, some of it
/// negative enough to empty cells) and two of out-rates, with levers.
fn case() -> (Vec<[f64; 1]>, YearRates) {
    let (areas, n) = (3, 8);
    let mut rng = Rng::new(&[7]);
    let mut next = move || rng.uniform();
    let shape = (areas, 2, n + 1);
    let mut arr =
        |scale: f64, shift: f64| Arc::new(Array3::from_shape_fn(shape, |_| scale * next() + shift));
    let rates = YearRates {
        q: arr(0.2, 0.0),
        q_factor: 0.97,
        fertility: Arc::new(Array2::from_shape_fn((areas, n), |(_, x)| {
            if (2..6).contains(&x) {
                0.05 + 0.01 * x as f64
            } else {
                0.0
            }
        })),
        fertility_factor: vec![1.0, 1.1, 0.9],
        boys_share: 0.51,
        flows: vec![
            YearFlow {
                direction: Direction::In,
                values: FlowValues::Counts(arr(4.0, 0.0)),
                multiplier: 1.2,
                destinations: None,
            },
            YearFlow {
                direction: Direction::Out,
                values: FlowValues::OutRates(arr(0.1, 0.0)),
                multiplier: 0.9,
                destinations: None,
            },
            YearFlow {
                direction: Direction::Net,
                values: FlowValues::Counts(arr(40.0, -30.0)),
                multiplier: 1.1,
                destinations: None,
            },
            YearFlow {
                direction: Direction::Out,
                values: FlowValues::OutRates(arr(0.05, 0.0)),
                multiplier: 1.0,
                destinations: None,
            },
        ],
    };
    let cur = (0..areas * 2 * n).map(|_| [100.0 * next()]).collect();
    (cur, rates)
}

/// The specialised ages pass and the general step (expected counts) give the same
/// year, components and movers, for every shape the specialised pass takes.
#[test]
fn the_specialised_pass_is_the_general_step() {
    let (cur, full) = case();
    let n = cur.len() / 6;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0);
    for keep in [&[0, 1][..], &[1, 3], &[0, 2], &[0, 1, 2, 3], &[2], &[1]] {
        let mut rates = full.clone();
        rates.flows = keep.iter().map(|f| full.flows[*f].clone()).collect();
        let nf = rates.flows.len();
        let slots = [None, Some(rates)];
        let kx = YearKernel::new(&slots, n, nf, true, true);
        let r = slots[1].as_ref().unwrap();
        assert!(kx.plans[1].as_ref().unwrap().fast());
        let mut ly = LaneYear::<1>::ones(nf);
        for (m, f) in ly.mm.iter_mut().zip(&r.flows) {
            *m = [f.multiplier];
        }
        let run = |general: bool| {
            let mut c = cur.clone();
            let mut next = vec![[0.0]; cur.len()];
            let mut comp = vec![[[0.0]; COMPONENTS]; 6];
            let mut mv = vec![[0.0]; 6 * nf * 2];
            let mut scratch = GeneralScratch::default();
            if general {
                step_general(
                    &kx,
                    1,
                    r,
                    &ly,
                    &(0..3),
                    &c,
                    &mut next,
                    &mut scratch,
                    &mut comp,
                    &mut mv,
                    &mut Expected,
                );
            } else {
                let in_place = step(
                    &kx,
                    1,
                    r,
                    &ly,
                    &(0..3),
                    &mut c,
                    &mut next,
                    &mut scratch,
                    &mut comp,
                    &mut mv,
                );
                assert!(!in_place);
            }
            (next, comp, mv)
        };
        let (fast, general) = (run(false), run(true));
        for (a, b) in fast.0.iter().zip(&general.0) {
            assert!(
                close(a[0], b[0]),
                "{keep:?} population: {} vs {}",
                a[0],
                b[0]
            );
        }
        if keep.contains(&2) {
            // The net flow empties some cells: the guard is held too.
            assert!(
                fast.0.iter().any(|v| v[0] == 0.0),
                "{keep:?}: no cell emptied"
            );
            assert!(
                fast.1.iter().any(|c| c[4][0] > 0.0),
                "{keep:?}: nothing unmet"
            );
        }
        for (a, b) in fast.1.iter().flatten().zip(general.1.iter().flatten()) {
            assert!(
                close(a[0], b[0]),
                "{keep:?} components: {} vs {}",
                a[0],
                b[0]
            );
        }
        for i in 0..6 {
            for f in 0..nf {
                let (a, b) = (
                    fast.2[mv_at(nf, i, f, false)],
                    general.2[mv_at(nf, i, f, false)],
                );
                assert!(
                    close(a[0], b[0]),
                    "{keep:?} movers of flow {f}: {} vs {}",
                    a[0],
                    b[0]
                );
            }
        }
        // With one out-rate flow (and no count going out), its movers are the
        // out-migration component to the bit.
        let out_rates: Vec<usize> = (0..nf)
            .filter(|f| matches!(r.flows[*f].values, FlowValues::OutRates(_)))
            .collect();
        if let [f] = out_rates[..] {
            for i in 0..6 {
                let (movers, out) = (fast.2[mv_at(nf, i, f, false)][0], fast.1[i][3][0]);
                assert!(out > 0.0, "{keep:?}: nobody leaves");
                assert_eq!(
                    movers.to_bits(),
                    out.to_bits(),
                    "{keep:?}: {movers} vs {out}"
                );
            }
        }
    }
}
