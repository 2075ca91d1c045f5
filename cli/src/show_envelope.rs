//! `weightgate inspect ENVELOPE`: an attestation or grant for people, or as JSON.

use std::path::Path;

use anyhow::Context;
use sha2::Digest as _;
use weightgate_schemas::EstimationMethod;
use weightgate_schemas::{
    ATTESTATION_PAYLOAD_TYPE, Envelope, GRANT_PAYLOAD_TYPE, Grant, Statement, json_view,
};

use weightgate_verifier::inputs::{InputKind, read_input};

use crate::Exit;
use crate::terminal::say;
use crate::time_arg::show;

/// True when `path` looks like an envelope rather than a checkpoint.
pub fn is_envelope(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "att" || e == "grant")
}

pub fn run(path: &Path, json: bool) -> anyhow::Result<Exit> {
    let bytes = read_input(path, InputKind::Envelope)?;
    let envelope = Envelope::decode_strict(&bytes)
        .with_context(|| format!("{}: not a weightgate envelope", path.display()))?;
    let payload = match envelope.payload_type.as_str() {
        ATTESTATION_PAYLOAD_TYPE => Payload::Statement(Box::new(
            Statement::decode_strict(&envelope.payload)
                .with_context(|| format!("{}: payload", path.display()))?,
        )),
        GRANT_PAYLOAD_TYPE => Payload::Grant(
            Grant::decode_strict(&envelope.payload)
                .with_context(|| format!("{}: payload", path.display()))?,
        ),
        other => anyhow::bail!("{}: unknown payload type `{other}`", path.display()),
    };
    // What a policy's `[revoked] attestations` / `grants` lists: cosigning does not change it.
    let payload_sha256 = hex::encode(sha2::Sha256::digest(&envelope.payload));
    if json {
        let mut doc = json_view::envelope_to_json(&envelope);
        doc["payload_sha256"] = serde_json::json!(payload_sha256);
        doc["statement"] = match &payload {
            Payload::Statement(s) => json_view::statement_to_json(s),
            Payload::Grant(g) => serde_json::to_value(g)?,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Ok);
    }
    say!("envelope {} ({} bytes)", path.display(), bytes.len());
    say!("  payload type {}", envelope.payload_type);
    say!("  payload sha256 {payload_sha256} (what a policy's [revoked] list names)");
    for s in &envelope.signatures {
        say!(
            "  signature by key {} (not checked here; use `verify`)",
            s.keyid
        );
    }
    match payload {
        Payload::Statement(s) => print_statement(&s),
        Payload::Grant(g) => {
            say!(
                "grant: {} {} from {} for root sha256:{}",
                words(g.reference.kind.as_str()),
                g.reference.number,
                g.reference.authority,
                g.root_sha256.to_hex()
            );
        }
    }
    Ok(Exit::Ok)
}

enum Payload {
    Statement(Box<Statement>),
    Grant(Grant),
}

fn print_statement(s: &Statement) {
    say!(
        "model {} {} ({})",
        s.model.name,
        s.model.version,
        if s.model.open_weights {
            "open weights"
        } else {
            "closed weights"
        }
    );
    say!(
        "  root sha256:{}  {}",
        s.subject.root_sha256.to_hex(),
        crate::count(s.subject.files.len(), "file")
    );
    for f in &s.subject.files {
        say!("    {:>14}  {}", f.size, f.path);
    }
    let c = &s.compute;
    say!(
        "compute {} operations ({})",
        c.total,
        match c.method {
            EstimationMethod::SixNd => "estimated as 6 x parameters x tokens",
            EstimationMethod::Hardware =>
                "estimated as accelerators x hours x peak FLOP/s x utilisation",
            EstimationMethod::Measured => "measured",
        }
    );
    say!(
        "  pre-training {}, post-training {}, synthetic data {}",
        c.components.pre_training,
        c.components.post_training,
        c.components.synthetic_data
    );
    if let Some(b) = &c.components.base_model {
        say!(
            "  base model {} ({} operations, root {})",
            b.name,
            b.ops
                .map_or_else(|| "unknown".to_string(), |o| o.to_string()),
            b.root_sha256.to_hex()
        );
    }
    let e = &s.entity;
    say!(
        "entity {} ({}, {}; parent in {}; {})",
        e.legal_name,
        e.lei
            .as_ref()
            .map_or_else(|| "no LEI".to_string(), |l| format!("LEI {l}")),
        e.country,
        e.parent_country,
        e.contact
    );
    if let Some(r) = &e.revenue {
        println!(
            "  revenue {} USD with affiliates, fiscal year {}",
            r.usd, r.fiscal_year
        );
    }
    if let Some(p) = s.model.placed_on_market {
        println!("placed on the EU market {}", show(p));
    }
    for r in &s.references {
        say!(
            "reference {} {} from {} for {} from {} until {}",
            words(r.kind.as_str()),
            r.number,
            r.authority,
            if r.destinations.is_empty() {
                "all destinations".to_string()
            } else {
                r.destinations.join(",")
            },
            show(r.valid_from),
            r.valid_until.map_or("open".to_string(), show)
        );
        if r.holder.is_some() || r.made_at.is_some() {
            println!(
                "  held by {}, made {}",
                r.holder.as_deref().unwrap_or("(not stated)"),
                r.made_at.map_or("(not stated)".to_string(), show)
            );
        }
    }
    say!(
        "issued {}{}",
        show(s.issued_at),
        s.expires_at
            .map_or(String::new(), |e| format!(", expires {}", show(e)))
    );
}

/// A wire name as words: `export-licence` is "export licence".
fn words(wire: &str) -> String {
    wire.replace('-', " ")
}
