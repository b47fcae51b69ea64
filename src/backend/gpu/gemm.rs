//! The tiled GEMMs: `matmul` (`shaders/gemm.wgsl` with `matmul.wgsl` or `matmul_vec4.wgsl`;
//! `kernels/classifier.cu`), which filterbanks, the DCT and linear layers lower to (see
//! [`launch::Gemm`]), and the implicit-GEMM convolutions (`conv2d`, `conv1d`, see
//! [`launch::TiledConv`]).

use super::{GemmKind, Grid, Input, Kernels, Params, f};
use crate::Result;
use crate::backend::DeviceTensor;
use crate::backend::launch::{Gemm, TiledConv};
use crate::backend::shapes::Shapes;

/// An optional input: the tensor, or a placeholder the kernel does not read.
pub(super) fn optional<T>(t: Option<&T>) -> Input<'_, T> {
    t.map_or(Input::Absent, Input::Tensor)
}

/// The GEMM kernels with a variant whose tiles are staged in f16 (`Kernels::f16_gemm`), and
/// that variant's name: wgpu builds them from the same source (`shaders/matmul.wgsl`).
pub(crate) const F16_VARIANTS: &[(&str, &str)] =
    &[("matmul", "matmul_f16"), ("matmul_rb", "matmul_rb_f16")];

/// `out = epilogue(a · b + bias) + residual` as planned by `gemm` (`residual` where
/// `gemm.has_residual`).
pub(super) fn matmul<K: Kernels>(
    device: &K,
    gemm: &Gemm,
    a: &K::Tensor,
    b: &K::Tensor,
    bias: Option<&K::Tensor>,
    residual: Option<&K::Tensor>,
) -> Result<K::Tensor> {
    debug_assert_eq!(gemm.has_residual, residual.is_some());
    let mut out = device.alloc(&gemm.out_shape)?;
    if gemm.is_empty() {
        return Ok(out);
    }
    // The layout of `Params` in shaders/gemm.wgsl.
    let params = Params::new(&[
        gemm.m as u32,
        gemm.n as u32,
        gemm.k as u32,
        gemm.b_trans as u32,
        gemm.has_bias as u32,
        gemm.act,
        f(gemm.slope),
        gemm.log_kind,
        f(gemm.eps),
        gemm.has_residual as u32,
    ]);
    let (tiles_x, tiles_y) = gemm.tiles();
    let (mut entry, grid) = tiled_entry(device, "matmul", [tiles_x, tiles_y, 1]);
    if gemm.f16_safe
        && device.f16_gemm()
        && let Some(&(_, f16)) = F16_VARIANTS.iter().find(|(f32, _)| *f32 == entry)
    {
        entry = f16;
    }
    // Linear layers (k-contiguous B, k a multiple of 4) read their rows in 16-byte pieces:
    // wgpu's register-blocked kernel as vec4 values, CUDA's tensor-core one (opt-in) by cp.async.
    if gemm.b_trans && gemm.k.is_multiple_of(4) {
        match entry {
            "matmul_rb" => entry = "matmul_rb_vec4",
            "matmul_tc" if device.async_copy_gemm() => entry = "matmul_tc_async",
            _ => {}
        }
    }
    device.launch(
        entry,
        &params,
        &[
            Input::Tensor(a),
            Input::Tensor(b),
            optional(bias),
            optional(residual),
        ],
        &mut out,
        grid,
    )?;
    Ok(out)
}

/// The shapes a convolution's plan is made from: input, weight, optional bias.
pub(super) type ConvShapes<'a> = (&'a [usize], &'a [usize], Option<&'a [usize]>);

/// A convolution kernel (`entry`) reading input, weight and optional bias, launched as `plan`
/// makes it from their shapes (`launch::conv2d` / `conv1d`): its parameters are the plan's
/// `dims`, then has-bias, activation and slope.
pub(super) fn tiled_conv<K: Kernels>(
    device: &K,
    entry: &'static str,
    plan: impl FnOnce(Shapes, ConvShapes<'_>) -> Result<TiledConv>,
    input: &K::Tensor,
    weight: &K::Tensor,
    bias: Option<&K::Tensor>,
) -> Result<K::Tensor> {
    let shapes = (input.shape(), weight.shape(), bias.map(|b| b.shape()));
    let conv = plan(device.check(), shapes)?;
    let mut out = device.alloc(&conv.out_shape)?;
    if conv.is_empty() {
        return Ok(out);
    }
    let mut words = conv.dims.clone();
    words.extend([conv.has_bias as u32, conv.act, f(conv.slope)]);
    let (entry, grid) = tiled_entry(device, entry, conv.tiles);
    device.launch(
        entry,
        &Params::new(&words),
        &[Input::Tensor(input), Input::Tensor(weight), optional(bias)],
        &mut out,
        grid,
    )?;
    Ok(out)
}

/// Output tiles per side of the 64×64 kernels (`*_tc`, `matmul_rb`): four `launch::TILE`s.
const WIDE_TILES: usize = 4;

/// The kernel and grid of a GEMM planned in `launch::TILE`-sized output tiles `[x, y, z]`, by
/// the device's [`GemmKind`]: `entry` itself; its `*_tc` variant on tensor cores (128 threads
/// per 64×64 tile of the same output); or, register-blocked, `matmul_rb` (16×16 threads per
/// 64×64 tile; convolutions keep `entry`).
fn tiled_entry<K: Kernels>(
    device: &K,
    entry: &'static str,
    tiles: [usize; 3],
) -> (&'static str, Grid) {
    let [x, y, z] = tiles;
    let wide = [x.div_ceil(WIDE_TILES), y.div_ceil(WIDE_TILES), z];
    match (device.gemm_kind(), entry) {
        (GemmKind::RegisterBlocked, "matmul") => ("matmul_rb", Grid::Tiles(wide)),
        (GemmKind::TensorCores, _) => {
            let tc = match entry {
                "matmul" => "matmul_tc",
                "conv1d" => "conv1d_tc",
                "conv2d" => "conv2d_tc",
                other => unreachable!("no tensor-core variant of {other}"),
            };
            let grid = Grid::Groups {
                groups: wide,
                threads: 128,
            };
            (tc, grid)
        }
        _ => (entry, Grid::Tiles(tiles)),
    }
}
