//! The pages' markup. Every value is spliced with maud's `(...)`, which escapes it; nothing here
//! uses `PreEscaped`. Strings that come from an attestation, a claim, a header or a file name
//! are also wrapped in `<bdi>`, so a right-to-left override in one cannot reorder the text
//! around it.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use weightgate_schemas::Ops;
use weightgate_schemas::country::ISO3166_ALPHA2;

use super::compute_axis::{ThresholdMark, picture};
use super::facts::ClaimFacts;
use super::{ICON_PATH, STYLESHEET_PATH};
use crate::decision::{Decision, RegimeResult};
use crate::gate::decision::Verdict;
use crate::gate::disclosure;
use crate::gate::store::RevisionRecord;
use crate::policy::Policy;

/// One repository on `/`.
pub struct RepoRow {
    pub repo: String,
    pub ref_name: String,
    pub revision: String,
    pub admitted_at: i64,
    /// `None` when no decision could be made.
    pub allowed: Option<bool>,
}

pub struct IndexView<'a> {
    pub rows: Vec<RepoRow>,
    /// Matching repositories not listed.
    pub more: usize,
    pub query: &'a str,
    pub decision: &'a str,
    pub destination: Option<&'a str>,
}

/// One ref of a repository.
pub struct RefRow {
    pub name: String,
    pub revision: String,
    pub admitted_at: Option<i64>,
}

pub struct RevisionView<'a> {
    pub repo: &'a str,
    pub rev_asked: &'a str,
    pub record: &'a RevisionRecord,
    pub verdict: &'a Verdict,
    pub destination: Option<&'a str>,
    pub destination_header: Option<&'a str>,
    /// The destination the visitor picked and its verdict.
    pub picked: Option<(&'a str, &'a Verdict)>,
    /// Present only when the revision is allowed for the requester.
    pub claims: Option<&'a ClaimFacts>,
    pub base_link: Option<&'a (String, String)>,
    pub revisions: &'a [RefRow],
    pub policy: &'a Policy,
    pub origin: String,
}

/// A string someone else wrote: escaped (as every splice) and isolated from the text around it.
fn untrusted(s: &str) -> Markup {
    html! { bdi { (s) } }
}

fn date(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |t| t.to_string())
}

fn day(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map_or_else(|_| t.to_string(), |t| t.strftime("%Y-%m-%d").to_string())
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn where_to(destination: Option<&str>) -> String {
    match destination {
        Some(d) => format!("destination {d}"),
        None => "requests without a destination".to_string(),
    }
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · weightgate" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                link rel="icon" type="image/svg+xml" href=(ICON_PATH);
            }
            body {
                header class="site" {
                    a href="/" { "weightgate gate" }
                    span class="tagline" { "models served only as the policy allows" }
                }
                main id="main" { (body) }
                footer class="site" {
                    p { "Rendered by the gate from its decisions; no script runs on this page." }
                }
            }
        }
    }
}

fn badge(allowed: Option<bool>, destination: Option<&str>) -> Markup {
    let (class, word) = match allowed {
        Some(true) => ("badge allowed", "Allowed"),
        Some(false) => ("badge refused", "Refused"),
        None => ("badge unknown", "Undecided"),
    };
    html! {
        span class=(class) data-allowed=(allowed.map_or("unknown", |a| if a { "true" } else { "false" })) {
            span class="badge-word" { (word) }
            " for " (where_to(destination))
        }
    }
}

pub fn index(v: &IndexView) -> Markup {
    layout(
        "Models",
        html! {
            h1 { "Models on this gate" }
            p { "Decisions are for " (where_to(v.destination)) ", now." }
            form class="filter" method="get" action="/" {
                label for="q" { "Name contains" }
                input id="q" name="q" type="search" value=(v.query);
                label for="decision" { "Decision" }
                select id="decision" name="decision" {
                    @for (value, label) in [("", "any"), ("allowed", "allowed"), ("refused", "refused")] {
                        option value=(value) selected[v.decision == value] { (label) }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if v.rows.is_empty() {
                p class="empty" { "No repository matches." }
            } @else {
                table class="repos" {
                    caption { "Repositories, their latest revision and its decision" }
                    thead { tr { th scope="col" { "Repository" } th scope="col" { "Ref" } th scope="col" { "Revision" } th scope="col" { "Admitted" } th scope="col" { "Decision" } } }
                    tbody {
                        @for r in &v.rows {
                            tr {
                                td { a href={ "/" (r.repo) } { (r.repo) } }
                                td { (untrusted(&r.ref_name)) }
                                td { a href={ "/" (r.repo) "/tree/" (r.revision) } { code { (&r.revision[..12.min(r.revision.len())]) } } }
                                td { (date(r.admitted_at)) }
                                td { (badge(r.allowed, v.destination)) }
                            }
                        }
                    }
                }
            }
            @if v.more > 0 {
                p { (v.more) " more match; narrow the filter to see them." }
            }
        },
    )
}

pub fn error(status: StatusCode, message: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p { (message) }
            p { a href="/" { "All models on this gate" } }
        },
    )
}

fn result_words(r: RegimeResult) -> &'static str {
    match r {
        RegimeResult::Skipped => "not applicable",
        RegimeResult::Transitional => "transitional period",
        RegimeResult::BelowThreshold => "below threshold",
        RegimeResult::ReferenceOk => "above threshold, requirements met",
        RegimeResult::Denied => "refused",
    }
}

/// The regimes' verdicts; their reasons only where the requester may see the revision's facts
/// (`full`): a refused revision's notes and details quote compute figures and reference numbers,
/// which the gate withholds on every route (`disclosure.rs`).
fn regime_table(d: &Decision, policy: &Policy, caption: &str, id: &str, full: bool) -> Markup {
    html! {
        table class="regimes" id=(id) {
            caption { (caption) }
            thead { tr { th scope="col" { "Regime" } th scope="col" { "Verdict" } th scope="col" { "Why" } } }
            tbody {
                @for r in d.facts.regimes.iter().filter(|r| !r.historical) {
                    @let title = policy.regimes.iter().find(|p| p.id == r.id).map(|p| p.title.as_str());
                    tr data-regime=(r.id) data-result=(result_words(r.result)) {
                        th scope="row" { (r.id) @if let Some(t) = title { br; span class="regime-title" { (t) } } }
                        td class={ "verdict " (if r.result == RegimeResult::Denied { "refused" } else { "ok" }) } { (result_words(r.result)) }
                        td {
                            @if full {
                                (untrusted(&r.detail))
                                @for n in &r.notes { br; span class="note" { (untrusted(n)) } }
                            } @else if r.result == RegimeResult::Denied {
                                "refused: the reasons are listed above"
                            } @else {
                                "withheld for a refused revision"
                            }
                        }
                    }
                }
                @if d.facts.regimes.iter().all(|r| r.historical) {
                    tr { td colspan="3" { "No regime was evaluated." } }
                }
            }
        }
    }
}

fn decision_section(v: &RevisionView) -> Markup {
    let d = &v.verdict.decision;
    html! {
        section aria-labelledby="decision-heading" {
            h2 id="decision-heading" { "Decision" }
            p class="decision" { (badge(Some(d.allowed), v.destination)) }
            p class="small" {
                "Decided at " (date(d.facts.now)) " under the policy “" (v.policy.name) "”"
                @if let Some(h) = v.destination_header { ", destination read from the " code { (h) } " header" }
                "."
            }
            @if let Some(r) = &v.verdict.refusal {
                div class="refusal" id="refusal" {
                    h3 { "Why it is refused" }
                    p class="refusal-message" { (untrusted(&r.message)) }
                    ul {
                        @for reason in &d.reasons {
                            li { code { (reason.code) } ": " (untrusted(&disclosure::public_reason(&reason.problem))) }
                        }
                    }
                }
            }
            (regime_table(d, v.policy, &format!("Regimes for {}", where_to(v.destination)), "regimes-requester", d.allowed))
            form class="picker" method="get" action="" {
                label for="destination" { "Check another destination" }
                select id="destination" name="destination" {
                    option value="" { "choose a country" }
                    @for c in ISO3166_ALPHA2 {
                        option value=(c) selected[v.picked.is_some_and(|(p, _)| p == c)] { (c) }
                    }
                }
                button type="submit" { "Show" }
            }
            @if let Some((dest, verdict)) = v.picked {
                div class="picked" id="picked" {
                    p { (badge(Some(verdict.decision.allowed), Some(dest))) }
                    @if let Some(r) = &verdict.refusal {
                        p class="refusal-message" { (untrusted(&r.message)) }
                    }
                    (regime_table(&verdict.decision, v.policy, &format!("Regimes for destination {dest}"), "regimes-picked", d.allowed))
                }
            }
        }
    }
}

fn parse_ops(s: Option<&str>) -> Option<Ops> {
    s.and_then(|s| s.parse::<u128>().ok()).map(Ops)
}

fn compute_section(v: &RevisionView) -> Markup {
    let f = &v.verdict.decision.facts;
    let full = v.verdict.decision.allowed;
    let claimed = parse_ops(f.total_ops.as_deref()).filter(|_| full);
    let implied = v.claims.and_then(|c| {
        let low = c.estimates.iter().map(|e| e.ops).min()?;
        let high = c.estimates.iter().map(|e| e.ops).max()?;
        Some((Ops(low), Ops(high)))
    });
    let mut marks: Vec<ThresholdMark> = Vec::new();
    for r in f.regimes.iter().filter(|r| !r.historical) {
        if let Some(p) = v.policy.regimes.iter().find(|p| p.id == r.id)
            && !marks.iter().any(|m| m.regime == p.id)
        {
            marks.push(ThresholdMark {
                regime: &p.id,
                ops: p.threshold,
            });
        }
    }
    html! {
        section aria-labelledby="compute-heading" {
            h2 id="compute-heading" { "Training compute" }
            (picture(claimed, implied, &marks, "compute-summary"))
            p id="compute-summary" {
                @match claimed {
                    Some(c) => {
                        "Claimed total: " (c.to_scientific()) " operations."
                        @for m in &marks {
                            " " (m.regime) ": threshold " (m.ops.to_scientific()) ", the claim is "
                            (if c.0 > m.ops.0 { "above" } else if c.0 < m.ops.0 { "below" } else { "at" }) "."
                        }
                    }
                    None if !full => { "The claim is withheld for a refused revision; the thresholds are the policy's." }
                    None => { "No compute claim was read." }
                }
            }
            @if let Some(c) = v.claims {
                @let comp = &c.statement.compute;
                table class="facts" {
                    caption { "The claim and its inputs" }
                    tbody {
                        tr { th scope="row" { "Method" } td { (comp.method) } }
                        tr { th scope="row" { "Pre-training" } td { (comp.components.pre_training.to_scientific()) } }
                        tr { th scope="row" { "Post-training" } td { (comp.components.post_training.to_scientific()) } }
                        tr { th scope="row" { "Synthetic data" } td { (comp.components.synthetic_data.to_scientific()) } }
                        @if let Some(a) = &comp.inputs.accelerator {
                            tr { th scope="row" { "Accelerator" } td { (untrusted(a))
                                @if let Some(n) = comp.inputs.accelerator_count { " × " (n) } } }
                        }
                        @for e in &c.estimates {
                            tr { th scope="row" { "Estimate (" (e.method) ")" } td { (Ops(e.ops).to_scientific()) " = " (e.formula) } }
                        }
                    }
                }
            }
        }
    }
}

fn who_section(v: &RevisionView) -> Markup {
    let f = &v.verdict.decision.facts;
    let key_name = |keyid: &str| {
        v.policy
            .trusted_keys
            .iter()
            .find(|k| k.keyid == keyid)
            .map(|k| k.name.clone())
    };
    html! {
        section aria-labelledby="who-heading" {
            h2 id="who-heading" { "Who answers for it" }
            table class="facts" id="entity" {
                caption { "Responsible entity" }
                tbody {
                    tr { th scope="row" { "Name" } td { @if let Some(e) = &f.entity { (untrusted(e)) } } }
                    tr { th scope="row" { "LEI" } td { @if let Some(l) = &f.lei { code { (untrusted(l)) } } } }
                    tr { th scope="row" { "Country" } td { @if let Some(c) = &f.country { (untrusted(c)) } } }
                    @if let Some(c) = v.claims {
                        tr { th scope="row" { "Parent's country" } td { (untrusted(&c.statement.entity.parent_country)) } }
                        tr { th scope="row" { "Contact" } td { (untrusted(&c.statement.entity.contact)) } }
                    }
                }
            }
            table class="keys" id="signers" {
                caption { "Signatures on the attestation" }
                thead { tr { th scope="col" { "Role" } th scope="col" { "Key id" } th scope="col" { "Trusted key" } th scope="col" { "Counted now" } } }
                tbody {
                    @match v.claims {
                        Some(c) => {
                            @for (i, keyid) in c.signature_keyids.iter().enumerate() {
                                tr {
                                    td { (if i == 0 { "signer" } else { "cosigner" }) }
                                    td { code class="digest" { (untrusted(keyid)) } }
                                    td { @if let Some(n) = key_name(keyid) { (n) } @else { "not trusted by this policy" } }
                                    td { (if f.signers.contains(keyid) { "yes" } else { "no" }) }
                                }
                            }
                        }
                        None => {
                            @for keyid in &f.signers {
                                tr {
                                    td { "valid signature" }
                                    td { code class="digest" { (keyid) } }
                                    td { @if let Some(n) = key_name(keyid) { (n) } }
                                    td { "yes" }
                                }
                            }
                        }
                    }
                }
            }
            p id="model-sig" {
                "OpenSSF model signature (" code { "model.sig" } "): "
                @if v.record.model_sig {
                    "checked at admission"
                    @if let Some(s) = &f.oms_signer { ", signed by " (untrusted(s)) }
                    @if let Some(r) = &f.oms_root_sha256 { ", root " code class="digest" { (r) } }
                    "."
                } @else {
                    "none was checked at admission."
                }
            }
        }
    }
}

fn claims_section(v: &RevisionView, c: &ClaimFacts) -> Markup {
    let st = &c.statement;
    let issuer = |keyids: &[String]| {
        keyids
            .iter()
            .find_map(|id| {
                v.policy
                    .issuers
                    .iter()
                    .find(|i| &i.key.keyid == id)
                    .map(|i| format!("{} ({})", i.authority, i.key.name))
            })
            .unwrap_or_else(|| "an issuer this policy does not trust".to_string())
    };
    html! {
        section aria-labelledby="lineage-heading" {
            h2 id="lineage-heading" { "Lineage" }
            @match &st.compute.components.base_model {
                Some(b) => {
                    p id="base-model" {
                        "Derived from "
                        @match v.base_link {
                            Some((repo, rev)) => { a href={ "/" (repo) "/tree/" (rev) } { (untrusted(&b.name)) } }
                            None => { (untrusted(&b.name)) " (not held by this gate)" }
                        }
                        ", root " code class="digest" { (b.root_sha256.to_hex()) }
                        @if let Some(ops) = b.ops { ", " (ops.to_scientific()) " operations" }
                        "."
                    }
                }
                None => { p { "Not derived from another model." } }
            }
            @for l in &v.verdict.decision.facts.lineage { p class="note" { (untrusted(l)) } }
        }
        section aria-labelledby="references-heading" {
            h2 id="references-heading" { "References and grants" }
            table class="references" {
                caption { "References the attestation claims" }
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Authority" } th scope="col" { "Number" } th scope="col" { "Valid" } th scope="col" { "Destinations" } } }
                tbody {
                    @for r in &st.references {
                        tr {
                            td { (r.kind.as_str()) }
                            td { (untrusted(&r.authority)) }
                            td { (untrusted(&r.number)) }
                            td { (day(r.valid_from)) " to " @match r.valid_until { Some(u) => { (day(u)) } None => { "open-ended" } } }
                            td { @if r.destinations.is_empty() { "all" } @else { (untrusted(&r.destinations.join(", "))) } }
                        }
                    }
                    @if st.references.is_empty() { tr { td colspan="5" { "None." } } }
                }
            }
            table class="grants" {
                caption { "Countersigned grants admitted with it" }
                thead { tr { th scope="col" { "Issuer" } th scope="col" { "Reference" } th scope="col" { "Issued" } th scope="col" { "Valid" } th scope="col" { "Destinations" } } }
                tbody {
                    @for g in &c.grants {
                        @let r = &g.grant.reference;
                        tr {
                            td { (untrusted(&issuer(&g.keyids))) }
                            td { (r.kind.as_str()) " " (untrusted(&r.number)) }
                            td { (day(g.grant.issued_at)) }
                            td { (day(r.valid_from)) " to " @match r.valid_until { Some(u) => { (day(u)) } None => { "open-ended" } } }
                            td { @if r.destinations.is_empty() { "all" } @else { (untrusted(&r.destinations.join(", "))) } }
                        }
                    }
                    @if c.grants.is_empty() { tr { td colspan="5" { "None." } } }
                }
            }
        }
    }
}

/// Names and sizes; the SHA-256 only where the revision would be served (`disclosure.rs`).
fn files_section(v: &RevisionView) -> Markup {
    let m = v.record;
    let full = v.verdict.decision.allowed;
    let files = m.files.iter().map(|f| (&f.path, f.size, &f.sha256)).chain(
        m.signature_files
            .iter()
            .map(|f| (&f.path, f.size, &f.sha256)),
    );
    html! {
        section aria-labelledby="files-heading" {
            h2 id="files-heading" { "Files" }
            table class="files" id="files" {
                caption { (m.files.len()) " attested files and the signature files served beside them" }
                thead { tr { th scope="col" { "Path" } th scope="col" { "Size" } @if full { th scope="col" { "SHA-256" } } } }
                tbody {
                    @for (path, bytes, sha256) in files {
                        tr {
                            td class="path" { (untrusted(path)) }
                            td class="size" data-bytes=(bytes) { (size(bytes)) }
                            @if full { td { code class="digest" { (sha256) } } }
                        }
                    }
                }
            }
        }
    }
}

fn check_yourself(v: &RevisionView) -> Markup {
    let m = v.record;
    html! {
        section aria-labelledby="check-heading" {
            h2 id="check-heading" { "Check it yourself" }
            p { "Download this revision with the Hugging Face client, then verify it against your own policy:" }
            pre id="commands" { code {
                "HF_ENDPOINT=" (v.origin) " hf download " (v.repo) " --revision " (m.revision) "\n"
                "weightgate verify --hf " (v.repo) "@" (m.revision) " --policy YOUR-POLICY.toml"
            } }
        }
    }
}

pub fn revision(v: &RevisionView) -> Markup {
    let m = v.record;
    let f = &v.verdict.decision.facts;
    // A refused revision shows what every route shows of it: names, sizes, the revision and
    // its date, and why (`disclosure.rs`); none of the statement's facts.
    let full = v.verdict.decision.allowed;
    layout(
        v.repo,
        html! {
            h1 {
                (v.repo)
                @if let Some(name) = f.model.as_ref().filter(|_| full) { " " span class="model-name" { "(" (untrusted(name))
                    @if let Some(ver) = &f.version { " " (untrusted(ver)) } ")" } }
            }
            p class="small" {
                "Revision " code { (m.revision) }
                @if v.rev_asked != m.revision { " (" (untrusted(v.rev_asked)) ")" }
                ", admitted " (date(m.admitted_at))
                @if let Some(t) = f.issued_at.filter(|_| full) { ", attested " (date(t)) }
                @if let Some(t) = f.expires_at.filter(|_| full) { ", attestation expires " (date(t)) }
                "."
            }
            (decision_section(v))
            @if full {
                (who_section(v))
            } @else {
                section aria-labelledby="who-heading" {
                    h2 id="who-heading" { "Who answers for it" }
                    p id="who-withheld" { "The responsible entity, the signers and the model signature are shown only where this gate would serve the revision." }
                }
            }
            (compute_section(v))
            @match v.claims {
                Some(c) => { (claims_section(v, c)) }
                None => {
                    section aria-labelledby="withheld-heading" {
                        h2 id="withheld-heading" { "Claims" }
                        p id="withheld" { "The attestation's lineage, references and grants are shown only where this gate would serve the revision; the refusal above says why it would not." }
                    }
                }
            }
            section aria-labelledby="revisions-heading" {
                h2 id="revisions-heading" { "Revisions" }
                table class="revisions" {
                    caption { "Refs of " (v.repo) }
                    thead { tr { th scope="col" { "Ref" } th scope="col" { "Revision" } th scope="col" { "Admitted" } } }
                    tbody {
                        @for r in v.revisions {
                            tr {
                                td { (untrusted(&r.name)) }
                                td { a href={ "/" (v.repo) "/tree/" (r.revision) } { code { (r.revision) } } }
                                td { @if let Some(t) = r.admitted_at { (date(t)) } }
                            }
                        }
                    }
                }
            }
            (files_section(v))
            (check_yourself(v))
        },
    )
}
