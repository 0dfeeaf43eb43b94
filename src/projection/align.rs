//! Alignment of sub-areas to control totals (MODEL.md §4).
//!
//! For each parent area, sex, age and year, every child area is multiplied by
//! `control / Σ children`. Where all children are 0 and the control is not, the control
//! is shared out by each child's share of the parent's total population in that year,
//! or by the base year's shares where that total is 0 too.

use ndarray::{Array4, ArrayView4};

/// The factors an alignment applied, by `(year, parent, sex, age)`; `NaN` where the
/// children were all 0 and the control was shared out instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Factors by `(year slot, parent, sex, age)`.
    pub factors: Array4<f64>,
}

/// Aligns `pop[(year, area, sex, age)]` in place, for the year slots `years` (those
/// that have a control), to `control[(year slot, parent, sex, age)]`. `parent_of[a]`
/// is the parent of area `a`; year slot 0 holds the base year.
pub fn align(
    pop: &mut Array4<f64>,
    parent_of: &[usize],
    control: ArrayView4<'_, f64>,
    years: &[usize],
) -> Alignment {
    let (ny, na, ns, nx) = pop.dim();
    let parents = control.dim().1;
    let mut factors = Array4::from_elem((ny, parents, ns, nx), 1.0);
    // Each area's total population per year, for sharing out where children are 0.
    let area_total = |pop: &Array4<f64>, y: usize, a: usize| -> f64 {
        pop.slice(ndarray::s![y, a, .., ..]).sum()
    };
    for &y in years {
        let totals: Vec<f64> = (0..na).map(|a| area_total(pop, y, a)).collect();
        let base: Vec<f64> = (0..na).map(|a| area_total(pop, 0, a)).collect();
        for p in 0..parents {
            let children: Vec<usize> = (0..na).filter(|a| parent_of[*a] == p).collect();
            for s in 0..ns {
                for x in 0..nx {
                    let target = control[[y, p, s, x]];
                    let sum: f64 = children.iter().map(|a| pop[[y, *a, s, x]]).sum();
                    if sum > 0.0 {
                        let f = target / sum;
                        factors[[y, p, s, x]] = f;
                        for a in &children {
                            pop[[y, *a, s, x]] *= f;
                        }
                    } else if target != 0.0 {
                        factors[[y, p, s, x]] = f64::NAN;
                        let weights =
                            |w: &[f64]| -> Vec<f64> { children.iter().map(|a| w[*a]).collect() };
                        let shares = shared_out(target, weights(&totals), || weights(&base));
                        for (a, v) in children.iter().zip(shares) {
                            pop[[y, *a, s, x]] = v;
                        }
                    }
                }
            }
        }
    }
    Alignment { factors }
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
