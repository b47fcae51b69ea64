//! Opus (RFC 6716) as a symphonia audio decoder, so that symphonia's Ogg and Matroska/WebM
//! demuxers hand us its packets like any other codec's. The decoding itself is the `ropus`
//! crate, a Rust port of libopus (fixed point, bit-exact against the C reference, no C): the
//! README's "no system libraries" promise holds.

use std::sync::LazyLock;

use symphonia::core::audio::{
    AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, Channels, GenericAudioBufferRef,
};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult,
};
use symphonia::core::codecs::registry::{
    CodecRegistry, RegisterableAudioDecoder, SupportedAudioCodec,
};
use symphonia::core::errors::{Error as SymError, Result as SymResult};
use symphonia::core::packet::PacketRef;

/// Opus always decodes at 48 kHz; the pre-skip and container trims count 48 kHz samples.
const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms.
const MAX_FRAMES_PER_PACKET: usize = 5_760;

/// symphonia's codecs plus Opus. Used instead of `symphonia::default::get_codecs()`.
pub fn codecs() -> &'static CodecRegistry {
    static REGISTRY: LazyLock<CodecRegistry> = LazyLock::new(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<OpusDecoder>();
        registry
    });
    &REGISTRY
}

/// The identification header (RFC 7845 §5.1): what the decoder needs of it. Matroska's
/// CodecPrivate holds the same bytes. symphonia's own reader of it drops the stream map.
#[derive(Debug, Clone, PartialEq)]
struct OpusHead {
    channels: usize,
    /// Samples (at 48 kHz) at the start that are the encoder's look-ahead, not audio.
    pre_skip: usize,
    /// Output gain, Q7.8 dB.
    gain_q8: i16,
    /// `None` for mapping family 0 (one stream, mono or stereo); otherwise (streams, coupled
    /// streams, channel mapping).
    streams: Option<(usize, usize, Vec<u8>)>,
}

fn invalid(msg: &'static str) -> SymError {
    SymError::DecodeError(msg)
}

impl OpusHead {
    fn parse(bytes: &[u8]) -> SymResult<Self> {
        if bytes.len() < 19 || &bytes[..8] != b"OpusHead" {
            return Err(invalid("opus: no OpusHead identification header"));
        }
        // The major version (top four bits) must be 0; minor versions stay compatible.
        if bytes[8] >> 4 != 0 {
            return Err(SymError::Unsupported(
                "opus: unknown OpusHead major version",
            ));
        }
        let channels = usize::from(bytes[9]);
        if channels == 0 {
            return Err(invalid("opus: OpusHead declares zero channels"));
        }
        let pre_skip = usize::from(u16::from_le_bytes([bytes[10], bytes[11]]));
        let gain_q8 = i16::from_le_bytes([bytes[16], bytes[17]]);
        let streams = match bytes[18] {
            0 if channels <= 2 => None,
            0 => {
                return Err(invalid(
                    "opus: mapping family 0 with more than two channels",
                ));
            }
            _ => {
                let table = bytes
                    .get(19..21 + channels)
                    .ok_or_else(|| invalid("opus: OpusHead channel mapping table cut short"))?;
                let (streams, coupled) = (usize::from(table[0]), usize::from(table[1]));
                if streams == 0 || coupled > streams {
                    return Err(invalid("opus: OpusHead stream counts are inconsistent"));
                }
                Some((streams, coupled, table[2..].to_vec()))
            }
        };
        Ok(Self {
            channels,
            pre_skip,
            gain_q8,
            streams,
        })
    }
}

/// libopus's multistream decoder (one stream for mapping family 0), as the `ropus` crate ports
/// it: fixed point, bit-exact against the C reference, no C. It replaced the `opus-decoder`
/// crate, whose CELT path ran a naive O(n²) DFT per frame: 2× real time on one core (an
/// Opus catalog screened at the decoder's speed, whatever the model).
struct Stream {
    decoder: ropus::OpusMSDecoder,
    channels: usize,
    /// One packet's samples, interleaved.
    pcm: Vec<i16>,
}

impl Stream {
    fn open(head: &OpusHead) -> Option<Self> {
        let (streams, coupled, mapping) = match &head.streams {
            Some((streams, coupled, mapping)) => (*streams, *coupled, mapping.clone()),
            // Family 0: one stream, stereo (coupled) or mono.
            None => {
                let stereo = head.channels == 2;
                (1, usize::from(stereo), (0..head.channels as u8).collect())
            }
        };
        let count = |n: usize| i32::try_from(n).ok();
        let decoder = ropus::OpusMSDecoder::new(
            OPUS_RATE as i32,
            count(head.channels)?,
            count(streams)?,
            count(coupled)?,
            &mapping,
        )
        .ok()?;
        Some(Self {
            decoder,
            channels: head.channels,
            pcm: vec![0; MAX_FRAMES_PER_PACKET * head.channels],
        })
    }

    /// Decodes one packet: its samples, interleaved in the header's channel count (16-bit, as
    /// the fixed-point decoder gives them), or `None` for a malformed packet.
    fn decode(&mut self, packet: &[u8]) -> Option<&[i16]> {
        let len = i32::try_from(packet.len()).ok()?;
        // An empty packet would ask for loss concealment: here it is a malformed one.
        if len == 0 {
            return None;
        }
        let frames = self
            .decoder
            .decode(
                Some(packet),
                len,
                &mut self.pcm,
                MAX_FRAMES_PER_PACKET as i32,
                false,
            )
            .ok()?;
        self.pcm
            .get(..usize::try_from(frames).ok()? * self.channels)
    }
}

pub struct OpusDecoder {
    params: AudioCodecParameters,
    head: OpusHead,
    stream: Stream,
    /// Pre-skip samples not yet dropped (the container's own trims count towards it).
    skip_left: usize,
    /// Linear output gain from the header's Q7.8 dB.
    gain: f32,
    gapless: bool,
    buf: AudioBuffer<f32>,
}

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters, opts: &AudioDecoderOptions) -> SymResult<Self> {
        if params.codec != CODEC_ID_OPUS {
            return Err(SymError::Unsupported("opus: not an Opus stream"));
        }
        let head = OpusHead::parse(params.extra_data.as_deref().unwrap_or_default())?;
        let stream = Stream::open(&head).ok_or(SymError::Unsupported(
            "opus: decoder rejects the stream layout",
        ))?;
        let channels = Channels::Discrete(head.channels as u16);
        Ok(Self {
            params: params.clone(),
            skip_left: head.pre_skip,
            gain: 10f32.powf(f32::from(head.gain_q8) / 256.0 / 20.0),
            gapless: opts.gapless,
            buf: AudioBuffer::new(AudioSpec::new(OPUS_RATE, channels), MAX_FRAMES_PER_PACKET),
            head,
            stream,
        })
    }

    fn decode_inner(&mut self, packet: &PacketRef<'_>) -> SymResult<()> {
        self.buf.clear();
        let samples = self
            .stream
            .decode(packet.data)
            .ok_or_else(|| invalid("opus: malformed packet"))?;
        let channels = self.head.channels;
        let frames = samples.len() / channels;
        self.buf.render_uninit(Some(frames));
        for ch in 0..channels {
            let plane = self
                .buf
                .plane_mut(ch)
                .ok_or_else(|| invalid("opus: missing audio plane"))?;
            for (out, frame) in plane.iter_mut().zip(samples.chunks_exact(channels)) {
                *out = f32::from(frame[ch]) / 32768.0 * self.gain;
            }
        }
        // The encoder's look-ahead (pre-skip) is never audio, whatever the container says; where
        // the container trims too (Ogg does, from the granule positions), the larger trim wins so
        // that nothing is dropped twice.
        let container_start = if self.gapless {
            packet.trim_start.get() as usize
        } else {
            0
        };
        let start = container_start.max(self.skip_left.min(frames));
        self.skip_left = self.skip_left.saturating_sub(start);
        let end = if self.gapless {
            packet.trim_end.get() as usize
        } else {
            0
        };
        self.buf.trim(start, end);
        Ok(())
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        // Only a seek resets; the stream's state restarts, the pre-skip does not apply again.
        if let Some(stream) = Stream::open(&self.head) {
            self.stream = stream;
        }
    }

    fn codec_info(&self) -> &CodecInfo {
        &Self::supported_codecs()[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> SymResult<GenericAudioBufferRef<'_>> {
        if let Err(e) = self.decode_inner(packet) {
            self.buf.clear();
            return Err(e);
        }
        Ok(self.buf.as_generic_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        opts: &AudioDecoderOptions,
    ) -> SymResult<Box<dyn AudioDecoder>> {
        Ok(Box::new(Self::try_new(params, opts)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        const OPUS: &[SupportedAudioCodec] = &[SupportedAudioCodec {
            id: CODEC_ID_OPUS,
            info: CodecInfo {
                short_name: "opus",
                long_name: "Opus (RFC 6716)",
                profiles: &[],
            },
        }];
        OPUS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(channels: u8, pre_skip: u16, gain: i16, family: u8, table: &[u8]) -> Vec<u8> {
        let mut b = b"OpusHead".to_vec();
        b.push(1);
        b.push(channels);
        b.extend(pre_skip.to_le_bytes());
        b.extend(44_100u32.to_le_bytes());
        b.extend(gain.to_le_bytes());
        b.push(family);
        b.extend(table);
        b
    }

    #[test]
    fn the_identification_header_is_read_as_rfc_7845_lays_it_out() {
        let stereo = OpusHead::parse(&head(2, 312, -256, 0, &[])).unwrap();
        assert_eq!(
            stereo,
            OpusHead {
                channels: 2,
                pre_skip: 312,
                gain_q8: -256,
                streams: None
            }
        );
        let surround = OpusHead::parse(&head(6, 0, 0, 1, &[4, 2, 0, 4, 1, 2, 3, 5])).unwrap();
        assert_eq!(surround.streams, Some((4, 2, vec![0, 4, 1, 2, 3, 5])));
        // Refused: wrong magic, no channels, a cut mapping table, family 0 beyond stereo.
        assert!(OpusHead::parse(b"OpusTags\x01\x02\0\0\0\0\0\0\0\0\0").is_err());
        assert!(OpusHead::parse(&head(0, 0, 0, 0, &[])).is_err());
        assert!(OpusHead::parse(&head(6, 0, 0, 1, &[4, 2, 0])).is_err());
        assert!(OpusHead::parse(&head(3, 0, 0, 0, &[])).is_err());
        assert!(OpusHead::parse(&head(2, 0, 0, 1, &[1, 2, 0, 1])).is_err());
    }
}
