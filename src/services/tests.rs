//! Small cases computed by hand.

use super::*;
use crate::rates::RateRow;
use ndarray::Array4;

/// One area, years `years`, ages 0..=nx-1, every cell `v` split evenly by sex.
fn flat_pop(ny: usize, nx: usize, v: f64) -> Array4<f64> {
    Array4::from_elem((ny, 1, 2, nx), v / 2.0)
}

fn close(a: f64, b: f64) {
    assert!(
        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
        "{a} is not {b} (difference {})",
        a - b
    );
}

#[test]
fn demand_by_segment() {
    // 100 persons a year at each age 7..=8; coverage 0.9; shares 0.764/0.139/0.097.
    let pop = flat_pop(1, 10, 100.0);
    let seg = |id: &str, share: f64| Segment {
        share: Value::Constant(share),
        ..Segment::new(id)
    };
    let s = Service {
        coverage: Value::Constant(0.9),
        segments: vec![
            seg("general", 0.764),
            seg("intensified", 0.139),
            seg("special", 0.097),
        ],
        ..Service::new("school", (7, 8))
    };
    let d = demand(&s, pop.view(), &[2025]).unwrap();
    assert_eq!(d.dim(), (3, 1, 1, 2));
    close(d[[0, 0, 0, 0]], 100.0 * 0.9 * 0.764);
    close(d[[1, 0, 0, 1]], 100.0 * 0.9 * 0.139);
    close(d[[2, 0, 0, 0]], 100.0 * 0.9 * 0.097);
    let total: f64 = d.sum();
    close(total, 2.0 * 90.0);
}

#[test]
fn demand_of_one_sex_and_a_linear_coverage_path() {
    let mut pop = flat_pop(3, 5, 10.0);
    pop[[1, 0, Sex::Female.index(), 3]] = 40.0;
    let s = Service {
        sex: Some(Sex::Female),
        coverage: Value::Path(YearPath::Linear {
            from: (2025, 0.5),
            to: (2027, 1.0),
        }),
        ..Service::new("f", (3, 3))
    };
    let d = demand(&s, pop.view(), &[2025, 2026, 2027]).unwrap();
    close(d[[0, 0, 0, 0]], 5.0 * 0.5);
    close(d[[0, 0, 1, 0]], 40.0 * 0.75);
    close(d[[0, 0, 2, 0]], 5.0);
}

#[test]
fn coverage_by_age_from_a_table() {
    let areas = ["01".to_string()];
    let rows: Vec<RateRow> = [(1u16, 0.4), (2, 0.8)]
        .iter()
        .map(|&(x, v)| RateRow {
            area: None,
            year: None,
            sex: None,
            age: Some(AgeIndex::Age(x)),
            value: v,
        })
        .collect();
    let t = RateTable::from_rows(&rows, 1.0, &areas).unwrap();
    let s = Service {
        coverage: Value::Table(t),
        ..Service::new("ecec", (1, 2))
    };
    let d = demand(&s, flat_pop(1, 4, 50.0).view(), &[2025]).unwrap();
    close(d[[0, 0, 0, 0]], 20.0);
    close(d[[0, 0, 0, 1]], 40.0);
    // An age the table lacks is an error that names the key.
    let s = Service { ages: (1, 3), ..s };
    let e = demand(&s, flat_pop(1, 4, 50.0).view(), &[2025]).unwrap_err();
    assert!(e.to_string().contains("`coverage`"), "{e}");
}

#[test]
fn shares_not_summing_to_one_are_refused() {
    let s = Service {
        segments: vec![
            Segment {
                share: Value::Constant(0.6),
                ..Segment::new("a")
            },
            Segment {
                share: Value::Constant(0.3),
                ..Segment::new("b")
            },
        ],
        ..Service::new("s", (1, 2))
    };
    let e = demand(&s, flat_pop(1, 4, 1.0).view(), &[2025]).unwrap_err();
    assert!(matches!(e, ServiceError::Shares { .. }), "{e}");
}

#[test]
fn ages_past_the_population_are_refused() {
    let s = Service::new("s", (3, 9));
    let e = demand(&s, flat_pop(1, 5, 1.0).view(), &[2025]).unwrap_err();
    assert!(matches!(e, ServiceError::Ages { omega: 4, .. }), "{e}");
}

#[test]
fn group_formation_takes_the_ceiling() {
    assert_eq!(groups(24.9, 25.0), 1.0);
    assert_eq!(groups(25.0, 25.0), 1.0);
    assert_eq!(groups(25.2, 25.0), 2.0);
    assert_eq!(groups(0.0, 25.0), 0.0);
    assert_eq!(groups(50.0 + 1e-8, 25.0), 2.0);
    assert_eq!(groups(1e-3, 25.0), 1.0);
}

/// Grades 1–2 (ages 7–8) with 24.9 and 25.2 pupils: general 80 %, special 20 %.
fn school(pupils: [f64; 2]) -> (Service, Array4<f64>) {
    let mut pop = Array4::zeros((1, 1, 2, 9));
    pop[[0, 0, 0, 7]] = pupils[0];
    pop[[0, 0, 0, 8]] = pupils[1];
    let cost = Cost {
        per_unit: 1000.0,
        per_m2: 100.0,
        per_fte: 60_000.0,
        fixed: 5000.0,
        overhead: 0.1,
        growth: [0.0; 4],
    };
    let general = Segment {
        share: Value::Constant(0.8),
        max_group_size: Some(25.0),
        floor_area_per_unit: Some(10.0),
        cost,
        ..Segment::new("general")
    };
    let special = Segment {
        share: Value::Constant(0.2),
        max_group_size: Some(8.0),
        hours_factor: 1.5,
        support_hours_per_unit: 2.0,
        floor_area_per_unit: Some(15.0),
        cost: Cost { fixed: 0.0, ..cost },
        ..Segment::new("special")
    };
    let s = Service {
        segments: vec![general, special],
        teaching: Some(Teaching {
            lesson_hours: vec![20.0, 22.0],
            teaching_obligation: 24.0,
        }),
        ..Service::new("basic", (7, 8))
    };
    (s, pop)
}

#[test]
fn lesson_hours_groups_and_teacher_fte() {
    let (s, pop) = school([31.125, 31.5]);
    // general: 24.9 and 25.2 pupils → 1 + 2 groups; special: 6.225 and 6.3 → 1 + 1.
    let r = evaluate(&s, pop.view(), &[2025], 2025, 0.0).unwrap();
    assert_eq!(r.groups.as_ref().unwrap()[[0, 0]], 5.0);
    let hours = (20.0 + 2.0 * 22.0) + 1.5 * (20.0 + 22.0);
    close(r.weekly_hours.as_ref().unwrap()[[0, 0]], hours);
    let special_pupils = 0.2 * (31.125 + 31.5);
    let fte = (hours + 2.0 * special_pupils) / 24.0;
    close(r.teacher_fte.as_ref().unwrap()[[0, 0]], fte);
    let general_pupils = 0.8 * (31.125 + 31.5);
    close(
        r.floor_area_m2.as_ref().unwrap()[[0, 0]],
        10.0 * general_pupils + 15.0 * special_pupils,
    );
    assert!(r.staff_fte.is_none());
}

#[test]
fn each_cost_component() {
    let (s, pop) = school([31.125, 31.5]);
    let r = evaluate(&s, pop.view(), &[2025], 2025, 0.0).unwrap();
    let (gp, sp) = (0.8 * 62.625, 0.2 * 62.625);
    let units = 1000.0 * (gp + sp);
    let premises = 100.0 * (10.0 * gp + 15.0 * sp);
    let fte_g = (20.0 + 2.0 * 22.0) / 24.0;
    let fte_s = (1.5 * 42.0 + 2.0 * sp) / 24.0;
    let staff = 60_000.0 * (fte_g + fte_s);
    let fixed = 5000.0;
    let overhead = 0.1 * (units + premises + staff + fixed);
    let want = [
        units,
        premises,
        staff,
        fixed,
        overhead,
        units + premises + staff + fixed + overhead,
    ];
    for (c, w) in want.iter().enumerate() {
        close(r.costs[c][[0, 0]], *w);
    }
}

#[test]
fn real_growth_and_present_value() {
    let mut pop = Array4::zeros((3, 1, 2, 3));
    for k in 0..3 {
        pop[[k, 0, 0, 2]] = 10.0;
    }
    let s = Service {
        segments: vec![Segment {
            cost: Cost {
                per_unit: 100.0,
                growth: [0.02, 0.0, 0.0, 0.0],
                ..Cost::default()
            },
            ..Segment::new("all")
        }],
        ..Service::new("care", (2, 2))
    };
    let r = evaluate(&s, pop.view(), &[2024, 2025, 2026], 2024, 0.035).unwrap();
    let costs = [1000.0, 1000.0 * 1.02, 1000.0 * 1.02 * 1.02];
    for (k, c) in costs.iter().enumerate() {
        close(r.costs[0][[0, k]], *c);
        close(r.costs[5][[0, k]], *c);
    }
    let pv = costs[0] + costs[1] / 1.035 + costs[2] / (1.035 * 1.035);
    close(r.present_value[0], pv);
    close(r.present_value[5], pv);
}

#[test]
fn staff_by_ratio() {
    let s = Service {
        segments: vec![Segment {
            units_per_fte: Some(7.0),
            cost: Cost {
                per_fte: 50_000.0,
                ..Cost::default()
            },
            ..Segment::new("all")
        }],
        ..Service::new("ecec", (1, 2))
    };
    let r = evaluate(&s, flat_pop(1, 4, 35.0).view(), &[2025], 2025, 0.0).unwrap();
    close(r.staff_fte.as_ref().unwrap()[[0, 0]], 10.0);
    close(r.costs[2][[0, 0]], 500_000.0);
}

#[test]
fn a_fixed_cost_per_service_follows_demand() {
    let mut pop = Array4::zeros((1, 2, 2, 2));
    pop[[0, 0, 0, 1]] = 30.0;
    pop[[0, 1, 0, 1]] = 10.0;
    let s = Service {
        segments: vec![Segment {
            cost: Cost {
                fixed: 1000.0,
                overhead: 0.5,
                ..Cost::default()
            },
            ..Segment::new("all")
        }],
        fixed_per: FixedPer::Service,
        ..Service::new("s", (1, 1))
    };
    let r = evaluate(&s, pop.view(), &[2025], 2025, 0.0).unwrap();
    close(r.costs[3][[0, 0]], 750.0);
    close(r.costs[3][[1, 0]], 250.0);
    close(r.costs[4][[0, 0]], 375.0);
    close(r.costs[5].sum(), 1500.0);
}

#[test]
fn teaching_checks_name_the_key() {
    let (mut s, pop) = school([10.0, 10.0]);
    s.teaching.as_mut().unwrap().lesson_hours.push(24.0);
    let e = evaluate(&s, pop.view(), &[2025], 2025, 0.0).unwrap_err();
    assert!(e.to_string().contains("teaching.lesson_hours"), "{e}");
    let (mut s, pop) = school([10.0, 10.0]);
    s.segments[1].max_group_size = None;
    let e = evaluate(&s, pop.view(), &[2025], 2025, 0.0).unwrap_err();
    assert!(
        e.to_string().contains("segment[special].max_group_size"),
        "{e}"
    );
}

#[test]
fn demand_reads_any_memory_layout_of_the_population() {
    // Every (year, area, sex, age) cell its own value, in the standard layout, in the
    // projection's (an area's years together), every other area of a larger array,
    // and with the areas reversed (a negative stride).
    let (ny, na, nx) = (3, 4, 12);
    let pop = Array4::from_shape_fn((ny, na, 2, nx), |(k, a, s, x)| {
        1.0 + 1000.0 * k as f64 + 100.0 * a as f64 + 10.0 * s as f64 + 0.5 * x as f64
    });
    let seg = |id: &str, share: f64| Segment {
        share: Value::Constant(share),
        ..Segment::new(id)
    };
    let s = Service {
        coverage: Value::Path(YearPath::Linear {
            from: (2025, 0.5),
            to: (2027, 0.9),
        }),
        segments: vec![seg("a", 0.3), seg("b", 0.7)],
        ..Service::new("s", (3, 9))
    };
    let years = [2025, 2026, 2027];
    let standard = demand(&s, pop.view(), &years).unwrap();
    assert!(standard.iter().all(|v| *v > 0.0));
    let mut area_first = Array4::<f64>::zeros((na, ny, 2, nx));
    area_first.assign(&pop.view().permuted_axes([1, 0, 2, 3]));
    let view = area_first.view().permuted_axes([1, 0, 2, 3]);
    assert!(!view.is_standard_layout());
    assert_eq!(demand(&s, view, &years).unwrap(), standard);
    let mut wide = Array4::<f64>::from_elem((ny, 2 * na, 2, nx), f64::NAN);
    wide.slice_mut(ndarray::s![.., ..;2, .., ..]).assign(&pop);
    let every_other = wide.slice(ndarray::s![.., ..;2, .., ..]);
    assert!(every_other.as_slice_memory_order().is_none());
    assert_eq!(demand(&s, every_other, &years).unwrap(), standard);
    let reversed = demand(&s, pop.slice(ndarray::s![.., ..;-1, .., ..]), &years).unwrap();
    let mut back = standard.clone();
    back.invert_axis(ndarray::Axis(1));
    assert_eq!(reversed, back);
}
