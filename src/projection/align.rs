//! Alignment of sub-areas to control totals (MODEL.md §4).
//!
//! For each parent area, sex, age and year, every child area is multiplied by
//! `control / Σ children`. Where all children are 0 and the control is not, the control
//! is shared out by each child's share of the parent's total population in that year,
//! or by the base year's shares where that total is 0 too.

#![allow(clippy::needless_range_loop)]

use super::kernel::V;
use ndarray::{Array4, ArrayView3, ArrayView4, Axis};

/// The factors an alignment applied, by `(year, parent, sex, age)`; `NaN` where the
/// children were all 0 and the control was shared out instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Factors by `(year slot, parent, sex, age)`.
    pub factors: Array4<f64>,
}

/// Aligns `pop[(year, area, sex, age)]` in place, for the year slots `years` (those
/// that have a control), to `control[(year slot, parent, sex, age)]`. `parent_of[a]`
/// is the parent of area `a`; year slot 0 holds the base year. Each year is aligned
/// by `align_year`, the alignment every trajectory takes too.
pub fn align(
    pop: &mut Array4<f64>,
    parent_of: &[usize],
    control: ArrayView4<'_, f64>,
    years: &[usize],
) -> Alignment {
    let (ny, na, ns, nx) = pop.dim();
    let (_, n_parents, cs, cx) = control.dim();
    assert!(
        parent_of.len() == na && cs == ns && cx == nx,
        "alignment: one parent per area and a control by (year, parent, sex, age) of the \
         population's sexes and ages"
    );
    let mut factors = Array4::from_elem((ny, n_parents, ns, nx), 1.0);
    let parents = Parents::new(parent_of, n_parents, pop.index_axis(Axis(0), 0));
    let mut f = vec![[1.0]; n_parents * ns * nx];
    for &y in years {
        let cur: Vec<[f64; 1]> = pop.index_axis(Axis(0), y).iter().map(|v| [*v]).collect();
        let mut aligned = cur.clone();
        align_year(
            &parents,
            control.index_axis(Axis(0), y),
            &cur,
            &mut aligned,
            &mut f,
        );
        for (x, v) in pop.index_axis_mut(Axis(0), y).iter_mut().zip(&aligned) {
            *x = v[0];
        }
        for (x, v) in factors.index_axis_mut(Axis(0), y).iter_mut().zip(&f) {
            *x = v[0];
        }
    }
    Alignment { factors }
}

/// What aligning a year needs besides its state and control: the areas of each
/// parent and each area's total population in the base year.
#[derive(Debug, Clone)]
pub(crate) struct Parents {
    /// The areas of each parent, in area order.
    pub(crate) children: Vec<Vec<usize>>,
    /// Each area's total population in the base year.
    pub(crate) base_totals: Vec<f64>,
}

impl Parents {
    /// From each area's parent and the base year's population by `(area, sex, age)`.
    pub(crate) fn new(parent_of: &[usize], parents: usize, base: ArrayView3<'_, f64>) -> Parents {
        let mut children = vec![Vec::new(); parents];
        for (a, p) in parent_of.iter().enumerate() {
            children[*p].push(a);
        }
        Parents {
            children,
            base_totals: base.outer_iter().map(|a| a.sum()).collect(),
        }
    }
}

/// Aligns one year (MODEL.md §4): `cur` is every area's population by
/// `(area, sex, age)` in `L` lanes, each lane a population of its own (a trajectory);
/// `aligned` (of the same shape) gets it aligned to `control` by `(parent, sex, age)`
/// and `factors` (by `(parent, sex, age)`) the factors, `NaN` where the control was
/// shared out.
pub(crate) fn align_year<const L: usize>(
    parents: &Parents,
    control: ArrayView3<'_, f64>,
    cur: &[V<L>],
    aligned: &mut [V<L>],
    factors: &mut [V<L>],
) {
    aligned.copy_from_slice(cur);
    let (_, ns, n) = control.dim();
    let na = parents.base_totals.len();
    debug_assert_eq!(cur.len(), na * ns * n, "a state by (area, sex, age)");
    debug_assert_eq!(factors.len(), parents.children.len() * ns * n);
    let total = |a: usize| -> V<L> {
        let mut t = [0.0; L];
        for v in &cur[a * ns * n..(a + 1) * ns * n] {
            for l in 0..L {
                t[l] += v[l];
            }
        }
        t
    };
    // Each area's total this year, where the control is shared out (worked out when
    // first needed).
    let mut totals: Option<Vec<V<L>>> = None;
    for (p, children) in parents.children.iter().enumerate() {
        for s in 0..ns {
            for x in 0..n {
                let target = control[[p, s, x]];
                let mut sum = [0.0; L];
                for a in children {
                    for l in 0..L {
                        sum[l] += cur[(a * ns + s) * n + x][l];
                    }
                }
                let mut f = [1.0; L];
                for l in 0..L {
                    if sum[l] > 0.0 {
                        f[l] = target / sum[l];
                        for a in children {
                            aligned[(a * ns + s) * n + x][l] *= f[l];
                        }
                    } else if target != 0.0 {
                        f[l] = f64::NAN;
                        let tot = totals.get_or_insert_with(|| (0..na).map(total).collect());
                        let shares = shared_out(
                            target,
                            children.iter().map(|a| tot[*a][l]).collect(),
                            || children.iter().map(|a| parents.base_totals[*a]).collect(),
                        );
                        for (a, v) in children.iter().zip(shares) {
                            aligned[(a * ns + s) * n + x][l] = v;
                        }
                    }
                }
                factors[(p * ns + s) * n + x] = f;
            }
        }
    }
}

/// The control `target` shared out among children that are all 0: by their weights
/// `this_year` (their total populations that year), or by `base()` (the base year's)
/// where those are all 0, or equally where both are.
pub(crate) fn shared_out(
    target: f64,
    this_year: Vec<f64>,
    base: impl FnOnce() -> Vec<f64>,
) -> Vec<f64> {
    let mut wts = this_year;
    if wts.iter().sum::<f64>() <= 0.0 {
        wts = base();
    }
    let sum_w: f64 = wts.iter().sum();
    let n = wts.len() as f64;
    wts.iter()
        .map(|w| {
            if sum_w > 0.0 {
                target * w / sum_w
            } else {
                target / n
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sexes, two parents: each parent's children meet its own control, sex by
    /// sex, and a parent's control leaves the other parent's children alone.
    #[test]
    fn two_parents_and_two_sexes_align_apart() {
        // Areas 0, 1 under parent 0 and area 2 under parent 1; one age.
        let mut pop = Array4::zeros((2, 3, 2, 1));
        for (a, f, m) in [(0, 10.0, 20.0), (1, 30.0, 20.0), (2, 5.0, 7.0)] {
            for y in 0..2 {
                pop[[y, a, 0, 0]] = f;
                pop[[y, a, 1, 0]] = m;
            }
        }
        let mut control = Array4::zeros((2, 2, 2, 1));
        control[[1, 0, 0, 0]] = 20.0; // women of areas 0 and 1: 40 → 20
        control[[1, 0, 1, 0]] = 60.0; // men of areas 0 and 1: 40 → 60
        control[[1, 1, 0, 0]] = 5.0; // area 2 as it is
        control[[1, 1, 1, 0]] = 14.0; // area 2's men doubled
        let a = align(&mut pop, &[0, 0, 1], control.view(), &[1]);
        let got: Vec<f64> = pop.index_axis(Axis(0), 1).iter().copied().collect();
        assert_eq!(got, [5.0, 30.0, 15.0, 30.0, 5.0, 14.0]);
        assert_eq!(a.factors[[1, 0, 0, 0]], 0.5);
        assert_eq!(a.factors[[1, 0, 1, 0]], 1.5);
        assert_eq!(a.factors[[1, 1, 0, 0]], 1.0);
        assert_eq!(a.factors[[1, 1, 1, 0]], 2.0);
        // Slot 0 has no control: untouched, factors 1.
        assert_eq!(pop[[0, 0, 0, 0]], 10.0);
        assert_eq!(a.factors[[0, 1, 1, 0]], 1.0);
    }

    #[test]
    fn children_scale_to_the_control_and_zero_cells_are_shared_out() {
        // Year slots 0 (base) and 1; areas 0 and 1 under parent 0; one sex, two ages.
        let mut pop = Array4::zeros((2, 2, 1, 2));
        pop[[0, 0, 0, 0]] = 30.0;
        pop[[0, 1, 0, 0]] = 10.0;
        pop[[1, 0, 0, 0]] = 30.0;
        pop[[1, 1, 0, 0]] = 10.0;
        // Age 1 is 0 in both children in year 1.
        let mut control = Array4::zeros((2, 1, 1, 2));
        control[[1, 0, 0, 0]] = 80.0;
        control[[1, 0, 0, 1]] = 4.0;
        let a = align(&mut pop, &[0, 0], control.view(), &[1]);
        assert_eq!(pop[[1, 0, 0, 0]], 60.0);
        assert_eq!(pop[[1, 1, 0, 0]], 20.0);
        assert_eq!(a.factors[[1, 0, 0, 0]], 2.0);
        // Shared by the areas' totals in year 1 (30 : 10).
        assert_eq!(pop[[1, 0, 0, 1]], 3.0);
        assert_eq!(pop[[1, 1, 0, 1]], 1.0);
        assert!(a.factors[[1, 0, 0, 1]].is_nan());
        // The base year is untouched.
        assert_eq!(pop[[0, 0, 0, 0]], 30.0);
    }
}
