//! The acceptance of issue 8 on synthetic data: a 0.1σ mean shift with n = 10,000 is
//! flagged by both PSI and KS, and same-distribution samples are flagged in at most 5%
//! of 100 seeds at α = 0.05 (the combined decision of PSI, KS and JS).

use super::*;
use crate::tensor::random::SplitMix64;

fn normal(seed: u64, n: usize, shift: f64) -> Feature {
    Feature {
        name: "x".into(),
        values: SplitMix64::stream(seed, 0, 0)
            .normals(n)
            .iter()
            .map(|v| v + shift)
            .collect(),
        missing: 0,
    }
}

fn defaults() -> Thresholds {
    Thresholds {
        alpha: DEFAULT_ALPHA,
        features: 1,
        psi: None,
        js: DEFAULT_JS,
        bins: DEFAULT_BINS,
    }
}

#[test]
fn a_tenth_sigma_shift_is_flagged_by_psi_and_ks() {
    for seed in 0..20 {
        let r = normal(2 * seed, 10_000, 0.0);
        let c = normal(2 * seed + 1, 10_000, 0.1);
        let d = score("x", "input", &r, &c, &defaults()).unwrap();
        assert!(d.exceeded.contains(&"psi"), "seed {seed}: {d:?}");
        assert!(d.exceeded.contains(&"ks"), "seed {seed}: {d:?}");
        // PSI of a 0.1σ shift is about 0.01 (0.0045 to 0.020 over these seeds): far
        // below the conventional 0.1, which is why the default threshold is the
        // sample-size-aware one (0.0038 for n = m = 10,000 and 10 bins).
        assert!(d.psi > 0.004 && d.psi < 0.025, "seed {seed}: psi {}", d.psi);
        assert!(d.psi_threshold < 0.005, "{}", d.psi_threshold);
        assert_eq!(d.ks_method, KsMethod::Asymptotic);
        assert!(d.js_distance < DEFAULT_JS);
    }
    // With the conventional fixed PSI threshold the same shift is not a PSI drift.
    let fixed = Thresholds {
        psi: Some(0.1),
        ..defaults()
    };
    let d = score(
        "x",
        "input",
        &normal(0, 10_000, 0.0),
        &normal(1, 10_000, 0.1),
        &fixed,
    )
    .unwrap();
    assert_eq!(d.exceeded, ["ks"]);
}

#[test]
fn same_distribution_is_flagged_in_at_most_five_of_100_seeds() {
    let t = defaults();
    let mut flagged = 0;
    let (mut psi_only, mut ks_only) = (0, 0);
    for seed in 0..100u64 {
        let r = normal(1000 + 2 * seed, 10_000, 0.0);
        let c = normal(1001 + 2 * seed, 10_000, 0.0);
        let d = score("x", "input", &r, &c, &t).unwrap();
        flagged += usize::from(d.drifted);
        psi_only += usize::from(d.exceeded.contains(&"psi"));
        ks_only += usize::from(d.exceeded.contains(&"ks"));
    }
    eprintln!("same distribution: {flagged}/100 flagged (psi {psi_only}, ks {ks_only})");
    assert!(flagged <= 5, "{flagged} of 100 seeds flagged");
}

#[test]
fn empty_side_is_not_scored() {
    let empty = Feature {
        name: "x".into(),
        values: vec![],
        missing: 3,
    };
    assert!(score("x", "input", &empty, &normal(0, 10, 0.0), &defaults()).is_none());
}
