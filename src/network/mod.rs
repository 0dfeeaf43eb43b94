//! The service network (palveluverkko) and its capacity (MODEL.md §9).
//!
//! A [`Unit`] (a school, a day-care centre, a care home) provides one service with a
//! number of places and, optionally, a floor area and the years it is open. A
//! catchment gives each area's share of a service's demand going to each of the
//! service's units; a unit's demand is `Σ_a demand[a] · share[a, unit]`. Against its
//! places this gives the utilisation `demand / capacity`, the shortage
//! `max(0, demand − capacity · (1 − spare_target))` and the first year of shortage;
//! against its floor area the floor area the demand needs (the service's own
//! `floor_area_m2` resource, shared out in the same way).
//!
//! A unit outside its opening years has no places and no floor area: the demand its
//! catchment still sends it is all shortage, which shows where a catchment has to
//! change when a unit closes. Its utilisation is then not a number.
//!
//! ```
//! use kunta::network::{capacity, Network, Unit};
//! use ndarray::array;
//!
//! let school = |id: &str, places: f64| Unit::new(id, 0, places);
//! // Two areas and two schools: area 0 goes to school A, area 1 is split 50/50.
//! let net = Network::new(
//!     vec![school("A", 100.0), school("B", 60.0)],
//!     vec![vec![1.0, 0.5], vec![0.0, 0.5]],
//!     2,
//! )
//! .unwrap();
//! // The service's demand by (area, year), two years.
//! let demand = array![[80.0, 90.0], [40.0, 80.0]];
//! let out = capacity(&net, &[demand.view()], &[None], &[2024, 2025]);
//! assert_eq!(out[0].demand, vec![100.0, 130.0]);
//! assert_eq!(out[0].shortage, vec![0.0, 30.0]);
//! assert_eq!(out[0].first_shortage_year(&[2024, 2025]), Some(2025));
//! assert_eq!(out[1].utilisation, vec![20.0 / 60.0, 40.0 / 60.0]);
//! ```

use ndarray::ArrayView2;

/// A unit of the service network.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Its id (a school's name).
    pub id: String,
    /// The position of the service it provides, in the list of services.
    pub service: usize,
    /// Places.
    pub capacity: f64,
    /// Floor area in m², if known.
    pub floor_area_m2: Option<f64>,
    /// First year open (open from the start when `None`).
    pub opens: Option<i32>,
    /// Last year open (open to the end when `None`).
    pub closes: Option<i32>,
    /// Share of places kept spare: a shortage starts when demand exceeds
    /// `capacity · (1 − spare_target)`. Default 0.
    pub spare_target: f64,
    /// Its own costs (MODEL.md §9); none by default.
    pub cost: UnitCost,
}

/// A unit's own costs in base-year euros (MODEL.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UnitCost {
    /// Premises, € per m² of floor area a year while open.
    pub per_m2: f64,
    /// Fixed € a year while open.
    pub fixed: f64,
    /// One-off investment in `investment_year`.
    pub investment: f64,
    /// The year of the investment: the year the unit opens when `None` (the base
    /// year for a unit open from the start).
    pub investment_year: Option<i32>,
    /// Real yearly growth of premises and fixed costs (not of the investment).
    pub growth: f64,
}

/// The components of a unit's own costs, in the order of the `unit_costs` table.
pub const UNIT_COST_COMPONENTS: [&str; 4] = ["premises", "fixed", "investment", "total"];

/// A unit's own costs by year: each of [`UNIT_COST_COMPONENTS`], and the total
/// discounted.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitCosts {
    /// By component, each one value per year.
    pub costs: [Vec<f64>; 4],
    /// The total discounted to the base year, per year.
    pub discounted: Vec<f64>,
}

impl UnitCosts {
    /// The present value of the total.
    pub fn present_value(&self) -> f64 {
        self.discounted.iter().sum()
    }
}

/// Each unit's own costs over `years` (the first is the base year), discounted at
/// `rate`: premises (`floor_area · per_m2`) and fixed in every year it is open,
/// grown at its rate from the base year, and the investment in its year.
pub fn unit_costs(net: &Network, years: &[i32], rate: f64) -> Vec<UnitCosts> {
    let t0 = years.first().copied().unwrap_or(0);
    net.units()
        .iter()
        .map(|u| {
            let c = &u.cost;
            let when = c.investment_year.or(u.opens).unwrap_or(t0);
            let mut out: [Vec<f64>; 4] = Default::default();
            let mut discounted = Vec::with_capacity(years.len());
            for &y in years {
                let grow = (1.0 + c.growth).powi(y - t0);
                let open = u.is_open(y);
                let premises = if open {
                    u.floor_area_m2.unwrap_or(0.0) * c.per_m2 * grow
                } else {
                    0.0
                };
                let fixed = if open { c.fixed * grow } else { 0.0 };
                let investment = if y == when { c.investment } else { 0.0 };
                let total = premises + fixed + investment;
                for (v, x) in out.iter_mut().zip([premises, fixed, investment, total]) {
                    v.push(x);
                }
                discounted.push(total * crate::services::discount_factor(rate, y, t0));
            }
            UnitCosts {
                costs: out,
                discounted,
            }
        })
        .collect()
}

impl Unit {
    /// A unit of service `service` with `capacity` places, always open, without a
    /// floor area or a spare target.
    pub fn new(id: &str, service: usize, capacity: f64) -> Unit {
        Unit {
            id: id.to_string(),
            service,
            capacity,
            floor_area_m2: None,
            opens: None,
            closes: None,
            spare_target: 0.0,
            cost: UnitCost::default(),
        }
    }

    /// Whether the unit is open in `year`.
    pub fn is_open(&self, year: i32) -> bool {
        self.opens.is_none_or(|y| year >= y) && self.closes.is_none_or(|y| year <= y)
    }

    /// Places in `year`: the capacity when open, 0 otherwise.
    pub fn capacity_in(&self, year: i32) -> f64 {
        if self.is_open(year) {
            self.capacity
        } else {
            0.0
        }
    }

    /// The demand above which there is a shortage in `year`:
    /// `capacity · (1 − spare_target)`.
    pub fn threshold(&self, year: i32) -> f64 {
        self.capacity_in(year) * (1.0 - self.spare_target)
    }

    /// Floor area in `year`: the unit's when open, 0 when closed, `None` when not
    /// given.
    pub fn floor_area_in(&self, year: i32) -> Option<f64> {
        self.floor_area_m2
            .map(|f| if self.is_open(year) { f } else { 0.0 })
    }

    /// `max(0, demand − threshold)`.
    pub fn shortage(&self, demand: f64, year: i32) -> f64 {
        (demand - self.threshold(year)).max(0.0)
    }

    /// `demand / capacity`; not a number where the unit has no places.
    pub fn utilisation(&self, demand: f64, year: i32) -> f64 {
        let c = self.capacity_in(year);
        if c > 0.0 {
            demand / c
        } else {
            f64::NAN
        }
    }
}

/// Why a network does not fit its services and areas.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The share table's shape does not match the units and areas.
    #[error("the catchment shares must have one row per unit and one value per area")]
    Shape,
    /// A unit's number is out of range.
    #[error("unit `{unit}`: {message}")]
    Unit {
        /// Unit id.
        unit: String,
        /// What is wrong.
        message: String,
    },
    /// A share outside `[0, 1]`.
    #[error("unit `{unit}`, area {area}: the share {share} is not between 0 and 1")]
    Share {
        /// Unit id.
        unit: String,
        /// Area position.
        area: usize,
        /// The share.
        share: f64,
    },
    /// An area's shares of a service's units do not sum to 1.
    #[error("area {area}: the shares of service {service}'s units sum to {sum}, not 1")]
    Sum {
        /// Service position.
        service: usize,
        /// Area position.
        area: usize,
        /// The sum.
        sum: f64,
    },
}

/// How far an area's shares may be from summing to 1.
pub const SUM_TOLERANCE: f64 = 1e-6;

/// Units and their catchments.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    units: Vec<Unit>,
    /// Per unit, each area's share of the unit's service's demand.
    shares: Vec<Vec<f64>>,
    /// Catchments redrawn from a year on: (first year, shares by unit and area), in
    /// ascending years; each holds until the next.
    periods: Vec<(i32, Vec<Vec<f64>>)>,
}

impl Network {
    /// A network of `units` with `shares[u][a]`, the share of area `a`'s demand for
    /// unit `u`'s service that goes to `u`, over `areas` areas.
    ///
    /// # Errors
    /// [`NetworkError`] if the shapes do not fit, a capacity, floor area or spare
    /// target is out of range, a unit closes before it opens, a share is outside
    /// `[0, 1]`, or an area's shares of a service's units do not sum to 1 (within
    /// [`SUM_TOLERANCE`]). An area whose shares of a service are all 0 is refused
    /// too: its demand would go to no unit.
    pub fn new(
        units: Vec<Unit>,
        shares: Vec<Vec<f64>>,
        areas: usize,
    ) -> Result<Network, NetworkError> {
        if shares.len() != units.len() || shares.iter().any(|s| s.len() != areas) {
            return Err(NetworkError::Shape);
        }
        for u in &units {
            let bad = |message: String| NetworkError::Unit {
                unit: u.id.clone(),
                message,
            };
            if !(u.capacity >= 0.0 && u.capacity.is_finite()) {
                return Err(bad(format!("capacity {} must not be negative", u.capacity)));
            }
            if let Some(f) = u.floor_area_m2 {
                if !(f >= 0.0 && f.is_finite()) {
                    return Err(bad(format!("floor area {f} must not be negative")));
                }
            }
            if !(0.0..1.0).contains(&u.spare_target) {
                return Err(bad(format!(
                    "spare target {} must be at least 0 and below 1",
                    u.spare_target
                )));
            }
            if let (Some(o), Some(c)) = (u.opens, u.closes) {
                if c < o {
                    return Err(bad(format!("closes in {c}, before it opens in {o}")));
                }
            }
        }
        for (u, row) in units.iter().zip(&shares) {
            if let Some((area, share)) = row
                .iter()
                .enumerate()
                .find(|(_, s)| !(0.0..=1.0).contains(*s))
            {
                return Err(NetworkError::Share {
                    unit: u.id.clone(),
                    area,
                    share: *share,
                });
            }
        }
        let mut services: Vec<usize> = units.iter().map(|u| u.service).collect();
        services.sort_unstable();
        services.dedup();
        for s in services {
            for area in 0..areas {
                let sum: f64 = units
                    .iter()
                    .zip(&shares)
                    .filter(|(u, _)| u.service == s)
                    .map(|(_, row)| row[area])
                    .sum();
                if (sum - 1.0).abs() > SUM_TOLERANCE {
                    return Err(NetworkError::Sum {
                        service: s,
                        area,
                        sum,
                    });
                }
            }
        }
        Ok(Network {
            units,
            shares,
            periods: Vec::new(),
        })
    }

    /// The units, in order.
    pub fn units(&self) -> &[Unit] {
        &self.units
    }

    /// Unit `u`'s share of each area's demand.
    pub fn shares(&self, u: usize) -> &[f64] {
        &self.shares[u]
    }

    /// Catchments redrawn from `year` on (MODEL.md §9: a unit that opens can take
    /// over areas): `shares[u][a]` as in [`Network::new`], holding until the next
    /// period's year.
    ///
    /// # Errors
    /// [`NetworkError::Shape`] for shares of the wrong shape; [`NetworkError::Share`]
    /// for a share outside `[0, 1]`; [`NetworkError::Unit`] for a year not after the
    /// last period's.
    pub fn redraw_from(&mut self, year: i32, shares: Vec<Vec<f64>>) -> Result<(), NetworkError> {
        let areas = self.shares.first().map_or(0, Vec::len);
        if shares.len() != self.units.len() || shares.iter().any(|s| s.len() != areas) {
            return Err(NetworkError::Shape);
        }
        for (u, sh) in shares.iter().enumerate() {
            if let Some((area, share)) = sh
                .iter()
                .enumerate()
                .find(|(_, v)| !(0.0..=1.0).contains(*v))
            {
                return Err(NetworkError::Share {
                    unit: self.units[u].id.clone(),
                    area,
                    share: *share,
                });
            }
        }
        if let Some((last, _)) = self.periods.last().filter(|(y, _)| *y >= year) {
            return Err(NetworkError::Unit {
                unit: String::new(),
                message: format!("catchments are redrawn in ascending years: {year} after {last}"),
            });
        }
        self.periods.push((year, shares));
        Ok(())
    }

    /// Each area's share of unit `u` in `year`: the catchment redrawn last before or
    /// in `year`, or the first.
    pub fn shares_in(&self, u: usize, year: i32) -> &[f64] {
        self.periods
            .iter()
            .rev()
            .find(|(y, _)| *y <= year)
            .map_or(&self.shares[u], |(_, sh)| &sh[u])
    }

    /// Whether the catchments are redrawn in some year.
    pub fn is_redrawn(&self) -> bool {
        !self.periods.is_empty()
    }

    /// Each area's largest share of unit `u` in any year: not 0 where the unit takes
    /// some of the area's demand at some time.
    pub fn reach(&self, u: usize) -> Vec<f64> {
        let mut r = self.shares[u].clone();
        for (_, sh) in &self.periods {
            for (x, v) in r.iter_mut().zip(&sh[u]) {
                *x = x.max(*v);
            }
        }
        r
    }

    /// The positions of the units of service `service`.
    pub fn units_of(&self, service: usize) -> Vec<usize> {
        (0..self.units.len())
            .filter(|u| self.units[*u].service == service)
            .collect()
    }
}

/// One unit's capacity comparison, by year.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitCapacity {
    /// Demand sent to the unit: `Σ_a demand[a] · share[a, unit]`.
    pub demand: Vec<f64>,
    /// Places (0 when closed).
    pub capacity: Vec<f64>,
    /// `demand / capacity` (not a number when closed).
    pub utilisation: Vec<f64>,
    /// `max(0, demand − capacity · (1 − spare_target))`.
    pub shortage: Vec<f64>,
    /// The floor area the demand needs, `Σ_a floor_area_m2[a] · share[a, unit]`, when
    /// the service has a floor area.
    pub floor_area_need_m2: Option<Vec<f64>>,
    /// The unit's floor area (0 when closed), when given.
    pub floor_area_m2: Option<Vec<f64>>,
}

impl UnitCapacity {
    /// The first of `years` with a shortage above 0.
    pub fn first_shortage_year(&self, years: &[i32]) -> Option<i32> {
        years
            .iter()
            .zip(&self.shortage)
            .find(|(_, s)| **s > 0.0)
            .map(|(y, _)| *y)
    }
}

/// `Σ_a values[a, k] · shares[a]` for each year `k`.
pub fn share_out(values: ArrayView2<'_, f64>, shares: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; values.ncols()];
    for (row, s) in values.rows().into_iter().zip(shares) {
        if *s != 0.0 {
            for (o, v) in out.iter_mut().zip(row) {
                *o += s * v;
            }
        }
    }
    out
}

/// Every unit's capacity comparison (MODEL.md §9), in the network's order.
/// `demand[s]` is service `s`'s demand by `(area, year)`, summed over its segments;
/// `floor_area[s]` its floor area need by `(area, year)`, when it has one; `years`
/// the years of their columns.
///
/// # Panics
/// If a unit's service has no entry in `demand` and `floor_area`, or their shapes do
/// not match the network's areas and `years`.
pub fn capacity(
    network: &Network,
    demand: &[ArrayView2<'_, f64>],
    floor_area: &[Option<ArrayView2<'_, f64>>],
    years: &[i32],
) -> Vec<UnitCapacity> {
    network
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let d = demand[u.service];
            let sh = &network.shares[i];
            assert_eq!(d.dim(), (sh.len(), years.len()), "demand by (area, year)");
            let by_year = |v: ArrayView2<'_, f64>| -> Vec<f64> {
                if !network.is_redrawn() {
                    return share_out(v, sh);
                }
                years
                    .iter()
                    .enumerate()
                    .map(|(k, y)| {
                        let sh = network.shares_in(i, *y);
                        (0..sh.len()).map(|a| v[[a, k]] * sh[a]).sum()
                    })
                    .collect()
            };
            let demand = by_year(d);
            let at = |f: &dyn Fn(f64, i32) -> f64| -> Vec<f64> {
                demand.iter().zip(years).map(|(d, y)| f(*d, *y)).collect()
            };
            UnitCapacity {
                capacity: years.iter().map(|y| u.capacity_in(*y)).collect(),
                utilisation: at(&|d, y| u.utilisation(d, y)),
                shortage: at(&|d, y| u.shortage(d, y)),
                floor_area_need_m2: floor_area[u.service].map(by_year),
                floor_area_m2: u.floor_area_m2.map(|_| {
                    years
                        .iter()
                        .map(|y| u.floor_area_in(*y).unwrap_or(0.0))
                        .collect()
                }),
                demand,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn two_schools() -> Network {
        let mut b = Unit::new("B", 0, 50.0);
        b.spare_target = 0.1;
        b.floor_area_m2 = Some(500.0);
        b.opens = Some(2025);
        Network::new(
            vec![Unit::new("A", 0, 100.0), b],
            vec![vec![1.0, 0.25], vec![0.0, 0.75]],
            2,
        )
        .unwrap()
    }

    #[test]
    fn unit_demand_is_the_areas_demand_times_their_shares() {
        let net = two_schools();
        let d = array![[80.0, 90.0, 100.0], [40.0, 60.0, 80.0]];
        let f = array![[800.0, 900.0, 1000.0], [400.0, 600.0, 800.0]];
        let years = [2024, 2025, 2026];
        let out = capacity(&net, &[d.view()], &[Some(f.view())], &years);
        assert_eq!(out[0].demand, vec![90.0, 105.0, 120.0]);
        assert_eq!(out[1].demand, vec![30.0, 45.0, 60.0]);
        assert_eq!(out[0].shortage, vec![0.0, 5.0, 20.0]);
        // B opens in 2025: before it every place it is sent is short; from then its
        // threshold is 50 · 0.9 = 45.
        assert_eq!(out[1].capacity, vec![0.0, 50.0, 50.0]);
        assert_eq!(out[1].shortage, vec![30.0, 0.0, 15.0]);
        assert!(out[1].utilisation[0].is_nan());
        assert_eq!(out[1].utilisation[1..], [0.9, 1.2]);
        assert_eq!(out[0].first_shortage_year(&years), Some(2025));
        assert_eq!(out[1].first_shortage_year(&years), Some(2024));
        assert_eq!(
            out[1].floor_area_need_m2.as_deref(),
            Some(&[300.0, 450.0, 600.0][..])
        );
        assert_eq!(
            out[1].floor_area_m2.as_deref(),
            Some(&[0.0, 500.0, 500.0][..])
        );
        assert_eq!(out[0].floor_area_m2, None);
    }

    #[test]
    fn shares_must_sum_to_one_per_area_and_service() {
        let units = vec![Unit::new("A", 0, 1.0), Unit::new("B", 0, 1.0)];
        let e = Network::new(units.clone(), vec![vec![1.0, 0.5], vec![0.0, 0.4]], 2);
        assert_eq!(
            e,
            Err(NetworkError::Sum {
                service: 0,
                area: 1,
                sum: 0.9
            })
        );
        let e = Network::new(units.clone(), vec![vec![1.2, 0.5], vec![-0.2, 0.5]], 2);
        assert!(matches!(e, Err(NetworkError::Share { area: 0, .. })));
        // Units of different services are summed apart.
        let other = vec![Unit::new("A", 0, 1.0), Unit::new("C", 1, 1.0)];
        assert!(Network::new(other, vec![vec![1.0, 1.0], vec![1.0, 1.0]], 2).is_ok());
        let mut bad = units[0].clone();
        bad.spare_target = 1.0;
        assert!(matches!(
            Network::new(vec![bad], vec![vec![1.0]], 1),
            Err(NetworkError::Unit { .. })
        ));
    }
}
