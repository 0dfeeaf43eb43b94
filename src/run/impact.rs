//! What a variant changes (MODEL.md §10): its cost difference from its baseline year
//! by year, cumulative and discounted, per service and in all, and the year it pays
//! back.

use crate::services::ServiceResult;

/// A cost difference path, one value per year from the base year.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImpactPath {
    /// `C_v(y) − C_b(y)`.
    pub cost_diff: Vec<f64>,
    /// `Σ_{y' ≤ y} cost_diff(y')`.
    pub cumulative: Vec<f64>,
    /// `Σ_{y' ≤ y} cost_diff(y') / (1 + r)^(y' − t0)`.
    pub discounted: Vec<f64>,
}

impl ImpactPath {
    /// The path of the yearly differences `diff`, discounted at `rate` from the first
    /// year.
    pub fn new(diff: Vec<f64>, rate: f64) -> ImpactPath {
        let mut cumulative = Vec::with_capacity(diff.len());
        let mut discounted = Vec::with_capacity(diff.len());
        let (mut c, mut d) = (0.0, 0.0);
        for (k, x) in diff.iter().enumerate() {
            c += x;
            d += x * crate::services::discount_factor(rate, k as i32, 0);
            cumulative.push(c);
            discounted.push(d);
        }
        ImpactPath {
            cost_diff: diff,
            cumulative,
            discounted,
        }
    }

    /// The present value of the difference, `discounted(T)`.
    pub fn present_value(&self) -> f64 {
        self.discounted.last().copied().unwrap_or(0.0)
    }

    /// The break-even year's position (see [`break_even`]).
    pub fn break_even(&self) -> Option<usize> {
        break_even(&self.discounted)
    }
}

/// The position of the break-even year in a path of discounted cumulative
/// differences: the first year from which the difference stays at or below 0 to
/// the end, provided it was above 0 before (the variant first costs more, then pays
/// back); none if it ends above 0; the first year if it is never above 0.
pub fn break_even(discounted: &[f64]) -> Option<usize> {
    match discounted.iter().rposition(|d| *d > 0.0) {
        None => (!discounted.is_empty()).then_some(0),
        Some(i) if i + 1 == discounted.len() => None,
        Some(i) => Some(i + 1),
    }
}

/// A variant's impact against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Impact {
    /// The years, from the base year.
    pub years: Vec<i32>,
    /// Per service id (the baseline's services, then those the variant adds).
    pub services: Vec<(String, ImpactPath)>,
    /// All services together.
    pub all: ImpactPath,
}

impl Impact {
    /// The break-even year of the whole (see [`break_even`]).
    pub fn break_even_year(&self) -> Option<i32> {
        self.all.break_even().map(|k| self.years[k])
    }
}

/// The baseline's service ids, then those only the variant has.
fn union_ids<'a, T>(b: &'a [(String, T)], v: &'a [(String, T)]) -> Vec<&'a String> {
    let mut ids: Vec<&String> = b.iter().map(|(id, _)| id).collect();
    for (id, _) in v {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// What a scenario's costs are made of, for [`impact`]: its services' results and
/// ids, in order, and its units' own costs with their services' positions.
#[derive(Debug, Clone, Copy)]
pub struct CostSources<'r> {
    /// Each service's results.
    pub services: &'r [ServiceResult],
    /// Each service's id, in the same order.
    pub ids: &'r [String],
    /// Each unit's own costs.
    pub unit_costs: &'r [crate::network::UnitCosts],
    /// The position (in `services`) of each unit's service.
    pub unit_services: &'r [usize],
}

impl CostSources<'_> {
    /// Each service's total cost by year (all areas, with its units' own costs),
    /// by service id.
    fn by_service(&self) -> Vec<(String, Vec<f64>)> {
        self.ids
            .iter()
            .zip(self.services)
            .enumerate()
            .map(|(i, (id, s))| {
                let mut c = s.costs[5].sum_axis(ndarray::Axis(0)).to_vec();
                for (uc, _) in self
                    .unit_costs
                    .iter()
                    .zip(self.unit_services)
                    .filter(|(_, sv)| **sv == i)
                {
                    for (x, u) in c.iter_mut().zip(&uc.costs[3]) {
                        *x += u;
                    }
                }
                (id.clone(), c)
            })
            .collect()
    }
}

/// The impact of a variant against its baseline over `years` (the same for both:
/// variants cannot change them), discounted at `rate`. A service's cost includes its
/// units' own costs; a service one of them lacks costs 0 there.
pub fn impact(
    variant: &CostSources<'_>,
    baseline: &CostSources<'_>,
    years: &[i32],
    rate: f64,
) -> Impact {
    let ny = years.len();
    let v = variant.by_service();
    let b = baseline.by_service();
    let ids = union_ids(&b, &v);
    let zero = vec![0.0; ny];
    let of = |list: &[(String, Vec<f64>)], id: &str| -> Vec<f64> {
        list.iter()
            .find(|(i, _)| i == id)
            .map_or_else(|| zero.clone(), |(_, c)| c.clone())
    };
    let mut all = vec![0.0; ny];
    let services = ids
        .iter()
        .map(|id| {
            let (cv, cb) = (of(&v, id), of(&b, id));
            let diff: Vec<f64> = cv.iter().zip(&cb).map(|(x, y)| x - y).collect();
            for (a, d) in all.iter_mut().zip(&diff) {
                *a += d;
            }
            ((*id).clone(), ImpactPath::new(diff, rate))
        })
        .collect();
    Impact {
        years: years.to_vec(),
        services,
        all: ImpactPath::new(all, rate),
    }
}

/// A variant's impact against its baseline trajectory by trajectory (common random
/// numbers: trajectory `t` of both drew the same numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryImpact {
    /// Per service id (as [`Impact::services`]), then `all`: the summaries over the
    /// trajectories of `cost_diff`, `cumulative` and `discounted` by year, and the
    /// share of trajectories where `discounted` at the end year is at most 0.
    pub rows: Vec<(String, [crate::uncertainty::Summary; 3], f64)>,
    /// The break-even year of `all` in each trajectory (none where it does not pay
    /// back by the end year).
    pub break_even: Vec<Option<i32>>,
}

/// What a variant's impact needs of a Monte Carlo run: each service's total cost
/// by `(year, trajectory)` (see
/// [`crate::uncertainty::ServiceSummary::total_cost_by_trajectory`]), the number of
/// trajectories and the quantile levels.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryCosts {
    /// The number of trajectories.
    pub trajectories: usize,
    /// The quantile levels.
    pub levels: Vec<f64>,
    /// Per service, in the scenario's order.
    pub by_service: Vec<Vec<f64>>,
}

impl TrajectoryCosts {
    /// The costs of a run's summaries.
    pub fn of(mc: &crate::uncertainty::McResult) -> TrajectoryCosts {
        TrajectoryCosts {
            trajectories: mc.trajectories,
            levels: mc.levels.clone(),
            by_service: mc
                .services
                .iter()
                .map(|s| s.total_cost_by_trajectory.clone())
                .collect(),
        }
    }
}

/// Each service's total cost by `(year, trajectory)` in one scenario's Monte Carlo
/// run, its units' own costs added, by service id.
fn trajectory_costs(
    c: &CostSources<'_>,
    mc: &TrajectoryCosts,
    ny: usize,
) -> Vec<(String, Vec<f64>)> {
    let nt = mc.trajectories;
    c.ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut v = mc
                .by_service
                .get(i)
                .cloned()
                .filter(|v| v.len() == ny * nt)
                .unwrap_or_else(|| vec![0.0; ny * nt]);
            for (uc, _) in c
                .unit_costs
                .iter()
                .zip(c.unit_services)
                .filter(|(_, sv)| **sv == i)
            {
                for k in 0..ny {
                    for x in &mut v[k * nt..(k + 1) * nt] {
                        *x += uc.costs[3][k];
                    }
                }
            }
            (id.clone(), v)
        })
        .collect()
}

/// The impact of a variant against its baseline in every trajectory of their Monte
/// Carlo runs (made with the same seed and number of trajectories), summarised at
/// the quantile `levels` of the runs.
pub fn impact_trajectories(
    variant: (&CostSources<'_>, &TrajectoryCosts),
    baseline: (&CostSources<'_>, &TrajectoryCosts),
    years: &[i32],
    rate: f64,
) -> TrajectoryImpact {
    use crate::uncertainty::{summarise_rows, Summary};
    let (ny, nt) = (
        years.len(),
        variant.1.trajectories.min(baseline.1.trajectories),
    );
    let levels = &variant.1.levels;
    let v = trajectory_costs(variant.0, variant.1, ny);
    let b = trajectory_costs(baseline.0, baseline.1, ny);
    let ids = union_ids(&b, &v);
    let zero = vec![0.0; ny * variant.1.trajectories.max(baseline.1.trajectories)];
    let of = |list: &'_ [(String, Vec<f64>)], id: &str| -> Vec<f64> {
        list.iter()
            .find(|(i, _)| i == id)
            .map_or_else(|| zero.clone(), |(_, c)| c.clone())
    };
    let (vt, bt) = (variant.1.trajectories, baseline.1.trajectories);
    // Paths by (year, trajectory) of each service, then of all.
    let mut all = vec![0.0; ny * nt];
    let mut diffs: Vec<(String, Vec<f64>)> = ids
        .iter()
        .map(|id| {
            let (cv, cb) = (of(&v, id), of(&b, id));
            let mut d = vec![0.0; ny * nt];
            for k in 0..ny {
                for t in 0..nt {
                    d[k * nt + t] = cv[k * vt + t] - cb[k * bt + t];
                }
            }
            for (a, x) in all.iter_mut().zip(&d) {
                *a += x;
            }
            ((*id).clone(), d)
        })
        .collect();
    diffs.push(("all".into(), all));
    let mut break_even = Vec::new();
    let rows = diffs
        .into_iter()
        .map(|(id, d)| {
            let mut paths = [d, vec![0.0; ny * nt], vec![0.0; ny * nt]];
            for t in 0..nt {
                let diff: Vec<f64> = (0..ny).map(|k| paths[0][k * nt + t]).collect();
                let p = ImpactPath::new(diff, rate);
                for k in 0..ny {
                    paths[1][k * nt + t] = p.cumulative[k];
                    paths[2][k * nt + t] = p.discounted[k];
                }
                if id == "all" {
                    break_even.push(p.break_even().map(|k| years[k]));
                }
            }
            let pays = (0..nt)
                .filter(|t| paths[2][(ny - 1) * nt + t] <= 0.0)
                .count() as f64
                / nt.max(1) as f64;
            let summaries = paths.map(|v| match nt {
                0 => Summary::zeros(ny, levels.len()),
                _ => summarise_rows(&v[..ny * nt], nt, levels),
            });
            (id, summaries, pays)
        })
        .collect();
    TrajectoryImpact { rows, break_even }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_even_follows_the_discounted_sum() {
        // Costs more, then pays back in the fourth year and stays below.
        assert_eq!(break_even(&[1.0, 2.0, 0.5, -0.1, -1.0]), Some(3));
        // Dips below, rises above again, then back: the last crossing counts.
        assert_eq!(break_even(&[1.0, -1.0, 0.5, -0.5]), Some(3));
        // Still above at the end: never.
        assert_eq!(break_even(&[1.0, 0.5, 0.1]), None);
        // Never costs more: the base year.
        assert_eq!(break_even(&[0.0, -1.0, -2.0]), Some(0));
        assert_eq!(break_even(&[]), None);
    }

    #[test]
    fn paths_add_up_and_discount_from_the_base_year() {
        let p = ImpactPath::new(vec![100.0, 100.0, -300.0], 0.1);
        assert_eq!(p.cumulative, [100.0, 200.0, -100.0]);
        let want = [
            100.0,
            100.0 + 100.0 / 1.1,
            100.0 + 100.0 / 1.1 - 300.0 / 1.21,
        ];
        for (d, w) in p.discounted.iter().zip(want) {
            assert!((d - w).abs() < 1e-9, "{d} vs {w}");
        }
        assert_eq!(p.break_even(), Some(2));
        assert!((p.present_value() - want[2]).abs() < 1e-9);
    }
}
