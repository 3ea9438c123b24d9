#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions
//! Export parity: ONNX files agree with burn in tract (and in onnxruntime where Python has
//! it), and the package's model id ties its files together.

use std::process::Command;

use latentlink_model::Backend;
use latentlink_model::tensor::{to_array, to_tensor};
use latentlink_model::vae::{Vae, VaeConfig};
use latentlink_trainer::data::{self, Events, Normalisation, npy};
use latentlink_trainer::export::{onnx, verify};
use latentlink_trainer::sim::Simulator;
use latentlink_trainer::train::{self, TrainConfig};
use ndarray::Array2;

struct Trained {
    model: Vae,
    normalisation: Normalisation,
    split: data::Split,
}

fn trained(encoder: &str) -> Trained {
    trained_with(encoder, "mlp")
}

fn trained_with(encoder: &str, decoder: &str) -> Trained {
    let events = Events::from_array(Simulator::Opis.simulate(240, 9).events, "sim").unwrap();
    let split = data::split(&events, 0.2, 0.1, 9).unwrap();
    let normalisation = Normalisation::fit(&split.train.data);
    let device = Backend::Flex.training_device();
    let model = VaeConfig::new(4, 256, 16, vec![24])
        .with_encoder(encoder.into())
        .with_decoder(decoder.into())
        .init(&device);
    let config = TrainConfig {
        epochs: 2,
        warmup_epochs: 1,
        batch_size: 64,
        ..TrainConfig::default()
    };
    let (model, _) = train::train(
        model,
        &config,
        &normalisation.apply(&split.train.data),
        &normalisation.apply(&split.validation.data),
        &device,
        None,
        false,
    )
    .unwrap();
    Trained {
        model,
        normalisation,
        split,
    }
}

fn export(t: &Trained) -> (Vec<u8>, Vec<u8>) {
    let shape = t.split.train.shape;
    (
        onnx::to_bytes(&onnx::encoder(&t.model, &t.normalisation, shape)).unwrap(),
        onnx::to_bytes(&onnx::decoder(&t.model, &t.normalisation)).unwrap(),
    )
}

#[test]
fn mlp_and_conv_exports_agree_with_burn_in_tract() {
    for (encoder, decoder) in [("mlp", "mlp"), ("conv", "conv")] {
        let t = trained_with(encoder, decoder);
        let (enc, dec) = export(&t);
        let device = Backend::Flex.device();
        let parity = verify::check(
            &t.model,
            &t.normalisation,
            &enc,
            &dec,
            &t.split.validation.data,
            &device,
        )
        .unwrap();
        assert!(parity.mu <= verify::TOLERANCE, "{encoder}: {parity:?}");
        assert!(
            parity.reconstruction <= verify::TOLERANCE,
            "{encoder}: {parity:?}"
        );
        assert_eq!(parity.bits_agreement, 1.0, "{encoder}: {parity:?}");
    }
}

#[test]
fn a_tampered_file_fails_verification() {
    let t = trained("mlp");
    let (enc, _) = export(&t);
    // A decoder from another model must not pass as this one's.
    let other = trained("mlp");
    let (_, other_dec) = export(&Trained {
        model: other.model,
        normalisation: t.normalisation.clone(),
        split: other.split,
    });
    let device = Backend::Flex.device();
    let err = verify::check(
        &t.model,
        &t.normalisation,
        &enc,
        &other_dec,
        &t.split.validation.data,
        &device,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            verify::VerifyError::Mismatch {
                output: "reconstruction",
                ..
            }
        ),
        "{err}"
    );
    let err = verify::run("encoder.onnx", b"not onnx", &t.split.validation.data).unwrap_err();
    assert!(err.to_string().contains("encoder.onnx"), "{err}");
}

/// The Python that has onnxruntime: `LATENTLINK_PYTHON` (default `python3`), or `None` (the
/// test skips) where it cannot import onnxruntime, unless `LATENTLINK_REQUIRE_ONNXRUNTIME=1`
/// (CI sets it once its venv has onnxruntime), where a skip would hide a check CI relies on.
fn onnxruntime_python() -> Option<String> {
    let python = std::env::var("LATENTLINK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let available = Command::new(&python)
        .args(["-c", "import onnxruntime"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("LATENTLINK_REQUIRE_ONNXRUNTIME").is_none(),
            "LATENTLINK_REQUIRE_ONNXRUNTIME is set but {python} cannot import onnxruntime"
        );
        eprintln!("skipped: {python} cannot import onnxruntime (pip install onnxruntime)");
        return None;
    }
    Some(python)
}

/// The same files in onnxruntime, when Python has it ([`onnxruntime_python`]).
#[test]
fn exports_agree_with_onnxruntime_when_available() {
    let Some(python) = onnxruntime_python() else {
        return;
    };
    let t = trained("conv");
    let (enc, dec) = export(&t);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("encoder.onnx"), &enc).unwrap();
    std::fs::write(dir.path().join("decoder.onnx"), &dec).unwrap();
    npy::write_f32(&dir.path().join("events.npy"), &t.split.validation.data).unwrap();
    let script = r#"
import sys, numpy as np, onnxruntime as ort
d = sys.argv[1]
x = np.load(d + "/events.npy")
enc = ort.InferenceSession(d + "/encoder.onnx", providers=["CPUExecutionProvider"])
mu, mean, bits = enc.run(["mu", "posterior_mean", "bits"], {"events": x})
dec = ort.InferenceSession(d + "/decoder.onnx", providers=["CPUExecutionProvider"])
(rec,) = dec.run(["reconstruction"], {"codes": bits})
np.save(d + "/mu.npy", mu.astype(np.float32))
np.save(d + "/rec.npy", rec.astype(np.float32))
"#;
    let status = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "onnxruntime failed on the exported files");
    let read = |name: &str| {
        npy::read_f32(&dir.path().join(name))
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
    };
    let device = Backend::Flex.device();
    let posterior = t.model.encode(to_tensor(
        &t.normalisation.apply(&t.split.validation.data),
        &device,
    ));
    let mu: Array2<f32> = to_array(posterior.mu.clone()).unwrap();
    assert!(verify::relative_error(&mu, &read("mu.npy")) <= verify::TOLERANCE);
    let bits = to_array(latentlink_model::latent::binarise(posterior.mu)).unwrap();
    let reconstruction = t
        .normalisation
        .invert(&to_array(t.model.decode(to_tensor(&bits, &device))).unwrap());
    assert!(verify::relative_error(&reconstruction, &read("rec.npy")) <= verify::TOLERANCE);
}

/// The shipped packages' int8 encoders in onnxruntime give the runtime's golden int8 codes,
/// bit for bit, as they do in tract (`tests/tests/it/shipped_model.rs`).
#[test]
fn int8_encoders_give_the_runtime_codes_in_onnxruntime_when_available() {
    let Some(python) = onnxruntime_python() else {
        return;
    };
    let script = r#"
import sys, numpy as np, onnxruntime as ort
d = sys.argv[1]
x = np.load(d + "/golden/inputs.npy").astype(np.float32)
enc = ort.InferenceSession(d + "/encoder-int8.onnx", providers=["CPUExecutionProvider"])
bits, logits = enc.run(["bits", "logits"], {"events": x})
assert logits.dtype == np.int32 and ((logits > 0) == (bits > 0.5)).all()
np.save(sys.argv[2], bits.astype(np.float32))
"#;
    for name in ["opis-b128", "showers-b128"] {
        let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models")
            .join(name);
        let out = tempfile::tempdir().unwrap();
        let bits_path = out.path().join("bits.npy");
        let status = Command::new(&python)
            .arg("-c")
            .arg(script)
            .arg(&package)
            .arg(&bits_path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "onnxruntime failed on {name}'s encoder-int8.onnx"
        );
        let bits = npy::read_f32(&bits_path)
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let golden = npy::read_f32(&package.join("golden/int8_codes.npy"))
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        assert_eq!(bits, golden, "{name}");
    }
}

#[test]
fn an_output_that_is_not_finite_never_passes_the_tolerance() {
    let reference = Array2::from_elem((2, 3), 1.0f32);
    assert_eq!(verify::relative_error(&reference, &reference), 0.0);
    for bad in [f32::NAN, f32::INFINITY] {
        let mut other = reference.clone();
        other[[1, 2]] = bad;
        let all_bad = Array2::from_elem((2, 3), bad);
        for (a, b) in [
            (&reference, &other),
            (&other, &reference),
            (&reference, &all_bad),
        ] {
            // NaN fails every `error <= TOLERANCE` check built on it.
            assert!(verify::relative_error(a, b).is_nan(), "{bad}");
        }
    }
}
