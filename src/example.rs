//! The bundled example: Esimerkkilä, a fictional mid-size Finnish municipality.
//!
//! Its files live in the repository's `data/esimerkkila/` and are compiled into the
//! binary, so `kunta run` works with no arguments and `kunta example --out DIR` can
//! write them out to edit. They are generated, not hand-written: [`generate`] makes
//! them from a seed, and a test checks that the committed files are exactly its
//! output (`cargo run --example generate_example` rewrites them).
//!
//! The population has a realistic Finnish shape: large post-war cohorts (born
//! 1945–1950), a dip in the 1970s, falling births since 2010, Gompertz mortality with
//! women outliving men, and four catchment areas with their own character — a centre
//! with young adults and the old, a suburb of young families, an average village and a
//! rural, older area.

/// The example's files: (file name, contents), as committed in `data/esimerkkila/`.
pub const FILES: [(&str, &str); 18] = [
    (
        "scenario.toml",
        include_str!("../data/esimerkkila/scenario.toml"),
    ),
    (
        "population.csv",
        include_str!("../data/esimerkkila/population.csv"),
    ),
    (
        "fertility.csv",
        include_str!("../data/esimerkkila/fertility.csv"),
    ),
    (
        "mortality.csv",
        include_str!("../data/esimerkkila/mortality.csv"),
    ),
    (
        "migration_within_rates.csv",
        include_str!("../data/esimerkkila/migration_within_rates.csv"),
    ),
    (
        "migration_within_destinations.csv",
        include_str!("../data/esimerkkila/migration_within_destinations.csv"),
    ),
    (
        "migration_domestic_in_total.csv",
        include_str!("../data/esimerkkila/migration_domestic_in_total.csv"),
    ),
    (
        "migration_domestic_in_profile.csv",
        include_str!("../data/esimerkkila/migration_domestic_in_profile.csv"),
    ),
    (
        "migration_domestic_out_rates.csv",
        include_str!("../data/esimerkkila/migration_domestic_out_rates.csv"),
    ),
    (
        "ecec_coverage.csv",
        include_str!("../data/esimerkkila/ecec_coverage.csv"),
    ),
    (
        "ecec_share_under_3.csv",
        include_str!("../data/esimerkkila/ecec_share_under_3.csv"),
    ),
    (
        "ecec_share_from_3.csv",
        include_str!("../data/esimerkkila/ecec_share_from_3.csv"),
    ),
    (
        "home_care_coverage.csv",
        include_str!("../data/esimerkkila/home_care_coverage.csv"),
    ),
    (
        "care_24h_coverage.csv",
        include_str!("../data/esimerkkila/care_24h_coverage.csv"),
    ),
    (
        "catchment.csv",
        include_str!("../data/esimerkkila/catchment.csv"),
    ),
    (
        "catchment_uusi_koulu.csv",
        include_str!("../data/esimerkkila/catchment_uusi_koulu.csv"),
    ),
    ("areas.csv", include_str!("../data/esimerkkila/areas.csv")),
    ("README.md", include_str!("../data/esimerkkila/README.md")),
];

/// The seed the committed example was generated with.
pub const SEED: u64 = 2024;

/// Base year of the example.
pub const BASE_YEAR: i32 = 2024;

/// Open top age of the example.
pub const OMEGA: u16 = 100;

/// The catchment areas: code, Finnish name and character.
pub const AREAS: [(&str, &str, Area); 4] = [
    ("01", "Keskusta", Area::Centre),
    ("02", "Harju", Area::Suburb),
    ("03", "Lampila", Area::Village),
    ("04", "Kylänpää", Area::Rural),
];

/// The character of an area, which shapes its age structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Town centre: students and young workers, the very old near services.
    Centre,
    /// New suburb: young families.
    Suburb,
    /// Average village.
    Village,
    /// Rural: the young move away.
    Rural,
}

impl Area {
    /// Persons per birth-cohort unit; sets the area's size.
    fn scale(self) -> f64 {
        match self {
            Area::Centre => 95.0,
            Area::Suburb => 70.0,
            Area::Village => 60.0,
            Area::Rural => 35.0,
        }
    }

    /// Relative presence of age `x` compared with the municipality as a whole.
    fn age_factor(self, x: f64) -> f64 {
        let bump =
            |centre: f64, width: f64, height: f64| height * (-((x - centre) / width).powi(2)).exp();
        match self {
            Area::Centre => {
                1.0 + bump(24.0, 5.0, 0.8) - bump(8.0, 6.0, 0.35) + bump(88.0, 8.0, 0.3)
            }
            Area::Suburb => {
                1.0 + bump(6.0, 6.0, 0.7) + bump(38.0, 7.0, 0.45) - bump(75.0, 12.0, 0.5)
            }
            Area::Village => 1.0 - bump(24.0, 5.0, 0.2),
            Area::Rural => 1.0 - bump(25.0, 7.0, 0.55) + bump(68.0, 10.0, 0.35),
        }
    }
}

/// Relative size of the cohort born in year `b` (Finnish births: post-war boom, 1970s
/// dip, falling births since 2010).
fn cohort_size(b: i32) -> f64 {
    let lerp = |b0: i32, v0: f64, b1: i32, v1: f64| {
        v0 + (v1 - v0) * f64::from(b - b0) / f64::from(b1 - b0)
    };
    match b {
        ..=1944 => 0.95,
        1945..=1950 => 1.35,
        1951..=1965 => lerp(1951, 1.25, 1965, 1.0),
        1966..=1975 => 0.88,
        1976..=1995 => lerp(1976, 0.95, 1995, 1.0),
        1996..=2010 => 0.96,
        _ => lerp(2011, 0.95, 2024, 0.7),
    }
}

/// Gompertz survival from birth to age `x`; life expectancy at birth about 85 years
/// for women and 79 for men, as in Finland in the 2020s.
fn survival(x: f64, female: bool) -> f64 {
    let (a, b) = if female {
        (2.5e-6, 0.12)
    } else {
        (1.0e-5, 0.11)
    };
    (-(a / b) * ((b * x).exp() - 1.0)).exp()
}

/// A small, fast, seeded generator (SplitMix64): the example must be the same on every
/// machine and needs no random-number crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The population table `area,sex,age,year,population` of the example, at
/// 31 December of [`BASE_YEAR`], ages 0 to 100 (100 = 100 and over).
pub fn population_csv(seed: u64) -> String {
    let mut rng = SplitMix64(seed);
    let mut out = String::from("area,sex,age,year,population\n");
    for (code, _, area) in AREAS {
        for (sex, female) in [("female", true), ("male", false)] {
            // Slightly more boys are born; women live longer (survival above).
            let at_birth = if female { 0.488 } else { 0.512 };
            for x in 0..=OMEGA {
                let xf = f64::from(x);
                let expected = if x == OMEGA {
                    // The open group: everyone aged 100 and over.
                    (0..20)
                        .map(|k| {
                            let age = xf + f64::from(k);
                            cohort_size(BASE_YEAR - x as i32 - k) * survival(age, female)
                        })
                        .sum::<f64>()
                } else {
                    cohort_size(BASE_YEAR - i32::from(x)) * survival(xf, female)
                } * area.scale()
                    * 2.0
                    * at_birth
                    * area.age_factor(xf);
                let noise = 1.0 + 0.08 * (rng.uniform() - 0.5);
                let n = (expected * noise).round().max(0.0);
                out.push_str(&format!("{code},{sex},{x},{BASE_YEAR},{n}\n"));
            }
        }
    }
    out
}

/// A bell curve `exp(−((x − centre) / width)²)`.
fn bump(x: f64, centre: f64, width: f64) -> f64 {
    (-((x - centre) / width).powi(2)).exp()
}

/// Total fertility of the example (Finland 2023: 1.26).
pub const TFR: f64 = 1.30;

/// Births per 1000 women by age 15–49 at the start of the year: a bell around 31
/// scaled to [`TFR`].
pub fn fertility_csv() -> String {
    let shape: Vec<f64> = (15..=49).map(|x| bump(f64::from(x), 31.0, 6.5)).collect();
    let sum: f64 = shape.iter().sum();
    let mut out = String::from("age,rate\n");
    for (k, v) in shape.iter().enumerate() {
        out.push_str(&format!("{},{:.3}\n", 15 + k, 1000.0 * TFR * v / sum));
    }
    out
}

/// Probabilities of dying per 1000 by sex and age at the start of the year, from the
/// same Gompertz curves as the population, with infant mortality about 2 per 1000 and
/// a birth-year risk (`s`) of 1 per 1000, as in Finland.
pub fn mortality_csv() -> String {
    let mut out = String::from("sex,age,rate\n");
    for (sex, female) in [("female", true), ("male", false)] {
        out.push_str(&format!("{sex},s,1.000\n"));
        for x in 0..=OMEGA {
            let xf = f64::from(x);
            let q = if x == 0 {
                0.002
            } else if x == OMEGA {
                // The open group 100+: the mean hazard of its members, about 0.45.
                0.45
            } else {
                1.0 - survival(xf + 1.0, female) / survival(xf, female)
            };
            out.push_str(&format!("{sex},{x},{:.4}\n", 1000.0 * q.max(0.0001)));
        }
    }
    out
}

/// Age profile of movers (Rogers–Castro shape): children moving with their parents,
/// a peak in the early twenties and a second one around 30.
fn mover_profile(x: f64) -> f64 {
    0.02 + 0.25 * (-x / 5.0).exp() + bump(x, 23.0, 4.5) + 0.45 * bump(x, 31.0, 7.0)
}

/// Moves between the catchment areas: yearly out-rates by sex and age (a closed
/// internal system, with destinations below).
pub fn within_rates_csv() -> String {
    let mut out = String::from("sex,age,rate\n");
    for sex in ["female", "male"] {
        for x in 0..=OMEGA {
            let r = 0.06 * mover_profile(f64::from(x)).min(1.2);
            out.push_str(&format!("{sex},{x},{r:.5}\n"));
        }
    }
    out
}

/// Where movers within the municipality go: the suburb draws families, the centre
/// the young and the very old.
pub fn within_destinations_csv() -> String {
    let mut out = String::from("area,sex,age,share\n");
    for sex in ["female", "male"] {
        for x in 0..=OMEGA {
            let xf = f64::from(x);
            let w = |area: Area| match area {
                Area::Centre => 1.0 + 1.5 * bump(xf, 23.0, 5.0) + 1.0 * bump(xf, 88.0, 8.0),
                Area::Suburb => 1.0 + 1.2 * bump(xf, 5.0, 6.0) + 1.0 * bump(xf, 34.0, 6.0),
                Area::Village => 0.8,
                Area::Rural => 0.3,
            };
            let total: f64 = AREAS.iter().map(|(_, _, a)| w(*a)).sum();
            let mut shares: Vec<f64> = AREAS
                .iter()
                .map(|(_, _, a)| (w(*a) / total * 1e6).round() / 1e6)
                .collect();
            // Rounded shares must still sum to exactly 1: the last takes the remainder.
            let rest: f64 = shares[..3].iter().sum();
            shares[3] = ((1.0 - rest) * 1e6).round() / 1e6;
            for ((code, _, _), share) in AREAS.iter().zip(shares) {
                out.push_str(&format!("{code},{sex},{x},{share:.6}\n"));
            }
        }
    }
    out
}

/// Yearly movers in from other municipalities, per area.
pub fn domestic_in_total_csv() -> String {
    let mut out = String::from("area,total\n");
    for ((code, _, _), total) in AREAS.iter().zip([380, 290, 170, 60]) {
        out.push_str(&format!("{code},{total}\n"));
    }
    out
}

/// Age × sex profile of movers in from other municipalities (shares summing to 1).
pub fn domestic_in_profile_csv() -> String {
    let weights: Vec<f64> = (0..=OMEGA).map(|x| mover_profile(f64::from(x))).collect();
    let total = 2.0 * weights.iter().sum::<f64>();
    let mut cells: Vec<(&str, u16, f64)> = Vec::new();
    for sex in ["female", "male"] {
        for (x, w) in weights.iter().enumerate() {
            cells.push((sex, x as u16, (w / total * 1e7).round() / 1e7));
        }
    }
    let rest: f64 = cells[..cells.len() - 1].iter().map(|c| c.2).sum();
    let last = cells.len() - 1;
    cells[last].2 = ((1.0 - rest) * 1e7).round() / 1e7;
    let mut out = String::from("sex,age,share\n");
    for (sex, x, share) in cells {
        out.push_str(&format!("{sex},{x},{share:.7}\n"));
    }
    out
}

/// Out-migration to other municipalities: rates per 1000 by sex and age; the young
/// leave for study and work.
pub fn domestic_out_rates_csv() -> String {
    let mut out = String::from("sex,age,rate\n");
    for sex in ["female", "male"] {
        for x in 0..=OMEGA {
            let xf = f64::from(x);
            let r = 8.0
                + 70.0 * bump(xf, 21.0, 3.5)
                + 20.0 * bump(xf, 30.0, 7.0)
                + 8.0 * (-xf / 5.0).exp();
            out.push_str(&format!("{sex},{x},{r:.3}\n"));
        }
    }
    out
}

/// Participation in early childhood education by age (1–5): rising with age, about
/// 42 % of the under-3s and 90 % of the 3–5-year-olds as in Finland in 2023 (THL,
/// Varhaiskasvatus 2023).
pub fn ecec_coverage_csv() -> String {
    let mut out = String::from("age,coverage\n");
    for (x, c) in [(1, 0.31), (2, 0.53), (3, 0.87), (4, 0.90), (5, 0.93)] {
        out.push_str(&format!("{x},{c:.2}\n"));
    }
    out
}

/// Share of early childhood education's children in the under-3 segment (by age),
/// whose staffing ratio is 1:4, or (`under_3 = false`) in the segment from 3 years,
/// with 1:7.
pub fn ecec_share_csv(under_3: bool) -> String {
    let mut out = String::from("age,share\n");
    for x in 1..=5 {
        out.push_str(&format!("{x},{}\n", u8::from((x < 3) == under_3)));
    }
    out
}

/// Share of persons using regular home care, by age 75–100: rising with age, about
/// 12 % of all over-75s in the example (with round-the-clock care, 21 %).
pub fn home_care_coverage_csv() -> String {
    care_coverage(0.055, 0.09, 0.30)
}

/// Share of persons in round-the-clock care, by age 75–100: about 9.5 % of all
/// over-75s in the example, most of them over 85.
pub fn care_24h_coverage_csv() -> String {
    care_coverage(0.025, 0.14, 0.45)
}

/// `min(cap, at75 · e^(slope · (x − 75)))` for ages 75–100, to three decimals.
fn care_coverage(at75: f64, slope: f64, cap: f64) -> String {
    let mut out = String::from("age,coverage\n");
    for x in 75..=OMEGA {
        let c = (at75 * (slope * f64::from(x - 75)).exp()).min(cap);
        out.push_str(&format!("{x},{c:.3}\n"));
    }
    out
}

/// The primary schools' catchments (oppilaaksiottoalueet): each area's share of its
/// pupils of grades 1–6 going to each school. The centre sends a tenth of its pupils
/// to the suburb's school, and the rural area three tenths to the village's, which is
/// nearer for them.
pub const CATCHMENT: [(&str, &str, f64); 6] = [
    ("01", "Keskustan koulu", 0.9),
    ("01", "Harjun koulu", 0.1),
    ("02", "Harjun koulu", 1.0),
    ("03", "Lampilan koulu", 1.0),
    ("04", "Kylänpään koulu", 0.7),
    ("04", "Lampilan koulu", 0.3),
];

/// The catchment table `area, unit, share` of [`CATCHMENT`].
pub fn catchment_csv() -> String {
    let mut out = String::from("area,unit,share\n");
    for (area, unit, share) in CATCHMENT {
        out.push_str(&format!("{area},{unit},{share}\n"));
    }
    out
}

/// The areas' names `area, name` of [`AREAS`].
pub fn areas_csv() -> String {
    let mut out = String::from("area,name\n");
    for (code, name, _) in AREAS {
        out.push_str(&format!("{code},{name}\n"));
    }
    out
}

/// Generates the example's files from a seed: the same list as [`FILES`].
pub fn generate(seed: u64) -> Vec<(&'static str, String)> {
    FILES
        .iter()
        .map(|(name, committed)| {
            let content = match *name {
                "population.csv" => population_csv(seed),
                "fertility.csv" => fertility_csv(),
                "mortality.csv" => mortality_csv(),
                "migration_within_rates.csv" => within_rates_csv(),
                "migration_within_destinations.csv" => within_destinations_csv(),
                "migration_domestic_in_total.csv" => domestic_in_total_csv(),
                "migration_domestic_in_profile.csv" => domestic_in_profile_csv(),
                "migration_domestic_out_rates.csv" => domestic_out_rates_csv(),
                "ecec_coverage.csv" => ecec_coverage_csv(),
                "ecec_share_under_3.csv" => ecec_share_csv(true),
                "ecec_share_from_3.csv" => ecec_share_csv(false),
                "home_care_coverage.csv" => home_care_coverage_csv(),
                "care_24h_coverage.csv" => care_24h_coverage_csv(),
                "catchment.csv" => catchment_csv(),
                "areas.csv" => areas_csv(),
                _ => (*committed).to_string(),
            };
            (*name, content)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_files_are_the_generator_output() {
        for (name, content) in generate(SEED) {
            let committed = FILES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, c)| *c);
            let first_difference = content
                .lines()
                .zip(committed.lines())
                .position(|(a, b)| a != b);
            assert!(
                content == committed,
                "data/esimerkkila/{name} differs from the generator (first at line {:?}): run `cargo run --example generate_example`",
                first_difference.map(|i| i + 1)
            );
        }
    }

    #[test]
    fn population_has_a_plausible_size_and_shape() {
        let csv = population_csv(SEED);
        let rows: Vec<(String, u16, f64)> = csv
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[1].to_string(),
                    f[2].parse().unwrap(),
                    f[4].parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(rows.len(), 4 * 2 * 101);
        let total: f64 = rows.iter().map(|r| r.2).sum();
        assert!((30_000.0..60_000.0).contains(&total), "total {total}");
        let over = |sex: &str, from: u16| -> f64 {
            rows.iter()
                .filter(|r| r.0 == sex && r.1 >= from)
                .map(|r| r.2)
                .sum()
        };
        // Women outnumber men among the old.
        assert!(over("female", 80) > 1.3 * over("male", 80));
        // Children under 7 are between 4 % and 8 % of the population, as in Finland.
        let young: f64 = rows.iter().filter(|r| r.1 < 7).map(|r| r.2).sum();
        assert!((0.04..0.08).contains(&(young / total)), "{}", young / total);
    }
}
