//! `deepscreen` binary: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use clap::Parser;

// Batches allocate tens of MiB per layer; glibc returns such blocks to the OS on free, so every
// batch paid page faults again (measured: music CNN max-pool 31.6 → 13.7 ms, 3×3 conv
// 75 → 55 ms per batch of 32). mimalloc keeps them for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    quiet_wayland_probe();
    cli::run(cli::Cli::parse())
}

/// While wgpu looks for a GPU, Mesa's Vulkan driver asks libwayland for a display, and
/// libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set in the environment." (twice)
/// when the variable is unset — on every headless server, batch job and container, where it
/// looks like a failure of deepscreen. Pointing it at /dev/null (not a directory: no display
/// can be found there, quietly) keeps stderr for deepscreen's own messages. A variable that is
/// set is left alone.
fn quiet_wayland_probe() {
    if cfg!(target_os = "linux") && std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: first statement of main, before any thread exists, so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", "/dev/null") };
    }
}
