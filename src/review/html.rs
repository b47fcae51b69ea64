//! The review page itself: one HTML file with inline CSS, inline SVG/PNG and a little vanilla
//! JavaScript; no network, no framework. The table's rows travel as JSON in the page and are
//! rendered a page at a time, so a report of 100,000+ files stays usable.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use percent_encoding::{AsciiSet, CONTROLS, percent_encode};

use super::explain::Detail;
use super::{Page, Standing};
use crate::metrics;
use crate::{Result, plot};

/// Bytes of a path segment that must be escaped in a relative URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

pub fn render(page: &Page) -> Result<String> {
    let mut h = String::with_capacity(64 * 1024 + page.rows.len() * 128);
    let title = format!(
        "deepscreen review — {}",
        page.report
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
    );
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        text(&title)
    );
    summary(page, &mut h)?;
    details(page, &mut h)?;
    table(page, &mut h)?;
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    Ok(h)
}

/// Header: counts, model, threshold, backend, date; the histogram; DET/ROC with labels.
/// The share of windows a fused model's cascade decided by its cheap members alone; "off" for
/// rows of `--exact` runs and single networks.
fn cascade_share(rows: &[crate::report::Row]) -> String {
    let (mut windows, mut skipped) = (0, 0);
    for r in rows {
        if let Some(k) = r.cascade_skipped {
            skipped += k;
            windows += r.windows.unwrap_or(0);
        }
    }
    if windows == 0 {
        return "off".into();
    }
    format!(
        "{:.1} % of {windows} windows decided by the cheap members alone",
        100.0 * skipped as f64 / windows as f64
    )
}

fn summary(page: &Page, h: &mut String) -> Result<()> {
    let rows = &page.rows;
    let count = |standing: Standing| rows.iter().filter(|r| Standing::of(r) == standing).count();
    let hours: f64 = rows.iter().filter_map(|r| r.duration_s).sum::<f64>() / 3600.0;
    let distinct = |f: &dyn Fn(&crate::report::Row) -> String| {
        let set: BTreeSet<String> = rows.iter().map(f).filter(|s| !s.is_empty()).collect();
        if set.is_empty() {
            "—".to_string()
        } else {
            set.into_iter().collect::<Vec<_>>().join(", ")
        }
    };
    let threshold = rows.iter().find_map(|r| r.threshold).unwrap_or(0.5) as f64;
    let _ = write!(
        h,
        "<header>\n<h1>deepscreen review</h1>\n<p class=\"meta\">report <code>{}</code> · page \
         made {}</p>\n<dl class=\"summary\">",
        text(&page.report.display().to_string()),
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    );
    for (term, value, class) in [
        ("files", rows.len().to_string(), ""),
        ("hours of audio", format!("{hours:.2}"), ""),
        ("flagged", count(Standing::Flagged).to_string(), "flag"),
        ("failed", count(Standing::Failed).to_string(), "fail"),
        ("no signal", count(Standing::NoSignal).to_string(), ""),
        ("model", distinct(&|r| r.model.clone()), ""),
        (
            "threshold",
            distinct(&|r| r.threshold.map(|t| format!("{t:.3}")).unwrap_or_default()),
            "",
        ),
        ("backend", distinct(&|r| r.backend.clone()), ""),
        ("cascade", cascade_share(rows), ""),
    ] {
        let _ = write!(
            h,
            "<div class=\"{class}\"><dt>{term}</dt><dd>{}</dd></div>",
            text(&value)
        );
    }
    h.push_str(
        "</dl>\n</header>\n<section id=\"overview\">\n<h2>Scores</h2>\n<div class=\"plots\">",
    );
    let scores_of = |standing: Standing| -> Vec<f64> {
        rows.iter()
            .filter(|r| Standing::of(r) == standing)
            .filter_map(|r| r.score.map(f64::from))
            .collect()
    };
    h.push_str(&inline_svg(plot::histogram_svg(
        &[
            ("flagged", (200, 40, 40), scores_of(Standing::Flagged)),
            ("bona fide", (40, 150, 70), scores_of(Standing::BonaFide)),
        ],
        threshold,
    )?));
    if let Some(labels) = &page.labels {
        let mut bona = Vec::new();
        let mut spoof = Vec::new();
        for (r, l) in rows.iter().zip(&labels.spoof) {
            match (r.score, l) {
                (Some(s), Some(true)) => spoof.push(s as f64),
                (Some(s), Some(false)) => bona.push(s as f64),
                _ => {}
            }
        }
        if bona.is_empty() || spoof.is_empty() {
            let _ = write!(
                h,
                "<p class=\"note\">{}: the labelled rows hold {} bona fide and {} spoof scores; \
                 DET and ROC need both.</p>",
                text(&labels.protocol.display().to_string()),
                bona.len(),
                spoof.len()
            );
        } else {
            let title = format!("{} labelled files", bona.len() + spoof.len());
            h.push_str(&inline_svg(plot::det_svg(
                &bona, &spoof, threshold, &title,
            )?));
            h.push_str(&inline_svg(plot::roc_svg(&bona, &spoof, &title)?));
            let (eer, _) = metrics::eer(&bona, &spoof);
            let _ = write!(
                h,
                "<p class=\"note\">Labels from <code>{}</code> ({} bona fide, {} spoof, {} rows \
                 unlabelled): EER {:.2} %, at the threshold {:.2} % of bona fide flagged and \
                 {:.1} % of spoofs caught.</p>",
                text(&labels.protocol.display().to_string()),
                bona.len(),
                spoof.len(),
                labels.spoof.iter().filter(|l| l.is_none()).count(),
                100.0 * eer,
                100.0 * metrics::flagged_rate(&bona, threshold),
                100.0 * metrics::flagged_rate(&spoof, threshold)
            );
        }
    }
    h.push_str("</div>\n</section>\n");
    Ok(())
}

/// One article per detailed flagged file.
fn details(page: &Page, h: &mut String) -> Result<()> {
    let flagged = page
        .rows
        .iter()
        .filter(|r| Standing::of(r) == Standing::Flagged)
        .count();
    let _ = write!(
        h,
        "<section id=\"flagged\">\n<h2>Flagged files{}</h2>\n",
        if page.details.is_empty() {
            String::new()
        } else {
            format!(" — the top {} of {flagged}", page.details.len())
        }
    );
    if let Some(note) = &page.note {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", text(note));
    }
    if flagged == 0 {
        h.push_str("<p>No file was flagged.</p>\n");
    }
    for (n, (i, detail)) in page.details.iter().enumerate() {
        let row = &page.rows[*i];
        let _ = write!(
            h,
            "<article class=\"file\" id=\"f{i}\">\n<h3><span class=\"rank\">#{}</span> \
             <span class=\"score\">{}</span> <span class=\"path\">{}</span></h3>\n",
            n + 1,
            row.score.map(|s| format!("{s:.3}")).unwrap_or_default(),
            text(&row.path)
        );
        match (detail, &page.model) {
            (Ok(d), Some(model)) => article(page, row, d, model, h)?,
            (Err(e), _) => {
                let _ = writeln!(
                    h,
                    "<p class=\"error\">Could not be explained: {}</p>",
                    text(e)
                );
            }
            (Ok(_), None) => {}
        }
        if let Some(voice) = page.voices.get(i) {
            voice_panel(row, voice, h)?;
        }
        h.push_str("</article>\n");
    }
    h.push_str("</section>\n");
    Ok(())
}

fn article(
    page: &Page,
    row: &crate::report::Row,
    d: &Detail,
    model: &super::PageModel,
    h: &mut String,
) -> Result<()> {
    let e = &d.explanation;
    let (a, b) = d.window;
    let threshold = row.threshold.unwrap_or(0.5) as f64;
    let mut why = format!(
        "Most suspicious window: {a:.1}–{b:.1} s, scored {:.3}; the file ({}) scored {}.",
        e.score,
        crate::text::count(d.windows.len(), "window"),
        row.score.map(|s| format!("{s:.3}")).unwrap_or_default(),
    );
    if let (Some(k), Some(n)) = (row.cascade_skipped, row.windows)
        && k > 0
    {
        let _ = write!(
            why,
            " The cascade decided {k} of its {n} windows by the cheap members alone (the costly \
             member skipped them; `screen --exact` scores every window with every member)."
        );
    }
    if let (Some(run), Some(t), Some(a), Some(b)) = (
        row.segment_score,
        row.segment_threshold,
        row.segment_start_s,
        row.segment_end_s,
    ) {
        let fired = if run >= t {
            "at or above its threshold, so the file is flagged whatever its file score says \
             (a partial fake: listen to that stretch)"
        } else {
            "below its threshold"
        };
        let _ = write!(
            why,
            " Segment rule: every window from {a:.1} to {b:.1} s scored at least {run:.3}, \
             {fired} ({t:.3})."
        );
    }
    let band_label = |hz: (f64, f64)| format!("{}–{} kHz", khz(hz.0), khz(hz.1));
    if let Some(top) = e
        .bands
        .iter()
        .max_by(|x, y| (e.score - x.score).total_cmp(&(e.score - y.score)))
    {
        let drop = e.score - top.score;
        if drop >= 0.05 {
            let _ = write!(
                why,
                " Without {} it scores {:.3} ({:+.3}): most of the evidence is in that band.",
                band_label(top.hz),
                top.score,
                -drop
            );
        } else {
            let _ = write!(
                why,
                " No single band carries the evidence: removing any one of {} bands changes \
                 the score by less than 0.05.",
                e.bands.len()
            );
        }
    }
    let _ = write!(
        h,
        "<p class=\"why\">{}</p>\n<div class=\"panels\">",
        text(&why)
    );
    let windows: Vec<(f64, f64, f32)> = d
        .windows
        .iter()
        .map(|s| (s.start_s, s.end_s, s.score))
        .collect();
    h.push_str(&inline_svg(plot::timeline_svg(
        &windows,
        row.duration_s.unwrap_or(b),
        threshold,
        Some(d.window),
    )?));
    let image = super::media::spectrogram_png(&e.image, e.frames, e.bins, model.db_per_unit)?;
    let top_hz = model.bin_hz.last().copied().unwrap_or(0.0);
    let _ = write!(
        h,
        "<figure><img src=\"{image}\" width=\"{}\" height=\"{}\" alt=\"spectrogram of the window\">\
         <figcaption>{a:.1}–{b:.1} s, {}–{} kHz (the model's own front-end)</figcaption></figure>",
        e.frames.min(480),
        e.bins.min(160),
        khz(model.bin_hz.first().copied().unwrap_or(0.0)),
        khz(top_hz)
    );
    let bars: Vec<(String, f64)> = e
        .bands
        .iter()
        .map(|band| (band_label(band.hz), (e.score - band.score) as f64))
        .collect();
    h.push_str(&inline_svg(plot::bands_svg(&bars)?));
    h.push_str("</div>\n");
    let src = if page.embed_audio {
        super::media::wav_data_uri(&d.samples, model.rate)?
    } else {
        format!(
            "{}#t={a:.2},{b:.2}",
            relative_url(&row.file(), &page.output_dir)
        )
    };
    let _ = writeln!(
        h,
        "<p class=\"player\"><audio controls preload=\"none\" src=\"{}\"></audio> {}</p>",
        attr(&src),
        if page.embed_audio {
            "the window as the model heard it (mono, model rate)"
        } else {
            "the file, from the window (a link relative to this page)"
        }
    );
    Ok(())
}

/// The voice the vocal stage separated and judged: what it scored, its spectrogram by the
/// voice model's front-end, and a player, so a reviewer hears the voice without the music.
fn voice_panel(
    row: &crate::report::Row,
    voice: &std::result::Result<crate::screen::vocals::VoiceDetail, String>,
    h: &mut String,
) -> Result<()> {
    h.push_str("<h4>The separated voice</h4>\n");
    let v = match voice {
        Ok(v) => v,
        Err(e) => {
            let _ = writeln!(
                h,
                "<p class=\"error\">Could not be separated again: {}</p>",
                text(e)
            );
            return Ok(());
        }
    };
    let (a, b) = v.window;
    let end = v.start_s + v.samples.len() as f64 / f64::from(v.rate);
    let mut why = format!(
        "The vocal stage separated a voice from {:.1} to {:.1} s (voice share up to {}) and \
         the voice model scored it {}",
        row.vocal_start_s.unwrap_or(v.start_s),
        row.vocal_end_s.unwrap_or(end),
        row.vocal_share
            .map(|s| format!("{s:.2}"))
            .unwrap_or_default(),
        row.vocal_score
            .map(|s| format!("{s:.3}"))
            .unwrap_or_default(),
    );
    if let (Some(s), Some(t)) = (row.vocal_score, row.vocal_threshold) {
        let _ = write!(
            why,
            ", {} its threshold {t:.3}{}",
            if s >= t { "at or above" } else { "below" },
            if s >= t {
                ": the voice alone flags the file"
            } else {
                ""
            }
        );
    }
    let _ = write!(
        why,
        ". Its most suspicious window, {a:.1}–{b:.1} s, scored {:.3}.",
        v.explanation.score
    );
    let _ = write!(
        h,
        "<p class=\"why\">{}</p>\n<div class=\"panels\">",
        text(&why)
    );
    let e = &v.explanation;
    let image = super::media::spectrogram_png(&e.image, e.frames, e.bins, v.db_per_unit)?;
    let _ = writeln!(
        h,
        "<figure><img src=\"{image}\" width=\"{}\" height=\"{}\" alt=\"spectrogram of the \
         separated voice\"><figcaption>the separated voice, {a:.1}–{b:.1} s, {}–{} kHz (the \
         voice model's front-end)</figcaption></figure></div>",
        e.frames.min(480),
        e.bins.min(160),
        khz(v.bin_hz.first().copied().unwrap_or(0.0)),
        khz(v.bin_hz.last().copied().unwrap_or(0.0))
    );
    let _ = writeln!(
        h,
        "<p class=\"player\"><audio controls preload=\"none\" src=\"{}\"></audio> the separated \
         voice alone, {:.1}–{end:.1} s (mono, {} kHz)</p>",
        attr(&super::media::wav_data_uri(&v.samples, v.rate)?),
        v.start_s,
        khz(f64::from(v.rate))
    );
    Ok(())
}

/// The table of every file: its rows as JSON, rendered by the script a page at a time.
fn table(page: &Page, h: &mut String) -> Result<()> {
    let detailed: std::collections::HashSet<usize> = page
        .details
        .iter()
        .filter(|(_, d)| d.is_ok())
        .map(|(i, _)| *i)
        .collect();
    h.push_str(
        "<section id=\"all\">\n<h2>All files</h2>\n<div class=\"controls\">\
         <input id=\"filter\" type=\"search\" placeholder=\"filter: path, codec, warning, error\">\
         <select id=\"verdict\"><option value=\"\">every verdict</option>\
         <option value=\"0\">flagged</option><option value=\"1\">bona fide</option>\
         <option value=\"2\">no signal</option><option value=\"3\">failed</option></select>\
         <button id=\"prev\" type=\"button\">◀</button><span id=\"pageinfo\"></span>\
         <button id=\"next\" type=\"button\">▶</button></div>\n\
         <table id=\"files\"><thead><tr><th data-col=\"path\">path</th>\
         <th data-col=\"score\">score</th><th data-col=\"verdict\">verdict</th>\
         <th data-col=\"duration\">duration</th><th data-col=\"codec\">codec</th>\
         <th data-col=\"notes\">warnings / error</th></tr></thead><tbody></tbody></table>\n\
         <noscript>The table needs JavaScript; the report itself holds the same rows.</noscript>\n\
         </section>\n",
    );
    // [path, score, verdict rank (0 flagged, 1 bona fide, 2 no signal, 3 failed), duration,
    // codec, warnings or error, detail anchor]
    let data: Vec<serde_json::Value> = page
        .order
        .iter()
        .map(|&i| {
            let r = &page.rows[i];
            let notes = match &r.error {
                Some(e) => e.clone(),
                None => r.warnings.join("; "),
            };
            serde_json::json!([
                r.path,
                r.score.map(|s| (s as f64 * 1e4).round() / 1e4),
                Standing::of(r).code(),
                r.duration_s.map(|d| (d * 10.0).round() / 10.0),
                r.codec.clone().unwrap_or_default(),
                notes,
                if detailed.contains(&i) {
                    format!("f{i}")
                } else {
                    String::new()
                },
            ])
        })
        .collect();
    let json = serde_json::to_string(&data).map_err(|e| crate::Error::Report(e.to_string()))?;
    // `<` only occurs inside JSON strings, where \u003c means the same: the data cannot close
    // its <script> element.
    let _ = writeln!(
        h,
        "<script type=\"application/json\" id=\"rows\">{}</script>",
        json.replace('<', "\\u003c")
    );
    Ok(())
}

/// An SVG from plotters, inline: the namespace attribute is not needed in HTML (and the page
/// then names no URL at all).
fn inline_svg(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn khz(hz: f64) -> String {
    let k = hz / 1000.0;
    if k >= 10.0 || k == k.round() {
        format!("{k:.0}")
    } else {
        format!("{k:.1}")
    }
}

/// `file` as a URL relative to `dir` (the page's directory), each segment percent-encoded.
pub fn relative_url(file: &Path, dir: &Path) -> String {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let rel = pathdiff::diff_paths(&absolute, dir).unwrap_or(absolute);
    rel.components()
        .map(|c| {
            let bytes = crate::report::path_bytes(Path::new(c.as_os_str()));
            percent_encode(&bytes, SEGMENT).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

const STYLE: &str = r#"
:root { --flag: #c62828; --ok: #2e7d32; --muted: #666; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 1500px; padding: 0 1.2rem 3rem; color: #222; }
h1 { margin: 1rem 0 0.2rem; } h2 { border-bottom: 1px solid #ddd; margin-top: 2rem; }
.meta, .note, figcaption { color: var(--muted); font-size: 0.9rem; }
dl.summary { display: flex; flex-wrap: wrap; gap: 0.6rem; margin: 0.8rem 0; }
dl.summary div { border: 1px solid #ddd; border-radius: 6px; padding: 0.4rem 0.8rem; }
dl.summary dt { font-size: 0.8rem; color: var(--muted); } dl.summary dd { margin: 0; font-size: 1.2rem; }
dl.summary .flag dd { color: var(--flag); font-weight: 600; } dl.summary .fail dd { color: #8a5a00; }
.plots, .panels { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; } figure img { border: 1px solid #ddd; height: 160px; width: 420px; }
article.file { border: 1px solid #e3e3e3; border-left: 4px solid var(--flag); border-radius: 6px; padding: 0.3rem 1rem 0.6rem; margin: 1rem 0; }
article.file h3 { font-size: 1rem; word-break: break-all; } .rank { color: var(--muted); }
.score { color: var(--flag); font-variant-numeric: tabular-nums; }
.error { color: #8a5a00; } .why { max-width: 70rem; }
.controls { display: flex; gap: 0.5rem; align-items: center; margin: 0.6rem 0; }
.controls input { flex: 1; max-width: 30rem; padding: 0.3rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th { text-align: left; cursor: pointer; user-select: none; background: #f4f4f4; position: sticky; top: 0; }
th.asc::after { content: " ▲"; } th.desc::after { content: " ▼"; }
th, td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #eee; vertical-align: top; }
td.path { word-break: break-all; } td.num { font-variant-numeric: tabular-nums; text-align: right; }
tr.v0 td.verdict { color: var(--flag); font-weight: 600; } tr.v1 td.verdict { color: var(--ok); }
tr.v3 td { color: #8a5a00; }
"#;

const SCRIPT: &str = r##"
(function () {
  "use strict";
  var t0 = performance.now();
  var data = JSON.parse(document.getElementById("rows").textContent);
  var tbody = document.querySelector("#files tbody");
  var table = document.getElementById("files");
  var PER_PAGE = 100;
  var VERDICTS = ["synthetic", "bona-fide", "no-signal", "failed"];
  // Column name -> value used for sorting; nulls always sort last.
  var key = {
    path: function (r) { return r[0]; },
    score: function (r) { return r[1]; },
    verdict: function (r) { return r[2]; },
    duration: function (r) { return r[3]; },
    codec: function (r) { return r[4]; },
    notes: function (r) { return r[5]; }
  };
  var state = { sort: "", filter: "", verdict: "", page: 0 };
  var view = data;

  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    state.sort = p.get("sort") || "";
    state.filter = p.get("q") || "";
    state.verdict = p.get("verdict") || "";
    document.getElementById("filter").value = state.filter;
    document.getElementById("verdict").value = state.verdict;
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (state.sort) p.set("sort", state.sort);
    if (state.filter) p.set("q", state.filter);
    if (state.verdict) p.set("verdict", state.verdict);
    history.replaceState(null, "", "#" + p.toString());
  }
  function apply() {
    var q = state.filter.toLowerCase();
    var v = state.verdict === "" ? -1 : Number(state.verdict);
    view = data.filter(function (r) {
      if (v >= 0 && r[2] !== v) return false;
      if (!q) return true;
      return (r[0] + " " + r[4] + " " + r[5]).toLowerCase().indexOf(q) >= 0;
    });
    if (state.sort) {
      var desc = state.sort.charAt(0) === "-";
      var col = desc ? state.sort.slice(1) : state.sort;
      var f = key[col];
      if (f) {
        view.sort(function (a, b) {
          var x = f(a), y = f(b);
          if (x === null || x === "") return (y === null || y === "") ? 0 : 1;
          if (y === null || y === "") return -1;
          var c = x < y ? -1 : x > y ? 1 : 0;
          return desc ? -c : c;
        });
      }
    }
    state.page = 0;
    render();
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(view.length / PER_PAGE));
    state.page = Math.min(state.page, pages - 1);
    var rows = [];
    var first = state.page * PER_PAGE;
    for (var i = first; i < Math.min(view.length, first + PER_PAGE); i++) {
      var r = view[i];
      var tr = document.createElement("tr");
      tr.className = "v" + r[2];
      var td = cell(tr, "", "path");
      if (r[6]) {
        var a = document.createElement("a");
        a.href = "#" + r[6];
        a.textContent = r[0];
        td.appendChild(a);
      } else {
        td.textContent = r[0];
      }
      cell(tr, r[1] === null ? "" : r[1].toFixed(3), "num");
      cell(tr, VERDICTS[r[2]], "verdict");
      cell(tr, r[3] === null ? "" : r[3].toFixed(1) + " s", "num");
      cell(tr, r[4]);
      cell(tr, r[5]);
      rows.push(tr);
    }
    tbody.replaceChildren.apply(tbody, rows);
    table.dataset.total = view.length;
    table.dataset.page = state.page + 1;
    document.getElementById("pageinfo").textContent =
      " " + view.length + " files · page " + (state.page + 1) + " of " + pages + " ";
    var ths = document.querySelectorAll("#files th");
    for (var j = 0; j < ths.length; j++) {
      var c = ths[j].dataset.col;
      ths[j].className = state.sort === c ? "asc" : state.sort === "-" + c ? "desc" : "";
    }
  }
  document.querySelector("#files thead").addEventListener("click", function (ev) {
    var col = ev.target.dataset && ev.target.dataset.col;
    if (!col) return;
    state.sort = state.sort === col ? "-" + col : col;
    writeHash();
    apply();
  });
  document.getElementById("filter").addEventListener("input", function (ev) {
    state.filter = ev.target.value;
    writeHash();
    apply();
  });
  document.getElementById("verdict").addEventListener("change", function (ev) {
    state.verdict = ev.target.value;
    writeHash();
    apply();
  });
  document.getElementById("prev").addEventListener("click", function () {
    if (state.page > 0) { state.page--; render(); }
  });
  document.getElementById("next").addEventListener("click", function () {
    state.page++;
    render();
  });
  readHash();
  apply();
  document.body.dataset.renderMs = Math.round(performance.now() - t0);
  // From navigation start (the page parsed included) to the first table page shown.
  document.body.dataset.readyMs = Math.round(performance.now());
})();
"##;
