//! wgpu encoder ops: channels-last conv1d and layer norm (`shaders/encoder.wgsl`), attention
//! (`attention.wgsl`), broadcast add (`add.wgsl`).

use super::device::{f, grid_for, grid_rows};
use super::{CHECK, WgpuBackend, WgpuTensor};
use crate::Result;
use crate::backend::launch;
use crate::backend::{Activation, Conv1dParams, EncoderOps};

impl EncoderOps for WgpuBackend {
    fn conv1d(
        &self,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        p: &Conv1dParams,
        activation: Activation,
    ) -> Result<WgpuTensor> {
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
        input: &WgpuTensor,
        gamma: &WgpuTensor,
        beta: &WgpuTensor,
        eps: f32,
    ) -> Result<WgpuTensor> {
        let [rows, dim] = CHECK.layer_norm(&input.shape, &gamma.shape, &beta.shape)?;
        let out = self.alloc(&input.shape)?;
        if rows > 0 {
            // The layout of `Params` in shaders/encoder.wgsl: rows, dim and eps at 10..13.
            let mut params = [0u32; 13];
            params[10] = rows as u32;
            params[11] = dim as u32;
            params[12] = f(eps);
            let groups = grid_rows(rows, "rows")?;
            self.dispatch(
                "layer_norm",
                &params,
                &[
                    input.buffer.buffer(),
                    gamma.buffer.buffer(),
                    beta.buffer.buffer(),
                    out.buffer.buffer(),
                ],
                groups,
            );
        }
        Ok(out)
    }

    fn attention(&self, qkv: &WgpuTensor, heads: usize) -> Result<WgpuTensor> {
        let a = launch::attention(CHECK, &qkv.shape, heads)?;
        let out = self.alloc(&[a.batch, a.len, a.dim])?;
        let rows = a.batch * a.heads * a.len;
        if rows > 0 {
            let scale = 1.0 / (a.head_dim as f32).sqrt();
            let params = [a.batch, a.len, a.dim, a.heads, a.head_dim].map(|v| v as u32);
            let mut params = params.to_vec();
            params.push(f(scale));
            // One workgroup per (window, head, query).
            let groups = grid_rows(rows, "attention rows")?;
            self.dispatch(
                "attention",
                &params,
                &[qkv.buffer.buffer(), out.buffer.buffer()],
                groups,
            );
        }
        Ok(out)
    }

    fn add(&self, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
        let (n, m) = CHECK.add(&a.shape, &b.shape)?;
        let out = self.alloc(&a.shape)?;
        if n > 0 {
            self.dispatch(
                "add",
                &[n as u32, m as u32],
                &[a.buffer.buffer(), b.buffer.buffer(), out.buffer.buffer()],
                grid_for(n)?,
            );
        }
        Ok(out)
    }
}
