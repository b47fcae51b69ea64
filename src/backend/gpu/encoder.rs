//! Encoder ops on a GPU: channels-last conv1d and layer norm (`shaders/encoder.wgsl`),
//! attention (`attention.wgsl`), broadcast add (`add.wgsl`), the residual projection (the
//! GEMMs of `gemm.wgsl` with the residual in their epilogue); CUDA's in `kernels/encoder.cu`
//! and `kernels/classifier.cu`.

use super::gemm::{matmul, tiled_conv};
use super::{GemmKind, Grid, Input, Kernels, Params, f, launch_into};
use crate::Result;
use crate::backend::launch;
use crate::backend::{Activation, Conv1dParams, DeviceTensor, EncoderOps};

/// Word offset of `rows` in the `Params` of `shaders/encoder.wgsl` (then dim, eps); the
/// words before it are conv1d's.
const ENCODER_ROWS: usize = 10;

impl<K: Kernels> EncoderOps for K {
    fn conv1d(
        &self,
        input: &K::Tensor,
        weight: &K::Tensor,
        bias: Option<&K::Tensor>,
        p: &Conv1dParams,
        activation: Activation,
    ) -> Result<K::Tensor> {
        tiled_conv(
            self,
            "conv1d",
            |check, (x, w, b)| launch::conv1d(check, x, w, b, p, activation),
            input,
            weight,
            bias,
        )
    }

    fn layer_norm(
        &self,
        input: &K::Tensor,
        gamma: &K::Tensor,
        beta: &K::Tensor,
        eps: f32,
    ) -> Result<K::Tensor> {
        let [rows, dim] = self
            .check()
            .layer_norm(input.shape(), gamma.shape(), beta.shape())?;
        let params = Params::new(&[])
            .with(ENCODER_ROWS, rows as u32)
            .with(ENCODER_ROWS + 1, dim as u32)
            .with(ENCODER_ROWS + 2, f(eps));
        launch_into(
            self,
            "layer_norm",
            &params,
            &[
                Input::Tensor(input),
                Input::Tensor(gamma),
                Input::Tensor(beta),
            ],
            input.shape(),
            Grid::rows(rows),
        )
    }

    fn attention(&self, qkv: &K::Tensor, heads: usize) -> Result<K::Tensor> {
        let a = launch::attention(self.check(), qkv.shape(), heads)?;
        let scale = 1.0 / (a.head_dim as f32).sqrt();
        // The layout of `Params` in shaders/attention.wgsl.
        let words = [a.batch, a.len, a.dim, a.heads, a.head_dim].map(|v| v as u32);
        let params = Params::new(&words).with(words.len(), f(scale));
        let per_64_queries = |threads| Grid::Groups {
            groups: [a.len.div_ceil(64), a.heads, a.batch],
            threads,
        };
        let (entry, grid) = match self.gemm_kind() {
            // One 128-thread group per 64 queries of a (window, head).
            GemmKind::TensorCores if a.head_dim % 8 == 0 => ("attention_tc", per_64_queries(128)),
            // One 64-invocation group per 64 queries, key/value tiles shared.
            GemmKind::RegisterBlocked if a.head_dim % 4 == 0 => {
                ("attention_tiled", per_64_queries(64))
            }
            // One 64-thread group per (window, head, query).
            _ => {
                let grid = Grid::Rows {
                    rows: a.batch * a.heads * a.len,
                    threads: 64,
                    shared: 0,
                };
                ("attention", grid)
            }
        };
        let out_shape = [a.batch, a.len, a.dim];
        launch_into(
            self,
            entry,
            &params,
            &[Input::Tensor(qkv)],
            &out_shape,
            grid,
        )
    }

    fn add(&self, a: &K::Tensor, b: &K::Tensor) -> Result<K::Tensor> {
        let (n, m) = self.check().add(a.shape(), b.shape())?;
        // The layout of `Params` in shaders/add.wgsl.
        launch_into(
            self,
            "add",
            &Params::new(&[n as u32, m as u32]),
            &[Input::Tensor(a), Input::Tensor(b)],
            a.shape(),
            Grid::Items(n),
        )
    }

    fn linear_residual(
        &self,
        input: &K::Tensor,
        weight: &K::Tensor,
        bias: Option<&K::Tensor>,
        residual: &K::Tensor,
    ) -> Result<K::Tensor> {
        let gemm = launch::linear_residual(
            self.check(),
            input.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            residual.shape(),
        )?;
        matmul(self, &gemm, input, weight, bias, Some(residual))
    }
}
