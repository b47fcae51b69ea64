//! The report codec: rows written as JSON Lines and as CSV read back (through the one reader
//! that resume, merge and review use) to the rows that were written.

use deepscreen::report::{Format, Raw, ReportWriter, Row, RowReader, Segment, Verdict};

fn rows() -> Vec<Row> {
    let base = Row {
        path: "catalog/a song, \"live\".flac".into(),
        path_hex: None,
        score: Some(0.875),
        verdict: Some(Verdict::Synthetic),
        threshold: Some(0.64778954),
        max_window_score: Some(0.9375),
        mean_window_score: Some(0.875),
        windows: Some(3),
        cascade_skipped: Some(1),
        segment_score: Some(0.8125),
        segment_start_s: Some(5.0),
        segment_end_s: Some(15.0),
        segment_threshold: Some(0.96875),
        vocal_share: Some(0.40625),
        vocal_score: Some(0.71875),
        vocal_start_s: Some(0.0),
        vocal_end_s: Some(11.875),
        vocal_threshold: Some(0.59375),
        duration_s: Some(14.5),
        sample_rate: Some(44100),
        channels: Some(2),
        codec: Some("flac".into()),
        container: Some("flac".into()),
        model: "music-fusion-v2".into(),
        backend: "cpu".into(),
        error: None,
        warnings: vec![
            "2 undecodable packets were skipped".into(),
            "audio truncated".into(),
        ],
        segments: Some(vec![
            Segment {
                start_s: 0.0,
                end_s: 5.0,
                score: 0.5,
                members: Some(vec![Some(0.25), None, Some(0.75)]),
            },
            Segment {
                start_s: 5.0,
                end_s: 10.0,
                score: 0.9375,
                members: None,
            },
        ]),
    };
    vec![
        base.clone(),
        Row {
            path: "catalog/\u{fffd}.mp3".into(),
            path_hex: Some("636174616c6f672fff2e6d7033".into()),
            score: Some(0.125),
            verdict: Some(Verdict::BonaFide),
            warnings: vec![],
            segments: None,
            ..base.clone()
        },
        Row {
            path: "catalog/silence.wav".into(),
            score: None,
            verdict: Some(Verdict::NoSignal),
            max_window_score: None,
            mean_window_score: None,
            windows: Some(0),
            segments: None,
            warnings: vec!["no active signal".into()],
            ..base.clone()
        },
        Row {
            path: "catalog/broken.ogg".into(),
            score: None,
            verdict: None,
            max_window_score: None,
            mean_window_score: None,
            windows: None,
            duration_s: None,
            sample_rate: None,
            channels: None,
            codec: None,
            container: None,
            error: Some("cannot decode: bad page".into()),
            warnings: vec![],
            segments: None,
            ..base
        },
    ]
}

#[test]
fn rows_read_back_as_written_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    for (format, name) in [(Format::Jsonl, "r.jsonl"), (Format::Csv, "r.csv")] {
        let path = dir.path().join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut w = ReportWriter::new(Box::new(file), format, true).unwrap();
        for row in rows() {
            w.write(&row).unwrap();
        }
        drop(w);
        assert_eq!(Format::detect(&path).unwrap(), Some(format));
        let read: Vec<_> = RowReader::open(&path)
            .unwrap()
            .expect("a report")
            .map(|e| e.unwrap())
            .collect();
        let got: Vec<Row> = read.iter().map(|e| e.row.clone()).collect();
        assert_eq!(got, rows(), "{name}");
        // The raw text is the row as written (what merge copies).
        let text = std::fs::read_to_string(&path).unwrap();
        if let Raw::Line(line) = &read[0].raw {
            assert_eq!(text.lines().next().unwrap(), line);
        }
        assert_eq!(
            read[1].row.path_bytes(),
            b"catalog/\xff.mp3".to_vec(),
            "{name}: path_hex is the identity"
        );
    }
}

#[test]
fn verdicts_spell_as_documented() {
    for (v, s) in [
        (Verdict::Synthetic, "synthetic"),
        (Verdict::BonaFide, "bona-fide"),
        (Verdict::NoSignal, "no-signal"),
    ] {
        assert_eq!(v.as_str(), s);
        assert_eq!(Verdict::parse(s), Some(v));
        assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{s}\""));
    }
    assert_eq!(Verdict::parse("fake"), None);
    assert_eq!(Verdict::of_score(0.5, 0.5), Verdict::Synthetic);
    assert_eq!(Verdict::of_score(0.4999, 0.5), Verdict::BonaFide);
}

#[test]
fn a_row_that_is_not_json_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.jsonl");
    std::fs::write(&path, "{\"path\": \"a.wav\"}\n\n{not json\n").unwrap();
    let mut reader = RowReader::open(&path).unwrap().unwrap();
    assert_eq!(reader.next().unwrap().unwrap().row.path, "a.wav");
    let e = reader.next().unwrap().unwrap_err().to_string();
    assert!(e.contains("line 3 is not a JSON report row"), "{e}");
}
