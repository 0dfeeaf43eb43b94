//! A unit's summaries: its demand, utilisation and shortage year by year from its
//! demand by (year, trajectory), with one selection a year for the three.

use super::*;

/// A unit's summaries from its demand `d` and floor area need `f` by (year,
/// trajectory) (shorter where no group sent it demand: 0 for the rest).
pub(super) fn unit_summary(
    unit: &crate::network::Unit,
    floor: bool,
    mut d: Vec<f64>,
    f: Vec<f64>,
    years: &[i32],
    nt: usize,
    levels: &[f64],
) -> UnitSummary {
    let (ny, nl) = (years.len(), levels.len());
    d.resize(ny * nt, 0.0);
    let mut out = UnitSummary {
        id: unit.id.clone(),
        demand: Summary::zeros(ny, nl),
        utilisation: Summary::zeros(ny, nl),
        shortage: Summary::zeros(ny, nl),
        floor_area_need_m2: floor.then(|| {
            let mut f = f;
            f.resize(ny * nt, 0.0);
            whole(&f, ny, nt, levels)
        }),
        p_shortage: vec![0.0; ny],
    };
    crate::projection::simd_dispatch(UnitRows {
        unit,
        d: &d,
        years,
        nt,
        levels,
        out: &mut out,
    });
    out
}

/// A unit's demand, utilisation and shortage summarised year by year
/// ([`unit_summary`]) as a kernel, compiled for AVX-512 or AVX2 where the processor
/// has it. Utilisation and shortage are nondecreasing functions of the demand in a
/// year, so their quantiles come from the demand's order statistics
/// ([`Selector::order_stats`]): one selection a year, not three, to the same bits.
struct UnitRows<'a> {
    unit: &'a crate::network::Unit,
    d: &'a [f64],
    years: &'a [i32],
    nt: usize,
    levels: &'a [f64],
    out: &'a mut UnitSummary,
}

impl crate::projection::Kernel for UnitRows<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let UnitRows {
            unit,
            d,
            years,
            nt,
            levels,
            out,
        } = self;
        let mut sel = Selector::default();
        let (mut pairs, mut q) = (vec![[0.0; 2]; levels.len()], vec![0.0; levels.len()]);
        for (k, row) in d.chunks_exact(nt).enumerate() {
            let y = years[k];
            let util = |v: f64| unit.utilisation(v, y);
            let short = |v: f64| unit.shortage(v, y);
            out.p_shortage[k] = row.iter().filter(|v| short(**v) > 0.0).count() as f64 / nt as f64;
            let (mean, order) = sel.order_stats(row, levels, &mut pairs);
            let put = |sm: &mut Summary, mean: f64, q: &[f64]| {
                sm.mean[k] = mean;
                for (col, v) in sm.q.iter_mut().zip(q) {
                    col[k] = *v;
                }
            };
            let n = nt as f64;
            match order {
                // A utilisation of a unit without places is not a number.
                _ if unit.capacity_in(y) <= 0.0 => {}
                Order::Pairs => {
                    type7(nt, levels, &pairs, |x| x, &mut q);
                    put(&mut out.demand, mean, &q);
                    type7(nt, levels, &pairs, util, &mut q);
                    put(&mut out.utilisation, sum_of(row, util) / n, &q);
                    type7(nt, levels, &pairs, short, &mut q);
                    put(&mut out.shortage, sum_of(row, short) / n, &q);
                    continue;
                }
                Order::Constant(x) => {
                    q.fill(x);
                    put(&mut out.demand, mean, &q);
                    q.fill(util(x));
                    put(&mut out.utilisation, sum_of(row, util) / n, &q);
                    q.fill(short(x));
                    put(&mut out.shortage, sum_of(row, short) / n, &q);
                    continue;
                }
                Order::NotFinite => {}
            }
            // Otherwise each summarised from its own values.
            let m = sel.summarise(row, levels, &mut q);
            put(&mut out.demand, m, &q);
            let values: Vec<f64> = row.iter().map(|v| util(*v)).collect();
            let m = sel.summarise(&values, levels, &mut q);
            put(&mut out.utilisation, m, &q);
            let values: Vec<f64> = row.iter().map(|v| short(*v)).collect();
            let m = sel.summarise(&values, levels, &mut q);
            put(&mut out.shortage, m, &q);
        }
    }
}
