//! Alignment in every trajectory against the deterministic alignment.

use super::*;

#[test]
fn without_spreads_aligned_trajectories_are_the_aligned_deterministic_run() {
    for closed in [false, true] {
        let (pop, inp) = setup(closed, 50.0);
        let mut det = project(&pop, 2024, 2034, Some(&inp)).unwrap();
        let (parent_of, control) = alignment_case(&det);
        let slots = [2, 5];
        let factors =
            crate::projection::align(&mut det.population, &parent_of, control.view(), &slots)
                .factors;
        let sv = school();
        let ev = evaluate(&sv, det.population.view(), &det.years, 2024, 0.03).unwrap();
        let services = [input(&sv)];
        let to = AlignTo {
            parent_of: &parent_of,
            control: control.view(),
            slots: &slots,
        };
        let mc = without_spreads(&pop, &inp, &services, ALL, Some(&to));
        let (_, _, _, nx) = det.population.dim();
        assert_population_is(&mc, &det.population, closed);
        let f = mc.alignment.as_ref().unwrap();
        assert_eq!(f.mean.len(), 2 * 2 * nx * slots.len());
        for pa in 0..2 {
            for s in 0..2 {
                for x in 0..nx {
                    for (j, k) in slots.iter().enumerate() {
                        let cell = ((pa * 2 + s) * nx + x) * slots.len() + j;
                        let want = factors[[*k, pa, s, x]];
                        assert!(
                            close(f.q[2][cell], want, 1e-12),
                            "{want} vs {}",
                            f.q[2][cell]
                        );
                    }
                }
            }
        }
        // The zero control (parent 1, female, age 3, the second slot): a factor of 0.
        let (parent, female) = (1, 0);
        assert_eq!(
            f.mean[((parent * 2 + female) * nx + 3) * slots.len() + 1],
            0.0
        );
        assert_p05_demand_is(&mc.services[0], &ev.demand);
        // Components are the projection's own, before alignment: the next year is
        // projected from the unaligned population.
        let plain = without_spreads(&pop, &inp, &services, ALL, None);
        assert_eq!(mc.components, plain.components);
        assert_eq!(mc.migration, plain.migration);
    }
}

/// Eight lanes align each as the deterministic run aligns one population (the same
/// year alignment with one lane): a lane's numbers do not depend on the others, with
/// the control shared out where the children are all 0 (by their totals that year, or
/// the base year's).
#[test]
fn lanes_align_as_the_deterministic_alignment_does() {
    let n = 2;
    // Two areas under one parent; year slots 0 (base) and 1 (aligned).
    let base = [[3.0, 1.0, 2.0, 2.0], [1.0, 1.0, 0.0, 2.0]];
    let mut control = ndarray::Array4::zeros((2, 1, 2, n));
    control[[1, 0, 0, 0]] = 12.0;
    control[[1, 0, 0, 1]] = 5.0;
    control[[1, 0, 1, 0]] = 0.0;
    control[[1, 0, 1, 1]] = 7.0;
    let parent_of = [0, 0];
    let slots = [1];
    let mut base_pop = ndarray::Array3::zeros((2, 2, n));
    for a in 0..2 {
        for s in 0..2 {
            for x in 0..n {
                base_pop[[a, s, x]] = base[a][s * n + x];
            }
        }
    }
    let parents = Parents::new(&parent_of, 1, base_pop.view());
    let mut cur = vec![[0.0; LANES]; 2 * 2 * n];
    for l in 0..LANES {
        for (i, c) in cur.iter_mut().enumerate() {
            // Age 1 of both areas is 0 in the even lanes: shared out by this
            // year's totals; lane 7 is all 0: by the base year's.
            let zero = (l + i) % 3 == 0 || l == 7 || (i % n == 1 && l % 2 == 0);
            c[l] = if zero { 0.0 } else { (1 + l + i) as f64 };
        }
    }
    let mut aligned = cur.clone();
    let mut factors = vec![[0.0; LANES]; 2 * n];
    align_year(
        &parents,
        control.index_axis(ndarray::Axis(0), 1),
        &cur,
        &mut aligned,
        &mut factors,
    );
    for l in 0..LANES {
        let mut pop = ndarray::Array4::zeros((2, 2, 2, n));
        for a in 0..2 {
            for s in 0..2 {
                for x in 0..n {
                    pop[[0, a, s, x]] = base[a][s * n + x];
                    pop[[1, a, s, x]] = cur[(a * 2 + s) * n + x][l];
                }
            }
        }
        let f = crate::projection::align(&mut pop, &parent_of, control.view(), &slots).factors;
        for a in 0..2 {
            for s in 0..2 {
                for x in 0..n {
                    let got = aligned[(a * 2 + s) * n + x][l];
                    let want = pop[[1, a, s, x]];
                    assert!(
                        close(got, want, 1e-14),
                        "lane {l} {a} {s} {x}: {got} vs {want}"
                    );
                }
            }
        }
        for s in 0..2 {
            for x in 0..n {
                let got = factors[s * n + x][l];
                let want = f[[1, 0, s, x]];
                assert!(
                    (got.is_nan() && want.is_nan()) || got == want,
                    "lane {l} factor {s} {x}: {got} vs {want}"
                );
            }
        }
    }
}
