//! The review page's inline media: the spectrogram as a PNG, an audio excerpt as a WAV, both
//! as `data:` URIs (the page needs no other file and no network).

use base64::Engine;

use crate::{Error, Result};

/// Largest spectrogram image drawn: columns are frames, rows are bins (averaged down to fit).
const MAX_WIDTH: usize = 480;
const MAX_HEIGHT: usize = 160;
/// Levels shown: from this far below the window's maximum (in the front-end's log units, after
/// scaling to decibels) up to the maximum.
const RANGE_DB: f32 = 80.0;

/// A `[frames, bins]` log filterbank (frame-major, bin 0 lowest) as a PNG `data:` URI: time
/// to the right, frequency up. `db_per_unit` converts the front-end's log values to decibels
/// (10 for log10 power, 4.34 for ln, 1 for dB), so every model's image shows the same range.
pub fn spectrogram_png(
    image: &[f32],
    frames: usize,
    bins: usize,
    db_per_unit: f32,
) -> Result<String> {
    if frames == 0 || bins == 0 || image.len() != frames * bins {
        return Err(Error::Report(format!(
            "spectrogram: {} values for {frames} frames of {bins} bins",
            image.len()
        )));
    }
    let (width, height) = (frames.min(MAX_WIDTH), bins.min(MAX_HEIGHT));
    let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut rgb = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        // Row 0 is the top of the picture: the highest bins.
        let bins_here = (height - 1 - y) * bins / height..((height - y) * bins / height).max(1);
        for x in 0..width {
            let frames_here =
                x * frames / width..((x + 1) * frames / width).max(x * frames / width + 1);
            let (mut sum, mut n) = (0.0f32, 0usize);
            for f in frames_here {
                for b in bins_here.clone() {
                    sum += image[f * bins + b];
                    n += 1;
                }
            }
            let db = (sum / n.max(1) as f32 - max) * db_per_unit;
            rgb.extend(colour(1.0 + db / RANGE_DB));
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let fail = |e: png::EncodingError| Error::Report(format!("spectrogram PNG: {e}"));
        let mut writer = encoder.write_header().map_err(fail)?;
        writer.write_image_data(&rgb).map_err(fail)?;
    }
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png_bytes)
    ))
}

/// A dark-to-bright colour scale (black, purple, orange, pale yellow) for `t` in 0..=1.
fn colour(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [0.0, 0.0, 4.0],
        [80.0, 18.0, 123.0],
        [182.0, 54.0, 121.0],
        [251.0, 136.0, 97.0],
        [252.0, 253.0, 191.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f32;
    let i = (pos as usize).min(STOPS.len() - 2);
    let frac = pos - i as f32;
    let mix = |c: usize| (STOPS[i][c] + (STOPS[i + 1][c] - STOPS[i][c]) * frac).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// 16-bit PCM mono WAV of `samples` at `rate`, as a `data:` URI.
pub fn wav_data_uri(samples: &[f32], rate: u32) -> Result<String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    let fail = |e: hound::Error| Error::Report(format!("audio excerpt: {e}"));
    {
        let mut writer = hound::WavWriter::new(&mut bytes, spec).map_err(fail)?;
        for &s in samples {
            let v = (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16;
            writer.write_sample(v).map_err(fail)?;
        }
        writer.finalize().map_err(fail)?;
    }
    Ok(format!(
        "data:audio/wav;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(uri: &str, prefix: &str) -> Vec<u8> {
        let b64 = uri.strip_prefix(prefix).expect("data URI prefix");
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64")
    }

    #[test]
    fn spectrogram_puts_low_bins_at_the_bottom_and_loud_bins_bright() {
        // 4 frames × 3 bins: bin 0 loud, bin 2 at the floor.
        let image: Vec<f32> = (0..4).flat_map(|_| [0.0, -4.0, -8.0]).collect();
        let uri = spectrogram_png(&image, 4, 3, 10.0).unwrap();
        let bytes = decode(&uri, "data:image/png;base64,");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (4, 3));
        let brightness =
            |row: usize| -> u32 { buf[row * 12..row * 12 + 3].iter().map(|&v| v as u32).sum() };
        // Top row = bin 2 (-80 dB: darkest), bottom row = bin 0 (the maximum: brightest).
        assert_eq!(&buf[0..3], &colour(0.0));
        assert_eq!(&buf[24..27], &colour(1.0));
        assert!(brightness(0) < brightness(1) && brightness(1) < brightness(2));
    }

    #[test]
    fn wav_excerpt_round_trips_through_a_wav_reader() {
        let samples: Vec<f32> = (0..800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let bytes = decode(
            &wav_data_uri(&samples, 8000).unwrap(),
            "data:audio/wav;base64,",
        );
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        let back: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        assert_eq!(back.len(), 800);
        for (a, b) in samples.iter().zip(&back) {
            assert!((a - *b as f32 / i16::MAX as f32).abs() < 1e-4);
        }
    }
}
