//! The integration tests, one binary: the crate (with wgpu and cudarc) is linked once, and the
//! helpers in `common` are shared. Run a part of it by module, e.g.
//! `cargo test --release --test it -- golden::` or `-- backend_ops::cuda::`. It needs both GPU
//! backends compiled in (the default cargo features `wgpu` and `cuda`).

mod common;

mod audio;
mod backend_ops;
mod catalog;
mod cli;
mod cuda_kernels;
mod eval;
mod golden;
mod model;
mod report;
mod review;
mod slurm;
mod vocals;
