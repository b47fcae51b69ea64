//! The tiled GEMMs: `matmul` (`shaders/matmul.wgsl`), which filterbanks, the DCT and linear
//! layers lower to (see [`launch::Gemm`]), and the implicit-GEMM convolutions (`conv2d` in
//! `conv.wgsl`, `conv1d` in `encoder.wgsl`, see [`launch::TiledConv`]).

use super::device::{MAX_GROUPS, ensure, f};
use super::{WgpuBackend, WgpuTensor};
use crate::Result;
use crate::backend::launch::{Gemm, TiledConv};

impl WgpuBackend {
    /// `out = epilogue(a · b + bias)` as planned by `gemm`.
    pub(super) fn matmul(
        &self,
        gemm: &Gemm,
        a: &WgpuTensor,
        b: &WgpuTensor,
        bias: Option<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let out = self.alloc(&gemm.out_shape)?;
        let params = [
            gemm.m as u32,
            gemm.n as u32,
            gemm.k as u32,
            gemm.b_trans as u32,
            gemm.has_bias as u32,
            gemm.act,
            f(gemm.slope),
            gemm.log_kind,
            f(gemm.eps),
        ];
        let (tiles_x, tiles_y) = gemm.tiles();
        let (groups_x, groups_y) = (tiles_x as u32, tiles_y as u32);
        ensure(
            groups_y <= MAX_GROUPS && groups_x <= MAX_GROUPS,
            "matmul",
            || format!("{}x{} output is too large for one dispatch", gemm.m, gemm.n),
        )?;
        if !gemm.is_empty() {
            let bias = bias.map_or(&self.dummy, |b| b.buffer.buffer());
            self.dispatch(
                "matmul",
                &params,
                &[
                    a.buffer.buffer(),
                    b.buffer.buffer(),
                    bias,
                    out.buffer.buffer(),
                ],
                [groups_x, groups_y, 1],
            );
        }
        Ok(out)
    }

    /// A convolution kernel (`entry`) with input, weight, optional bias and output bound in
    /// that order, launched as `conv` plans it.
    pub(super) fn tiled_conv(
        &self,
        entry: &'static str,
        conv: &TiledConv,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let out = self.alloc(&conv.out_shape)?;
        let mut params = conv.dims.clone();
        params.extend([conv.has_bias as u32, conv.act, f(conv.slope)]);
        let groups = conv.tiles.map(|t| t as u32);
        ensure(groups.iter().all(|g| *g <= MAX_GROUPS), entry, || {
            "output too large for one dispatch".into()
        })?;
        if !conv.is_empty() {
            self.dispatch(
                entry,
                &params,
                &[
                    input.buffer.buffer(),
                    weight.buffer.buffer(),
                    bias.map_or(&self.dummy, |b| b.buffer.buffer()),
                    out.buffer.buffer(),
                ],
                groups,
            );
        }
        Ok(out)
    }
}
