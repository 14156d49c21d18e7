//! A [`Report`] as markdown (a terminal or a file), JSON
//! (`edgewise.advice/v1`: the report's fields as serde writes them) and
//! an HTML page with a chart of new destinations per day per source.

use std::fmt::Write as _;

use serde_json::Value;

use crate::DAY_MS;
use crate::analysis::{Block, BlockOrigin, Group, Report};

/// The schema tag of [`json`] (`schemas/advice.schema.json`).
pub const ADVICE_SCHEMA: &str = "edgewise.advice/v1";

/// The schema tag of `edgewise advise check --json`
/// (`schemas/advice-check.schema.json`).
pub const CHECK_SCHEMA: &str = "edgewise.advice-check/v1";

/// `YYYY-MM-DD` of a day in Unix milliseconds (UTC).
pub fn date(ms: i64) -> String {
    // Days to the civil date (the proleptic Gregorian calendar).
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The report as `edgewise.advice/v1` JSON.
pub fn json(report: &Report) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("schema".to_owned(), Value::from(ADVICE_SCHEMA));
        map.insert(
            "dates".to_owned(),
            report.days.iter().map(|&d| Value::from(date(d))).collect(),
        );
    }
    value
}

fn span(report: &Report) -> String {
    match (report.days.first(), report.days.last()) {
        (Some(&a), Some(&b)) => format!("{} days, {} to {}", report.days.len(), date(a), date(b)),
        _ => "no days".to_owned(),
    }
}

fn granularity(report: &Report) -> &'static str {
    match report.settings.granularity {
        crate::Granularity::Namespace => "namespace",
        crate::Granularity::ServiceIdentity => "namespace+service-identity",
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn ports(set: &std::collections::BTreeSet<crate::analysis::Port>) -> String {
    set.iter()
        .map(|p| format!("{}/{}", p.port, p.protocol.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn origin(block: &Block) -> String {
    match &block.origin {
        BlockOrigin::Grouped => "grouped".to_owned(),
        BlockOrigin::Prefix { name } => format!("range {name}"),
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The columns of the sources' table, the confidence last.
const SOURCE_COLUMNS: [&str; 9] = [
    "source",
    "tier",
    "destinations",
    "pod namespaces",
    "Services",
    "external",
    "horizon",
    "last new",
    "confidence",
];

/// One source's row of that table, unescaped.
fn source_cells(g: &Group) -> [String; 9] {
    let f = &g.fan_out;
    [
        g.source.to_string(),
        g.tier.to_string(),
        f.destinations.to_string(),
        f.pod_namespaces.to_string(),
        f.services.to_string(),
        f.external.to_string(),
        format!("{} days", g.horizon_days),
        date(g.last_new_day),
        g.confidence.level.to_owned(),
    ]
}

/// The report as markdown.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Egress advice\n\n{}; {} sources by {}.\n",
        span(report),
        report.groups.len(),
        granularity(report)
    );
    let _ = writeln!(
        out,
        "## Baseline\n\nDestinations at least {} of sources use.\n\n| destination | ports | used by |\n| --- | --- | --- |",
        percent(report.settings.baseline_share)
    );
    for b in &report.baseline {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            cell(&b.target.to_string()),
            ports(&b.ports),
            b.used_by
        );
    }
    let _ = writeln!(
        out,
        "\n## Sources\n\n| {} |\n|{}",
        SOURCE_COLUMNS.join(" | "),
        " --- |".repeat(SOURCE_COLUMNS.len())
    );
    for g in &report.groups {
        let cells: Vec<String> = source_cells(g).iter().map(|c| cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    for g in &report.groups {
        group_markdown(&mut out, g);
    }
    out
}

fn group_markdown(out: &mut String, g: &Group) {
    let per_day = |counts: &[u32]| {
        counts
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        out,
        "\n## {}\n\nTier {}: {}.\n\nConfidence {}{}.\n\nBaseline shared: {}.\n\nPer day of the input, new destinations: {}; destinations seen: {}.\n",
        g.source,
        g.tier,
        g.tier_reason,
        g.confidence.level,
        if g.confidence.reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", g.confidence.reasons.join("; "))
        },
        if g.baseline.is_empty() {
            "none".to_owned()
        } else {
            g.baseline
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        },
        per_day(&g.new_per_day),
        per_day(&g.seen_per_day)
    );
    out.push_str("| destination | ports | addresses | first seen | last seen | flows | note |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for d in &g.destinations {
        let mut note = Vec::new();
        if d.baseline {
            note.push("baseline");
        }
        if d.rotates {
            note.push("rotates");
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&d.target.to_string()),
            ports(&d.ports),
            d.addresses.len(),
            date(d.first_day),
            date(d.last_day),
            d.flows,
            note.join(", ")
        );
    }
    if !g.blocks.is_empty() {
        out.push_str("\nCIDRs allowed (beyond what was seen: the unseen share):\n\n| CIDR | from | addresses seen | holds | unseen | ports |\n| --- | --- | --- | --- | --- | --- |\n");
        for b in &g.blocks {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                b.cidr,
                cell(&origin(b)),
                b.seen,
                b.covers,
                percent(b.unseen_share),
                ports(&b.ports)
            );
        }
    }
    if !g.names_only.is_empty() {
        let _ = writeln!(
            out,
            "\nOnly by name (addresses rotate): {}.",
            g.names_only.join(", ")
        );
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as one self-contained HTML page: the sources' table and an
/// SVG chart of new destinations per day per source (a cell per day,
/// darker for more), then the markdown sections as preformatted text.
pub fn html(report: &Report) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>edgewise egress advice</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}.low{color:#b71c1c}</style></head><body>\n",
    );
    let _ = writeln!(
        out,
        "<h1>Egress advice</h1><p>{}; {} sources by {}.</p>",
        escape(&span(report)),
        report.groups.len(),
        granularity(report)
    );
    out.push_str("<h2>New destinations per day</h2>\n");
    out.push_str(&chart(report));
    out.push_str("<h2>Sources</h2>\n<table id=\"sources\"><tr>");
    for column in SOURCE_COLUMNS {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr>\n");
    for g in &report.groups {
        out.push_str("<tr>");
        let cells = source_cells(g);
        let (confidence, rest) = cells.split_last().unwrap_or((&cells[0], &[]));
        for c in rest {
            let _ = write!(out, "<td>{}</td>", escape(c));
        }
        let _ = writeln!(
            out,
            "<td class=\"{confidence}\" title=\"{}\">{confidence}</td></tr>",
            escape(&g.confidence.reasons.join("; "))
        );
    }
    out.push_str("</table>\n<h2>Details</h2>\n<pre>");
    out.push_str(&escape(&markdown(report)));
    out.push_str("</pre>\n</body></html>\n");
    out
}

/// The chart: a row per source, a column per day, each cell shaded by
/// and labelled with that day's new destinations.
fn chart(report: &Report) -> String {
    const CELL: usize = 28;
    const LABEL: usize = 220;
    let width = LABEL + CELL * report.days.len() + 10;
    let height = CELL * (report.groups.len() + 1) + 10;
    let most = report
        .groups
        .iter()
        .flat_map(|g| g.new_per_day.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = format!(
        "<svg id=\"new-per-day\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-size=\"11\">\n"
    );
    for (column, &day) in report.days.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            LABEL + column * CELL + CELL / 2,
            CELL - 8,
            &date(day)[5..]
        );
    }
    for (row, g) in report.groups.iter().enumerate() {
        let y = CELL * (row + 1);
        let _ = writeln!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + CELL / 2 + 4,
            escape(&g.source.to_string())
        );
        for (column, &count) in g.new_per_day.iter().enumerate() {
            let shade = 255 - count.saturating_mul(200) / most;
            let _ = writeln!(
                svg,
                "<rect class=\"day\" data-source=\"{}\" data-new=\"{count}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"rgb({shade},{shade},255)\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                escape(&g.source.to_string()),
                LABEL + column * CELL,
                CELL - 2,
                CELL - 2,
                LABEL + column * CELL + CELL / 2,
                y + CELL / 2 + 4,
                if count == 0 {
                    String::new()
                } else {
                    count.to_string()
                }
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_764_460_800_000), "2025-11-30");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(-DAY_MS), "1969-12-31");
    }
}
