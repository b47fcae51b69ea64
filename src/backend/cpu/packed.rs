//! A weight-stationary SGEMM for the linear layers and convolutions, `c = a · wᵀ` with `w` a
//! `[n, k]` weight (a convolution's `[O, C, K]` read as `[O, K·C]`, see [`Layout`]).
//!
//! The weight is packed once, the first time a layer uses it, into the panels the micro-kernel
//! streams (`[k block][NR columns][k][NR]`); no call repacks it (matrixmultiply packed the
//! whole weight on every call: 4 MiB for a Whisper MLP layer). The activations are packed per
//! block of rows into MR-row panels that stay in L2. Two micro-kernels, picked once per
//! process: 12×32 on AVX-512 (24 of its 32 registers hold the tile: twice the work per
//! broadcast of the AVX2 one, and half the instructions per FMA) and 6×16 on AVX2+FMA (12 of
//! 16). The bias and activation are applied to each finished block of rows while it is in
//! cache. No crate offers a prepacked SGEMM, so this one is ours, like the GPU kernels; CPUs
//! without AVX2+FMA use matrixmultiply, which is also the tests' reference.

use std::sync::OnceLock;

use crate::backend::Activation;

use super::simd;

/// A micro-kernel and the blocking around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// 6 rows × 16 columns in twelve `ymm` registers.
    Avx2,
    /// 12 rows × 32 columns in twenty-four `zmm` registers.
    Avx512,
}

impl Kernel {
    /// The fastest this CPU runs, if any (detected once).
    pub fn best() -> Option<Kernel> {
        static BEST: OnceLock<Option<Kernel>> = OnceLock::new();
        *BEST.get_or_init(|| {
            let kernels = [Kernel::Avx512, Kernel::Avx2];
            kernels.into_iter().find(|k| k.runs_here())
        })
    }

    /// Whether this CPU has the kernel's instructions.
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Kernel::Avx2 => has!("avx2") && has!("fma"),
                Kernel::Avx512 => has!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Rows and columns of the tile.
    fn tile(self) -> (usize, usize) {
        match self {
            Kernel::Avx2 => (6, 16),
            Kernel::Avx512 => (12, 32),
        }
    }

    /// Depth of a packed block: a column panel of it (16 KiB) stays in L1.
    fn depth(self) -> usize {
        16 * 1024 / 4 / self.tile().1
    }
}

/// Rows packed together: their `[MC, depth]` block (at most 144 KiB) stays in L2. A multiple
/// of both kernels' rows.
const MC: usize = 144;

/// Whether this CPU runs a packed kernel.
pub fn available() -> bool {
    Kernel::best().is_some()
}

/// How a weight tensor's values map to the `[n, k]` matrix the kernel multiplies by (as `wᵀ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A linear layer's `[out, in]`: row-major `[n, k]` as it is.
    Rows,
    /// A convolution's `[O, C, K]`, as `[O, K·C]` with column `tap · C + channel`: the order
    /// of its im2col rows (channels last).
    Taps,
}

/// A weight in one kernel's panel order (columns past `n` are zero).
#[derive(Clone)]
pub struct PackedWeight {
    n: usize,
    k: usize,
    kernel: Kernel,
    panels: Vec<f32>,
}

impl std::fmt::Debug for PackedWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedWeight[{}, {}] for {:?}",
            self.n, self.k, self.kernel
        )
    }
}

impl PackedWeight {
    /// Pack `weight` of `shape`, read in `layout`, for the best kernel of this CPU.
    ///
    /// # Panics
    /// Where no kernel runs ([`available`] is false).
    pub fn new(weight: &[f32], shape: &[usize], layout: Layout) -> Self {
        let kernel = Kernel::best().expect("packed weights need AVX2+FMA or AVX-512");
        Self::for_kernel(weight, shape, layout, kernel)
    }

    /// Pack for a given kernel (the tests run each one).
    pub fn for_kernel(weight: &[f32], shape: &[usize], layout: Layout, kernel: Kernel) -> Self {
        let n = shape.first().copied().unwrap_or(0);
        let k: usize = shape.iter().skip(1).product();
        assert_eq!(weight.len(), n * k, "packed weight: {shape:?}");
        match layout {
            Layout::Rows => Self::from_rows(weight, n, k, k, kernel),
            Layout::Taps => {
                assert_eq!(shape.len(), 3, "a convolution's weight is [O, C, K]");
                let (channels, taps) = (shape[1], shape[2]);
                Self::from_fn(n, k, kernel, |row, col| {
                    let (tap, channel) = (col / channels, col % channels);
                    weight[(row * channels + channel) * taps + tap]
                })
            }
        }
    }

    /// Pack the `[n, k]` matrix whose rows lie `stride` values apart in `data`.
    pub fn from_rows(data: &[f32], n: usize, k: usize, stride: usize, kernel: Kernel) -> Self {
        assert!(
            stride >= k && (n == 0 || data.len() >= (n - 1) * stride + k),
            "packed weight: {n} rows of {k}, {stride} apart, in {}",
            data.len()
        );
        // A column panel is packed like a panel of activations, nr rows wide.
        let nr = kernel.tile().1;
        Self::packed_by_panel(n, k, kernel, |first, cols, k0, kc, panel| {
            pack_rows(&data[first * stride..], stride, cols, k0, kc, nr, panel);
        })
    }

    /// Pack the `[n, k]` transpose of a row-major `[k, n]` matrix whose rows lie `stride`
    /// values apart in `data`: each depth step of a panel is a run of one of those rows.
    pub fn from_columns(data: &[f32], n: usize, k: usize, stride: usize, kernel: Kernel) -> Self {
        assert!(
            stride >= n && (k == 0 || data.len() >= (k - 1) * stride + n),
            "packed weight: {k} rows of {n}, {stride} apart, in {}",
            data.len()
        );
        Self::packed_by_depth(n, k, kernel, |col, first, run| {
            run.copy_from_slice(&data[col * stride + first..][..run.len()]);
        })
    }

    /// Pack the `[n, k]` matrix whose element (row, col) is `at(row, col)`.
    pub fn from_fn(n: usize, k: usize, kernel: Kernel, at: impl Fn(usize, usize) -> f32) -> Self {
        Self::packed_by_depth(n, k, kernel, |col, first, run| {
            for (j, v) in run.iter_mut().enumerate() {
                *v = at(first + j, col);
            }
        })
    }

    /// Pack by depth steps: `fill(col, first, run)` writes elements (first.., col) of the
    /// matrix into `run` (a panel's columns at that depth; the rest stay zero).
    fn packed_by_depth(
        n: usize,
        k: usize,
        kernel: Kernel,
        fill: impl Fn(usize, usize, &mut [f32]),
    ) -> Self {
        let nr = kernel.tile().1;
        Self::packed_by_panel(n, k, kernel, |first, cols, k0, _, panel| {
            for (kk, dst) in panel.chunks_exact_mut(nr).enumerate() {
                fill(k0 + kk, first, &mut dst[..cols]);
            }
        })
    }

    /// Pack panel by panel: `fill(first, cols, k0, kc, panel)` writes columns
    /// `first..first + cols` of the matrix at depths `k0..k0 + kc` into `panel`, `[kc][nr]`
    /// (zero past `cols`).
    fn packed_by_panel(
        n: usize,
        k: usize,
        kernel: Kernel,
        fill: impl Fn(usize, usize, usize, usize, &mut [f32]),
    ) -> Self {
        assert!(kernel.runs_here(), "{kernel:?} does not run on this CPU");
        let (_, nr) = kernel.tile();
        let depth = kernel.depth();
        let column_panels = n.div_ceil(nr);
        let mut panels = vec![0.0f32; column_panels * nr * k];
        for (block, k0) in (0..k).step_by(depth).enumerate() {
            let kc = depth.min(k - k0);
            for p in 0..column_panels {
                let start = panel_offset(kernel, block, p, kc, column_panels);
                let cols = nr.min(n - p * nr);
                fill(p * nr, cols, k0, kc, &mut panels[start..][..kc * nr]);
            }
        }
        PackedWeight {
            n,
            k,
            kernel,
            panels,
        }
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
        self.matmul_strided(a, self.k, m, c, bias, act);
    }

    /// [`matmul`](Self::matmul) with `a`'s rows `lda` values apart (a slice of wider rows).
    pub fn matmul_strided(
        &self,
        a: &[f32],
        lda: usize,
        m: usize,
        c: &mut [f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) {
        let (n, k, kernel) = (self.n, self.k, self.kernel);
        assert!(
            lda >= k && (m == 0 || a.len() >= (m - 1) * lda + k) && c.len() >= m * n,
            "packed matmul: {m} × {k} (rows {lda} apart) · {k} × {n}"
        );
        assert!(
            bias.is_none_or(|b| b.len() == n),
            "packed matmul: bias of {n}"
        );
        if k == 0 {
            for row in c[..m * n].chunks_mut(n.max(1)) {
                row.fill(0.0);
                simd::bias_activate(row, bias, act);
            }
            return;
        }
        let (mr, nr) = kernel.tile();
        let depth = kernel.depth();
        let column_panels = n.div_ceil(nr);
        let mut a_pack = vec![0.0f32; MC * depth];
        for m0 in (0..m).step_by(MC) {
            let mc = MC.min(m - m0);
            for (block, k0) in (0..k).step_by(depth).enumerate() {
                let kc = depth.min(k - k0);
                pack_rows(&a[m0 * lda..], lda, mc, k0, kc, mr, &mut a_pack);
                for p in 0..column_panels {
                    let start = panel_offset(kernel, block, p, kc, column_panels);
                    let b = &self.panels[start..][..kc * nr];
                    let cols = nr.min(n - p * nr);
                    for (r, i0) in (0..mc).step_by(mr).enumerate() {
                        let tile = Tile {
                            rows: mr.min(mc - i0),
                            cols,
                            stride: n,
                            accumulate: block > 0,
                        };
                        let panel = &a_pack[r * mr * kc..][..kc * mr];
                        let c = &mut c[(m0 + i0) * n + p * nr..];
                        tile.run(kernel, kc, panel, b, c);
                    }
                }
            }
            // The block's rows are finished and still in cache: one pass per row (per tile,
            // the calls cost more than the arithmetic).
            for row in c[m0 * n..(m0 + mc) * n].chunks_mut(n) {
                simd::bias_activate(row, bias, act);
            }
        }
    }
}

/// Where the panel of columns `p` of depth block `block` (of depth `kc`) starts.
fn panel_offset(kernel: Kernel, block: usize, p: usize, kc: usize, column_panels: usize) -> usize {
    let nr = kernel.tile().1;
    block * kernel.depth() * column_panels * nr + p * kc * nr
}

/// Pack rows `[0, mc)` × depth `[k0, k0 + kc)` of `a` (rows `lda` apart) into `mr`-row
/// panels, `[panel][kk][mr]`, zero past the last row.
fn pack_rows(a: &[f32], lda: usize, mc: usize, k0: usize, kc: usize, mr: usize, out: &mut [f32]) {
    for (r, i0) in (0..mc).step_by(mr).enumerate() {
        let panel = &mut out[r * mr * kc..][..kc * mr];
        let rows = mr.min(mc - i0);
        let a = &a[i0 * lda..];
        match (mr, rows) {
            (6, 6) => pack_full_panel::<6>(a, lda, k0, kc, panel),
            (12, 12) => pack_full_panel::<12>(a, lda, k0, kc, panel),
            (16, 16) => pack_full_panel::<16>(a, lda, k0, kc, panel),
            (32, 32) => pack_full_panel::<32>(a, lda, k0, kc, panel),
            _ => {
                for (kk, dst) in panel.chunks_exact_mut(mr).enumerate() {
                    for (i, v) in dst[..rows].iter_mut().enumerate() {
                        *v = a[i * lda + k0 + kk];
                    }
                    dst[rows..].fill(0.0);
                }
            }
        }
    }
}

/// One full panel of `MR` rows: the row loop unrolled, so each depth step is `MR` loads at
/// fixed offsets and one contiguous run of stores.
#[inline(always)]
fn pack_full_panel<const MR: usize>(
    a: &[f32],
    lda: usize,
    k0: usize,
    kc: usize,
    panel: &mut [f32],
) {
    let rows: [&[f32]; MR] = std::array::from_fn(|i| &a[i * lda + k0..][..kc]);
    for (kk, dst) in panel.chunks_exact_mut(MR).take(kc).enumerate() {
        for (v, row) in dst.iter_mut().zip(&rows) {
            *v = row[kk];
        }
    }
}

/// Where one micro-kernel call writes: `rows × cols` of `c` at row stride `stride`, added to
/// what is there (a later depth block) or written over it (the first).
struct Tile {
    rows: usize,
    cols: usize,
    stride: usize,
    accumulate: bool,
}

impl Tile {
    /// `c (+)= panel · b` over depth `kc`.
    fn run(&self, kernel: Kernel, kc: usize, panel: &[f32], b: &[f32], c: &mut [f32]) {
        let (mr, nr) = kernel.tile();
        assert!(panel.len() >= kc * mr && b.len() >= kc * nr);
        assert!(self.rows <= mr && self.cols <= nr && self.rows > 0);
        assert!(c.len() >= (self.rows - 1) * self.stride + self.cols);
        #[cfg(target_arch = "x86_64")]
        match kernel {
            // SAFETY: `PackedWeight::for_kernel` checked the CPU has the kernel's
            // instructions; the bounds the kernels rely on are asserted above.
            Kernel::Avx2 => unsafe { self.avx2(kc, panel, b, c) },
            Kernel::Avx512 => unsafe { self.avx512(kc, panel, b, c) },
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (kc, panel, b, c);
            unreachable!("no packed kernel runs off x86-64 ({kernel:?})");
        }
    }

    /// Write an edge tile spilled from the registers (`nr` values a row): its rows and columns.
    fn write(&self, acc: &[f32], nr: usize, c: &mut [f32]) {
        for i in 0..self.rows {
            let dst = &mut c[i * self.stride..][..self.cols];
            let src = &acc[i * nr..][..self.cols];
            if self.accumulate {
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
            } else {
                dst.copy_from_slice(src);
            }
        }
    }

    /// # Safety
    /// AVX2 and FMA must be present; the bounds of [`Tile::run`] hold.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(&self, kc: usize, panel: &[f32], b: &[f32], c: &mut [f32]) {
        use std::arch::x86_64::*;
        const MR: usize = 6;
        const NR: usize = 16;
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
        if self.rows == MR && self.cols == NR {
            for (i, row) in acc.iter().enumerate() {
                // SAFETY: a full tile: MR rows of NR values at `stride` lie within `c`.
                unsafe {
                    let dst = c.as_mut_ptr().add(i * self.stride);
                    let (mut lo, mut hi) = (row[0], row[1]);
                    if self.accumulate {
                        lo = _mm256_add_ps(lo, _mm256_loadu_ps(dst));
                        hi = _mm256_add_ps(hi, _mm256_loadu_ps(dst.add(8)));
                    }
                    _mm256_storeu_ps(dst, lo);
                    _mm256_storeu_ps(dst.add(8), hi);
                }
            }
            return;
        }
        let mut spill = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: `spill` holds MR rows of NR values.
            unsafe {
                _mm256_storeu_ps(spill.as_mut_ptr().add(i * NR), row[0]);
                _mm256_storeu_ps(spill.as_mut_ptr().add(i * NR + 8), row[1]);
            }
        }
        self.write(&spill, NR, c);
    }

    /// # Safety
    /// AVX-512F must be present; the bounds of [`Tile::run`] hold.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(&self, kc: usize, panel: &[f32], b: &[f32], c: &mut [f32]) {
        use std::arch::x86_64::*;
        const MR: usize = 12;
        const NR: usize = 32;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (mut ap, mut bp) = (panel.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            // SAFETY: kc steps of MR (resp. NR) values stay within `panel` (resp. `b`).
            unsafe {
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                for (i, row) in acc.iter_mut().enumerate() {
                    let a = _mm512_set1_ps(*ap.add(i));
                    row[0] = _mm512_fmadd_ps(a, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(a, b1, row[1]);
                }
                ap = ap.add(MR);
                bp = bp.add(NR);
            }
        }
        if self.rows == MR && self.cols == NR {
            for (i, row) in acc.iter().enumerate() {
                // SAFETY: a full tile: MR rows of NR values at `stride` lie within `c`.
                unsafe {
                    let dst = c.as_mut_ptr().add(i * self.stride);
                    let (mut lo, mut hi) = (row[0], row[1]);
                    if self.accumulate {
                        lo = _mm512_add_ps(lo, _mm512_loadu_ps(dst));
                        hi = _mm512_add_ps(hi, _mm512_loadu_ps(dst.add(16)));
                    }
                    _mm512_storeu_ps(dst, lo);
                    _mm512_storeu_ps(dst.add(16), hi);
                }
            }
            return;
        }
        let mut spill = [0.0f32; MR * NR];
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: `spill` holds MR rows of NR values.
            unsafe {
                _mm512_storeu_ps(spill.as_mut_ptr().add(i * NR), row[0]);
                _mm512_storeu_ps(spill.as_mut_ptr().add(i * NR + 16), row[1]);
            }
        }
        self.write(&spill, NR, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `act(a · wᵀ + bias)` in f64, the naive way.
    fn reference(a: &[f32], w: &[f32], bias: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|l| a[i * k + l] as f64 * w[j * k + l] as f64)
                    .sum();
                c[i * n + j] = (dot + bias[j] as f64).max(0.0);
            }
        }
        c
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // A small LCG: deterministic, spread over [-1, 1).
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_kernel_here_matches_a_naive_product_on_edge_shapes() {
        let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.runs_here())
            .collect();
        if kernels.is_empty() {
            eprintln!("skipped: no packed kernel runs on this CPU");
            return;
        }
        // Rows past a block and a tile, columns past a panel, depth past a block; and tiny.
        for (m, n, k) in [(301, 37, 600), (13, 64, 256), (1, 1, 1), (150, 33, 129)] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let expected = reference(&a, &w, &bias, m, n, k);
            for &kernel in &kernels {
                let packed = PackedWeight::for_kernel(&w, &[n, k], Layout::Rows, kernel);
                // Stale values in the output must not leak into it.
                let mut c = vec![f32::NAN; m * n];
                packed.matmul(&a, m, &mut c, Some(&bias), Activation::Relu);
                for (i, (&got, &want)) in c.iter().zip(&expected).enumerate() {
                    assert!(
                        (got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "{kernel:?} {m}×{n}×{k} at {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_convolution_weight_is_read_tap_major() {
        let Some(kernel) = Kernel::best() else {
            eprintln!("skipped: no packed kernel runs on this CPU");
            return;
        };
        // [O=3, C=2, K=4]: element (o, tap·C + c) of the packed matrix is w[o, c, tap].
        let (o, ch, taps) = (3, 2, 4);
        let w = values(o * ch * taps, 4);
        let packed = PackedWeight::for_kernel(&w, &[o, ch, taps], Layout::Taps, kernel);
        // One-hot rows of `a` pick out the matrix's columns.
        let k = ch * taps;
        let mut a = vec![0.0f32; k * k];
        for col in 0..k {
            a[col * k + col] = 1.0;
        }
        let mut c = vec![0.0f32; k * o];
        packed.matmul(&a, k, &mut c, None, Activation::None);
        for col in 0..k {
            let (tap, channel) = (col / ch, col % ch);
            for row in 0..o {
                assert_eq!(c[col * o + row], w[(row * ch + channel) * taps + tap]);
            }
        }
    }
}
