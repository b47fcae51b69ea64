//! Separator ops on a GPU: transposed convolution and channel concatenation
//! (`shaders/separator.wgsl`, `shaders/concat.wgsl`, `kernels/separator.cu`).

use super::{Grid, Input, Kernels, Params, f, launch_into};
use crate::Result;
use crate::backend::launch::act_code;
use crate::backend::{Activation, ConvTranspose2dParams, DeviceTensor, SeparatorOps};

impl<K: Kernels> SeparatorOps for K {
    fn conv_transpose2d(
        &self,
        input: &K::Tensor,
        weight: &K::Tensor,
        bias: Option<&K::Tensor>,
        p: &ConvTranspose2dParams,
        activation: Activation,
    ) -> Result<K::Tensor> {
        let c = self.check().conv_transpose2d(
            input.shape(),
            weight.shape(),
            bias.map(|b| b.shape()),
            p,
        )?;
        let out = [c.batch, c.out_channels, c.ho, c.wo];
        let n = out.iter().product::<usize>();
        let (act, slope) = act_code(activation);
        // The layout of `Params` in shaders/separator.wgsl.
        let dims = [
            n,
            c.channels,
            c.h,
            c.w,
            c.out_channels,
            c.kh,
            c.kw,
            p.stride[0],
            p.stride[1],
            p.crop[0],
            p.crop[1],
            c.ho,
            c.wo,
            usize::from(bias.is_some()),
        ];
        let mut words: Vec<u32> = dims.iter().map(|&d| d as u32).collect();
        words.extend([act, f(slope)]);
        launch_into(
            self,
            "conv_transpose2d",
            &Params::new(&words),
            &[
                Input::Tensor(input),
                Input::Tensor(weight),
                bias.map_or(Input::Absent, Input::Tensor),
            ],
            &out,
            Grid::Items(n),
        )
    }

    fn concat_channels(&self, a: &K::Tensor, b: &K::Tensor) -> Result<K::Tensor> {
        let [batch, ca, cb, inner] = self.check().concat_channels(a.shape(), b.shape())?;
        let n = batch * (ca + cb) * inner;
        let mut shape = a.shape().to_vec();
        shape[1] = ca + cb;
        // The layout of `Params` in shaders/concat.wgsl.
        let words = [n, ca, cb, inner].map(|d| d as u32);
        launch_into(
            self,
            "concat_channels",
            &Params::new(&words),
            &[Input::Tensor(a), Input::Tensor(b)],
            &shape,
            Grid::Items(n),
        )
    }

    fn mul(&self, a: &K::Tensor, b: &K::Tensor) -> Result<K::Tensor> {
        let n = self.check().same_shape("mul", a.shape(), b.shape())?;
        // The layout of `Params` in shaders/concat.wgsl (its `mul` reads `n` alone).
        launch_into(
            self,
            "mul",
            &Params::new(&[n as u32]),
            &[Input::Tensor(a), Input::Tensor(b)],
            a.shape(),
            Grid::Items(n),
        )
    }
}
