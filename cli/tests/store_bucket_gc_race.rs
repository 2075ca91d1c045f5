//! `store gc` interleaved with an admission that reuses old unreferenced objects, on a real
//! bucket (SeaweedFS). The order is forced, not hoped for: gc (and in one schedule the
//! admission) talk to the bucket through a forwarding proxy that holds chosen requests until
//! the other process has reached a given point. Afterwards the admitted revision is served
//! whole, or the admission failed with a message and the gate answers 503 (never 500, never
//! other bytes) with a log line until it is admitted again.

use crate::common;
use crate::support::seaweed;
use crate::support::serve;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{attest_as_lab, copy_dir, policy_trusting, testdata};
use seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};
use serve::Server;

/// How long a held request waits for its condition before the test fails.
const HOLD_LIMIT: Duration = Duration::from_secs(20);

/// A flag a proxy hook waits on.
#[derive(Clone, Default)]
struct Signal(Arc<(Mutex<bool>, Condvar)>);

impl Signal {
    fn raise(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
    fn is_raised(&self) -> bool {
        *self.0.0.lock().unwrap()
    }
    fn wait(&self, what: &str) {
        let (lock, cv) = &*self.0;
        let (raised, timeout) = cv
            .wait_timeout_while(lock.lock().unwrap(), HOLD_LIMIT, |r| !*r)
            .unwrap();
        assert!(*raised && !timeout.timed_out(), "never happened: {what}");
    }
}

/// What the proxy calls with each request (method, target, body) before forwarding it; it
/// may block to hold the request.
type Hook = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// An HTTP/1.1 forwarding proxy in front of the S3 gateway. Requests pass byte for byte (the
/// SigV4 signature covers the `Host` the client sent, which the gateway checks as received).
struct Proxy {
    url: String,
}

impl Proxy {
    fn start(upstream: String, hook: Hook) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let (upstream, hook) = (upstream.clone(), hook.clone());
                std::thread::spawn(move || forward(client, &upstream, &hook));
            }
        });
        Proxy { url }
    }
}

/// One client connection: requests parsed one by one (head and `Content-Length` or chunked
/// body), each shown to the hook, then written upstream; responses copied back as they come.
fn forward(client: TcpStream, upstream: &str, hook: &Hook) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let (mut back_from, mut back_to) = (server.try_clone().unwrap(), client.try_clone().unwrap());
    let responses = std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(std::net::Shutdown::Both);
    });
    let mut to_server = server;
    let mut from_client = BufReader::new(client);
    loop {
        let mut head = Vec::new();
        let (mut length, mut chunked) = (0usize, false);
        loop {
            let mut line = String::new();
            match from_client.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = to_server.shutdown(std::net::Shutdown::Write);
                    let _ = responses.join();
                    return;
                }
                Ok(_) => {}
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            head.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size_line = String::new();
                from_client.read_line(&mut size_line).unwrap();
                body.extend_from_slice(size_line.as_bytes());
                let size =
                    usize::from_str_radix(size_line.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                from_client.read_exact(&mut chunk).unwrap();
                body.extend_from_slice(&chunk);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length, 0);
            from_client.read_exact(&mut body).unwrap();
        }
        let request_line = String::from_utf8_lossy(&head);
        let mut words = request_line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        hook(method, target, &String::from_utf8_lossy(&body));
        if to_server.write_all(&head).is_err() || to_server.write_all(&body).is_err() {
            return;
        }
    }
}

/// One S3 request signed by curl, straight to the gateway: (status, body).
fn s3(sw: &Seaweed, method: &str, path_and_query: &str) -> (u16, String) {
    let o = Command::new("curl")
        .args(["-s", "-g", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .arg(format!("{}/{BUCKET}{path_and_query}", sw.endpoint()))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Every key under `prefix/`, sorted.
fn keys(sw: &Seaweed, prefix: &str) -> Vec<String> {
    let query = format!("?list-type=2&prefix={}%2F", prefix.replace('/', "%2F"));
    let (code, body) = s3(sw, "GET", &query);
    assert_eq!(code, 200, "{body}");
    let mut out: Vec<String> = body
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// `weightgate ARGS` against the bucket at `endpoint` (the gateway or a proxy in front of it).
fn weightgate(sw: &Seaweed, endpoint: &str, args: &[&str]) -> Child {
    sw.command(env!("CARGO_BIN_EXE_weightgate"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: Child) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    (
        status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    )
}

struct Fixture {
    sw: Seaweed,
    dir: tempfile::TempDir,
    ck: PathBuf,
    policy: PathBuf,
}

impl Fixture {
    fn admit(&self, endpoint: &str, prefix: &str, repo: &str) -> Child {
        weightgate(
            &self.sw,
            endpoint,
            &[
                "admit",
                self.ck.to_str().unwrap(),
                "--repo",
                repo,
                "--store",
                &self.sw.url(prefix),
                "--policy",
                self.policy.to_str().unwrap(),
                "--quiet",
            ],
        )
    }

    fn gc(&self, endpoint: &str, prefix: &str) -> Child {
        weightgate(
            &self.sw,
            endpoint,
            &[
                "store",
                "gc",
                "--store",
                &self.sw.url(prefix),
                "--grace",
                "0s",
            ],
        )
    }

    /// Admits the checkpoint as `lab/old` under `prefix`, then removes that repo's records:
    /// every blob and the envelope are left unreferenced, for the next admission to reuse.
    fn orphaned_store(&self, prefix: &str) {
        let (code, out) = finished(self.admit(&self.sw.endpoint(), prefix, "lab/old"));
        assert_eq!(code, 0, "{out}");
        for key in keys(&self.sw, &format!("{prefix}/repos")) {
            assert_eq!(s3(&self.sw, "DELETE", &format!("/{key}")).0, 204, "{key}");
        }
    }

    fn serve(&self, prefix: &str) -> Server {
        let mut cmd = self.sw.command(env!("CARGO_BIN_EXE_weightgate"));
        cmd.args(["serve", "--store", &self.sw.url(prefix), "--policy"])
            .arg(&self.policy)
            .arg("--audit-log")
            .arg(self.dir.path().join(format!("audit-{prefix}.jsonl")))
            .args(["--listen", "127.0.0.1:0"]);
        Server::spawn(cmd)
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(&self.ck)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n != "weightgate.att")
            .map(|n| {
                let bytes = std::fs::read(self.ck.join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// Every file of `repo` downloaded through the gate: each is 200 with the checkpoint's
    /// bytes, or 503 (a stored object missing). Returns how many were 503.
    fn download_all(&self, server: &Server, repo: &str) -> usize {
        let mut unavailable = 0;
        for (name, bytes) in self.files() {
            let (status, body) =
                common::http_get(&server.addr, &format!("/{repo}/resolve/main/{name}"), &[]);
            match status {
                200 => assert!(body == bytes, "{name}: other bytes served"),
                503 => {
                    assert!(
                        String::from_utf8_lossy(&body).contains("is missing"),
                        "{name}: {}",
                        String::from_utf8_lossy(&body)
                    );
                    unavailable += 1;
                }
                other => panic!("{name}: status {other}: {}", String::from_utf8_lossy(&body)),
            }
        }
        unavailable
    }
}

fn fixture() -> Fixture {
    let sw = Seaweed::start();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model");
    copy_dir(&testdata().join("checkpoints/tiny"), &ck);
    attest_as_lab(&ck);
    let policy = policy_trusting(dir.path(), &["test-lab"], "");
    Fixture {
        sw,
        dir,
        ck,
        policy,
    }
}

/// Waits until `child` exits, keeping its output.
fn wait_exit(child: Child, what: &str) -> (i32, String) {
    let started = Instant::now();
    let out = finished(child);
    assert!(started.elapsed() < HOLD_LIMIT * 2, "{what} hung");
    out
}

#[test]
fn gc_interleaved_with_an_admission_that_reuses_objects_never_breaks_a_served_revision() {
    let fx = fixture();

    // 1. gc lists the store (everything unreferenced), then the whole admission runs, then gc
    // goes on: whatever gc does after its listing (re-reading records, deleting) waits until
    // the admission has exited. The reused blobs and envelope must survive.
    fx.orphaned_store("a");
    let listed = Signal::default();
    let admitted = Signal::default();
    let gc_proxy = Proxy::start(fx.sw.endpoint(), {
        let (listed, admitted) = (listed.clone(), admitted.clone());
        let listing_sent = AtomicBool::new(false);
        Arc::new(move |_: &str, target: &str, _: &str| {
            // The listing of the whole store passes; the next request shows it was answered,
            // and waits.
            if listing_sent.load(Ordering::SeqCst) {
                listed.raise();
                admitted.wait("the admission beside gc finished");
            } else if target.ends_with("list-type=2&prefix=a%2F") {
                listing_sent.store(true, Ordering::SeqCst);
            }
        })
    });
    let gc = fx.gc(&gc_proxy.url, "a");
    listed.wait("gc listed the store");
    let (code, out) = finished(fx.admit(&fx.sw.endpoint(), "a", "lab/new"));
    assert_eq!(code, 0, "the admission beside gc: {out}");
    admitted.raise();
    let (code, out) = wait_exit(gc, "gc");
    assert_eq!(code, 0, "gc: {out}");
    let server = fx.serve("a");
    assert_eq!(
        fx.download_all(&server, "lab/new"),
        0,
        "the admitted revision is served whole after gc"
    );
    drop(server);

    // 2. gc re-reads the records before deleting, finds none yet, and its delete of the
    // reused envelope lands just after the admission published its record; the admission's
    // last check runs after gc has finished. The admission must fail and say so, the gate
    // must answer 503 with a log line, and admitting again repairs the revision.
    fx.orphaned_store("b");
    interleave_delete_after_publish(&fx, "b", "/attestations/");

    // 3. The same with a reused blob deleted after the record was published.
    fx.orphaned_store("c");
    interleave_delete_after_publish(&fx, "c", "/blobs/");
}

/// gc's first delete of an object whose key contains `kind` (S3 DeleteObjects: the key is in
/// the body) is held until the admission has published its revision; every request of the
/// admission after it published is held until gc has exited.
fn interleave_delete_after_publish(fx: &Fixture, prefix: &str, kind: &'static str) {
    let delete_waiting = Signal::default();
    let published = Signal::default();
    let gc_done = Signal::default();
    let held_one = Arc::new(AtomicBool::new(false));
    let gc_proxy = Proxy::start(fx.sw.endpoint(), {
        let (delete_waiting, published) = (delete_waiting.clone(), published.clone());
        Arc::new(move |method: &str, target: &str, body: &str| {
            let deletes = (method == "DELETE" && target.contains(kind))
                || (method == "POST" && target.ends_with("?delete") && body.contains(kind));
            if deletes && !held_one.swap(true, Ordering::SeqCst) {
                delete_waiting.raise();
                published.wait("the admission published its revision");
            }
        })
    });
    let admission_proxy = Proxy::start(fx.sw.endpoint(), {
        let (published, gc_done) = (published.clone(), gc_done.clone());
        Arc::new(move |method: &str, target: &str, _: &str| {
            if published.is_raised() {
                gc_done.wait("gc finished");
            } else if method == "PUT" && target.contains("/refs/") {
                // The record was written (its PUT answered) before the ref's PUT began.
                published.raise();
            }
        })
    });
    let gc = fx.gc(&gc_proxy.url, prefix);
    delete_waiting.wait("gc about to delete a reused object");
    let admission = fx.admit(&admission_proxy.url, prefix, "lab/new");
    let (code, gc_out) = wait_exit(gc, "gc");
    assert_eq!(code, 0, "gc: {gc_out}");
    gc_done.raise();
    let (code, out) = wait_exit(admission, "admission");
    assert!(
        published.is_raised(),
        "the admission never published: {out}"
    );
    assert_ne!(
        code, 0,
        "an object of the revision was removed after it was published ({kind}), yet the \
         admission reported success:\n{out}\ngc: {gc_out}"
    );
    assert!(out.contains("admit it again"), "{out}");

    let server = fx.serve(prefix);
    assert!(
        fx.download_all(&server, "lab/new") > 0,
        "a revision with a missing object is not served"
    );
    server.wait_for_log(&["STORE INCOMPLETE"]);
    let (code, out) = finished(fx.admit(&fx.sw.endpoint(), prefix, "lab/new"));
    assert_eq!(code, 0, "admitting again: {out}");
    assert_eq!(
        fx.download_all(&server, "lab/new"),
        0,
        "served whole once admitted again"
    );
}
