//! Writes a demo catalog and two UNTRAINED demo models (the speech and music reference
//! architectures with random weights) so the screening pipeline can be tried end to end before
//! trained models exist:
//!
//!     cargo run --release --example demo -- demo
//!     cargo run --release -- screen demo/catalog --model demo/untrained-speech.safetensors
//!
//! The scores it produces are meaningless; the point is the rows, errors and summary.

use std::path::PathBuf;

use deepscreen::model::{file, presets};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "demo".into()));
    let catalog = out.join("catalog");
    std::fs::create_dir_all(catalog.join("bad"))?;

    let mut model_path = PathBuf::new();
    for (kind, mut config) in [
        (
            "music",
            presets::music_cnn("demo-music-untrained-random-weights"),
        ),
        (
            "speech",
            presets::speech_lcnn("demo-speech-untrained-random-weights"),
        ),
    ] {
        config.description =
            "UNTRAINED: random weights, scores mean nothing. For trying the pipeline.".into();
        model_path = out.join(format!("untrained-{kind}.safetensors"));
        std::fs::write(&model_path, file::random_model_bytes(&config, 7)?)?;
        println!("model:   {}", model_path.display());
    }

    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&fixtures)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e != "sh") {
            std::fs::copy(&path, catalog.join(path.file_name().unwrap()))?;
        }
    }
    let mp3 = std::fs::read(fixtures.join("tone.mp3"))?;
    std::fs::write(catalog.join("bad/truncated.mp3"), &mp3[..mp3.len() / 3])?;
    std::fs::write(catalog.join("bad/empty.flac"), b"")?;
    std::fs::write(
        catalog.join("bad/notes.wav"),
        b"this is a text file, not audio\n",
    )?;
    std::fs::write(
        catalog.join("bad/noise.ogg"),
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )?;

    println!("catalog: {}", catalog.display());
    println!(
        "try:     cargo run --release -- screen {} --model {}",
        catalog.display(),
        model_path.display()
    );
    Ok(())
}
