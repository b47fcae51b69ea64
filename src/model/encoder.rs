//! The pretrained encoder between the front-end and the classifier (Whisper's audio encoder):
//! its tensors and their shapes, and its forward pass, written once over [`Backend`].
//!
//! Stem: conv1d(F → d, k 3, p 1) + GELU, conv1d(d → d, k 3, s 2, p 1) + GELU, plus the first
//! `positions` rows of the position table. Each block (pre-LayerNorm):
//! `x += attn_out(attention(qkv(LN(x))))`, `x += mlp_out(GELU(mlp_in(LN(x))))`. Then a final
//! LayerNorm. Hidden states are `[batch, positions, d]`.

use std::collections::BTreeMap;

use super::config::{EncoderConfig, EncoderRead};
use super::tensor::HostTensor;
use crate::Result;
use crate::backend::{Activation, Backend, Conv1dParams, DeviceTensor, window_output};

/// LayerNorm epsilon of Whisper's encoder (PyTorch's default).
pub const LN_EPS: f32 = 1e-5;

const STEM_KERNEL: usize = 3;

/// A LayerNorm's gain and bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm<T> {
    pub gamma: T,
    pub beta: T,
}

/// A projection (PyTorch layout `[out, in]`, or `[out, in, k]` for the stem) and its bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense<T> {
    pub weight: T,
    pub bias: T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block<T> {
    pub attn_norm: Norm<T>,
    pub qkv: Dense<T>,
    pub attn_out: Dense<T>,
    pub mlp_norm: Norm<T>,
    pub mlp_in: Dense<T>,
    pub mlp_out: Dense<T>,
}

/// The encoder's weights, on the host (`T = HostTensor`) or on a device.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoder<T> {
    pub conv1: Dense<T>,
    pub conv2: Dense<T>,
    /// Position table cut to the window's sequence length: `[positions, d]`.
    pub positions: T,
    pub blocks: Vec<Block<T>>,
    pub final_norm: Norm<T>,
    pub heads: usize,
    pub read: EncoderRead,
    /// For [`EncoderRead::Mix`]: each term's state and a LayerNorm whose gain is the term's
    /// weight (bias 0), so a term is one `layer_norm` op.
    pub mix: Vec<(usize, Norm<T>)>,
}

impl<T> Norm<T> {
    fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Norm<U>, E> {
        Ok(Norm {
            gamma: f(&self.gamma)?,
            beta: f(&self.beta)?,
        })
    }
}

impl<T> Dense<T> {
    fn try_map<U, E>(&self, f: &mut impl FnMut(&T) -> Result<U, E>) -> Result<Dense<U>, E> {
        Ok(Dense {
            weight: f(&self.weight)?,
            bias: f(&self.bias)?,
        })
    }
}

impl<T> Encoder<T> {
    /// The same encoder with every tensor converted by `f` (e.g. uploaded to a device).
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&T) -> Result<U, E>) -> Result<Encoder<U>, E> {
        let f = &mut f;
        Ok(Encoder {
            conv1: self.conv1.try_map(f)?,
            conv2: self.conv2.try_map(f)?,
            positions: f(&self.positions)?,
            blocks: self
                .blocks
                .iter()
                .map(|b| {
                    Ok(Block {
                        attn_norm: b.attn_norm.try_map(f)?,
                        qkv: b.qkv.try_map(f)?,
                        attn_out: b.attn_out.try_map(f)?,
                        mlp_norm: b.mlp_norm.try_map(f)?,
                        mlp_in: b.mlp_in.try_map(f)?,
                        mlp_out: b.mlp_out.try_map(f)?,
                    })
                })
                .collect::<Result<_, E>>()?,
            final_norm: self.final_norm.try_map(f)?,
            heads: self.heads,
            read: self.read.clone(),
            mix: self
                .mix
                .iter()
                .map(|(state, norm)| Ok((*state, norm.try_map(f)?)))
                .collect::<Result<_, E>>()?,
        })
    }
}

/// Sequence length after the stem for `frames` front-end frames (the stride-2 convolution).
pub fn positions(frames: usize) -> Option<usize> {
    window_output(frames, STEM_KERNEL, 2, 1)
}

/// Every tensor the encoder needs, with its shape, for `features` front-end features.
pub fn tensor_shapes(cfg: &EncoderConfig, features: usize) -> Vec<(String, Vec<usize>)> {
    let d = cfg.width;
    let mut v = vec![
        (
            "encoder.conv1.weight".into(),
            vec![d, features, STEM_KERNEL],
        ),
        ("encoder.conv1.bias".into(), vec![d]),
        ("encoder.conv2.weight".into(), vec![d, d, STEM_KERNEL]),
        ("encoder.conv2.bias".into(), vec![d]),
        ("encoder.positions".into(), vec![cfg.max_positions, d]),
    ];
    for i in 0..cfg.layers {
        let p = format!("encoder.blocks.{i}.");
        for (name, weight) in [
            ("attn_norm", vec![d]),
            ("qkv", vec![3 * d, d]),
            ("attn_out", vec![d, d]),
            ("mlp_norm", vec![d]),
            ("mlp_in", vec![4 * d, d]),
            ("mlp_out", vec![d, 4 * d]),
        ] {
            let out = weight[0];
            v.push((format!("{p}{name}.weight"), weight));
            v.push((format!("{p}{name}.bias"), vec![out]));
        }
    }
    v.push(("encoder.final_norm.weight".into(), vec![d]));
    v.push(("encoder.final_norm.bias".into(), vec![d]));
    v
}

/// Take the encoder's tensors out of `tensors` (already checked against [`tensor_shapes`]),
/// cutting the position table to `positions` rows.
pub fn from_host(
    cfg: &EncoderConfig,
    tensors: &mut BTreeMap<String, HostTensor>,
    positions: usize,
) -> Encoder<HostTensor> {
    let mut take = |name: String| tensors.remove(&name).expect("planned");
    let mut dense = |prefix: String| Dense {
        weight: take(format!("{prefix}.weight")),
        bias: take(format!("{prefix}.bias")),
    };
    let conv1 = dense("encoder.conv1".into());
    let conv2 = dense("encoder.conv2".into());
    let blocks = (0..cfg.layers)
        .map(|i| {
            let p = format!("encoder.blocks.{i}.");
            let qkv = dense(format!("{p}qkv"));
            let attn_out = dense(format!("{p}attn_out"));
            let mlp_in = dense(format!("{p}mlp_in"));
            let mlp_out = dense(format!("{p}mlp_out"));
            let attn_norm = dense(format!("{p}attn_norm"));
            let mlp_norm = dense(format!("{p}mlp_norm"));
            Block {
                attn_norm: Norm {
                    gamma: attn_norm.weight,
                    beta: attn_norm.bias,
                },
                qkv,
                attn_out,
                mlp_norm: Norm {
                    gamma: mlp_norm.weight,
                    beta: mlp_norm.bias,
                },
                mlp_in,
                mlp_out,
            }
        })
        .collect();
    let final_norm = dense("encoder.final_norm".into());
    let mut table = take("encoder.positions".into());
    table.data.truncate(positions * cfg.width);
    table.shape = vec![positions, cfg.width];
    Encoder {
        conv1,
        conv2,
        positions: table,
        blocks,
        final_norm: Norm {
            gamma: final_norm.weight,
            beta: final_norm.bias,
        },
        heads: cfg.heads,
        read: cfg.read.clone(),
        mix: match &cfg.read {
            EncoderRead::Mix(terms) => terms
                .iter()
                .map(|t| {
                    let d = cfg.width;
                    let gamma = HostTensor {
                        shape: vec![d],
                        data: vec![t.weight; d],
                    };
                    let beta = HostTensor {
                        shape: vec![d],
                        data: vec![0.0; d],
                    };
                    (t.state, Norm { gamma, beta })
                })
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// Run the encoder on front-end features `[B, frames, F]`. With `all`, every hidden state
/// (stem + positions, each block, final LayerNorm); otherwise only the one `read` names.
pub fn forward<B: Backend>(
    backend: &B,
    enc: &Encoder<B::Tensor>,
    features: &B::Tensor,
    all: bool,
) -> Result<Vec<B::Tensor>> {
    let same = Conv1dParams {
        stride: 1,
        padding: 1,
    };
    let halve = Conv1dParams {
        stride: 2,
        padding: 1,
    };
    let x = backend.conv1d(
        features,
        &enc.conv1.weight,
        Some(&enc.conv1.bias),
        &same,
        Activation::Gelu,
    )?;
    let x = backend.conv1d(
        &x,
        &enc.conv2.weight,
        Some(&enc.conv2.bias),
        &halve,
        Activation::Gelu,
    )?;
    let x = backend.add(&x, &enc.positions)?;
    let n = enc.blocks.len();
    // States are numbered 0 = stem + positions, i = after block i, n + 1 = final LayerNorm;
    // only those read are kept.
    let (deepest, keep): (usize, Box<dyn Fn(usize) -> bool>) = match (&enc.read, all) {
        (_, true) => (n + 1, Box::new(|_| true)),
        (EncoderRead::Final, false) => (n + 1, Box::new(move |i| i == n + 1)),
        (EncoderRead::Layer(l), false) => {
            let l = *l;
            (l, Box::new(move |i| i == l))
        }
        (EncoderRead::Mix(_), false) => {
            let read: Vec<usize> = enc.mix.iter().map(|(s, _)| *s).collect();
            let deepest = read.iter().copied().max().unwrap_or(n + 1);
            (deepest, Box::new(move |i| read.contains(&i)))
        }
    };
    let mut states: Vec<Option<B::Tensor>> = Vec::with_capacity(deepest + 1);
    let mut x = x;
    let blocks = deepest.min(n);
    for (i, block) in enc.blocks.iter().enumerate().take(blocks) {
        let next = block_forward(backend, block, enc.heads, &x)?;
        states.push(keep(i).then_some(x));
        x = next;
    }
    if deepest == n + 1 {
        let last = backend.layer_norm(&x, &enc.final_norm.gamma, &enc.final_norm.beta, LN_EPS)?;
        states.push(keep(n).then_some(x));
        states.push(Some(last));
    } else {
        states.push(Some(x));
    }
    if all {
        return Ok(states.into_iter().flatten().collect());
    }
    if enc.mix.is_empty() {
        return Ok(vec![
            states.pop().flatten().expect("the state read is kept"),
        ]);
    }
    // Σ weight · LayerNorm(state): the weight is the LayerNorm's gain.
    let mut sum: Option<B::Tensor> = None;
    for (state, norm) in &enc.mix {
        let h = states[*state].as_ref().expect("mixed states are kept");
        let term = backend.layer_norm(h, &norm.gamma, &norm.beta, LN_EPS)?;
        sum = Some(match sum {
            Some(acc) => backend.add(&acc, &term)?,
            None => term,
        });
    }
    Ok(vec![sum.expect("read.mix is not empty")])
}

/// One pre-LayerNorm transformer block on `x` `[B, T, d]`: its output. Each half's residual
/// add is in the epilogue of the projection that ends it.
fn block_forward<B: Backend>(
    backend: &B,
    block: &Block<B::Tensor>,
    heads: usize,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    let [b, t, d]: [usize; 3] = x.shape().try_into().expect("encoder states are [B, T, d]");
    // Projections run as one GEMM over every position of every window.
    let rows = |input: B::Tensor| {
        let width = input.shape()[2];
        backend.reshape(input, &[b * t, width])
    };
    let norm = |x: &B::Tensor, norm: &Norm<B::Tensor>| {
        backend.layer_norm(x, &norm.gamma, &norm.beta, LN_EPS)
    };
    let h = rows(norm(x, &block.attn_norm)?)?;
    let qkv = backend.linear(
        &h,
        &block.qkv.weight,
        Some(&block.qkv.bias),
        Activation::None,
    )?;
    let attended = backend.attention(&backend.reshape(qkv, &[b, t, 3 * d])?, heads)?;
    let (attn_out, mlp_in, mlp_out) = (&block.attn_out, &block.mlp_in, &block.mlp_out);
    let x = backend.linear_residual(&rows(attended)?, &attn_out.weight, Some(&attn_out.bias), x)?;
    let h = rows(norm(&x, &block.mlp_norm)?)?;
    let inner = backend.linear(&h, &mlp_in.weight, Some(&mlp_in.bias), Activation::Gelu)?;
    let out = backend.linear_residual(&inner, &mlp_out.weight, Some(&mlp_out.bias), &x)?;
    debug_assert_eq!(out.shape(), &[b, t, d]);
    Ok(out)
}
