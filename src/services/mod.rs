//! Productised services (tuotteistetut palvelut): demand by customer segment,
//! resources and costs (MODEL.md §6–8).
//!
//! A [`Service`] turns a population cube into demand by segment, area, year and age
//! ([`demand`]); [`evaluate`] goes on to resources (floor area, teaching groups, lesson
//! hours, teacher and staff FTE) and product costs with real growth and present value.
//! Nothing here reads files: parameters are constants, linear year paths or
//! [`RateTable`]s that the caller has built.
//!
//! # Examples
//! A class of 7-year-olds: 25.2 pupils need two groups of at most 25.
//! ```
//! use kunta::services::{evaluate, Cost, Segment, Service, Teaching, Value};
//! use ndarray::Array4;
//!
//! let mut pop = Array4::zeros((1, 1, 2, 8)); // (year, area, sex, age 0..=7)
//! pop[[0, 0, 0, 7]] = 12.6;
//! pop[[0, 0, 1, 7]] = 12.6;
//! let mut general = Segment::new("general");
//! general.max_group_size = Some(25.0);
//! general.cost = Cost { per_fte: 68_000.0, ..Cost::default() };
//! let service = Service {
//!     teaching: Some(Teaching { lesson_hours: vec![20.0], teaching_obligation: 24.0 }),
//!     segments: vec![general],
//!     ..Service::new("grade_1", (7, 7))
//! };
//! let r = evaluate(&service, pop.view(), &[2025], 2025, 0.0).unwrap();
//! assert_eq!(r.groups.as_ref().unwrap()[[0, 0]], 2.0);
//! assert_eq!(r.weekly_hours.as_ref().unwrap()[[0, 0]], 40.0);
//! assert!((r.teacher_fte.as_ref().unwrap()[[0, 0]] - 40.0 / 24.0).abs() < 1e-12);
//! ```

use crate::population::Sex;
use crate::projection::YearPath;
use crate::rates::{AgeIndex, RateError, RateTable};
use ndarray::{Array2, Array4, ArrayView4};

/// A parameter's value for an area, year, sex and age: a constant, a linear path
/// between two `(year, value)` points (constant outside them), or a table by any of
/// area, year, sex and age.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One value everywhere.
    Constant(f64),
    /// A straight line between two years, constant before and after.
    Path(YearPath),
    /// A table; years after its last year take the last year's values.
    Table(RateTable),
}

impl Value {
    /// The value for a population area position, year, sex and age.
    ///
    /// # Errors
    /// For a table: a year before its first year, or a cell it does not have.
    pub fn at(&self, area: usize, year: i32, sex: Sex, age: u16) -> Result<f64, ValueError> {
        let mut v = [0.0];
        self.ages(area, year, sex, age, &mut v)?;
        Ok(v[0])
    }

    /// The values for ages `lo, lo + 1, …` into `out` (one per entry).
    ///
    /// # Errors
    /// For a table: a year before its first year, or the first age it has no cell
    /// for.
    pub fn ages(
        &self,
        area: usize,
        year: i32,
        sex: Sex,
        lo: u16,
        out: &mut [f64],
    ) -> Result<(), ValueError> {
        match self {
            Value::Constant(v) => out.fill(*v),
            Value::Path(p) => out.fill(p.at(year)),
            Value::Table(t) => {
                let slot = t.year_slot(year).map_err(ValueError::Year)?;
                for (age, o) in (lo..).zip(out.iter_mut()) {
                    *o = t
                        .get(area, slot, sex, AgeIndex::Age(age))
                        .ok_or(ValueError::Cell { area, year, age })?;
                }
            }
        }
        Ok(())
    }

    /// The smallest and largest value it can take (every cell of a table, both ends of
    /// a path), for range checks.
    pub fn range(&self) -> (f64, f64) {
        match self {
            Value::Constant(v) => (*v, *v),
            Value::Path(YearPath::Constant(v)) => (*v, *v),
            Value::Path(YearPath::Linear { from, to }) => (from.1.min(to.1), from.1.max(to.1)),
            Value::Table(t) => t
                .scaled_values()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                }),
        }
    }

    /// Whether the value can differ between areas (a table with an area column).
    pub fn by_area(&self) -> bool {
        matches!(self, Value::Table(t) if t.by_area())
    }

    /// Whether the value is the same for every area, year, sex and age.
    pub fn is_constant(&self) -> bool {
        matches!(
            self,
            Value::Constant(_) | Value::Path(YearPath::Constant(_))
        )
    }
}

/// Why a parameter has no value for a cell.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// A year before the table's first.
    #[error("{0}")]
    Year(RateError),
    /// A cell the table lacks.
    #[error("the table has no value for area position {area}, year {year}, age {age}")]
    Cell {
        /// Population area position.
        area: usize,
        /// Year.
        year: i32,
        /// Age.
        age: u16,
    },
}

/// Product costs of a segment (JHS 203 style), in base-year euros a year.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cost {
    /// Per unit of demand.
    pub per_unit: f64,
    /// Per m² of floor area (premises).
    pub per_m2: f64,
    /// Per FTE of staff and teachers.
    pub per_fte: f64,
    /// Fixed, per area or per service (see [`FixedPer`]).
    pub fixed: f64,
    /// Overhead as a share of the direct costs (units, premises, staff, fixed).
    pub overhead: f64,
    /// Real yearly growth of each component: units, premises, staff, fixed.
    pub growth: [f64; 4],
}

/// What a fixed cost is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FixedPer {
    /// Every area pays it every year.
    #[default]
    Area,
    /// Paid once a year for the whole service; each area carries the share of the
    /// year's demand it has (equal shares in a year without demand).
    Service,
}

/// A customer segment (e.g. general, intensified or special support).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Segment id.
    pub id: String,
    /// Share `σ_g(x, y)` of the service's users in the segment.
    pub share: Value,
    /// Floor area per unit of demand, m².
    pub floor_area_per_unit: Option<f64>,
    /// Units of demand per staff FTE (e.g. children per carer).
    pub units_per_fte: Option<f64>,
    /// Largest teaching group.
    pub max_group_size: Option<f64>,
    /// Lesson hours of a group relative to the tuntijako (default 1).
    pub hours_factor: f64,
    /// Weekly support hours per pupil on top of the group's lessons (default 0).
    pub support_hours_per_unit: f64,
    /// Costs.
    pub cost: Cost,
}

impl Segment {
    /// A segment with share 1 and nothing else set.
    pub fn new(id: &str) -> Segment {
        Segment {
            id: id.to_string(),
            share: Value::Constant(1.0),
            floor_area_per_unit: None,
            units_per_fte: None,
            max_group_size: None,
            hours_factor: 1.0,
            support_hours_per_unit: 0.0,
            cost: Cost::default(),
        }
    }
}

/// The teaching model of a school service (MODEL.md §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Teaching {
    /// Weekly lesson hours per grade (tuntijako), grade 1 being the service's first
    /// age.
    pub lesson_hours: Vec<f64>,
    /// Teaching obligation, hours a week per teacher FTE (opetusvelvollisuus).
    pub teaching_obligation: f64,
}

/// A productised service.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Service id.
    pub id: String,
    /// Name shown to readers (the id, unless given).
    pub name: String,
    /// What one unit of demand is (`pupil`, `child`, `client`).
    pub unit: String,
    /// Ages served, `age_min..=age_max` (age at 31 December).
    pub ages: (u16, u16),
    /// Only this sex, if set.
    pub sex: Option<Sex>,
    /// Coverage `c(x, y)`: the share of the age group using the service.
    pub coverage: Value,
    /// Segments, whose shares sum to 1.
    pub segments: Vec<Segment>,
    /// The teaching model, for school services.
    pub teaching: Option<Teaching>,
    /// What a fixed cost is per.
    pub fixed_per: FixedPer,
}

impl Service {
    /// A service with coverage 1 and one segment `all`.
    pub fn new(id: &str, ages: (u16, u16)) -> Service {
        Service {
            id: id.to_string(),
            name: id.to_string(),
            unit: "unit".to_string(),
            ages,
            sex: None,
            coverage: Value::Constant(1.0),
            segments: vec![Segment::new("all")],
            teaching: None,
            fixed_per: FixedPer::Area,
        }
    }

    /// Which of the [`RESOURCES`] the service defines: floor area when a segment has
    /// a floor area per unit, the three teaching resources with a teaching model,
    /// staff FTE when a segment has a staffing ratio.
    pub fn resources(&self) -> [bool; 5] {
        let any = |f: &dyn Fn(&Segment) -> bool| self.segments.iter().any(f);
        let t = self.teaching.is_some();
        [
            any(&|s| s.floor_area_per_unit.is_some()),
            t,
            t,
            t,
            any(&|s| s.units_per_fte.is_some()),
        ]
    }

    fn n_ages(&self) -> usize {
        usize::from(self.ages.1.saturating_sub(self.ages.0)) + 1
    }
}

/// Why a service cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The service's ages go past the population's oldest age.
    #[error("service `{service}`: ages {lo}–{hi} go past the population's oldest age {omega}")]
    Ages {
        /// Service id.
        service: String,
        /// First age.
        lo: u16,
        /// Last age.
        hi: u16,
        /// The population's open top age.
        omega: usize,
    },
    /// A parameter has no value for a cell.
    #[error("service `{service}`: `{key}`: {source}")]
    Value {
        /// Service id.
        service: String,
        /// The key.
        key: String,
        /// Why.
        source: ValueError,
    },
    /// Segment shares do not sum to 1.
    #[error("service `{service}`: segment shares sum to {sum} for area position {area}, year {year}, age {age}; they must sum to 1")]
    Shares {
        /// Service id.
        service: String,
        /// The sum.
        sum: f64,
        /// Population area position.
        area: usize,
        /// Year.
        year: i32,
        /// Age.
        age: u16,
    },
    /// A number out of its range (see [`check_ranges`]).
    #[error("service `{service}`: `{key}`: {message}")]
    Number {
        /// Service id.
        service: String,
        /// The key.
        key: String,
        /// Why, with the value.
        message: String,
    },
    /// The teaching model does not fit the service.
    #[error("service `{service}`: `{key}`: {message}")]
    Teaching {
        /// Service id.
        service: String,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

/// The demand weights `c(x, y) · σ_g(x, y)` of a service by
/// `(area, year, sex, segment, age − age_min)`, resolved once and checked: every
/// parameter has a value and the segment shares sum to 1 (within 1e-6) everywhere.
///
/// When no parameter varies by area, the arrays hold one area, which every area
/// shares ([`Weights::area_row`]): they stay small and in the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// `c · σ_g` by `(area row, year, sex, segment, age − age_min)`; 0 for a sex the
    /// service does not serve.
    pub(crate) w: ndarray::Array5<f64>,
}

impl Weights {
    /// Resolves the weights of `service` for `areas` population area positions and
    /// `years`, for a population whose oldest age is `omega`.
    ///
    /// # Errors
    /// [`ServiceError`] for ages past `omega`, a parameter without a value for a
    /// cell, or segment shares that do not sum to 1 (within 1e-6).
    pub fn new(
        service: &Service,
        areas: usize,
        years: &[i32],
        omega: usize,
    ) -> Result<Weights, ServiceError> {
        let (lo, hi) = service.ages;
        if lo > hi || usize::from(hi) > omega {
            return Err(ServiceError::Ages {
                service: service.id.clone(),
                lo,
                hi,
                omega,
            });
        }
        let ng = service.segments.len();
        let ni = service.n_ages();
        let by_area =
            service.coverage.by_area() || service.segments.iter().any(|g| g.share.by_area());
        let areas = if by_area { areas } else { areas.min(1) };
        let mut w = ndarray::Array5::zeros((areas, years.len(), 2, ng, ni));
        let value_err = |key: String| {
            let id = service.id.clone();
            move |source| ServiceError::Value {
                service: id,
                key,
                source,
            }
        };
        let sexes: &[Sex] = match service.sex {
            Some(Sex::Female) => &[Sex::Female],
            Some(Sex::Male) => &[Sex::Male],
            None => &Sex::ALL,
        };
        let ny = years.len();
        // One (area, year, sex) at a time: the coverage by age, and each segment's shares.
        let (mut cov, mut shares) = (vec![0.0; ni], vec![0.0; ng * ni]);
        {
            let wv = w.as_slice_mut().expect("a new array is in standard layout");
            for a in 0..areas {
                for (k, &y) in years.iter().enumerate() {
                    for &s in sexes {
                        service
                            .coverage
                            .ages(a, y, s, lo, &mut cov)
                            .map_err(|e| value_err("coverage".into())(e))?;
                        for (seg, row) in service.segments.iter().zip(shares.chunks_exact_mut(ni)) {
                            seg.share
                                .ages(a, y, s, lo, row)
                                .map_err(|e| value_err(format!("segment[{}].share", seg.id))(e))?;
                        }
                        for (i, x) in (lo..=hi).enumerate() {
                            let sum: f64 = (0..ng).map(|g| shares[g * ni + i]).sum();
                            if (sum - 1.0).abs() > 1e-6 {
                                return Err(ServiceError::Shares {
                                    service: service.id.clone(),
                                    sum,
                                    area: a,
                                    year: y,
                                    age: x,
                                });
                            }
                        }
                        let row = (a * ny + k) * 2 + s.index();
                        for (g, sg) in shares.chunks_exact(ni).enumerate() {
                            let dst = &mut wv[(row * ng + g) * ni..(row * ng + g + 1) * ni];
                            for ((d, c), sg) in dst.iter_mut().zip(&cov).zip(sg) {
                                *d = c * sg;
                            }
                        }
                    }
                }
            }
        }
        Ok(Weights { w })
    }

    /// The row of the arrays that holds area position `a`.
    #[inline]
    pub fn area_row(&self, a: usize) -> usize {
        if self.w.dim().0 == 1 {
            0
        } else {
            a
        }
    }

    /// Demand by `(segment, age − age_min)` in area position `a` and year slot `k`,
    /// from that area's and year's population by `(sex, age)` (`female` then `male`
    /// lanes of ages `0..=ω`), written into `out` (`segments × ages`).
    #[inline]
    pub fn apply(&self, a: usize, k: usize, age_min: u16, pop: &[f64], out: &mut [f64]) {
        let (_, ny, _, ng, ni) = self.w.dim();
        let a = self.area_row(a);
        let n = pop.len() / 2;
        let lo = usize::from(age_min);
        let w = self.w.as_slice().expect("weights are in standard layout");
        assert!(
            k < ny && pop.len() == 2 * n,
            "a year and two sexes the weights hold"
        );
        out[..ng * ni].fill(0.0);
        for s in 0..2 {
            let p = &pop[s * n + lo..s * n + lo + ni];
            let row = ((a * ny + k) * 2 + s) * ng * ni;
            for g in 0..ng {
                let o = &mut out[g * ni..(g + 1) * ni];
                let wg = &w[row + g * ni..row + (g + 1) * ni];
                for ((o, p), w) in o.iter_mut().zip(p).zip(wg) {
                    *o += p * w;
                }
            }
        }
    }
}

/// Demand by `(segment, area, year, age − age_min)` (MODEL.md §6):
/// `Σ_s P[a, s, x, y] · c(x, y) · σ_g(x, y)`.
///
/// `pop` is `(year, area, sex, age)`, its years being `years`.
///
/// # Errors
/// [`ServiceError`] for ages past the population's, a parameter without a value for a
/// cell, or segment shares that do not sum to 1 (within 1e-6).
pub fn demand(
    service: &Service,
    pop: ArrayView4<'_, f64>,
    years: &[i32],
) -> Result<Array4<f64>, ServiceError> {
    let (ny, na, _, nx) = pop.dim();
    let weights = Weights::new(
        service,
        na,
        &years[..ny.min(years.len())],
        nx.saturating_sub(1),
    )?;
    Ok(demand_with(service, &weights, pop))
}

/// Demand by `(segment, area, year, age − age_min)` with resolved weights.
pub fn demand_with(service: &Service, weights: &Weights, pop: ArrayView4<'_, f64>) -> Array4<f64> {
    let (ny, na, _, nx) = pop.dim();
    let (ng, ni) = (service.segments.len(), service.n_ages());
    let mut out = Array4::zeros((ng, na, ny, ni));
    let o = out
        .as_slice_mut()
        .expect("a new array is in standard layout");
    let mut lane = vec![0.0; 2 * nx];
    let mut d = vec![0.0; ng * ni];
    // Only the service's ages are read, straight from the array's memory in the
    // order it lies there (a projection keeps an area's years together).
    let lo = usize::from(service.ages.0);
    let pop = if pop.as_slice_memory_order().is_some() && pop.strides().iter().all(|s| *s >= 0) {
        ndarray::CowArray::from(pop)
    } else {
        ndarray::CowArray::from(pop.as_standard_layout().into_owned())
    };
    let p = pop.as_slice_memory_order().expect("contiguous");
    let st: Vec<usize> = pop.strides().iter().map(|s| *s as usize).collect();
    let area_first = st[1] >= st[0];
    for outer in 0..if area_first { na } else { ny } {
        for inner in 0..if area_first { ny } else { na } {
            let (a, k) = if area_first {
                (outer, inner)
            } else {
                (inner, outer)
            };
            for s in 0..2 {
                let at = k * st[0] + a * st[1] + s * st[2] + lo * st[3];
                let dst = &mut lane[s * nx + lo..s * nx + lo + ni];
                if st[3] == 1 {
                    dst.copy_from_slice(&p[at..at + ni]);
                } else {
                    for (i, l) in dst.iter_mut().enumerate() {
                        *l = p[at + i * st[3]];
                    }
                }
            }
            weights.apply(a, k, service.ages.0, &lane, &mut d);
            for g in 0..ng {
                let at = ((g * na + a) * ny + k) * ni;
                for (o, d) in o[at..at + ni].iter_mut().zip(&d[g * ni..(g + 1) * ni]) {
                    *o = *d;
                }
            }
        }
    }
    out
}

/// Resources and costs of one area and year from its demand by
/// `(segment, age − age_min)`; the building block of [`evaluate`], also used per
/// Monte Carlo trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct YearValues {
    /// Floor area, m².
    pub floor_area_m2: f64,
    /// Teaching groups.
    pub groups: f64,
    /// Weekly lesson hours.
    pub weekly_hours: f64,
    /// Teacher FTE.
    pub teacher_fte: f64,
    /// Staff FTE by ratio.
    pub staff_fte: f64,
    /// Costs: units, premises, staff, fixed (per area only), overhead (on those).
    pub costs: [f64; 5],
}

/// Resources and costs of one area and year (MODEL.md §7–8) from demand by
/// `(segment, age − age_min)` in `by_age` (`segments × ages`). A fixed cost per
/// service is left out (it is shared among areas by the caller).
pub fn year_values(service: &Service, by_age: &[f64], year: i32, base_year: i32) -> YearValues {
    let lanes: Vec<[f64; 1]> = by_age.iter().map(|v| [*v]).collect();
    let ni = service.n_ages();
    let totals: Vec<[f64; 1]> = lanes
        .chunks_exact(ni.max(1))
        .map(|ages| [ages.iter().fold(0.0, |d, a| d + a[0])])
        .collect();
    let grow = segment_growth(service, year, base_year);
    let v = year_values_lanes(service, &totals, &lanes, &grow);
    YearValues {
        floor_area_m2: v.resources[0][0],
        groups: v.resources[1][0],
        weekly_hours: v.resources[2][0],
        teacher_fte: v.resources[3][0],
        staff_fte: v.resources[4][0],
        costs: v.costs.map(|c| c[0]),
    }
}

/// Each segment's growth factors `(1 + g)^(y − t0)` in `year`: units, premises,
/// staff, fixed.
pub fn segment_growth(service: &Service, year: i32, base_year: i32) -> Vec<[f64; 4]> {
    service
        .segments
        .iter()
        .map(|seg| seg.cost.growth.map(|g| growth_factor(g, year, base_year)))
        .collect()
}

/// [`YearValues`] of `L` lanes at once (the trajectories of a Monte Carlo block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct YearLanes<const L: usize> {
    /// Floor area, groups, weekly hours, teacher FTE, staff FTE.
    pub resources: [[f64; L]; 5],
    /// Units, premises, staff, fixed (per area only), overhead.
    pub costs: [[f64; L]; 5],
}

/// Resources and costs of one area and year for `L` lanes at once, from each
/// segment's demand in `totals` (its ages summed from the youngest up) and, for a
/// service with a teaching model, the demand by `(segment, age − age_min)` in
/// `by_age` (not read otherwise), with each segment's growth factors
/// ([`segment_growth`]). Each lane is computed exactly as [`year_values`] computes
/// one (it is this function with one lane), so a Monte Carlo trajectory without
/// spreads has the deterministic run's bits.
#[inline(always)]
pub(crate) fn year_values_lanes<const L: usize>(
    service: &Service,
    totals: &[[f64; L]],
    by_age: &[[f64; L]],
    grow: &[[f64; 4]],
) -> YearLanes<L> {
    let ni = service.n_ages();
    let z = [0.0; L];
    let mut v = YearLanes {
        resources: [z; 5],
        costs: [z; 5],
    };
    for (g, seg) in service.segments.iter().enumerate() {
        let d = totals[g];
        let per_m2 = seg.floor_area_per_unit.unwrap_or(0.0);
        let (mut m2, mut staff_fte, mut teacher_fte) = (z, z, z);
        for l in 0..L {
            m2[l] = d[l] * per_m2;
            staff_fte[l] = seg.units_per_fte.map_or(0.0, |u| d[l] / u);
        }
        if let Some(t) = &service.teaching {
            let max = seg.max_group_size.unwrap_or(f64::INFINITY);
            let (mut n, mut h) = (z, z);
            for (lh, dx) in t.lesson_hours.iter().zip(&by_age[g * ni..(g + 1) * ni]) {
                for l in 0..L {
                    let gx = groups(dx[l], max);
                    n[l] += gx;
                    h[l] += gx * lh * seg.hours_factor;
                }
            }
            for l in 0..L {
                teacher_fte[l] = (h[l] + d[l] * seg.support_hours_per_unit) / t.teaching_obligation;
                v.resources[1][l] += n[l];
                v.resources[2][l] += h[l];
                v.resources[3][l] += teacher_fte[l];
            }
        }
        let c = &seg.cost;
        let gr = grow[g];
        let fixed = match service.fixed_per {
            FixedPer::Area => c.fixed * gr[3],
            FixedPer::Service => 0.0,
        };
        for l in 0..L {
            v.resources[0][l] += m2[l];
            v.resources[4][l] += staff_fte[l];
            let units = d[l] * c.per_unit * gr[0];
            let premises = m2[l] * c.per_m2 * gr[1];
            let staff_cost = (teacher_fte[l] + staff_fte[l]) * c.per_fte * gr[2];
            let overhead = c.overhead * (units + premises + staff_cost + fixed);
            v.costs[0][l] += units;
            v.costs[1][l] += premises;
            v.costs[2][l] += staff_cost;
            v.costs[3][l] += fixed;
            v.costs[4][l] += overhead;
        }
    }
    v
}
/// A fixed cost per service in `year` and the overhead on it, before it is shared
/// among areas: `(fixed, overhead)`.
pub fn service_fixed(service: &Service, year: i32, base_year: i32) -> (f64, f64) {
    if service.fixed_per != FixedPer::Service {
        return (0.0, 0.0);
    }
    service.segments.iter().fold((0.0, 0.0), |(f, o), seg| {
        let fixed = seg.cost.fixed * growth_factor(seg.cost.growth[3], year, base_year);
        (f + fixed, o + seg.cost.overhead * fixed)
    })
}

/// Each area's share of a year's demand (all segments), by `(area, year)`, from demand
/// by `(segment, area, year)`; equal shares in a year without demand. A fixed cost
/// per service is carried by the areas in these shares.
pub fn demand_shares(demand: &ndarray::Array3<f64>) -> Array2<f64> {
    let d = demand.sum_axis(ndarray::Axis(0));
    let (na, ny) = d.dim();
    let mut shares = d.clone();
    for k in 0..ny {
        let total = d.column(k).sum();
        for a in 0..na {
            shares[[a, k]] = if total > 0.0 {
                d[[a, k]] / total
            } else {
                1.0 / na as f64
            };
        }
    }
    shares
}

/// Checks that a teaching model fits the service: one lesson-hours entry per grade,
/// and every segment with a largest group size.
///
/// # Errors
/// [`ServiceError::Teaching`] naming the key.
pub fn check_teaching(service: &Service) -> Result<(), ServiceError> {
    let nx = service.n_ages();
    let teaching_err = |key: &str, message: String| ServiceError::Teaching {
        service: service.id.clone(),
        key: key.to_string(),
        message,
    };
    if let Some(t) = &service.teaching {
        if t.lesson_hours.len() != nx {
            return Err(teaching_err(
                "teaching.lesson_hours",
                format!(
                    "{} values for {nx} grades (ages {}–{})",
                    t.lesson_hours.len(),
                    service.ages.0,
                    service.ages.1
                ),
            ));
        }
        if let Some(s) = service.segments.iter().find(|s| s.max_group_size.is_none()) {
            return Err(teaching_err(
                &format!("segment[{}].max_group_size", s.id),
                "a teaching model needs the largest group size of every segment".into(),
            ));
        }
    }
    Ok(())
}

/// The values a [`Value`] can take at its ends: a constant, a path's two points
/// (a table's cells are checked where they are read).
fn ends(v: &Value) -> Vec<f64> {
    match v {
        Value::Constant(c) => vec![*c],
        Value::Path(YearPath::Constant(c)) => vec![*c],
        Value::Path(YearPath::Linear { from, to }) => vec![from.1, to.1],
        Value::Table(_) => Vec::new(),
    }
}

/// Checks the numbers of a service built in code as a scenario file's are checked:
/// its first age not above its last; at least one segment, each id once; coverage
/// and constant or path shares between 0 and 1 (constant shares summing to 1);
/// largest groups, staffing ratios and the teaching obligation positive; floor areas,
/// lesson hours, hours factors, support hours and costs not negative; cost growth
/// above −1; every number finite.
///
/// # Errors
/// [`ServiceError::Number`] naming the service, the key and the value.
pub fn check_ranges(service: &Service) -> Result<(), ServiceError> {
    let bad = |key: String, message: String| {
        Err(ServiceError::Number {
            service: service.id.clone(),
            key,
            message,
        })
    };
    let (lo, hi) = service.ages;
    if lo > hi {
        return bad(
            "ages".into(),
            format!("[{lo}, {hi}]: the first age is above the last"),
        );
    }
    if service.segments.is_empty() {
        return bad(
            "segment".into(),
            "a service needs at least one segment".into(),
        );
    }
    let share =
        |key: String, v: &Value| match ends(v).into_iter().find(|x| !(0.0..=1.0).contains(x)) {
            Some(x) => bad(key, format!("{x} is not a share between 0 and 1")),
            None => Ok(()),
        };
    // `positive`: above 0; otherwise 0 or more.
    let number = |key: String, v: Option<f64>, positive: bool| match v {
        Some(x) if !(x.is_finite() && (x > 0.0 || (!positive && x == 0.0))) => {
            let must = if positive {
                "must be positive"
            } else {
                "must not be negative"
            };
            bad(key, format!("{x} {must}"))
        }
        _ => Ok(()),
    };
    share("coverage".into(), &service.coverage)?;
    if let Some(t) = &service.teaching {
        number(
            "teaching.teaching_obligation".into(),
            Some(t.teaching_obligation),
            true,
        )?;
        for h in &t.lesson_hours {
            number("teaching.lesson_hours".into(), Some(*h), false)?;
        }
    }
    let mut constant_sum = Some(0.0);
    for (k, g) in service.segments.iter().enumerate() {
        let key = |name: &str| format!("segment[{}].{name}", g.id);
        if service.segments[..k].iter().any(|o| o.id == g.id) {
            return bad(key("id"), "another segment has the same id".into());
        }
        share(key("share"), &g.share)?;
        constant_sum = match (&g.share, constant_sum) {
            (Value::Constant(v), Some(s)) => Some(s + v),
            _ => None,
        };
        number(key("floor_area_per_unit"), g.floor_area_per_unit, false)?;
        number(key("units_per_fte"), g.units_per_fte, true)?;
        number(key("max_group_size"), g.max_group_size, true)?;
        number(key("hours_factor"), Some(g.hours_factor), false)?;
        number(
            key("support_hours_per_unit"),
            Some(g.support_hours_per_unit),
            false,
        )?;
        let c = &g.cost;
        for (name, v) in [
            ("per_unit", c.per_unit),
            ("per_m2", c.per_m2),
            ("per_fte", c.per_fte),
            ("fixed", c.fixed),
            ("overhead", c.overhead),
        ] {
            number(key(&format!("cost.{name}")), Some(v), false)?;
        }
        for (name, v) in ["units", "premises", "staff", "fixed"].iter().zip(c.growth) {
            if !(v.is_finite() && v > -1.0) {
                return bad(
                    key(&format!("cost.growth.{name}")),
                    format!("{v} must be above -1"),
                );
            }
        }
    }
    match constant_sum {
        Some(sum) if (sum - 1.0).abs() > 1e-6 => bad(
            "segment.share".into(),
            format!("the segments' shares sum to {sum}; they must sum to 1"),
        ),
        _ => Ok(()),
    }
}

/// Checks that every parameter of `service` has a value for every area position
/// `0..areas`, year, sex and age it serves, that segment shares sum to 1 everywhere,
/// that its ages lie within `0..=omega`, and that its teaching model fits.
///
/// # Errors
/// The first problem found.
pub fn check(
    service: &Service,
    areas: usize,
    years: &[i32],
    omega: usize,
) -> Result<(), ServiceError> {
    check_teaching(service)?;
    Weights::new(service, areas, years, omega).map(|_| ())
}

/// Everything MODEL.md §6–8 gives for one service. Arrays by `(area, year)` unless
/// said otherwise; resources a service does not define are `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceResult {
    /// Demand by `(segment, area, year, age − age_min)`.
    pub demand_by_age: Array4<f64>,
    /// Demand by `(segment, area, year)`.
    pub demand: ndarray::Array3<f64>,
    /// Floor area `Σ_g demand_g · m2_per_unit_g`, when any segment has a floor area.
    pub floor_area_m2: Option<Array2<f64>>,
    /// Teaching groups over grades and segments, with a teaching model.
    pub groups: Option<Array2<f64>>,
    /// Weekly lesson hours `Σ groups · lesson_hours(x) · hours_factor_g`.
    pub weekly_hours: Option<Array2<f64>>,
    /// Teacher FTE `(weekly_hours + Σ_g demand_g · support_hours_g) / obligation`.
    pub teacher_fte: Option<Array2<f64>>,
    /// Staff FTE `Σ_g demand_g / units_per_fte_g`, when any segment has a ratio.
    pub staff_fte: Option<Array2<f64>>,
    /// Costs by component, each `(area, year)`, in the order of [`COST_COMPONENTS`].
    pub costs: [Array2<f64>; 6],
    /// Present value of each component's cost over all years at the discount rate.
    pub present_value: [f64; 6],
}

/// The cost components, in the order of [`ServiceResult::costs`].
pub const COST_COMPONENTS: [&str; 6] = ["units", "premises", "staff", "fixed", "overhead", "total"];

/// The resources of the `resources` table, in order.
pub const RESOURCES: [&str; 5] = [
    "floor_area_m2",
    "groups",
    "weekly_hours",
    "teacher_fte",
    "staff_fte",
];

impl ServiceResult {
    /// The resources the service defines, with their names from [`RESOURCES`].
    pub fn resources(&self) -> Vec<(&'static str, &Array2<f64>)> {
        let all = [
            &self.floor_area_m2,
            &self.groups,
            &self.weekly_hours,
            &self.teacher_fte,
            &self.staff_fte,
        ];
        RESOURCES
            .into_iter()
            .zip(all)
            .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
            .collect()
    }
}

/// The number of teaching groups for `d` pupils with groups of at most `max`:
/// `⌈d / max − 1e-9⌉`, and 0 where there are no pupils (MODEL.md §7).
#[inline]
pub fn groups(d: f64, max: f64) -> f64 {
    // Both sides worked out and one chosen, so that lanes of values vectorise.
    let g = (d / max - 1e-9).ceil().max(0.0);
    if d > 0.0 {
        g
    } else {
        0.0
    }
}

/// The factor `(1 + g)^(y − t0)` of real growth `g` from the base year `t0`.
pub fn growth_factor(g: f64, year: i32, t0: i32) -> f64 {
    (1.0 + g).powi(year - t0)
}

/// The discount factor `1 / (1 + r)^(y − t0)`.
pub fn discount_factor(r: f64, year: i32, t0: i32) -> f64 {
    1.0 / (1.0 + r).powi(year - t0)
}

/// Demand, resources and costs of a service (MODEL.md §6–8). `pop` is
/// `(year, area, sex, age)` with its years in `years`; costs are in euros of
/// `base_year` and grow from it; present values discount to `base_year` at
/// `discount_rate`.
///
/// # Errors
/// As [`demand`], and for a teaching model whose `lesson_hours` do not have one entry
/// per grade or a segment without `max_group_size`.
pub fn evaluate(
    service: &Service,
    pop: ArrayView4<'_, f64>,
    years: &[i32],
    base_year: i32,
    discount_rate: f64,
) -> Result<ServiceResult, ServiceError> {
    check_teaching(service)?;
    let by_age = demand(service, pop, years)?;
    Ok(from_demand(
        service,
        by_age,
        years,
        base_year,
        discount_rate,
    ))
}

/// Resources and costs from demand by `(segment, area, year, age − age_min)`.
pub fn from_demand(
    service: &Service,
    by_age: Array4<f64>,
    years: &[i32],
    base_year: i32,
    discount_rate: f64,
) -> ServiceResult {
    let (ng, na, ny, ni) = by_age.dim();
    let demand = by_age.sum_axis(ndarray::Axis(3));
    let zeros = || Array2::<f64>::zeros((na, ny));
    let [has_floor, has_teaching, _, _, has_staff] = service.resources();
    let (mut floor, mut groups_out, mut hours, mut teachers, mut staff) =
        (zeros(), zeros(), zeros(), zeros(), zeros());
    let mut costs: [Array2<f64>; 6] = std::array::from_fn(|_| zeros());
    // As [`year_values`] works them out, with each year's growth factors once.
    let grow: Vec<Vec<[f64; 4]>> = years
        .iter()
        .take(ny)
        .map(|&y| segment_growth(service, y, base_year))
        .collect();
    let mut lanes = vec![[0.0; 1]; ng * ni];
    let mut totals = vec![[0.0; 1]; ng];
    let standard = by_age.as_standard_layout();
    let d = standard.as_slice().expect("a standard layout");
    for a in 0..na {
        for (k, grow) in grow.iter().enumerate() {
            for (g, total) in totals.iter_mut().enumerate() {
                let mut t = 0.0;
                let at = ((g * na + a) * ny + k) * ni;
                for (l, v) in lanes[g * ni..(g + 1) * ni].iter_mut().zip(&d[at..at + ni]) {
                    *l = [*v];
                    t += v;
                }
                *total = [t];
            }
            let v = year_values_lanes(service, &totals, &lanes, grow);
            floor[[a, k]] = v.resources[0][0];
            groups_out[[a, k]] = v.resources[1][0];
            hours[[a, k]] = v.resources[2][0];
            teachers[[a, k]] = v.resources[3][0];
            staff[[a, k]] = v.resources[4][0];
            for (c, v) in costs.iter_mut().zip(v.costs) {
                c[[a, k]] = v[0];
            }
        }
    }
    drop(standard);
    if service.fixed_per == FixedPer::Service {
        // One fixed sum a year for the service, carried by the areas in proportion to
        // their demand (equal shares in a year without demand); the overhead on it
        // follows each segment's overhead share.
        let shares = demand_shares(&demand);
        for (k, &y) in years.iter().enumerate().take(ny) {
            let (fixed, overhead) = service_fixed(service, y, base_year);
            for a in 0..na {
                costs[3][[a, k]] += fixed * shares[[a, k]];
                costs[4][[a, k]] += overhead * shares[[a, k]];
            }
        }
    }
    let total = &costs[0] + &costs[1] + &costs[2] + &costs[3] + &costs[4];
    costs[5] = total;
    let present_value = std::array::from_fn(|c| {
        years
            .iter()
            .enumerate()
            .take(ny)
            .map(|(k, &y)| costs[c].column(k).sum() * discount_factor(discount_rate, y, base_year))
            .sum()
    });
    ServiceResult {
        demand_by_age: by_age,
        demand,
        floor_area_m2: has_floor.then_some(floor),
        groups: has_teaching.then_some(groups_out),
        weekly_hours: has_teaching.then_some(hours),
        teacher_fte: has_teaching.then_some(teachers),
        staff_fte: has_staff.then_some(staff),
        costs,
        present_value,
    }
}

#[cfg(test)]
mod tests;
