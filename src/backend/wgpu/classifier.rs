//! wgpu classifier ops: convolution (`shaders/conv.wgsl`), channel affine (`affine.wgsl`),
//! pooling, MFM, sigmoid and softmax (`layers.wgsl`); linear layers run as GEMMs
//! (`matmul.rs`).

use super::device::{f, grid_for, grid_rows};
use super::{CHECK, WgpuBackend, WgpuTensor};
use crate::Result;
use crate::backend::launch::{self, act_code};
use crate::backend::{
    Activation, ClassifierOps, Conv2dParams, DeviceTensor, GlobalPool, PoolParams,
};

impl ClassifierOps for WgpuBackend {
    fn conv2d(
        &self,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        p: &Conv2dParams,
        activation: Activation,
    ) -> Result<WgpuTensor> {
        let bias_shape = bias.map(|b| b.shape.as_slice());
        let c = launch::conv2d(
            CHECK,
            &input.shape,
            &weight.shape,
            bias_shape,
            p,
            activation,
        )?;
        self.tiled_conv("conv2d", &c, input, weight, bias)
    }

    fn channel_affine(
        &self,
        input: &WgpuTensor,
        scale: &WgpuTensor,
        shift: &WgpuTensor,
        activation: Activation,
    ) -> Result<WgpuTensor> {
        let (channels, inner) = CHECK.channel_affine(&input.shape, &scale.shape, &shift.shape)?;
        let out = self.alloc(&input.shape)?;
        let n = input.len();
        let (act, slope) = act_code(activation);
        if n > 0 {
            self.dispatch(
                "channel_affine",
                &[n as u32, channels as u32, inner as u32, act, f(slope)],
                &[
                    input.buffer.buffer(),
                    scale.buffer.buffer(),
                    shift.buffer.buffer(),
                    out.buffer.buffer(),
                ],
                grid_for(n)?,
            );
        }
        Ok(out)
    }

    fn max_pool2d(&self, input: &WgpuTensor, p: &PoolParams) -> Result<WgpuTensor> {
        let pool = launch::max_pool2d(CHECK, &input.shape, p)?;
        let n = pool.outputs();
        // The layout of `Params` in shaders/layers.wgsl: n, channels, inner, then the dims.
        let mut params = [0u32; 20];
        params[0] = n as u32;
        params[1] = pool.shape.channels as u32;
        params[3..13].copy_from_slice(&pool.dims);
        self.layers_op("max_pool2d", input, params, &pool.out_shape(), n)
    }

    fn mfm(&self, input: &WgpuTensor) -> Result<WgpuTensor> {
        let (shape, inner) = CHECK.mfm(&input.shape)?;
        let n: usize = shape.iter().product();
        let mut params = [0u32; 20];
        params[..3].copy_from_slice(&[n as u32, input.shape[1] as u32, inner as u32]);
        self.layers_op("mfm", input, params, &shape, n)
    }

    fn global_pool(&self, input: &WgpuTensor, mode: GlobalPool) -> Result<WgpuTensor> {
        let [batch, channels, hw] = CHECK.global_pool(&input.shape)?;
        let planes = batch * channels;
        let out = self.alloc(&[batch, channels])?;
        let mut params = [0u32; 20];
        params[0] = planes as u32;
        params[2] = hw as u32;
        params[15] = (mode == GlobalPool::Max) as u32;
        if planes > 0 {
            let groups = grid_rows(planes, "planes")?;
            self.dispatch(
                "global_pool",
                &params,
                &[input.buffer.buffer(), out.buffer.buffer()],
                groups,
            );
        }
        Ok(out)
    }

    fn linear(
        &self,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        activation: Activation,
    ) -> Result<WgpuTensor> {
        let gemm = launch::linear(
            CHECK,
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            activation,
        )?;
        self.matmul(&gemm, input, weight, bias)
    }

    fn sigmoid(&self, input: &WgpuTensor, scale: f32, bias: f32) -> Result<WgpuTensor> {
        let n = input.len();
        let mut params = [0u32; 20];
        params[0] = n as u32;
        params[16] = f(scale);
        params[17] = f(bias);
        self.layers_op("sigmoid", input, params, &input.shape, n)
    }

    fn softmax(&self, input: &WgpuTensor) -> Result<WgpuTensor> {
        let [rows, classes] = CHECK.softmax(&input.shape)?;
        let mut params = [0u32; 20];
        params[0] = rows as u32;
        params[18] = classes as u32;
        self.layers_op("softmax", input, params, &input.shape, rows)
    }
}
