//! Separator ops on a GPU: transposed convolution and channel concatenation
//! (`shaders/separator.wgsl`, `shaders/concat.wgsl`, `kernels/separator.cu`); the complex STFT
//! and each frame's inverse FFT (the front-end's kernels, `shaders/stft.wgsl`,
//! `kernels/frontend.cu`), ratio mask and overlap-add (`shaders/ratio_mask.wgsl`,
//! `overlap_add.wgsl`, `kernels/separator.cu`).

use super::{Grid, Input, Kernels, Params, f, launch_into};
use crate::Result;
use crate::backend::launch::act_code;
use crate::backend::{Activation, ConvTranspose2dParams, DeviceTensor, SeparatorOps, StftParams};

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

    fn stft_complex(
        &self,
        signal: &K::Tensor,
        window: &K::Tensor,
        p: &StftParams,
    ) -> Result<K::Tensor> {
        super::frontend::stft(self, signal, window, p, true)
    }

    fn apply_ratio_mask(
        &self,
        spec: &K::Tensor,
        target: &K::Tensor,
        other: &K::Tensor,
        eps: f32,
    ) -> Result<K::Tensor> {
        let n = self
            .check()
            .ratio_mask(spec.shape(), target.shape(), other.shape())?;
        // The layout of `Params` in shaders/ratio_mask.wgsl.
        launch_into(
            self,
            "ratio_mask",
            &Params::new(&[n as u32, f(eps)]),
            &[
                Input::Tensor(spec),
                Input::Tensor(target),
                Input::Tensor(other),
            ],
            spec.shape(),
            Grid::Items(n),
        )
    }

    fn istft_overlap_add(
        &self,
        spec: &K::Tensor,
        window: &K::Tensor,
        n_fft: usize,
        hop: usize,
    ) -> Result<K::Tensor> {
        let [batch, frames, bins, len] =
            self.check().istft(spec.shape(), window.len(), n_fft, hop)?;
        let half = n_fft / 2;
        if !(n_fft.is_power_of_two() && n_fft >= 4 && n_fft <= self.radix2_max_nfft()) {
            return Err(crate::Error::backend(
                self.name(),
                format!(
                    "istft_overlap_add: n_fft {n_fft} must be a power of two from 4 to {}",
                    self.radix2_max_nfft()
                ),
            ));
        }
        // The layout of `Params` in shaders/stft.wgsl (no signal length, hop or padding here).
        let words = [batch, 0, frames, n_fft, 0, 0, bins, half].map(|d| d as u32);
        let params = Params::new(&words).with(words.len(), half.trailing_zeros());
        let mut framed = self.alloc(&[batch, frames, n_fft])?;
        let grid = Grid::Rows {
            rows: batch * frames,
            threads: 256,
            shared: (half * 8) as u32,
        };
        let inputs = [
            Input::Tensor(spec),
            Input::Tensor(window),
            Input::Twiddles(n_fft),
        ];
        self.launch("irfft_frames", &params, &inputs, &mut framed, grid)?;
        // The layout of `Params` in shaders/overlap_add.wgsl.
        let words = [batch * len, len, frames, n_fft, hop].map(|d| d as u32);
        launch_into(
            self,
            "overlap_add",
            &Params::new(&words),
            &[Input::Tensor(&framed)],
            &[batch, len],
            Grid::Items(batch * len),
        )
    }
}
