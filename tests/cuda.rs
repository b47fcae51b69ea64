//! CUDA kernels: NVRTC compiles every kernel in `kernels/` for sm_80 (A100) and sm_90
//! (H100/H200) without an error or a warning. NVRTC needs no GPU, so CI runs this with
//! `DEEPSCREEN_REQUIRE_NVRTC=1` (it fails instead of skipping when NVRTC is missing).
//! The kernels' numerics run in the shared parity suite (`tests/backend_ops.rs`, `cuda::`)
//! wherever a GPU is present (`DEEPSCREEN_REQUIRE_CUDA=1` makes a missing GPU a failure).

use deepscreen::backend::cuda::{KERNELS, compile_kernels, nvrtc_missing};

#[test]
fn every_kernel_compiles_cleanly_with_nvrtc() {
    if let Some(why) = nvrtc_missing() {
        assert!(
            !std::env::var("DEEPSCREEN_REQUIRE_NVRTC").is_ok_and(|v| v == "1"),
            "DEEPSCREEN_REQUIRE_NVRTC=1 but {why}"
        );
        eprintln!("skipping: {why}");
        return;
    }
    for arch in ["sm_80", "sm_90"] {
        let compiled = compile_kernels(arch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.len(), KERNELS.len());
        for ((file, _, entries), (_, ptx)) in KERNELS.iter().zip(&compiled) {
            let text = ptx.to_src();
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
