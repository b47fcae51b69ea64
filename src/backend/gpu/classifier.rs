//! Classifier ops on a GPU: convolution (`conv2d`), channel affine (`channel_affine`),
//! pooling, MFM, sigmoid and softmax (`shaders/layers.wgsl`, `kernels/classifier.cu`);
//! linear layers run as GEMMs.

use super::gemm::{matmul, tiled_conv};
use super::{Grid, Input, Kernels, Params, f, launch_into};
use crate::Result;
use crate::backend::launch::{self, act_code};
use crate::backend::{
    Activation, ClassifierOps, Conv2dParams, DeviceTensor, GlobalPool, PoolParams,
};

/// One kernel of `shaders/layers.wgsl` / their CUDA twins: `input` in, a new `out_shape`
/// tensor out, over `grid`.
fn layers_op<K: Kernels>(
    device: &K,
    entry: &'static str,
    input: &K::Tensor,
    params: Params,
    out_shape: &[usize],
    grid: Grid,
) -> Result<K::Tensor> {
    launch_into(
        device,
        entry,
        &params,
        &[Input::Tensor(input)],
        out_shape,
        grid,
    )
}

/// Word offsets in the `Params` of `shaders/layers.wgsl` (shared by its kernels): n,
/// channels, inner, the ten pooling dims, then act, slope, mode, scale, shift, classes.
const LAYERS_DIMS: usize = 3;
const LAYERS_MODE: usize = 15;
const LAYERS_SCALE: usize = 16;
const LAYERS_SHIFT: usize = 17;
const LAYERS_CLASSES: usize = 18;

impl<K: Kernels> ClassifierOps for K {
    fn conv2d(
        &self,
        input: &K::Tensor,
        weight: &K::Tensor,
        bias: Option<&K::Tensor>,
        p: &Conv2dParams,
        activation: Activation,
    ) -> Result<K::Tensor> {
        tiled_conv(
            self,
            "conv2d",
            |check, (x, w, b)| launch::conv2d(check, x, w, b, p, activation),
            input,
            weight,
            bias,
        )
    }

    fn channel_affine(
        &self,
        input: &K::Tensor,
        scale: &K::Tensor,
        shift: &K::Tensor,
        activation: Activation,
    ) -> Result<K::Tensor> {
        let (channels, inner) =
            self.check()
                .channel_affine(input.shape(), scale.shape(), shift.shape())?;
        let n = input.len();
        let (act, slope) = act_code(activation);
        // The layout of `Params` in shaders/affine.wgsl.
        let params = Params::new(&[n as u32, channels as u32, inner as u32, act, f(slope)]);
        launch_into(
            self,
            "channel_affine",
            &params,
            &[
                Input::Tensor(input),
                Input::Tensor(scale),
                Input::Tensor(shift),
            ],
            input.shape(),
            Grid::Items(n),
        )
    }

    fn max_pool2d(&self, input: &K::Tensor, p: &PoolParams) -> Result<K::Tensor> {
        let pool = launch::max_pool2d(self.check(), input.shape(), p)?;
        let n = pool.outputs();
        let mut params = Params::new(&[n as u32, pool.shape.channels as u32]);
        params.0[LAYERS_DIMS..LAYERS_DIMS + pool.dims.len()].copy_from_slice(&pool.dims);
        layers_op(
            self,
            "max_pool2d",
            input,
            params,
            &pool.out_shape(),
            Grid::Items(n),
        )
    }

    fn mfm(&self, input: &K::Tensor) -> Result<K::Tensor> {
        let (shape, inner) = self.check().mfm(input.shape())?;
        let n: usize = shape.iter().product();
        let params = Params::new(&[n as u32, input.shape()[1] as u32, inner as u32]);
        layers_op(self, "mfm", input, params, &shape, Grid::Items(n))
    }

    fn global_pool(&self, input: &K::Tensor, mode: GlobalPool) -> Result<K::Tensor> {
        let [batch, channels, hw] = self.check().global_pool(input.shape())?;
        let planes = batch * channels;
        let params = Params::new(&[planes as u32, 0, hw as u32])
            .with(LAYERS_MODE, (mode == GlobalPool::Max) as u32);
        layers_op(
            self,
            "global_pool",
            input,
            params,
            &[batch, channels],
            Grid::rows(planes),
        )
    }

    fn linear(
        &self,
        input: &K::Tensor,
        weight: &K::Tensor,
        bias: Option<&K::Tensor>,
        activation: Activation,
    ) -> Result<K::Tensor> {
        let gemm = launch::linear(
            self.check(),
            input.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            activation,
        )?;
        matmul(self, &gemm, input, weight, bias, None)
    }

    fn sigmoid(&self, input: &K::Tensor, scale: f32, bias: f32) -> Result<K::Tensor> {
        let n = input.len();
        let params = Params::new(&[n as u32])
            .with(LAYERS_SCALE, f(scale))
            .with(LAYERS_SHIFT, f(bias));
        layers_op(
            self,
            "sigmoid",
            input,
            params,
            input.shape(),
            Grid::Items(n),
        )
    }

    fn softmax(&self, input: &K::Tensor) -> Result<K::Tensor> {
        let [rows, classes] = self.check().softmax(input.shape())?;
        let params = Params::new(&[rows as u32]).with(LAYERS_CLASSES, classes as u32);
        layers_op(
            self,
            "softmax",
            input,
            params,
            input.shape(),
            Grid::Items(rows),
        )
    }
}
