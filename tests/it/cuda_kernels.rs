//! CUDA kernels: NVRTC compiles every kernel in `kernels/` for sm_80 (A100) and sm_90
//! (H100/H200), to PTX and to machine code (CUBIN, what the backend loads), without an error
//! or a warning. NVRTC needs no GPU, so CI runs this with `DEEPSCREEN_REQUIRE_NVRTC=1` (it
//! fails instead of skipping when NVRTC is missing), once with NVRTC 13 and once with NVRTC 12
//! (`DEEPSCREEN_EXPECT_NVRTC_MAJOR` makes sure the intended library was the one loaded).
//! The kernels' numerics run in the shared parity suite (`tests/backend_ops.rs`, `cuda::`)
//! wherever a GPU is present (`DEEPSCREEN_REQUIRE_CUDA=1` makes a missing GPU a failure).

use crate::common::cuda_emulator::{library_path, nvrtc_here};
use deepscreen::backend::cuda::{KERNELS, Output, compile_kernels, nvrtc_version};

#[test]
fn the_intended_nvrtc_is_loaded() {
    if !nvrtc_here() {
        return;
    }
    let (major, minor) = nvrtc_version().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("NVRTC {major}.{minor}");
    assert!(
        major >= 12,
        "NVRTC {major}.{minor}: CUDA 12 or newer is required"
    );
    if let Ok(want) = std::env::var("DEEPSCREEN_EXPECT_NVRTC_MAJOR") {
        assert_eq!(major.to_string(), want, "loaded NVRTC {major}.{minor}");
    }
}

#[test]
fn every_kernel_compiles_cleanly_to_ptx() {
    if !nvrtc_here() {
        return;
    }
    for arch in ["sm_75", "sm_80", "sm_90"] {
        let compiled = compile_kernels(arch, Output::Ptx).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.len(), KERNELS.len());
        for ((file, _, entries), (_, ptx)) in KERNELS.iter().zip(&compiled) {
            let text = String::from_utf8_lossy(ptx);
            assert!(
                text.contains(&format!(".target {arch}")),
                "{file}: PTX not for {arch}"
            );
            for entry in *entries {
                assert!(
                    text.contains(&format!(".entry {entry}(")),
                    "{file}: no kernel {entry} in the PTX for {arch}"
                );
            }
        }
    }
}

#[test]
fn every_kernel_compiles_to_machine_code() {
    if !nvrtc_here() {
        return;
    }
    for arch in ["sm_75", "sm_80", "sm_90"] {
        let compiled = compile_kernels(arch, Output::Cubin).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.len(), KERNELS.len());
        for ((file, _, entries), (_, bytes)) in KERNELS.iter().zip(&compiled) {
            assert_eq!(
                &bytes[..4],
                b"\x7fELF",
                "{file}: CUBIN for {arch} is not an ELF"
            );
            // Kernel names are in the ELF's string table.
            for entry in *entries {
                assert!(
                    bytes
                        .windows(entry.len() + 1)
                        .any(|w| { w[..entry.len()] == *entry.as_bytes() && w[entry.len()] == 0 }),
                    "{file}: no kernel {entry} in the CUBIN for {arch}"
                );
            }
        }
    }
}

/// Stand-in for NVIDIA's `libcuda`: exports the driver entry points the backend needs (all,
/// or all but `cuMemAllocAsync` with `-DOLD`), reports CUDA version `VERSION`, and has no
/// device (`cuInit` returns CUDA_ERROR_NO_DEVICE), so the probe's checks run without a GPU.
const STUB_DRIVER: &str = r#"
int cuDriverGetVersion(int *v) { *v = VERSION; return 0; }
int cuInit(unsigned flags) { (void)flags; return 100; }
int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_NO_DEVICE"; return 0; }
int cuGetErrorString(int e, const char **s) { (void)e; *s = "no CUDA-capable device is detected"; return 0; }
#define STUB(name) int name(void) { return 999; }
STUB(cuDeviceGet) STUB(cuDeviceGetName) STUB(cuDeviceGetAttribute) STUB(cuDevicePrimaryCtxRetain)
STUB(cuDevicePrimaryCtxRelease_v2) STUB(cuCtxSetCurrent) STUB(cuCtxGetCurrent) STUB(cuCtxSynchronize)
STUB(cuModuleLoadData) STUB(cuModuleGetFunction) STUB(cuModuleUnload) STUB(cuLaunchKernel) STUB(cuStreamCreate)
STUB(cuStreamDestroy_v2) STUB(cuStreamSynchronize) STUB(cuStreamWaitEvent) STUB(cuEventCreate)
STUB(cuEventRecord) STUB(cuEventSynchronize) STUB(cuEventDestroy_v2) STUB(cuMemFreeAsync)
STUB(cuMemAlloc_v2) STUB(cuMemFree_v2) STUB(cuMemHostAlloc) STUB(cuMemFreeHost)
STUB(cuMemcpyHtoDAsync_v2) STUB(cuMemcpyDtoHAsync_v2) STUB(cuMemsetD8Async)
STUB(cuDeviceGetDefaultMemPool) STUB(cuMemPoolSetAttribute)
#ifndef OLD
STUB(cuMemAllocAsync)
#endif
"#;

/// `deepscreen devices --json`'s CUDA entry with the stub driver built from `defines` first on
/// the library path; None when no C compiler is here.
fn cuda_status_with_stub_driver(defines: &[&str]) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("stub.c");
    std::fs::write(&source, STUB_DRIVER).unwrap();
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.path().join("libcuda.so"))
        .arg(&source)
        .args(defines)
        .status();
    match built {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipping: cannot build the stub driver with cc ({other:?})");
            return None;
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deepscreen"))
        .args(["devices", "--json"])
        .env("LD_LIBRARY_PATH", library_path(dir.path()))
        .output()
        .unwrap();
    assert!(out.status.success(), "devices failed: {out:?}");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cuda = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["backend"] == "cuda")
        .expect("a cuda entry");
    Some((
        cuda["available"].as_bool().unwrap(),
        cuda["detail"].as_str().unwrap().to_string(),
    ))
}

#[test]
fn the_driver_probe_explains_each_failure_without_panicking() {
    if !nvrtc_here() {
        return;
    }
    let (nvrtc_major, _) = nvrtc_version().unwrap();
    // A driver lacking an entry point the backend calls.
    let old = format!("-DVERSION={}", nvrtc_major * 1000);
    let Some((available, why)) = cuda_status_with_stub_driver(&[&old, "-DOLD"]) else {
        return;
    };
    assert!(!available);
    assert!(
        why.contains("driver is too old") && why.contains("cuMemAllocAsync"),
        "{why}"
    );
    // A driver one major version behind NVRTC: its kernels could not load.
    let behind = format!("-DVERSION={}", (nvrtc_major - 1) * 1000 + 20);
    let (available, why) = cuda_status_with_stub_driver(&[&behind]).unwrap();
    assert!(!available);
    assert!(
        why.contains(&format!(
            "newer than the driver (CUDA {}.2)",
            nvrtc_major - 1
        )) && why.contains(&format!("nvidia-cuda-nvrtc-cu{}", nvrtc_major - 1)),
        "{why}"
    );
    // A matching driver with no device: the driver's own error, reported.
    let (available, why) = cuda_status_with_stub_driver(&[&old]).unwrap();
    assert!(!available);
    assert!(
        why.contains("no usable CUDA device") && why.contains("CUDA_ERROR_NO_DEVICE"),
        "{why}"
    );
}
