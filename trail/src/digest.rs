//! The daily digest: what is new in the trail since a time (edges never
//! seen before, new violations, new external destinations) and which
//! agents went silent. As markdown, JSON, or a Slack-compatible webhook
//! payload (`{"text": ...}`). Each run is recorded in `digest_runs`, so
//! the collector's `/metrics` can say when a digest last succeeded
//! (`EdgewiseDigestFailing`).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::TrailError;
use crate::query::{Answer, Kind, Recipe, edge_columns, run};
use crate::rows::{DAY_MS, Value};
use crate::store::Store;
use crate::time::rfc3339;

/// The schema tag of [`Digest::json`] (`schemas/trail-digest.schema.json`).
pub const DIGEST_SCHEMA: &str = "edgewise.trail-digest/v1";

/// New violations: $1 the first hour bucket, $2 the time.
pub const NEW_VIOLATIONS_SQL: &str = "\
SELECT src_label, dst_label, port, proto, max(policy),
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM edges
WHERE verdict = 'violation' AND (src_label, dst_label, port, proto) IN
      (SELECT src_label, dst_label, port, proto FROM edges
       WHERE bucket >= $1 AND verdict = 'violation')
GROUP BY src_label, dst_label, port, proto
HAVING min(first_seen) >= $2
ORDER BY min(first_seen), src_label, dst_label, port";

/// New external destinations per source namespace: $1 the first day, $2
/// the time.
pub const NEW_EXTERNAL_SQL: &str = "\
SELECT src_ns, dst_ip, max(dst_fqdn), port, proto,
       CAST(sum(flow_count) AS BIGINT), min(first_seen), max(last_seen)
FROM external_edges
WHERE (src_ns, dst_ip, port, proto) IN
      (SELECT src_ns, dst_ip, port, proto FROM external_edges WHERE day >= $1)
GROUP BY src_ns, dst_ip, port, proto
HAVING min(first_seen) >= $2
ORDER BY min(first_seen), src_ns, dst_ip, port";

/// The digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Since (Unix milliseconds).
    pub since_ms: i64,
    /// Until (when it was made).
    pub until_ms: i64,
    /// Edges first seen since then.
    pub new_edges: Answer,
    /// Violations first seen since then.
    pub new_violations: Answer,
    /// External destinations first reached since then.
    pub new_external: Answer,
    /// Agents silent for more than the set number of their intervals.
    pub silent_agents: Answer,
}

impl Digest {
    /// Reads the digest since `since_ms` at `now_ms`; agents are silent
    /// after `silent_windows` of their export intervals without a slice.
    ///
    /// # Errors
    /// [`TrailError::Store`].
    pub fn read(
        store: &mut Store,
        since_ms: i64,
        now_ms: i64,
        silent_windows: u32,
    ) -> Result<Self, TrailError> {
        let bucket = since_ms.div_euclid(crate::rows::HOUR_MS) * crate::rows::HOUR_MS;
        let new_edges = Recipe::New { since_ms }.run(store)?;
        let new_violations = run(
            store,
            NEW_VIOLATIONS_SQL,
            &[Value::Int(bucket), Value::Int(since_ms)],
            edge_columns("policy"),
        )?;
        let new_external = run(
            store,
            NEW_EXTERNAL_SQL,
            &[
                Value::Int(since_ms.div_euclid(DAY_MS) * DAY_MS),
                Value::Int(since_ms),
            ],
            vec![
                ("src_namespace", Kind::Text),
                ("dst", Kind::Text),
                ("fqdn", Kind::Text),
                ("port", Kind::Int),
                ("proto", Kind::Text),
                ("flows", Kind::Int),
                ("first_seen", Kind::Time),
                ("last_seen", Kind::Time),
            ],
        )?;
        let mut silent_agents = run(
            store,
            "SELECT agent, last_seen, window_end, interval_ms FROM agents ORDER BY agent",
            &[],
            vec![
                ("agent", Kind::Text),
                ("last_slice", Kind::Time),
                ("last_window_end", Kind::Time),
                ("interval_ms", Kind::Int),
            ],
        )?;
        silent_agents.rows.retain(|row| match row.as_slice() {
            [_, Value::Int(last), _, Value::Int(interval)] => {
                now_ms - last > interval.saturating_mul(i64::from(silent_windows)).max(1000)
            }
            _ => false,
        });
        Ok(Self {
            since_ms,
            until_ms: now_ms,
            new_edges,
            new_violations,
            new_external,
            silent_agents,
        })
    }

    fn sections(&self) -> [(&'static str, &'static str, &Answer); 4] {
        [
            ("new_edges", "New edges", &self.new_edges),
            ("new_violations", "New violations", &self.new_violations),
            (
                "new_external",
                "New external destinations",
                &self.new_external,
            ),
            ("silent_agents", "Silent agents", &self.silent_agents),
        ]
    }

    /// The digest as markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# edgewise digest: {} to {}\n",
            rfc3339(self.since_ms),
            rfc3339(self.until_ms)
        );
        for (_, title, answer) in self.sections() {
            let _ = write!(out, "\n## {title} ({})\n\n", answer.rows.len());
            if answer.rows.is_empty() {
                out.push_str("None.\n");
            } else {
                out.push_str(&answer.markdown());
            }
        }
        out
    }

    /// The digest as one JSON object: `schema` ([`DIGEST_SCHEMA`]),
    /// `since`, `until` and a list of rows per section.
    pub fn json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("schema".into(), DIGEST_SCHEMA.into());
        object.insert("since".into(), rfc3339(self.since_ms).into());
        object.insert("until".into(), rfc3339(self.until_ms).into());
        for (key, _, answer) in self.sections() {
            object.insert(key.into(), answer.json());
        }
        serde_json::Value::Object(object)
    }

    /// A Slack-compatible webhook payload: `{"text": ...}` with the
    /// counts and the first rows of each section.
    pub fn slack(&self) -> serde_json::Value {
        let mut text = format!(
            "*edgewise digest* {} to {}\n",
            rfc3339(self.since_ms),
            rfc3339(self.until_ms)
        );
        for (_, title, answer) in self.sections() {
            let _ = write!(text, "\n*{title}*: {}\n", answer.rows.len());
            for row in answer.rows.iter().take(20) {
                let cells: Vec<String> = row
                    .iter()
                    .take(5)
                    .map(|v| match v {
                        Value::Int(n) => n.to_string(),
                        Value::Text(t) => t.clone(),
                    })
                    .collect();
                let _ = writeln!(text, "• `{}`", cells.join(" "));
            }
            if answer.rows.len() > 20 {
                let _ = writeln!(text, "… and {} more", answer.rows.len() - 20);
            }
        }
        serde_json::json!({ "text": text })
    }

    /// True when there is anything to tell.
    pub fn is_empty(&self) -> bool {
        self.sections().iter().all(|(_, _, a)| a.rows.is_empty())
    }
}

/// Records a digest run at `now_ms` (what `/metrics` reports).
///
/// # Errors
/// [`TrailError::Store`].
pub fn record_run(
    store: &mut Store,
    now_ms: i64,
    ok: bool,
    detail: &str,
) -> Result<(), TrailError> {
    store.execute(
        "INSERT INTO digest_runs (ran_at, ok, detail) VALUES ($1, $2, $3)",
        &[
            Value::Int(now_ms),
            Value::Int(i64::from(ok)),
            Value::Text(detail.chars().take(1000).collect()),
        ],
    )?;
    Ok(())
}

/// Posts `payload` to a webhook `url` (https with the public CAs, or the
/// bundle `ca` when given); a non-2xx answer is an error.
///
/// # Errors
/// [`TrailError::Send`] saying what the webhook answered or why it could
/// not be reached.
pub fn post(url: &str, payload: &serde_json::Value, ca: Option<&Path>) -> Result<(), TrailError> {
    let fail = |problem: String| TrailError::Send {
        url: url.to_owned(),
        problem,
    };
    let mut tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
    if let Some(ca) = ca {
        let bytes = std::fs::read(ca).map_err(|e| fail(format!("{}: {e}", ca.display())))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&bytes)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(fail(format!("{}: no CERTIFICATE block", ca.display())));
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into();
    let response = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(payload.to_string().as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let mut body = String::new();
        let _ = std::io::Read::read_to_string(
            &mut std::io::Read::take(response.into_body().into_reader(), 1024),
            &mut body,
        );
        Err(fail(format!("answered {status}: {}", body.trim())))
    }
}
