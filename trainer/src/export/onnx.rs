//! ONNX export of the float encoder and decoder (burn cannot write ONNX), built message by
//! message with `onnx-protobuf`, opset 13.
//!
//! | file | input | outputs |
//! |---|---|---|
//! | `encoder.onnx` | `events` `[N, D]` raw detector units | `mu` `[N, bits]` (logit locations), `posterior_mean` `[N, bits]`, `bits` `[N, bits]` (0/1 floats, `mu > 0`) |
//! | `decoder.onnx` | `codes` `[N, bits]` (0/1) | `reconstruction` `[N, D]` detector units |
//!
//! Both fold in the training normalisation, so they take and give what the detector reads.
//! Events are flat (`D = channels · length`, channel-major); the conv and PointNet encoders
//! reshape inside (PointNet: `[N, points, features]`, per-point MatMul, ReduceMax over points).

use burn::nn::Linear;
use burn::nn::conv::Conv1d;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto::{self, Tensor as TensorType};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

use crate::data::{EventShape, Normalisation};
use latentlink_model::vae::{
    CONV_KERNEL, CONV_PADDING, CONV_STRIDE, Vae, conv_parameters, linear_parameters,
};

/// The opset every exported file declares.
pub const OPSET: i64 = 13;

/// Builds one graph: initialisers, nodes with generated output names.
#[derive(Default)]
pub(super) struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

pub(super) fn attribute_int(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

pub(super) fn attribute_ints(name: &str, values: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    a
}

impl GraphBuilder {
    pub(super) fn float(&mut self, name: &str, dims: &[usize], values: Vec<f32>) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::FLOAT as i32;
        t.float_data = values;
        self.initializers.push(t);
        name.into()
    }

    pub(super) fn int64(&mut self, name: &str, values: Vec<i64>) -> String {
        self.int64_shaped(name, &[values.len()], values)
    }

    /// An `int64` initialiser of the given shape (`&[]`: a scalar).
    pub(super) fn int64_shaped(&mut self, name: &str, dims: &[usize], values: Vec<i64>) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::INT64 as i32;
        t.int64_data = values;
        self.initializers.push(t);
        name.into()
    }

    /// An `int32` initialiser.
    pub(super) fn int32(&mut self, name: &str, dims: &[usize], values: Vec<i32>) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::INT32 as i32;
        t.int32_data = values;
        self.initializers.push(t);
        name.into()
    }

    /// An `int8` initialiser, stored as raw bytes (one per value, not a varint each).
    pub(super) fn int8(&mut self, name: &str, dims: &[usize], bytes: Vec<u8>) -> String {
        let mut t = TensorProto::new();
        t.name = name.into();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::INT8 as i32;
        t.raw_data = bytes;
        self.initializers.push(t);
        name.into()
    }

    pub(super) fn scalar(&mut self, name: &str, value: f32) -> String {
        self.float(name, &[], vec![value])
    }

    pub(super) fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.named_node(
            op,
            inputs,
            attributes,
            &format!("{}_{}", op.to_lowercase(), self.counter),
        )
    }

    pub(super) fn named_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
        output: &str,
    ) -> String {
        self.counter += 1;
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{op}_{}", self.counter);
        n.input = inputs.iter().map(|s| (*s).to_owned()).collect();
        n.output = vec![output.to_owned()];
        n.attribute = attributes;
        self.nodes.push(n);
        output.to_owned()
    }

    /// `x · W + b` with burn's `[in, out]` weight layout.
    fn linear(&mut self, x: &str, layer: &Linear, name: &str) -> String {
        let [inputs, outputs] = layer.weight.dims();
        let (weights, bias) = linear_parameters(layer);
        let w = self.float(&format!("{name}.weight"), &[inputs, outputs], weights);
        let b = self.float(&format!("{name}.bias"), &[outputs], bias);
        self.node("Gemm", &[x, &w, &b], Vec::new())
    }

    /// `x · W + b` on every point of `x` `[N, points, in]` (Gemm takes matrices only).
    fn point_linear(&mut self, x: &str, layer: &Linear, name: &str) -> String {
        let [inputs, outputs] = layer.weight.dims();
        let (weights, bias) = linear_parameters(layer);
        let w = self.float(&format!("{name}.weight"), &[inputs, outputs], weights);
        let b = self.float(&format!("{name}.bias"), &[outputs], bias);
        let product = self.node("MatMul", &[x, &w], Vec::new());
        self.node("Add", &[&product, &b], Vec::new())
    }

    /// A stride-1 decoder convolution.
    fn decoder_conv(&mut self, x: &str, conv: &Conv1d, name: &str) -> String {
        self.conv_with_stride(x, conv, name, 1)
    }

    fn conv(&mut self, x: &str, conv: &Conv1d, name: &str) -> String {
        self.conv_with_stride(x, conv, name, CONV_STRIDE)
    }

    fn conv_with_stride(&mut self, x: &str, conv: &Conv1d, name: &str, stride: usize) -> String {
        let dims = conv.weight.dims();
        let (weights, bias) = conv_parameters(conv);
        let w = self.float(&format!("{name}.weight"), &dims, weights);
        let b = self.float(&format!("{name}.bias"), &[dims[0]], bias);
        let attributes = vec![
            attribute_ints("kernel_shape", &[CONV_KERNEL as i64]),
            attribute_ints("strides", &[stride as i64]),
            attribute_ints("pads", &[CONV_PADDING as i64, CONV_PADDING as i64]),
        ];
        self.node("Conv", &[x, &w, &b], attributes)
    }

    pub(super) fn finish(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> ModelProto {
        self.finish_with_opset(name, inputs, outputs, OPSET)
    }

    /// As [`GraphBuilder::finish`], declaring another opset.
    pub(super) fn finish_with_opset(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
        opset_version: i64,
    ) -> ModelProto {
        let mut graph = GraphProto::new();
        graph.name = name.into();
        graph.node = self.nodes;
        graph.initializer = self.initializers;
        graph.input = inputs;
        graph.output = outputs;
        let mut opset = OperatorSetIdProto::new();
        opset.version = opset_version;
        let mut model = ModelProto::new();
        model.ir_version = 8;
        model.producer_name = "latentlink-trainer".into();
        model.producer_version = env!("CARGO_PKG_VERSION").into();
        model.opset_import = vec![opset];
        model.graph = Some(graph).into();
        model
    }
}

/// A float tensor `[N, width]` with a symbolic batch.
fn value_info(name: &str, width: usize) -> ValueInfoProto {
    typed_value_info(name, width, DataType::FLOAT)
}

/// A `[N, width]` graph input or output of the given element type.
pub(super) fn typed_value_info(name: &str, width: usize, elem_type: DataType) -> ValueInfoProto {
    let dims = [
        Dimension {
            value: Some(dimension::Value::DimParam("N".into())),
            ..Default::default()
        },
        Dimension {
            value: Some(dimension::Value::DimValue(width as i64)),
            ..Default::default()
        },
    ];
    let mut shape = TensorShapeProto::new();
    shape.dim = dims.to_vec();
    let mut tensor = TensorType::new();
    tensor.elem_type = elem_type as i32;
    tensor.shape = Some(shape).into();
    let mut t = TypeProto::new();
    t.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(t).into();
    v
}

/// The encoder graph.
pub fn encoder(model: &Vae, normalisation: &Normalisation, shape: EventShape) -> ModelProto {
    let features = shape.features();
    let bits = model.mu.weight.dims()[1];
    let mut g = GraphBuilder::default();
    let mean = g.float(
        "normalisation.mean",
        &[features],
        normalisation.mean.clone(),
    );
    let std = g.float("normalisation.std", &[features], normalisation.std.clone());
    let centred = g.node("Sub", &["events", &mean], Vec::new());
    let mut h = g.node("Div", &[&centred, &std], Vec::new());
    if !model.convs.is_empty() {
        let target = g.int64(
            "conv.input_shape",
            vec![-1, shape.channels as i64, shape.length as i64],
        );
        h = g.node("Reshape", &[&h, &target], Vec::new());
        for (i, conv) in model.convs.iter().enumerate() {
            let c = g.conv(&h, conv, &format!("convs.{i}"));
            h = g.node("Relu", &[&c], Vec::new());
        }
        h = g.node("Flatten", &[&h], vec![attribute_int("axis", 1)]);
    }
    if !model.point_layers.is_empty() {
        let target = g.int64(
            "points.input_shape",
            vec![-1, shape.channels as i64, shape.length as i64],
        );
        h = g.node("Reshape", &[&h, &target], Vec::new());
        for (i, layer) in model.point_layers.iter().enumerate() {
            let z = g.point_linear(&h, layer, &format!("point_layers.{i}"));
            h = g.node("Relu", &[&z], Vec::new());
        }
        let pooled = vec![attribute_ints("axes", &[1]), attribute_int("keepdims", 0)];
        h = g.node("ReduceMax", &[&h], pooled);
    }
    for (i, layer) in model.encoder.iter().enumerate() {
        let z = g.linear(&h, layer, &format!("encoder.{i}"));
        h = g.node("Relu", &[&z], Vec::new());
    }
    let mu_raw = g.linear(&h, &model.mu, "mu");
    let mu = g.named_node("Identity", &[&mu_raw], Vec::new(), "mu");
    let ls = g.linear(&h, &model.log_sigma, "log_sigma");
    let (lo, hi) = (
        g.scalar("log_sigma.min", -8.0),
        g.scalar("log_sigma.max", 6.0),
    );
    let ls = g.node("Clip", &[&ls, &lo, &hi], Vec::new());
    // posterior_mean = sigmoid(mu / sqrt(1 + π/8 · exp(2·log_sigma))), as in latent::binary_mean.
    let two = g.scalar("two", 2.0);
    let twice = g.node("Mul", &[&ls, &two], Vec::new());
    let variance = g.node("Exp", &[&twice], Vec::new());
    let pi_eighth = g.scalar("pi_over_8", std::f32::consts::PI / 8.0);
    let scaled = g.node("Mul", &[&variance, &pi_eighth], Vec::new());
    let one = g.scalar("one", 1.0);
    let inflated = g.node("Add", &[&scaled, &one], Vec::new());
    let root = g.node("Sqrt", &[&inflated], Vec::new());
    let ratio = g.node("Div", &[&mu, &root], Vec::new());
    g.named_node("Sigmoid", &[&ratio], Vec::new(), "posterior_mean");
    let zero = g.scalar("zero", 0.0);
    let positive = g.node("Greater", &[&mu, &zero], Vec::new());
    g.named_node(
        "Cast",
        &[&positive],
        vec![attribute_int("to", DataType::FLOAT as i64)],
        "bits",
    );
    g.finish(
        "latentlink_encoder",
        vec![value_info("events", features)],
        vec![
            value_info("mu", bits),
            value_info("posterior_mean", bits),
            value_info("bits", bits),
        ],
    )
}

/// The decoder graph.
pub fn decoder(model: &Vae, normalisation: &Normalisation) -> ModelProto {
    let bits = model.mu.weight.dims()[1];
    let features = normalisation.mean.len();
    let mut g = GraphBuilder::default();
    let mut h = "codes".to_owned();
    let conv = !model.decoder_convs.is_empty();
    let last = model.decoder.len().saturating_sub(1);
    for (i, layer) in model.decoder.iter().enumerate() {
        h = g.linear(&h, layer, &format!("decoder.{i}"));
        if i < last || conv {
            h = g.node("Relu", &[&h], Vec::new());
        }
    }
    if conv {
        let (mut channels, mut length) = (model.decoder_channels, model.upsample_from);
        let start = g.int64(
            "decoder.map_shape",
            vec![-1, channels as i64, length as i64],
        );
        h = g.node("Reshape", &[&h, &start], Vec::new());
        let axes = g.int64("upsample.axes", vec![3]);
        let repeats = g.int64("upsample.repeats", vec![1, 1, 1, 2]);
        let last = model.decoder_convs.len() - 1;
        for (i, layer) in model.decoder_convs.iter().enumerate() {
            // Nearest ×2: [B, C, L] → [B, C, L, 1] → [B, C, L, 2] → [B, C, 2L], as upsample2.
            let expanded = g.node("Unsqueeze", &[&h, &axes], Vec::new());
            let tiled = g.node("Tile", &[&expanded, &repeats], Vec::new());
            length *= 2;
            let shape = g.int64(
                &format!("decoder_convs.{i}.input_shape"),
                vec![0, channels as i64, length as i64],
            );
            let upsampled = g.node("Reshape", &[&tiled, &shape], Vec::new());
            h = g.decoder_conv(&upsampled, layer, &format!("decoder_convs.{i}"));
            if i < last {
                h = g.node("Relu", &[&h], Vec::new());
            }
            channels = layer.weight.dims()[0];
        }
        h = g.node("Flatten", &[&h], vec![attribute_int("axis", 1)]);
    }
    if model.sigmoid_output {
        h = g.node("Sigmoid", &[&h], Vec::new());
    }
    if let Some(floor) = model.point_weight_floor {
        h = point_weight_floor(&mut g, &h, floor, model.shape().length, features);
    }
    let std = g.float("normalisation.std", &[features], normalisation.std.clone());
    let mean = g.float(
        "normalisation.mean",
        &[features],
        normalisation.mean.clone(),
    );
    let scaled = g.node("Mul", &[&h, &std], Vec::new());
    g.named_node("Add", &[&scaled, &mean], Vec::new(), "reconstruction");
    g.finish(
        "latentlink_decoder",
        vec![value_info("codes", bits)],
        vec![value_info("reconstruction", features)],
    )
}

/// [`Vae::activate`]'s floor on the last feature of every point of `h`, `[B, features]`
/// with `per_point` features per point: `floor + Softplus(k·(h − floor))/k` there (ONNX's
/// Softplus has no sharpness), `h` itself elsewhere, blended by a constant 0/1 mask.
fn point_weight_floor(
    g: &mut GraphBuilder,
    h: &str,
    floor: f64,
    per_point: usize,
    features: usize,
) -> String {
    let sharpness = latentlink_model::vae::POINT_WEIGHT_SHARPNESS as f32;
    let floor_value = g.scalar("point_weight.floor", floor as f32);
    let k = g.scalar("point_weight.sharpness", sharpness);
    let mask: Vec<f32> = (0..features)
        .map(|i| f32::from(u8::from(i % per_point == per_point - 1)))
        .collect();
    let mask = g.float("point_weight.mask", &[features], mask);
    let shifted = g.node("Sub", &[h, &floor_value], Vec::new());
    let sharpened = g.node("Mul", &[&shifted, &k], Vec::new());
    let soft = g.node("Softplus", &[&sharpened], Vec::new());
    let rise = g.node("Div", &[&soft, &k], Vec::new());
    let floored = g.node("Add", &[&rise, &floor_value], Vec::new());
    let change = g.node("Sub", &[&floored, h], Vec::new());
    let masked = g.node("Mul", &[&change, &mask], Vec::new());
    g.node("Add", &[h, &masked], Vec::new())
}

/// Serialises a model to bytes.
///
/// # Errors
/// If protobuf encoding fails.
pub fn to_bytes(model: &ModelProto) -> Result<Vec<u8>, protobuf::Error> {
    model.write_to_bytes()
}
