//! Builds `tests/cuda_emulator/` into a stand-in `libcuda.so` that runs the real kernels of
//! `kernels/*.cu` on the CPU, and re-runs a test binary's CUDA tests against it: the CUDA
//! backend's host code (cudarc, streams, staging, readbacks, launch configurations) and its
//! kernels' numerics get tested where no GPU is. NVRTC still compiles every kernel (its CUBIN
//! is what the emulator's `cuModuleLoadData` receives and checks).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child process, which runs the CUDA tests on the emulator.
pub const CHILD: &str = "DEEPSCREEN_IN_CUDA_EMULATOR";

/// The kernel source as C++ for `emulator.h`: dynamic shared memory rewritten to the
/// emulator's buffer, and every entry point registered with whether it uses barriers.
fn translate(source: &str, entries: &[&str]) -> String {
    let mut out = String::from("#include \"emulator.h\"\n");
    for line in source.lines() {
        let trimmed = line.trim();
        match trimmed
            .strip_prefix("extern __shared__ ")
            .and_then(|rest| rest.strip_suffix("[];"))
        {
            Some(decl) => {
                let (ty, name) = decl
                    .rsplit_once(' ')
                    .expect("`extern __shared__ T name[];`");
                out.push_str(&format!("    {ty}* {name} = ({ty}*)emu_dynamic_shared;\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for entry in entries {
        let start = source
            .find(&format!(" {entry}("))
            .unwrap_or_else(|| panic!("kernel {entry} not in its source"));
        let end = source[start..]
            .find("extern \"C\"")
            .map_or(source.len(), |i| start + i);
        // Warp collectives (tensor-core fragments, shuffles) are barriers in the emulator too.
        let barriers = ["__syncthreads", "tc_gemm_tile", "mma_tf32", "quad_"]
            .iter()
            .any(|b| source[start..end].contains(b));
        out.push_str(&format!("EMU_REGISTER({entry}, {barriers})\n"));
    }
    out
}

/// Whether NVRTC is here (the CUDA backend compiles its kernels with it, emulated or not);
/// if not, the caller skips (reason printed), unless `DEEPSCREEN_REQUIRE_NVRTC=1` makes that
/// a failure.
pub fn nvrtc_here() -> bool {
    match deepscreen::backend::cuda::nvrtc_missing() {
        None => true,
        Some(why) => {
            assert!(!super::required("nvrtc"), "NVRTC is required but {why}");
            eprintln!("skipping: {why}");
            false
        }
    }
}

/// Build the emulator into a fresh directory holding `libcuda.so`; None (and why printed)
/// when NVRTC or a C++ compiler is missing.
pub fn build() -> Option<tempfile::TempDir> {
    if !nvrtc_here() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cuda_emulator");
    let mut sources: Vec<PathBuf> = vec![here.join("driver.cpp")];
    for (file, source, entries) in deepscreen::backend::cuda::KERNELS {
        let path = dir.path().join(format!("{file}.cpp"));
        std::fs::write(&path, translate(source, entries)).unwrap();
        sources.push(path);
    }
    let status = Command::new(std::env::var("CXX").unwrap_or_else(|_| "c++".into()))
        .args(["-std=c++17", "-O2", "-shared", "-fPIC", "-U_FORTIFY_SOURCE"])
        .args([
            "-Wall",
            "-Wno-unknown-pragmas",
            "-Wno-sign-compare",
            "-Werror",
        ])
        // The fibers switch stacks with _longjmp, which a hardware shadow stack would refuse.
        .args(cfg!(target_arch = "x86_64").then_some("-fcf-protection=none"))
        .arg("-I")
        .arg(&here)
        .arg("-o")
        .arg(dir.path().join("libcuda.so"))
        .args(&sources)
        .status();
    match status {
        Ok(s) if s.success() => Some(dir),
        Ok(s) => panic!("the CUDA emulator does not compile ({s})"),
        Err(e) => {
            eprintln!("skipping: no C++ compiler to build the CUDA emulator ({e})");
            None
        }
    }
}

/// `LD_LIBRARY_PATH` with `dir` first, so a `libcuda.so` there is the one loaded.
pub fn library_path(dir: &Path) -> std::ffi::OsString {
    let mut path = dir.as_os_str().to_owned();
    if let Some(rest) = std::env::var_os("LD_LIBRARY_PATH") {
        path.push(":");
        path.push(rest);
    }
    path
}

/// Run this test binary's tests in `module` (e.g. "golden::") whose names contain `part`, with
/// the emulator as the CUDA driver and the CUDA backend required; returns how many passed
/// (panics with the output on failure).
pub fn run_tests(module: &str, part: &str) -> Option<usize> {
    let dir = build()?;
    let exe = std::env::current_exe().unwrap();
    let listed = Command::new(&exe)
        .args(["--list", "--format", "terse"])
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|n| n.starts_with(module) && n[module.len()..].contains(part))
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "no test {module}*{part}*");
    let out = Command::new(&exe)
        .args(&names)
        .args(["--exact", "--test-threads", "1", "--nocapture"])
        .env("LD_LIBRARY_PATH", library_path(dir.path()))
        .env("DEEPSCREEN_REQUIRE_CUDA", "1")
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "CUDA tests on the emulator failed:\n{text}"
    );
    let passed = text
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no test result in:\n{text}"));
    eprintln!("{text}");
    Some(passed)
}
