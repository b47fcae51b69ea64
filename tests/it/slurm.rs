//! The README's fan-out recipes, for real: the Slurm job array on a one-node Slurm cluster
//! (`scripts/slurm-e2e.sh`; needs root and Debian's slurm-wlm + munge, which it installs, so it
//! is ignored by default and `.ci/run` runs it with DEEPSCREEN_SLURM=1), the Kubernetes
//! Indexed Job through a schema validation, and the README's copies of both kept identical to
//! the files the checks use.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The body of the README's fenced block that starts with ```` ```LANG ```` and whose text
/// contains `marker`.
fn readme_block(lang: &str, marker: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let fence = format!("```{lang}\n");
    readme
        .split(fence.as_str())
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .find(|block| block.contains(marker))
        .unwrap_or_else(|| panic!("no ```{lang} block with {marker:?} in README.md"))
}

#[test]
fn readme_shows_the_scripts_that_are_checked() {
    let array = std::fs::read_to_string(repo().join("scripts/slurm-array.sh")).unwrap();
    assert_eq!(readme_block("bash", "#SBATCH --array"), array);
    let job = std::fs::read_to_string(repo().join("scripts/k8s-indexed-job.yaml")).unwrap();
    assert_eq!(readme_block("yaml", "kind: Job"), job);
}

/// `kubernetes-validate` (PyPI; offline, bundled OpenAPI schemas), strict: unknown fields fail.
#[test]
fn kubernetes_indexed_job_passes_schema_validation() {
    let required = std::env::var("DEEPSCREEN_REQUIRE_KUBERNETES_VALIDATE").is_ok_and(|v| v == "1");
    let manifest = repo().join("scripts/k8s-indexed-job.yaml");
    let validate = || {
        let mut c = Command::new("python3");
        c.args(["-m", "kubernetes_validate", "--strict", "-k", "1.33.0"]);
        c
    };
    let out = match validate().arg(&manifest).output() {
        Ok(out) if !String::from_utf8_lossy(&out.stderr).contains("No module named") => out,
        Ok(_) | Err(_) => {
            assert!(
                !required,
                "kubernetes-validate cannot run (pip install kubernetes-validate)"
            );
            eprintln!("skipped: no kubernetes-validate here (pip install kubernetes-validate)");
            return;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success() && text.contains("passed"), "{text}");
    // And it does fail a broken manifest (so the pass above means something).
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &broken,
        text.replace("completionMode: Indexed", "completionMod: Indexed"),
    )
    .unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.33.0"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt field passed validation");
}

#[test]
#[ignore = "starts a one-node Slurm cluster as root (installs slurm-wlm, munge): run with --ignored, as .ci/run does"]
fn readme_slurm_array_runs_on_a_real_slurm() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_deepscreen"))
        .parent()
        .unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/slurm-e2e.sh"))
        .env("DEEPSCREEN_BIN_DIR", bin_dir)
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/slurm-e2e.sh failed");
    assert_eq!(
        stdout
            .matches("merged report = single-process report")
            .count(),
        2
    );
    assert!(stdout.contains("stopped at") && stdout.contains("timings:"));
}
