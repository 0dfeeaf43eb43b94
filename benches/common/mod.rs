//! Seeded synthetic inputs shared by the benches: 309 (or any number of) areas × 2
//! sexes × 101 ages, fertility 15–49, Gompertz mortality with 1 % improvement, one flow
//! of counts in and one of out-rates, tables without area columns.

use kunta::population::{Age, Population, Record, Sex, Year};
use kunta::projection::{Direction, Flow, FlowForm, ProjectionInputs};
use kunta::rates::{AgeIndex, RateRow, RateTable};

pub const AGES: u16 = 101;
pub const YEARS: i32 = 30;

/// A seeded uniform number in [0, 1) for cell `i` (SplitMix64).
pub fn u(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

pub fn inputs(areas: usize) -> (Population, ProjectionInputs) {
    let codes: Vec<String> = (0..areas).map(|a| format!("{a:03}")).collect();
    let mut records = Vec::new();
    for (a, code) in codes.iter().enumerate() {
        for s in Sex::ALL {
            for x in 0..AGES {
                let i = ((a * 2 + s.index()) * usize::from(AGES) + usize::from(x)) as u64;
                records.push(Record {
                    area: code.clone(),
                    sex: s,
                    age: Age(x),
                    year: Year(2024),
                    value: 50.0 + 100.0 * u(i),
                });
            }
        }
    }
    let pop = Population::from_records(records).expect("valid population");
    let by_sex_age = |f: &dyn Fn(Sex, u16) -> f64| -> Vec<RateRow> {
        Sex::ALL
            .iter()
            .flat_map(|s| {
                (0..AGES).map(move |x| (*s, x)).map(|(s, x)| RateRow {
                    area: None,
                    year: None,
                    sex: Some(s),
                    age: Some(AgeIndex::Age(x)),
                    value: f(s, x),
                })
            })
            .collect()
    };
    let mortality = by_sex_age(&|_, x| (0.0005 * (0.09 * f64::from(x)).exp()).min(0.5));
    let fertility: Vec<RateRow> = (15..=49)
        .map(|x| RateRow {
            area: None,
            year: None,
            sex: None,
            age: Some(AgeIndex::Age(x)),
            value: 0.04,
        })
        .collect();
    let counts = by_sex_age(&|_, x| 2.0 + f64::from(x % 7));
    let out_rates = by_sex_age(&|_, x| 0.01 + 0.0001 * f64::from(x));
    let table =
        |rows: &[RateRow]| RateTable::from_rows(rows, 1.0, pop.areas()).expect("valid table");
    let inputs = ProjectionInputs {
        fertility: table(&fertility),
        mortality: table(&mortality),
        boys_share: 0.512,
        tfr: None,
        improvement: Some(0.01),
        flows: vec![
            Flow {
                name: "in".into(),
                direction: Direction::In,
                form: FlowForm::Counts(table(&counts)),
                multiplier: None,
                destinations: None,
            },
            Flow {
                name: "out".into(),
                direction: Direction::Out,
                form: FlowForm::OutRates(table(&out_rates)),
                multiplier: None,
                destinations: None,
            },
        ],
    };
    (pop, inputs)
}
