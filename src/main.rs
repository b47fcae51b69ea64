//! `deepscreen` binary: parse arguments, run the command, map the outcome to an exit code.

mod cli;

use clap::Parser;

// Batches allocate tens of MiB per layer; glibc returns such blocks to the OS on free, so every
// batch paid page faults again (measured: music CNN max-pool 31.6 → 13.7 ms, 3×3 conv
// 75 → 55 ms per batch of 32). mimalloc keeps them for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_t` (mimalloc.h, v3, which
/// libmimalloc-sys builds by default; the crate names no constant for it). A test checks it
/// still reads that option's default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    quiet_wayland_probe();
    cli::run(cli::Cli::parse())
}

/// mimalloc hands freed memory back to the kernel (it "purges" it), so the next batch's tensors
/// of the same sizes fault their pages in again and the kernel zeroes them: 9 % of a `music`
/// screen's time in `clear_page_erms` (a purge delay of 1 s instead of -1 did not help). Never
/// purging keeps them: `speech` 1.10×, `music` 1.07× on the CPU for 30–130 MiB more peak memory
/// (BENCHMARKS.md). `MIMALLOC_PURGE_DELAY`, if set, wins.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain option store, before any thread exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
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

#[cfg(test)]
mod tests {
    /// The option number still names `purge_delay` in the linked mimalloc: it reads its
    /// default (1000 ms in v3's options.c), and the options after it theirs.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads of mimalloc's option table.
        let read = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(read(super::MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(read(libmimalloc_sys::mi_option_os_tag), 100);
        assert_eq!(read(libmimalloc_sys::mi_option_max_errors), 32);
    }
}
