//! A weight-stationary SGEMM for the linear layers, `c = a · wᵀ` with `w` a `[n, k]` weight.
//!
//! The weight is packed once, the first time a linear layer uses it, into the panels the
//! micro-kernel streams (`[k block][16 columns][k][16]`); no call repacks it (matrixmultiply
//! packed the whole weight on every call: 4 MiB for a Whisper MLP layer). The activations are
//! packed per block of rows into 6-row panels that stay in L2. A 6×16 AVX2+FMA micro-kernel
//! keeps its tile in twelve registers; the bias and activation are applied to each finished
//! block of rows while it is in L2. No crate offers a prepacked SGEMM, so this one is ours, like the GPU
//! kernels; CPUs without AVX2+FMA use matrixmultiply, which is also the tests' reference.

use crate::backend::Activation;

use super::simd;

/// Rows and columns of the micro-kernel's tile.
const MR: usize = 6;
const NR: usize = 16;
/// Depth of a packed block: a 16-column panel of it (16 KiB) stays in L1.
const KC: usize = 256;
/// Rows packed together: their `[MC, KC]` block (144 KiB) stays in L2.
const MC: usize = 144;

/// Whether this CPU runs the packed kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[n, k]` weight in the micro-kernel's panel order (columns past `n` are zero).
pub struct PackedWeight {
    n: usize,
    k: usize,
    panels: Vec<f32>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedWeight[{}, {}]", self.n, self.k)
    }
}

impl PackedWeight {
    /// Pack `weight`, row-major `[n, k]` (a linear layer's `[out, in]`).
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "packed weight: {n} × {k}");
        let column_panels = n.div_ceil(NR);
        let mut panels = vec![0.0f32; column_panels * NR * k];
        for (block, k0) in (0..k).step_by(KC).enumerate() {
            let kc = KC.min(k - k0);
            for p in 0..column_panels {
                let at = Self::panel_offset(block, p, kc, column_panels);
                for j in 0..NR.min(n - p * NR) {
                    let row = &weight[(p * NR + j) * k + k0..][..kc];
                    for (kk, &w) in row.iter().enumerate() {
                        panels[at + kk * NR + j] = w;
                    }
                }
            }
        }
        PackedWeight { n, k, panels }
    }

    /// Where the panel of columns `p` of depth block `block` (of depth `kc`) starts.
    fn panel_offset(block: usize, p: usize, kc: usize, column_panels: usize) -> usize {
        block * KC * column_panels * NR + p * kc * NR
    }

    /// `c[m, n] = act(a[m, k] · wᵀ + bias)`, row-major, on this thread.
    pub fn matmul(
        &self,
        a: &[f32],
        m: usize,
        c: &mut [f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) {
        let (n, k) = (self.n, self.k);
        assert!(
            a.len() >= m * k && c.len() >= m * n,
            "packed matmul: {m} × {k} · {k} × {n}"
        );
        assert!(
            bias.is_none_or(|b| b.len() == n),
            "packed matmul: bias of {n}"
        );
        assert!(available(), "packed matmul without AVX2+FMA");
        let column_panels = n.div_ceil(NR);
        let mut a_pack = vec![0.0f32; MC.div_ceil(MR) * MR * KC];
        for m0 in (0..m).step_by(MC) {
            let mc = MC.min(m - m0);
            for (block, k0) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - k0);
                let last = k0 + kc == k;
                pack_rows(&a[m0 * k..], k, mc, k0, kc, &mut a_pack);
                for p in 0..column_panels {
                    let b =
                        &self.panels[Self::panel_offset(block, p, kc, column_panels)..][..kc * NR];
                    let cols = NR.min(n - p * NR);
                    for (r, i0) in (0..mc).step_by(MR).enumerate() {
                        let rows = MR.min(mc - i0);
                        let panel = &a_pack[r * MR * kc..][..kc * MR];
                        let tile = &mut c[(m0 + i0) * n + p * NR..];
                        // SAFETY: AVX2 and FMA are present (asserted); `panel` holds kc × MR
                        // values, `b` kc × NR, and the tile's rows × cols lie within `c`.
                        unsafe { tile_kernel(kc, panel, b, tile, n, rows, cols, block > 0) };
                    }
                }
                if last {
                    // The block's rows are finished and still in L2: one pass per row (per
                    // tile, the calls cost more than the arithmetic).
                    for row in c[m0 * n..(m0 + mc) * n].chunks_mut(n) {
                        simd::bias_activate(row, bias, act);
                    }
                }
            }
        }
    }
}

/// Pack rows `[0, mc)` × depth `[k0, k0 + kc)` of `a` (row stride `k`) into 6-row panels,
/// `[panel][kk][MR]`, zero past the last row.
fn pack_rows(a: &[f32], k: usize, mc: usize, k0: usize, kc: usize, out: &mut [f32]) {
    for (r, i0) in (0..mc).step_by(MR).enumerate() {
        let panel = &mut out[r * MR * kc..][..kc * MR];
        for i in 0..MR {
            if i0 + i < mc {
                let row = &a[(i0 + i) * k + k0..][..kc];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * MR + i] = v;
                }
            } else {
                for kk in 0..kc {
                    panel[kk * MR + i] = 0.0;
                }
            }
        }
    }
}

/// One tile: `c[rows, cols] (+)= panel · b` over depth `kc`; full tiles are written in place,
/// edge tiles through a local buffer.
///
/// # Safety
/// AVX2 and FMA must be present; `panel` holds `kc × MR` values, `b` `kc × NR`, and `c` holds
/// `rows` rows of stride `ldc` of at least `cols` values from its start.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_kernel(
    kc: usize,
    panel: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(panel.len() >= kc * MR && b.len() >= kc * NR);
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    let (mut ap, mut bp) = (panel.as_ptr(), b.as_ptr());
    for _ in 0..kc {
        // SAFETY: kc steps of MR (resp. NR) values stay within `panel` (resp. `b`).
        unsafe {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*ap.add(i));
                row[0] = _mm256_fmadd_ps(a, b0, row[0]);
                row[1] = _mm256_fmadd_ps(a, b1, row[1]);
            }
            ap = ap.add(MR);
            bp = bp.add(NR);
        }
    }
    if rows == MR && cols == NR {
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees MR rows of NR values at stride ldc.
            unsafe {
                let dst = c.as_mut_ptr().add(i * ldc);
                let (mut lo, mut hi) = (row[0], row[1]);
                if accumulate {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(dst));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(dst.add(8)));
                }
                _mm256_storeu_ps(dst, lo);
                _mm256_storeu_ps(dst.add(8), hi);
            }
        }
        return;
    }
    let mut local = [0.0f32; MR * NR];
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: `local` holds MR rows of NR values.
        unsafe {
            _mm256_storeu_ps(local.as_mut_ptr().add(i * NR), row[0]);
            _mm256_storeu_ps(local.as_mut_ptr().add(i * NR + 8), row[1]);
        }
    }
    for i in 0..rows {
        let dst = &mut c[i * ldc..i * ldc + cols];
        let src = &local[i * NR..i * NR + cols];
        if accumulate {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        } else {
            dst.copy_from_slice(src);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_kernel(
    _: usize,
    _: &[f32],
    _: &[f32],
    _: &mut [f32],
    _: usize,
    _: usize,
    _: usize,
    _: bool,
) {
    unreachable!("the packed kernel runs only where available() says so")
}
