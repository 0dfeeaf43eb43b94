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
        // By (area, sex, group): female, male, then both.
        let ng = ctx.groups.len();
        let sums = &mut out.group_sums;
        sums.resize(ng, [[0.0; LANES]; 2]);
        for al in 0..ga {
            let f = &cur[al * 2 * n..(al * 2 + 1) * n];
            let m = &cur[(al * 2 + 1) * n..(al * 2 + 2) * n];
            for (j, r) in ctx.groups.iter().enumerate() {
                let parts = &ctx.group_parts[j];
                let [sf, sm] = if parts.is_empty() {
                    group_sums(&f[r.clone()], &m[r.clone()])
                } else {
                    // The sums of the groups that split its ages, in age order (each
                    // sex in a value of its own, which stays in a register).
                    let [mut sf, mut sm] = sums[parts[0]];
                    for &i in &parts[1..] {
                        let [pf, pm] = sums[i];
                        for l in 0..LANES {
                            sf[l] += pf[l];
                            sm[l] += pm[l];
                        }
                    }
                    [sf, sm]
                };
                sums[j] = [sf, sm];
                let mut both = [0.0; LANES];
                for l in 0..LANES {
                    both[l] = sf[l] + sm[l];
                }
                let cell = |s: usize| {
                    let cell = (((k - out.k0) * ga + al) * 3 + s) * ng + j;
                    (out.lay.pop + cell) * out.stride
                };
                let (f_at, m_at, both_at) = (cell(0), cell(1), cell(2));
                put_cell(out.cells, f_at, &sf, out.stream);
                put_cell(out.cells, m_at, &sm, out.stream);
                put_cell(out.cells, both_at, &both, out.stream);
            }
        }
    }
    if !ctx.services_wanted() {
        return;
    }
    let (stride, stream, k0) = (out.stride, out.stream, out.k0);
    let mut second = false;
    for (i, s) in ctx.services.iter().enumerate() {
        if std::mem::take(&mut second) {
            // Summed with the service before it.
            continue;
        }
        if ctx.paired[i] {
            observe_pair(ctx, group, k, cur, out, i);
            second = true;
            continue;
        }
        let sv = s.service;
        let lo = usize::from(sv.ages.0);
        let (ng, ni) = (sv.segments.len(), ctx.weights[i].w.dim().4);
        let teaching = sv.teaching.is_some();
        // Every place is written before it is read (the segments' sums fill each
        // segment's demand and, with a teaching model, its grades), so the buffers
        // are only grown, never cleared.
        let nd = if teaching { ng * ni } else { 0 };
        if out.scratch.len() < nd {
            out.scratch.resize(nd, [0.0; LANES]);
        }
        if out.totals.len() < ng {
            out.totals.resize(ng, [0.0; LANES]);
        }
        let (dst, d, tot) = (
            &mut *out.cells,
            &mut out.scratch[..nd],
            &mut out.totals[..ng],
        );
        let (base, width) = (out.lay.services[i], ctx.service_width(i));
        let w = ctx.weights[i]
            .w
            .as_slice()
            .expect("weights are in standard layout");
        for (al, a) in group.clone().enumerate() {
            let at = |block: usize| (base + ((k - k0) * ga + al) * width + block) * stride;
            let row = ((ctx.weights[i].area_row(a) * ny + k) * 2) * ng * ni;
            let (wf, wm) = (&w[row..row + ng * ni], &w[row + ng * ni..row + 2 * ng * ni]);
            let lanes = |sx: usize| &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
            let (pf, pm) = (lanes(0), lanes(1));
            // Each segment's demand, summed over its ages as it goes; by age too where
            // a teaching model needs the grades.
            match (ng, teaching) {
                (1, false) => segment_sums::<1, false>(pf, pm, wf, wm, d, tot),
                (2, false) => segment_sums::<2, false>(pf, pm, wf, wm, d, tot),
                (3, false) => segment_sums::<3, false>(pf, pm, wf, wm, d, tot),
                (4, false) => segment_sums::<4, false>(pf, pm, wf, wm, d, tot),
                (1, true) => segment_sums::<1, true>(pf, pm, wf, wm, d, tot),
                (2, true) => segment_sums::<2, true>(pf, pm, wf, wm, d, tot),
                (3, true) => segment_sums::<3, true>(pf, pm, wf, wm, d, tot),
                (4, true) => segment_sums::<4, true>(pf, pm, wf, wm, d, tot),
                _ => {
                    for g in 0..ng {
                        let one = g..g + 1;
                        let (wfg, wmg) = (&wf[g * ni..(g + 1) * ni], &wm[g * ni..(g + 1) * ni]);
                        if teaching {
                            let dg = &mut d[g * ni..(g + 1) * ni];
                            segment_sums::<1, true>(pf, pm, wfg, wmg, dg, &mut tot[one]);
                        } else {
                            segment_sums::<1, false>(pf, pm, wfg, wmg, &mut [], &mut tot[one]);
                        }
                    }
                }
            }
            for (g, sum) in tot.iter().enumerate() {
                put_cell(dst, at(g), sum, stream);
            }
            if ctx.affine[i] {
                // Its resources and costs are summarised from its demand's summary.
                continue;
            }
            let (grow, (fixed, overhead)) = (&ctx.grow[i][k], ctx.fixed[i][k]);
            let share = s.fixed_shares.map_or(0.0, |f| f[[a, k]]);
            let (has, nres) = (ctx.has[i], ctx.n_res[i]);
            let v = year_values_lanes(sv, tot, d, grow);
            let mut r = 0;
            for (h, val) in has.iter().zip(&v.resources) {
                if *h {
                    put_cell(dst, at(ng + r), val, stream);
                    r += 1;
                }
            }
            let costs = finish_costs(v.costs, fixed, overhead, share);
            for (c, val) in costs.iter().enumerate() {
                put_cell(dst, at(ng + nres + c), val, stream);
            }
        }
    }
}

/// Whether service `i` and the next can have their demand summed side by side
/// ([`observe_pair`]): both of one segment without a teaching model, affine (so that
/// their blocks record only the demand), over the same ages.
pub(super) fn pair_with_next(ctx: &Ctx<'_>, i: usize) -> bool {
    let (Some(a), Some(b)) = (ctx.services.get(i), ctx.services.get(i + 1)) else {
        return false;
    };
    let simple = |j: usize, s: &ServiceInput<'_>| {
        ctx.affine[j] && s.service.segments.len() == 1 && s.service.teaching.is_none()
    };
    simple(i, a) && simple(i + 1, b) && a.service.ages == b.service.ages
}

/// [`observe`] of services `i` and `i + 1` ([`pair_with_next`]): each area's demand
/// of the two summed over their ages side by side, each sum in age order as
/// [`segment_sums`] makes it (the same bits), and written to the two services' cells.
#[inline(always)]
fn observe_pair(
    ctx: &Ctx<'_>,
    group: &std::ops::Range<usize>,
    k: usize,
    cur: &[V],
    out: &mut BlockOut<'_>,
    i: usize,
) {
    let (n, ny, ga) = (ctx.kernel.n, ctx.years.len(), group.len());
    let sv = ctx.services[i].service;
    let (lo, ni) = (usize::from(sv.ages.0), ctx.weights[i].w.dim().4);
    let w = |j: usize| {
        ctx.weights[j]
            .w
            .as_slice()
            .expect("weights are in standard layout")
    };
    let (wi, wj) = (w(i), w(i + 1));
    for (al, a) in group.clone().enumerate() {
        // One segment: an area and year's weights are the female ages, then the male.
        let row = |j: usize| ((ctx.weights[j].area_row(a) * ny + k) * 2) * ni;
        let (ri, rj) = (row(i), row(i + 1));
        let (fi, mi) = (&wi[ri..ri + ni], &wi[ri + ni..ri + 2 * ni]);
        let (fj, mj) = (&wj[rj..rj + ni], &wj[rj + ni..rj + 2 * ni]);
        let lanes = |sx: usize| &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
        let (pf, pm) = (lanes(0), lanes(1));
        let z = [0.0; LANES];
        let (mut si, mut sj) = (z, z);
        for x in 0..ni {
            let (p, q) = (&pf[x], &pm[x]);
            for l in 0..LANES {
                si[l] += p[l] * fi[x] + q[l] * mi[x];
                sj[l] += p[l] * fj[x] + q[l] * mj[x];
            }
        }
        for (j, sum) in [(i, &si), (i + 1, &sj)] {
            // An affine service's cells are its demand alone, one an area and year.
            let at = (out.lay.services[j] + (k - out.k0) * ga + al) * out.stride;
            put_cell(out.cells, at, sum, out.stream);
        }
    }
}

/// The sums of a group of ages of the female and the male lanes, each over its ages
/// in two interleaved halves (even and odd positions), so that the adds of the four
/// sums do not wait on one another.
#[inline(always)]
fn group_sums(f: &[V], m: &[V]) -> [V; 2] {
    let z = [0.0; LANES];
    let (mut f0, mut f1, mut m0, mut m1) = (z, z, z, z);
    let (fc, mc) = (f.chunks_exact(2), m.chunks_exact(2));
    let (fr, mr) = (fc.remainder(), mc.remainder());
    for (a, b) in fc.zip(mc) {
        for l in 0..LANES {
            f0[l] += a[0][l];
            f1[l] += a[1][l];
            m0[l] += b[0][l];
            m1[l] += b[1][l];
        }
    }
    for (a, b) in fr.iter().zip(mr) {
        for l in 0..LANES {
            f0[l] += a[l];
            m0[l] += b[l];
        }
    }
    for l in 0..LANES {
        f0[l] += f1[l];
        m0[l] += m1[l];
    }
    [f0, m0]
}

/// Each of `G` segments' demand `Σ_x pf[x]·wf[g][x] + pm[x]·wm[g][x]` into `tot[g]`
/// (weights by `(segment, age)`), and by `(segment, age)` into `d` where `BY_AGE`:
/// the segments side by side, each summed over its ages in order, so that their adds
/// do not wait on one another.
#[inline(always)]
fn segment_sums<const G: usize, const BY_AGE: bool>(
    pf: &[V],
    pm: &[V],
    wf: &[f64],
    wm: &[f64],
    d: &mut [V],
    tot: &mut [V],
) {
    let ni = pf.len();
    assert!(pm.len() == ni && wf.len() >= G * ni && wm.len() >= G * ni && tot.len() == G);
    assert!(!BY_AGE || d.len() >= G * ni);
    let mut sums = [[0.0; LANES]; G];
    for x in 0..ni {
        let (a, b) = (pf[x], pm[x]);
        for g in 0..G {
            let (cf, cm) = (wf[g * ni + x], wm[g * ni + x]);
            let mut v = [0.0; LANES];
            for l in 0..LANES {
                v[l] = a[l] * cf + b[l] * cm;
                sums[g][l] += v[l];
            }
            if BY_AGE {
                d[g * ni + x] = v;
            }
        }
    }
    tot.copy_from_slice(&sums);
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

/// Writes a cell's lanes at `dst[at..at + LANES]`, past the caches where the block
/// streams ([`BlockOut::stream`]).
#[inline(always)]
pub(super) fn put_cell(dst: &mut [f64], at: usize, v: &V, stream: bool) {
    let d = &mut dst[at..at + LANES];
    if stream {
        crate::projection::stream_copy(d, v);
    } else {
        d.copy_from_slice(v);
    }
}
