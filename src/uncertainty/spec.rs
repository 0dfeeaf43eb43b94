//! What a Monte Carlo run is asked for: the AR(1) processes of the levels, the number
//! of trajectories, the seed, the quantile levels, the population's age groups (with
//! their defaults), and which outputs to summarise ([`Want`]).

#![allow(clippy::needless_range_loop)]

/// A log-normal AR(1) process of yearly multipliers: `z_y = ar · z_{y−1} + sd · ε_y`
/// with `z` = 0 in the base year and `ε` standard normal; the multiplier is `e^z`
/// (its median is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ar1 {
    /// Standard deviation of the yearly innovation of `ln` multiplier.
    pub sd: f64,
    /// Persistence: 1 is a random walk (uncertainty grows with the horizon), 0 makes
    /// every year independent.
    pub ar: f64,
}

impl Ar1 {
    /// Defaults for the fertility level: 4 % a year, persistent.
    pub const FERTILITY: Ar1 = Ar1 { sd: 0.04, ar: 0.9 };
    /// Defaults for the mortality level: 2 % a year, persistent.
    pub const MORTALITY: Ar1 = Ar1 { sd: 0.02, ar: 0.9 };
    /// Defaults for each migration flow: 15 % a year, half of it carried to the next.
    pub const MIGRATION: Ar1 = Ar1 { sd: 0.15, ar: 0.5 };
    /// No uncertainty.
    pub const NONE: Ar1 = Ar1 { sd: 0.0, ar: 0.0 };
}

/// The settings of a Monte Carlo run (`[uncertainty]` in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Number of trajectories.
    pub trajectories: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// Fertility level multipliers.
    pub fertility: Ar1,
    /// Mortality level multipliers.
    pub mortality: Ar1,
    /// Multipliers of each migration flow (independent of each other).
    pub migration: Ar1,
    /// Deaths, births and movers drawn as Poisson counts around their expected values.
    pub process_noise: bool,
    /// Quantile levels, each in (0, 1), ascending.
    pub quantiles: Vec<f64>,
    /// The age groups of the population summaries.
    pub age_groups: AgeGroups,
    /// An additive spread of net migration, in proportion to the population
    /// ([`MigrationRate`]); none by default.
    pub migration_rate: Option<MigrationRate>,
}

/// The uncertainty of net migration as a rate of the population (kunta's addition to
/// MODEL.md §5): in each trajectory, area and projected year, every cell of the
/// population at the end of the year gains `z · sd(area, sex, age)` times itself as
/// net migrants (a negative gain at most the cell), where `z` follows its own AR(1)
/// process per trajectory and area, `z_y = ar · z_{y−1} + ε_y`, `ε ~ N(0, 1)`,
/// `z = 0` in the base year. Unlike the multipliers of the flows it widens the
/// intervals of ages whose expected net flow is near zero, where a region's turnover
/// of movers still makes its population uncertain. The gain counts in the
/// `net_migration` component.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRate {
    /// The yearly spread of the rate by `(area, sex, age 0..=ω)`, each at least 0.
    pub sd: ndarray::Array3<f64>,
    /// The persistence of `z`, between −1 and 1.
    pub ar: f64,
}

/// The age groups the population is summarised by (MODEL.md §5): sums of single
/// years, because a planner reads the 7–12-year-olds, not each age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgeGroups {
    /// These groups, in this order.
    Groups(Vec<AgeGroup>),
    /// Every single year of age, then all ages.
    SingleYears,
}

impl Default for AgeGroups {
    /// The planning groups 0–6, 7–12, 13–15, 16–18, 19–64, 65–74, 75+ and all ages.
    fn default() -> AgeGroups {
        let g = |lo, hi| AgeGroup { lo, hi };
        AgeGroups::Groups(vec![
            g(0, Some(6)),
            g(7, Some(12)),
            g(13, Some(15)),
            g(16, Some(18)),
            g(19, Some(64)),
            g(65, Some(74)),
            g(75, None),
            g(0, None),
        ])
    }
}

impl AgeGroups {
    /// The groups as ranges of age positions `lo..hi` for a population whose ages
    /// are `0..n` (the last the open group), with their labels. A group reaching past
    /// the top age stops at it.
    pub fn resolve(&self, n: usize) -> Vec<(std::ops::Range<usize>, String)> {
        let all = AgeGroup { lo: 0, hi: None };
        let groups: Vec<AgeGroup> = match self {
            AgeGroups::Groups(g) => g.clone(),
            AgeGroups::SingleYears => (0..n as u16)
                .map(|x| AgeGroup { lo: x, hi: Some(x) })
                .chain(std::iter::once(all))
                .collect(),
        };
        groups
            .iter()
            .map(|g| {
                let lo = usize::from(g.lo).min(n);
                let hi = g.hi.map_or(n, |h| (usize::from(h) + 1).min(n)).max(lo);
                (lo..hi, g.label())
            })
            .collect()
    }
}

/// Ages `lo..=hi`, or `lo` and over (up to the open top group) where `hi` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeGroup {
    /// The youngest age.
    pub lo: u16,
    /// The oldest age, or none for the top group.
    pub hi: Option<u16>,
}

impl AgeGroup {
    /// The group's label: `0-6`, `75+`, `all` (every age), `5` (one year).
    pub fn label(&self) -> String {
        match self.hi {
            None if self.lo == 0 => "all".into(),
            None => format!("{}+", self.lo),
            Some(h) if h == self.lo => h.to_string(),
            Some(h) => format!("{}-{h}", self.lo),
        }
    }

    /// Reads a label as [`AgeGroup::label`] writes it (`7-12`, `75+`, `all`, `5`);
    /// `None` for anything else or a group whose oldest age is below its youngest.
    pub fn parse(text: &str) -> Option<AgeGroup> {
        let t = text.trim();
        let age = |s: &str| s.trim().parse::<u16>().ok();
        if t.eq_ignore_ascii_case("all") {
            return Some(AgeGroup { lo: 0, hi: None });
        }
        if let Some(lo) = t.strip_suffix('+') {
            return age(lo).map(|lo| AgeGroup { lo, hi: None });
        }
        match t.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (age(lo)?, age(hi)?);
                (hi >= lo).then_some(AgeGroup { lo, hi: Some(hi) })
            }
            None => age(t).map(|x| AgeGroup { lo: x, hi: Some(x) }),
        }
    }
}

/// The default quantile levels.
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

/// The column name of quantile level `q`: `p05` for 0.05, `p2_5` for 0.025.
pub fn quantile_name(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("p{:02}", pct.round() as i64)
    } else {
        format!("p{}", format!("{pct}").replace('.', "_"))
    }
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            trajectories: 1000,
            seed: 42,
            fertility: Ar1::FERTILITY,
            mortality: Ar1::MORTALITY,
            migration: Ar1::MIGRATION,
            process_noise: false,
            quantiles: QUANTILES.to_vec(),
            age_groups: AgeGroups::default(),
            migration_rate: None,
        }
    }
}

/// Which summaries to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Population by area, sex (female, male, both), age group and year.
    pub population: bool,
    /// Components by area, sex and projected year.
    pub components: bool,
    /// Movers of each migration flow by area, sex and projected year (and a closed
    /// system's arrivals).
    pub migration: bool,
    /// Demand of every service (summarised from the services' full pass, so resources
    /// and costs come with it).
    pub demand: bool,
    /// Resources and costs of every service.
    pub costs: bool,
}

impl Want {
    /// The services and nothing of the population. There is one pass for services:
    /// demand, resources and costs are computed and summarised together, as
    /// `kunta run` asks for them.
    pub const DEMAND: Want = Want {
        population: false,
        components: false,
        migration: false,
        demand: true,
        costs: false,
    };
}
