//! The headline figures of a run: what `summary.json` holds and `kunta run` prints.

use super::RunResult;
use crate::network::{UnitCapacity, UnitCosts};
use crate::projection::Projection;
use crate::scenario::ValidScenario;
use crate::services::{ServiceResult, COST_COMPONENTS};
use crate::uncertainty::{quantile_name, McResult, Summary};
use serde::ser::{Serialize, SerializeMap, Serializer};

/// The headline figures of a run (`summary.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// The scenario's name.
    pub scenario: String,
    /// The base year.
    pub base_year: i32,
    /// The last year.
    pub end_year: i32,
    /// Population of every area in the base year.
    pub population_first: f64,
    /// Population of every area in the last year.
    pub population_last: f64,
    /// The number of years projected (not given by a published forecast).
    pub projected_years: usize,
    /// Births of every projected year.
    pub births: f64,
    /// Deaths of every projected year.
    pub deaths: f64,
    /// Net migration of every projected year.
    pub net_migration: f64,
    /// Out-migration that found nobody to leave, over every projected year.
    pub unmet_out_migration: f64,
    /// Per area, in the population's order.
    pub areas: Vec<AreaFigures>,
    /// The discount rate of the present values.
    pub discount_rate: f64,
    /// Per service, in the scenario's order.
    pub services: Vec<ServiceFigures>,
    /// The present value of the scenario's total cost: every service's and every
    /// unit's own costs.
    pub present_value_eur: f64,
    /// The present value of the units' own costs (premises, fixed, investments).
    pub unit_costs_present_value_eur: f64,
    /// Per unit of the service network, in the network's order.
    pub units: Vec<UnitFigures>,
    /// With trajectories: how many, their seed and quantile levels.
    #[serde(flatten)]
    pub uncertainty: Option<UncertaintyFigures>,
    /// The variants run beside this scenario (MODEL.md §10), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantFigures>,
}

/// A variant against its baseline, and its own figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantFigures {
    /// The variant's name.
    pub name: String,
    /// What it changes, in words.
    pub description: Option<String>,
    /// The scenario it is compared with.
    pub baseline: String,
    /// Its total cost minus the baseline's in the base year.
    pub cost_diff_first_eur: f64,
    /// Its total cost minus the baseline's in the last year.
    pub cost_diff_last_eur: f64,
    /// The present value of the difference (`discounted(T)`).
    pub present_value_diff_eur: f64,
    /// The break-even year (MODEL.md §10): none if it never pays back by the end year.
    pub break_even_year: Option<i32>,
    /// With trajectories: the difference's spread.
    #[serde(flatten)]
    pub uncertainty: Option<VariantChances>,
    /// The variant's own headline figures.
    pub summary: RunSummary,
}

/// A variant's difference under uncertainty (common random numbers).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VariantChances {
    /// The share of trajectories in which the variant has paid back by the end year
    /// (its discounted difference at most 0).
    pub p_pays_back: f64,
    /// The present value of the difference over the trajectories.
    pub present_value_diff_quantiles_eur: Interval,
    /// The break-even year's quantiles (none where that share of trajectories has
    /// not paid back by the end year).
    pub break_even_year_quantiles: Named<Option<i32>>,
}

impl VariantFigures {
    /// The figures of variant `name` (with `description`) from its `impact` against
    /// `baseline` and its own `summary`.
    pub fn new(
        name: &str,
        description: Option<&str>,
        baseline: &str,
        impact: &super::Impact,
        summary: RunSummary,
    ) -> VariantFigures {
        let diff = &impact.all.cost_diff;
        VariantFigures {
            name: name.to_string(),
            description: description.map(str::to_string),
            baseline: baseline.to_string(),
            cost_diff_first_eur: diff.first().copied().unwrap_or(0.0),
            cost_diff_last_eur: diff.last().copied().unwrap_or(0.0),
            present_value_diff_eur: impact.all.present_value(),
            break_even_year: impact.break_even_year(),
            uncertainty: None,
            summary,
        }
    }

    /// Adds the spread of the difference over the trajectories `ti`, summarised at
    /// the quantile `levels`.
    pub fn add_trajectories(&mut self, ti: &super::TrajectoryImpact, levels: &[f64]) {
        let Some((_, sums, p)) = ti.rows.iter().find(|(id, _, _)| id == "all") else {
            return;
        };
        let names: Vec<String> = levels.iter().map(|q| quantile_name(*q)).collect();
        let last = sums[2].mean.len().saturating_sub(1);
        // Break-even years as numbers, a trajectory that never pays back after all.
        let mut years: Vec<f64> = ti
            .break_even
            .iter()
            .map(|y| y.map_or(f64::INFINITY, f64::from))
            .collect();
        let (_, q) = crate::uncertainty::summarise(&mut years, levels);
        self.uncertainty = Some(VariantChances {
            p_pays_back: *p,
            present_value_diff_quantiles_eur: Interval::of(&sums[2], last, &names),
            break_even_year_quantiles: Named(
                names
                    .iter()
                    .zip(q)
                    .map(|(n, y)| (n.clone(), y.is_finite().then(|| y.round() as i32)))
                    .collect(),
            ),
        });
    }
}

/// An area's population in the first and last year.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AreaFigures {
    /// The area's code.
    pub area: String,
    /// Its population in the base year.
    pub population_first: f64,
    /// Its population in the last year.
    pub population_last: f64,
}

/// A value in the first and last year.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FirstLast {
    /// In the base year.
    pub first: f64,
    /// In the last year.
    pub last: f64,
}

/// A segment's demand in the first and last year.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentFigures {
    /// The segment's id.
    pub segment: String,
    /// Its demand of every area in the base year.
    pub demand_first: f64,
    /// Its demand of every area in the last year.
    pub demand_last: f64,
}

/// A service's demand, resources and costs for the whole municipality.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceFigures {
    /// The service's id.
    pub service: String,
    /// Its name.
    pub name: String,
    /// What one unit of its demand is.
    pub unit: String,
    /// The base year.
    pub first_year: i32,
    /// The last year.
    pub last_year: i32,
    /// Demand in the base year.
    pub demand_first: f64,
    /// Demand in the last year.
    pub demand_last: f64,
    /// `demand_last − demand_first`.
    pub demand_change: f64,
    /// The change in per cent of the first year's demand (none when it was 0).
    pub demand_change_pct: Option<f64>,
    /// Per segment.
    pub segments: Vec<SegmentFigures>,
    /// The resources the service defines, by name.
    pub resources: Named<FirstLast>,
    /// Total cost in the base year.
    pub cost_first_eur: f64,
    /// Total cost in the last year.
    pub cost_last_eur: f64,
    /// Present value of the total cost.
    pub present_value_eur: f64,
    /// Present value of each cost component.
    pub present_value_by_component_eur: Named<f64>,
    /// With trajectories: the intervals.
    #[serde(flatten)]
    pub uncertainty: Option<ServiceIntervals>,
}

/// A service's intervals under uncertainty.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceIntervals {
    /// Demand in the last year.
    pub demand_last_quantiles: Interval,
    /// Total cost in the last year.
    pub cost_last_quantiles_eur: Interval,
    /// Present value of the total cost.
    pub present_value_quantiles_eur: Interval,
}

/// A unit's places against its demand.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitFigures {
    /// The unit's id.
    pub unit: String,
    /// The id of its service.
    pub service: String,
    /// Places in the base year.
    pub capacity_first: f64,
    /// Places in the last year.
    pub capacity_last: f64,
    /// Demand sent to it in the base year.
    pub demand_first: f64,
    /// Demand sent to it in the last year.
    pub demand_last: f64,
    /// `demand / capacity` in the base year (none without places).
    pub utilisation_first: Option<f64>,
    /// `demand / capacity` in the last year (none without places).
    pub utilisation_last: Option<f64>,
    /// Shortage in the last year.
    pub shortage_last: f64,
    /// The first year with a shortage, if any.
    pub first_shortage_year: Option<i32>,
    /// `demand / capacity` in the first year with a shortage: below 1 when the spare
    /// target makes the shortage.
    pub utilisation_at_first_shortage: Option<f64>,
    /// The share of places kept spare: a shortage starts above `1 − spare_target` use.
    pub spare_target: f64,
    /// The present value of its own costs.
    pub present_value_eur: f64,
    /// With trajectories: the probability of a shortage.
    #[serde(flatten)]
    pub uncertainty: Option<UnitChances>,
}

/// A unit's chances of a shortage under uncertainty.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnitChances {
    /// The share of trajectories short of places in the last year.
    pub p_shortage_last: f64,
    /// The first year at least half of the trajectories are short of places.
    pub first_year_p_shortage_half: Option<i32>,
}

/// How many trajectories ran, their seed and quantile levels.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UncertaintyFigures {
    /// The quantile levels' names (`p05`, …).
    pub quantiles: Vec<String>,
    /// The number of trajectories.
    pub trajectories: usize,
    /// Their seed.
    pub seed: u64,
}

impl UncertaintyFigures {
    /// The lowest and the highest quantile level's names (`p05` and `p95` by default),
    /// the interval a summary shows.
    pub fn outer(&self) -> (&str, &str) {
        (
            self.quantiles.first().map_or("p05", String::as_str),
            self.quantiles.last().map_or("p95", String::as_str),
        )
    }
}

/// The mean and quantiles of one value, written as a map `{mean, p05, …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The mean over the trajectories.
    pub mean: f64,
    /// Each quantile level's name and value, in ascending order.
    pub quantiles: Vec<(String, f64)>,
}

impl Interval {
    fn of(sm: &Summary, cell: usize, names: &[String]) -> Interval {
        Interval {
            mean: sm.mean[cell],
            quantiles: names
                .iter()
                .zip(&sm.q)
                .map(|(n, q)| (n.clone(), q[cell]))
                .collect(),
        }
    }

    /// The value of the quantile named `name` (`p05`).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.quantiles
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.quantiles.len() + 1))?;
        m.serialize_entry("mean", &self.mean)?;
        for (n, v) in &self.quantiles {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

/// Values by name, in order, written as a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Named<T>(pub Vec<(String, T)>);

impl<T> Named<T> {
    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (n, v) in &self.0 {
            m.serialize_entry(n, v)?;
        }
        m.end()
    }
}

impl RunResult {
    /// The run's headline figures; `s` is the scenario it ran.
    pub fn summary(&self, s: &ValidScenario) -> RunSummary {
        summarise(
            s,
            &self.projection,
            &self.services,
            &self.capacity,
            &self.unit_costs,
            self.monte_carlo.as_ref(),
        )
    }
}

/// The headline figures of a run of `s` from its parts (what
/// [`RunResult::summary`] gives).
pub fn summarise(
    s: &ValidScenario,
    projection: &Projection,
    services: &[ServiceResult],
    capacity: &[UnitCapacity],
    unit_costs: &[UnitCosts],
    mc: Option<&McResult>,
) -> RunSummary {
    let parts = Parts {
        projection,
        services,
        capacity,
        unit_costs,
    };
    parts.summary(s, mc)
}

struct Parts<'r> {
    projection: &'r Projection,
    services: &'r [ServiceResult],
    capacity: &'r [UnitCapacity],
    unit_costs: &'r [UnitCosts],
}

impl Parts<'_> {
    fn summary(&self, s: &ValidScenario, mc: Option<&McResult>) -> RunSummary {
        let p = self.projection;
        let last = p.years.len() - 1;
        let total = |k: usize, a: Option<usize>| -> f64 {
            let y = p.population.index_axis(ndarray::Axis(0), k);
            match a {
                None => y.sum(),
                Some(a) => y.index_axis(ndarray::Axis(0), a).sum(),
            }
        };
        let sum_comp = |f: &dyn Fn(&crate::projection::YearComponents) -> f64| -> f64 {
            p.components.iter().flatten().map(f).sum()
        };
        let names: Vec<String> = mc
            .map(|mc| mc.levels.iter().map(|q| quantile_name(*q)).collect())
            .unwrap_or_default();
        RunSummary {
            scenario: s.name.clone(),
            base_year: p.years[0],
            end_year: p.years[last],
            population_first: total(0, None),
            population_last: total(last, None),
            projected_years: p.components.iter().filter(|c| c.is_some()).count(),
            births: sum_comp(&|c| c.births.sum()),
            deaths: sum_comp(&|c| c.deaths.sum()),
            net_migration: sum_comp(&|c| c.net_migration().sum()),
            unmet_out_migration: sum_comp(&|c| c.unmet_out_migration.sum()),
            areas: p
                .areas
                .iter()
                .enumerate()
                .map(|(a, code)| AreaFigures {
                    area: code.clone(),
                    population_first: total(0, Some(a)),
                    population_last: total(last, Some(a)),
                })
                .collect(),
            discount_rate: s.discount_rate,
            services: self.service_figures(s, mc, &names),
            present_value_eur: self
                .services
                .iter()
                .map(|r| r.present_value[5])
                .sum::<f64>()
                + self
                    .unit_costs
                    .iter()
                    .map(UnitCosts::present_value)
                    .sum::<f64>(),
            unit_costs_present_value_eur: self
                .unit_costs
                .iter()
                .map(UnitCosts::present_value)
                .sum(),
            units: self.unit_figures(s, mc),
            uncertainty: mc.map(|mc| UncertaintyFigures {
                quantiles: names.clone(),
                trajectories: mc.trajectories,
                seed: mc.seed,
            }),
            variants: Vec::new(),
        }
    }

    fn service_figures(
        &self,
        s: &ValidScenario,
        mc: Option<&McResult>,
        names: &[String],
    ) -> Vec<ServiceFigures> {
        let p = self.projection;
        let last = p.years.len() - 1;
        s.services
            .iter()
            .zip(self.services)
            .enumerate()
            .map(|(i, (sv, res))| {
                let demand = |k: usize| res.demand.slice(ndarray::s![.., .., k]).sum();
                let cost = |k: usize| res.costs[5].column(k).sum();
                let (first, last_d) = (demand(0), demand(last));
                ServiceFigures {
                    service: sv.id.clone(),
                    name: sv.name.clone(),
                    unit: sv.unit.clone(),
                    first_year: p.years[0],
                    last_year: p.years[last],
                    demand_first: first,
                    demand_last: last_d,
                    demand_change: last_d - first,
                    demand_change_pct: (first > 0.0).then(|| 100.0 * (last_d / first - 1.0)),
                    segments: sv
                        .segments
                        .iter()
                        .enumerate()
                        .map(|(g, seg)| SegmentFigures {
                            segment: seg.id.clone(),
                            demand_first: res.demand.slice(ndarray::s![g, .., 0]).sum(),
                            demand_last: res.demand.slice(ndarray::s![g, .., last]).sum(),
                        })
                        .collect(),
                    resources: Named(
                        res.resources()
                            .into_iter()
                            .map(|(n, v)| {
                                let (first, last) = (v.column(0).sum(), v.column(last).sum());
                                (n.to_string(), FirstLast { first, last })
                            })
                            .collect(),
                    ),
                    cost_first_eur: cost(0),
                    cost_last_eur: cost(last),
                    present_value_eur: res.present_value[5],
                    present_value_by_component_eur: Named(
                        COST_COMPONENTS
                            .iter()
                            .zip(res.present_value)
                            .map(|(c, v)| ((*c).to_string(), v))
                            .collect(),
                    ),
                    uncertainty: mc
                        .and_then(|mc| mc.services.get(i))
                        .map(|sm| ServiceIntervals {
                            demand_last_quantiles: Interval::of(&sm.total_demand, last, names),
                            cost_last_quantiles_eur: Interval::of(&sm.total_cost, last, names),
                            present_value_quantiles_eur: Interval::of(&sm.present_value, 0, names),
                        }),
                }
            })
            .collect()
    }

    fn unit_figures(&self, s: &ValidScenario, mc: Option<&McResult>) -> Vec<UnitFigures> {
        let Some(net) = &s.network else {
            return Vec::new();
        };
        let p = self.projection;
        let last = p.years.len() - 1;
        // The units' summaries come service by service, each service's units in
        // the order of `Network::units_of`.
        let mut chances: Vec<Option<UnitChances>> = vec![None; net.units().len()];
        if let Some(mc) = mc {
            let order = (0..mc.services.len()).flat_map(|i| net.units_of(i));
            for (u, sm) in order.zip(mc.services.iter().flat_map(|s| &s.units)) {
                chances[u] = Some(UnitChances {
                    p_shortage_last: sm.p_shortage[last],
                    first_year_p_shortage_half: mc
                        .years
                        .iter()
                        .zip(&sm.p_shortage)
                        .find(|(_, p)| **p >= 0.5)
                        .map(|(y, _)| *y),
                });
            }
        }
        let number = |v: f64| (!v.is_nan()).then_some(v);
        net.units()
            .iter()
            .zip(self.capacity)
            .zip(chances)
            .enumerate()
            .map(|(i, ((u, c), chance))| UnitFigures {
                unit: u.id.clone(),
                service: s.services[u.service].id.clone(),
                capacity_first: c.capacity[0],
                capacity_last: c.capacity[last],
                demand_first: c.demand[0],
                demand_last: c.demand[last],
                utilisation_first: number(c.utilisation[0]),
                utilisation_last: number(c.utilisation[last]),
                shortage_last: c.shortage[last],
                first_shortage_year: c.first_shortage_year(&p.years),
                utilisation_at_first_shortage: c
                    .first_shortage_year(&p.years)
                    .and_then(|y| p.years.iter().position(|x| *x == y))
                    .and_then(|k| number(c.utilisation[k])),
                spare_target: u.spare_target,
                present_value_eur: self.unit_costs.get(i).map_or(0.0, UnitCosts::present_value),
                uncertainty: chance,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::{Age, Population, Record, Sex, Year};
    use crate::run::{run, Options};
    use crate::scenario::Scenario;
    use crate::services::Service;
    use crate::uncertainty::Spec;

    fn scenario() -> ValidScenario {
        // 10 persons of each sex and age 0–15 in two areas, given for 2024–2026.
        let records = ["A", "B"].into_iter().flat_map(|area| {
            (2024..=2026).flat_map(move |y| {
                (0..=15u16).flat_map(move |x| {
                    Sex::ALL.map(|sex| Record {
                        area: area.into(),
                        sex,
                        age: Age(x),
                        year: Year(y),
                        value: 10.0 + f64::from(y - 2024),
                    })
                })
            })
        });
        let mut s = Scenario::new("t", Population::from_records(records).unwrap(), 2024, 2026);
        s.services.push(Service {
            name: "Koulu".into(),
            unit: "pupil".into(),
            ..Service::new("school", (7, 12))
        });
        s.validate().unwrap()
    }

    #[test]
    fn the_summary_adds_up_the_run() {
        let s = scenario();
        let det = run(&s, &Options::default(), &|_, _| {}).unwrap();
        let sm = det.summary(&s);
        assert_eq!((sm.base_year, sm.end_year), (2024, 2026));
        // 2 areas × 2 sexes × 16 ages.
        assert_eq!(sm.population_first, 64.0 * 10.0);
        assert_eq!(sm.population_last, 64.0 * 12.0);
        assert_eq!(sm.areas[1].population_last, 32.0 * 12.0);
        let school = &sm.services[0];
        assert_eq!(
            (school.name.as_str(), school.unit.as_str()),
            ("Koulu", "pupil")
        );
        // Ages 7–12 of both sexes in both areas.
        assert_eq!(school.demand_first, 24.0 * 10.0);
        assert_eq!(school.demand_last, 24.0 * 12.0);
        assert!((school.demand_change_pct.unwrap() - 20.0).abs() < 1e-12);
        assert!(sm.uncertainty.is_none() && school.uncertainty.is_none());

        let mc = run(
            &s,
            &Options {
                uncertainty: Some(Spec {
                    trajectories: 20,
                    ..Spec::default()
                }),
                ..Options::default()
            },
            &|_, _| {},
        )
        .unwrap();
        let sm = mc.summary(&s);
        let u = sm.uncertainty.as_ref().unwrap();
        assert_eq!(u.trajectories, 20);
        assert_eq!(u.quantiles, ["p05", "p25", "p50", "p75", "p95"]);
        // A published forecast has no spread: every quantile is the value itself.
        let q = &sm.services[0]
            .uncertainty
            .as_ref()
            .unwrap()
            .demand_last_quantiles;
        assert_eq!(q.get("p05"), Some(24.0 * 12.0));
        assert_eq!(q.get("p95"), Some(24.0 * 12.0));
    }

    #[cfg(feature = "io")]
    #[test]
    fn intervals_and_named_values_are_written_as_maps() {
        let i = Interval {
            mean: 1.5,
            quantiles: vec![("p05".into(), 1.0), ("p95".into(), 2.0)],
        };
        assert_eq!(
            serde_json::to_string(&i).unwrap(),
            r#"{"mean":1.5,"p05":1.0,"p95":2.0}"#
        );
        let n = Named(vec![(
            "groups".to_string(),
            FirstLast {
                first: 1.0,
                last: 2.0,
            },
        )]);
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"groups":{"first":1.0,"last":2.0}}"#
        );
    }
}
