//! Audio in: every container decodes with the right stream facts, resampling keeps a known
//! sine's frequency and level, and windowing follows the documented rules in any chunking.

use std::path::{Path, PathBuf};

use deepscreen::audio::decode::decode_mono;
use deepscreen::audio::resample::MonoResampler;
use deepscreen::audio::{Window, Windower};
use deepscreen::model::config::PadMode;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn decode_all(path: &Path) -> (deepscreen::audio::StreamInfo, Vec<f32>) {
    let mut samples = Vec::new();
    let (info, _) = decode_mono(path, |_, chunk| {
        samples.extend_from_slice(chunk);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (info, samples)
}

/// Amplitude of the DFT of `x` at `freq` Hz, normalised so a unit sine gives 0.5.
fn tone_level(x: &[f32], rate: f64, freq: f64) -> f64 {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (n, &v) in x.iter().enumerate() {
        let ang = 2.0 * std::f64::consts::PI * freq * n as f64 / rate;
        re += v as f64 * ang.cos();
        im += v as f64 * ang.sin();
    }
    (re * re + im * im).sqrt() / x.len() as f64
}

#[test]
fn every_container_decodes_with_its_stream_facts() {
    // (file, codec, container, rate, channels)
    let cases = [
        ("tone.wav", "pcm_s16le", "wave", 16000, 1),
        ("tone.flac", "flac", "flac", 44100, 2),
        ("tone.mp3", "mp3", "mp3", 44100, 2),
        ("tone.ogg", "vorbis", "ogg", 22050, 2),
        ("tone_aac.m4a", "aac", "isomp4", 48000, 2),
        ("tone_alac.m4a", "alac", "isomp4", 32000, 1),
        ("tone_opus.opus", "opus", "ogg", 48000, 2),
        ("tone_opus.webm", "opus", "matroska", 48000, 2),
        ("tone_opus51.opus", "opus", "ogg", 48000, 6),
    ];
    for (name, codec, container, rate, channels) in cases {
        let (info, samples) = decode_all(&fixture(name));
        assert_eq!(
            (info.codec.as_str(), info.container.as_str()),
            (codec, container),
            "{name}"
        );
        assert_eq!(
            (info.sample_rate, info.channels),
            (rate, channels),
            "{name}"
        );
        let seconds = samples.len() as f64 / rate as f64;
        assert!((seconds - 1.5).abs() < 0.1, "{name}: {seconds} s");
        // The fixtures mix a 440 Hz and a 3 kHz tone (see tests/fixtures/make.sh); measure in
        // the middle half to skip codec start-up.
        let mid = &samples[samples.len() / 4..3 * samples.len() / 4];
        let (a, b, off) = (
            tone_level(mid, rate as f64, 440.0),
            tone_level(mid, rate as f64, 3000.0),
            tone_level(mid, rate as f64, 1700.0),
        );
        // ffmpeg's sine source has amplitude 1/8: 0.0625 per tone, 0.031 after a mono mix-down.
        // In the 5.1 file the 3 kHz tone is in three channels, one of them the LFE, which the
        // encoder low-passes: two thirds of it remain.
        let least_b = if channels == 6 { 0.018 } else { 0.025 };
        assert!(
            a > 0.025 && b > least_b && off < 0.002,
            "{name}: 440 Hz {a}, 3 kHz {b}, 1.7 kHz {off}"
        );
    }
}

/// Opus is decoded by a Rust port of libopus (`ropus`, fixed point); libopus (through ffmpeg,
/// tests/fixtures/make.sh) decoded the same files into the references. The two agree to the
/// sample: same length, same alignment (pre-skip dropped), within two 16-bit steps: 72.8 dB
/// SNR on a two-tone signal at 48 kbps, 75.1 dB for 5.1 (the `opus-decoder` crate before it:
/// 50 and 64 dB).
#[test]
fn opus_decodes_as_libopus_does() {
    // (file, libopus reference, least SNR in dB)
    let cases = [
        ("tone_opus.opus", "tone_opus.libopus.flac", 68.0),
        ("tone_opus.webm", "tone_opus.libopus.flac", 68.0),
        ("tone_opus51.opus", "tone_opus51.libopus.flac", 70.0),
    ];
    for (name, reference, least_snr) in cases {
        let (info, ours) = decode_all(&fixture(name));
        let (_, libopus) = decode_all(&fixture(reference));
        assert_eq!(info.sample_rate, 48000, "{name}");
        // Matroska keeps the last packet's padding (symphonia's reader does not pass on its
        // DiscardPadding): at most one 20 ms packet more than libopus.
        let extra = ours.len() as i64 - libopus.len() as i64;
        if name.ends_with(".webm") {
            assert!((0..=960).contains(&extra), "{name}: {extra} samples more");
        } else {
            assert_eq!(extra, 0, "{name}: {} vs {}", ours.len(), libopus.len());
        }
        let (mut error, mut power, mut worst) = (0.0f64, 0.0f64, 0.0f64);
        for (a, b) in ours.iter().zip(&libopus) {
            let d = f64::from(a - b);
            error += d * d;
            power += f64::from(*b) * f64::from(*b);
            worst = worst.max(d.abs());
        }
        let snr = 10.0 * (power / error).log10();
        assert!(
            snr >= least_snr && worst < 2e-4,
            "{name}: {snr:.1} dB SNR, worst sample {worst:.2e} off libopus"
        );
    }
}

/// `bytes` with `len` bytes from the middle on inverted: damage mid-file.
fn damaged(name: &str, len: usize, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(fixture(name)).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + len] {
        *b ^= 0xff;
    }
    let path = dir.join(format!("damaged-{len}-{name}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Damage mid-file is counted in seconds lost, apart from a cut-off end; beyond 10 % lost the
/// file is refused. The FLAC reader skips a damaged frame silently: the gap shows in the
/// timestamps.
#[test]
fn decode_damage_is_counted_apart_from_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let stats = |path: &Path| decode_mono(path, |_, _| Ok(()));
    // 64 bytes inverted: one FLAC frame (4608 samples at 44.1 kHz here) lost, counted to the
    // sample, and not called truncation.
    let (info, s) = stats(&damaged("tone.flac", 64, dir.path())).unwrap();
    assert_eq!(info.sample_rate, 44100);
    assert!(s.truncated.is_none(), "{:?}", s.truncated);
    let expected = 66150 - s.frames;
    assert!(expected > 0 && expected <= 2 * 4608, "{} frames", s.frames);
    assert!(
        (s.lost_s * 44100.0 - expected as f64).abs() < 1.0,
        "{} s lost, {expected} frames missing",
        s.lost_s
    );
    // 4 KB inverted: more than 10 % of the 1.5 s lost, refused with the figures.
    let err = stats(&damaged("tone.flac", 4096, dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("damaged:") && err.contains("of 1.5 s could not be decoded"),
        "{err}"
    );
    // Cut in half: truncation, nothing lost mid-file.
    let bytes = std::fs::read(fixture("tone.flac")).unwrap();
    let cut = dir.path().join("cut.flac");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (_, s) = stats(&cut).unwrap();
    assert_eq!(s.lost_s, 0.0);
    assert!(
        s.truncated.as_deref().unwrap_or("").contains("truncated?"),
        "{:?}",
        s.truncated
    );
    // An Ogg stream whose last page is missing (cut at a page boundary, or never written by its
    // encoder: real packages hold such files) decodes to its last page and says which it is.
    let bytes = std::fs::read(fixture("tone.ogg")).unwrap();
    let last_page = bytes.windows(4).rposition(|w| w == b"OggS").unwrap();
    let unclosed = dir.path().join("unclosed.ogg");
    std::fs::write(&unclosed, &bytes[..last_page]).unwrap();
    let (_, s) = stats(&unclosed).unwrap();
    assert_eq!(s.lost_s, 0.0);
    assert!(
        s.truncated
            .as_deref()
            .unwrap_or("")
            .contains("without its end-of-stream mark"),
        "{:?}",
        s.truncated
    );
    // Undamaged files lose nothing, whatever the container's delay and padding bookkeeping.
    for name in [
        "tone.flac",
        "tone.mp3",
        "tone.ogg",
        "tone.opus",
        "tone_opus.webm",
    ] {
        let (_, s) = stats(&fixture(name)).unwrap();
        assert_eq!(
            (s.lost_s, s.truncated, s.skipped_packets),
            (0.0, None, 0),
            "{name}"
        );
    }
}

#[test]
fn a_chained_ogg_decodes_link_after_link() {
    // Two Vorbis streams end to end, mono 440 Hz then stereo 3 kHz (real packages hold such
    // files: klettres-data's Czech syllables). Both decode, in order, as one mono stream named
    // by the first link's facts.
    let (info, x) = decode_all(&fixture("tone_chained.ogg"));
    assert_eq!(
        (info.sample_rate, info.channels, info.codec.as_str()),
        (22050, 1, "vorbis")
    );
    let seconds = x.len() as f64 / 22050.0;
    assert!((seconds - 1.5).abs() < 0.01, "{seconds} s decoded");
    let (a, b) = x.split_at(x.len() / 2);
    let (a, b) = (&a[2205..a.len() - 2205], &b[2205..b.len() - 2205]);
    let level = |x: &[f32], f: f64| tone_level(x, 22050.0, f);
    // ffmpeg's sine is at 1/8 of full scale (0.0625 in tone_level's units); its mono → stereo
    // upmix put it at −3 dB in each channel of the second link (0.0442).
    assert!(
        level(a, 440.0) > 0.05 && level(a, 3000.0) < 0.005,
        "first link"
    );
    assert!(
        level(b, 3000.0) > 0.035 && level(b, 440.0) < 0.005,
        "second link"
    );
}

#[test]
fn a_chain_that_changes_its_rate_is_a_clear_error() {
    // Vorbis at 22.05 kHz, then Opus at 48 kHz, in one Ogg file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.ogg");
    let mut bytes = std::fs::read(fixture("tone.ogg")).unwrap();
    bytes.extend(std::fs::read(fixture("tone_opus.opus")).unwrap());
    std::fs::write(&path, bytes).unwrap();
    let err = decode_mono(&path, |_, _| Ok(())).unwrap_err().to_string();
    assert!(
        err.contains("chained stream changes from 22050 Hz to 48000 Hz"),
        "{err}"
    );
}

fn resample_all(x: &[f32], from: u32, to: u32, chunk: usize) -> Vec<f32> {
    let mut r = MonoResampler::new(from, to).unwrap();
    let mut out = Vec::new();
    for c in x.chunks(chunk) {
        r.push(c, &mut |y| {
            out.extend_from_slice(y);
            Ok(())
        })
        .unwrap();
    }
    r.finish(&mut |y| {
        out.extend_from_slice(y);
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn resampling_keeps_a_sine_frequency_level_and_length() {
    for (from, to, freq) in [
        (44100u32, 16000u32, 1000.0f64),
        (8000, 44100, 700.0),
        (192000, 16000, 5000.0),
        (22050, 16000, 3000.0),
    ] {
        let n = from as usize; // one second
        let x: Vec<f32> = (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / from as f64).sin() as f32 * 0.8
            })
            .collect();
        let y = resample_all(&x, from, to, 4096);
        assert_eq!(y.len(), to as usize, "{from}->{to}: exact length");
        let mid = &y[y.len() / 4..3 * y.len() / 4];
        let level = tone_level(mid, to as f64, freq);
        assert!(
            (level - 0.4).abs() < 0.01,
            "{from}->{to}: level {level} (expected 0.4)"
        );
        let shifted = tone_level(mid, to as f64, freq * 1.05);
        assert!(
            shifted < 0.02,
            "{from}->{to}: energy off-frequency {shifted}"
        );
        // The resampler's delay is removed: the output is in phase with the input to within
        // 20 µs (under one sample at 48 kHz). rubato leaves about half a sample of the higher
        // rate (measured 11 µs for 44.1↔16/8 kHz), irrelevant to detection.
        let t0 = (0..200)
            .map(|i| (i as f64, y[y.len() / 2 + i] as f64))
            .collect::<Vec<_>>();
        let err: f64 = t0
            .iter()
            .map(|(i, v)| {
                let t = (y.len() / 2) as f64 + i;
                (v - 0.8 * (2.0 * std::f64::consts::PI * freq * t / to as f64).sin()).abs()
            })
            .fold(0.0, f64::max);
        let max_slope_per_s = 0.8 * 2.0 * std::f64::consts::PI * freq;
        assert!(
            err < max_slope_per_s * 20e-6,
            "{from}->{to}: phase error {err} (> 20 µs offset)"
        );
    }
}

#[test]
fn resampling_does_not_depend_on_chunking() {
    let mut r = crate::common::rng(5);
    let x = crate::common::random_vec(&mut r, 30011, -1.0, 1.0);
    let whole = resample_all(&x, 48000, 16000, x.len());
    for chunk in [1, 7, 1000, 4097] {
        let y = resample_all(&x, 48000, 16000, chunk);
        assert_eq!(y, whole, "chunk {chunk}");
    }
}

#[test]
fn a_reused_resampler_gives_what_a_new_one_gives() {
    // Screening keeps one resampler per member network and resets it between windows: nothing
    // of one window (its tail, the filter's overlap, a push left unfinished) may reach the next.
    let mut r = crate::common::rng(6);
    let a = crate::common::random_vec(&mut r, 220_500, -1.0, 1.0);
    let b = crate::common::random_vec(&mut r, 100_003, -1.0, 1.0);
    let mut reused = MonoResampler::new(44100, 16000).unwrap();
    for x in [&a, &b, &a] {
        let fresh = resample_all(x, 44100, 16000, x.len());
        assert_eq!(fresh.len(), (x.len() * 16000 + 22050) / 44100);
        assert_eq!(reused.resample_whole(x).unwrap(), fresh);
    }
    reused.push(&b[..50_000], &mut |_| Ok(())).unwrap();
    assert_eq!(
        reused.resample_whole(&a).unwrap(),
        resample_all(&a, 44100, 16000, a.len()),
        "after a push left unfinished"
    );
}

fn windows_of(
    x: &[f32],
    len: usize,
    hop: usize,
    min: usize,
    pad: PadMode,
    chunk: usize,
) -> Result<Vec<Window>, String> {
    let mut w = Windower::new(len, hop, min, pad);
    let mut out = Vec::new();
    for c in x.chunks(chunk.max(1)) {
        w.push(c, &mut |win| {
            out.push(win);
            Ok(())
        })
        .unwrap();
    }
    w.finish(&mut |win| {
        out.push(win);
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn windows_cover_the_file_with_an_end_aligned_tail() {
    let x: Vec<f32> = (0..27).map(|i| i as f32).collect();
    for chunk in [1, 3, 10, 27] {
        let w = windows_of(&x, 10, 4, 1, PadMode::Repeat, chunk).unwrap();
        let spans: Vec<(u64, u64)> = w.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(
            spans,
            vec![(0, 10), (4, 14), (8, 18), (12, 22), (16, 26), (17, 27)],
            "chunk {chunk}"
        );
        for win in &w {
            let expected: Vec<f32> = (win.start..win.end).map(|i| i as f32).collect();
            assert_eq!(win.samples, expected);
        }
    }
    // an exact fit has no extra tail window
    let x: Vec<f32> = (0..26).map(|i| i as f32).collect();
    assert_eq!(
        windows_of(&x, 10, 4, 1, PadMode::Repeat, 5).unwrap().len(),
        5
    );
}

#[test]
fn short_files_are_padded_or_refused() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0];
    let w = windows_of(&x, 12, 6, 3, PadMode::Repeat, 2).unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].start, w[0].end), (0, 5));
    assert_eq!(
        w[0].samples,
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0]
    );
    let w = windows_of(&x, 8, 6, 3, PadMode::Zeros, 2).unwrap();
    assert_eq!(w[0].samples, vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 0.0]);
    let e = windows_of(&x[..2], 8, 6, 3, PadMode::Zeros, 2).unwrap_err();
    assert!(e.contains("too short"), "{e}");
    let e = windows_of(&[], 8, 6, 3, PadMode::Zeros, 2).unwrap_err();
    assert!(e.contains("no audio samples"), "{e}");
}

#[test]
fn windowing_memory_stays_bounded_on_a_long_stream() {
    // 10 minutes at 16 kHz pushed in 1 s chunks: every window is emitted as soon as it is
    // complete, so at most one chunk's worth of windows is pending at any time.
    let (len, hop) = (64000, 32000);
    let mut w = Windower::new(len, hop, 1, PadMode::Repeat);
    let chunk = vec![0.25f32; 16000];
    let mut count = 0u64;
    for i in 0..600u64 {
        w.push(&chunk, &mut |win| {
            assert!(win.end <= (i + 1) * 16000);
            count += 1;
            Ok(())
        })
        .unwrap();
        assert!(
            w.total() - count * hop as u64 <= len as u64 + 16000,
            "windows lag behind the stream"
        );
    }
    assert_eq!(count, (600 * 16000 - len as u64) / hop as u64 + 1);
}
