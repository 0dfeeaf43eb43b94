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
                    let cell = ((al * 3 + s) * ng + j) * ny + k;
                    out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&sum);
                }
                let cell = ((al * 3 + 2) * ng + j) * ny + k;
                out.pop[cell * out.stride..cell * out.stride + LANES].copy_from_slice(&both);
            }
        }
    }
    if !ctx.services_wanted() {
        return;
    }
    let per = ga * ny;
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
        for (al, a) in group.clone().enumerate() {
            let at = |block: usize| (block * per + al * ny + k) * stride;
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
            let mut costs = v.costs;
            let mut total = [0.0; LANES];
            for l in 0..LANES {
                costs[3][l] += fixed * share;
                costs[4][l] += overhead * share;
                for c in &costs {
                    total[l] += c[l];
                }
            }
            for (c, val) in costs.iter().chain(std::iter::once(&total)).enumerate() {
                dst[at(ng + nres + c)..at(ng + nres + c) + LANES].copy_from_slice(val);
            }
        }
    }
}
