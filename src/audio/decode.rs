//! Decoding any supported container/codec with symphonia into mono f32 chunks at the source
//! rate. Streams packet by packet: memory does not grow with the file length.

use std::fs::File;
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::{Error, Result};

/// Source sample rates accepted. Beyond these a file is almost surely corrupt, and resampling
/// it would cost time or memory out of all proportion (1 Hz → 16 kHz is a 16,000× blow-up).
pub const SUPPORTED_RATES: std::ops::RangeInclusive<u32> = 1_000..=768_000;

/// What the source stream is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamInfo {
    pub sample_rate: u32,
    pub channels: usize,
    /// Codec short name, e.g. "mp3", "flac", "aac", "alac", "vorbis", "pcm_s16le".
    pub codec: String,
    /// Container short name, e.g. "wave", "ogg", "isomp4".
    pub container: String,
}

/// Counters a row reports as warnings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeStats {
    /// Source frames (samples per channel) decoded.
    pub frames: u64,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
    /// NaN/±Inf samples replaced by 0.
    pub nonfinite_samples: u64,
    /// Finite samples beyond ±[`MAX_ABS_SAMPLE`], clipped to it.
    pub clipped_samples: u64,
    /// The stream ended early (cut-off file or unreadable tail).
    pub truncated: Option<String>,
}

/// Float PCM may exceed full scale by a few dB; a sample 36 dB over it is not audio (a corrupt
/// or hostile float file), and values near f32's limit overflow the resampler's FFT (found by
/// fuzzing: `fuzz/`, FUZZING.md). Such samples are clipped to this and counted.
pub const MAX_ABS_SAMPLE: f32 = 64.0;

fn audio_err(msg: impl Into<String>) -> Error {
    Error::Audio(msg.into())
}

/// Decode the default audio track of `path`. `sink` receives the stream description and mono
/// chunks (channel average, non-finite samples zeroed, absurd ones clipped) at the source rate.
pub fn decode_mono(
    path: &Path,
    mut sink: impl FnMut(&StreamInfo, &[f32]) -> Result<()>,
) -> Result<(StreamInfo, DecodeStats)> {
    let file = File::open(path).map_err(|e| audio_err(format!("cannot open: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| audio_err(format!("cannot stat: {e}")))?;
    if meta.is_dir() {
        return Err(audio_err("is a directory"));
    }
    if meta.len() == 0 {
        return Err(audio_err("empty file (0 bytes)"));
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| audio_err(format!("not a recognised audio file ({e})")))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| audio_err("no decodable audio track"))?;
    let track_id = track.id;
    let declared_frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| audio_err("audio track has no codec parameters"))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| match codec_name(params.codec) {
            Some(name) => audio_err(format!(
                "unsupported codec: {name} (no {name} decoder is built in; convert the file, e.g. \
                 `ffmpeg -i IN -c:a flac OUT.flac`)"
            )),
            None => audio_err(format!("unsupported codec {} ({e})", params.codec)),
        })?;
    let mut info = StreamInfo {
        sample_rate: params.sample_rate.unwrap_or(0),
        channels: params.channels.as_ref().map_or(0, |c| c.count()),
        codec: decoder.codec_info().short_name.to_string(),
        container: format.format_info().short_name.to_string(),
    };
    let mut stats = DecodeStats::default();
    let mut started = false;
    let mut interleaved: Vec<f32> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let mut last_error = String::new();
    // Consecutive unreadable packets: the reader is asked again (it resynchronises where the
    // format allows, e.g. on FLAC's frame sync code) until this many fail in a row.
    const RESYNC_TRIES: u32 = 64;
    let mut failing = 0u32;
    let at = |stats: &DecodeStats, info: &StreamInfo| {
        stats.frames as f64 / f64::from(info.sample_rate.max(1))
    };
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                stats.truncated = Some(format!(
                    "file ends in the middle of a packet at {:.1} s (truncated?)",
                    at(&stats, &info)
                ));
                break;
            }
            Err(SymError::ResetRequired) => {
                return Err(audio_err(
                    "stream changes its parameters mid-file (unsupported)",
                ));
            }
            Err(e) if stats.frames > 0 => {
                failing += 1;
                stats.skipped_packets += 1;
                if failing < RESYNC_TRIES {
                    continue;
                }
                stats.truncated = Some(format!(
                    "decoding stopped at {:.1} s: unreadable data from there on ({e})",
                    at(&stats, &info)
                ));
                break;
            }
            Err(e) => return Err(audio_err(format!("cannot read the stream ({e})"))),
        };
        failing = 0;
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(e)) => {
                stats.skipped_packets += 1;
                last_error = e.to_string();
                continue;
            }
            Err(SymError::IoError(e)) => {
                stats.skipped_packets += 1;
                last_error = e.to_string();
                continue;
            }
            Err(e) => return Err(audio_err(format!("decoder failed ({e})"))),
        };
        let frames = buf.frames();
        if frames == 0 {
            continue;
        }
        let rate = buf.spec().rate();
        let channels = buf.spec().channels().count();
        if !started {
            if !SUPPORTED_RATES.contains(&rate) {
                return Err(audio_err(format!(
                    "unsupported sample rate {rate} Hz (accepted: {} to {} Hz)",
                    SUPPORTED_RATES.start(),
                    SUPPORTED_RATES.end()
                )));
            }
            if channels == 0 {
                return Err(audio_err("the stream declares zero channels"));
            }
            info.sample_rate = rate;
            info.channels = channels;
            started = true;
        } else if rate != info.sample_rate || channels != info.channels {
            return Err(audio_err(format!(
                "stream changes from {} Hz/{} ch to {rate} Hz/{channels} ch mid-file (unsupported)",
                info.sample_rate, info.channels
            )));
        }
        interleaved.resize(buf.samples_interleaved(), 0.0);
        buf.copy_to_slice_interleaved(&mut interleaved);
        mono.clear();
        let scale = 1.0 / channels as f32;
        for frame in interleaved.chunks_exact(channels) {
            let mut sum = 0.0f32;
            for &s in frame {
                if !s.is_finite() {
                    stats.nonfinite_samples += 1;
                } else if s.abs() > MAX_ABS_SAMPLE {
                    stats.clipped_samples += 1;
                    sum += s.clamp(-MAX_ABS_SAMPLE, MAX_ABS_SAMPLE);
                } else {
                    sum += s;
                }
            }
            mono.push(sum * scale);
        }
        stats.frames += frames as u64;
        sink(&info, &mono)?;
    }
    if let Some(declared) = declared_frames
        && declared > 0
        && stats.frames * 10 < declared * 9
    {
        // Less than 90 % decoded: say where it stopped and how much of the file was scored.
        let rate = f64::from(info.sample_rate.max(1));
        let share = format!(
            "only {:.1} s of the {:.1} s the header declares were decoded ({:.0} %)",
            stats.frames as f64 / rate,
            declared as f64 / rate,
            100.0 * stats.frames as f64 / declared as f64
        );
        stats.truncated = Some(match stats.truncated.take() {
            Some(why) => format!("{why}; {share}"),
            None => format!("{share} (truncated?)"),
        });
    } else if let Some(declared) = declared_frames
        && stats.truncated.is_none()
        && stats.frames * 100 < declared * 99
    {
        stats.truncated = Some(format!(
            "decoded {} of the {declared} frames the header declares (truncated?)",
            stats.frames
        ));
    }
    if !started {
        return Err(if stats.skipped_packets > 0 {
            audio_err(format!(
                "no audio could be decoded ({} packets failed; last error: {last_error})",
                stats.skipped_packets
            ))
        } else {
            audio_err("the audio stream holds no samples")
        });
    }
    Ok((info, stats))
}

/// Names of well-known codecs that symphonia has no decoder for, for the error row.
fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> Option<&'static str> {
    use symphonia::core::codecs::audio::well_known::*;
    Some(match id {
        CODEC_ID_OPUS => "Opus",
        CODEC_ID_SPEEX => "Speex",
        CODEC_ID_MUSEPACK => "Musepack",
        CODEC_ID_AC3 => "AC-3",
        CODEC_ID_EAC3 => "E-AC-3",
        CODEC_ID_DCA => "DTS",
        CODEC_ID_WMA => "WMA",
        CODEC_ID_WAVPACK => "WavPack",
        CODEC_ID_MONKEYS_AUDIO => "Monkey's Audio",
        CODEC_ID_TRUEHD => "TrueHD",
        _ => return None,
    })
}
