//! Latent heads: how encoder outputs become latents, and their KL divergence to the prior.
//!
//! # Binary head: logit-normal posterior, Beta(α, α) prior
//!
//! Each latent is `z = sigmoid(y)`, `y = μ + σ·ε`, `ε ~ N(0, 1)`: a reparameterisable
//! distribution on (0, 1) that, like a Beta, can be centred, spread, or U-shaped. Against the
//! Beta(α, α) prior (α = 0.01 by default, as in the binary-codes poster) the KL divergence per
//! latent is, with `log z + log(1 − z) = −softplus(y) − softplus(−y)`:
//!
//! ```text
//! KL = E[log q(z) − log p(z)]
//!    = −log σ − ½ − ½ log 2π  +  α · E[softplus(y) + softplus(−y)]  +  log B(α, α)
//! ```
//!
//! The first three terms are the exact (negative) entropy of `y`; the α-term is estimated with
//! the reparameterised sample. Minimising it widens σ until the samples sit near 0 and 1 (the
//! U-shaped prior), so the decoder learns from nearly binary inputs — and the code bit,
//! "posterior mean > 0.5", is exactly `μ > 0` because `E[sigmoid(μ + σε)] > ½ ⇔ μ > 0`. That
//! makes the deployed bit the sign of one linear output, which the runtime's binarising head
//! computes in integers.
//!
//! # Gaussian head (beta-VAE)
//!
//! `z = μ + σ·ε` against N(0, 1), `KL = ½ Σ (μ² + σ² − 1 − log σ²)`, weighted by β with
//! optional capacity annealing (`β·|KL − C|`, Burgess et al. 2018).

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{sigmoid, softplus};

/// Which latent head a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// Logit-normal latents with a Beta(α, α) prior; codes are the signs of μ.
    #[default]
    Binary,
    /// Gaussian latents with a N(0, 1) prior (beta-VAE); float codes.
    Gaussian,
}

impl std::str::FromStr for HeadKind {
    type Err = crate::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [("binary", Self::Binary), ("gaussian", Self::Gaussian)];
        crate::vae::UnknownName::pick("head", name, &choices)
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7), for the constant `log B(α, α)`.
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x)
    } else {
        let x = x - 1.0;
        let t = x + 7.5;
        let series = G[1..]
            .iter()
            .enumerate()
            .fold(G[0], |s, (i, g)| s + g / (x + i as f64 + 1.0));
        0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
    }
}

/// `log B(α, α)`.
pub fn ln_beta_symmetric(alpha: f64) -> f64 {
    2.0 * ln_gamma(alpha) - ln_gamma(2.0 * alpha)
}

/// A sampled latent batch and its KL divergence to the prior.
#[derive(Debug)]
pub struct LatentSample {
    /// Latents fed to the decoder, `[batch, latent]`.
    pub z: Tensor<2>,
    /// KL per event, summed over latents, `[batch]`.
    pub kl: Tensor<1>,
}

/// Samples latents (or takes the mean when `sample` is false) and computes the KL.
///
/// With `hard` (binary head only) the decoder gets what is deployed, bits of exactly 0 or 1:
/// the sampled logit's sign, `[y > 0]`, with the gradient of `sigmoid(y)` passed straight
/// through (Bengio et al. 2013). Without it the decoder gets the soft `sigmoid(y)`, which
/// leaves it to guess what to make of hard bits at deployment.
///
/// # Shapes
/// `mu`, `log_sigma`: `[batch, latent]`.
pub fn sample(
    head: HeadKind,
    mu: Tensor<2>,
    log_sigma: Tensor<2>,
    alpha: f64,
    sample: bool,
    hard: bool,
) -> LatentSample {
    let [batch, latent] = mu.dims();
    let noise = if sample {
        Tensor::random(
            [batch, latent],
            Distribution::Normal(0.0, 1.0),
            &mu.device(),
        )
    } else {
        mu.zeros_like()
    };
    let sigma = log_sigma.clone().exp();
    let y = mu.clone() + sigma * noise;
    let half_log_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    match head {
        HeadKind::Binary => {
            let prior_term =
                (softplus(y.clone(), 1.0) + softplus(y.clone().neg(), 1.0)).mul_scalar(alpha);
            let kl = (log_sigma.neg() + prior_term)
                .add_scalar(-0.5 - half_log_two_pi + ln_beta_symmetric(alpha))
                .sum_dim(1)
                .squeeze_dim(1);
            let soft = sigmoid(y.clone());
            let z = if hard {
                let bits = y.greater_elem(0.0).float();
                soft.clone() + (bits - soft).detach()
            } else {
                soft
            };
            LatentSample { z, kl }
        }
        HeadKind::Gaussian => {
            let variance = log_sigma.clone().mul_scalar(2.0).exp();
            let kl = (mu.powi_scalar(2) + variance - log_sigma.mul_scalar(2.0))
                .add_scalar(-1.0)
                .mul_scalar(0.5)
                .sum_dim(1)
                .squeeze_dim(1);
            LatentSample { z: y, kl }
        }
    }
}

/// Binary codes of a batch: bit `k` is `μ_k > 0` (posterior mean above ½). Returned as 0/1
/// floats for the decoder.
pub fn binarise(mu: Tensor<2>) -> Tensor<2> {
    mu.greater_elem(0.0).float()
}

/// A penalty, in nats per event, on code bits that carry less than a bit about the event:
/// `Σ_k (ln 2 − I_k)`, where `I_k = H(m_k) − mean H(p_k)` is the information bit `k` shares
/// with the event across the batch (`p_k` the probability the sampled bit is 1, `m_k` its
/// batch mean, `H` the binary entropy in nats). It is zero for a bit that is balanced and
/// certain in every event; a constant bit and a coin flip (`p = ½` everywhere) each cost
/// ln 2. On top, `−½ Σ_{j<k} ln(1 − r²_jk)` for the correlation `r_jk` of two bits across
/// the batch (the mutual information of two Gaussians with that correlation), so bits do
/// not copy each other. `p_k = P(μ + σε > 0) = Φ(μ/σ)`, with `Φ(t) ≈ sigmoid(1.702 t)`,
/// keeps it differentiable.
///
/// # Shapes
/// `mu`, `log_sigma`: `[batch, latent]` → a scalar `[1]`.
pub fn bit_usage_penalty(mu: Tensor<2>, log_sigma: Tensor<2>) -> Tensor<1> {
    let [batch, bits] = mu.dims();
    let p = sigmoid((mu / log_sigma.exp()).mul_scalar(1.702)).clamp(1e-4, 1.0 - 1e-4);
    let entropy = |q: Tensor<2>| {
        let not = q.clone().neg().add_scalar(1.0);
        (q.clone() * q.log() + not.clone() * not.log()).neg()
    };
    let m = p.clone().mean_dim(0);
    let unused = entropy(p.clone()).mean_dim(0) - entropy(m.clone());
    let penalty = unused.add_scalar(std::f64::consts::LN_2).sum();
    if batch < 2 || bits < 2 {
        return penalty;
    }
    let centred = p - m;
    let variance = centred.clone().powi_scalar(2).mean_dim(0).add_scalar(1e-6);
    let scaled = centred / variance.clone().sqrt();
    let correlation = scaled
        .clone()
        .transpose()
        .matmul(scaled)
        .div_scalar(batch as f64);
    let squared = correlation.powi_scalar(2).clamp(0.0, 0.999);
    // The diagonal holds var / (var + 1e-6) squared, close to 1; take it out exactly.
    let diagonal = (variance.clone().sub_scalar(1e-6) / variance)
        .powi_scalar(2)
        .clamp(0.0, 0.999);
    let all = squared.neg().add_scalar(1.0).log().sum();
    let own = diagonal.neg().add_scalar(1.0).log().sum();
    // Each pair appears twice in the full matrix: −½ · ½ · (all − own).
    penalty + (all - own).mul_scalar(-0.25)
}

/// Posterior mean of each binary latent, `E[sigmoid(μ + σε)]`, with the probit approximation
/// `sigmoid(μ / sqrt(1 + πσ²/8))` (used to report how many latents sit near ½).
pub fn binary_mean(mu: Tensor<2>, log_sigma: Tensor<2>) -> Tensor<2> {
    let variance = log_sigma.mul_scalar(2.0).exp();
    sigmoid(
        mu / (variance
            .mul_scalar(std::f64::consts::PI / 8.0)
            .add_scalar(1.0))
        .sqrt(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_known_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-10);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-10);
        // Γ(0.01) = 99.4325851191506...
        assert!((ln_gamma(0.01) - 99.432_585_119_150_6f64.ln()).abs() < 1e-9);
        // B(1, 1) = 1, B(0.5, 0.5) = π.
        assert!(ln_beta_symmetric(1.0).abs() < 1e-12);
        assert!((ln_beta_symmetric(0.5) - std::f64::consts::PI.ln()).abs() < 1e-10);
    }

    fn values(t: Tensor<1>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn gaussian_kl_known_values() {
        let device = crate::backend::Backend::Flex.device();
        let mu = Tensor::<2>::from_floats([[0.0, 1.0], [2.0, 0.0]], &device);
        let log_sigma = Tensor::<2>::from_floats([[0.0, 0.0], [0.0, (0.5f32).ln()]], &device);
        let kl = values(sample(HeadKind::Gaussian, mu, log_sigma, 0.01, false, false).kl);
        // Row 0: 0 + ½·1 = 0.5. Row 1: ½·4 + ½(0.25 − 1 − ln 0.25) = 2 + 0.3181.
        assert!((kl[0] - 0.5).abs() < 1e-5, "{kl:?}");
        assert!(
            (kl[1] - (2.0 + 0.5 * (0.25 - 1.0 - 0.25f32.ln()))).abs() < 1e-5,
            "{kl:?}"
        );
    }

    #[test]
    fn binary_kl_matches_closed_form_at_the_mean() {
        // Without noise y = μ: KL = −log σ − ½ − ½log2π + α(softplus(μ)+softplus(−μ)) + log B(α,α).
        let device = crate::backend::Backend::Flex.device();
        let alpha = 0.01;
        let mu = Tensor::<2>::from_floats([[0.0, 3.0]], &device);
        let log_sigma = Tensor::<2>::from_floats([[0.0, 1.0]], &device);
        let kl =
            f64::from(values(sample(HeadKind::Binary, mu, log_sigma, alpha, false, false).kl)[0]);
        let sp = |x: f64| (1.0 + x.exp()).ln();
        let per = |mu: f64, ls: f64| {
            -ls - 0.5 - 0.5 * (2.0 * std::f64::consts::PI).ln()
                + alpha * (sp(mu) + sp(-mu))
                + ln_beta_symmetric(alpha)
        };
        assert!((kl - (per(0.0, 0.0) + per(3.0, 1.0))).abs() < 1e-3, "{kl}");
    }

    #[test]
    fn binary_kl_is_minimised_by_a_wide_posterior() {
        // The α-term grows like α·σ·sqrt(2/π) and the entropy term falls like −log σ, so the
        // expected KL is lowest near σ = 1/(α·sqrt(2/π)) ≈ 125 for α = 0.01: U-shaped samples.
        let device = crate::backend::Backend::Flex.device();
        let expected_kl = |log_sigma: f32| {
            let mu = Tensor::<2>::zeros([4096, 1], &device);
            let ls = Tensor::<2>::full([4096, 1], log_sigma, &device);
            values(sample(HeadKind::Binary, mu, ls, 0.01, true, false).kl)
                .iter()
                .sum::<f32>()
                / 4096.0
        };
        let narrow = expected_kl(0.0);
        let wide = expected_kl(125f32.ln());
        assert!(wide < narrow - 2.0, "wide {wide} narrow {narrow}");
    }

    #[test]
    fn hard_samples_are_bits_with_the_soft_gradient() {
        let device = crate::backend::Backend::Flex.training_device();
        let mu = Tensor::<2>::from_floats([[-2.0, 0.5, 3.0]], &device).require_grad();
        let log_sigma = Tensor::<2>::full([1, 3], -8.0, &device);
        let z = sample(HeadKind::Binary, mu.clone(), log_sigma, 0.01, false, true).z;
        assert_eq!(
            z.clone().into_data().try_to_vec::<f32>().unwrap(),
            vec![0.0, 1.0, 1.0]
        );
        let gradients = z.sum().backward();
        let gradient = mu
            .grad(&gradients)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let sigmoid_slope = |x: f32| (1.0 / (1.0 + (-x).exp())) * (1.0 / (1.0 + x.exp()));
        for (g, x) in gradient.iter().zip([-2.0, 0.5, 3.0]) {
            assert!((g - sigmoid_slope(x)).abs() < 1e-5, "{gradient:?}");
        }
    }

    #[test]
    fn bit_usage_penalty_is_zero_for_certain_balanced_bits_and_punishes_waste() {
        let device = crate::backend::Backend::Flex.device();
        // Four events, two bits: all four combinations, nearly deterministic.
        let fair = Tensor::<2>::from_floats(
            [[-9.0, -9.0], [-9.0, 9.0], [9.0, -9.0], [9.0, 9.0]],
            &device,
        );
        let narrow = Tensor::<2>::full([4, 2], -8.0, &device);
        let value = |mu: Tensor<2>| values(bit_usage_penalty(mu, narrow.clone()))[0];
        assert!(value(fair).abs() < 1e-2);
        // A constant second bit costs about ln 2.
        let constant =
            Tensor::<2>::from_floats([[-9.0, 9.0], [-9.0, 9.0], [9.0, 9.0], [9.0, 9.0]], &device);
        assert!((value(constant) - std::f32::consts::LN_2).abs() < 0.05);
        // A copied bit costs its correlation: −½ ln(1 − 0.999) ≈ 3.5 nats.
        let copied = Tensor::<2>::from_floats(
            [[-9.0, -9.0], [-9.0, -9.0], [9.0, 9.0], [9.0, 9.0]],
            &device,
        );
        let copied = value(copied);
        assert!(copied > 3.0, "{copied}");
        // Coin flips (μ = 0) are balanced and uncorrelated but carry nothing: ln 2 each.
        let wide = Tensor::<2>::zeros([4, 2], &device);
        let coins = values(bit_usage_penalty(wide.clone(), wide))[0];
        assert!(
            (coins - 2.0 * std::f32::consts::LN_2).abs() < 0.05,
            "{coins}"
        );
    }

    #[test]
    fn bits_are_signs_of_mu_and_means_agree() {
        let device = crate::backend::Backend::Flex.device();
        let mu = Tensor::<2>::from_floats([[-1.0, 0.0, 0.5]], &device);
        let bits = binarise(mu.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(bits, vec![0.0, 0.0, 1.0]);
        let means = binary_mean(mu, Tensor::<2>::zeros([1, 3], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(means[0] < 0.5 && (means[1] - 0.5).abs() < 1e-6 && means[2] > 0.5);
    }
}
