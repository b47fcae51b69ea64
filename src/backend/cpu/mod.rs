//! CPU backend: realfft for the STFT; linear layers, convolutions (im2col) and attention on
//! packed panels for an AVX-512 or AVX2+FMA kernel (`packed`; matrixmultiply's SGEMM on CPUs
//! with neither), or opt-in for bf16 weights and activations ([`Math`]); large output buffers
//! recycled between ops (`pool`); rayon across the batch (and across frames for the STFT).

mod classifier;
mod device;
mod encoder;
mod frontend;
mod packed;
mod pool;
mod separator;
mod simd;

pub use device::{CpuBackend, CpuTensor, Math};

use super::shapes::Shapes;

/// Shape rules, with "cpu" in their error messages.
const CHECK: Shapes = Shapes("cpu");

/// `c[m×n] = a[m×k] · b[k×n]` with arbitrary strides on `a` and `b` (row-major `c`).
/// Callers have already checked shapes; the bounds are asserted again before the unsafe call.
#[allow(clippy::too_many_arguments)]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0.0);
        return;
    }
    assert!(
        (m - 1) * rsa + (k - 1) * csa < a.len(),
        "sgemm: a out of bounds"
    );
    assert!(
        (k - 1) * rsb + (n - 1) * csb < b.len(),
        "sgemm: b out of bounds"
    );
    assert!(m * n <= c.len(), "sgemm: c out of bounds");
    // SAFETY: every index the kernel touches is within the slices (asserted above), and `c`
    // does not alias `a` or `b` (it is a distinct &mut).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}
