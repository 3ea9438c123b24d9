//! 32 × 32 sprites: a square, an ellipse or a triangle at a random position, rotation and
//! scale, the classic test of whether latents disentangle independent factors.
//!
//! Factors: shape (0 square, 1 ellipse, 2 triangle), scale (0.5..1), rotation (radians,
//! 0..2π), x and y (0..1, the centre across the free area of the image).

use ndarray::{Array2, Array3};
use rand::{RngExt, SeedableRng, rngs::StdRng};

use super::Simulation;

/// Image side in pixels.
pub const SIDE: usize = 32;

/// Factors per sprite (the columns of [`Simulation::factors`]).
pub const FACTORS: usize = 5;

fn inside(shape: u8, u: f32, v: f32) -> bool {
    match shape {
        0 => u.abs() <= 1.0 && v.abs() <= 1.0,
        1 => u * u + (v * 1.6) * (v * 1.6) <= 1.0,
        _ => (-0.8..=1.0).contains(&v) && u.abs() <= (1.0 - v) * 0.6,
    }
}

/// Simulates `count` sprites.
pub fn simulate(count: usize, seed: u64) -> Simulation {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut images = Array3::<f32>::zeros((count, SIDE, SIDE));
    let mut factors = Array2::<f32>::zeros((count, FACTORS));
    for n in 0..count {
        let shape = rng.random_range(0u8..3);
        let scale = rng.random_range(0.5f32..1.0);
        let rotation = rng.random_range(0.0f32..std::f32::consts::TAU);
        let (x, y) = (rng.random_range(0.0f32..1.0), rng.random_range(0.0f32..1.0));
        for (k, value) in [f32::from(shape), scale, rotation, x, y]
            .into_iter()
            .enumerate()
        {
            factors[[n, k]] = value;
        }
        let half = scale * 5.0; // half-size in pixels
        let margin = 6.0;
        let (cx, cy) = (
            margin + x * (SIDE as f32 - 2.0 * margin),
            margin + y * (SIDE as f32 - 2.0 * margin),
        );
        let (sin, cos) = rotation.sin_cos();
        for row in 0..SIDE {
            for col in 0..SIDE {
                let (dx, dy) = (col as f32 + 0.5 - cx, row as f32 + 0.5 - cy);
                let (u, v) = ((cos * dx + sin * dy) / half, (-sin * dx + cos * dy) / half);
                if inside(shape, u, v) {
                    images[[n, row, col]] = 1.0;
                }
            }
        }
    }
    Simulation {
        events: images.into_dyn(),
        factors,
        factor_names: vec!["shape", "scale", "rotation_rad", "x", "y"],
        truths: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_in_range() {
        let a = simulate(50, 1);
        assert_eq!(a.events, simulate(50, 1).events);
        assert_eq!(a.events.shape(), &[50, 32, 32]);
        for n in 0..50 {
            let area: f32 = a.events.slice(ndarray::s![n, .., ..]).sum();
            assert!(
                area > 10.0 && area < 500.0,
                "sprite {n} covers {area} pixels"
            );
            let f = a.factors.row(n);
            assert!(f[0] <= 2.0 && (0.5..1.0).contains(&f[1]) && (0.0..1.0).contains(&f[3]));
        }
    }

    #[test]
    fn position_factor_moves_the_mass() {
        let sim = simulate(200, 5);
        for n in 0..200 {
            let image = sim.events.slice(ndarray::s![n, .., ..]);
            let mass: f32 = image.sum();
            let col: f32 = image
                .indexed_iter()
                .map(|((_, c), v)| c as f32 * v)
                .sum::<f32>()
                / mass;
            let expected = 6.0 + sim.factors[[n, 3]] * 20.0 - 0.5;
            assert!((col - expected).abs() < 2.5, "centre {col} vs {expected}");
        }
    }
}
