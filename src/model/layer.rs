//! One classifier layer as the forward pass runs it, generic over where its tensors live:
//! `Layer<HostTensor>` after validation, `Layer<B::Tensor>` once uploaded to a backend.

use crate::backend::{Activation, Conv2dParams, GlobalPool, PoolParams};

#[derive(Debug, Clone, PartialEq)]
pub enum Layer<T> {
    /// Convolution with any batch norm already folded into `weight` and `bias`.
    Conv2d {
        weight: T,
        bias: Option<T>,
        params: Conv2dParams,
        activation: Activation,
    },
    /// Inference batch norm that could not be folded: `x * scale[c] + shift[c]`.
    ChannelAffine {
        scale: T,
        shift: T,
        activation: Activation,
    },
    Mfm,
    MaxPool2d(PoolParams),
    GlobalPool(GlobalPool),
    Flatten,
    Linear {
        weight: T,
        bias: Option<T>,
        activation: Activation,
    },
}

impl<T> Layer<T> {
    /// The same layer with every tensor converted by `f` (e.g. uploaded to a device).
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&T) -> Result<U, E>) -> Result<Layer<U>, E> {
        Ok(match self {
            Layer::Conv2d {
                weight,
                bias,
                params,
                activation,
            } => Layer::Conv2d {
                weight: f(weight)?,
                bias: bias.as_ref().map(&mut f).transpose()?,
                params: *params,
                activation: *activation,
            },
            Layer::ChannelAffine {
                scale,
                shift,
                activation,
            } => Layer::ChannelAffine {
                scale: f(scale)?,
                shift: f(shift)?,
                activation: *activation,
            },
            Layer::Mfm => Layer::Mfm,
            Layer::MaxPool2d(p) => Layer::MaxPool2d(*p),
            Layer::GlobalPool(m) => Layer::GlobalPool(*m),
            Layer::Flatten => Layer::Flatten,
            Layer::Linear {
                weight,
                bias,
                activation,
            } => Layer::Linear {
                weight: f(weight)?,
                bias: bias.as_ref().map(&mut f).transpose()?,
                activation: *activation,
            },
        })
    }
}
