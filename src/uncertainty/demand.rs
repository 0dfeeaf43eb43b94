//! Demand alone, per lane: the plans that sum each service's demand from a block's
//! state with as few passes over the ages as possible (services over the same ages
//! share their sums).

#![allow(clippy::needless_range_loop)]

use super::*;

/// Which sexes a demand sum takes in an (area, year).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sexes {
    /// Both, with the same weights: one sum over `P_female + P_male`.
    Alike,
    Female,
    Male,
    /// Both, with their own weights.
    Both,
    /// Both, with one weight at every age and row (a constant coverage): the weight
    /// times the population of the service's ages, summed from age segments shared
    /// by all such services ([`LevelPlan`]).
    Level,
}

/// Age segments shared by the services whose demand is a weight times the
/// population of their ages ([`Sexes::Level`]): the ages of every such service, cut
/// at every service's first and last age. Each segment's population (both sexes) is
/// summed once an area and year, and each service's sum is its segments', so that
/// services over the same or nested ages (day care, pre-primary and child health;
/// home care and round-the-clock care) sum each age once.
#[derive(Debug, Default)]
pub(super) struct LevelPlan {
    /// The segments, `start..end` of ages, ascending.
    pub(super) segments: Vec<(usize, usize)>,
    /// Per service: its segments `first..end`, when it can be `Level`.
    pub(super) of: Vec<Option<(usize, usize)>>,
}

impl LevelPlan {
    pub(super) fn new(
        services: &[ServiceInput<'_>],
        plans: &[Option<DemandPlan<'_>>],
    ) -> LevelPlan {
        let ranges: Vec<Option<(usize, usize)>> = services
            .iter()
            .zip(plans)
            .map(|(s, p)| {
                let p = p.as_ref()?;
                p.sexes.contains(&Sexes::Level).then(|| {
                    let lo = usize::from(s.service.ages.0);
                    (lo, lo + p.ages)
                })
            })
            .collect();
        let mut cuts: Vec<usize> = ranges
            .iter()
            .flatten()
            .flat_map(|(a, b)| [*a, *b])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let segments: Vec<(usize, usize)> = cuts
            .windows(2)
            .map(|w| (w[0], w[1]))
            .filter(|(a, b)| ranges.iter().flatten().any(|(lo, hi)| lo <= a && b <= hi))
            .collect();
        let of = ranges
            .iter()
            .map(|r| {
                r.map(|(lo, hi)| {
                    let first = segments.iter().position(|s| s.0 == lo).unwrap_or(0);
                    let end = segments
                        .iter()
                        .rposition(|s| s.1 == hi)
                        .map_or(first, |e| e + 1);
                    (first, end)
                })
            })
            .collect();
        LevelPlan { segments, of }
    }
}

/// For each service summed as [`Sexes::Level`] in every area and year: an earlier
/// such service over the same ages, with the same area rows, whose weight is a fixed
/// multiple `r` of its own in every area and year (home care and round-the-clock care
/// of the over-75s with constant coverages). The service's demand is then `r` times
/// that service's in every trajectory, so its quantiles are `r` times that service's
/// (`r ≥ 0` keeps them in order) and it is neither summed nor summarised again.
pub(super) fn aliases(
    services: &[ServiceInput<'_>],
    plans: &[Option<DemandPlan<'_>>],
) -> Vec<Option<(usize, f64)>> {
    // The weight of a Level plan in each (area row, year).
    let level = |p: &DemandPlan<'_>| -> Option<Vec<f64>> {
        p.sexes.iter().all(|s| *s == Sexes::Level).then(|| {
            p.w.chunks_exact(2 * p.rows * p.ages)
                .map(|c| c[0])
                .collect()
        })
    };
    let levels: Vec<Option<Vec<f64>>> = plans.iter().map(|p| p.as_ref().and_then(level)).collect();
    let mut out: Vec<Option<(usize, f64)>> = vec![None; services.len()];
    for j in 0..services.len() {
        let (Some(wj), Some(pj)) = (&levels[j], &plans[j]) else {
            continue;
        };
        out[j] = (0..j).filter(|i| out[*i].is_none()).find_map(|i| {
            let (wi, pi) = (levels[i].as_ref()?, plans[i].as_ref()?);
            let same = services[i].service.ages.0 == services[j].service.ages.0
                && pi.ages == pj.ages
                && wi.len() == wj.len();
            if !same || !wi.iter().all(|w| *w > 0.0) {
                return None;
            }
            let r = wj[0] / wi[0];
            let fits = wi
                .iter()
                .zip(wj)
                .all(|(a, b)| (r * a - b).abs() <= 1e-14 * b.abs());
            (r >= 0.0 && r.is_finite() && fits).then_some((i, r))
        });
    }
    out
}

/// `Σ (a[i] + b[i])` per lane, four running sums: [`dot_pair`] with weights of 1
/// gives the same bits, but its multiply-adds take the pipes the age pass is bound by
/// (measured about 1 % more CPU time on the Monte Carlo workload).
#[inline(always)]
pub(super) fn sum_pair(a: &[V], b: &[V]) -> V {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [[0.0; LANES]; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (aq, bq) in ac.zip(bc) {
        for j in 0..4 {
            for l in 0..LANES {
                acc[j][l] += aq[j][l] + bq[j][l];
            }
        }
    }
    for (j, (av, bv)) in ar.iter().zip(br).enumerate() {
        for l in 0..LANES {
            acc[j][l] += av[l] + bv[l];
        }
    }
    std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]))
}

/// How a service's demand cells are summed when only demand is wanted: one cell per
/// row of weights by `(row, area, year)`. The rows are the segments, or, for a
/// service whose segments take fixed shares ([`crate::services::Split`]), the
/// coverage alone: the segments' summaries are then the row's times their shares.
pub(super) struct DemandPlan<'w> {
    /// The service's weights, for their area rows ([`Weights::area_row`]).
    pub(super) weights: &'w Weights,
    /// By `(area row, year, sex, row, age − age_min)`.
    pub(super) w: &'w [f64],
    pub(super) rows: usize,
    pub(super) ages: usize,
    /// Per `(area row, year)`.
    pub(super) sexes: Vec<Sexes>,
    /// The segments' shares by `(area row, year, segment)` when split.
    pub(super) shares: Option<ndarray::ArrayView3<'w, f64>>,
}

impl<'w> DemandPlan<'w> {
    /// The row of the weights that holds area position `a`.
    pub(super) fn row(&self, a: usize) -> usize {
        self.weights.area_row(a)
    }

    /// The segments' shares in area position `a` and year slot `k`, when split.
    pub(super) fn shares_at(&self, a: usize, k: usize) -> Option<ndarray::ArrayView1<'_, f64>> {
        let sh = self.shares.as_ref()?;
        Some(sh.slice(ndarray::s![self.row(a), k, ..]))
    }

    pub(super) fn new(weights: &'w Weights) -> DemandPlan<'w> {
        let (w, shares) = match &weights.split {
            Some(sp) => (&sp.coverage, Some(sp.shares.view())),
            None => (&weights.w, None),
        };
        let (na, ny, _, rows, ages) = w.dim();
        let w = w.as_slice().expect("weights are in standard layout");
        let sexes = w
            .chunks_exact(2 * rows * ages)
            .map(|cell| {
                let (f, m) = cell.split_at(rows * ages);
                if f.iter().zip(m).all(|(x, y)| x.to_bits() == y.to_bits()) {
                    if rows == 1 && f.iter().all(|x| x.to_bits() == f[0].to_bits()) {
                        Sexes::Level
                    } else {
                        Sexes::Alike
                    }
                } else if m.iter().all(|x| *x == 0.0) {
                    Sexes::Female
                } else if f.iter().all(|x| *x == 0.0) {
                    Sexes::Male
                } else {
                    Sexes::Both
                }
            })
            .collect::<Vec<_>>();
        debug_assert_eq!(sexes.len(), na * ny);
        DemandPlan {
            weights,
            w,
            rows,
            ages,
            sexes,
            shares,
        }
    }
}

/// One service's demand alone in one area of a group, resolved for a block (its
/// [`DemandPlan`] cut to the area): the weights and which sexes it sums, by year,
/// and where its cells lie.
pub(super) struct DemandJob<'w> {
    /// By `(year, sex, row, age − age_min)`.
    pub(super) w: &'w [f64],
    /// By year.
    pub(super) sexes: &'w [Sexes],
    pub(super) lo: usize,
    pub(super) ages: usize,
    pub(super) rows: usize,
    /// Cell `(row, area, year)` of the service is `row · per + first + year`.
    pub(super) per: usize,
    pub(super) first: usize,
    /// The service's position, and where the area's state starts in the group's.
    pub(super) service: usize,
    pub(super) state: usize,
}

impl DemandJob<'_> {
    /// For service `service`, whose ages start at `lo`, in area `a`, position `al` in
    /// a group of `ga` (`n` ages, `ny` year slots).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new<'p>(
        plan: &'p DemandPlan<'_>,
        service: usize,
        a: usize,
        al: usize,
        ga: usize,
        lo: u16,
        n: usize,
        ny: usize,
    ) -> DemandJob<'p> {
        let ra = plan.row(a);
        let size = 2 * plan.rows * plan.ages * ny;
        DemandJob {
            w: &plan.w[ra * size..(ra + 1) * size],
            sexes: &plan.sexes[ra * ny..(ra + 1) * ny],
            lo: usize::from(lo),
            ages: plan.ages,
            rows: plan.rows,
            per: ga * ny,
            first: al * ny,
            service,
            state: al * 2 * n,
        }
    }

    /// Each row's sum in year slot `k` from the area's state `cur` (ages `0..n` of
    /// each sex) into its cell of `dst`.
    #[inline(always)]
    pub(super) fn sums(&self, k: usize, n: usize, cur: &[V], dst: &mut [f64]) {
        let (rows, ni, lo) = (self.rows, self.ages, self.lo);
        let per_year = 2 * rows * ni;
        let (w0, w1) = self.w[k * per_year..(k + 1) * per_year].split_at(rows * ni);
        let (c0, c1) = (&cur[lo..lo + ni], &cur[n + lo..n + lo + ni]);
        let sexes = self.sexes[k];
        for g in 0..rows {
            let (w0, w1) = (&w0[g * ni..(g + 1) * ni], &w1[g * ni..(g + 1) * ni]);
            let sum = match sexes {
                Sexes::Alike | Sexes::Level => dot_pair(w0, c0, c1),
                Sexes::Female => dot_lanes(w0, c0),
                Sexes::Male => dot_lanes(w1, c1),
                Sexes::Both => {
                    let (f, m) = (dot_lanes(w0, c0), dot_lanes(w1, c1));
                    std::array::from_fn(|l| f[l] + m[l])
                }
            };
            let at = (g * self.per + self.first + k) * LANES;
            dst[at..at + LANES].copy_from_slice(&sum);
        }
    }
}
