//! CUDA encoder ops (`kernels/encoder.cu`): channels-last conv1d, layer norm, attention,
//! broadcast add.

use cudarc::driver::PushKernelArg;

use super::device::{THREADS, block_per_row};
use super::{CHECK, CudaBackend, CudaTensor, driver_err};
use crate::Result;
use crate::backend::launch;
use crate::backend::{Activation, Conv1dParams, EncoderOps};

impl EncoderOps for CudaBackend {
    fn conv1d(
        &self,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
        p: &Conv1dParams,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let bias_shape = bias.map(|b| b.shape.as_slice());
        let c = launch::conv1d(
            CHECK,
            &input.shape,
            &weight.shape,
            bias_shape,
            p,
            activation,
        )?;
        self.tiled_conv("conv1d", &c, input, weight, bias)
    }

    fn layer_norm(
        &self,
        input: &CudaTensor,
        gamma: &CudaTensor,
        beta: &CudaTensor,
        eps: f32,
    ) -> Result<CudaTensor> {
        let [rows, dim] = CHECK.layer_norm(&input.shape, &gamma.shape, &beta.shape)?;
        let mut out = self.alloc(&input.shape)?;
        if rows > 0 {
            let (r64, d32) = (rows as i64, dim as i32);
            let cfg = block_per_row(rows, THREADS, 0);
            let mut l = self.stream.launch_builder(self.f("layer_norm"));
            l.arg(&input.buf)
                .arg(&gamma.buf)
                .arg(&beta.buf)
                .arg(&mut out.buf)
                .arg(&r64)
                .arg(&d32)
                .arg(&eps);
            // SAFETY: matches layer_norm in kernels/encoder.cu (256-thread blocks).
            unsafe { l.launch(cfg) }.map_err(driver_err("layer_norm"))?;
        }
        Ok(out)
    }

    fn attention(&self, qkv: &CudaTensor, heads: usize) -> Result<CudaTensor> {
        let a = launch::attention(CHECK, &qkv.shape, heads)?;
        let rows = a.batch * a.heads * a.len;
        let mut out = self.alloc(&[a.batch, a.len, a.dim])?;
        if rows > 0 {
            let scale = 1.0 / (a.head_dim as f32).sqrt();
            let r64 = rows as i64;
            let ints = [a.len, a.dim, a.heads, a.head_dim].map(|v| v as i32);
            // One 64-thread block per (window, head, query).
            let cfg = block_per_row(rows, 64, 0);
            let mut l = self.stream.launch_builder(self.f("attention"));
            l.arg(&qkv.buf).arg(&mut out.buf).arg(&r64);
            for v in &ints {
                l.arg(v);
            }
            l.arg(&scale);
            // SAFETY: matches attention in kernels/encoder.cu (64-thread blocks).
            unsafe { l.launch(cfg) }.map_err(driver_err("attention"))?;
        }
        Ok(out)
    }

    fn add(&self, a: &CudaTensor, b: &CudaTensor) -> Result<CudaTensor> {
        let (n, m) = CHECK.add(&a.shape, &b.shape)?;
        let (mut out, cfg) = self.elementwise(&a.shape, n)?;
        if let Some(cfg) = cfg {
            let (n64, m64) = (n as i64, m as i64);
            let mut l = self.stream.launch_builder(self.f("add"));
            l.arg(&a.buf)
                .arg(&b.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&m64);
            // SAFETY: matches add in kernels/encoder.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("add"))?;
        }
        Ok(out)
    }
}
