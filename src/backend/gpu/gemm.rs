//! The tiled GEMMs: `matmul` (`shaders/matmul.wgsl`, `kernels/classifier.cu`), which
//! filterbanks, the DCT and linear layers lower to (see [`launch::Gemm`]), and the
//! implicit-GEMM convolutions (`conv2d`, `conv1d`, see [`launch::TiledConv`]).

use super::{Grid, Input, Kernels, Params, f};
use crate::Result;
use crate::backend::DeviceTensor;
use crate::backend::launch::{Gemm, TiledConv};
use crate::backend::shapes::Shapes;

/// An optional input: the tensor, or a placeholder the kernel does not read.
pub(super) fn optional<T>(t: Option<&T>) -> Input<'_, T> {
    t.map_or(Input::Absent, Input::Tensor)
}

/// `out = epilogue(a · b + bias)` as planned by `gemm`.
pub(super) fn matmul<K: Kernels>(
    device: &K,
    gemm: &Gemm,
    a: &K::Tensor,
    b: &K::Tensor,
    bias: Option<&K::Tensor>,
) -> Result<K::Tensor> {
    let mut out = device.alloc(&gemm.out_shape)?;
    if gemm.is_empty() {
        return Ok(out);
    }
    // The layout of `Params` in shaders/matmul.wgsl.
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
    ]);
    let (tiles_x, tiles_y) = gemm.tiles();
    let (entry, grid) = tiled_entry(device, "matmul", [tiles_x, tiles_y, 1]);
    device.launch(
        entry,
        &params,
        &[Input::Tensor(a), Input::Tensor(b), optional(bias)],
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

/// Output tiles of the tensor-core kernels per side (64, four `launch::TILE`s).
const TC_TILES: usize = 4;

/// The kernel and grid of a GEMM planned in `launch::TILE`-sized output tiles `[x, y, z]`:
/// `entry` itself, or on a device with tensor cores its `*_tc` variant (128 threads per
/// 64x64 tile of the same output).
fn tiled_entry<K: Kernels>(
    device: &K,
    entry: &'static str,
    tiles: [usize; 3],
) -> (&'static str, Grid) {
    if !device.tensor_cores() {
        return (entry, Grid::Tiles(tiles));
    }
    let tc = match entry {
        "matmul" => "matmul_tc",
        "conv1d" => "conv1d_tc",
        "conv2d" => "conv2d_tc",
        other => unreachable!("no tensor-core variant of {other}"),
    };
    let [x, y, z] = tiles;
    let groups = [x.div_ceil(TC_TILES), y.div_ceil(TC_TILES), z];
    (
        tc,
        Grid::Groups {
            groups,
            threads: 128,
        },
    )
}
