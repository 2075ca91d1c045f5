//! What must hold for any input, one function per fuzz target. Shared by the libFuzzer targets
//! (`fuzz/fuzz_targets/`) and the proptest properties (`cli/tests/fuzz_properties.rs`, which
//! includes this file), so both drivers check the same things. Every function panics on a
//! violated property; the parsers themselves must never panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use tower::ServiceExt;
use weightgate_attest::keys::parse_verifying_key;
use weightgate_attest::reading::{
    OpenOptions, ParameterCount, SafetensorsHeader, ShardIndex, check_relative_path,
};
use weightgate_schemas::{Envelope, Grant, Statement};
use weightgate_verifier::gate::admission::{Admission, AdmitRequest, admit};
use weightgate_verifier::gate::audit::AuditLog;
use weightgate_verifier::gate::decision::Gate;
use weightgate_verifier::gate::hub_api::router;
use weightgate_verifier::gate::store::FolderStore;
use weightgate_verifier::policy::Policy;
use weightgate_verifier::stages::check_signatures;
use weightgate_verifier::trust::TrustedKey;

/// The repository's `testdata/` folder.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata")
        .canonicalize()
        .expect("testdata/ next to the crate")
}

/// The tiny checkpoint's headers, by root-relative path, parsed once.
fn tiny_headers() -> &'static Vec<(String, SafetensorsHeader)> {
    static HEADERS: OnceLock<Vec<(String, SafetensorsHeader)>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]
        .iter()
        .map(|name| {
            let bytes =
                std::fs::read(testdata().join("checkpoints/tiny").join(name)).expect("tiny shard");
            let h = SafetensorsHeader::from_file_bytes(&bytes, name).expect("tiny header");
            (name.to_string(), h)
        })
        .collect()
    })
}

/// A whole safetensors file image: refused with an error, or its tensors tile the data section
/// exactly and each tensor's byte length matches its shape.
pub fn safetensors_header(data: &[u8]) {
    let Ok(h) = SafetensorsHeader::from_file_bytes(data, "fuzz.safetensors") else {
        return;
    };
    let data_len = data.len() as u64 - h.data_start();
    let mut next = 0;
    for t in &h.tensors {
        assert_eq!(t.data_offsets[0], next, "tensors do not tile: {t:?}");
        assert!(t.data_offsets[1] >= t.data_offsets[0]);
        next = t.data_offsets[1];
        let elements: u64 = t.shape.iter().product();
        assert_eq!(elements, t.parameters, "{t:?}");
    }
    assert_eq!(next, data_len, "accepted a header not covering the data");
}

/// Index JSON: refused, or every shard it names is a safe relative path; checking it against
/// the tiny checkpoint's headers never panics.
pub fn shard_index(data: &[u8]) {
    let Ok(index) = ShardIndex::parse(data, "model.safetensors.index.json", 4096) else {
        return;
    };
    assert!(index.weight_map.len() <= 4096, "entry cap not applied");
    for shard in index.weight_map.values() {
        assert!(check_relative_path(shard).is_ok(), "unsafe shard {shard:?}");
    }
    let headers: HashMap<&str, &SafetensorsHeader> = tiny_headers()
        .iter()
        .map(|(p, h)| (p.as_str(), h))
        .collect();
    let _ = index.check_against(&headers);
}

fn lab_key() -> &'static TrustedKey {
    static KEY: OnceLock<TrustedKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = std::fs::read_to_string(testdata().join("keys/test-lab.pub")).unwrap();
        let key = parse_verifying_key(&pem, "test-lab.pub").unwrap();
        TrustedKey::new("lab".into(), key, None, None)
    })
}

/// Envelope CBOR plus the signature check: refused, or canonical (re-encodes to the same
/// bytes); checking its signatures never panics and gives one finding per signature.
pub fn envelope(data: &[u8]) {
    let Ok(env) = Envelope::decode_strict(data) else {
        return;
    };
    assert_eq!(env.encode(), data, "accepted a non-canonical envelope");
    let findings = check_signatures(&env, std::slice::from_ref(lab_key()), &[], 1_800_000_000);
    assert_eq!(findings.len(), env.signatures.len());
}

/// Statement (and grant) CBOR: refused, or canonical, printable as JSON, and listing every
/// file once (no exact, case or Unicode-normalization twins).
pub fn statement(data: &[u8]) {
    if let Ok(st) = Statement::decode_strict(data) {
        assert_eq!(st.encode(), data, "accepted a non-canonical statement");
        let mut keys: Vec<String> = st
            .subject
            .files
            .iter()
            .map(|f| weightgate_schemas::equivalence_key(&f.path))
            .collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "accepted a statement listing one file twice");
        let _ = weightgate_schemas::json_view::statement_to_json(&st);
    }
    if let Ok(g) = Grant::decode_strict(data) {
        assert_eq!(g.encode(), data, "accepted a non-canonical grant");
    }
}

/// Claims TOML against the tiny checkpoint's parameter count: refused with an error (whose
/// line number, if any, lies inside the text) or accepted, never a panic.
pub fn claims_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let params = ParameterCount {
        total: 352,
        ..ParameterCount::default()
    };
    match weightgate_attest::signing::Claims::parse(text, "fuzz.toml", &params) {
        Ok(claims) => {
            let _ = claims.check_times(1_800_000_000);
        }
        Err(e) => {
            let lines = text.matches('\n').count() + 1;
            assert!(e.line.is_none_or(|l| l >= 1 && l <= lines), "{e}");
        }
    }
}

/// Policy TOML (key paths resolved from `testdata/policy`): refused with an error or accepted
/// and printable, never a panic.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse(text, "fuzz.toml", &testdata().join("policy")) {
        Ok(p) => {
            let _ = p.effective().to_string();
        }
        Err(e) => {
            let lines = text.matches('\n').count() + 1;
            assert!(e.line.is_none_or(|l| l >= 1 && l <= lines), "{e}");
        }
    }
}

/// OpenSSF model-signing bundle JSON and the in-toto statement in it: refused, or a statement
/// that re-encodes to one decoding to the same manifest (files or shards, any hash type, shard
/// names split at their last two colons; a `model_signing` 0.2 statement re-encodes as v1.0). Certificates in a bundle are parsed and path-validated
/// against themselves as anchors: an error, never a panic. Raw bytes are also tried as one DER
/// certificate and as a shard name.
pub fn oms_bundle(data: &[u8]) {
    use weightgate_schemas::oms::{
        OmsManifest, OmsMaterial, OmsMethod, OmsStatementFormat, decode_bundle, decode_statement,
        split_shard_name,
    };
    if let Ok(b) = decode_bundle(data) {
        let _ = decode_statement(&b.payload);
        if let OmsMaterial::CertificateChain(chain) = &b.material {
            let anchors = chain[1..].to_vec();
            let _ = weightgate_attest::keys::verify_chain(chain, &anchors, 1_800_000_000);
        }
    }
    if let Ok(m) = decode_statement(data) {
        // Re-encoding always writes the v1.0 predicate (a 0.2 statement becomes one).
        let v1 = OmsManifest {
            format: OmsStatementFormat::V1,
            ..m.clone()
        };
        assert_eq!(decode_statement(&m.statement_json()).unwrap(), v1);
        if let OmsMethod::Shards { shard_size } = m.method {
            for r in &m.resources {
                let (_, start, end) = split_shard_name(&r.name).expect("a decoded shard name");
                assert!(start < end && start % shard_size == 0 && end - start <= shard_size);
                assert_eq!(r.digest.len(), m.hash_type.digest_len());
            }
        }
    }
    let _ = weightgate_attest::keys::certificate_key(data, "fuzz");
    let _ = weightgate_attest::keys::verify_chain(&[data.to_vec()], &[data.to_vec()], 0);
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((path, start, end)) = split_shard_name(text)
    {
        assert!(start < end && !path.is_empty());
        assert_eq!(format!("{path}:{start}:{end}"), text);
    }
}

/// A gate over a store shared by several tenants, each admitting the tiny checkpoint:
/// `lab/tiny` and `other/tiny` (the same attestation, allowed except where the destination
/// matters: a test regime above 1e9 operations embargoes CN and RU, so an unknown destination
/// is refused too), `lab/refused` and `other/refused` (an above-threshold statement without its
/// safety framework, admitted before the policy named California's regime and refused per
/// request with 451). The blobs are shared; the destination
/// comes from `CF-IPCountry`. The audit log goes to /dev/null.
pub struct Server {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    refused_revision: String,
    /// Served bytes by path in `lab/tiny`.
    files: HashMap<String, Vec<u8>>,
}

impl Server {
    pub fn new() -> Self {
        let td = testdata();
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(&dir.path().join("store")).unwrap();
        let ck = td.join("checkpoints/tiny");
        let policy_path = dir.path().join("policy.toml");
        let hostile = std::fs::read_to_string(td.join("hostile/policy.toml")).unwrap();
        let keys = td.join("keys");
        let custom = "\n[[custom_regime]]\nid = \"fuzz-embargo\"\nthreshold = \"1e9\"\n\
                      comparator = \">\"\nrequired = []\nembargoed = [\"CN\", \"RU\"]\n";
        let hostile = hostile.replace("../keys", keys.to_str().unwrap()).replace(
            "regimes = [",
            "destination_header = \"CF-IPCountry\"\nregimes = [\"fuzz-embargo\", ",
        );
        std::fs::write(&policy_path, hostile.clone() + custom).unwrap();
        let policy = Policy::load(&policy_path).unwrap();
        // The refused repositories were admitted before the policy gained California's regime
        // (admission refuses a release no destination could be served; the BIS licence covers
        // some), so the gate refuses them per request.
        let before_path = dir.path().join("policy-before.toml");
        let before = hostile.replace(
            "regimes = [\"fuzz-embargo\", \"eu-ai-act-gpai\", \"us-ca-sb53\", \"us-bis-ai-diffusion-2025\"]",
            "regimes = [\"fuzz-embargo\", \"eu-ai-act-gpai\", \"us-bis-ai-diffusion-2025\"]",
        );
        assert_ne!(
            before, hostile,
            "fixture: the regimes line of hostile/policy.toml changed"
        );
        std::fs::write(&before_path, before + custom).unwrap();
        let policy_before = Policy::load(&before_path).unwrap();
        let admit = |repo: &str, att: &str, policy: &Policy| {
            let env = std::fs::read(td.join(att)).unwrap();
            let req = AdmitRequest {
                repo,
                ref_name: "main",
                checkpoint: &ck,
                open: OpenOptions::default(),
                envelope: &env,
                grants: Vec::new(),
                policy,
                oms: None,
                now: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            };
            let admitted = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(admit(&store, &req, &|_| {}));
            match admitted.unwrap() {
                Admission::Admitted { record, .. } => record,
                Admission::Refused(d) => panic!("{repo} not admitted: {:?}", d.reasons),
            }
        };
        admit("lab/tiny", "envelopes/golden_tiny.att", &policy);
        admit("other/tiny", "envelopes/golden_tiny.att", &policy);
        let refused = admit(
            "lab/refused",
            "hostile/statements/fail_framework_missing.att",
            &policy_before,
        );
        admit(
            "other/refused",
            "hostile/statements/fail_framework_missing.att",
            &policy_before,
        );
        let mut files = HashMap::new();
        for e in std::fs::read_dir(&ck).unwrap() {
            let e = e.unwrap();
            files.insert(
                e.file_name().to_str().unwrap().to_string(),
                std::fs::read(e.path()).unwrap(),
            );
        }
        let audit = AuditLog::open(Path::new("/dev/null")).unwrap();
        let gate = std::sync::Arc::new(Gate::new(
            std::sync::Arc::new(store),
            policy_path,
            policy,
            audit,
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = Server {
            _dir: dir,
            runtime,
            app: router(gate),
            refused_revision: refused.revision,
            files,
        };
        // The fixture itself: one file of each repository, allowed and refused.
        let ok = server.get("/lab/tiny/resolve/main/config.json", None);
        assert_eq!(ok.0, StatusCode::OK, "fixture: lab/tiny is not served");
        let no = server.get("/lab/refused/resolve/main/config.json", None);
        assert_eq!(no.0, 451, "fixture: lab/refused is served");
        let dest = |c: &str| server.get_from("/other/tiny/resolve/main/config.json", c).0;
        assert_eq!(
            dest("DE"),
            StatusCode::OK,
            "fixture: other/tiny refused for DE"
        );
        assert_eq!(dest("CN"), 451, "fixture: the embargo does not apply");
        assert_eq!(dest("XX"), 451, "fixture: an unknown destination is served");
        let bare = Request::builder()
            .uri("/other/tiny/resolve/main/config.json")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            server.send(bare).0,
            451,
            "fixture: a request without the destination header is served"
        );
        server
    }

    /// One request through the router: status, headers, body.
    fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        self.runtime.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
            (parts.status, parts.headers, body.to_vec())
        })
    }

    fn get(
        &self,
        uri: &str,
        range: Option<HeaderValue>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        // From an allowed country, as a proxy in front of the gate would say: without the
        // header every request is an unknown destination, which the embargo refuses.
        let mut req = Request::builder().uri(uri).header("cf-ipcountry", "DE");
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        self.send(req.body(Body::empty()).unwrap())
    }

    /// A GET with a destination header.
    fn get_from(&self, uri: &str, country: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let req = Request::builder()
            .uri(uri)
            .header("cf-ipcountry", country)
            .body(Body::empty())
            .unwrap();
        self.send(req)
    }

    /// Whether a response hands out the refused model's file bytes.
    fn serves_refused(&self, status: StatusCode, headers: &axum::http::HeaderMap) -> bool {
        matches!(status.as_u16(), 200 | 206)
            && headers
                .get("x-repo-commit")
                .is_some_and(|c| c.as_bytes() == self.refused_revision.as_bytes())
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

/// Any request path (and method) a client can send: no panic, no 5xx, never the refused
/// model's bytes.
pub fn server_path(server: &Server, data: &[u8]) {
    let (method, path) = match data.split_first() {
        Some((m, rest)) if m & 1 == 1 => (Method::HEAD, rest),
        Some((_, rest)) => (Method::GET, rest),
        None => return,
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    // What hyper would hand the router: anything that is not a valid origin-form URI is
    // refused with 400 before routing.
    let uri = format!("/{path}");
    let Ok(req) = Request::builder()
        .method(method)
        .uri(&uri)
        .body(Body::empty())
    else {
        return;
    };
    let (status, headers, _) = server.send(req);
    assert!(!status.is_server_error(), "{uri}: {status}");
    assert!(
        !server.serves_refused(status, &headers),
        "{uri}: refused model served ({status})"
    );
}

/// Any Range header value on a file of each repository: the refused one always gets 451; the
/// allowed one gets the whole file (200), exactly the bytes its Content-Range names (206), or
/// 416, never anything else.
pub fn server_range(server: &Server, data: &[u8]) {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let Ok(range) = HeaderValue::from_bytes(value) else {
        return;
    };
    let names = ["config.json", "model-00001-of-00002.safetensors"];
    let name = names[usize::from(selector >> 1) % names.len()];
    let repo = if selector & 1 == 1 { "refused" } else { "tiny" };
    let uri = format!("/lab/{repo}/resolve/main/{name}");
    let (status, headers, body) = server.get(&uri, Some(range.clone()));
    if repo == "refused" {
        assert_eq!(status, 451, "{uri} Range {range:?}");
        return;
    }
    let file = &server.files[name];
    match status.as_u16() {
        200 => assert_eq!(&body, file, "{uri} Range {range:?}: 200 with other bytes"),
        206 => {
            let cr = headers
                .get(header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("206 without Content-Range for {range:?}"));
            let (a, b, total) = parse_content_range(cr)
                .unwrap_or_else(|| panic!("bad Content-Range {cr:?} for {range:?}"));
            assert_eq!(total, file.len() as u64, "{cr}");
            assert!(a <= b && b < total, "{cr} for {range:?}");
            assert_eq!(body, file[a as usize..=b as usize], "{cr} for {range:?}");
        }
        416 => {}
        other => panic!("{uri} Range {range:?}: status {other}"),
    }
}

/// `bytes A-B/TOTAL`.
fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let (span, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total.parse().ok()?))
}

/// Any destination header value, on any tenant: the refused model is never served; the two
/// tenants holding the allowed attestation answer alike; the answer is the one for the
/// value's normal form (an assigned ISO 3166-1 alpha-2 code, or an unknown destination,
/// refused with `regime.destination_unknown` because the test regime embargoes some).
pub fn server_destination(server: &Server, data: &[u8]) {
    use weightgate_schemas::country::{UNKNOWN_DESTINATION, normalise_destination};
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let Ok(country) = HeaderValue::from_bytes(value) else {
        return;
    };
    let send = |repo: &str, country: HeaderValue| {
        let req = Request::builder()
            .uri(format!("/{repo}/resolve/main/config.json"))
            .header("cf-ipcountry", country)
            .body(Body::empty())
            .unwrap();
        server.send(req)
    };
    let repos = ["lab/tiny", "other/tiny", "lab/refused", "other/refused"];
    let repo = repos[usize::from(selector) % repos.len()];
    let (status, headers, body) = send(repo, country.clone());
    assert!(!status.is_server_error(), "{repo} {country:?}: {status}");
    assert!(
        !server.serves_refused(status, &headers),
        "{repo} {country:?}: refused model served"
    );
    if repo.ends_with("refused") {
        assert_eq!(status, 451, "{repo} {country:?}");
        return;
    }
    let other = if repo == "lab/tiny" {
        "other/tiny"
    } else {
        "lab/tiny"
    };
    assert_eq!(
        send(other, country.clone()).0,
        status,
        "tenants differ for {country:?}"
    );
    let normal = std::str::from_utf8(value).map_or(UNKNOWN_DESTINATION, normalise_destination);
    let canonical = if normal == UNKNOWN_DESTINATION {
        "XX"
    } else {
        normal
    };
    assert_eq!(
        send(repo, HeaderValue::from_static(canonical)).0,
        status,
        "{country:?} answered unlike its normal form {canonical}"
    );
    if normal == UNKNOWN_DESTINATION {
        assert_eq!(status, 451, "unknown destination {country:?} served");
        assert!(
            String::from_utf8_lossy(&body).contains("regime.destination_unknown"),
            "{country:?}"
        );
    }
}
