//! The summaries a run fills in ([`Tables`]): where each group's packed summaries go
//! in the output tables, the services' totals over the areas with their summaries and
//! present values ([`Tables::add_totals`]), and the resources and costs of the affine
//! services, which follow from their demand's summaries ([`affine_summaries`]).

use super::*;

/// The resources and costs of each affine service (see [`Ctx::affine`]) from its
/// demand: by `(area, year)` its summaries are the functions of the demand's mean and
/// quantiles, and its total cost by `(year, trajectory)` that of its total demand,
/// `Σ_a α_a + β · D` for a cost `α_a + β · d` in area `a`.
fn affine_summaries(
    ctx: &Ctx<'_>,
    svc: &mut [ServiceSummary],
    totals: &mut [(Vec<f64>, Vec<f64>)],
    na: usize,
    nt: usize,
) {
    let ny = ctx.years.len();
    for (i, s) in svc.iter_mut().enumerate() {
        if !ctx.affine[i] {
            continue;
        }
        let shares = ctx.services[i].fixed_shares;
        let share = |a: usize, k: usize| shares.map_or(0.0, |f| f[[a, k]]);
        let has: Vec<usize> = (0..5).filter(|r| ctx.has[i][*r]).collect();
        for a in 0..na {
            for k in 0..ny {
                let cell = a * ny + k;
                let mut put = |x: f64, get: &dyn Fn(&mut Summary) -> &mut f64| {
                    let (res, costs) = affine_values(ctx, i, k, x, share(a, k));
                    for ((_, sm), r) in s.resources.iter_mut().zip(&has) {
                        *get(sm) = res[*r];
                    }
                    for (sm, c) in s.costs.iter_mut().zip(costs) {
                        *get(sm) = c;
                    }
                };
                put(s.demand.mean[cell], &|sm| &mut sm.mean[cell]);
                for j in 0..s.demand.q.len() {
                    put(s.demand.q[j][cell], &|sm| &mut sm.q[j][cell]);
                }
            }
        }
        let (d, c) = &mut totals[i];
        for k in 0..ny {
            let at = |x: f64, share: f64| affine_values(ctx, i, k, x, share).1[5];
            let alpha: f64 = (0..na).map(|a| at(0.0, share(a, k))).sum();
            // The slope is the same in every area (a share only adds to α).
            let beta = at(1.0, 0.0) - at(0.0, 0.0);
            for (c, d) in c[k * nt..(k + 1) * nt].iter_mut().zip(&d[k * nt..]) {
                *c = alpha + beta * d;
            }
        }
    }
}

/// The summaries a run fills in group by group, and the services' totals once every
/// group is done.
pub(super) struct Tables {
    /// The number of areas.
    pub(super) areas: usize,
    pub(super) population: Option<Summary>,
    pub(super) components: Option<Vec<Summary>>,
    pub(super) migration: Option<Vec<Summary>>,
    pub(super) alignment: Option<Summary>,
    pub(super) services: Vec<ServiceSummary>,
}

impl Tables {
    /// Every summary the run asks for, all 0: `na` areas, `npg` population cells an
    /// area and year (sexes × age groups), `nl` quantile levels.
    pub(super) fn new(ctx: &Ctx<'_>, na: usize, npg: usize, nl: usize) -> Tables {
        let (ny, nyp, want) = (ctx.years.len(), ctx.projected.len(), ctx.want);
        Tables {
            areas: na,
            population: want.population.then(|| Summary::zeros(na * npg * ny, nl)),
            components: want
                .components
                .then(|| vec![Summary::zeros(na * 2 * nyp, nl); COMPONENTS]),
            migration: want
                .migration
                .then(|| vec![Summary::zeros(na * 2 * nyp, nl); ctx.mig_rows.len()]),
            alignment: ctx.align.as_ref().map(|al| {
                Summary::zeros(
                    al.parents.children.len() * 2 * ctx.kernel.n * al.to.slots.len(),
                    nl,
                )
            }),
            services: ctx
                .services
                .iter()
                .enumerate()
                .map(|(i, s)| ServiceSummary {
                    demand: Summary::zeros(s.service.segments.len() * na * ny, nl),
                    resources: RESOURCES
                        .iter()
                        .zip(ctx.has[i])
                        .filter(|(_, h)| *h && want.costs)
                        .map(|(r, _)| (*r, Summary::zeros(na * ny, nl)))
                        .collect(),
                    costs: if want.costs {
                        vec![Summary::zeros(na * ny, nl); 6]
                    } else {
                        Vec::new()
                    },
                    total_demand: Summary::default(),
                    total_cost: Summary::default(),
                    total_cost_by_trajectory: Vec::new(),
                    present_value: Summary::default(),
                    units: Vec::new(),
                })
                .collect(),
        }
    }

    /// The services' totals over the areas, from the groups' running `sums` (per
    /// service, demand and total cost by (year, trajectory)) added in order, with the
    /// affine services' total costs from their total demand: summarised by year, and
    /// each trajectory's present value of the total cost at the service's discount
    /// rate, discounted to `base_year`.
    pub(super) fn add_totals(&mut self, ctx: &Ctx<'_>, sums: &[SumRows], base_year: i32) {
        let (years, levels) = (ctx.years, &ctx.spec.quantiles);
        let (na, ny, nt) = (self.areas, years.len(), ctx.spec.trajectories);
        let want = ctx.want;
        let sized = |on: bool| if on { vec![0.0; ny * nt] } else { Vec::new() };
        let mut totals: SumRows = ctx
            .services
            .iter()
            .map(|_| (sized(ctx.services_wanted()), sized(want.costs)))
            .collect();
        for sum in sums {
            for ((d, c), (od, oc)) in totals.iter_mut().zip(sum) {
                for (v, part) in [(&mut *d, od), (&mut *c, oc)] {
                    add_to(v, part);
                }
            }
        }
        if want.costs {
            affine_summaries(ctx, &mut self.services, &mut totals, na, nt);
        }
        let whole = |v: &[f64], cells: usize| whole(v, cells, nt, levels);
        for (i, (d, c)) in totals.iter().enumerate() {
            let sv = &mut self.services[i];
            if want.costs {
                let rate = ctx.services[i].discount_rate;
                let pv: Vec<f64> = (0..nt)
                    .map(|t| {
                        (0..ny)
                            .map(|k| {
                                c[k * nt + t]
                                    * crate::services::discount_factor(rate, years[k], base_year)
                            })
                            .sum()
                    })
                    .collect();
                sv.present_value = whole(&pv, 1);
                sv.total_cost_by_trajectory = c[..ny * nt].to_vec();
                sv.total_cost = whole(c, ny);
            }
            if ctx.services_wanted() {
                sv.total_demand = whole(d, ny);
            }
        }
    }

    /// Puts group `g`'s packed summaries (per cell of `lay`: the mean, then the
    /// quantiles) in their places in the tables: the group's cells run year first
    /// (see [`Layout`]), the tables' year last.
    pub(super) fn place(
        &mut self,
        ctx: &Ctx<'_>,
        g: &std::ops::Range<usize>,
        lay: &Layout,
        packed: &[f64],
    ) {
        let (ga, ny, nyp) = (g.len(), ctx.years.len(), ctx.projected.len());
        let stride = 1 + ctx.spec.quantiles.len();
        let packed = |at: usize, cells: usize| {
            packed[at * stride..(at + cells) * stride].chunks_exact(stride)
        };
        let set = set_packed;
        if let Some(ps) = &mut self.population {
            // (year, area, sex, age group) → (area, sex, age group, year).
            let npg = 3 * ctx.groups.len();
            let offset = g.start * npg * ny;
            for (c, p) in packed(lay.pop, ga * npg * ny).enumerate() {
                let (k, rest) = (c / (ga * npg), c % (ga * npg));
                set(ps, offset + rest * ny + k, p);
            }
        }
        // Components and movers: (projected year, area, sex, component or row) →
        // (area, sex, projected year) of each component or row.
        let by_year = |sms: &mut [Summary], at: usize| {
            let (offset, width) = (g.start * 2 * nyp, sms.len());
            for (c, p) in packed(at, ga * 2 * nyp * width).enumerate() {
                let (kp, rest) = (c / (ga * 2 * width), c % (ga * 2 * width));
                let (i, j) = (rest / width, rest % width);
                set(&mut sms[j], offset + i * nyp + kp, p);
            }
        };
        if let Some(cs) = &mut self.components {
            by_year(cs, lay.comps);
        }
        if let Some(ms) = &mut self.migration {
            by_year(ms, lay.mig);
        }
        if let Some(sm) = &mut self.alignment {
            // The one group holds every area: its cells are the whole table's,
            // (aligned year, parent, sex, age) → (parent, sex, age, aligned year).
            let nslots = ctx.align.as_ref().map_or(1, |al| al.to.slots.len());
            let per = sm.mean.len() / nslots;
            for (c, p) in packed(lay.align, sm.mean.len()).enumerate() {
                set(sm, (c % per) * nslots + c / per, p);
            }
        }
        if !ctx.services_wanted() {
            return;
        }
        for (i, s) in self.services.iter_mut().enumerate() {
            let ng = ctx.services[i].service.segments.len();
            let na = s.demand.mean.len() / (ng * ny).max(1);
            let nres = s.resources.len();
            let width = ctx.service_width(i);
            for (c, p) in packed(lay.services[i], ctx.service_cells(i, ga)).enumerate() {
                // (year, area, cell) → demand (segment, area, year), resources and
                // costs (area, year).
                let (k, rest) = (c / (ga * width), c % (ga * width));
                let (al, block) = (rest / width, rest % width);
                let cell = (g.start + al) * ny + k;
                if block < ng {
                    set(&mut s.demand, block * na * ny + cell, p);
                } else if block < ng + nres {
                    set(&mut s.resources[block - ng].1, cell, p);
                } else {
                    set(&mut s.costs[block - ng - nres], cell, p);
                }
            }
        }
    }
}
