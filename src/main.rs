//! `deepscreen` binary: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use clap::Parser;

// Batches allocate tens of MiB per layer; glibc returns such blocks to the OS on free, so every
// batch paid page faults again (measured: music CNN max-pool 31.6 → 13.7 ms, 3×3 conv
// 75 → 55 ms per batch of 32). mimalloc keeps them for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
