//! A weight-stationary SGEMM for the linear layers and convolutions, `c = a · wᵀ` with `w` a
//! `[n, k]` weight (a convolution's `[O, C, K]` read as `[O, K·C]`, see [`Layout`]).
//!
//! The weight is packed once, the first time a layer uses it, into the panels the micro-kernel
//! streams (`[k block][NR columns][k][NR]`); no call repacks it (matrixmultiply packed the
//! whole weight on every call: 4 MiB for a Whisper MLP layer). The activations are packed per
//! block of rows into MR-row panels that stay in L2. Two micro-kernels, picked once per
//! process: 12×32 on AVX-512 (24 of its 32 registers hold the tile: twice the work per
//! broadcast of the AVX2 one, and half the instructions per FMA) and 6×16 on AVX2+FMA (12 of
//! 16). A third, opt-in (`DEEPSCREEN_CPU_MATH=bf16`, see [`super::Math`]), keeps the 12×32
//! tile but multiplies bf16 pairs with AVX512-BF16's `vdpbf16ps` into f32 accumulators: two
//! depth steps per instruction, weights and activations rounded to bf16 (8 significant bits)
//! as they are packed. The bias and activation are applied to each finished block of rows
//! while it is in cache. No crate offers a prepacked SGEMM, so this one is ours, like the GPU
//! kernels; CPUs without AVX2+FMA use matrixmultiply, which is also the tests' reference.

use std::cell::RefCell;
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
    /// 12 rows × 32 columns like `Avx512`, on bf16 pairs (`vdpbf16ps`): never picked by
    /// [`Kernel::best`], only asked for.
    Avx512Bf16,
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
                Kernel::Avx512Bf16 => has!("avx512f") && has!("avx512bf16"),
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
            Kernel::Avx512 | Kernel::Avx512Bf16 => (12, 32),
        }
    }

    /// Depth values in one packed step: a bf16 kernel multiplies pairs.
    fn pairs(self) -> usize {
        match self {
            Kernel::Avx512Bf16 => 2,
            Kernel::Avx2 | Kernel::Avx512 => 1,
        }
    }

    /// Packed steps of a block of depth `kc` (an odd last value is paired with a zero).
    fn steps(self, kc: usize) -> usize {
        kc.div_ceil(self.pairs())
    }

    /// Depth of a packed block: 512 steps, so the input of a Whisper base layer (512 wide) is
    /// one block and each output tile is written once. At 128 deep (a column panel in L1) the
    /// outputs were re-read and re-written per block, out of L2: the qkv and mlp_in layers ran
    /// 12-22 % slower (criterion, BENCHMARKS.md). A column panel (32-64 KiB) now streams from
    /// L2, and the `[MC, depth]` block of rows (288 KiB) stays there.
    fn depth(self) -> usize {
        512 * self.pairs()
    }
}

/// Rows packed together: their `[MC, depth]` block (288 KiB) stays in L2. A multiple of both
/// kernels' rows.
const MC: usize = 144;

thread_local! {
    /// Each thread's packed rows (and, for bf16, their f32 staging), kept between calls: fresh
    /// buffers of this size are fresh pages, zeroed by the kernel on first touch.
    static ROWS_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static ROWS_BF16: RefCell<(Vec<u32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
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
    panels: Panels,
}

/// Panel values: f32, or bf16 pairs (the even depth in the low half of each `u32`, as
/// `vdpbf16ps` reads them).
#[derive(Clone)]
enum Panels {
    F32(Vec<f32>),
    Bf16(Vec<u32>),
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
    /// Pack `weight` of `shape`, read in `layout`, for `kernel`.
    ///
    /// # Panics
    /// Where the kernel does not run on this CPU.
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
        let steps: usize = (0..k)
            .step_by(depth)
            .map(|k0| kernel.steps(depth.min(k - k0)))
            .sum();
        let len = column_panels * nr * steps;
        let mut panels = match kernel.pairs() {
            1 => Panels::F32(vec![0.0; len]),
            _ => Panels::Bf16(vec![0; len]),
        };
        let mut scratch = Vec::new();
        for (block, k0) in (0..k).step_by(depth).enumerate() {
            let kc = depth.min(k - k0);
            for p in 0..column_panels {
                let start = panel_offset(kernel, block, p, kc, column_panels);
                let cols = nr.min(n - p * nr);
                match &mut panels {
                    Panels::F32(f) => fill(p * nr, cols, k0, kc, &mut f[start..][..kc * nr]),
                    Panels::Bf16(u) => {
                        // Filled in f32 (zero where `fill` writes nothing), then paired.
                        scratch.clear();
                        scratch.resize(kc * nr, 0.0);
                        fill(p * nr, cols, k0, kc, &mut scratch);
                        let steps = kernel.steps(kc);
                        bf16_pairs(&scratch, nr, &mut u[start..][..steps * nr]);
                    }
                }
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
        let rows = MC * kernel.steps(kernel.depth());
        match &self.panels {
            Panels::F32(panels) => ROWS_F32.with_borrow_mut(|a_pack| {
                a_pack.resize(rows, 0.0);
                let pack = |a: &[f32], mc, k0, kc, out: &mut [f32]| {
                    pack_rows(a, lda, mc, k0, kc, kernel.tile().0, out)
                };
                let run = |t: &Tile, kc, panel: &[f32], b: &[f32], c: &mut [f32]| {
                    t.run(kernel, kc, panel, b, c)
                };
                self.product(a, lda, m, c, bias, act, panels, a_pack, pack, run);
            }),
            Panels::Bf16(panels) => ROWS_BF16.with_borrow_mut(|(a_pack, scratch)| {
                a_pack.resize(rows, 0);
                scratch.resize(MC * kernel.depth(), 0.0);
                let mr = kernel.tile().0;
                // Rows packed in f32, then each row panel paired into bf16.
                let pack = |a: &[f32], mc: usize, k0, kc, out: &mut [u32]| {
                    pack_rows(a, lda, mc, k0, kc, mr, scratch);
                    let (f, u) = (kc * mr, kernel.steps(kc) * mr);
                    let panels = scratch.chunks(f).zip(out.chunks_mut(u));
                    for (src, dst) in panels.take(mc.div_ceil(mr)) {
                        bf16_pairs(src, mr, dst);
                    }
                };
                let run = |t: &Tile, steps, panel: &[u32], b: &[u32], c: &mut [f32]| {
                    t.run_bf16(steps, panel, b, c)
                };
                self.product(a, lda, m, c, bias, act, panels, a_pack, pack, run);
            }),
        }
    }

    /// The blocked product over packed `panels` of any element type: `pack(a, mc, k0, kc,
    /// out)` packs a block of rows into `a_pack`, `run(tile, steps, panel, b, c)` is the
    /// micro-kernel.
    #[allow(clippy::too_many_arguments)]
    fn product<E: Copy>(
        &self,
        a: &[f32],
        lda: usize,
        m: usize,
        c: &mut [f32],
        bias: Option<&[f32]>,
        act: Activation,
        panels: &[E],
        a_pack: &mut [E],
        mut pack: impl FnMut(&[f32], usize, usize, usize, &mut [E]),
        run: impl Fn(&Tile, usize, &[E], &[E], &mut [f32]),
    ) {
        let (n, k, kernel) = (self.n, self.k, self.kernel);
        let (mr, nr) = kernel.tile();
        let depth = kernel.depth();
        let column_panels = n.div_ceil(nr);
        for m0 in (0..m).step_by(MC) {
            let mc = MC.min(m - m0);
            for (block, k0) in (0..k).step_by(depth).enumerate() {
                let kc = depth.min(k - k0);
                let steps = kernel.steps(kc);
                pack(&a[m0 * lda..], mc, k0, kc, a_pack);
                for p in 0..column_panels {
                    let start = panel_offset(kernel, block, p, kc, column_panels);
                    let b = &panels[start..][..steps * nr];
                    let cols = nr.min(n - p * nr);
                    for (r, i0) in (0..mc).step_by(mr).enumerate() {
                        let tile = Tile {
                            rows: mr.min(mc - i0),
                            cols,
                            stride: n,
                            accumulate: block > 0,
                        };
                        let panel = &a_pack[r * mr * steps..][..steps * mr];
                        let c = &mut c[(m0 + i0) * n + p * nr..];
                        run(&tile, steps, panel, b, c);
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
    (block * kernel.steps(kernel.depth()) * column_panels + p * kernel.steps(kc)) * nr
}

/// `[kc][w]` f32 values as `[ceil(kc / 2)][w]` bf16 pairs: depth `2j` in the low half, `2j + 1`
/// in the high half (zero past `kc`).
fn bf16_pairs(src: &[f32], w: usize, out: &mut [u32]) {
    for (j, dst) in out.chunks_exact_mut(w).enumerate() {
        let even = &src[2 * j * w..][..w];
        match src.get((2 * j + 1) * w..(2 * j + 2) * w) {
            Some(odd) => {
                for ((d, &e), &o) in dst.iter_mut().zip(even).zip(odd) {
                    *d = bf16_bits(e) | bf16_bits(o) << 16;
                }
            }
            None => {
                for (d, &e) in dst.iter_mut().zip(even) {
                    *d = bf16_bits(e);
                }
            }
        }
    }
}

/// The bf16 nearest to `x` (ties to even), as its 16 bits; a NaN stays a (quiet) NaN. Branch
/// free, so the loops above vectorise.
#[inline(always)]
fn bf16_bits(x: f32) -> u32 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    let nan = (bits >> 16) | 0x40;
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        nan
    } else {
        rounded
    }
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
            Kernel::Avx512Bf16 => unreachable!("bf16 panels run in run_bf16"),
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (kc, panel, b, c);
            unreachable!("no packed kernel runs off x86-64 ({kernel:?})");
        }
    }

    /// `c (+)= panel · b` over `steps` bf16 pairs (the [`Kernel::Avx512Bf16`] kernel).
    fn run_bf16(&self, steps: usize, panel: &[u32], b: &[u32], c: &mut [f32]) {
        let (mr, nr) = Kernel::Avx512Bf16.tile();
        assert!(Kernel::Avx512Bf16.runs_here());
        assert!(panel.len() >= steps * mr && b.len() >= steps * nr);
        assert!(self.rows <= mr && self.cols <= nr && self.rows > 0);
        assert!(c.len() >= (self.rows - 1) * self.stride + self.cols);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX512-BF16 is present (asserted); the bounds the kernel relies on are
        // asserted above.
        unsafe {
            self.avx512_bf16(steps, panel, b, c)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (steps, panel, b, c);
            unreachable!("no packed kernel runs off x86-64");
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
        // SAFETY: AVX-512F is present; the bounds of `Tile::run` hold.
        unsafe { self.store_avx512(&acc, c) }
    }

    /// # Safety
    /// AVX-512F and AVX512-BF16 must be present; the bounds of [`Tile::run_bf16`] hold.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn avx512_bf16(&self, steps: usize, panel: &[u32], b: &[u32], c: &mut [f32]) {
        use std::arch::x86_64::*;
        const MR: usize = 12;
        const NR: usize = 32;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (mut ap, mut bp) = (panel.as_ptr(), b.as_ptr());
        for _ in 0..steps {
            // SAFETY: `steps` steps of MR (resp. NR) pairs stay within `panel` (resp. `b`);
            // a vector of 16 u32 is a vector of 32 bf16, the layout `vdpbf16ps` reads.
            unsafe {
                let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.cast()));
                let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(16).cast()));
                for (i, row) in acc.iter_mut().enumerate() {
                    let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(i) as i32));
                    row[0] = _mm512_dpbf16_ps(row[0], a, b0);
                    row[1] = _mm512_dpbf16_ps(row[1], a, b1);
                }
                ap = ap.add(MR);
                bp = bp.add(NR);
            }
        }
        // SAFETY: AVX-512F is present; the bounds of `Tile::run_bf16` hold.
        unsafe { self.store_avx512(&acc, c) }
    }

    /// Store (or add) a 12×32 tile of accumulators: full tiles straight from the registers.
    ///
    /// # Safety
    /// AVX-512F must be present; `c` holds the tile's rows at `stride`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_avx512(&self, acc: &[[std::arch::x86_64::__m512; 2]; 12], c: &mut [f32]) {
        use std::arch::x86_64::*;
        const MR: usize = 12;
        const NR: usize = 32;
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
        let kernels: Vec<Kernel> = [Kernel::Avx2, Kernel::Avx512, Kernel::Avx512Bf16]
            .into_iter()
            .filter(|k| k.runs_here())
            .collect();
        if kernels.is_empty() {
            eprintln!("skipped: no packed kernel runs on this CPU");
            return;
        }
        // Rows past a block and a tile, columns past a panel, depth past a block (odd too, for
        // the bf16 pairs); and tiny.
        for (m, n, k) in [
            (301, 37, 600),
            (13, 64, 256),
            (1, 1, 1),
            (150, 33, 129),
            (40, 70, 515),
            (17, 45, 1101),
        ] {
            let a = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            for &kernel in &kernels {
                // The bf16 kernel multiplies the inputs rounded to bf16 (by the `half` crate
                // here) exactly and sums in f32: against f64 over the rounded inputs, it is
                // as close as the f32 kernels are to f64 over theirs.
                let rounded = |x: &[f32]| -> Vec<f32> {
                    x.iter()
                        .map(|&v| half::bf16::from_f32(v).to_f32())
                        .collect()
                };
                let expected = match kernel {
                    Kernel::Avx512Bf16 => reference(&rounded(&a), &rounded(&w), &bias, m, n, k),
                    Kernel::Avx2 | Kernel::Avx512 => reference(&a, &w, &bias, m, n, k),
                };
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
    fn bf16_rounding_is_the_half_crates() {
        let mut special = vec![
            0.0f32,
            -0.0,
            1.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40, // subnormal
            // Ties: halfway between two bf16 values, to even either way.
            f32::from_bits(0x3f80_8000),
            f32::from_bits(0x3f81_8000),
            f32::from_bits(0x7f7f_8000), // rounds up to infinity
        ];
        special.extend(values(10_000, 5).iter().map(|v| v * 1e3));
        for x in special {
            let want = half::bf16::from_f32(x).to_bits() as u32;
            assert_eq!(bf16_bits(x), want, "{x:e} ({:#010x})", x.to_bits());
        }
        for nan in [
            f32::NAN,
            f32::from_bits(0x7f80_0001),
            f32::from_bits(0xffc0_1234),
        ] {
            assert!(
                half::bf16::from_bits(bf16_bits(nan) as u16).is_nan(),
                "{nan:?}"
            );
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
