//! L2-regularized logistic regression, fitted by Newton's method (iteratively reweighted least
//! squares). Small on purpose: a dense Hessian over about a hundred features, rows stored
//! sparse, a Cholesky solve per iteration. No crate: the rescore binary has a size budget, and
//! this is the textbook algorithm (Hastie, Tibshirani, Friedman, *The Elements of Statistical
//! Learning*, 2nd ed., section 4.4.1), checked below against closed forms and a published fit.
//!
//! Minimizes `-Σ [y log p + (1 - y) log(1 - p)] + (l2 / 2) Σ w_j²` over the intercept `b` and
//! the weights `w`, where `p = σ(b + w·x)`; the intercept is not penalized. Each iteration
//! solves `H Δ = g` (gradient `g = Σ (p - y) x̃ + l2 [0, w]`, Hessian
//! `H = Σ p(1 - p) x̃ x̃ᵀ + l2 diag(0, 1, ..., 1)`, `x̃ = [1, x]`) and steps `θ ← θ - t Δ`,
//! halving `t` until the objective does not increase. With `l2 > 0` the objective is strictly
//! convex, so this converges to the one minimum. Stops when the largest coordinate change is
//! below `tolerance`, or after `max_iterations` (reported as not converged). Deterministic:
//! starts from zero weights and the log-odds of the base rate, and sums rows in the order given.

/// One example's features: `(feature index, value)`, each index at most once.
pub type Row = Vec<(usize, f64)>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub l2: f64,
    pub max_iterations: u32,
    /// Converged when no coordinate moved more than this in the last step.
    pub tolerance: f64,
}

impl Options {
    pub fn with_l2(l2: f64) -> Options {
        Options {
            l2,
            max_iterations: 100,
            tolerance: 1e-8,
        }
    }
}

/// A fitted model and how the fit went.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub iterations: u32,
    pub converged: bool,
    /// The largest coordinate change of the last step.
    pub last_change: f64,
    /// The penalized negative log-likelihood at the answer.
    pub objective: f64,
}

/// The logistic function, without overflow for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^z)`, stable for large |z|.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn margin(theta: &[f64], row: &Row) -> f64 {
    theta[0] + row.iter().map(|(j, x)| theta[j + 1] * x).sum::<f64>()
}

/// The penalized negative log-likelihood: `Σ [softplus(z) - y z] + (l2 / 2) |w|²`.
fn objective(theta: &[f64], rows: &[Row], labels: &[bool], l2: f64) -> f64 {
    let loss: f64 = rows
        .iter()
        .zip(labels)
        .map(|(row, &y)| {
            let z = margin(theta, row);
            softplus(z) - if y { z } else { 0.0 }
        })
        .sum();
    loss + 0.5 * l2 * theta[1..].iter().map(|w| w * w).sum::<f64>()
}

/// Fits `dim` weights and an intercept to `rows` and `labels` (equal lengths).
pub fn fit(rows: &[Row], labels: &[bool], dim: usize, opts: &Options) -> Fit {
    assert_eq!(rows.len(), labels.len(), "one label per row");
    let n = dim + 1;
    let mut theta = vec![0.0; n];
    let positives = labels.iter().filter(|y| **y).count() as f64;
    let total = labels.len().max(1) as f64;
    // Start at the base rate's log-odds (clamped away from 0 and 1): fewer iterations.
    let base = (positives / total).clamp(1e-6, 1.0 - 1e-6);
    theta[0] = (base / (1.0 - base)).ln();
    let mut obj = objective(&theta, rows, labels, opts.l2);
    let mut iterations = 0;
    let mut last_change = f64::INFINITY;
    let mut converged = false;
    let mut grad = vec![0.0; n];
    let mut hess = vec![0.0; n * n];
    while iterations < opts.max_iterations {
        iterations += 1;
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for (row, &y) in rows.iter().zip(labels) {
            let p = sigmoid(margin(&theta, row));
            let r = p - if y { 1.0 } else { 0.0 };
            let w = p * (1.0 - p);
            grad[0] += r;
            hess[0] += w;
            for &(j, xj) in row {
                grad[j + 1] += r * xj;
                hess[j + 1] += w * xj;
                for &(k, xk) in row {
                    // Lower triangle only; mirrored below.
                    if k <= j {
                        hess[(j + 1) * n + k + 1] += w * xj * xk;
                    }
                }
            }
        }
        for j in 1..n {
            grad[j] += opts.l2 * theta[j];
            hess[j * n + j] += opts.l2;
            hess[j * n] = hess[j];
        }
        for j in 1..n {
            for k in (j + 1)..n {
                hess[j * n + k] = hess[k * n + j];
            }
        }
        let Some(step) = solve_spd(&mut hess, &grad, n) else {
            // Not positive definite (only possible with l2 = 0 and a constant or duplicated
            // column): stop where we are, reported as not converged.
            break;
        };
        let mut t = 1.0;
        let mut candidate = theta.clone();
        let mut cand_obj;
        loop {
            for i in 0..n {
                candidate[i] = theta[i] - t * step[i];
            }
            cand_obj = objective(&candidate, rows, labels, opts.l2);
            // Accept any step that does not increase the objective (up to rounding).
            if cand_obj <= obj + 1e-12 * obj.abs().max(1.0) || t < 1e-10 {
                break;
            }
            t *= 0.5;
        }
        last_change = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
        theta = candidate;
        obj = cand_obj;
        if last_change < opts.tolerance {
            converged = true;
            break;
        }
    }
    Fit {
        intercept: theta[0],
        weights: theta[1..].to_vec(),
        iterations,
        converged,
        last_change,
        objective: obj,
    }
}

/// Solves `A x = b` for a symmetric positive definite `A` (n × n, row-major) by Cholesky
/// (`A = L Lᵀ`, `A` overwritten with `L`); `None` when `A` is not positive definite.
fn solve_spd(a: &mut [f64], b: &[f64], n: usize) -> Option<Vec<f64>> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        // NaN (a non-finite input) is refused too.
        if d.is_nan() || d <= 1e-12 {
            return None;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in (j + 1)..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    // L y = b, then Lᵀ x = y.
    let mut y = b.to_vec();
    for i in 0..n {
        for k in 0..i {
            y[i] -= a[i * n + k] * y[k];
        }
        y[i] /= a[i * n + i];
    }
    for i in (0..n).rev() {
        for k in (i + 1)..n {
            y[i] -= a[k * n + i] * y[k];
        }
        y[i] /= a[i * n + i];
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit(p: f64) -> f64 {
        (p / (1.0 - p)).ln()
    }

    fn unpenalized() -> Options {
        // l2 = 0: the plain maximum-likelihood fit, whose answers have closed forms below.
        Options {
            l2: 0.0,
            max_iterations: 100,
            tolerance: 1e-12,
        }
    }

    #[test]
    fn intercept_only_is_the_log_odds_of_the_base_rate() {
        let labels: Vec<bool> = (0..40).map(|i| i % 4 == 0).collect();
        let rows = vec![Row::new(); 40];
        let f = fit(&rows, &labels, 0, &unpenalized());
        assert!(f.converged);
        assert!((f.intercept - logit(10.0 / 40.0)).abs() < 1e-9);
    }

    /// One binary feature: the intercept is the log-odds where x = 0 and the weight the log of
    /// the odds ratio (the 2 × 2 table's closed form).
    #[test]
    fn binary_feature_gives_the_log_odds_ratio() {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        // x = 0: 3 of 12 positive; x = 1: 14 of 20 positive.
        for i in 0..12 {
            rows.push(Row::new());
            labels.push(i < 3);
        }
        for i in 0..20 {
            rows.push(vec![(0, 1.0)]);
            labels.push(i < 14);
        }
        let f = fit(&rows, &labels, 1, &unpenalized());
        assert!(f.converged, "{f:?}");
        let b0 = logit(3.0 / 12.0);
        let b1 = logit(14.0 / 20.0) - b0;
        assert!((f.intercept - b0).abs() < 1e-9, "{} vs {b0}", f.intercept);
        assert!((f.weights[0] - b1).abs() < 1e-9, "{} vs {b1}", f.weights[0]);
    }

    /// The worked example of Wikipedia's "Logistic regression" article (hours studied vs
    /// passing an exam, 20 students): intercept -4.0777, hours 1.5046.
    #[test]
    fn reproduces_the_published_hours_studied_fit() {
        let hours = [
            0.50, 0.75, 1.00, 1.25, 1.50, 1.75, 1.75, 2.00, 2.25, 2.50, 2.75, 3.00, 3.25, 3.50,
            4.00, 4.25, 4.50, 4.75, 5.00, 5.50,
        ];
        let pass = [0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1];
        let rows: Vec<Row> = hours.iter().map(|h| vec![(0, *h)]).collect();
        let labels: Vec<bool> = pass.iter().map(|p| *p == 1).collect();
        let f = fit(&rows, &labels, 1, &unpenalized());
        assert!(f.converged);
        assert!((f.intercept - -4.0777).abs() < 5e-4, "{}", f.intercept);
        assert!((f.weights[0] - 1.5046).abs() < 5e-4, "{}", f.weights[0]);
        assert!(f.iterations < 15, "Newton converges in a few steps: {f:?}");
    }

    /// With a penalty there is no closed form; the optimum is where the penalized gradient is
    /// zero: Σ (y - p) = 0 for the intercept and Σ (y - p) x_j = l2 w_j for each weight.
    #[test]
    fn penalized_fit_satisfies_its_optimality_conditions() {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..300usize {
            let a = (i % 3) as f64;
            let b = if i % 5 == 0 { 1.0 } else { 0.0 };
            let mut row = vec![(0, a)];
            if b > 0.0 {
                row.push((2, b));
            }
            if i % 7 == 0 {
                row.push((1, 1.0));
            }
            rows.push(row);
            labels.push((i * 37 + (i % 3) * 11) % 10 < 3 + 2 * (i % 3));
        }
        let l2 = 2.5;
        let f = fit(&rows, &labels, 3, &Options::with_l2(l2));
        assert!(f.converged);
        let mut theta = vec![f.intercept];
        theta.extend(&f.weights);
        let mut g = [0.0f64; 4];
        for (row, &y) in rows.iter().zip(&labels) {
            let r = if y { 1.0 } else { 0.0 } - sigmoid(margin(&theta, row));
            g[0] += r;
            for &(j, x) in row {
                g[j + 1] += r * x;
            }
        }
        assert!(g[0].abs() < 1e-6, "{g:?}");
        for j in 0..3 {
            assert!((g[j + 1] - l2 * f.weights[j]).abs() < 1e-6, "{g:?} {f:?}");
        }
        // The penalty shrinks: the same data unpenalized gives larger weights.
        let free = fit(&rows, &labels, 3, &unpenalized());
        let norm = |w: &[f64]| w.iter().map(|x| x * x).sum::<f64>();
        assert!(norm(&f.weights) < norm(&free.weights));
    }

    /// Perfectly separable data has no unpenalized optimum; the penalty keeps the weights
    /// finite and the fit converges.
    #[test]
    fn separable_data_stays_finite_under_the_penalty() {
        let rows: Vec<Row> = (0..50).map(|i| vec![(0, i as f64 / 10.0)]).collect();
        let labels: Vec<bool> = (0..50).map(|i| i >= 25).collect();
        let f = fit(&rows, &labels, 1, &Options::with_l2(1.0));
        assert!(f.converged && f.weights[0].is_finite() && f.weights[0] > 0.0);
    }

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(800.0) == 1.0 && sigmoid(-800.0) >= 0.0);
        assert!(softplus(800.0).is_finite() && softplus(-800.0) >= 0.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] x = [2, 1]  ->  x = [0.5, 0].
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(solve_spd(&mut singular, &[1.0, 1.0], 2).is_none());
    }
}
