//! What a block records of each year: the population, and each service's demand,
//! resources and costs per lane, in the layout the summaries read.

#![allow(clippy::needless_range_loop)]

use super::*;

/// Records year slot `k`'s state: the population, and each service's demand,
/// resources and costs per lane.
#[inline(always)]
pub(super) fn observe(
    ctx: &Ctx<'_>,
    group: &std::ops::Range<usize>,
    k: usize,
    cur: &[V],
    out: &mut BlockOut<'_>,
) {
    let (n, ny) = (ctx.kernel.n, ctx.years.len());
    let ga = group.len();
    if ctx.want.population {
        // By (area, sex, group): female, male, then both; each group summed from its
        // youngest age up.
        let ng = ctx.groups.len();
        for al in 0..ga {
            for (j, r) in ctx.groups.iter().enumerate() {
                let mut both = [0.0; LANES];
                for s in 0..2 {
                    let lanes = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
                    let mut sum = [0.0; LANES];
                    for v in &lanes[r.clone()] {
                        for l in 0..LANES {
                            sum[l] += v[l];
                        }
                    }
                    for l in 0..LANES {
                        both[l] += sum[l];
                    }
                    let cell = ((k * ga + al) * 3 + s) * ng + j;
                    out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&sum);
                }
                let cell = ((k * ga + al) * 3 + 2) * ng + j;
                out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&both);
            }
        }
    }
    if !ctx.services_wanted() {
        return;
    }
    let stride = out.stride;
    for (i, s) in ctx.services.iter().enumerate() {
        let sv = s.service;
        let lo = usize::from(sv.ages.0);
        let dst = &mut *out.services[i];
        let d = &mut out.scratch;
        let tot = &mut out.totals;
        let w = ctx.weights[i]
            .w
            .as_slice()
            .expect("weights are in standard layout");
        let (ng, ni) = (sv.segments.len(), ctx.weights[i].w.dim().4);
        let teaching = sv.teaching.is_some();
        let width = ctx.service_width(i);
        for (al, a) in group.clone().enumerate() {
            let at = |block: usize| ((k * ga + al) * width + block) * stride;
            let row = ((ctx.weights[i].area_row(a) * ny + k) * 2) * ng * ni;
            let (wf, wm) = (&w[row..row + ng * ni], &w[row + ng * ni..row + 2 * ng * ni]);
            let lanes = |sx: usize| &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
            let (pf, pm) = (lanes(0), lanes(1));
            // Each segment's demand, summed over its ages as it goes; by age too where
            // a teaching model needs the grades.
            d.clear();
            if teaching {
                d.resize(ng * ni, [0.0; LANES]);
            }
            tot.clear();
            for g in 0..ng {
                let (wfg, wmg) = (&wf[g * ni..(g + 1) * ni], &wm[g * ni..(g + 1) * ni]);
                let mut sum = [0.0; LANES];
                for x in 0..ni {
                    let mut v = [0.0; LANES];
                    for l in 0..LANES {
                        v[l] = pf[x][l] * wfg[x] + pm[x][l] * wmg[x];
                        sum[l] += v[l];
                    }
                    if teaching {
                        d[g * ni + x] = v;
                    }
                }
                tot.push(sum);
                dst[at(g)..at(g) + LANES].copy_from_slice(&sum);
            }
            if ctx.affine[i] {
                // Its resources and costs are summarised from its demand's summary.
                continue;
            }
            let (grow, (fixed, overhead)) = (&ctx.grow[i][k], ctx.fixed[i][k]);
            let share = s.fixed_shares.map_or(0.0, |f| f[[a, k]]);
            let has = ctx.has[i];
            let nres = has.iter().filter(|h| **h).count();
            let v = year_values_lanes(sv, tot, d, grow);
            let mut r = 0;
            for (h, val) in has.iter().zip(&v.resources) {
                if *h {
                    dst[at(ng + r)..at(ng + r) + LANES].copy_from_slice(val);
                    r += 1;
                }
            }
            let costs = finish_costs(v.costs, fixed, overhead, share);
            for (c, val) in costs.iter().enumerate() {
                dst[at(ng + nres + c)..at(ng + nres + c) + LANES].copy_from_slice(val);
            }
        }
    }
}

/// Service `i`'s resources (all five, 0 where it has none) and its cost components
/// (units, premises, staff, fixed, overhead, total) in year slot `k` for a demand of
/// `x` in an area carrying `share` of the fixed cost per service, as [`observe`]
/// works them out for one lane; for a service of one segment without a teaching
/// model (whose demand is `x` alone).
pub(super) fn affine_values(
    ctx: &Ctx<'_>,
    i: usize,
    k: usize,
    x: f64,
    share: f64,
) -> ([f64; 5], [f64; 6]) {
    let s = &ctx.services[i];
    let v = year_values_lanes::<1>(s.service, &[[x]], &[], &ctx.grow[i][k]);
    let (fixed, overhead) = ctx.fixed[i][k];
    let costs = finish_costs(v.costs, fixed, overhead, share);
    (v.resources.map(|r| r[0]), costs.map(|c| c[0]))
}

/// A year's cost components per lane (units, premises, staff, fixed, overhead) with
/// an area's `share` of the fixed cost per service and of its overhead added, and
/// their total: the six cost cells. [`observe`] and [`affine_values`] both finish
/// their costs here, so an affine service's summaries are its cells' exactly.
#[inline(always)]
fn finish_costs<const L: usize>(
    mut costs: [[f64; L]; 5],
    fixed: f64,
    overhead: f64,
    share: f64,
) -> [[f64; L]; 6] {
    let mut total = [0.0; L];
    for l in 0..L {
        costs[3][l] += fixed * share;
        costs[4][l] += overhead * share;
        for c in &costs {
            total[l] += c[l];
        }
    }
    let [units, premises, staff, fixed, overhead] = costs;
    [units, premises, staff, fixed, overhead, total]
}

/// Whether service `i`'s resources and costs are increasing affine functions of its
/// demand in every area and year: one segment, no teaching model (whose groups are
/// not affine), and none of them smaller at a demand of 1 than at 0 (a negative
/// price would turn a quantile into its mirror).
pub(super) fn affine_increasing(ctx: &Ctx<'_>, i: usize) -> bool {
    let sv = ctx.services[i].service;
    if sv.segments.len() != 1 || sv.teaching.is_some() {
        return false;
    }
    // The area enters only through the fixed cost's share, the same at 0 and 1.
    (0..ctx.years.len()).all(|k| {
        let (r0, c0) = affine_values(ctx, i, k, 0.0, 0.0);
        let (r1, c1) = affine_values(ctx, i, k, 1.0, 0.0);
        r0.iter()
            .chain(&c0)
            .zip(r1.iter().chain(&c1))
            .all(|(v0, v1)| v1 >= v0 && v1.is_finite())
    })
}
