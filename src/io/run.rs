//! Running a loaded scenario and writing its tables, `manifest.json` and
//! `summary.json`. The deterministic run's tables are built in [`super::tables`]; the
//! Monte Carlo's quantile twins and the variants' impacts here.
//!
//! Every table is computed before anything is written; each file is then written
//! under a temporary name and renamed into place.

use super::frame::{write_atomically, ColumnData, Format, Frame};
use super::scenario::LoadedScenario;
use super::tables::{capacity_keys, text};
pub use super::tables::{
    capacity_table, components_table, costs_table, demand_table, migration_table, population_table,
    resources_table, totals_table,
};
use super::IoError;
use crate::population::Sex;
use crate::projection::Projection;
use crate::scenario::ControlTotals;
use crate::services::{discount_factor, ServiceResult};
use std::path::Path;
use std::time::Instant;

/// The result of a run: the projection and the tables made from it.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The projection.
    pub projection: Projection,
    /// Output tables by name (`population`, `components`, `migration`, and
    /// `alignment` when the scenario aligns).
    pub tables: Vec<(&'static str, Frame)>,
    /// Demand, resources and costs of each service, in the scenario's order.
    pub services: Vec<ServiceResult>,
    /// Each unit's capacity comparison, in the order of the scenario's units (empty
    /// without units).
    pub capacity: Vec<crate::network::UnitCapacity>,
    /// Each unit's own costs, in the order of the scenario's units.
    pub unit_costs: Vec<crate::network::UnitCosts>,
    /// Trajectories and seed of the Monte Carlo run, if one was made.
    pub uncertainty: Option<(usize, u64)>,
    /// The headline figures (also written as `summary.json`).
    pub summary: crate::run::RunSummary,
    /// Each variant's own output, in the scenario's order of variants (their tables
    /// are written with the base's, each row under its scenario's name).
    pub variants: Vec<RunOutput>,
    /// Each variant's impact against its baseline: (variant, baseline, impact).
    pub impacts: Vec<(String, String, crate::run::Impact)>,
    /// With trajectories: each service's total cost in every trajectory, for the
    /// variants' impact.
    pub trajectory_costs: Option<crate::run::TrajectoryCosts>,
}

pub use crate::run::RunError;

/// The Monte Carlo settings of a scenario: its `[uncertainty]` section with the
/// command line's `trajectories` and `seed` on top; `None` when neither asks for
/// trajectories.
pub fn uncertainty_spec(
    l: &LoadedScenario,
    trajectories: Option<u32>,
    seed: Option<u64>,
) -> Option<crate::uncertainty::Spec> {
    use crate::uncertainty::{Ar1, Spec, QUANTILES};
    let u = l.file.uncertainty.clone().unwrap_or_default();
    let n = trajectories.or(u.trajectories)?;
    let ar1 = |sd: Option<f64>, ar: Option<f64>, d: Ar1| Ar1 {
        sd: sd.unwrap_or(d.sd),
        ar: ar.unwrap_or(d.ar),
    };
    Some(Spec {
        trajectories: n as usize,
        seed: seed.or(u.seed).unwrap_or(42),
        fertility: ar1(u.fertility_sd, u.fertility_ar, Ar1::FERTILITY),
        mortality: ar1(u.mortality_sd, u.mortality_ar, Ar1::MORTALITY),
        migration: ar1(u.migration_sd, u.migration_ar, Ar1::MIGRATION),
        process_noise: u.process_noise.unwrap_or(false),
        quantiles: u.quantiles.unwrap_or_else(|| QUANTILES.to_vec()),
        // Checked by `validate`; a bad key never reaches here.
        age_groups: u
            .age_groups
            .and_then(|g| g.groups().ok())
            .unwrap_or_default(),
        migration_rate: migration_rate_of(l),
    })
}

/// The scenario's `[uncertainty] migration_rate_sd` and `migration_rate_ar`, if given.
fn migration_rate_of(l: &LoadedScenario) -> Option<crate::uncertainty::MigrationRate> {
    let ar = l
        .file
        .uncertainty
        .as_ref()
        .and_then(|u| u.migration_rate_ar)
        .unwrap_or(1.0);
    l.migration_rate_sd
        .clone()
        .map(|sd| crate::uncertainty::MigrationRate { sd, ar })
}

pub use crate::uncertainty::quantile_name;

/// Runs the Monte Carlo trajectories of a scenario whose deterministic run is `out`
/// and adds the `<name>_quantiles` tables to it: population, components (when the
/// scenario's `population_quantiles` is not false), demand, resources and costs
/// (when it has services). `progress` gets (block-years done, block-years in all).
///
/// # Errors
/// [`RunError`] if the run fails. A scenario that aligns its areas is aligned in every
/// trajectory (see [`crate::uncertainty::AlignTo`]) and gets `alignment_quantiles`.
pub fn run_uncertainty(
    l: &LoadedScenario,
    out: &mut RunOutput,
    spec: &crate::uncertainty::Spec,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(), RunError> {
    // The base and each variant with the same seed: trajectory `t` of every variant
    // draws the same numbers (common random numbers). Progress runs over them all.
    let runs = 1 + l.variants.len();
    let part = |i: usize| move |done: usize, total: usize| progress(i * total + done, runs * total);
    // The variants take the buffers the base leaves.
    let mut ws = crate::uncertainty::Workspace::default();
    uncertainty_one(l, out, spec, &part(0), &mut ws)?;
    for (i, (v, vo)) in l.variants.iter().zip(&mut out.variants).enumerate() {
        // The same seed and settings; the rate spread is the variant's own, by its own
        // population's areas.
        let own = crate::uncertainty::Spec {
            migration_rate: migration_rate_of(&v.loaded),
            ..spec.clone()
        };
        uncertainty_one(&v.loaded, vo, &own, &part(i + 1), &mut ws)?;
    }
    add_impacts(l, out);
    Ok(())
}

fn uncertainty_one(
    l: &LoadedScenario,
    out: &mut RunOutput,
    spec: &crate::uncertainty::Spec,
    progress: &(dyn Fn(usize, usize) + Sync),
    ws: &mut crate::uncertainty::Workspace,
) -> Result<(), RunError> {
    use crate::uncertainty::Summary;
    let pop_q = l
        .file
        .uncertainty
        .as_ref()
        .and_then(|u| u.population_quantiles)
        .unwrap_or(true);
    let has_services = !l.scenario.services.is_empty();
    let mc = crate::run::monte_carlo_in(&l.scenario, &out.services, spec, pop_q, progress, ws)?;
    let names: Vec<String> = std::iter::once("mean".to_string())
        .chain(mc.levels.iter().map(|q| quantile_name(*q)))
        .collect();
    // The quantile twin of a deterministic table: its first `keys` columns, then the
    // summary columns in the table's row order.
    let twin = |det: &Frame, keys: usize, rows: &dyn Fn(&mut Visit<'_>)| -> Frame {
        let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(det.height()); names.len()];
        // Empty where a statistic is not a number (an alignment factor where the
        // control was shared out).
        rows(&mut |sm: &Summary, cell: usize| {
            cols[0].push(sm.mean[cell]);
            for (c, q) in cols[1..].iter_mut().zip(&sm.q) {
                c.push(q[cell]);
            }
        });
        let mut columns: Vec<(String, ColumnData)> = det.columns[..keys].to_vec();
        columns.extend(
            names
                .iter()
                .cloned()
                .zip(cols.into_iter().map(ColumnData::Float)),
        );
        Frame { columns }
    };
    let tables = &out.tables;
    let det = |name: &str| tables.iter().find(|(n, _)| *n == name).map(|(_, f)| f);
    let (na, ny) = (l.scenario.population.areas().len(), mc.years.len());
    // Each quantile table is built on its own (they are independent), in parallel,
    // and they are kept in this order.
    type Job<'j> = Box<dyn Fn() -> Option<(&'static str, Frame)> + Send + Sync + 'j>;
    let mut jobs: Vec<Job<'_>> = Vec::new();
    jobs.push(Box::new(|| {
        let (p, d) = (mc.population.as_ref()?, det("population")?);
        // Keyed scenario, area, sex (female, male, all), age_group, year; the cells
        // run in that order.
        let ng = mc.age_groups.len();
        let rows = na * 3 * ng * ny;
        let code = |f: &dyn Fn(usize) -> usize| (0..rows).map(|r| f(r) as u32).collect();
        let mut keys = vec![
            d.columns[0].clone(),
            d.columns[1].clone(),
            d.columns[2].clone(),
        ];
        keys[0].1 = text(rows, &l.scenario.name);
        keys[1].1 = ColumnData::Coded {
            levels: l.scenario.population.areas().to_vec(),
            codes: code(&|r| r / (3 * ng * ny)),
        };
        keys[2].1 = ColumnData::Coded {
            levels: ["female", "male", "all"].map(String::from).to_vec(),
            codes: code(&|r| r / (ng * ny) % 3),
        };
        keys.push((
            "age_group".into(),
            ColumnData::Coded {
                levels: mc.age_groups.clone(),
                codes: code(&|r| r / ny % ng),
            },
        ));
        keys.push((
            "year".into(),
            ColumnData::Int((0..rows).map(|r| i64::from(mc.years[r % ny])).collect()),
        ));
        let mut frame = twin(d, 0, &|f| (0..rows).for_each(|cell| f(p, cell)));
        keys.append(&mut frame.columns);
        Some(("population_quantiles", Frame { columns: keys }))
    }));
    jobs.push(Box::new(|| {
        let (c, d) = (mc.components.as_ref()?, det("components")?);
        // In the order of the Monte Carlo components.
        const COMPONENTS: [&str; crate::uncertainty::COMPONENTS] = [
            "births",
            "deaths",
            "in_migration",
            "out_migration",
            "unmet_out_migration",
            "net_migration",
        ];
        let nyp = mc.projected.len();
        let n = na * 2 * nyp;
        // Long: one row per component after the component table's keys.
        let mut frame = twin(d, 0, &|f| {
            for cell in 0..n {
                for comp in c {
                    f(comp, cell);
                }
            }
        });
        let mut keys: Vec<(String, ColumnData)> = d.columns[..4]
            .iter()
            .map(|(name, col)| (name.clone(), rows_repeated(col, COMPONENTS.len())))
            .collect();
        keys.push((
            "component".into(),
            ColumnData::Coded {
                levels: COMPONENTS.iter().map(ToString::to_string).collect(),
                codes: (0..n * COMPONENTS.len())
                    .map(|i| (i % COMPONENTS.len()) as u32)
                    .collect(),
            },
        ));
        keys.append(&mut frame.columns);
        Some(("components_quantiles", Frame { columns: keys }))
    }));
    jobs.push(Box::new(|| {
        let (m, d) = (mc.migration.as_ref()?, det("migration")?);
        // The migration table's rows: area, sex, year, then each flow (and a closed
        // system's arrivals after its movers).
        let nyp = mc.projected.len();
        Some((
            "migration_quantiles",
            twin(d, 6, &|f| {
                for i in 0..na * 2 {
                    for kp in 0..nyp {
                        for row in m {
                            f(row, i * nyp + kp);
                        }
                    }
                }
            }),
        ))
    }));
    jobs.push(Box::new(|| {
        let (a, d) = (mc.alignment.as_ref()?, det("alignment")?);
        // The alignment table's rows: parent, sex, age, then the aligned years.
        Some((
            "alignment_quantiles",
            twin(d, 5, &|f| {
                for cell in 0..a.mean.len() {
                    f(a, cell);
                }
            }),
        ))
    }));
    jobs.push(Box::new(|| {
        let d = det("demand").filter(|_| has_services)?;
        Some((
            "demand_quantiles",
            twin(d, 5, &|f| {
                for sv in &mc.services {
                    for cell in 0..sv.demand.mean.len() {
                        f(&sv.demand, cell);
                    }
                }
            }),
        ))
    }));
    jobs.push(Box::new(|| {
        let d = det("resources").filter(|_| has_services)?;
        Some((
            "resources_quantiles",
            twin(d, 5, &|f| {
                for sv in &mc.services {
                    for cell in 0..na * ny {
                        for (_, r) in &sv.resources {
                            f(r, cell);
                        }
                    }
                }
            }),
        ))
    }));
    jobs.push(Box::new(|| {
        let d = det("costs").filter(|_| has_services)?;
        Some((
            "costs_quantiles",
            twin(d, 5, &|f| {
                for sv in &mc.services {
                    for cell in 0..na * ny {
                        for c in &sv.costs {
                            f(c, cell);
                        }
                    }
                }
            }),
        ))
    }));
    jobs.push(Box::new(|| {
        let whole = |sm: &Summary| sm.mean.len() == ny;
        let d = det("totals").filter(|_| mc.services.iter().all(|s| whole(&s.total_demand)))?;
        // Per service and year: demand, then the total cost (when costs are summed).
        let quantities: Vec<&str> = if mc.services.iter().all(|s| whole(&s.total_cost)) {
            vec!["demand", "cost_eur"]
        } else {
            vec!["demand"]
        };
        let nq = quantities.len();
        let mut frame = twin(d, 0, &|f| {
            for sv in &mc.services {
                for k in 0..ny {
                    f(&sv.total_demand, k);
                    if nq == 2 {
                        f(&sv.total_cost, k);
                    }
                }
            }
        });
        let mut keys: Vec<(String, ColumnData)> = d.columns[..3]
            .iter()
            .map(|(name, col)| (name.clone(), rows_repeated(col, nq)))
            .collect();
        keys.push((
            "quantity".into(),
            ColumnData::Coded {
                levels: quantities.iter().map(ToString::to_string).collect(),
                codes: (0..d.height() * nq).map(|i| (i % nq) as u32).collect(),
            },
        ));
        keys.append(&mut frame.columns);
        Some(("totals_quantiles", Frame { columns: keys }))
    }));
    jobs.push(Box::new(|| {
        // A unit's own costs (premises, fixed, investment) do not depend on the
        // population: in every trajectory they are the deterministic run's, and so is
        // each statistic of them.
        let d = det("unit_costs")?;
        let cost = d.columns.iter().find(|(n, _)| n == "cost_eur")?.1.clone();
        let mut columns: Vec<(String, ColumnData)> = d.columns[..5].to_vec();
        columns.extend(names.iter().map(|n| (n.clone(), cost.clone())));
        Some(("unit_costs_quantiles", Frame { columns }))
    }));
    let projection = &out.projection;
    jobs.push(Box::new(|| {
        let net = l.scenario.network.as_ref()?;
        Some((
            "capacity_quantiles",
            capacity_quantiles(l, net, projection, &mc, &names),
        ))
    }));
    let added: Vec<(&str, Frame)> = {
        use rayon::prelude::*;
        jobs.par_iter().filter_map(|job| job()).collect()
    };
    drop(jobs);
    out.summary = crate::run::summarise(
        &l.scenario,
        &out.projection,
        &out.services,
        &out.capacity,
        &out.unit_costs,
        Some(&mc),
    );
    out.tables.extend(added);
    out.uncertainty = Some((spec.trajectories, spec.seed));
    out.trajectory_costs = Some(crate::run::TrajectoryCosts::of(&mc));
    Ok(())
}

/// Each unit's Monte Carlo summaries in the scenario's order of units (they come
/// service by service); `None` for a unit without any.
fn unit_summaries_in_order<'m>(
    net: &crate::network::Network,
    mc: &'m crate::uncertainty::McResult,
) -> Vec<Option<&'m crate::uncertainty::UnitSummary>> {
    let mut by_unit = vec![None; net.units().len()];
    let order = (0..mc.services.len()).flat_map(|i| net.units_of(i));
    for (u, sm) in order.zip(mc.services.iter().flat_map(|s| &s.units)) {
        by_unit[u] = Some(sm);
    }
    by_unit
}

/// The `capacity_quantiles` table: the capacity table's keys `scenario, unit,
/// service, year`, then `quantity` (demand, utilisation, shortage, and
/// floor_area_need_m2 where the service has a floor area), the mean and quantiles of
/// that quantity, and `p_shortage`, the share of trajectories with a shortage in that
/// unit and year (the same on each of its rows).
fn capacity_quantiles(
    l: &LoadedScenario,
    net: &crate::network::Network,
    p: &Projection,
    mc: &crate::uncertainty::McResult,
    names: &[String],
) -> Frame {
    const QUANTITIES: [&str; 4] = ["demand", "utilisation", "shortage", "floor_area_need_m2"];
    let ny = p.years.len();
    let by_unit = unit_summaries_in_order(net, mc);
    let k = QUANTITIES.len();
    let mut keys = capacity_keys(l, net, p, k);
    let mut stats: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut p_shortage = Vec::new();
    let mut keep = Vec::new();
    for sm in &by_unit {
        // A unit without summaries (none are made when no demand is summed) has no
        // rows.
        let Some(sm) = sm else {
            keep.extend(std::iter::repeat_n(false, ny * k));
            continue;
        };
        for y in 0..ny {
            let rows = [
                Some(&sm.demand),
                Some(&sm.utilisation),
                Some(&sm.shortage),
                sm.floor_area_need_m2.as_ref(),
            ];
            for row in rows {
                keep.push(row.is_some());
                let Some(row) = row else { continue };
                stats[0].push(row.mean[y]);
                for (c, q) in stats[1..].iter_mut().zip(&row.q) {
                    c.push(q[y]);
                }
                p_shortage.push(sm.p_shortage[y]);
            }
        }
    }
    // Rows of a quantity the service does not have are left out.
    for (_, col) in &mut keys {
        *col = col.filter_rows(&keep);
    }
    keys.push((
        "quantity".into(),
        ColumnData::Coded {
            levels: QUANTITIES.iter().map(ToString::to_string).collect(),
            codes: (0..keep.len())
                .filter(|i| keep[*i])
                .map(|i| (i % k) as u32)
                .collect(),
        },
    ));
    keys.extend(
        names
            .iter()
            .cloned()
            .zip(stats.into_iter().map(ColumnData::Float)),
    );
    keys.push(("p_shortage".into(), ColumnData::Float(p_shortage)));
    Frame { columns: keys }
}

/// Called with each summary cell of a quantile table, in the table's row order.
type Visit<'v> = dyn FnMut(&crate::uncertainty::Summary, usize) + 'v;

/// Each row of a column repeated `k` times.
fn rows_repeated(c: &ColumnData, k: usize) -> ColumnData {
    match c {
        // Row `i` is the pattern's row `i / k`: the same pattern, `k` times slower.
        ColumnData::Repeat { values, each, len } => {
            ColumnData::repeat(values.as_ref().clone(), each * k, len * k)
        }
        _ => c.pick(&(0..c.len() * k).map(|i| i / k.max(1)).collect::<Vec<_>>()),
    }
}

/// Projects a loaded scenario, evaluates its services and builds its output tables:
/// `population`, `components`, `migration`, then `demand`, `resources` and `costs`
/// when the scenario has services, and `alignment` when it aligns.
///
/// # Errors
/// [`RunError`] if a year cannot be projected or a service evaluated.
pub fn run(l: &LoadedScenario) -> Result<RunOutput, RunError> {
    let mut out = run_one(l)?;
    for v in &l.variants {
        out.variants.push(run_one(&v.loaded)?);
    }
    add_impacts(l, &mut out);
    if !l.area_names.is_empty() {
        out.tables.push(("areas", areas_table(l)));
    }
    Ok(out)
}

/// The `areas` table: area, name, parent (empty where none), from `[areas] file`, in
/// the population's order of areas.
pub fn areas_table(l: &LoadedScenario) -> Frame {
    let n = &l.area_names;
    Frame {
        columns: vec![
            (
                "area".into(),
                ColumnData::Text(n.iter().map(|a| a.area.clone()).collect()),
            ),
            (
                "name".into(),
                ColumnData::Text(n.iter().map(|a| a.name.clone()).collect()),
            ),
            (
                "parent".into(),
                ColumnData::Text(
                    n.iter()
                        .map(|a| a.parent.clone().unwrap_or_default())
                        .collect(),
                ),
            ),
        ],
    }
}

/// Each variant's impact against its baseline (MODEL.md §10): the `impact` table,
/// `RunOutput::impacts` and the variants' part of the summary. Nothing without
/// variants.
fn add_impacts(l: &LoadedScenario, out: &mut RunOutput) {
    if l.variants.is_empty() {
        return;
    }
    let ids = |s: &LoadedScenario| -> Vec<String> {
        s.scenario.services.iter().map(|sv| sv.id.clone()).collect()
    };
    let output_of = |name: &str| -> Option<&RunOutput> {
        if name == l.scenario.name {
            return Some(out);
        }
        l.variants
            .iter()
            .position(|v| v.variant.name == name)
            .map(|i| &out.variants[i])
    };
    let mut impacts = Vec::new();
    let mut figures = Vec::new();
    let mut trajectory_impacts = Vec::new();
    for (v, vo) in l.variants.iter().zip(&out.variants) {
        let baseline = l.baseline_of(v);
        let (Some(bo), Some(bs)) = (output_of(baseline), l.named(baseline)) else {
            continue;
        };
        let (vids, bids) = (ids(&v.loaded), ids(bs));
        let (vus, bus) = (unit_services(&v.loaded), unit_services(bs));
        let vc = crate::run::CostSources {
            services: &vo.services,
            ids: &vids,
            unit_costs: &vo.unit_costs,
            unit_services: &vus,
        };
        let bc = crate::run::CostSources {
            services: &bo.services,
            ids: &bids,
            unit_costs: &bo.unit_costs,
            unit_services: &bus,
        };
        let years = &vo.projection.years;
        let impact = crate::run::impact(&vc, &bc, years, l.scenario.discount_rate);
        let mut fig = crate::run::VariantFigures::new(
            &v.variant.name,
            v.variant.description.as_deref(),
            baseline,
            &impact,
            vo.summary.clone(),
        );
        if let (Some(vm), Some(bm)) = (&vo.trajectory_costs, &bo.trajectory_costs) {
            let ti = crate::run::impact_trajectories(
                (&vc, vm),
                (&bc, bm),
                years,
                l.scenario.discount_rate,
            );
            fig.add_trajectories(&ti, &vm.levels);
            trajectory_impacts.push((
                v.variant.name.clone(),
                baseline.to_string(),
                ti,
                vm.levels.clone(),
            ));
        }
        figures.push(fig);
        impacts.push((v.variant.name.clone(), baseline.to_string(), impact));
    }
    out.tables
        .retain(|(n, _)| *n != "impact" && *n != "impact_quantiles");
    out.tables.push(("impact", impact_table(&impacts)));
    if !trajectory_impacts.is_empty() {
        out.tables.push((
            "impact_quantiles",
            impact_quantiles_table(&trajectory_impacts, &out.projection.years),
        ));
    }
    out.impacts = impacts;
    out.summary.variants = figures;
}

/// The `impact_quantiles` table: the impact table's keys `scenario, baseline,
/// service, year`, then `quantity` (cost_diff_eur, cumulative_eur,
/// discounted_cumulative_eur), the mean and quantiles over the trajectories, and
/// `p_pays_back`, the share of trajectories whose discounted difference is at most 0
/// in the end year (the same on each row of a variant and service).
fn impact_quantiles_table(
    impacts: &[(String, String, crate::run::TrajectoryImpact, Vec<f64>)],
    years: &[i32],
) -> Frame {
    const QUANTITIES: [&str; 3] = [
        "cost_diff_eur",
        "cumulative_eur",
        "discounted_cumulative_eur",
    ];
    let levels = impacts.first().map_or(&[][..], |i| &i.3[..]);
    let (mut scenario, mut baseline, mut service, mut year, mut quantity) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut stats: Vec<Vec<f64>> = vec![Vec::new(); levels.len() + 1];
    let mut pays = Vec::new();
    for (v, b, ti, _) in impacts {
        for (id, sums, p) in &ti.rows {
            for (k, y) in years.iter().enumerate() {
                for (qn, sm) in QUANTITIES.iter().zip(sums) {
                    scenario.push(v.clone());
                    baseline.push(b.clone());
                    service.push(id.clone());
                    year.push(i64::from(*y));
                    quantity.push((*qn).to_string());
                    stats[0].push(sm.mean[k]);
                    for (j, q) in sm.q.iter().enumerate() {
                        stats[j + 1].push(q[k]);
                    }
                    pays.push(*p);
                }
            }
        }
    }
    let mut columns = vec![
        ("scenario".into(), ColumnData::Text(scenario)),
        ("baseline".into(), ColumnData::Text(baseline)),
        ("service".into(), ColumnData::Text(service)),
        ("year".into(), ColumnData::Int(year)),
        ("quantity".into(), ColumnData::Text(quantity)),
    ];
    let names = std::iter::once("mean".to_string()).chain(levels.iter().map(|q| quantile_name(*q)));
    for (name, col) in names.zip(stats) {
        columns.push((name, ColumnData::Float(col)));
    }
    columns.push(("p_pays_back".into(), ColumnData::Float(pays)));
    Frame { columns }
}

/// The position of each unit's service, in the network's order of units.
fn unit_services(l: &LoadedScenario) -> Vec<usize> {
    l.scenario
        .network
        .as_ref()
        .map_or_else(Vec::new, |n| n.units().iter().map(|u| u.service).collect())
}

/// The `unit_costs` table: scenario, unit, service, year, component (premises,
/// fixed, investment, total), cost_eur, discounted_cost_eur.
fn unit_costs_table(
    l: &LoadedScenario,
    net: &crate::network::Network,
    years: &[i32],
    costs: &[crate::network::UnitCosts],
) -> Frame {
    use crate::network::UNIT_COST_COMPONENTS;
    let t0 = years.first().copied().unwrap_or(0);
    let rate = l.scenario.discount_rate;
    let (mut unit, mut service, mut year, mut component) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut cost, mut discounted) = (Vec::new(), Vec::new());
    for (u, c) in net.units().iter().zip(costs) {
        for (k, y) in years.iter().enumerate() {
            for (j, comp) in c.costs.iter().enumerate() {
                unit.push(u.id.clone());
                service.push(l.scenario.services[u.service].id.clone());
                year.push(i64::from(*y));
                component.push(UNIT_COST_COMPONENTS[j].to_string());
                cost.push(comp[k]);
                discounted.push(comp[k] * discount_factor(rate, *y, t0));
            }
        }
    }
    let n = unit.len();
    Frame {
        columns: vec![
            ("scenario".into(), text(n, &l.file.scenario.name)),
            ("unit".into(), ColumnData::Text(unit)),
            ("service".into(), ColumnData::Text(service)),
            ("year".into(), ColumnData::Int(year)),
            ("component".into(), ColumnData::Text(component)),
            ("cost_eur".into(), ColumnData::Float(cost)),
            ("discounted_cost_eur".into(), ColumnData::Float(discounted)),
        ],
    }
}

/// The `impact` table: scenario, baseline, service, year, cost_diff_eur,
/// cumulative_eur, discounted_cumulative_eur; per variant its services, then `all`.
fn impact_table(impacts: &[(String, String, crate::run::Impact)]) -> Frame {
    let (mut scenario, mut baseline, mut service, mut year) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut diff, mut cum, mut disc) = (Vec::new(), Vec::new(), Vec::new());
    for (v, b, imp) in impacts {
        let all = ("all".to_string(), imp.all.clone());
        for (id, path) in imp.services.iter().chain(std::iter::once(&all)) {
            for (k, y) in imp.years.iter().enumerate() {
                scenario.push(v.clone());
                baseline.push(b.clone());
                service.push(id.clone());
                year.push(i64::from(*y));
                diff.push(path.cost_diff[k]);
                cum.push(path.cumulative[k]);
                disc.push(path.discounted[k]);
            }
        }
    }
    Frame {
        columns: vec![
            ("scenario".into(), ColumnData::Text(scenario)),
            ("baseline".into(), ColumnData::Text(baseline)),
            ("service".into(), ColumnData::Text(service)),
            ("year".into(), ColumnData::Int(year)),
            ("cost_diff_eur".into(), ColumnData::Float(diff)),
            ("cumulative_eur".into(), ColumnData::Float(cum)),
            ("discounted_cumulative_eur".into(), ColumnData::Float(disc)),
        ],
    }
}

/// The deterministic run of one scenario (the base or a variant) and its tables.
fn run_one(l: &LoadedScenario) -> Result<RunOutput, RunError> {
    let s = &l.file.scenario;
    let r = crate::run::deterministic(&l.scenario)?;
    let p = r.projection;
    let services = r.services;
    let capacity = r.capacity;
    let unit_costs = r.unit_costs;
    // Every table from the run's results, built side by side (the population's is the
    // largest), then put in their fixed order.
    type Build<'b> = Box<dyn Fn() -> Frame + Send + Sync + 'b>;
    let mut builders: Vec<(&'static str, Build<'_>)> = vec![
        ("population", Box::new(|| population_table(&s.name, &p))),
        ("components", Box::new(|| components_table(&s.name, &p))),
        ("migration", Box::new(|| migration_table(&s.name, &p))),
    ];
    if !services.is_empty() {
        builders.push(("demand", Box::new(|| demand_table(l, &p, &services))));
        builders.push(("resources", Box::new(|| resources_table(l, &p, &services))));
        builders.push((
            "costs",
            Box::new(|| costs_table(l, &p, &services, l.scenario.discount_rate)),
        ));
        builders.push(("totals", Box::new(|| totals_table(l, &p, &services))));
    }
    if let Some(net) = &l.scenario.network {
        builders.push((
            "capacity",
            Box::new(|| capacity_table(l, net, &p, &capacity)),
        ));
        if net.units().iter().any(|u| u.cost != Default::default()) {
            builders.push((
                "unit_costs",
                Box::new(|| unit_costs_table(l, net, &p.years, &unit_costs)),
            ));
        }
    }
    if let (Some(a), Some(al)) = (&l.scenario.alignment, &r.alignment) {
        builders.push((
            "alignment",
            Box::new(|| alignment_table(&s.name, &p, a, al)),
        ));
    }
    let tables: Vec<(&'static str, Frame)> = {
        use rayon::prelude::*;
        builders
            .into_par_iter()
            .map(|(name, build)| (name, build()))
            .collect()
    };
    let summary = crate::run::summarise(&l.scenario, &p, &services, &capacity, &unit_costs, None);
    Ok(RunOutput {
        projection: p,
        tables,
        services,
        capacity,
        unit_costs,
        summary,
        uncertainty: None,
        variants: Vec::new(),
        impacts: Vec::new(),
        trajectory_costs: None,
    })
}

/// The tables of a run with its variants' rows after the base's, in the base's order
/// of tables (a table only a variant has comes last).
///
/// # Errors
/// A sentence if a variant's table does not have the base's columns.
pub fn combined_tables(
    out: &RunOutput,
) -> Result<Vec<(&'static str, std::borrow::Cow<'_, Frame>)>, String> {
    use std::borrow::Cow;
    // Borrowed as they are without variants: a table is copied only to append to it.
    let mut tables: Vec<(&'static str, Cow<'_, Frame>)> = out
        .tables
        .iter()
        .map(|(n, f)| (*n, Cow::Borrowed(f)))
        .collect();
    for v in &out.variants {
        for (name, frame) in &v.tables {
            match tables.iter_mut().find(|(n, _)| n == name) {
                Some((_, t)) => t
                    .to_mut()
                    .append(frame)
                    .map_err(|e| format!("table `{name}`: {e}"))?,
                None => tables.push((name, Cow::Borrowed(frame))),
            }
        }
    }
    Ok(tables)
}

/// How [`write()`] writes a run's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableFormat {
    /// One Parquet file per table.
    #[default]
    Parquet,
    /// One CSV file per table.
    Csv,
    /// One Excel workbook, `kunta.xlsx`: a summary sheet, then a sheet per table.
    Xlsx,
}

/// What [`write()`] writes besides `summary.json` and `manifest.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// The tables' format.
    pub format: TableFormat,
    /// Also write `report.html`, in this language.
    pub report: Option<crate::report::Lang>,
    /// The language of the workbook's summary sheet.
    pub lang: crate::report::Lang,
}

/// Writes the tables, `summary.json` and `manifest.json` (and `report.html` when
/// asked) as `dir`, all or nothing: into a fresh directory beside it that replaces it
/// in one step at the end (see [`super::output`]); on failure `dir` is as it was.
///
/// # Errors
/// [`IoError`] if `dir` holds files a run does not write, or a file cannot be
/// written.
pub fn write(
    l: &LoadedScenario,
    out: &RunOutput,
    dir: &Path,
    options: WriteOptions,
    started: Instant,
) -> Result<Vec<String>, IoError> {
    // Never over the run's own inputs (the scenario file and the tables it names).
    let mut inputs: Vec<std::path::PathBuf> =
        l.files.iter().map(|f| f.path.clone().into()).collect();
    if let super::scenario::Source::File(p) = &l.source {
        inputs.push(p.clone());
    }
    super::output::refuse_inputs_inside(dir, &inputs)?;
    // Written beside `dir` and put in place whole at the end (see `io::output`).
    let set = super::output::OutputSet::create(dir)?;
    let at = set.path().to_path_buf();
    let dir = at.as_path();
    let mut written = Vec::new();
    let tables = combined_tables(out).map_err(|message| IoError::Output {
        path: dir.to_path_buf(),
        message,
    })?;
    // In the README's order of tables, each beside its quantiles (the manifest's list
    // and the workbook's sheets).
    let mut frames: Vec<(&str, &Frame)> = tables.iter().map(|(n, f)| (*n, f.as_ref())).collect();
    frames.sort_by_key(|(name, _)| table_rank(name));
    let summary = serde_json::to_value(&out.summary).map_err(|e| IoError::Output {
        path: dir.join("summary.json"),
        message: e.to_string(),
    })?;
    // `summary.json` beside the tables.
    let summary_file = || write_json(&dir.join("summary.json"), &summary);
    let summary_written = match options.format {
        TableFormat::Parquet | TableFormat::Csv => {
            let format = if options.format == TableFormat::Csv {
                Format::Csv
            } else {
                Format::Parquet
            };
            // Side by side, the largest first and each thread taking the next as soon
            // as it is free (so that no large table is begun last): each file is
            // written whole or not at all, and the first failure in the tables' order
            // is the one reported.
            let write_one = |(name, frame): &(&str, &Frame)| {
                let file = format!("{name}.{}", format.extension());
                frame.write(&dir.join(&file), format).map(|()| file)
            };
            let (files, summary_written) = rayon::join(
                || largest_first(&frames, |(_, f)| f.write_weight(), write_one),
                summary_file,
            );
            for f in files {
                written.push(f?);
            }
            summary_written
        }
        TableFormat::Xlsx => {
            let path = dir.join("kunta.xlsx");
            let lang = options.lang;
            write_atomically(&path, |file| {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
                crate::report::xlsx::write(&frames, &summary, lang, &mut w)?;
                w.into_inner()
                    .map_err(|e| e.into_error().to_string())?
                    .sync_all()
                    .map_err(|e| e.to_string())
            })?;
            written.push("kunta.xlsx".into());
            summary_file()
        }
    };
    summary_written?;
    written.push("summary.json".into());
    // Every scenario's inputs (each file once) and warnings (a variant's named).
    let mut inputs = l.files.clone();
    let mut all_warnings = warnings(l, &out.projection);
    for (v, vo) in l.variants.iter().zip(&out.variants) {
        for f in &v.loaded.files {
            if !inputs.iter().any(|i| i.path == f.path) {
                inputs.push(f.clone());
            }
        }
        all_warnings.extend(
            warnings(&v.loaded, &vo.projection)
                .into_iter()
                .filter(|w| !all_warnings.contains(w))
                .map(|w| format!("variant `{}`: {w}", v.variant.name))
                .collect::<Vec<_>>(),
        );
    }
    let mut listed = written.clone();
    if options.report.is_some() {
        listed.push("report.html".into());
    }
    let manifest = serde_json::json!({
        "kunta_version": env!("CARGO_PKG_VERSION"),
        "scenario": l.file.scenario.name,
        "scenario_file": l.source.name(),
        "inputs": inputs.iter().map(|f| serde_json::json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
        "seed": out.uncertainty.map(|u| u.1),
        "trajectories": out.uncertainty.map(|u| u.0),
        "warnings": all_warnings,
        "assumptions": assumptions(l, out),
        "tables": listed,
        "wall_time_s": started.elapsed().as_secs_f64(),
    });
    if let Some(lang) = options.report {
        let run = crate::report::RunTables {
            tables: &frames,
            summary: &summary,
            manifest: &manifest,
        };
        let html = crate::report::html(&run, lang).map_err(|message| IoError::Output {
            path: dir.join("report.html"),
            message,
        })?;
        write_atomically(&dir.join("report.html"), |mut f| {
            use std::io::Write;
            f.write_all(html.as_bytes()).map_err(|e| e.to_string())?;
            f.sync_all().map_err(|e| e.to_string())
        })?;
        written.push("report.html".into());
    }
    write_json(&dir.join("manifest.json"), &manifest)?;
    written.push("manifest.json".into());
    set.commit()?;
    Ok(written)
}

/// What the run assumed, for `manifest.json` and the report's list of inputs and
/// assumptions: the years, the price level and the discounting, the population's
/// levers and flows, each service's real cost growth, and with trajectories the
/// spreads they were drawn with.
fn assumptions(l: &LoadedScenario, out: &RunOutput) -> serde_json::Value {
    use crate::projection::{FlowForm, YearPath};
    use serde_json::json;
    let s = &l.scenario;
    let path = |p: &YearPath| match p {
        YearPath::Constant(v) => json!(v),
        YearPath::Linear { from, to } => json!({"from": [from.0, from.1], "to": [to.0, to.1]}),
    };
    let population = s.inputs.as_ref().map(|i| {
        // The total fertility the table gives in the first projected year, lowest
        // and highest over the areas (before any TFR target).
        let implied = i
            .year_rates(&s.population, s.base_year, s.base_year + 1)
            .ok()
            .map(|r| {
                let sums: Vec<f64> = r
                    .fertility
                    .rows()
                    .into_iter()
                    .map(|row| row.sum())
                    .collect();
                let lo = sums.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = sums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                json!({"year": s.base_year + 1, "lowest": lo, "highest": hi})
            });
        json!({
            "tfr": i.tfr.as_ref().map(path),
            "tfr_of_table": implied,
            "boys_share": i.boys_share,
            "mortality_improvement": i.improvement,
            "migration": i.flows.iter().map(|f| json!({
                "name": f.name,
                "direction": f.direction.as_str(),
                "form": match f.form {
                    FlowForm::Counts(_) => "counts",
                    FlowForm::TotalProfile { .. } => "total × profile",
                    FlowForm::OutRates(_) => "rates",
                },
                "multiplier": f.multiplier.as_ref().map(path),
                "closed_system": f.destinations.is_some(),
            })).collect::<Vec<_>>(),
        })
    });
    // A service's growth per component: the largest of its segments' (they are
    // usually the same).
    let growth: Vec<serde_json::Value> = s
        .services
        .iter()
        .map(|sv| {
            let most = |c: usize| {
                sv.segments
                    .iter()
                    .map(|g| g.cost.growth[c])
                    .fold(0.0_f64, |m, v| if v.abs() > m.abs() { v } else { m })
            };
            json!({
                "service": sv.id,
                "units": most(0),
                "premises": most(1),
                "staff": most(2),
                "fixed": most(3),
            })
        })
        .collect();
    let spec = out
        .uncertainty
        .and_then(|(n, seed)| uncertainty_spec(l, u32::try_from(n).ok(), Some(seed)));
    let uncertainty = spec.map(|u| {
        let ar1 = |a: crate::uncertainty::Ar1| json!({"sd": a.sd, "ar": a.ar});
        json!({
            "trajectories": u.trajectories,
            "seed": u.seed,
            "fertility": ar1(u.fertility),
            "mortality": ar1(u.mortality),
            "migration": ar1(u.migration),
            "process_noise": u.process_noise,
            "migration_rate": u.migration_rate.map(|m| json!({"ar": m.ar})),
        })
    });
    json!({
        "base_year": s.base_year,
        "end_year": s.end_year,
        "price_year": s.base_year,
        "discount_rate": s.discount_rate,
        "population": population,
        "cost_growth": growth,
        "uncertainty": uncertainty,
    })
}

/// `f` of every item, on the current thread pool, the items taken in decreasing
/// `weight` (each thread taking the next as soon as it is free); the results in the
/// items' order.
fn largest_first<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weight(&items[i])));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let workers = rayon::current_num_threads().clamp(1, items.len().max(1));
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = f(&items[i]);
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item is taken")
        })
        .collect()
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), IoError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| IoError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })? + "\n";
    write_atomically(path, |mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    })
}

/// The `alignment` table: scenario, parent, sex, age, year, factor (empty where the
/// children were all 0 and the control was shared out).
fn alignment_table(
    scenario: &str,
    p: &Projection,
    a: &ControlTotals,
    al: &crate::run::AlignmentResult,
) -> Frame {
    let nx = p.population.dim().3;
    let (mut parent, mut sex, mut age, mut year, mut factor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (pi, code) in a.control.areas().iter().enumerate() {
        for s in Sex::ALL {
            for x in 0..nx {
                for &k in &al.slots {
                    let f = al.factors[[k, pi, s.index(), x]];
                    parent.push(code.clone());
                    sex.push(s.as_str().to_string());
                    age.push(x as i64);
                    year.push(i64::from(p.years[k]));
                    factor.push(f);
                }
            }
        }
    }
    let n = parent.len();
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            ("parent".into(), ColumnData::Text(parent)),
            ("sex".into(), ColumnData::Text(sex)),
            ("age".into(), ColumnData::Int(age)),
            ("year".into(), ColumnData::Int(year)),
            ("factor".into(), ColumnData::Float(factor)),
        ],
    }
}

/// Where table `name` goes among the tables written: in the README's order, each
/// table's `_quantiles` right after it, any other table last.
fn table_rank(name: &str) -> (usize, bool) {
    use super::output::TABLES as ORDER;
    let base = name.strip_suffix("_quantiles");
    let at = ORDER
        .iter()
        .position(|t| *t == base.unwrap_or(name))
        .unwrap_or(ORDER.len());
    (at, base.is_some())
}

/// Skipped rows and unmet out-migration, for the manifest and the user.
pub fn warnings(l: &LoadedScenario, p: &Projection) -> Vec<String> {
    let mut w = l.notes.clone();
    // One line per area whose unmet out-migration adds up to at least
    // `UNMET_WARNING` persons over all years: its total and its worst year.
    for (a, area) in p.areas.iter().enumerate() {
        let by_year: Vec<(i32, f64)> = p
            .components
            .iter()
            .enumerate()
            .filter_map(|(k, c)| Some((p.years[k], c.as_ref()?.unmet_out_migration.row(a).sum())))
            .collect();
        let total: f64 = by_year.iter().map(|(_, v)| v).sum();
        if total < UNMET_WARNING {
            continue;
        }
        let (worst, most) = by_year
            .iter()
            .copied()
            .fold((0, 0.0), |b, c| if c.1 > b.1 { c } else { b });
        w.push(format!(
            "unmet out-migration of {total:.1} persons in area `{area}` (most in {worst}: {most:.1}): the out-flows exceeded the population"
        ));
    }
    w
}

/// Unmet out-migration below this many persons in an area over all years is not
/// warned of (the `unmet_out_migration` component still holds every cell).
pub const UNMET_WARNING: f64 = 0.5;

#[cfg(test)]
mod tests {
    use super::{largest_first, table_rank};
    use std::sync::Mutex;

    /// Tables go in the README's order, each table's quantiles right after it, and a
    /// table kunta does not know last.
    #[test]
    fn tables_are_listed_each_beside_its_quantiles() {
        let mut names = vec![
            "totals_quantiles",
            "costs",
            "population_quantiles",
            "other",
            "totals",
            "population",
            "costs_quantiles",
            "areas",
        ];
        names.sort_by_key(|n| table_rank(n));
        assert_eq!(
            names,
            [
                "population",
                "population_quantiles",
                "costs",
                "costs_quantiles",
                "totals",
                "totals_quantiles",
                "areas",
                "other"
            ]
        );
    }

    /// Every item is taken once, the heaviest first, and the results come back in the
    /// items' order.
    #[test]
    fn largest_first_takes_the_heaviest_first_and_keeps_the_order() {
        let items: Vec<usize> = vec![3, 40, 7, 0, 25, 25, 1];
        let taken = Mutex::new(Vec::new());
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let out = one.install(|| {
            largest_first(
                &items,
                |w| *w,
                |w| {
                    taken.lock().unwrap().push(*w);
                    w * 2
                },
            )
        });
        assert_eq!(out, [6, 80, 14, 0, 50, 50, 2]);
        assert_eq!(*taken.lock().unwrap(), [40, 25, 25, 7, 3, 1, 0]);
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let out = two.install(|| largest_first(&items, |w| *w, |w| w + 1));
        assert_eq!(out, [4, 41, 8, 1, 26, 26, 2]);
        assert!(largest_first(&[] as &[usize], |w| *w, |w| *w).is_empty());
    }
}
