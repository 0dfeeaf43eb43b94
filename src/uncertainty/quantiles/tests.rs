//! The selection against a sort: type-7 quantiles of small and awkward sets (ties,
//! zeros of both signs, heavy tails, values that are not finite), and rows summarised
//! together as each on its own.

use super::*;
use crate::uncertainty::{Rng, QUANTILES};

#[test]
fn summarise_takes_type_7_quantiles() {
    let mut v: Vec<f64> = (1..=11).rev().map(f64::from).collect();
    let (mean, q) = summarise(&mut v, &[0.05, 0.25, 0.5, 0.75, 0.95]);
    assert_eq!(mean, 6.0);
    assert_eq!(q, vec![1.5, 3.5, 6.0, 8.5, 10.5]);
    let (_, q) = summarise(&mut [4.0], &[0.1, 0.9]);
    assert_eq!(q, vec![4.0, 4.0]);
    // Negative values and zeros order as numbers; against a sorted copy.
    let mut r = Rng::new(&[3]);
    let mut v: Vec<f64> = (0..999).map(|_| r.normal() * 10.0).collect();
    v.extend([0.0, -0.0, 0.0]);
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    let levels = [0.01, 0.05, 0.5, 0.95, 0.99];
    let (_, q) = summarise(&mut v, &levels);
    for (p, got) in levels.iter().zip(q) {
        let h = (sorted.len() - 1) as f64 * p;
        let lo = h.floor() as usize;
        let want = sorted[lo] + (h - lo as f64) * (sorted[lo + 1] - sorted[lo]);
        assert_eq!(got, want, "level {p}");
    }
}

/// Type-7 quantiles of a sorted copy: the reference for the bucketed selection.
fn sorted_quantiles(v: &[f64], levels: &[f64]) -> Vec<f64> {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    levels
        .iter()
        .map(|p| {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let frac = h - lo as f64;
            if frac > 0.0 && lo + 1 < n {
                sorted[lo] + frac * (sorted[lo + 1] - sorted[lo])
            } else {
                sorted[lo]
            }
        })
        .collect()
}

#[test]
fn bucketed_selection_gives_the_order_statistics_of_a_sort() {
    let mut r = Rng::new(&[11]);
    let mut sel = Selector::default();
    // Up to ten kept buckets, one, and 99 levels (more kept buckets than the
    // AVX-512 comparison takes at once).
    let percentiles: Vec<f64> = (1..100).map(|p| f64::from(p) / 100.0).collect();
    let levels: [&[f64]; 4] = [&QUANTILES, &[0.001, 0.5, 0.999], &[0.3], &percentiles];
    // Sizes around the bucket counts and the small-set sort; spreads from even to
    // heavy-tailed (most values in one bucket), with ties, zeros of both signs,
    // negative values and a range of a few units in the last place.
    for n in [1usize, 2, 3, 7, 64, 129, 500, 1000, 1001, 5000] {
        let sets: Vec<Vec<f64>> = vec![
            (0..n).map(|_| r.normal()).collect(),
            (0..n).map(|_| (3.0 * r.normal()).exp()).collect(),
            (0..n).map(|_| (r.normal() * 2.0).round()).collect(),
            (0..n)
                .map(|i| if i % 3 == 0 { -0.0 } else { 0.0 })
                .collect(),
            (0..n)
                .map(|i| 1.0 + f64::EPSILON * (i % 4) as f64)
                .collect(),
            (0..n).map(|i| -1e300 + 1e290 * (i % 17) as f64).collect(),
            (0..n)
                .map(|i| if i == n / 2 { 1e12 } else { r.normal() })
                .collect(),
        ];
        for v in sets {
            for lv in levels {
                let mut q = vec![0.0; lv.len()];
                let mean = sel.summarise(&v, lv, &mut q);
                let want = sorted_quantiles(&v, lv);
                // Equal as numbers (a run of zeros may give either sign).
                assert_eq!(q, want, "n {n}, levels {lv:?}");
                let plain = v.iter().sum::<f64>() / n as f64;
                assert!(
                    (mean - plain).abs() <= 1e-12 * plain.abs().max(1.0),
                    "mean {mean} against {plain}"
                );
            }
        }
    }
    // A value that is not finite takes the key path: NaN orders above everything.
    let v = [1.0, f64::NAN, 3.0, f64::INFINITY, 2.0];
    let mut q = [0.0; 2];
    sel.summarise(&v, &[0.0001, 0.5], &mut q);
    assert!(q[0] > 1.0 && q[0] < 2.0 && q[1] == 3.0, "{q:?}");
}

#[test]
fn rows_are_summarised_as_each_on_its_own() {
    let mut r = Rng::new(&[12]);
    let nt = 300;
    // Three whole rows (one of few distinct values) and a part row, left out.
    let mut v: Vec<f64> = (0..nt).map(|_| r.normal()).collect();
    v.extend((0..nt).map(|_| (r.normal() * 2.0).round()));
    v.extend((0..nt).map(|_| (2.0 * r.normal()).exp()));
    v.extend([1.0, 2.0]);
    let sm = summarise_rows(&v, nt, &QUANTILES);
    assert_eq!(sm.mean.len(), 3);
    for (k, row) in v.chunks_exact(nt).enumerate() {
        let (mean, q) = summarise(&mut row.to_vec(), &QUANTILES);
        assert_eq!(sm.mean[k].to_bits(), mean.to_bits(), "row {k}");
        for (j, want) in q.iter().enumerate() {
            assert_eq!(sm.q[j][k].to_bits(), want.to_bits(), "row {k} level {j}");
        }
    }
    let none = summarise_rows(&v, 0, &QUANTILES);
    assert!(none.mean.is_empty() && none.q.iter().all(Vec::is_empty));
}

#[test]
fn small_sets_of_keys_sort_as_the_standard_sort() {
    let mut r = Rng::new(&[13]);
    // Every length up to past the rank sort's, keys with many ties, and keys over
    // the whole range (the extremes included).
    for len in 0..=40 {
        for spread in [3.0, 1e6] {
            for _ in 0..20 {
                let mut v: Vec<i64> = (0..len)
                    .map(|_| match r.uniform() {
                        u if u < 0.05 => i64::MIN,
                        u if u < 0.1 => i64::MAX,
                        _ => (r.normal() * spread).round() as i64,
                    })
                    .collect();
                let mut want = v.clone();
                want.sort_unstable();
                sort_keys(&mut v);
                assert_eq!(v, want, "length {len}");
            }
        }
    }
}
