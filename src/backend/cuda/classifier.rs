//! CUDA classifier ops (`kernels/classifier.cu`): convolution, channel affine, pooling, MFM,
//! sigmoid and softmax; linear layers run as GEMMs (`matmul.rs`).

use cudarc::driver::PushKernelArg;

use super::device::{THREADS, block_per_row};
use super::{CHECK, CudaBackend, CudaTensor, driver_err};
use crate::Result;
use crate::backend::launch::{self, act_code};
use crate::backend::{
    Activation, ClassifierOps, Conv2dParams, DeviceTensor, GlobalPool, PoolParams,
};

impl ClassifierOps for CudaBackend {
    fn conv2d(
        &self,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
        p: &Conv2dParams,
        activation: Activation,
    ) -> Result<CudaTensor> {
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
        input: &CudaTensor,
        scale: &CudaTensor,
        shift: &CudaTensor,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let (channels, inner) = CHECK.channel_affine(&input.shape, &scale.shape, &shift.shape)?;
        let n = input.len();
        let (mut out, cfg) = self.elementwise(&input.shape, n)?;
        if let Some(cfg) = cfg {
            let (act, slope) = act_code(activation);
            let (n64, c32, i32_, act) = (n as i64, channels as i32, inner as i32, act as i32);
            let mut l = self.stream.launch_builder(self.f("channel_affine"));
            l.arg(&input.buf)
                .arg(&scale.buf)
                .arg(&shift.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&c32)
                .arg(&i32_)
                .arg(&act)
                .arg(&slope);
            // SAFETY: matches channel_affine in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("channel_affine"))?;
        }
        Ok(out)
    }

    fn max_pool2d(&self, input: &CudaTensor, p: &PoolParams) -> Result<CudaTensor> {
        let pool = launch::max_pool2d(CHECK, &input.shape, p)?;
        let n = pool.outputs();
        let dims = pool.dims.map(|v| v as i32);
        let (mut out, cfg) = self.elementwise(&pool.out_shape(), n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("max_pool2d"));
            l.arg(&input.buf).arg(&mut out.buf).arg(&n64);
            for v in &dims {
                l.arg(v);
            }
            // SAFETY: matches max_pool2d in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("max_pool2d"))?;
        }
        Ok(out)
    }

    fn mfm(&self, input: &CudaTensor) -> Result<CudaTensor> {
        let (shape, inner) = CHECK.mfm(&input.shape)?;
        let n: usize = shape.iter().product();
        let (c32, i32_) = (input.shape[1] as i32, inner as i32);
        let (mut out, cfg) = self.elementwise(&shape, n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("mfm"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&c32)
                .arg(&i32_);
            // SAFETY: matches mfm in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("mfm"))?;
        }
        Ok(out)
    }

    fn global_pool(&self, input: &CudaTensor, mode: GlobalPool) -> Result<CudaTensor> {
        let [batch, channels, hw] = CHECK.global_pool(&input.shape)?;
        let planes = batch * channels;
        let mut out = self.alloc(&[batch, channels])?;
        if planes > 0 {
            let (p64, inner, m) = (planes as i64, hw as i32, (mode == GlobalPool::Max) as i32);
            let cfg = block_per_row(planes, THREADS, 0);
            let mut l = self.stream.launch_builder(self.f("global_pool"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&p64)
                .arg(&inner)
                .arg(&m);
            // SAFETY: matches global_pool in kernels/classifier.cu (256-thread blocks).
            unsafe { l.launch(cfg) }.map_err(driver_err("global_pool"))?;
        }
        Ok(out)
    }

    fn linear(
        &self,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let gemm = launch::linear(
            CHECK,
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            activation,
        )?;
        self.matmul(&gemm, input, weight, bias)
    }

    fn sigmoid(&self, input: &CudaTensor, scale: f32, bias: f32) -> Result<CudaTensor> {
        let n = input.len();
        let (mut out, cfg) = self.elementwise(&input.shape, n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("sigmoid"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&scale)
                .arg(&bias);
            // SAFETY: matches sigmoid in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("sigmoid"))?;
        }
        Ok(out)
    }

    fn softmax(&self, input: &CudaTensor) -> Result<CudaTensor> {
        let [rows, classes] = CHECK.softmax(&input.shape)?;
        let c32 = classes as i32;
        let (mut out, cfg) = self.elementwise(&input.shape, rows)?;
        if let Some(cfg) = cfg {
            let r64 = rows as i64;
            let mut l = self.stream.launch_builder(self.f("softmax"));
            l.arg(&input.buf).arg(&mut out.buf).arg(&r64).arg(&c32);
            // SAFETY: matches softmax in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("softmax"))?;
        }
        Ok(out)
    }
}
