//! Reference values computed once with SciPy 1.16.3 (scipy.special.kolmogorov,
//! scipy.stats.ks_2samp(method="exact"), scipy.stats.chi2.isf, scipy.stats.norm.ppf,
//! scipy.spatial.distance.jensenshannon(base=2)) on the inputs written here.

use super::*;

/// scipy.special.kolmogorov(sqrt(40 * 55 / 95) * 0.23636363636363636).
const KOLMOGOROV_AT_D: f64 = 0.15034268363507106;

fn close(actual: f64, expected: f64, rel: f64) {
    assert!(
        (actual - expected).abs() <= rel * expected.abs(),
        "{actual} vs {expected} (rel {rel})"
    );
}

#[test]
fn kolmogorov_matches_scipy_on_both_series() {
    for (z, expected) in [
        (0.3, 0.9999906941986655),
        (0.5, 0.9639452436648751),
        (0.8, 0.5441424115741981),
        (1.0, 0.26999967167735456),
        (1.1799, 0.12351204971188676),
        (1.18, 0.1234538094297657),
        (1.5, 0.022217962616525127),
        (2.0, 0.0006709252557796953),
        (3.0, 3.045995948942526e-08),
    ] {
        close(kolmogorov_sf(z), expected, 1e-10);
    }
    assert_eq!(kolmogorov_sf(0.0), 1.0);
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

#[test]
fn exact_ks_matches_scipy() {
    let a = sorted(vec![0.1, 0.5, 0.9, 1.3, 2.0]);
    let b = sorted(vec![0.3, 0.7, 1.1, 1.5, 1.8, 2.5, 3.0]);
    let ks = ks_2samp(&a, &b);
    assert_eq!(ks.method, KsMethod::Exact);
    close(ks.statistic, 0.37142857142857144, 1e-12);
    close(ks.p_value, 0.7373737373737375, 1e-9);

    let a = sorted((0..40).map(|i| (i as f64 * 0.37) % 1.0).collect());
    let b = sorted((0..55).map(|i| 0.2 + (i as f64 * 0.61) % 1.0).collect());
    let ks = ks_2samp(&a, &b);
    close(ks.statistic, 0.23636363636363636, 1e-12);
    close(ks.p_value, 0.12560787198852025, 1e-9);
    // The same statistic through the limiting distribution, what samples above
    // KS_EXACT_MAX_CELLS get: scipy.special.kolmogorov(sqrt(40*55/95) * D). It is
    // conservative here (0.150 against the exact 0.126; scipy's own "asymp", a finite-n
    // distribution, gives 0.1295).
    let en = (40.0 * 55.0) / 95.0f64;
    close(
        kolmogorov_sf(en.sqrt() * ks.statistic),
        KOLMOGOROV_AT_D,
        1e-10,
    );
}

#[test]
fn identical_samples_have_p_one_and_large_samples_go_asymptotic() {
    let a: Vec<f64> = (0..2000).map(|i| i as f64).collect();
    let ks = ks_2samp(&a, &a);
    assert_eq!(ks.statistic, 0.0);
    assert_eq!(ks.p_value, 1.0);
    assert_eq!(ks.method, KsMethod::Asymptotic);
    let shifted: Vec<f64> = a.iter().map(|v| v + 1000.0).collect();
    let ks = ks_2samp(&a, &shifted);
    close(ks.statistic, 0.5, 1e-12);
    assert!(ks.p_value < 1e-100, "{}", ks.p_value);
}

#[test]
fn chi2_and_normal_quantiles_match_scipy() {
    close(chi2_upper_quantile(9.0, 0.025), 19.022767798641638, 0.005);
    close(chi2_upper_quantile(9.0, 0.05), 16.91897760462045, 0.005);
    close(chi2_upper_quantile(4.0, 0.025), 11.143286781877796, 0.01);
    close(chi2_upper_quantile(19.0, 0.01), 36.19086912927005, 0.005);
    close(normal_quantile(0.001), -3.090232306167813, 1e-8);
    close(normal_quantile(0.025), -1.9599639845400545, 1e-8);
    close(normal_quantile(0.3), -0.5244005127080409, 1e-8);
    close(normal_quantile(0.975), 1.959963984540054, 1e-8);
}

#[test]
fn js_distance_matches_scipy_and_psi_is_symmetric_kl() {
    let p = [0.1, 0.2, 0.3, 0.4];
    let q = [0.25; 4];
    close(js_distance(&p, &q), 0.20050332253142814, 1e-12);
    assert_eq!(js_distance(&p, &p), 0.0);
    let expected: f64 = p.iter().zip(&q).map(|(a, b)| (b - a) * (b / a).ln()).sum();
    close(psi(&p, &q), expected, 1e-12);
    // An empty current bin is floored, not infinite.
    assert!(psi(&[0.5, 0.5], &[1.0, 0.0]).is_finite());
}

#[test]
fn quantile_bins_split_the_reference_evenly_and_merge_ties() {
    let r: Vec<f64> = (0..100).map(|i| i as f64).collect();
    let edges = quantile_edges(&r, 10);
    assert_eq!(edges.len(), 9);
    let props = proportions(&r, &edges);
    assert_eq!(props.len(), 10);
    for p in &props {
        close(*p, 0.1, 1e-12);
    }
    // A 0/1 feature gets one edge (at 0): two bins.
    let binary = sorted((0..100).map(|i| (i % 3 == 0) as u8 as f64).collect());
    let edges = quantile_edges(&binary, 10);
    assert_eq!(edges, vec![0.0, 1.0]);
    let props = proportions(&binary, &edges);
    assert_eq!(occupied_bins(&props, &props), 2);
    close(props[0], 0.66, 1e-12);
}
