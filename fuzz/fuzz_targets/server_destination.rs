//! Any destination header value on any tenant of a shared store: never the refused model's bytes, tenants with the same attestation answer alike, and every value is judged as its normal form.
#![no_main]
use std::sync::OnceLock;

use weightgate_fuzz::oracles::{Server, server_destination};

static SERVER: OnceLock<Server> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| server_destination(
    SERVER.get_or_init(Server::new),
    data
));
