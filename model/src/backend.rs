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
        crate::vae::UnknownName::pick("backend", name, Self::CHOICES)
    }
}

impl Backend {
    /// The backends this build has, by name.
    pub const CHOICES: &'static [(&'static str, Self)] = &[
        ("flex", Self::Flex),
        #[cfg(feature = "ndarray")]
        ("ndarray", Self::Ndarray),
        #[cfg(feature = "wgpu")]
        ("wgpu", Self::Wgpu),
    ];

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
