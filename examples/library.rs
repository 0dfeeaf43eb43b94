//! A scenario built in code and run through the library, without files and without
//! the `io` feature: two areas, rates of fertility, mortality and net migration, a
//! primary school service with three tiers of support and a teaching model, and a
//! school in each area; run deterministically, then with 200 trajectories.
//!
//! ```sh
//! cargo run --release --no-default-features --example library
//! ```

use kunta::network::{Network, Unit};
use kunta::population::{Age, Population, Record, Sex, Year};
use kunta::projection::{Direction, Flow, FlowForm, ProjectionInputs};
use kunta::rates::{AgeIndex, RateRow, RateTable};
use kunta::run::{run, Options};
use kunta::scenario::Scenario;
use kunta::services::{Cost, Segment, Service, Teaching, Value};
use kunta::uncertainty::Spec;

/// A rate table without area or year columns: `f(sex, age index)` for ages 0–100 and
/// the birth index.
fn table(
    areas: &[String],
    f: impl Fn(Sex, AgeIndex) -> f64,
) -> Result<RateTable, kunta::rates::RateError> {
    let rows: Vec<RateRow> = Sex::ALL
        .iter()
        .flat_map(|&sex| {
            (0..=100u16)
                .map(AgeIndex::Age)
                .chain(std::iter::once(AgeIndex::Birth))
                .map(move |age| (sex, age))
        })
        .map(|(sex, age)| RateRow {
            area: None,
            year: None,
            sex: Some(sex),
            age: Some(age),
            value: f(sex, age),
        })
        .collect();
    RateTable::from_rows(&rows, 1.0, areas)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The base population at the end of 2024: a younger suburb and an older centre.
    let records = ["suburb", "centre"]
        .iter()
        .enumerate()
        .flat_map(|(a, area)| {
            (0..=100u16).flat_map(move |x| {
                Sex::ALL.map(|sex| Record {
                    area: (*area).to_string(),
                    sex,
                    age: Age(x),
                    year: Year(2024),
                    value: if a == 0 {
                        120.0 * (-f64::from(x) / 45.0).exp()
                    } else {
                        60.0 * (-(f64::from(x) - 50.0).powi(2) / 1800.0).exp()
                    },
                })
            })
        });
    let population = Population::from_records(records)?;
    let areas = population.areas().to_vec();
    let age = |i: AgeIndex| match i {
        AgeIndex::Age(x) => f64::from(x),
        AgeIndex::Birth => 0.0,
    };
    // Fertility at mothers' ages 20–40, Gompertz mortality, and a net inflow of young
    // adults with a net outflow of teenagers (signed counts, as a residual gives them).
    let fertility = table(&areas, |_, i| {
        if (20.0..=40.0).contains(&age(i)) {
            0.07
        } else {
            0.0
        }
    })?;
    let mortality = table(&areas, |_, i| (0.0002 * (0.085 * age(i)).exp()).min(1.0))?;
    let net = table(&areas, |_, i| match age(i) as u16 {
        16..=19 => -1.5,
        20..=34 => 2.0,
        _ => 0.0,
    })?;
    let inputs = ProjectionInputs {
        fertility,
        mortality,
        boys_share: 0.512,
        tfr: None,
        improvement: Some(0.01),
        flows: vec![Flow {
            name: "net".into(),
            direction: Direction::Net,
            form: FlowForm::Counts(net),
            multiplier: None,
            destinations: None,
        }],
    };
    // Basic education 1–6 with general, intensified and special support.
    let segment = |id: &str, share: f64, group: f64| Segment {
        share: Value::Constant(share),
        max_group_size: Some(group),
        floor_area_per_unit: Some(10.0),
        cost: Cost {
            per_unit: 5000.0,
            per_m2: 180.0,
            per_fte: 66_000.0,
            overhead: 0.08,
            ..Cost::default()
        },
        ..Segment::new(id)
    };
    let school = Service {
        segments: vec![
            segment("general", 0.764, 25.0),
            segment("intensified", 0.139, 25.0),
            segment("special", 0.097, 10.0),
        ],
        teaching: Some(Teaching {
            lesson_hours: vec![20.0, 20.0, 22.0, 24.0, 25.0, 25.0],
            teaching_obligation: 24.0,
        }),
        name: "Perusopetus 1–6".into(),
        unit: "pupil".into(),
        ..Service::new("basic_1_6", (7, 12))
    };
    // A school in each area, each taking its own area's pupils.
    let network = Network::new(
        vec![
            Unit::new("Suburb school", 0, 1200.0),
            Unit::new("Centre school", 0, 380.0),
        ],
        vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        areas.len(),
    )?;
    let mut scenario = Scenario::new("In code", population, 2024, 2040);
    scenario.discount_rate = 0.03;
    scenario.inputs = Some(inputs);
    scenario.services.push(school);
    scenario.network = Some(network);
    let scenario = scenario.validate()?;

    let det = run(&scenario, &Options::default(), &|_, _| {})?;
    let last = det.projection.years.len() - 1;
    let pupils = |k: usize| det.services[0].demand.index_axis(ndarray::Axis(2), k).sum();
    println!(
        "pupils {:.0} in 2024, {:.0} in 2040; present value of the cost {:.1} M€",
        pupils(0),
        pupils(last),
        det.services[0].present_value[5] / 1e6
    );
    for (unit, c) in scenario
        .network
        .as_ref()
        .map_or(&[][..], |n| n.units())
        .iter()
        .zip(&det.capacity)
    {
        println!(
            "{}: {:.0} places, demand {:.0} → {:.0}, first shortage {:?}",
            unit.id,
            unit.capacity,
            c.demand[0],
            c.demand[last],
            c.first_shortage_year(&det.projection.years)
        );
    }

    let options = Options {
        uncertainty: Some(Spec {
            trajectories: 200,
            ..Spec::default()
        }),
        ..Options::default()
    };
    let mc = run(&scenario, &options, &|_, _| {})?;
    let summaries = mc.monte_carlo.as_ref().ok_or("no Monte Carlo summaries")?;
    let total = &summaries.services[0].total_demand;
    // Each summary holds its quantiles in the run's order of levels.
    let (p05, p95) = (
        summaries.quantile_index(0.05).ok_or("no p05")?,
        summaries.quantile_index(0.95).ok_or("no p95")?,
    );
    let last = summaries.year_index(2040).ok_or("no 2040")?;
    println!(
        "pupils in 2040 with 200 trajectories: mean {:.0}, 90 % interval {:.0}–{:.0}",
        total.mean[last], total.q[p05][last], total.q[p95][last]
    );
    // Each service's units, each named by its id.
    for u in summaries.services.iter().flat_map(|s| &s.units) {
        println!(
            "{}: probability of a shortage in 2040 {:.0} %",
            u.id,
            100.0 * u.p_shortage[last]
        );
    }
    // The deterministic run lies inside its own interval.
    assert!(total.q[p05][last] <= pupils(last) && pupils(last) <= total.q[p95][last]);

    // The headline figures, typed (what `kunta run` prints and writes as
    // `summary.json`).
    let summary = mc.summary(&scenario);
    let school = &summary.services[0];
    let pv = school.uncertainty.as_ref().ok_or("no intervals")?;
    println!(
        "{}: {:.0} → {:.0} {}s; present value {:.1} M€ (p05–p95 {:.1}–{:.1} M€) over {} trajectories",
        school.name,
        school.demand_first,
        school.demand_last,
        school.unit,
        school.present_value_eur / 1e6,
        pv.present_value_quantiles_eur.get("p05").unwrap_or(f64::NAN) / 1e6,
        pv.present_value_quantiles_eur.get("p95").unwrap_or(f64::NAN) / 1e6,
        summary.uncertainty.as_ref().map_or(0, |u| u.trajectories)
    );
    Ok(())
}
