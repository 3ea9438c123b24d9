//! The burn models: an encoder (MLP, 1-D convolutional or PointNet) to latent parameters, a
//! latent head ([`crate::latent`]), and a decoder back to events.
//!
//! Encoders use only layers the runtime can execute (dense, conv1d, point set, ReLU,
//! flatten) so that post-training quantisation maps them one to one onto a runtime blob.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig1d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use latentlink_package::EventShape;

use crate::latent::{self, HeadKind, LatentSample};

/// Encoder architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderKind {
    /// Dense layers on the flattened event.
    Mlp,
    /// Two strided 1-D convolutions over each event's channels, then dense layers.
    Conv,
    /// PointNet for point clouds: events are `channels` points of `length` features each;
    /// the same dense layers run on every point, a max over the points pools them (so the
    /// code does not depend on their order), then dense layers.
    PointNet,
}

/// Decoder architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Dense layers back to the flat event.
    Mlp,
    /// Dense layers to a quarter-length feature map, then two (nearest ×2 upsampling, 1-D
    /// convolution) stages back to `channels × length`; needs `length` divisible by 4.
    Conv,
}

/// A name that is none of a kind's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; expected one of: {expected}")]
pub struct UnknownName {
    /// What was named (encoder, decoder, head, backend).
    pub what: &'static str,
    /// The name given.
    pub given: String,
    /// The names accepted, comma-separated.
    pub expected: String,
}

impl UnknownName {
    /// The value named `name` among `choices`, or the error listing every choice: the one
    /// `FromStr` of the kinds chosen by name on the command line.
    ///
    /// # Errors
    /// [`UnknownName`] if `name` is none of the choices.
    pub fn pick<T: Copy>(
        what: &'static str,
        name: &str,
        choices: &[(&'static str, T)],
    ) -> Result<T, Self> {
        choices
            .iter()
            .find(|(choice, _)| *choice == name)
            .map(|&(_, value)| value)
            .ok_or_else(|| Self {
                what,
                given: name.to_owned(),
                expected: choices
                    .iter()
                    .map(|(choice, _)| *choice)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl std::str::FromStr for EncoderKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let choices = [
            ("mlp", Self::Mlp),
            ("conv", Self::Conv),
            ("pointnet", Self::PointNet),
        ];
        UnknownName::pick("encoder", name, &choices)
    }
}

impl std::str::FromStr for DecoderKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::pick("decoder", name, &[("mlp", Self::Mlp), ("conv", Self::Conv)])
    }
}

/// Why a [`VaeConfig`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArchitectureError {
    /// An encoder or decoder kind this version does not know.
    #[error(transparent)]
    UnknownKind(#[from] UnknownName),
    /// The runtime's point-set block runs one to four per-point layers.
    #[error("the pointnet encoder takes 1 to 4 per-point layers, {given} were given")]
    PointLayers {
        /// Layers asked for.
        given: usize,
    },
    /// The conv decoder upsamples by 4 and so needs a length divisible by 4.
    #[error(
        "the conv decoder needs a length divisible by 4, the events have {length}; use --decoder mlp"
    )]
    ConvDecoderLength {
        /// Samples per channel.
        length: usize,
    },
}

/// Everything that defines a model's shape.
#[derive(Config, Debug, PartialEq)]
pub struct VaeConfig {
    /// Event layout.
    pub channels: usize,
    /// Samples per channel.
    pub length: usize,
    /// Latents (= code bits for the binary head).
    pub latent: usize,
    /// Hidden widths of the dense part of the encoder, first to last.
    pub hidden: Vec<usize>,
    /// Hidden widths of the decoder's dense part, from the code outwards. The decoder runs on
    /// the host, so it can be wider and deeper than the front-end's encoder. `None`: the
    /// encoder's widths mirrored.
    #[config(default = "None")]
    pub decoder_hidden: Option<Vec<usize>>,
    /// Encoder architecture (as its name, see [`EncoderKind`]).
    #[config(default = "\"mlp\".to_string()")]
    pub encoder: String,
    /// Conv channels of the two convolutions (conv encoder and conv decoder).
    #[config(default = "[8, 16]")]
    pub conv_channels: [usize; 2],
    /// Widths of the PointNet encoder's per-point layers, first to last (`None`:
    /// [`DEFAULT_POINT_WIDTHS`]). At most four: the runtime's point-set block has no more.
    #[config(default = "None")]
    pub point_widths: Option<Vec<usize>>,
    /// Decoder architecture (as its name, see [`DecoderKind`]).
    #[config(default = "\"mlp\".to_string()")]
    pub decoder: String,
    /// `Some(true)`: the decoder ends in a sigmoid, so reconstructions are probabilities in
    /// (0, 1) (for binary images trained with a Bernoulli likelihood, in unscaled units).
    /// `None` or `Some(false)`: a linear output. An option, so that the manifests of models
    /// trained before it existed, which lack it, still parse.
    #[config(default = "None")]
    pub sigmoid_output: Option<bool>,
    /// For point clouds whose last point feature is a weight (energy, pT): that feature's
    /// scaled value at zero, `−mean/std`. The decoder then ends that feature in a softplus
    /// above it ([`Vae::activate`]), so no reconstructed point carries a negative weight in
    /// detector units. `None`: every output linear (models trained before it existed).
    #[config(default = "None")]
    pub point_weight_floor: Option<f64>,
}

/// Sharpness of the softplus that keeps reconstructed point weights above their floor, per
/// scaled unit. Gentle on purpose: at 10 (a kink a tenth of the weight's spread wide) a
/// decoder output that strayed half a spread below the floor got almost no gradient, and
/// on 20000 showers every reconstructed weight died at zero; at 1 an output three spreads
/// below still gets 5 % of the gradient.
pub const POINT_WEIGHT_SHARPNESS: f64 = 1.0;

/// Per-point widths of the PointNet encoder when none are given.
pub const DEFAULT_POINT_WIDTHS: [usize; 2] = [64, 128];

/// Kernel, stride and padding of both encoder convolutions.
pub const CONV_KERNEL: usize = 5;
/// Stride of both encoder convolutions.
pub const CONV_STRIDE: usize = 2;
/// Padding of both encoder convolutions.
pub const CONV_PADDING: usize = 2;

/// Output length of one encoder convolution.
pub const fn conv_out_length(length: usize) -> usize {
    (length + 2 * CONV_PADDING - CONV_KERNEL) / CONV_STRIDE + 1
}

impl VaeConfig {
    /// The event layout.
    pub fn shape(&self) -> EventShape {
        EventShape {
            channels: self.channels,
            length: self.length,
        }
    }

    /// The encoder kind ([`VaeConfig::validate`] refuses unknown names; an unvalidated one
    /// reads as MLP).
    pub fn encoder_kind(&self) -> EncoderKind {
        self.encoder.parse().unwrap_or(EncoderKind::Mlp)
    }

    /// Widths of the PointNet encoder's per-point layers.
    pub fn point_widths(&self) -> Vec<usize> {
        self.point_widths
            .clone()
            .unwrap_or_else(|| DEFAULT_POINT_WIDTHS.to_vec())
    }

    /// The decoder kind ([`VaeConfig::validate`] refuses unknown names; an unvalidated one
    /// reads as MLP).
    pub fn decoder_kind(&self) -> DecoderKind {
        if self.decoder == "conv" {
            DecoderKind::Conv
        } else {
            DecoderKind::Mlp
        }
    }

    /// Hidden widths of the decoder, from the code outwards.
    pub fn decoder_widths(&self) -> Vec<usize> {
        self.decoder_hidden
            .clone()
            .unwrap_or_else(|| self.hidden.iter().rev().copied().collect())
    }

    /// Checks that the architecture names known kinds and fits the events.
    ///
    /// # Errors
    /// [`ArchitectureError`] naming the problem and the fix.
    pub fn validate(&self) -> Result<(), ArchitectureError> {
        let encoder = self.encoder.parse::<EncoderKind>()?;
        let point_layers = self.point_widths().len();
        if encoder == EncoderKind::PointNet && !(1..=4).contains(&point_layers) {
            return Err(ArchitectureError::PointLayers {
                given: point_layers,
            });
        }
        let decoder = self.decoder.parse::<DecoderKind>()?;
        if decoder == DecoderKind::Conv && !self.length.is_multiple_of(4) {
            return Err(ArchitectureError::ConvDecoderLength {
                length: self.length,
            });
        }
        Ok(())
    }

    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Vae {
        let features = self.channels * self.length;
        let mut point_layers = Vec::new();
        let (convs, mut width) = match self.encoder_kind() {
            EncoderKind::Mlp => (Vec::new(), features),
            EncoderKind::PointNet => {
                let mut width = self.length;
                for h in self.point_widths() {
                    point_layers.push(LinearConfig::new(width, h).init(device));
                    width = h;
                }
                (Vec::new(), width)
            }
            EncoderKind::Conv => {
                let [c1, c2] = self.conv_channels;
                let conv = |i: usize, o: usize| {
                    Conv1dConfig::new(i, o, CONV_KERNEL)
                        .with_stride(CONV_STRIDE)
                        .with_padding(PaddingConfig1d::Explicit(CONV_PADDING, CONV_PADDING))
                        .init(device)
                };
                let length = conv_out_length(conv_out_length(self.length));
                (vec![conv(self.channels, c1), conv(c1, c2)], c2 * length)
            }
        };
        let mut encoder = Vec::new();
        for &h in &self.hidden {
            encoder.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        let mu = LinearConfig::new(width, self.latent).init(device);
        let log_sigma = LinearConfig::new(width, self.latent).init(device);
        let mut decoder = Vec::new();
        let mut width = self.latent;
        for &h in &self.decoder_widths() {
            decoder.push(LinearConfig::new(width, h).init(device));
            width = h;
        }
        let [c1, c2] = self.conv_channels;
        let (decoder_convs, upsample_from) = match self.decoder_kind() {
            DecoderKind::Mlp => {
                decoder.push(LinearConfig::new(width, features).init(device));
                (Vec::new(), 0)
            }
            DecoderKind::Conv => {
                let quarter = self.length / 4;
                decoder.push(LinearConfig::new(width, c2 * quarter).init(device));
                let conv = |i: usize, o: usize| {
                    Conv1dConfig::new(i, o, CONV_KERNEL)
                        .with_padding(PaddingConfig1d::Explicit(CONV_PADDING, CONV_PADDING))
                        .init(device)
                };
                (vec![conv(c2, c1), conv(c1, self.channels)], quarter)
            }
        };
        Vae {
            convs,
            point_layers,
            encoder,
            mu,
            log_sigma,
            decoder,
            decoder_convs,
            channels: self.channels,
            length: self.length,
            upsample_from,
            decoder_channels: c2,
            sigmoid_output: self.sigmoid_output == Some(true),
            point_weight_floor: self.point_weight_floor,
        }
    }
}

/// The variational autoencoder.
#[derive(Module, Debug)]
pub struct Vae {
    /// Convolutions (empty unless the encoder is conv), each followed by ReLU.
    pub convs: Vec<Conv1d>,
    /// PointNet per-point layers (empty unless the encoder is pointnet), each followed by
    /// ReLU, then a max over the points.
    pub point_layers: Vec<Linear>,
    /// Dense encoder layers, each followed by ReLU.
    pub encoder: Vec<Linear>,
    /// Latent location (logit location for the binary head): the code bits are its signs.
    pub mu: Linear,
    /// Log scale of the latents.
    pub log_sigma: Linear,
    /// Decoder dense layers, ReLU between them (and after the last one when convolutions
    /// follow).
    pub decoder: Vec<Linear>,
    /// Conv decoder stages (empty for the MLP decoder): nearest ×2 upsampling then a
    /// convolution, ReLU between stages, linear output in normalised units.
    pub decoder_convs: Vec<Conv1d>,
    channels: usize,
    length: usize,
    /// Length of the feature map the conv decoder starts from (0: MLP decoder).
    pub upsample_from: usize,
    /// Channels of that feature map.
    pub decoder_channels: usize,
    /// Whether the decoder's output goes through a sigmoid (see [`VaeConfig::sigmoid_output`]).
    pub sigmoid_output: bool,
    /// The floor of each point's last feature (see [`VaeConfig::point_weight_floor`]).
    pub point_weight_floor: Option<f64>,
}

fn float_values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().try_to_vec::<f32>().unwrap_or_default()
}

/// A dense layer's float parameters: weights in burn's `[in, out]` layout, and the bias
/// (zeros when the layer has none). The one place exporters read them.
pub fn linear_parameters(layer: &Linear) -> (Vec<f32>, Vec<f32>) {
    let outputs = layer.weight.dims()[1];
    let bias = layer
        .bias
        .as_ref()
        .map_or_else(|| vec![0.0; outputs], |b| float_values(b.val()));
    (float_values(layer.weight.val()), bias)
}

/// A convolution's float parameters: weights `[out][in][kernel]`, and the bias (zeros when
/// the layer has none).
pub fn conv_parameters(conv: &Conv1d) -> (Vec<f32>, Vec<f32>) {
    let outputs = conv.weight.dims()[0];
    let bias = conv
        .bias
        .as_ref()
        .map_or_else(|| vec![0.0; outputs], |b| float_values(b.val()));
    (float_values(conv.weight.val()), bias)
}

/// Nearest-neighbour ×2 upsampling along the length.
///
/// # Shapes
/// `[batch, channels, length]` → `[batch, channels, 2·length]`.
pub fn upsample2(x: Tensor<3>) -> Tensor<3> {
    let [batch, channels, length] = x.dims();
    x.unsqueeze_dim::<4>(3)
        .repeat_dim(3, 2)
        .reshape([batch, channels, 2 * length])
}

/// Encoder outputs for a batch.
#[derive(Debug, Clone)]
pub struct Posterior {
    /// `[batch, latent]`.
    pub mu: Tensor<2>,
    /// `[batch, latent]`, clamped to a numerically safe range.
    pub log_sigma: Tensor<2>,
}

impl Vae {
    /// The event layout the model reads and writes (points × features for PointNet).
    pub const fn shape(&self) -> EventShape {
        EventShape {
            channels: self.channels,
            length: self.length,
        }
    }

    /// The last hidden activation of the encoder.
    ///
    /// # Shapes
    /// `x`: `[batch, channels · length]` normalised events → `[batch, hidden]`.
    pub fn trunk(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = x;
        if !self.convs.is_empty() {
            let batch = h.dims()[0];
            let mut c: Tensor<3> = h.reshape([batch, self.channels, self.length]);
            for conv in &self.convs {
                c = relu(conv.forward(c));
            }
            h = c.flatten(1, 2);
        }
        if !self.point_layers.is_empty() {
            h = self.pool_points(h);
        }
        for layer in &self.encoder {
            h = relu(layer.forward(h));
        }
        h
    }

    /// The PointNet part of the encoder: the per-point layers on every point, then the max
    /// over the points.
    ///
    /// # Shapes
    /// `x`: `[batch, points · features]`, point-major → `[batch, last per-point width]`.
    pub fn pool_points(&self, x: Tensor<2>) -> Tensor<2> {
        let batch = x.dims()[0];
        let mut p: Tensor<3> = x.reshape([batch, self.channels, self.length]);
        for layer in &self.point_layers {
            p = relu(layer.forward(p));
        }
        let width = p.dims()[2];
        p.max_dim(1).reshape([batch, width])
    }

    /// Posterior parameters.
    ///
    /// # Shapes
    /// `x`: `[batch, features]` → `[batch, latent]` each.
    pub fn encode(&self, x: Tensor<2>) -> Posterior {
        let h = self.trunk(x);
        Posterior {
            mu: self.mu.forward(h.clone()),
            log_sigma: self.log_sigma.forward(h).clamp(-8.0, 6.0),
        }
    }

    /// Reconstruction in normalised units.
    ///
    /// # Shapes
    /// `z`: `[batch, latent]` → `[batch, features]`.
    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        self.activate(self.decode_logits(z))
    }

    /// The decoder's output before its final activation: the logits of a sigmoid output,
    /// the reconstruction itself for a linear one. Losses on probabilities take these, which
    /// stay exact where a probability rounds to 0 or 1.
    ///
    /// # Shapes
    /// `z`: `[batch, latent]` → `[batch, features]`.
    pub fn decode_logits(&self, z: Tensor<2>) -> Tensor<2> {
        let mut h = z;
        let conv = !self.decoder_convs.is_empty();
        let last = self.decoder.len().saturating_sub(1);
        for (i, layer) in self.decoder.iter().enumerate() {
            h = layer.forward(h);
            if i < last || conv {
                h = relu(h);
            }
        }
        if conv {
            let batch = h.dims()[0];
            let mut c: Tensor<3> = h.reshape([batch, self.decoder_channels, self.upsample_from]);
            let last = self.decoder_convs.len() - 1;
            for (i, layer) in self.decoder_convs.iter().enumerate() {
                c = layer.forward(upsample2(c));
                if i < last {
                    c = relu(c);
                }
            }
            h = c.flatten(1, 2);
        }
        h
    }

    /// The final activation applied to [`Vae::decode_logits`]'s output: a sigmoid
    /// ([`VaeConfig::sigmoid_output`]), a floor on each point's weight
    /// ([`VaeConfig::point_weight_floor`]: `floor + softplus(k·(y − floor))/k` for
    /// `k =` [`POINT_WEIGHT_SHARPNESS`] on the last feature of every point), or none.
    pub fn activate(&self, logits: Tensor<2>) -> Tensor<2> {
        if self.sigmoid_output {
            return burn::tensor::activation::sigmoid(logits);
        }
        let Some(floor) = self.point_weight_floor else {
            return logits;
        };
        let [batch, features] = logits.dims();
        let (points, per_point) = (features / self.length, self.length);
        let cloud: Tensor<3> = logits.reshape([batch, points, per_point]);
        let weight = cloud
            .clone()
            .slice([0..batch, 0..points, per_point - 1..per_point])
            .sub_scalar(floor);
        let weight =
            burn::tensor::activation::softplus(weight, POINT_WEIGHT_SHARPNESS).add_scalar(floor);
        let cloud = if per_point == 1 {
            weight
        } else {
            let others = cloud.slice([0..batch, 0..points, 0..per_point - 1]);
            Tensor::cat(vec![others, weight], 2)
        };
        cloud.reshape([batch, features])
    }

    /// One stochastic pass: posterior, sampled latents with their KL, and the decoder's
    /// output before its final activation ([`Vae::decode_logits`]; [`Vae::activate`] makes
    /// it the reconstruction). With `hard`, binary latents reach the decoder as bits (see
    /// [`latent::sample`]).
    pub fn forward(
        &self,
        x: Tensor<2>,
        head: HeadKind,
        alpha: f64,
        hard: bool,
    ) -> (Posterior, LatentSample, Tensor<2>) {
        let posterior = self.encode(x);
        let sample = latent::sample(
            head,
            posterior.mu.clone(),
            posterior.log_sigma.clone(),
            alpha,
            true,
            hard,
        );
        let logits = self.decode_logits(sample.z.clone());
        (posterior, sample, logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_unknown_names_list_the_choices() {
        assert_eq!("conv".parse(), Ok(EncoderKind::Conv));
        assert_eq!("mlp".parse(), Ok(DecoderKind::Mlp));
        let error = "lstm".parse::<EncoderKind>().unwrap_err();
        assert_eq!(error.expected, "mlp, conv, pointnet");
        assert_eq!(
            error.to_string(),
            "unknown encoder \"lstm\"; expected one of: mlp, conv, pointnet"
        );
    }

    #[test]
    fn upsample_repeats_each_sample() {
        let device = crate::backend::Backend::Flex.device();
        let x = Tensor::<3>::from_floats([[[1.0, 2.0], [3.0, 4.0]]], &device);
        let y = upsample2(x).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]);
    }

    #[test]
    fn conv_decoder_restores_the_event_shape() {
        let device = crate::backend::Backend::Flex.device();
        let config = VaeConfig::new(3, 16, 5, vec![8]).with_decoder("conv".into());
        config.validate().unwrap();
        let out = config.init(&device).decode(Tensor::zeros([2, 5], &device));
        assert_eq!(out.dims(), [2, 48]);
        let odd = VaeConfig::new(3, 18, 5, vec![8]).with_decoder("conv".into());
        assert_eq!(
            odd.validate(),
            Err(ArchitectureError::ConvDecoderLength { length: 18 })
        );
        let unknown = VaeConfig::new(3, 16, 5, vec![8]).with_encoder("lstm".into());
        assert!(matches!(
            unknown.validate(),
            Err(ArchitectureError::UnknownKind(_))
        ));
    }

    mod pointnet {
        use super::*;
        use proptest::prelude::*;

        const POINTS: usize = 6;
        const FEATURES: usize = 3;

        fn model() -> Vae {
            let device = crate::backend::Backend::Flex.device();
            VaeConfig::new(POINTS, FEATURES, 16, vec![12])
                .with_encoder("pointnet".into())
                .with_point_widths(Some(vec![8, 10]))
                .init(&device)
        }

        fn mu(model: &Vae, cloud: &[f32]) -> Vec<f32> {
            let device = crate::backend::Backend::Flex.device();
            let x = Tensor::<1>::from_floats(cloud, &device).reshape([1, POINTS * FEATURES]);
            model.encode(x).mu.into_data().try_to_vec::<f32>().unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            /// Shuffled points give the same code bits (and the same latents up to rounding).
            #[test]
            fn shuffled_points_give_the_same_code(
                cloud in prop::collection::vec(-30i32..30, POINTS * FEATURES),
                order in Just((0..POINTS).collect::<Vec<_>>()).prop_shuffle(),
            ) {
                let model = model();
                let cloud: Vec<f32> = cloud.iter().map(|&v| v as f32 / 10.0).collect();
                let shuffled: Vec<f32> = order
                    .iter()
                    .flat_map(|&p| cloud[p * FEATURES..(p + 1) * FEATURES].to_vec())
                    .collect();
                let (a, b) = (mu(&model, &cloud), mu(&model, &shuffled));
                for (x, y) in a.iter().zip(&b) {
                    prop_assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
                    prop_assert_eq!(*x > 0.0, *y > 0.0);
                }
            }
        }

        #[test]
        fn the_points_order_matters_to_an_mlp_but_not_to_pointnet() {
            let cloud: Vec<f32> = (0..POINTS * FEATURES)
                .map(|i| (i as f32 * 0.7).sin())
                .collect();
            let mut swapped = cloud.clone();
            swapped[..FEATURES].copy_from_slice(&cloud[FEATURES..2 * FEATURES]);
            swapped[FEATURES..2 * FEATURES].copy_from_slice(&cloud[..FEATURES]);
            let pointnet = model();
            assert_eq!(mu(&pointnet, &cloud), mu(&pointnet, &swapped));
            let device = crate::backend::Backend::Flex.device();
            let mlp = VaeConfig::new(POINTS, FEATURES, 16, vec![12]).init(&device);
            assert_ne!(mu(&mlp, &cloud), mu(&mlp, &swapped));
            let five = VaeConfig::new(POINTS, FEATURES, 16, vec![12])
                .with_encoder("pointnet".into())
                .with_point_widths(Some(vec![4; 5]));
            assert_eq!(
                five.validate(),
                Err(ArchitectureError::PointLayers { given: 5 })
            );
        }
    }
}
