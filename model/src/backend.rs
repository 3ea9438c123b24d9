//! The one place that chooses where tensors live. Everything else takes a `Device`.

use burn::tensor::Device;

/// A compute backend the trainer can run on; which ones exist depends on cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (default).
    #[default]
    Flex,
    /// The burn-ndarray CPU backend (deprecated upstream in favour of flex).
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// A GPU through wgpu (Vulkan, Metal, DX12), or Mesa's software Vulkan driver.
    #[cfg(feature = "wgpu")]
    Wgpu,
}

impl std::str::FromStr for Backend {
    type Err = crate::vae::UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "flex" => Ok(Self::Flex),
            #[cfg(feature = "ndarray")]
            "ndarray" => Ok(Self::Ndarray),
            #[cfg(feature = "wgpu")]
            "wgpu" => Ok(Self::Wgpu),
            _ => Err(crate::vae::UnknownName {
                what: "backend",
                given: name.to_owned(),
                expected: Self::NAMES,
            }),
        }
    }
}

impl Backend {
    /// The backends this build has, comma-separated.
    pub const NAMES: &'static str = if cfg!(all(feature = "ndarray", feature = "wgpu")) {
        "flex, ndarray, wgpu"
    } else if cfg!(feature = "ndarray") {
        "flex, ndarray"
    } else if cfg!(feature = "wgpu") {
        "flex, wgpu"
    } else {
        "flex"
    };

    /// The inference device of this backend.
    pub fn device(self) -> Device {
        match self {
            Self::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // selectable on request; flex is the default
            Self::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Device::wgpu(Default::default()),
        }
    }

    /// The training device: the same backend with autodiff.
    pub fn training_device(self) -> Device {
        self.device().autodiff()
    }
}
