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
    /// Audio lost mid-file, in seconds: packets that failed to decode, and gaps in the packets'
    /// timestamps where the reader skipped damaged data to resynchronise (FLAC does so silently).
    pub lost_s: f64,
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

/// A file that lost more than this share of its audio to damage mid-file is an error row, not a
/// verdict: what is left may not be what the file holds.
pub const MAX_LOST_SHARE: f64 = 0.10;

/// Timestamp gaps up to this are rounding (Matroska's millisecond clock), not lost audio.
const GAP_TOLERANCE_S: f64 = 0.005;

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
    let mut link = Link::open(format.as_ref())?;
    let mut decoder = link.decoder()?;
    let mut info = StreamInfo {
        sample_rate: link.params.sample_rate.unwrap_or(0),
        channels: link.params.channels.as_ref().map_or(0, |c| c.count()),
        codec: decoder.codec_info().short_name.to_string(),
        container: format.format_info().short_name.to_string(),
    };
    let mut stats = DecodeStats::default();
    let mut declared_frames = link.num_frames;
    let mut started = false;
    // The current link's channel count, once its first audio is decoded.
    let mut link_channels: Option<usize> = None;
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let mut last_error = String::new();
    // Consecutive unreadable packets: the reader is asked again (it resynchronises where the
    // format allows, e.g. on FLAC's frame sync code) until this many fail in a row.
    const RESYNC_TRIES: u32 = 64;
    let mut failing = 0u32;
    let at = |stats: &DecodeStats, info: &StreamInfo| {
        stats.frames as f64 / f64::from(info.sample_rate.max(1))
    };
    // Where the next packet should start (seconds), and how long the last decoded one was.
    let mut expected: Option<(f64, f64)> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // Ogg says only that the stream's last page never came: a cut file, or (as in
                // hundreds of real klettres-data files, decoded whole) an encoder that never
                // wrote it. Other containers end inside a packet they announced.
                stats.truncated = Some(if info.container == "ogg" {
                    format!(
                        "the Ogg stream ends at {:.1} s without its end-of-stream mark (cut off, \
                         or left unclosed by its encoder)",
                        at(&stats, &info)
                    )
                } else {
                    format!(
                        "file ends in the middle of a packet at {:.1} s (truncated?)",
                        at(&stats, &info)
                    )
                });
                break;
            }
            Err(SymError::ResetRequired) => {
                // A chained stream (Ogg files joined end to end, as streaming radio sends them;
                // found in real packages): the reader now lists the next link's track, which
                // gets a decoder of its own. Its timestamps start again from zero.
                link = Link::open(format.as_ref()).map_err(|e| {
                    audio_err(format!("a chained stream's next part cannot be read: {e}"))
                })?;
                if started
                    && link
                        .params
                        .sample_rate
                        .is_some_and(|r| r != info.sample_rate)
                {
                    return Err(audio_err(format!(
                        "chained stream changes from {} Hz to {} Hz mid-file (unsupported; \
                         split it, e.g. with ffmpeg)",
                        info.sample_rate,
                        link.params.sample_rate.unwrap_or(0)
                    )));
                }
                decoder = link.decoder()?;
                declared_frames = declared_frames.zip(link.num_frames).map(|(a, b)| a + b);
                expected = None;
                link_channels = None;
                continue;
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
        if packet.track_id != link.track_id {
            continue;
        }
        let pts = link.seconds(packet.pts.get() as f64);
        if let Some((next, last_span)) = expected {
            // Decoders trim delay themselves (Opus's pre-skip in Matroska), so a packet may
            // start up to about half the last one's length late without any audio lost.
            let gap = pts - next;
            if gap > GAP_TOLERANCE_S + 0.5 * last_span {
                stats.lost_s += gap;
            }
        }
        let trims = link.seconds((packet.trim_start.get() + packet.trim_end.get()) as f64);
        let lost_with_packet = link.seconds(packet.dur.get() as f64);
        if packet.dur.get() > 0 {
            // Until decoded, the container's word for where the packet ends (Matroska gives
            // none: then a failed packet shows as a gap before the next one).
            expected = Some((pts + trims + lost_with_packet, lost_with_packet));
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(SymError::DecodeError(e)) => {
                stats.skipped_packets += 1;
                stats.lost_s += lost_with_packet;
                last_error = e.to_string();
                continue;
            }
            Err(SymError::IoError(e)) => {
                stats.skipped_packets += 1;
                stats.lost_s += lost_with_packet;
                last_error = e.to_string();
                continue;
            }
            Err(e) => return Err(audio_err(format!("decoder failed ({e})"))),
        };
        let frames = buf.frames();
        let rate = buf.spec().rate();
        let span = frames as f64 / f64::from(rate.max(1));
        expected = Some((pts + trims + span, span));
        if frames == 0 {
            continue;
        }
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
        } else if rate != info.sample_rate || link_channels.is_some_and(|c| c != channels) {
            // A new link of a chain may have another channel count: it is averaged to mono
            // like the first; the report names the first link's.
            return Err(audio_err(format!(
                "stream changes from {} Hz/{} ch to {rate} Hz/{channels} ch mid-file (unsupported)",
                info.sample_rate,
                link_channels.unwrap_or(info.channels)
            )));
        }
        link_channels = Some(channels);
        buf.copy_to_vecs_planar(&mut planes);
        downmix(&planes, &mut mono, &mut stats);
        stats.frames += frames as u64;
        sink(&info, &mono)?;
    }
    let rate = f64::from(info.sample_rate.max(1));
    if let Some(declared) = declared_frames
        && declared > 0
    {
        // What the header promised but neither the decoded audio nor the damage found mid-file
        // explains. Shortfalls under 0.1 s are codec delay and padding bookkeeping (a one-page
        // Ogg Opus file counts its pre-skip).
        let declared_s = declared as f64 / rate;
        let missing_s = declared_s - stats.frames as f64 / rate - stats.lost_s;
        if missing_s > 0.1 && missing_s > 0.01 * declared_s {
            let share = format!(
                "only {:.1} s of the {declared_s:.1} s the header declares were decoded ({:.0} %)",
                stats.frames as f64 / rate,
                100.0 * stats.frames as f64 / declared as f64
            );
            stats.truncated = match stats.truncated.take() {
                // The stream ended in the middle of a packet: cut off.
                Some(why) => Some(format!("{why}; {share}")),
                // Damage was seen mid-file and the file did not end early: the reader skipped
                // damaged data it did not report (MP3 resynchronises on the next frame header).
                None if stats.lost_s > 0.0 || stats.skipped_packets > 0 => {
                    stats.lost_s += missing_s;
                    None
                }
                // An MP3 reader skips damaged bytes without a word, and a cut MP3 often ends on
                // a whole frame: nothing tells the two apart.
                None if info.container == "mp3" => Some(format!(
                    "{share}: the file ends early or damaged data was skipped mid-file"
                )),
                None => Some(format!("{share}: the file ends early (truncated?)")),
            };
        }
    }
    let decoded_s = stats.frames as f64 / rate;
    if started && stats.lost_s > MAX_LOST_SHARE * (decoded_s + stats.lost_s) {
        return Err(audio_err(format!(
            "damaged: {:.1} s of {:.1} s could not be decoded ({:.0} %; a verdict needs at \
             least {:.0} % of the audio){}",
            stats.lost_s,
            decoded_s + stats.lost_s,
            100.0 * stats.lost_s / (decoded_s + stats.lost_s),
            100.0 * (1.0 - MAX_LOST_SHARE),
            if stats.skipped_packets > 0 {
                format!(
                    "; {} packets failed, last error: {last_error}",
                    stats.skipped_packets
                )
            } else {
                String::new()
            }
        )));
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

/// The audio track being decoded: a file's default one, or the current link of a chained stream.
struct Link {
    track_id: u32,
    num_frames: Option<u64>,
    time_base: Option<symphonia::core::units::TimeBase>,
    params: symphonia::core::codecs::audio::AudioCodecParameters,
}

impl Link {
    fn open(format: &dyn symphonia::core::formats::FormatReader) -> Result<Self> {
        let track = format
            .default_track(TrackType::Audio)
            .ok_or_else(|| audio_err("no decodable audio track"))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| audio_err("audio track has no codec parameters"))?
            .clone();
        Ok(Link {
            track_id: track.id,
            num_frames: track.num_frames,
            time_base: track.time_base,
            params,
        })
    }

    fn decoder(&self) -> Result<Box<dyn symphonia::core::codecs::audio::AudioDecoder>> {
        super::opus::codecs()
            .make_audio_decoder(&self.params, &AudioDecoderOptions::default())
            .map_err(|e| match codec_name(self.params.codec) {
                Some(name) => audio_err(format!(
                    "unsupported codec: {name} (no {name} decoder is built in; convert the \
                     file, e.g. `ffmpeg -i IN -c:a flac OUT.flac`)"
                )),
                None => audio_err(format!("unsupported codec {} ({e})", self.params.codec)),
            })
    }

    /// Packet times in seconds (the track's time base, else the declared rate's): where the
    /// next packet should start, to find what a resynchronising reader skipped.
    fn seconds(&self, ticks: f64) -> f64 {
        match self.time_base {
            Some(tb) => ticks * f64::from(tb.numer.get()) / f64::from(tb.denom.get()),
            None => ticks / f64::from(self.params.sample_rate.unwrap_or(0).max(1)),
        }
    }
}

/// The channels' average into `mono`; non-finite samples count as 0 and absurd ones are clipped
/// (both counted in `stats`). Sums run in channel order either way, so the fast path for clean
/// audio gives the same bits as the checked one.
fn downmix(planes: &[Vec<f32>], mono: &mut Vec<f32>, stats: &mut DecodeStats) {
    let frames = planes.first().map_or(0, Vec::len);
    let scale = 1.0 / planes.len().max(1) as f32;
    mono.clear();
    mono.resize(frames, 0.0);
    // A fold without early exit, so that the check vectorises (NaN fails the comparison).
    let clean = planes.iter().all(|p| {
        p.iter()
            .fold(true, |ok, s| ok & (s.abs() <= MAX_ABS_SAMPLE))
    });
    for plane in planes {
        if clean {
            mono.iter_mut().zip(plane).for_each(|(m, &s)| *m += s);
            continue;
        }
        for (m, &s) in mono.iter_mut().zip(plane) {
            if !s.is_finite() {
                stats.nonfinite_samples += 1;
            } else if s.abs() > MAX_ABS_SAMPLE {
                stats.clipped_samples += 1;
                *m += s.clamp(-MAX_ABS_SAMPLE, MAX_ABS_SAMPLE);
            } else {
                *m += s;
            }
        }
    }
    mono.iter_mut().for_each(|m| *m *= scale);
}

/// Names of well-known codecs that symphonia has no decoder for, for the error row.
fn codec_name(id: symphonia::core::codecs::audio::AudioCodecId) -> Option<&'static str> {
    use symphonia::core::codecs::audio::well_known::*;
    Some(match id {
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
